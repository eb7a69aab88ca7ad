//===- KernelSpecTest.cpp - Specs, validation and the choice table ---------===//
#include "lumen/Codegen/KernelSpec.h"
#include "lumen/Codegen/KernelABI.h"

#include "gtest/gtest.h"

#include <fstream>
#include <set>
#include <sstream>

using namespace lumen::codegen;

namespace {

CpuFeatures isa(const char *Name) { return *CpuFeatures::forIsa(Name); }

KernelSpec spec(int64_t M, int64_t K, int64_t N = 1) {
  KernelSpec S;
  S.Shape = {M, K, N, WeightType::Q8_0};
  return S;
}

TEST(KernelSpecTest, NamesAreStableAndDistinct) {
  KernelSpec S = spec(4864, 896);
  S.Accumulators = 4;
  EXPECT_EQ(S.functionName(), "lumen_mm_q8_0_m4864_k896_n1_xq8_v512_a4_vnni_r1_t1");
  std::set<std::string> Names;
  for (unsigned Bits : {256u, 512u})
    for (unsigned A : {1u, 2u})
      for (bool V : {false, true})
        for (unsigned R : {1u, 2u}) {
          KernelSpec T = S;
          T.VectorBits = Bits;
          T.Accumulators = A;
          T.VNNI = V;
          T.TileRows = R;
          EXPECT_TRUE(Names.insert(T.functionName()).second) << T.functionName();
        }
  KernelSpec P = S;
  P.Shape.Layout = WeightLayout::Interleaved16;
  P.Accumulators = 1;
  P.TileRows = 16;
  P.Paced = true;
  EXPECT_EQ(P.functionName(), "lumen_mm_q8_0r16_m4864_k896_n1_xq8_v512_a1_vnni_r16_t1_paced");
  P.Paced = false;
  EXPECT_EQ(P.functionName(), "lumen_mm_q8_0r16_m4864_k896_n1_xq8_v512_a1_vnni_r16_t1");
  // The prefetch distance, then its pattern's letters.
  P.PrefetchBytes = 1024;
  EXPECT_EQ(P.functionName(), "lumen_mm_q8_0r16_m4864_k896_n1_xq8_v512_a1_vnni_r16_t1_pf1024");
  P.Prefetch = PrefetchPattern::PageStart;
  EXPECT_EQ(P.functionName(), "lumen_mm_q8_0r16_m4864_k896_n1_xq8_v512_a1_vnni_r16_t1_pf1024pg");
  P.Prefetch = PrefetchPattern::Spread;
  EXPECT_EQ(P.functionName(), "lumen_mm_q8_0r16_m4864_k896_n1_xq8_v512_a1_vnni_r16_t1_pf1024sp");
  P.Prefetch = PrefetchPattern::LinesAndPage;
  EXPECT_EQ(P.functionName(), "lumen_mm_q8_0r16_m4864_k896_n1_xq8_v512_a1_vnni_r16_t1_pf1024lp");
  EXPECT_NE(P.describe().find("prefetch 1024 bytes ahead and the page start 8192"), std::string::npos) << P.describe();
}

TEST(KernelSpecTest, ValidateRejectsBadShapesAndCombinations) {
  CpuFeatures Vnni = isa("avx512-vnni"), Avx2 = isa("avx2");
  EXPECT_TRUE(spec(896, 896).validate(Vnni).ok());
  auto Msg = [&](KernelSpec S, const CpuFeatures &C) { return std::string(S.validate(C).message()); };
  EXPECT_NE(Msg(spec(896, 900), Vnni).find("K must be a multiple of 32"), std::string::npos);
  EXPECT_NE(Msg(spec(0, 896), Vnni).find("must be positive"), std::string::npos);
  EXPECT_NE(Msg(spec(896, 896, -1), Vnni).find("must be positive"), std::string::npos);
  EXPECT_NE(Msg(spec(int64_t(1) << 40, 896), Vnni).find("too large"), std::string::npos);
  EXPECT_NE(Msg(spec(896, 896), Avx2).find("512-bit vectors need AVX-512"), std::string::npos);
  KernelSpec S = spec(896, 896);
  S.VectorBits = 256;
  EXPECT_NE(Msg(S, Avx2).find("VNNI needs AVX512_VNNI"), std::string::npos);
  S.VNNI = false;
  EXPECT_TRUE(S.validate(Avx2).ok());
  S.VectorBits = 512;
  EXPECT_NE(Msg(S, Vnni).find("256-bit vectors only"), std::string::npos);
  S = spec(896, 896);
  S.Activations = ActivationFormat::F32;
  EXPECT_NE(Msg(S, Vnni).find("VNNI needs Q8 activations"), std::string::npos);
  S.VNNI = false;
  EXPECT_TRUE(S.validate(Vnni).ok());
  S.VectorBits = 384;
  EXPECT_NE(Msg(S, Vnni).find("256 or 512"), std::string::npos);
  S = spec(896, 896);
  S.Shape.Weights = WeightType::F16;
  EXPECT_NE(Msg(S, Vnni).find("take f32 activations"), std::string::npos);
  S = spec(896, 896);
  S.TileRows = S.TileTokens = 4;
  S.Accumulators = 2;
  EXPECT_NE(Msg(S, Vnni).find("at most 24"), std::string::npos);
  // Page-start and spread prefetch: with a distance only; spread on
  // interleaved prefill kernels only.
  S = spec(896, 896);
  S.Prefetch = PrefetchPattern::PageStart;
  EXPECT_NE(Msg(S, Vnni).find("page-start and spread prefetch need a prefetch distance"), std::string::npos);
  S.PrefetchBytes = 8192;
  EXPECT_TRUE(S.validate(Vnni).ok());
  S.Prefetch = PrefetchPattern::Spread;
  EXPECT_NE(Msg(S, Vnni).find("spread prefetch is implemented for the interleaved kernels on several tokens"),
            std::string::npos);
  S.Shape.Layout = WeightLayout::Interleaved16;
  S.TileRows = 32;
  S.Accumulators = 1;
  EXPECT_NE(Msg(S, Vnni).find("spread prefetch is implemented"), std::string::npos); // N = 1.
  S.Shape.N = 64;
  S.TileTokens = 6;
  EXPECT_TRUE(S.validate(Vnni).ok());
  S.PrefetchBytes = 0;
  EXPECT_NE(Msg(S, Vnni).find("need a prefetch distance"), std::string::npos);
  // Pacing: interleaved kernels on one token only.
  S = spec(896, 896);
  S.Paced = true;
  EXPECT_NE(Msg(S, Vnni).find("pacing is implemented for the interleaved kernels"), std::string::npos);
  S.Shape.Layout = WeightLayout::Interleaved16;
  S.TileRows = 16;
  S.Accumulators = 1;
  EXPECT_TRUE(S.validate(Vnni).ok());
  S.Shape.N = 8;
  S.TileTokens = 8;
  EXPECT_NE(Msg(S, Vnni).find("pacing is implemented for the interleaved kernels"), std::string::npos);
}

TEST(KernelSpecTest, ChooseSpecFollowsTableAndIsa) {
  std::string Why;
  KernelSpec Decode = chooseSpec({4864, 896, 1, WeightType::Q8_0}, isa("avx512-vnni"), &Why);
  EXPECT_TRUE(Decode.validate(isa("avx512-vnni")).ok());
  EXPECT_EQ(Decode.Shape.N, 1);
  EXPECT_NE(Why.find("table row"), std::string::npos);
  for (const char *Isa : {"avx2", "avx512", "avx512-vnni"})
    for (int64_t N : {1, 2, 3, 7, 64, 512})
      for (WeightType W : {WeightType::Q8_0, WeightType::F16, WeightType::BF16, WeightType::F32}) {
        KernelSpec S = chooseSpec({896, 4864, N, W}, isa(Isa));
        EXPECT_TRUE(S.validate(isa(Isa)).ok()) << Isa << " " << S.functionName();
      }
  KernelSpec OnAvx2 = chooseSpec({896, 896, 1, WeightType::Q8_0}, isa("avx2"));
  EXPECT_EQ(OnAvx2.VectorBits, 256u);
  EXPECT_FALSE(OnAvx2.VNNI);
  KernelSpec Prefill = chooseSpec({896, 896, 512, WeightType::Q8_0}, isa("avx512-vnni"));
  EXPECT_GT(Prefill.TileTokens, 1u);
}

TEST(KernelSpecTest, ChooseLayoutAndInterleavedRows) {
  // The loader's layout per ISA, and a valid table pick for it at every N.
  EXPECT_EQ(chooseLayout(4864, 896, WeightType::Q8_0, isa("avx512-vnni")), WeightLayout::Interleaved16);
  EXPECT_EQ(chooseLayout(4864, 896, WeightType::Q8_0, isa("avx512")), WeightLayout::Interleaved8);
  EXPECT_EQ(chooseLayout(4864, 896, WeightType::Q8_0, isa("avx2")), WeightLayout::Interleaved8);
  EXPECT_EQ(chooseLayout(24, 896, WeightType::Q8_0, isa("avx512-vnni")), WeightLayout::Interleaved8);
  EXPECT_EQ(chooseLayout(12, 896, WeightType::Q8_0, isa("avx512-vnni")), WeightLayout::Rows);
  EXPECT_EQ(chooseLayout(4864, 896, WeightType::F16, isa("avx512-vnni")), WeightLayout::Rows);
  for (const char *Isa : {"avx2", "avx512", "avx512-vnni"})
    for (int64_t K : {32, 96, 896, 4864})
      for (int64_t N : {1, 2, 3, 7, 8, 64}) {
        MatmulShape Sh{4864, K, N, WeightType::Q8_0, chooseLayout(4864, K, WeightType::Q8_0, isa(Isa))};
        KernelSpec S = chooseSpec(Sh, isa(Isa));
        EXPECT_TRUE(S.validate(isa(Isa)).ok()) << Isa << " " << S.functionName();
      }
  // Prefill on Interleaved16 prefetches the next row tile: its distance is
  // the tile's bytes (whole lines).
  KernelSpec Gate = chooseSpec({4864, 896, 64, WeightType::Q8_0, WeightLayout::Interleaved16}, isa("avx512-vnni"));
  EXPECT_EQ(Gate.PrefetchBytes, 16u * 28 * 34);
  KernelSpec Down = chooseSpec({896, 4864, 64, WeightType::Q8_0, WeightLayout::Interleaved16}, isa("avx512-vnni"));
  EXPECT_EQ(Down.PrefetchBytes, 16u * 152 * 34);
  // Decode is paced on Interleaved16 (measured on Zen 4); prefill never.
  EXPECT_TRUE(chooseSpec({4864, 896, 1, WeightType::Q8_0, WeightLayout::Interleaved16}, isa("avx512-vnni")).Paced);
  EXPECT_FALSE(Gate.Paced);
  EXPECT_FALSE(chooseSpec({4864, 896, 1, WeightType::Q8_0, WeightLayout::Interleaved8}, isa("avx2")).Paced);
  // Decode prefetches in software on the AVX2 hosts only.
  EXPECT_EQ(chooseSpec({4864, 896, 1, WeightType::Q8_0, WeightLayout::Interleaved16}, isa("avx512-vnni")).PrefetchBytes, 0u);
  EXPECT_EQ(chooseSpec({4864, 896, 1, WeightType::Q8_0, WeightLayout::Interleaved8}, isa("avx512-vnni")).PrefetchBytes, 0u);
  EXPECT_EQ(chooseSpec({4864, 896, 1, WeightType::Q8_0, WeightLayout::Interleaved8}, isa("avx2")).PrefetchBytes, 1024u);
}

TEST(KernelSpecTest, Zen5RowsShadowTheVnniRows) {
  // Zen 5 (two vpdpbusd a cycle) takes 32x6 prefill tiles, other VNNI hosts
  // 16x8; its decode is unpaced and prefetches the page start 8 KB ahead.
  CpuFeatures Zen5 = isa("avx512-vnni");
  Zen5.CpuName = "znver5";
  std::string Why;
  KernelSpec Gate = chooseSpec({4864, 896, 64, WeightType::Q8_0, WeightLayout::Interleaved16}, Zen5, &Why);
  EXPECT_EQ(Gate.TileRows, 32u);
  EXPECT_EQ(Gate.TileTokens, 6u);
  EXPECT_EQ(Gate.PrefetchBytes, 32u * 28 * 34); // The next row tile: two groups on,
  EXPECT_EQ(Gate.Prefetch, PrefetchPattern::Spread); // spread over the token tiles.
  EXPECT_NE(Gate.functionName().find("_pf30464sp"), std::string::npos) << Gate.functionName();
  EXPECT_NE(Gate.describe().find("prefetch the row tile, spread, 30464 bytes ahead"), std::string::npos)
      << Gate.describe();
  EXPECT_NE(Why.find("zen5"), std::string::npos) << Why;
  EXPECT_TRUE(Gate.validate(Zen5).ok());
  KernelSpec Other = chooseSpec({4864, 896, 64, WeightType::Q8_0, WeightLayout::Interleaved16}, isa("avx512-vnni"));
  EXPECT_EQ(Other.TileRows, 16u);
  EXPECT_EQ(Other.TileTokens, 8u);
  EXPECT_EQ(Other.Prefetch, PrefetchPattern::Lines); // Zen 4's row, as measured there.
  KernelSpec Decode = chooseSpec({4864, 896, 1, WeightType::Q8_0, WeightLayout::Interleaved16}, Zen5);
  EXPECT_FALSE(Decode.Paced);
  EXPECT_EQ(Decode.PrefetchBytes, 8192u);
  EXPECT_EQ(Decode.Prefetch, PrefetchPattern::PageStart);
  EXPECT_TRUE(Decode.validate(Zen5).ok());
  EXPECT_NE(Decode.functionName().find("_pf8192pg"), std::string::npos) << Decode.functionName();
  EXPECT_NE(Decode.describe().find("prefetch the page start 8192 bytes ahead"), std::string::npos) << Decode.describe();
  // Small batches (2..8 tokens, a server's decode steps): one 16x8 tile
  // holds every token, every line prefetched 4 KB ahead and the page start 8 KB.
  for (int64_t N : {2, 7, 8}) {
    MatmulShape Sh{4864, 896, N, WeightType::Q8_0, WeightLayout::Interleaved16};
    KernelSpec Small = chooseSpec(Sh, Zen5, &Why);
    EXPECT_EQ(Small.TileRows, 16u) << N;
    EXPECT_EQ(Small.TileTokens, 8u) << N;
    EXPECT_EQ(Small.PrefetchBytes, 4096u) << N;
    EXPECT_EQ(Small.Prefetch, PrefetchPattern::LinesAndPage) << N;
    EXPECT_NE(Why.find("batch, interleaved16, zen5"), std::string::npos) << Why;
    EXPECT_TRUE(Small.validate(Zen5).ok());
  }
  EXPECT_EQ(chooseSpec({4864, 896, 9, WeightType::Q8_0, WeightLayout::Interleaved16}, Zen5).TileRows, 32u);
  // A znver5 name without VNNI (an --isa level below it) falls through.
  CpuFeatures NoVnni = isa("avx512");
  NoVnni.CpuName = "znver5";
  EXPECT_EQ(chooseSpec({4864, 896, 64, WeightType::Q8_0, WeightLayout::Interleaved8}, NoVnni).TileRows, 8u);
}

TEST(KernelSpecTest, IsaNames) {
  EXPECT_FALSE(CpuFeatures::forIsa("sse2").ok());
  EXPECT_EQ(isa("avx2").featureString().find("+avx512"), std::string::npos);
  EXPECT_NE(isa("avx2").featureString().find("-avx512f"), std::string::npos);
  EXPECT_NE(isa("avx512-vnni").featureString().find("+avx512vnni"), std::string::npos);
}

TEST(KernelSpecTest, IsaRunsOnHostsThatHaveIt) {
  // Every level runs on itself and on the levels above it.
  const char *Levels[] = {"avx2", "avx512", "avx512-vnni"};
  for (int A = 0; A < 3; ++A)
    for (int B = 0; B < 3; ++B)
      EXPECT_EQ(isa(Levels[A]).runsOn(isa(Levels[B])).ok(), A <= B) << Levels[A] << " on " << Levels[B];
  absl::Status S = isa("avx512-vnni").runsOn(isa("avx512"));
  EXPECT_NE(S.message().find("lacks AVX512_VNNI"), std::string::npos) << S;
  S = isa("avx512").runsOn(isa("avx2"));
  EXPECT_NE(S.message().find("lacks AVX-512"), std::string::npos) << S;
  S = isa("avx512-vnni").runsOn(isa("avx2"));
  EXPECT_NE(S.message().find("lacks AVX-512"), std::string::npos) << S;
  EXPECT_TRUE(isa("avx2").runsOn(isa("avx512")).ok());
  CpuFeatures NoF16C = isa("avx2");
  NoF16C.F16C = false;
  EXPECT_FALSE(isa("avx2").runsOn(NoF16C).ok());
  // A host that lacks any one feature refuses code that uses it.
  for (bool CpuFeatures::*F : {&CpuFeatures::AVX2, &CpuFeatures::FMA, &CpuFeatures::F16C, &CpuFeatures::AVX512,
                               &CpuFeatures::VNNI}) {
    CpuFeatures Lacking = isa("avx512-vnni");
    Lacking.*F = false;
    EXPECT_FALSE(isa("avx512-vnni").runsOn(Lacking).ok()) << Lacking.featureString();
  }
}

/// The flags of /proc/cpuinfo's first processor (none if it cannot be read).
std::set<std::string> cpuinfoFlags() {
  std::ifstream In("/proc/cpuinfo");
  std::set<std::string> Flags;
  for (std::string Line; std::getline(In, Line);)
    if (Line.rfind("flags", 0) == 0) {
      std::istringstream S(Line.substr(Line.find(':') + 1));
      for (std::string F; S >> F;)
        Flags.insert(F);
      break;
    }
  return Flags;
}

TEST(KernelSpecTest, HostFeaturesAreTheKernelsView) {
  // What LLVM detects is what the kernel's /proc/cpuinfo reports (both from
  // CPUID, with the OS's AVX-512 state support).
  const std::set<std::string> Flags = cpuinfoFlags();
  if (Flags.empty())
    GTEST_SKIP() << "no /proc/cpuinfo flags";
  auto Has = [&](const char *F) { return Flags.count(F) != 0; };
  const CpuFeatures Host = CpuFeatures::host();
  EXPECT_EQ(Host.AVX2, Has("avx2"));
  EXPECT_EQ(Host.FMA, Has("fma"));
  EXPECT_EQ(Host.F16C, Has("f16c"));
  const bool Avx512 = Has("avx512f") && Has("avx512bw") && Has("avx512vl") && Has("avx512dq");
  EXPECT_EQ(Host.AVX512, Avx512);
  EXPECT_EQ(Host.VNNI, Avx512 && Has("avx512_vnni"));
  // Each level runs on the host exactly when cpuinfo lists what it uses.
  const bool Avx2 = Has("avx2") && Has("fma") && Has("f16c");
  EXPECT_EQ(isa("avx2").runsOn(Host).ok(), Avx2);
  EXPECT_EQ(isa("avx512").runsOn(Host).ok(), Avx2 && Avx512);
  EXPECT_EQ(isa("avx512-vnni").runsOn(Host).ok(), Avx2 && Avx512 && Has("avx512_vnni"));
}

} // namespace

