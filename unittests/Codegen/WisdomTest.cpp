//===- WisdomTest.cpp - Wisdom text, its host key, and its use -------------===//
#include "lumen/Codegen/KernelABI.h"
#include "lumen/Codegen/TuningSpace.h"
#include "lumen/Codegen/Wisdom.h"

#include "gtest/gtest.h"

#include <set>

namespace lumen::codegen {
namespace {

WisdomHost hostA() { return {"Test CPU A", "znver5", "avx512-vnni", "19.1.7", "0.1.0"}; }
WisdomHost hostB() { return {"Test CPU B", "znver1", "avx2", "19.1.7", "0.1.0"}; }

CpuFeatures vnniCpu() {
  CpuFeatures C = *CpuFeatures::forIsa("avx512-vnni");
  C.CpuName = "znver5";
  return C;
}

/// A decode entry unlike the table's choice for that shape on any host.
WisdomKernel decodeEntry() {
  WisdomKernel E;
  E.Type = WeightType::Q8_0;
  E.Layout = WeightLayout::Interleaved16;
  E.M = 4864;
  E.K = 896;
  E.Tokens = TokenClass::Decode;
  E.Threads = 2;
  E.VectorBits = 512;
  E.Accumulators = 2;
  E.VNNI = true;
  E.TileRows = 16;
  E.TileTokens = 1;
  E.PrefetchBytes = 2048;
  E.Prefetch = PrefetchPattern::Lines;
  E.Gain = 1.125;
  return E;
}

TEST(WisdomTest, EveryPrefetchPatternParsesBack) {
  for (PrefetchPattern P : {PrefetchPattern::Lines, PrefetchPattern::PageStart, PrefetchPattern::Spread,
                            PrefetchPattern::LinesAndPage}) {
    Wisdom W(hostA());
    WisdomKernel E = decodeEntry();
    E.Prefetch = P;
    W.set(E);
    absl::StatusOr<Wisdom> Back = Wisdom::parse(W.print(), hostA());
    ASSERT_TRUE(Back.ok()) << Back.status() << "\n" << W.print();
    ASSERT_EQ(Back->kernels().size(), 1u);
    EXPECT_EQ(Back->kernels()[0].Prefetch, P) << W.print();
  }
}

TEST(WisdomTest, PrintsAndParsesBack) {
  Wisdom W(hostA());
  W.set(decodeEntry());
  WisdomKernel P = decodeEntry();
  P.Tokens = TokenClass::Prefill;
  P.Accumulators = 1;
  P.TileRows = 32;
  P.TileTokens = 6;
  P.PrefetchBytes = 30464;
  P.Prefetch = PrefetchPattern::Spread;
  W.set(P);
  W.set(WisdomLayout{WeightType::Q4_K, 8960, 1536, WeightLayout::Rows, 1.25});
  const std::string Text = W.print();
  absl::StatusOr<Wisdom> Back = Wisdom::parse(Text, hostA());
  ASSERT_TRUE(Back.ok()) << Back.status() << "\n" << Text;
  EXPECT_EQ(Back->print(), Text);
  ASSERT_EQ(Back->kernels().size(), 2u);
  const WisdomKernel *D = Back->kernel({4864, 896, 1, WeightType::Q8_0, WeightLayout::Interleaved16}, 2);
  ASSERT_NE(D, nullptr);
  EXPECT_EQ(D->Accumulators, 2u);
  EXPECT_EQ(D->PrefetchBytes, 2048u);
  EXPECT_DOUBLE_EQ(D->Gain, 1.125);
  // Any batch of 8 or more finds the prefill entry; 2..7 tokens find none.
  const WisdomKernel *F = Back->kernel({4864, 896, 40, WeightType::Q8_0, WeightLayout::Interleaved16}, 2);
  ASSERT_NE(F, nullptr);
  EXPECT_EQ(F->Prefetch, PrefetchPattern::Spread);
  EXPECT_EQ(Back->kernel({4864, 896, 4, WeightType::Q8_0, WeightLayout::Interleaved16}, 2), nullptr);
  // Another thread count, layout or shape: no entry.
  EXPECT_EQ(Back->kernel({4864, 896, 1, WeightType::Q8_0, WeightLayout::Interleaved16}, 1), nullptr);
  EXPECT_EQ(Back->kernel({4864, 896, 1, WeightType::Q8_0, WeightLayout::Interleaved8}, 2), nullptr);
  EXPECT_EQ(Back->kernel({4864, 1792, 1, WeightType::Q8_0, WeightLayout::Interleaved16}, 2), nullptr);
  ASSERT_NE(Back->layout(WeightType::Q4_K, 8960, 1536), nullptr);
  EXPECT_EQ(Back->layout(WeightType::Q4_K, 8960, 1536)->Choice, WeightLayout::Rows);
}

TEST(WisdomTest, SetReplacesTheSameKey) {
  Wisdom W(hostA());
  W.set(decodeEntry());
  WisdomKernel E = decodeEntry();
  E.Accumulators = 1;
  W.set(E);
  ASSERT_EQ(W.kernels().size(), 1u);
  EXPECT_EQ(W.kernels()[0].Accumulators, 1u);
}

TEST(WisdomTest, OtherHostsAreIgnoredAndKept) {
  Wisdom A(hostA());
  A.set(decodeEntry());
  // Host B reads A's file: nothing for B, but A's section survives B's rewrite.
  absl::StatusOr<Wisdom> B = Wisdom::parse(A.print(), hostB());
  ASSERT_TRUE(B.ok()) << B.status();
  EXPECT_TRUE(B->kernels().empty());
  EXPECT_EQ(B->otherHosts(), 1u);
  B->set(WisdomLayout{WeightType::Q8_0, 896, 896, WeightLayout::Interleaved8, 1.1});
  absl::StatusOr<Wisdom> AAgain = Wisdom::parse(B->print(), hostA());
  ASSERT_TRUE(AAgain.ok()) << AAgain.status();
  ASSERT_EQ(AAgain->kernels().size(), 1u);
  EXPECT_TRUE(AAgain->layouts().empty());
  // Every field of the key counts: another LLVM or Lumen version is another host.
  for (auto Change : {+[](WisdomHost &H) { H.Llvm = "20.1.0"; }, +[](WisdomHost &H) { H.Lumen = "9.9.9"; },
                      +[](WisdomHost &H) { H.Isa = "avx2"; }, +[](WisdomHost &H) { H.Model = "Other"; },
                      +[](WisdomHost &H) { H.Cpu = "znver4"; }}) {
    WisdomHost H = hostA();
    Change(H);
    absl::StatusOr<Wisdom> W = Wisdom::parse(A.print(), H);
    ASSERT_TRUE(W.ok());
    EXPECT_TRUE(W->kernels().empty()) << H.line();
  }
}

TEST(WisdomTest, CurrentHostKey) {
  const WisdomHost H = WisdomHost::current(vnniCpu());
  EXPECT_EQ(H.Cpu, "znver5");
  EXPECT_EQ(H.Isa, "avx512-vnni");
  EXPECT_FALSE(H.Model.empty());
  EXPECT_FALSE(H.Llvm.empty());
  EXPECT_FALSE(H.Lumen.empty());
  EXPECT_EQ(H.line().find('\n'), std::string::npos);
}

TEST(WisdomTest, MalformedFilesAreErrorsNamingTheLine) {
  const std::string Host = hostA().line() + "\n";
  const std::string Good = "kernel type=q8_0 layout=interleaved16 m=4864 k=896 n=decode threads=2 bits=512 acc=1 "
                           "vnni=1 tile=16x1 prefetch=0 pattern=lines paced=1 gain=1.000\n";
  ASSERT_TRUE(Wisdom::parse("lumen-wisdom 1\n" + Host + Good, hostA()).ok());
  struct Case {
    std::string Text, Says;
  } Cases[] = {
      {"", ""}, // Empty text: no header, but nothing to trust either -> fine (below).
      {Host + Good, "lumen-wisdom 1"},
      {"lumen-wisdom 2\n" + Host, "version"},
      {"lumen-wisdom 1\nlumen-wisdom 1\n", "once"},
      {"lumen-wisdom 1\n" + Good, "before any host"},
      {"lumen-wisdom 1\n" + Host + "frobnicate x=1\n", "unknown entry"},
      {"lumen-wisdom 1\n" + Host + Good.substr(0, Good.size() - 1) + " extra=1\n", "unknown field"},
      {"lumen-wisdom 1\n" + Host + "kernel type=q8_0 type=q8_0\n", "twice"},
      {"lumen-wisdom 1\n" + Host + "kernel type=q9_9\n", "type=q9_9"},
      {"lumen-wisdom 1\n" + Host + "kernel nonsense\n", "key=value"},
      {"lumen-wisdom 1\nhost model=\"unterminated cpu=x\n", "unterminated"},
      {"lumen-wisdom 1\nhost cpu=znver5\n", "no model="},
      {"lumen-wisdom 1\n" + Host + std::string(Good).replace(Good.find("m=4864"), 6, "m=-5"), "m=-5"},
      {"lumen-wisdom 1\n" + Host + std::string(Good).replace(Good.find("bits=512"), 8, "bits=300"), "bits"},
      // A gain that would print as 0.000 (and not read back; wisdom_fuzzer).
      {"lumen-wisdom 1\n" + Host + std::string(Good).replace(Good.find("gain=1.000"), 10, "gain=0.0001"), "0.001"},
      {"lumen-wisdom 1\n" + Host + std::string(Good).replace(Good.find("tile=16x1"), 9, "tile=16y1"), "tile"},
      {"lumen-wisdom 1\n" + Host + std::string(Good).replace(Good.find("n=decode"), 8, "n=many"), "n=many"},
      {"lumen-wisdom 1\n" + Host + std::string(Good).replace(Good.find("gain=1.000"), 10, "gain=nan"), "gain"},
      {"lumen-wisdom 1\n" + Host + std::string(Good).replace(Good.find("pattern=lines"), 13, "pattern=x"),
       "pattern"},
      {"lumen-wisdom 1\n" + Host + "layout type=q8_0 m=1 k=32 choice=diagonal gain=1\n", "choice=diagonal"},
      // Control bytes are escaped and long text cut: the message is safe to print.
      {"lumen-wisdom 1\n" + Host + "kernel \x1b[2J" + std::string(100, 'z') + "\n", "'\\x1b[2Jzzz"},
  };
  for (const Case &C : Cases) {
    absl::StatusOr<Wisdom> W = Wisdom::parse(C.Text, hostA());
    if (C.Says.empty()) {
      EXPECT_TRUE(W.ok());
      continue;
    }
    ASSERT_FALSE(W.ok()) << C.Text;
    EXPECT_NE(std::string(W.status().message()).find(C.Says), std::string::npos) << W.status();
    EXPECT_LT(W.status().message().size(), 200u) << W.status();
    EXPECT_EQ(std::string(W.status().message()).find('\x1b'), std::string::npos);
    EXPECT_NE(std::string(W.status().message()).find("line "), std::string::npos) << W.status();
  }
}

TEST(WisdomTest, ChooseSpecTakesAValidEntryForItsThreadCount) {
  const CpuFeatures Cpu = vnniCpu();
  const MatmulShape Shape{4864, 896, 1, WeightType::Q8_0, WeightLayout::Interleaved16};
  Wisdom W(hostA());
  W.set(decodeEntry());
  std::string Why;
  KernelSpec S = chooseSpec(Shape, Cpu, &Why, &W, 2);
  EXPECT_EQ(S.Accumulators, 2u);
  EXPECT_EQ(S.PrefetchBytes, 2048u);
  EXPECT_EQ(S.Prefetch, PrefetchPattern::Lines);
  EXPECT_FALSE(S.Paced);
  EXPECT_TRUE(S.validate(Cpu).ok());
  EXPECT_NE(Why.find("wisdom"), std::string::npos) << Why;
  EXPECT_NE(Why.find("1.12x"), std::string::npos) << Why;
  // One thread: no entry, the table, saying so.
  const KernelSpec Table = chooseSpec(Shape, Cpu);
  EXPECT_EQ(chooseSpec(Shape, Cpu, &Why, &W, 1), Table);
  EXPECT_NE(Why.find("table row"), std::string::npos) << Why;
  EXPECT_NE(Why.find("no wisdom"), std::string::npos) << Why;
  // An entry this CPU cannot run (edited by hand) is passed over.
  WisdomKernel Bad = decodeEntry();
  Bad.TileRows = 5;
  W.set(Bad);
  EXPECT_EQ(chooseSpec(Shape, Cpu, &Why, &W, 2), Table);
  EXPECT_NE(Why.find("passed over"), std::string::npos) << Why;
}

TEST(WisdomTest, ChooseLayoutTakesAStorableEntry) {
  const CpuFeatures Cpu = vnniCpu();
  Wisdom W(hostA());
  EXPECT_EQ(chooseLayout(4864, 896, WeightType::Q8_0, Cpu, &W), WeightLayout::Interleaved16);
  W.set(WisdomLayout{WeightType::Q8_0, 4864, 896, WeightLayout::Rows, 1.2});
  EXPECT_EQ(chooseLayout(4864, 896, WeightType::Q8_0, Cpu, &W), WeightLayout::Rows);
  EXPECT_EQ(chooseLayout(4864, 896, WeightType::Q8_0, Cpu), WeightLayout::Interleaved16);
  // A layout the matrix cannot take (M not a multiple of 16) is ignored.
  W.set(WisdomLayout{WeightType::Q8_0, 8 * 3, 896, WeightLayout::Interleaved16, 1.2});
  EXPECT_EQ(chooseLayout(8 * 3, 896, WeightType::Q8_0, Cpu, &W), WeightLayout::Interleaved8);
}

TEST(TuningSpaceTest, CandidatesAreValidNeighboursAlongOneAxis) {
  const CpuFeatures Vnni = vnniCpu(), Avx2 = *CpuFeatures::forIsa("avx2");
  for (const CpuFeatures &Cpu : {Vnni, Avx2})
    for (WeightType W : {WeightType::Q8_0, WeightType::Q4_K, WeightType::Q6_K, WeightType::Q4_0, WeightType::F16})
      for (int64_t N : {int64_t(1), int64_t(64)}) {
        const MatmulShape Shape{4864, 1024, N, W, chooseLayout(4864, 1024, W, Cpu)};
        const KernelSpec From = chooseSpec(Shape, Cpu);
        std::set<std::string> Seen;
        for (TuningAxis A : tuningAxes(Shape.N))
          for (const KernelSpec &C : candidatesAlong(From, A, Cpu)) {
            SCOPED_TRACE(C.functionName());
            EXPECT_TRUE(C.validate(Cpu).ok()) << C.validate(Cpu);
            EXPECT_FALSE(C == From);
            EXPECT_EQ(C.Shape.M, From.Shape.M);
            EXPECT_EQ(C.Shape.Layout, From.Shape.Layout);
            EXPECT_EQ(C.Activations, From.Activations);
            if (A != TuningAxis::Prefetch && A != TuningAxis::Tile) {
              EXPECT_EQ(C.PrefetchBytes, From.PrefetchBytes);
            }
            if (A != TuningAxis::Tile) {
              EXPECT_EQ(C.TileRows, From.TileRows);
            }
            if (A != TuningAxis::Accumulators) {
              EXPECT_EQ(C.Accumulators, From.Accumulators);
            }
            if (A != TuningAxis::Isa) {
              EXPECT_EQ(C.VectorBits, From.VectorBits);
            }
            if (!Cpu.AVX512) {
              EXPECT_EQ(C.VectorBits, 256u);
            }
            Seen.insert(C.functionName());
          }
        // The search has somewhere to go on every kernel.
        EXPECT_GE(Seen.size(), 3u) << From.functionName();
      }
}

TEST(TuningSpaceTest, DecodePrefetchSpaceHasDistancesAndPatterns) {
  const CpuFeatures Cpu = vnniCpu();
  const KernelSpec From = chooseSpec({4864, 896, 1, WeightType::Q8_0, WeightLayout::Interleaved16}, Cpu);
  std::set<std::pair<unsigned, PrefetchPattern>> Got;
  for (const KernelSpec &C : candidatesAlong(From, TuningAxis::Prefetch, Cpu))
    Got.insert({C.PrefetchBytes, C.Prefetch});
  EXPECT_TRUE(Got.count({0, PrefetchPattern::Lines}));
  EXPECT_TRUE(Got.count({4096, PrefetchPattern::Lines}));
  EXPECT_TRUE(Got.count({16384, PrefetchPattern::PageStart}));
  EXPECT_TRUE(Got.count({4096, PrefetchPattern::LinesAndPage}));
  EXPECT_FALSE(Got.count({From.PrefetchBytes, From.Prefetch}));
}


/// Wisdom's decode entry fixes the numerics of the batch kernels too, even
/// when its prefill entry (measured before, or edited) disagrees.
TEST(WisdomTest, BatchKernelsTakeTheDecodeEntrysNumerics) {
  Wisdom W(hostA());
  WisdomKernel D = decodeEntry(); // 2 accumulator sets; the table's prefill row has 1.
  W.set(D);
  WisdomKernel P = decodeEntry();
  P.Tokens = TokenClass::Prefill;
  P.Accumulators = 1;
  P.TileRows = 32;
  P.TileTokens = 6;
  W.set(P);
  const MatmulShape Prefill{4864, 896, 64, WeightType::Q8_0, WeightLayout::Interleaved16};
  std::string Why;
  KernelSpec S = chooseSpec(Prefill, vnniCpu(), &Why, &W, 2);
  EXPECT_EQ(S.Accumulators, 2u);
  EXPECT_TRUE(S.validate(vnniCpu()).ok()) << S.functionName();
  EXPECT_LE(S.TileTokens * 2 * (2 + 1), 24u); // Refitted to the registers.
  EXPECT_NE(Why.find("batch invariance"), std::string::npos) << Why;
  EXPECT_TRUE(sameNumerics(S, chooseSpec({4864, 896, 1, WeightType::Q8_0, WeightLayout::Interleaved16}, vnniCpu(),
                                         nullptr, &W, 2)));
}

} // namespace
} // namespace lumen::codegen
