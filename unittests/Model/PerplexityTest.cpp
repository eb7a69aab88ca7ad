//===- PerplexityTest.cpp - llama-perplexity's measure ---------------------===//
//
// perplexity() against the definition computed here directly: each chunk
// evaluated alone from position 0 (its first token replaced when asked),
// every logit of its second half but the last scoring the next token,
// log-softmax in double; PPL = exp(mean NLL), +/- = PPL x standard error.
//
//===----------------------------------------------------------------------===//
#include "lumen/Model/Perplexity.h"

#include "FidelityUtil.h"

#include "absl/strings/str_format.h"
#include "gtest/gtest.h"

#include <atomic>
#include <cmath>

using namespace lumen;
using namespace lumen::model;
using namespace lumen::test;

namespace {

struct Direct {
  double Ppl, Error;
  int64_t Scored;
};

Direct direct(const TransformerModel &M, const std::vector<int32_t> &Tokens, int64_t C, int64_t Chunks,
              std::optional<int32_t> Start) {
  const int64_t V = M.config().Vocab;
  double Nll = 0, Nll2 = 0;
  int64_t Count = 0;
  for (int64_t K = 0; K < Chunks; ++K) {
    std::vector<int32_t> Chunk(Tokens.begin() + K * C, Tokens.begin() + (K + 1) * C);
    if (Start)
      Chunk[0] = *Start;
    auto S = createReferenceSession(M);
    EXPECT_TRUE(S.ok());
    std::vector<float> L;
    EXPECT_TRUE((*S)->eval(Chunk, true, L).ok());
    for (int64_t P = C / 2; P < C - 1; ++P) {
      const float *Row = &L[P * V];
      double Max = *std::max_element(Row, Row + V), Sum = 0;
      for (int64_t I = 0; I < V; ++I)
        Sum += std::exp(double(Row[I]) - Max);
      const double LogProb = double(Row[Chunk[P + 1]]) - Max - std::log(Sum);
      Nll -= LogProb;
      Nll2 += LogProb * LogProb;
      ++Count;
    }
  }
  const double Mean = Nll / Count, Ppl = std::exp(Mean);
  return {Ppl, Ppl * std::sqrt((Nll2 / Count - Mean * Mean) / (Count - 1)), Count};
}

class PerplexityTest : public ::testing::Test {
protected:
  void SetUp() override {
    const std::string Path = absl::StrFormat("%s/ppl-model.gguf", LUMEN_TEST_TMPDIR);
    ASSERT_TRUE(writeSyntheticModel(smallSynthetic(gguf::TensorType::Q8_0, false, 5), Path).ok());
    auto Loaded = TransformerModel::load(Path);
    ASSERT_TRUE(Loaded.ok()) << Loaded.status();
    M = std::move(*Loaded);
    for (int I = 0; I < 200; ++I)
      Tokens.push_back((I * 7919 + 17) % 1024);
  }
  std::unique_ptr<TransformerModel> M;
  std::vector<int32_t> Tokens;
};

TEST_F(PerplexityTest, IsLlamaPerplexitysDefinition) {
  for (auto [C, Chunks, Start] : {std::tuple<int64_t, int64_t, std::optional<int32_t>>{32, 0, std::nullopt},
                                  {48, 2, std::nullopt}, {40, 0, 3}}) {
    SCOPED_TRACE(absl::StrFormat("chunks of %d, %d asked", C, Chunks));
    SessionOptions SO;
    SO.ContextSize = 64;
    SO.PrefillBatch = 7; // Batches that straddle the scored half.
    auto S = createReferenceSession(*M, SO);
    ASSERT_TRUE(S.ok());
    PerplexityOptions O;
    O.ChunkTokens = C;
    O.Chunks = Chunks;
    O.ChunkStart = Start;
    std::vector<int64_t> Seen;
    auto R = perplexity(**S, Tokens, O, [&](const PerplexityEstimate &E) { Seen.push_back(E.Chunks); });
    ASSERT_TRUE(R.ok()) << R.status();
    const int64_t Expected = Chunks ? Chunks : int64_t(Tokens.size()) / C;
    EXPECT_EQ(R->Chunks, Expected);
    EXPECT_EQ(R->ChunksTotal, Expected);
    EXPECT_EQ(int64_t(Seen.size()), Expected);
    const Direct D = direct(*M, Tokens, C, Expected, Start);
    EXPECT_EQ(R->Scored, D.Scored);
    EXPECT_EQ(R->Scored, Expected * (C - C / 2 - 1));
    EXPECT_NEAR(R->Ppl, D.Ppl, 1e-6 * D.Ppl);
    EXPECT_NEAR(R->Error, D.Error, 1e-4 * D.Error);
    EXPECT_GT(R->Error, 0);
  }
}

TEST_F(PerplexityTest, JitAgreesWithTheReference) {
  // The JIT's int8 activations move the logits a little (rms ~0.05 here).
  PerplexityOptions O;
  O.ChunkTokens = 64;
  SessionOptions SO;
  SO.ContextSize = 64;
  SO.PrefillBatch = 16;
  auto Ref = createReferenceSession(*M, SO);
  auto Jit = createJitSession(*M, kernelCache(), SO);
  ASSERT_TRUE(Ref.ok() && Jit.ok());
  auto A = perplexity(**Ref, Tokens, O), B = perplexity(**Jit, Tokens, O);
  ASSERT_TRUE(A.ok() && B.ok());
  EXPECT_NEAR(std::log(B->Ppl), std::log(A->Ppl), 0.02);
}

TEST_F(PerplexityTest, StopsWhenCancelled) {
  auto S = createReferenceSession(*M);
  ASSERT_TRUE(S.ok());
  std::atomic<bool> Cancel = false;
  PerplexityOptions O;
  O.ChunkTokens = 32;
  O.Cancel = &Cancel;
  auto R = perplexity(**S, Tokens, O, [&](const PerplexityEstimate &) { Cancel = true; });
  ASSERT_TRUE(R.ok()) << R.status();
  EXPECT_EQ(R->Chunks, 1);
  EXPECT_EQ(R->ChunksTotal, 6);
  Cancel = true;
  EXPECT_EQ(perplexity(**S, Tokens, O).status().code(), absl::StatusCode::kCancelled);
}

TEST_F(PerplexityTest, BadInputIsAnError) {
  SessionOptions SO;
  SO.ContextSize = 64;
  auto S = createReferenceSession(*M, SO);
  ASSERT_TRUE(S.ok());
  PerplexityOptions O;
  O.ChunkTokens = 128; // More than the context.
  EXPECT_NE(perplexity(**S, Tokens, O).status().message().find("do not fit the session's context"),
            std::string::npos);
  O.ChunkTokens = 3;
  EXPECT_FALSE(perplexity(**S, Tokens, O).ok());
  O.ChunkTokens = 64;
  std::vector<int32_t> Short(Tokens.begin(), Tokens.begin() + 100);
  EXPECT_NE(perplexity(**S, Short, O).status().message().find("needs at least 128 (two chunks)"),
            std::string::npos);
  O.Chunks = -1;
  EXPECT_FALSE(perplexity(**S, Tokens, O).ok());
}

} // namespace
