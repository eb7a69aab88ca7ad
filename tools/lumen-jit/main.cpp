//===- main.cpp - lumen-jit command-line driver ----------------------------===//
//
// lumen-jit SUBCOMMAND [flags] [args]
//
//===----------------------------------------------------------------------===//
#include "Commands.h"
#include "Flags.h"

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_format.h"

#include <cstdio>
#include <map>

namespace lumen::tool {
int fail(const std::string &Message) {
  std::fprintf(stderr, "lumen-jit: error: %s\n", Message.c_str());
  return 1;
}
} // namespace lumen::tool

namespace {
constexpr const char *kUsage = R"(Lumen: an LLVM ORC JIT inference runtime for quantized LLMs.

usage:
  lumen-jit run -m FILE -p TEXT [-n N] [-t THREADS] [-c CTX] [--temp T] [--top-k K]
                [--top-p P] [--min-p P] [--repeat-penalty R] [--seed S] [--chat]
                [--system TEXT] [-f PROMPT_FILE] [--raw] [--print-token-ids]
      Generate text (Qwen chat template unless --raw); tokens stream to stdout,
      load/compile progress and timings go to stderr. --model = -m.
  lumen-jit tokenize -m FILE (-p TEXT | -f FILE) [--no-special]
      Print the token ids, space-separated.
  lumen-jit eval -m FILE --tokens 1,2,3 [--top K] [--from POS] [--reference]
      Evaluate the ids in one batch; print JSON {"positions":[{"pos","argmax","top"}]}.
  lumen-jit bench -m FILE [-p 512] [-n 128] [-pg P,N] [-t 1,2] [-r 5] [-o md|csv|json]
                  [--profile]
      pp/tg (and -pg: prompt then generation) tokens/s like llama-bench, with
      weight GB/s against the measured read bandwidth; --profile adds the
      time per op class.
  lumen-jit inspect FILE [--tensors]
      Print a GGUF file's metadata (long arrays summarised) and, with
      --tensors, its tensor table (name, type, shape, bytes, offset).
  lumen-jit synth [--preset qwen2.5-0.5b|qwen2.5-1.5b|tiny] -o OUT [--seed N]
                  [--tokenizer-from GGUF]
      Write a Qwen2 GGUF with the real layout and random weights.
  lumen-jit --print-llvm --shape KxM [--tokens N] [--isa avx2|avx512|avx512-vnni] [--opt]
      Print the LLVM IR the kernel generator builds for a K-in, M-out
      matmul on N tokens (for this host unless --isa), after O3 with --opt.

run, eval and bench take --isa avx2|avx512|avx512-vnni too: kernels and
weight layout for that level instead of the host's (one this CPU has).

Run 'lumen-jit --helpfull' for every flag.)";
} // namespace

int main(int Argc, char **Argv) {
  using namespace lumen::tool;
  absl::SetProgramUsageMessage(kUsage);
  std::vector<std::string> Storage;
  std::vector<char *> Args = normalizeFlagSpelling(Argc, Argv, Storage);
  std::vector<char *> Positional = absl::ParseCommandLine(Argc, Args.data());
  if (absl::GetFlag(FLAGS_print_llvm))
    return runPrintLLVM(std::vector<std::string>(Positional.begin() + 1, Positional.end()));
  if (Positional.size() < 2) {
    std::fprintf(stderr, "%s\n", kUsage);
    return 2;
  }
  std::string Command = Positional[1];
  std::vector<std::string> Rest(Positional.begin() + 2, Positional.end());
  const std::map<std::string, int (*)(const std::vector<std::string> &)> Commands = {
      {"inspect", runInspect},
      {"synth", runSynth},
      {"run", runRun},
      {"tokenize", runTokenize},
      {"eval", runEval},
      {"bench", runBench},
  };
  auto It = Commands.find(Command);
  if (It == Commands.end()) {
    fail(absl::StrFormat("unknown subcommand '%s'", Command));
    std::fprintf(stderr, "%s\n", kUsage);
    return 2;
  }
  return It->second(Rest);
}
