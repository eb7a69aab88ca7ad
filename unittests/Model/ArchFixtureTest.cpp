//===- ArchFixtureTest.cpp - Other architectures against their reference --===//
//
// Synthetic models of the other architectures Lumen runs, written by
// ../shared/tools/mkqwen.py (CTest's make_qwen3_fixture, make_llama_fixture), against logits
// from ik_llama.cpp (scripts/arch_reference.py; the Feb 2025 llama.cpp
// predates qwen3), by the rule of ../shared/fixtures/README.md: the scalar
// reference path and the JIT, prompt batch and teacher-forced steps.
//
//===----------------------------------------------------------------------===//
#include "Fixtures.h"
#include "FidelityUtil.h"

using namespace lumen;
using namespace lumen::test;

namespace {

const std::string kData = std::string(LUMEN_SOURCE_DIR) + "/unittests/Model/data";

/// The reference and JIT paths against the reference logits Ref, by the
/// fixtures' rule; and the JIT's one-token decode steps against its prompt
/// batch.
void expectMatchesReference(const TransformerModel &M, const std::string &Ref) {
  for (bool Jit : {false, true}) {
    SCOPED_TRACE(Jit ? "JIT" : "reference");
    Agreement A = checkReference(M, kData + "/" + Ref, [&] {
      return std::move(Jit ? *createJitSession(M, kernelCache()) : *createReferenceSession(M));
    });
    EXPECT_EQ(A.Steps, 16);
    EXPECT_GE(A.Agree, 0.9 * A.Steps) << A.Agree << "/" << A.Steps;
  }
  std::unique_ptr<Session> Batch = std::move(*createJitSession(M, kernelCache()));
  std::unique_ptr<Session> Steps = std::move(*createJitSession(M, kernelCache()));
  const std::vector<int32_t> Ids = {785, 3974, 13876, 38835, 34208, 916, 279, 15678};
  std::vector<float> All, One;
  ASSERT_TRUE(Batch->eval(Ids, true, All).ok());
  const int64_t V = M.config().Vocab;
  for (size_t I = 0; I < Ids.size(); ++I) {
    ASSERT_TRUE(Steps->eval(std::span<const int32_t>(&Ids[I], 1), false, One).ok());
    EXPECT_EQ(argmax(One.data(), V), argmax(&All[I * V], V)) << I;
  }
}

// Qwen3: no q/k/v biases, RMSNorm over each q and k head before RoPE, a head
// dimension (128) from qwen3.attention.key_length that is not embedding /
// heads (256 / 4), so attn_q has 512 rows and attn_output 512 columns.
TEST(ArchFixtureTest, Qwen3MatchesIkLlamaCpp) {
  const std::string Path = std::string(LUMEN_TEST_TMPDIR) + "/qwen3-tiny-s5.gguf";
  LUMEN_REQUIRE_FILE(Path, "made by CTest's make_qwen3_fixture from ../shared/tools/mkqwen.py with numpy");
  auto M = TransformerModel::load(Path);
  ASSERT_TRUE(M.ok()) << M.status();
  const ModelConfig &C = (*M)->config();
  EXPECT_STREQ(C.Arch->Name, "qwen3");
  EXPECT_EQ(C.HeadDim, 128u);
  EXPECT_EQ(C.qDim(), 512u);
  EXPECT_EQ((*M)->Layers[0].QBias, nullptr);
  EXPECT_NE((*M)->Layers[0].QNorm, nullptr);
  expectMatchesReference(**M, "qwen3-tiny-s5.ref.json");
}

// Llama 3: no biases or q/k norms, RoPE on adjacent pairs (not NEOX's
// halves), Llama 3.1's frequency scaling from rope_freqs.weight (factor 32,
// as Llama 3.2), base 500000, epsilon 1e-5, the llama-bpe pre-tokenizer.
TEST(ArchFixtureTest, LlamaMatchesIkLlamaCpp) {
  const std::string Path = std::string(LUMEN_TEST_TMPDIR) + "/llama-tiny-s5.gguf";
  LUMEN_REQUIRE_FILE(Path, "made by CTest's make_llama_fixture from ../shared/tools/mkqwen.py with numpy");
  auto M = TransformerModel::load(Path);
  ASSERT_TRUE(M.ok()) << M.status();
  const ModelConfig &C = (*M)->config();
  EXPECT_STREQ(C.Arch->Name, "llama");
  EXPECT_EQ(C.Arch->Rope, RopeStyle::Pairs);
  EXPECT_EQ(C.HeadDim, 64u);
  EXPECT_EQ(C.RopeBase, 500000.0f);
  EXPECT_EQ((*M)->Layers[0].QBias, nullptr);
  EXPECT_EQ((*M)->Layers[0].QNorm, nullptr);
  ASSERT_NE((*M)->RopeFreqs, nullptr);
  EXPECT_EQ((*M)->RopeFreqs[0], 1.0f);       // The shortest wavelengths are not scaled,
  EXPECT_EQ((*M)->RopeFreqs[31], 32.0f);     // the longest by the factor.
  EXPECT_STREQ((*M)->tokenizer().preTokenizer().Name, "llama-bpe");
  // The angles divide by rope_freqs: at position 1000 (too far for the
  // reference cases to see the long wavelengths turn).
  std::vector<float> Cos(32), Sin(32);
  (*M)->ropeAngles(1000, Cos.data(), Sin.data());
  for (int I : {0, 10, 20, 31}) {
    const double Theta = 1000 * std::pow(500000.0, -2.0 * I / 64) / (*M)->RopeFreqs[I];
    EXPECT_NEAR(Cos[I], std::cos(Theta), 1e-3) << I;
    EXPECT_NEAR(Sin[I], std::sin(Theta), 1e-3) << I;
  }
  EXPECT_GT((*M)->RopeFreqs[20], 1.0f); // Blended between.
  expectMatchesReference(**M, "llama-tiny-s5.ref.json");
}

} // namespace
