//===- TunerTest.cpp - The tuner's search, checks and wisdom file ----------===//
#include "KernelTestUtil.h"

#include "lumen/Codegen/Reference.h"
#include "lumen/Codegen/TuningSpace.h"
#include "lumen/Runtime/Tuner.h"
#include "lumen/Runtime/WisdomFile.h"

#include "gtest/gtest.h"

#include <cstring>
#include <filesystem>
#include <fstream>

namespace lumen::runtime {
namespace {

using namespace codegen;

/// Small copies: these tests check what the tuner does, not how fast.
TunerOptions smallOptions(unsigned Threads = 1) {
  TunerOptions O;
  O.Threads = Threads;
  O.PrefillTokens = 11;
  O.Rounds = 3;
  O.DecodeBytes = 4 << 20;
  O.PrefillBytes = 1 << 20;
  O.HugePages = false;
  return O;
}

/// Odd shapes of several weight types, in the layout the loader would pick.
std::vector<MatmulShape> oddShapes(const CpuFeatures &Cpu) {
  std::vector<MatmulShape> Out;
  for (auto [W, M, K] : {std::tuple{WeightType::Q8_0, int64_t(48), int64_t(96)},
                         {WeightType::Q4_K, int64_t(40), int64_t(512)},
                         {WeightType::Q6_K, int64_t(32), int64_t(256)},
                         {WeightType::Q4_0, int64_t(24), int64_t(160)},
                         {WeightType::F16, int64_t(33), int64_t(64)}})
    Out.push_back({M, K, 1, W, chooseLayout(M, K, W, Cpu)});
  return Out;
}

// Whatever the search picks computes what the replay of its spec says: every
// neighbour of the table's choice along every axis, on odd shapes, decode
// and prefill, bit for bit.
TEST(TunerTest, EveryCandidateMatchesItsReplay) {
  KernelCache &Cache = test::sharedCache();
  const CpuFeatures &Cpu = Cache.jit().cpu();
  for (MatmulShape Shape : oddShapes(Cpu))
    for (int64_t N : {int64_t(1), int64_t(11)}) {
      Shape.N = N;
      const std::vector<uint8_t> Rows = test::randomWeights(Shape.Weights, Shape.M, Shape.K, 5);
      std::vector<uint8_t> W(Rows.size());
      repackWeights(Shape.Weights, Rows.data(), W.data(), Shape.Layout, Shape.M, Shape.K, 0, Shape.M);
      const KernelSpec Table = chooseSpec(Shape, Cpu);
      std::vector<float> X(N * Shape.K);
      std::mt19937 Rng(3);
      std::normal_distribution<float> Normal(0, 1);
      for (float &V : X)
        V = Normal(Rng);
      std::vector<uint8_t> Xq(N * q8RowBytes(Shape.K));
      referenceQuantize(Shape.K, N, X.data(), Xq.data());
      for (TuningAxis A : tuningAxes(Shape.N))
        for (const KernelSpec &C : candidatesAlong(Table, A, Cpu)) {
          SCOPED_TRACE(C.functionName());
          absl::StatusOr<MatmulFn> Fn = Cache.getMatmul(C);
          ASSERT_TRUE(Fn.ok()) << Fn.status();
          const void *Act = C.Activations == ActivationFormat::Q8 ? (const void *)Xq.data() : X.data();
          std::vector<float> Got(N * Shape.M, -1.0f), Want(N * Shape.M, -2.0f);
          (*Fn)(W.data(), Act, Got.data(), 0, Shape.M);
          replayMatmul(C, W.data(), Act, Want.data());
          EXPECT_EQ(std::memcmp(Got.data(), Want.data(), Got.size() * sizeof(float)), 0);
        }
    }
}

TEST(TunerTest, TunedKernelIsValidAndOnlyReplacesTheTableWhenItWins) {
  KernelCache &Cache = test::sharedCache();
  const CpuFeatures &Cpu = Cache.jit().cpu();
  Tuner T(Cache, smallOptions());
  for (MatmulShape Shape : oddShapes(Cpu)) {
    absl::StatusOr<KernelTuning> R = T.tuneKernel(Shape, 2.0);
    ASSERT_TRUE(R.ok()) << R.status();
    EXPECT_EQ(R->Table, chooseSpec(Shape, Cpu));
    EXPECT_TRUE(R->Tuned.validate(Cpu).ok());
    EXPECT_GT(R->Measured, 0u);
    EXPECT_GT(R->TableSeconds, 0);
    if (R->Tuned == R->Table) {
      EXPECT_EQ(R->Gain, 1);
    } else {
      EXPECT_GT(R->Gain - 1, R->Noise) << R->Tuned.functionName();
      EXPECT_LT(R->TunedSeconds, R->TableSeconds);
    }
  }
}

TEST(TunerTest, NoBudgetKeepsTheTable) {
  KernelCache &Cache = test::sharedCache();
  const MatmulShape Shape = oddShapes(Cache.jit().cpu())[0];
  Tuner T(Cache, smallOptions());
  absl::StatusOr<KernelTuning> R = T.tuneKernel(Shape, 0);
  ASSERT_TRUE(R.ok()) << R.status();
  EXPECT_TRUE(R->OutOfTime);
  EXPECT_EQ(R->Measured, 0u);
  EXPECT_EQ(R->Tuned, R->Table);
}

TEST(TunerTest, TuneTargetsFillsWisdomForEveryJob) {
  KernelCache &Cache = test::sharedCache();
  const CpuFeatures &Cpu = Cache.jit().cpu();
  const std::vector<TuneTarget> Targets = {{"a", WeightType::Q8_0, 64, 128, true},
                                           {"b", WeightType::Q4_K, 32, 256, false}};
  Wisdom W(WisdomHost::current(Cpu));
  std::vector<std::string> Seen;
  std::vector<size_t> DoneSeen;
  // A budget that a release build never reaches (a sanitizer build may).
  absl::StatusOr<std::vector<TuneReport>> R = tuneTargets(
      Cache, Targets, {1, 2}, 20.0, smallOptions(), W, [&](size_t Done, size_t Total, const std::string &What) {
        EXPECT_EQ(Total, 76u);
        Seen.push_back(What);
        DoneSeen.push_back(Done);
        return absl::OkStatus();
      });
  ASSERT_TRUE(R.ok()) << R.status();
  // a: layout, decode and prefill at 1 thread, decode and prefill at 2; b: layout, decode, decode.
  ASSERT_EQ(R->size(), 8u);
  EXPECT_EQ(Seen.size(), 9u);
  // Progress counts the jobs' shares of the budget (layout 3, decode 10,
  // prefill 15), so the share done is the share of the time spent.
  EXPECT_EQ(DoneSeen, (std::vector<size_t>{0, 3, 13, 28, 31, 41, 51, 66, 76}));
  // Every job that measured something left its entry; one that measured
  // nothing (out of budget) left none.
  size_t Kernels = 0, Layouts = 0;
  for (const TuneReport &Row : *R) {
    SCOPED_TRACE(Row.Name + " " + Row.What + " " + std::to_string(Row.Threads));
    const MatmulShape Shape{Row.M, Row.K, Row.What == "decode" ? 1 : 64, Row.Type,
                            chooseLayout(Row.M, Row.K, Row.Type, Cpu, &W)};
    if (Row.What == "layout") {
      Layouts += Row.Measured > 0;
      if (Row.Measured) {
        EXPECT_NE(W.layout(Row.Type, Row.M, Row.K), nullptr);
      }
    } else {
      Kernels += Row.Measured > 0;
      EXPECT_EQ(W.kernel(Shape, Row.Threads) != nullptr, Row.Measured > 0);
    }
  }
  EXPECT_EQ(W.kernels().size(), Kernels);
  EXPECT_EQ(W.layouts().size(), Layouts);
  EXPECT_GT(Kernels, 0u);
  // What chooseSpec makes of the wisdom is valid here.
  for (const WisdomKernel &E : W.kernels())
    EXPECT_TRUE(E.spec({E.M, E.K, E.Tokens == TokenClass::Decode ? 1 : 16, E.Type, E.Layout}).validate(Cpu).ok());

  // A progress callback's error stops the tuning.
  Wisdom Fresh(WisdomHost::current(Cpu));
  absl::StatusOr<std::vector<TuneReport>> Stopped =
      tuneTargets(Cache, Targets, {1}, 4.0, smallOptions(), Fresh,
                  [](size_t, size_t, const std::string &) { return absl::CancelledError("stop"); });
  EXPECT_EQ(Stopped.status().code(), absl::StatusCode::kCancelled);
}

TEST(WisdomFileTest, SavesWholeAndReadsBack) {
  const std::string Dir = std::string(LUMEN_TEST_TMPDIR) + "/wisdom-file-test";
  std::filesystem::remove_all(Dir);
  const std::string Path = wisdomPath(Dir);
  EXPECT_EQ(Path, Dir + "/wisdom.txt");
  const WisdomHost Host = WisdomHost::current(CpuFeatures::host());
  absl::StatusOr<Wisdom> Missing = loadWisdom(Path, Host);
  ASSERT_TRUE(Missing.ok()) << Missing.status();
  EXPECT_TRUE(Missing->kernels().empty());

  Wisdom W(Host);
  W.set(WisdomLayout{WeightType::Q8_0, 64, 128, WeightLayout::Rows, 1.5});
  ASSERT_TRUE(saveWisdom(Path, W).ok()); // Creates the directory.
  absl::StatusOr<Wisdom> Back = loadWisdom(Path, Host);
  ASSERT_TRUE(Back.ok()) << Back.status();
  EXPECT_EQ(Back->print(), W.print());
  // No temporary file is left behind.
  size_t Files = 0;
  for ([[maybe_unused]] auto &E : std::filesystem::directory_iterator(Dir))
    ++Files;
  EXPECT_EQ(Files, 1u);

  // A corrupt file is an error naming it; a directory too.
  std::ofstream(Path) << "lumen-wisdom 1\nhost model=\"x\" cpu=y isa=z llvm=1 lumen=2\nkernel garbage\n";
  absl::StatusOr<Wisdom> Bad = loadWisdom(Path, Host);
  ASSERT_FALSE(Bad.ok());
  EXPECT_NE(std::string(Bad.status().message()).find(Path), std::string::npos);
  EXPECT_NE(std::string(Bad.status().message()).find("line 3"), std::string::npos) << Bad.status();
  std::filesystem::remove(Path);
  std::filesystem::create_directory(Path);
  EXPECT_FALSE(loadWisdom(Path, Host).ok());
  EXPECT_FALSE(saveWisdom(Path, W).ok());
  std::filesystem::remove_all(Dir);
}

} // namespace
} // namespace lumen::runtime