namespace {

/// Every (host, weight type, layout) the table serves, at every batch size.
TEST(KernelSpecTest, BatchKernelsKeepTheOneTokenKernelsNumerics) {
  std::vector<CpuFeatures> Hosts = {isa("avx2"), isa("avx512"), isa("avx512-vnni")};
  CpuFeatures Zen5 = isa("avx512-vnni");
  Zen5.CpuName = "znver5";
  Hosts.push_back(Zen5);
  int Checked = 0;
  for (const CpuFeatures &Cpu : Hosts)
    for (int W = 0; W <= int(WeightType::Q6_K); ++W)
      for (WeightLayout L : {WeightLayout::Rows, WeightLayout::Interleaved8, WeightLayout::Interleaved16})
        for (auto [M, K] : {std::pair<int64_t, int64_t>{896, 4864}, {4864, 896}, {1000, 1536}}) {
          const MatmulShape One{M, K, 1, WeightType(W), L};
          if (!validateShape(One).ok() || !layoutSupports(L, One.Weights, M, K) ||
              (L == WeightLayout::Interleaved16 && !Cpu.VNNI))
            continue;
          const KernelSpec D = chooseSpec(One, Cpu);
          ASSERT_TRUE(D.validate(Cpu).ok()) << D.functionName();
          for (int64_t N : {2, 3, 5, 7, 8, 9, 64, 100, 512}) {
            MatmulShape Batch = One;
            Batch.N = N;
            std::string Why;
            const KernelSpec S = chooseSpec(Batch, Cpu, &Why);
            EXPECT_TRUE(S.validate(Cpu).ok()) << S.functionName() << ": " << Why;
            EXPECT_TRUE(sameNumerics(S, D)) << S.functionName() << " vs " << D.functionName();
            ++Checked;
          }
        }
  EXPECT_GT(Checked, 500);
}

TEST(KernelSpecTest, SameNumericsIgnoresTilesPrefetchAndPacing) {
  KernelSpec A = spec(896, 896, 64), B = A;
  B.TileRows = 4;
  B.TileTokens = 3;
  B.PrefetchBytes = 4096;
  B.Prefetch = PrefetchPattern::PageStart;
  B.Shape.N = 1;
  EXPECT_TRUE(sameNumerics(A, B));
  for (auto Change : {+[](KernelSpec &S) { S.Accumulators = 3; }, +[](KernelSpec &S) { S.VectorBits = 256; },
                      +[](KernelSpec &S) { S.VNNI = !S.VNNI; },
                      +[](KernelSpec &S) { S.Activations = ActivationFormat::F32; },
                      +[](KernelSpec &S) { S.SuperBlockScales = true; }}) {
    KernelSpec C = A;
    Change(C);
    EXPECT_FALSE(sameNumerics(A, C)) << C.functionName();
  }
}

} // namespace
