//===- Qwen05bFixtureTest.cpp - JIT against llama.cpp on the 0.5B shape ---===//
#include "Fixtures.h"
#include "FidelityUtil.h"

#include <filesystem>

using namespace lumen;
using namespace lumen::test;

namespace {

// The 0.5B-shaped model that shared/tools/mkqwen.py regenerates byte for
// byte; CTest makes it before this test when python3-numpy is installed.
TEST(Qwen05bFixtureTest, JitMatchesLlamaCpp) {
  std::string Path = std::string(LUMEN_TEST_TMPDIR) + "/qwen05b-s1.gguf";
  LUMEN_REQUIRE_FILE(Path, "made by CTest's make_qwen05b_fixture from ../shared/tools/mkqwen.py with numpy");
  auto M = TransformerModel::load(Path);
  ASSERT_TRUE(M.ok()) << M.status();
  Agreement A = checkReference(**M, kShared + "/fixtures/qwen05b-s1.ref.json", [&] {
    return std::move(*createJitSession(**M, kernelCache()));
  });
  EXPECT_GE(A.Agree, 0.9 * A.Steps) << A.Agree << "/" << A.Steps;
}

} // namespace
