//===- WisdomCheckTest.cpp - Tuned kernels confirmed inside the model ------===//
#include "Fixtures.h"

#include "lumen/Model/Session.h"
#include "lumen/Model/WisdomCheck.h"
#include "lumen/Runtime/Jit.h"

#include "gtest/gtest.h"

namespace lumen::model {
namespace {

using namespace codegen;

/// The table's spec for an entry's shape at N tokens.
KernelSpec tableSpec(const WisdomKernel &E, int64_t N, const CpuFeatures &Cpu) {
  return chooseSpec({E.M, E.K, N, E.Type, E.Layout}, Cpu);
}

TEST(WisdomCheckTest, ConfirmsOrRevertsEachTokenClass) {
  const std::string Path = std::string(LUMEN_SHARED_DIR) + "/fixtures/tiny-qwen2.gguf";
  LUMEN_REQUIRE_SHARED(Path);
  auto J = runtime::Jit::create();
  ASSERT_TRUE(J.ok());
  runtime::KernelCache Cache(**J);
  const CpuFeatures &Cpu = Cache.jit().cpu();
  auto M = TransformerModel::load(Path);
  ASSERT_TRUE(M.ok()) << M.status();
  const int64_t Prompt = 16;

  // Wisdom for every matrix at one thread: decode entries that differ from
  // the table (another accumulator count), prefill entries that are the
  // table's own choice.
  Wisdom W(WisdomHost::current(Cpu));
  for (const runtime::TuneTarget &T : tuneTargets(**M)) {
    const WeightLayout L = chooseLayout(T.M, T.K, T.Type, Cpu);
    KernelSpec Decode = chooseSpec({T.M, T.K, 1, T.Type, L}, Cpu);
    Decode.Accumulators = Decode.Accumulators == 1 ? 2 : 1;
    ASSERT_TRUE(Decode.validate(Cpu).ok()) << Decode.validate(Cpu);
    W.set(WisdomKernel::of(Decode, 1, 1.5));
    if (T.Prefill)
      W.set(WisdomKernel::of(chooseSpec({T.M, T.K, Prompt, T.Type, L}, Cpu), 1, 1.0));
  }
  const Wisdom Before = W;
  WisdomCheckOptions O;
  O.PromptTokens = Prompt;
  O.DecodeTokens = 4;
  O.Rounds = 3;
  O.HugePages = false;
  absl::StatusOr<std::vector<WisdomCheck>> C = confirmWisdom(**M, Cache, W, {1}, O);
  ASSERT_TRUE(C.ok()) << C.status();
  ASSERT_EQ(C->size(), 2u);
  const WisdomCheck &D = (*C)[0], &P = (*C)[1];
  EXPECT_EQ(D.Tokens, TokenClass::Decode);
  EXPECT_TRUE(D.Compared);
  EXPECT_GT(D.TableSeconds, 0);
  EXPECT_GT(D.TunedSeconds, 0);
  // Prefill's entries are the table's, but its kernels take the decode
  // kernels' numerics (batch invariance): compared exactly when the tuned
  // decode choices stood, and a prompt they slowed reverts them.
  EXPECT_EQ(P.Tokens, TokenClass::Prefill);
  EXPECT_EQ(P.Compared, D.Kept || D.SlowedPrompt);
  if (D.SlowedPrompt) {
    EXPECT_FALSE(D.Kept);
    EXPECT_LT(P.Gain, 1 - P.Noise / 2);
  }
  ASSERT_EQ(W.kernels().size(), Before.kernels().size());
  for (size_t I = 0; I < W.kernels().size(); ++I) {
    const WisdomKernel &E = W.kernels()[I], &Old = Before.kernels()[I];
    const int64_t N = E.Tokens == TokenClass::Decode ? 1 : Prompt;
    if (E.Tokens == TokenClass::Decode && !D.Kept) {
      // Reverted: the table's choice, gain 1.
      EXPECT_EQ(E.spec({E.M, E.K, N, E.Type, E.Layout}), tableSpec(E, N, Cpu));
      EXPECT_EQ(E.Gain, 1);
    } else {
      EXPECT_EQ(E.spec({E.M, E.K, N, E.Type, E.Layout}), Old.spec({E.M, E.K, N, E.Type, E.Layout}));
      EXPECT_EQ(E.Gain, Old.Gain);
    }
  }
  // A thread count with no entries has nothing to confirm.
  absl::StatusOr<std::vector<WisdomCheck>> None = confirmWisdom(**M, Cache, W, {2}, O);
  ASSERT_TRUE(None.ok());
  for (const WisdomCheck &X : *None)
    EXPECT_FALSE(X.Compared);
}

} // namespace
} // namespace lumen::model
