//===- BatchInvarianceTest.cpp - A sequence's logits alone and in a batch --===//
//
// The same prompts run alone (a Session: the prompt in one batch, then one
// token at a time, as `lumen-jit run` does) and together in a
// BatchedSession (prompts cut into chunks of other sizes, arriving at
// different steps, in other sequences, sharing steps with other prompts'
// chunks and other sequences' decode tokens): every logit equal bit for
// bit, for float, Q8_0 and K-quant matrices.
//
//===----------------------------------------------------------------------===//
#include "FidelityUtil.h"

#include "lumen/GGUF/GGUFFile.h"
#include "lumen/Model/BatchedSession.h"
#include "lumen/Runtime/Jit.h"
#include "lumen/Runtime/KernelCache.h"

#include "absl/strings/str_format.h"
#include "gtest/gtest.h"

#include <cstring>
#include <fstream>
#include <random>

using namespace lumen;
using namespace lumen::model;
using namespace lumen::test;

namespace {

runtime::KernelCache &kernelCache() {
  static std::unique_ptr<runtime::Jit> J = std::move(*runtime::Jit::create());
  static runtime::KernelCache Cache(*J);
  return Cache;
}

constexpr int kDecodeSteps = 6;

/// A prompt's logits as a Session gives them: after the prompt, then after
/// each greedy token.
struct Alone {
  std::vector<std::vector<float>> Logits;
  std::vector<int32_t> Tokens; // The greedy tokens fed back.
};

Alone runAlone(const TransformerModel &M, const std::vector<int32_t> &Prompt) {
  SessionOptions O;
  O.ContextSize = 256;
  O.Threads = 2;
  auto S = createJitSession(M, kernelCache(), O);
  EXPECT_TRUE(S.ok()) << S.status();
  Alone A;
  std::vector<float> L;
  EXPECT_TRUE((*S)->eval(Prompt, false, L).ok());
  for (int I = 0; I < kDecodeSteps; ++I) {
    A.Logits.push_back(L);
    const int32_t Next = argmax(L.data(), L.size());
    A.Tokens.push_back(Next);
    EXPECT_TRUE((*S)->eval({&Next, 1}, false, L).ok());
  }
  A.Logits.push_back(L);
  return A;
}

class BatchInvarianceTest : public testing::TestWithParam<quant::Preset> {};

TEST_P(BatchInvarianceTest, LogitsEqualAloneAndAmongOthers) {
  const std::string Name(quant::presetInfo(GetParam()).Name);
  SynthOptions O = smallSynthetic(gguf::TensorType::F32, /*Tied=*/false, 61);
  O.Type = GetParam();
  const std::string Path = absl::StrFormat("%s/batch-invariance-%s.gguf", LUMEN_TEST_TMPDIR, Name);
  ASSERT_TRUE(writeSyntheticModel(O, Path).ok());
  auto M = TransformerModel::load(Path);
  ASSERT_TRUE(M.ok()) << M.status();
  const int64_t Vocab = (*M)->config().Vocab;

  // Prompts of several lengths (one longer than a step), each arriving at its step.
  std::mt19937 Rng(5);
  const std::vector<int64_t> Lengths = {37, 5, 70, 1, 16};
  const std::vector<int> Arrival = {0, 0, 2, 3, 5};
  std::vector<std::vector<int32_t>> Prompts;
  for (int64_t Len : Lengths) {
    std::vector<int32_t> P(Len);
    for (int32_t &T : P)
      T = std::uniform_int_distribution<int32_t>(0, int32_t(Vocab) - 1)(Rng);
    Prompts.push_back(P);
  }
  std::vector<Alone> Want;
  for (const auto &P : Prompts)
    Want.push_back(runAlone(**M, P));

  SessionOptions BO;
  BO.ContextSize = 256;
  BO.Threads = 2;
  BO.PrefillBatch = 16; // Steps of at most 16 tokens: the long prompts are cut.
  const int32_t Sequences = int32_t(Prompts.size()) + 1;
  auto B = createJitBatchedSession(**M, kernelCache(), BO, Sequences);
  ASSERT_TRUE(B.ok()) << B.status();
  // A scheduler in miniature: each step, every decoding prompt's next token,
  // then prompt chunks in the room left. Prompt I runs in sequence
  // Sequences - 1 - I (sequence 0 is never used: a slot's index is irrelevant).
  struct Stream {
    int64_t Fed = 0;  // Prompt tokens fed.
    int Decoded = 0;  // Logits compared so far.
    bool done(const std::vector<int32_t> &P) const { return Fed == int64_t(P.size()) && Decoded > kDecodeSteps; }
  };
  std::vector<Stream> Streams(Prompts.size());
  int Compared = 0;
  for (int Step = 0; Step < 200; ++Step) {
    std::vector<SequenceInput> In;
    std::vector<size_t> Owner;
    std::vector<int32_t> Next(Prompts.size());
    int64_t Room = (*B)->batchSize();
    for (size_t I = 0; I < Prompts.size(); ++I) // Decode tokens first.
      if (Streams[I].Fed == int64_t(Prompts[I].size()) && Streams[I].Decoded <= kDecodeSteps &&
          Streams[I].Decoded > 0) {
        Next[I] = Want[I].Tokens[Streams[I].Decoded - 1];
        In.push_back({Sequences - 1 - int32_t(I), {&Next[I], 1}, true});
        Owner.push_back(I);
        --Room;
      }
    for (size_t I = 0; I < Prompts.size() && Room > 0; ++I)
      if (Step >= Arrival[I] && Streams[I].Fed < int64_t(Prompts[I].size())) {
        // Chunks of 3..9 tokens, or what fits.
        const int64_t Chunk = std::min({Room, int64_t(Prompts[I].size()) - Streams[I].Fed, 3 + int64_t(Step % 7)});
        const bool Last = Streams[I].Fed + Chunk == int64_t(Prompts[I].size());
        In.push_back({Sequences - 1 - int32_t(I), std::span(Prompts[I]).subspan(Streams[I].Fed, Chunk), Last});
        Owner.push_back(I);
        Streams[I].Fed += Chunk;
        Room -= Chunk;
      }
    if (In.empty())
      break;
    std::vector<float> L;
    ASSERT_TRUE((*B)->step(In, L).ok());
    size_t Row = 0;
    for (size_t J = 0; J < In.size(); ++J) {
      if (!In[J].Logits)
        continue;
      Stream &S = Streams[Owner[J]];
      const std::vector<float> &Expected = Want[Owner[J]].Logits[S.Decoded];
      ASSERT_EQ(std::memcmp(&L[Row * Vocab], Expected.data(), Vocab * sizeof(float)), 0)
          << Name << ": prompt " << Owner[J] << ", logits " << S.Decoded << " (step " << Step << ", " << In.size()
          << " inputs)";
      ++S.Decoded;
      ++Row;
      ++Compared;
    }
  }
  for (size_t I = 0; I < Prompts.size(); ++I)
    EXPECT_TRUE(Streams[I].done(Prompts[I])) << "prompt " << I << " did not finish";
  EXPECT_EQ(Compared, int(Prompts.size()) * (kDecodeSteps + 1));

  // A sequence rewound and refilled gives the same logits again.
  const int32_t Seq = Sequences - 1;
  ASSERT_TRUE((*B)->rewind(Seq, 0).ok());
  std::vector<float> L;
  for (int64_t At = 0; At < 37; At += 16)
    ASSERT_TRUE((*B)->step(std::vector<SequenceInput>{{Seq, std::span(Prompts[0]).subspan(At, std::min<int64_t>(16, 37 - At)), At + 16 >= 37}}, L).ok());
  EXPECT_EQ(std::memcmp(L.data(), Want[0].Logits[0].data(), Vocab * sizeof(float)), 0);
}

INSTANTIATE_TEST_SUITE_P(Presets, BatchInvarianceTest,
                         testing::Values(quant::Preset::F16, quant::Preset::Q8_0, quant::Preset::Q4_K_M,
                                         quant::Preset::Q6_K, quant::Preset::Q4_0),
                         [](const testing::TestParamInfo<quant::Preset> &I) {
                           return std::string(quant::presetInfo(I.param).Name);
                         });

TEST(BatchedSessionTest, BadStepsAreErrors) {
  SynthOptions O = smallSynthetic(gguf::TensorType::Q8_0, /*Tied=*/true, 62);
  const std::string Path = absl::StrFormat("%s/batched-errors.gguf", LUMEN_TEST_TMPDIR);
  ASSERT_TRUE(writeSyntheticModel(O, Path).ok());
  auto M = TransformerModel::load(Path);
  ASSERT_TRUE(M.ok());
  SessionOptions BO;
  BO.ContextSize = 32;
  BO.PrefillBatch = 8;
  auto B = createJitBatchedSession(**M, kernelCache(), BO, 2);
  ASSERT_TRUE(B.ok());
  EXPECT_EQ((*B)->sequences(), 2);
  EXPECT_EQ((*B)->batchSize(), 8);
  EXPECT_GT((*B)->sequenceBytes(), 0);
  std::vector<int32_t> T(9, 1), Bad = {-1};
  std::vector<float> L;
  auto Err = [&](std::vector<SequenceInput> In) {
    absl::Status S = (*B)->step(In, L);
    EXPECT_FALSE(S.ok());
    return std::string(S.message());
  };
  EXPECT_NE(Err({{2, std::span(T).first(1), true}}).find("sequence 2 does not exist"), std::string::npos);
  EXPECT_NE(Err({{0, std::span(T).first(1), true}, {0, std::span(T).first(1), true}}).find("twice"),
            std::string::npos);
  EXPECT_NE(Err({{0, T, true}}).find("at most 8"), std::string::npos);
  EXPECT_NE(Err({{1, Bad, true}}).find("outside the vocabulary"), std::string::npos);
  EXPECT_NE(Err({{1, {}, true}}).find("no tokens"), std::string::npos);
  EXPECT_EQ((*B)->position(0), 0);
  for (int I = 0; I < 4; ++I)
    ASSERT_TRUE((*B)->step(std::vector<SequenceInput>{{0, std::span(T).first(8), false}}, L).ok());
  EXPECT_EQ((*B)->position(0), 32);
  EXPECT_NE(Err({{0, std::span(T).first(1), true}}).find("do not fit"), std::string::npos);
  EXPECT_FALSE((*B)->rewind(0, 33).ok());
  EXPECT_TRUE((*B)->rewind(0, 3).ok());
  EXPECT_EQ((*B)->position(0), 3);
  EXPECT_FALSE(createJitBatchedSession(**M, kernelCache(), BO, 0).ok());
  const ModelConfig &C = (*M)->config();
  EXPECT_EQ((*B)->sequenceBytes(), 2 * C.Layers * C.kvDim() * 32 * 2);
}

// README and docs/SERVER.md: a slot's KV cache a token, fp16 keys and values.
TEST(BatchedSessionTest, KVBytesPerTokenOfThePresets) {
  auto PerToken = [](const char *Name) {
    const ModelShape S = *syntheticPreset(Name);
    return 2 * int64_t(S.Layers) * S.kvDim() * 2;
  };
  EXPECT_EQ(PerToken("qwen2.5-0.5b"), 12 * 1024);
  EXPECT_EQ(PerToken("qwen2.5-1.5b"), 28 * 1024);
  EXPECT_EQ(PerToken("qwen2.5-7b"), 56 * 1024);
  EXPECT_EQ(PerToken("qwen3-0.6b"), 112 * 1024);
}

// Sequences share no arithmetic, so one whose logits are not finite (here:
// an infinite scale in its token's embedding row) fails alone: the step
// lists it, and the other sequence's logits are those it has alone.
TEST(BatchedSessionTest, ASequenceWithNonFiniteLogitsFailsAlone) {
  SynthOptions O = smallSynthetic(gguf::TensorType::Q8_0, /*Tied=*/false, 63);
  const std::string Path = absl::StrFormat("%s/batched-nonfinite.gguf", LUMEN_TEST_TMPDIR);
  ASSERT_TRUE(writeSyntheticModel(O, Path).ok());
  constexpr int32_t BadToken = 7;
  {
    auto F = gguf::GGUFFile::open(Path);
    ASSERT_TRUE(F.ok()) << F.status();
    const gguf::TensorInfo *E = (*F)->findTensor("token_embd.weight");
    ASSERT_TRUE(E && E->Type == gguf::TensorType::Q8_0);
    const uint64_t At = (*F)->dataOffset() + E->Offset + BadToken * E->rowBytes(); // Block 0's fp16 scale.
    F->reset();
    std::fstream File(Path, std::ios::in | std::ios::out | std::ios::binary);
    File.seekp(static_cast<std::streamoff>(At));
    const char Inf[2] = {0x00, 0x7C}; // fp16 +infinity, little-endian.
    File.write(Inf, 2);
    ASSERT_TRUE(File.good());
  }
  auto M = TransformerModel::load(Path);
  ASSERT_TRUE(M.ok()) << M.status();
  SessionOptions BO;
  BO.ContextSize = 32;
  BO.Threads = 2;
  const std::vector<int32_t> Good = {1, 2, 3}, Bad = {BadToken};
  const std::vector<SequenceInput> In = {{0, Good, true}, {1, Bad, true}};

  auto Alone = createJitBatchedSession(**M, kernelCache(), BO, 1);
  ASSERT_TRUE(Alone.ok());
  std::vector<float> Expected;
  ASSERT_TRUE((*Alone)->step(std::vector<SequenceInput>{{0, Good, true}}, Expected).ok());

  auto B = createJitBatchedSession(**M, kernelCache(), BO, 2);
  ASSERT_TRUE(B.ok());
  std::vector<float> L;
  std::vector<BatchedSession::NonFinite> Failed;
  ASSERT_TRUE((*B)->step(In, L, &Failed).ok());
  ASSERT_EQ(Failed.size(), 1u);
  EXPECT_EQ(Failed[0].Input, 1u);
  EXPECT_TRUE(absl::IsDataLoss(Failed[0].Error)) << Failed[0].Error;
  EXPECT_NE(Failed[0].Error.message().find("the logits at position 0 are not finite"), std::string::npos);
  const int64_t Vocab = (*M)->config().Vocab;
  ASSERT_EQ(L.size(), 2 * static_cast<size_t>(Vocab));
  EXPECT_EQ(std::memcmp(L.data(), Expected.data(), Vocab * sizeof(float)), 0);
  EXPECT_EQ((*B)->position(0), 3);

  // Without the list, the step is the first such sequence's error.
  ASSERT_TRUE((*B)->rewind(0, 0).ok() && (*B)->rewind(1, 0).ok());
  absl::Status S = (*B)->step(In, L);
  EXPECT_TRUE(absl::IsDataLoss(S)) << S;
}

} // namespace
