//===- ArchFixtureTest.cpp - Other architectures against their reference --===//
//
// Synthetic models of the other architectures Lumen runs, written by
// ../shared/tools/mkqwen.py (CTest's make_qwen3_fixture), against logits
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

// Qwen3: no q/k/v biases, RMSNorm over each q and k head before RoPE, a head
// dimension (128) from qwen3.attention.key_length that is not embedding /
// heads (256 / 4), so attn_q has 512 rows and attn_output 512 columns.
TEST(ArchFixtureTest, Qwen3MatchesIkLlamaCpp) {
  const std::string Path = std::string(LUMEN_TEST_TMPDIR) + "/qwen3-tiny-s5.gguf";
  LUMEN_REQUIRE_FILE(Path, "made by CTest's make_qwen3_fixture from ../shared/tools/mkqwen.py with numpy");
  auto M = Qwen2Model::load(Path);
  ASSERT_TRUE(M.ok()) << M.status();
  const Qwen2Config &C = (*M)->config();
  EXPECT_STREQ(C.Arch->Name, "qwen3");
  EXPECT_EQ(C.HeadDim, 128u);
  EXPECT_EQ(C.qDim(), 512u);
  EXPECT_EQ((*M)->Layers[0].QBias, nullptr);
  EXPECT_NE((*M)->Layers[0].QNorm, nullptr);
  for (bool Jit : {false, true}) {
    SCOPED_TRACE(Jit ? "JIT" : "reference");
    Agreement A = checkReference(**M, kData + "/qwen3-tiny-s5.ref.json", [&] {
      return std::move(Jit ? *createJitSession(**M, kernelCache()) : *createReferenceSession(**M));
    });
    EXPECT_EQ(A.Steps, 16);
    EXPECT_GE(A.Agree, 0.9 * A.Steps) << A.Agree << "/" << A.Steps;
  }
  // The JIT's decode steps, one token at a time, agree with its prompt batch.
  std::unique_ptr<Session> Batch = std::move(*createJitSession(**M, kernelCache()));
  std::unique_ptr<Session> Steps = std::move(*createJitSession(**M, kernelCache()));
  const std::vector<int32_t> Ids = {785, 3974, 13876, 38835, 34208, 916, 279, 15678};
  std::vector<float> All, One;
  ASSERT_TRUE(Batch->eval(Ids, true, All).ok());
  for (size_t I = 0; I < Ids.size(); ++I) {
    ASSERT_TRUE(Steps->eval(std::span<const int32_t>(&Ids[I], 1), false, One).ok());
    EXPECT_EQ(argmax(One.data(), C.Vocab), argmax(&All[I * C.Vocab], C.Vocab)) << I;
  }
}

} // namespace
