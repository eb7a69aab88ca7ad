//===- ConcurrencyTest.cpp - Sessions generating at once -------------------===//
//
// Several threads, each with its own session (and thread pool), generate at
// the same time from one loaded model and one kernel cache; every thread's
// tokens equal a single-threaded run's. Run under TSan in CI.
//
//===----------------------------------------------------------------------===//
#include "Fixtures.h"
#include "lumen/Model/Generate.h"
#include "lumen/Model/TransformerModel.h"
#include "lumen/Model/Session.h"
#include "lumen/Runtime/Jit.h"
#include "lumen/Runtime/KernelCache.h"

#include "gtest/gtest.h"

#include <filesystem>
#include <thread>

using namespace lumen;
using namespace lumen::model;

namespace {

std::vector<int32_t> greedy(const TransformerModel &M, runtime::KernelCache &Cache, const std::string &Prompt,
                            unsigned PoolThreads) {
  SessionOptions O;
  O.Threads = PoolThreads;
  O.ContextSize = 128;
  O.PrefillBatch = 8; // Several batches: exercises the prefill kernels too.
  auto S = createJitSession(M, Cache, O);
  EXPECT_TRUE(S.ok());
  SamplerOptions SO;
  SO.Temperature = 0;
  Sampler Smp(SO);
  GenerateOptions G;
  G.MaxTokens = 12;
  G.StopAtEndOfTurn = false;
  std::vector<int32_t> Out;
  auto R = generate(**S, Smp, M.tokenizer().encode(Prompt), G, [&](int32_t Id, std::string_view) {
    if (Id >= 0)
      Out.push_back(Id);
    return true;
  });
  EXPECT_TRUE(R.ok());
  return Out;
}

TEST(ConcurrencyTest, SessionsShareModelAndKernelCache) {
  std::string Path = std::string(LUMEN_SHARED_DIR) + "/fixtures/tiny-qwen2.gguf";
  LUMEN_REQUIRE_SHARED(Path);
  auto M = TransformerModel::load(Path);
  ASSERT_TRUE(M.ok());
  const std::vector<std::string> Prompts = {"Hello", "The quick brown fox jumps over the lazy dog.",
                                            "def main():\n    print(42)", "안녕하세요, 저는 Qwen입니다."};
  // Baselines, one at a time, each with a fresh kernel cache.
  std::vector<std::vector<int32_t>> Want;
  {
    auto J = runtime::Jit::create();
    runtime::KernelCache Cache(**J);
    for (const std::string &P : Prompts)
      Want.push_back(greedy(**M, Cache, P, 1));
  }
  // All at once, sharing one cache that starts empty (kernels are compiled
  // while the others wait or run), each session with a 2-thread pool.
  auto J = runtime::Jit::create();
  runtime::KernelCache Cache(**J);
  std::vector<std::vector<int32_t>> Got(Prompts.size());
  std::vector<std::thread> Threads;
  for (size_t I = 0; I < Prompts.size(); ++I)
    Threads.emplace_back([&, I] { Got[I] = greedy(**M, Cache, Prompts[I], 2); });
  for (std::thread &T : Threads)
    T.join();
  for (size_t I = 0; I < Prompts.size(); ++I)
    EXPECT_EQ(Got[I], Want[I]) << Prompts[I];
}

} // namespace
