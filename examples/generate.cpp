//===- generate.cpp - Streaming generation through the model API -----------===//
//
//   generate MODEL.gguf [PROMPT]
//
// Loads a Qwen2 GGUF, prints greedy tokens as they come through a callback,
// and cancels after 16 tokens from the callback's side via the cancel flag.
//
//===----------------------------------------------------------------------===//
#include "lumen/Model/Generate.h"
#include "lumen/Model/TransformerModel.h"
#include "lumen/Model/Sampler.h"
#include "lumen/Model/Session.h"
#include "lumen/Runtime/Jit.h"
#include "lumen/Runtime/KernelCache.h"

#include <atomic>
#include <cstdio>

using namespace lumen;

int main(int Argc, char **Argv) {
  if (Argc < 2) {
    std::fprintf(stderr, "usage: generate MODEL.gguf [PROMPT]\n");
    return 2;
  }
  auto Model = model::TransformerModel::load(Argv[1]);
  if (!Model.ok()) {
    std::fprintf(stderr, "%s\n", std::string(Model.status().message()).c_str());
    return 1;
  }
  auto J = runtime::Jit::create();
  if (!J.ok())
    return 1;
  runtime::KernelCache Cache(**J);
  auto Session = model::createJitSession(**Model, Cache);
  if (!Session.ok())
    return 1;
  model::SamplerOptions SO;
  SO.Temperature = 0; // Greedy.
  model::Sampler Sampler(SO);
  std::vector<int32_t> Prompt = (*Model)->tokenizer().encode(Argc > 2 ? Argv[2] : "Hello");

  std::atomic<bool> Cancel{false};
  model::GenerateOptions Options;
  Options.MaxTokens = 64;
  Options.Cancel = &Cancel;
  int Count = 0;
  auto Result = model::generate(**Session, Sampler, Prompt, Options, [&](int32_t Id, std::string_view Text) {
    std::fwrite(Text.data(), 1, Text.size(), stdout);
    std::fflush(stdout);
    if (Id >= 0 && ++Count == 16)
      Cancel = true; // Another thread could set it the same way.
    return true;
  });
  if (!Result.ok()) {
    std::fprintf(stderr, "%s\n", std::string(Result.status().message()).c_str());
    return 1;
  }
  std::printf("\n%lld tokens, stopped by %s\n", static_cast<long long>(Result->GeneratedTokens),
              Result->Reason == model::StopReason::Cancelled ? "cancellation" : "something else");
  return Result->GeneratedTokens == 16 && Result->Reason == model::StopReason::Cancelled ? 0 : 1;
}
