//===- MatmulKernelTest.cpp - JIT kernels against the scalar references ----===//
//
// Every variant (width x accumulators x VNNI x activation format x tiles)
// over the Qwen2.5-0.5B shapes and edge shapes: the int8 and f32 kernels
// equal the operation-for-operation replay bit for bit, and the plain
// double-precision product within the error quantization allows.
//
//===----------------------------------------------------------------------===//
#include "KernelTestUtil.h"

#include "lumen/Codegen/Emulation.h"
#include "lumen/Codegen/KernelBuilder.h"
#include "lumen/Codegen/Reference.h"
#include "lumen/Runtime/ThreadPool.h"

#include "absl/strings/str_format.h"
#include "gtest/gtest.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>

#include "llvm/IR/LLVMContext.h"
#include "llvm/IR/Module.h"

using namespace lumen;
using namespace lumen::codegen;

namespace {

struct Case {
  int64_t M, K, N;
};

enum class Sweep { Wide, Narrow, Chosen };

/// The variants to try for one shape on this host.
std::vector<KernelSpec> variants(const MatmulShape &Shape, Sweep How,
                                 const CpuFeatures &Cpu = test::sharedCache().jit().cpu()) {
  std::vector<KernelSpec> Out;
  if (How == Sweep::Chosen) { // The table's picks for both layouts, and the f32 counterpart.
    MatmulShape Interleaved = Shape;
    Interleaved.Layout = chooseLayout(Shape.M, Shape.K, Shape.Weights, Cpu);
    if (Interleaved.Layout != Shape.Layout)
      Out.push_back(chooseSpec(Interleaved, Cpu));
    KernelSpec S = chooseSpec(Shape, Cpu);
    Out.push_back(S);
    S.Activations = ActivationFormat::F32;
    S.VNNI = false;
    Out.push_back(S);
    return Out;
  }
  bool Wide = How == Sweep::Wide;
  using Tiles = std::vector<std::pair<unsigned, unsigned>>;
  auto TilesFor = [&](WeightLayout L) {
    switch (L) {
    case WeightLayout::Interleaved8:
      return Wide ? Tiles{{8, 1}, {16, 1}, {8, 4}, {16, 2}} : Tiles{{8, 1}, {8, 3}};
    case WeightLayout::Interleaved16:
      return Wide ? Tiles{{16, 1}, {32, 1}, {16, 8}, {32, 3}, {32, 6}} : Tiles{{16, 1}, {16, 5}};
    case WeightLayout::Rows: break;
    }
    return Wide ? Tiles{{1, 1}, {3, 1}, {2, 4}, {4, 4}} : Tiles{{1, 1}, {4, 4}};
  };
  for (WeightLayout L : {WeightLayout::Rows, WeightLayout::Interleaved8, WeightLayout::Interleaved16})
    for (ActivationFormat A : {ActivationFormat::Q8, ActivationFormat::F32})
      for (unsigned Bits : {256u, 512u})
        for (bool Vnni : {false, true})
          for (unsigned Acc : Wide ? std::vector<unsigned>{1, 2, 4} : std::vector<unsigned>{2})
            for (auto [R, T] : TilesFor(L)) {
              KernelSpec S;
              S.Shape = Shape;
              S.Shape.Layout = L;
              S.Activations = A;
              S.VectorBits = Bits;
              S.VNNI = Vnni;
              S.Accumulators = Acc;
              S.TileRows = R;
              S.TileTokens = Shape.N == 1 ? 1 : T;
              S.PrefetchBytes = Acc >= 2 ? 1024 : 0; // Prefetching never changes results,
              S.Prefetch = Acc == 2 && Wide ? PrefetchPattern::PageStart // nor does its extent,
                           : Acc == 4       ? PrefetchPattern::LinesAndPage
                                            : PrefetchPattern::Lines;
              if (S.validate(Cpu).ok() && std::find(Out.begin(), Out.end(), S) == Out.end())
                Out.push_back(S);
              // nor spreading the next row tile's lines over the token tiles
              // (the last slots point past the matrix: prefetches never fault).
              KernelSpec Spread = S;
              Spread.Prefetch = PrefetchPattern::Spread;
              Spread.PrefetchBytes = R * weightRowBytes(Shape.Weights, Shape.K) / 64 * 64;
              if (Spread.validate(Cpu).ok() && std::find(Out.begin(), Out.end(), Spread) == Out.end())
                Out.push_back(Spread);
              // A scale per 256 activations (interleaved K-quants).
              KernelSpec Wide256 = S;
              Wide256.SuperBlockScales = true;
              if (Wide256.validate(Cpu).ok() && std::find(Out.begin(), Out.end(), Wide256) == Out.end())
                Out.push_back(Wide256);
              // Nor does pacing (interleaved kernels on one token): both forms are
              // checked bit for bit against the replay.
              S.Paced = true;
              if (S.validate(Cpu).ok() && std::find(Out.begin(), Out.end(), S) == Out.end())
                Out.push_back(S);
            }
  return Out;
}

/// Plain-math tolerance for one output: activation rounding (half a quant
/// step per element), fp16 scale rounding, and f32 accumulation.
double tolerance(const KernelSpec &S, const std::vector<float> &WDeq, const float *X, int64_t R) {
  const int64_t K = S.Shape.K, Group = S.SuperBlockScales ? 256 : 32; // Elements an activation scale covers.
  double Bound = 0, Mag = 0;
  for (int64_t B = 0; B < K / 32; ++B) {
    double AMax = 0, WAbs = 0;
    for (int64_t I = B * 32 / Group * Group; I < (B * 32 / Group + 1) * Group; ++I)
      AMax = std::max(AMax, double(std::fabs(X[I])));
    for (int I = 0; I < 32; ++I) {
      WAbs += std::fabs(WDeq[R * K + B * 32 + I]);
      Mag += std::fabs(WDeq[R * K + B * 32 + I] * X[B * 32 + I]);
    }
    if (S.Activations == ActivationFormat::Q8)
      Bound += WAbs * AMax / 254.0;
  }
  return Bound + Mag * (S.Activations == ActivationFormat::Q8 ? 1e-3 : 1e-5) + 1e-6;
}

using KernelGetter = std::function<MatmulFn(const KernelSpec &)>;

MatmulFn fromSharedCache(const KernelSpec &S) {
  auto Fn = test::sharedCache().getMatmul(S);
  EXPECT_TRUE(Fn.ok()) << Fn.status();
  return Fn.ok() ? *Fn : nullptr;
}

void checkSpecs(const Case &C, WeightType WT, const std::vector<KernelSpec> &Specs,
                const KernelGetter &Get) {
  runtime::KernelCache &Cache = test::sharedCache();
  MatmulShape Shape{C.M, C.K, C.N, WT};
  std::vector<uint8_t> W = test::randomWeights(WT, C.M, C.K, 1 + C.M + C.K);
  std::vector<float> X = test::randomActivations(C.N, C.K, 2 + C.N);
  std::vector<float> WDeq(C.M * C.K);
  for (int64_t R = 0; R < C.M; ++R)
    gguf::dequantizeRow(tensorType(WT), W.data() + R * weightRowBytes(WT, C.K), WDeq.data() + R * C.K, C.K);

  // The JIT quantizer equals the scalar one byte for byte.
  std::vector<uint8_t> Xq(activationBytes(ActivationFormat::Q8, C.K, C.N));
  std::vector<uint8_t> XqRef(Xq.size());
  referenceQuantize(C.K, C.N, X.data(), XqRef.data());
  auto Quantize = Cache.getQuantize(C.K);
  ASSERT_TRUE(Quantize.ok()) << Quantize.status();
  (*Quantize)(X.data(), Xq.data(), 0, C.N);
  ASSERT_EQ(std::memcmp(Xq.data(), XqRef.data(), Xq.size()), 0) << "quantizer K=" << C.K;
  // And with a scale per 256 (the K-quant kernels' SuperBlockScales).
  std::vector<uint8_t> Xq256(Xq.size());
  if (C.K % 256 == 0) {
    referenceQuantize(C.K, C.N, X.data(), XqRef.data(), 256);
    auto Quantize256 = Cache.getQuantize(C.K, 256);
    ASSERT_TRUE(Quantize256.ok()) << Quantize256.status();
    (*Quantize256)(X.data(), Xq256.data(), 0, C.N);
    ASSERT_EQ(std::memcmp(Xq256.data(), XqRef.data(), Xq.size()), 0) << "quantizer K=" << C.K << " a scale per 256";
  }

  std::vector<float> Plain(C.N * C.M);
  plainMatmul(Shape, W.data(), X.data(), Plain.data());
  for (const KernelSpec &S : Specs) {
    SCOPED_TRACE(S.functionName());
    MatmulFn Fn = Get(S);
    ASSERT_NE(Fn, nullptr);
    const void *Act = S.SuperBlockScales                     ? static_cast<const void *>(Xq256.data())
                      : S.Activations == ActivationFormat::Q8 ? static_cast<const void *>(Xq.data())
                                                              : static_cast<const void *>(X.data());
    // The kernel and its replay read the weights in the spec's layout.
    std::vector<uint8_t> WL = W;
    if (S.Shape.Layout != WeightLayout::Rows)
      repackWeights(WT, W.data(), WL.data(), S.Shape.Layout, C.M, C.K, 0, C.M);
    std::vector<float> Y(C.N * C.M, NAN), Replay(C.N * C.M);
    Fn(WL.data(), Act, Y.data(), 0, C.M);
    replayMatmul(S, WL.data(), Act, Replay.data());
    int Mismatch = 0;
    for (int64_t I = 0; I < C.N * C.M; ++I)
      if (std::memcmp(&Y[I], &Replay[I], 4) != 0 && Mismatch++ < 3)
        ADD_FAILURE() << "output " << I << ": jit " << Y[I] << " replay " << Replay[I];
    ASSERT_EQ(Mismatch, 0);
    for (int64_t T = 0; T < C.N; ++T)
      for (int64_t R = 0; R < C.M; ++R) {
        double Tol = tolerance(S, WDeq, X.data() + T * C.K, R);
        ASSERT_NEAR(Y[T * C.M + R], Plain[T * C.M + R], Tol) << "token " << T << " row " << R;
      }
  }
}

void checkShape(const Case &C, WeightType WT, Sweep How) {
  checkSpecs(C, WT, variants({C.M, C.K, C.N, WT}, How), fromSharedCache);
}

TEST(MatmulKernelTest, QwenShapesDecode) {
  for (Case C : {Case{896, 896, 1}, Case{128, 896, 1}, Case{4864, 896, 1}, Case{896, 4864, 1}})
    checkShape(C, WeightType::Q8_0, Sweep::Wide);
}

TEST(MatmulKernelTest, QwenShapesPrefill) {
  for (Case C : {Case{896, 896, 9}, Case{128, 896, 16}, Case{896, 4864, 5}})
    checkShape(C, WeightType::Q8_0, Sweep::Narrow);
}

TEST(MatmulKernelTest, LmHeadShape) {
  // 896 -> 151936 (the tied embedding as lm_head): the largest matrix.
  checkShape({151936, 896, 1}, WeightType::Q8_0, Sweep::Chosen);
}

TEST(MatmulKernelTest, EdgeShapes) {
  // K = 32 (one block, a tail on two-block steps), M = 1, M not a multiple
  // of the row tile, and every token count from 1 to 17.
  // Interleaved kernels: one row group, and group counts not a multiple of
  // a two-group tile (8-row groups: 24, 40; 16-row groups: 16, 48, 80).
  for (Case C : {Case{1, 32, 1}, Case{5, 32, 3}, Case{7, 96, 2}, Case{13, 160, 1}, Case{8, 32, 1},
                 Case{24, 96, 2}, Case{40, 160, 5}, Case{16, 32, 1}, Case{48, 96, 9}, Case{80, 160, 3}})
    checkShape(C, WeightType::Q8_0, Sweep::Wide);
  for (int64_t N = 1; N <= 17; ++N) {
    checkShape({11, 64, N}, WeightType::Q8_0, Sweep::Narrow);
    checkShape({24, 64, N}, WeightType::Q8_0, Sweep::Narrow);
    checkShape({32, 64, N}, WeightType::Q8_0, Sweep::Narrow);
  }
}

TEST(MatmulKernelTest, FloatWeights) {
  for (WeightType W : {WeightType::F16, WeightType::BF16, WeightType::F32})
    for (Case C : {Case{9, 96, 1}, Case{33, 896, 3}})
      checkShape(C, W, Sweep::Narrow);
}

/// The quantized types of llama.cpp's presets, as their int8 kernels read them.
constexpr WeightType kBlockTypes[] = {WeightType::Q4_0, WeightType::Q4_1, WeightType::Q5_0,
                                      WeightType::Q5_1, WeightType::IQ4_NL, WeightType::Q2_K,
                                      WeightType::Q3_K, WeightType::Q4_K, WeightType::Q5_K,
                                      WeightType::Q6_K};

/// Shapes for a block type: one block, an odd number of blocks (a tail on
/// two-block steps), a Qwen row length; M not a multiple of any tile.
std::vector<Case> blockCases(WeightType W, std::initializer_list<int64_t> Tokens) {
  const int64_t E = weightBlockElements(W);
  std::vector<Case> Out;
  for (int64_t N : Tokens)
    for (Case C : {Case{5, E, N}, Case{13, 3 * E, N}, Case{33, E == 32 ? 896 : 1792, N}, Case{48, 3 * E, N}})
      Out.push_back(C);
  return Out;
}

TEST(MatmulKernelTest, BlockTypesDecodeAndPrefill) {
  for (WeightType W : kBlockTypes) {
    SCOPED_TRACE(weightTypeName(W));
    for (Case C : blockCases(W, {1, 3, 9}))
      checkShape(C, W, C.N == 1 && C.M == 13 ? Sweep::Wide : Sweep::Narrow);
  }
}

TEST(MatmulKernelTest, BlockTypesChosenForQwenShapes) {
  for (WeightType W : kBlockTypes)
    for (int64_t N : {1, 16}) {
      SCOPED_TRACE(weightTypeName(W));
      const int64_t K = weightBlockElements(W) == 256 ? 1536 : 896;
      // The table's kernels for the row layout and for the layout the loader
      // repacks this type into.
      const CpuFeatures &Cpu = test::sharedCache().jit().cpu();
      std::vector<KernelSpec> Specs = {chooseSpec({256, K, N, W}, Cpu)};
      const WeightLayout L = chooseLayout(256, K, W, Cpu);
      if (L != WeightLayout::Rows)
        Specs.push_back(chooseSpec({256, K, N, W, L}, Cpu));
      checkSpecs({256, K, N}, W, Specs, fromSharedCache);
    }
}

TEST(MatmulKernelTest, Avx512KernelsUnderVnniEmulation) {
  // The 512-bit and VNNI kernels, with vpdpbusd rewritten to generic IR and
  // compiled for this host: their lane layout, bias trick, two-block steps
  // and tail blocks are checked here even where the CPU lacks AVX-512.
  CpuFeatures Vnni = *CpuFeatures::forIsa("avx512-vnni");
  auto J = runtime::Jit::create();
  ASSERT_TRUE(J.ok());
  unsigned Rewritten = 0;
  KernelGetter Emulated = [&](const KernelSpec &S) -> MatmulFn {
    llvm::LLVMContext Ctx;
    auto M = buildKernel(Ctx, S, Vnni);
    EXPECT_TRUE(M.ok()) << M.status();
    if (!M.ok()) return nullptr;
    unsigned N = 0;
    EXPECT_TRUE(emulateVnni(**M, (*J)->cpu(), &N).ok());
    Rewritten += N;
    auto P = (*J)->compile(std::move(*M), S.functionName());
    EXPECT_TRUE(P.ok()) << P.status();
    return P.ok() ? reinterpret_cast<MatmulFn>(*P) : nullptr;
  };
  for (auto [C, How] : {std::pair{Case{896, 896, 1}, Sweep::Narrow}, {Case{128, 896, 3}, Sweep::Narrow},
                        {Case{64, 4864, 1}, Sweep::Narrow}, {Case{7, 32, 2}, Sweep::Wide},
                        {Case{13, 96, 5}, Sweep::Wide}, {Case{9, 160, 17}, Sweep::Narrow},
                        {Case{24, 96, 5}, Sweep::Wide}, {Case{48, 96, 9}, Sweep::Wide},
                        {Case{80, 160, 3}, Sweep::Wide}}) {
    std::vector<KernelSpec> Specs;
    for (const KernelSpec &S : variants({C.M, C.K, C.N, WeightType::Q8_0}, How, Vnni))
      if (S.VectorBits == 512 || S.VNNI)
        Specs.push_back(S);
    checkSpecs(C, WeightType::Q8_0, Specs, Emulated);
  }
  // Every block type's 512-bit and VNNI kernels: their zero-point starts,
  // minima and two-sub-block groups.
  // (An odd number of blocks: two-block steps and a tail in rows; 16-row
  // groups, three of them, interleaved.)
  for (WeightType W : kBlockTypes)
    for (Case C : {Case{48, 3 * weightBlockElements(W), 2}}) {
      SCOPED_TRACE(weightTypeName(W));
      std::vector<KernelSpec> Specs;
      for (const KernelSpec &S : variants({C.M, C.K, C.N, W}, Sweep::Narrow, Vnni))
        if (S.VectorBits == 512 || S.VNNI)
          Specs.push_back(S);
      ASSERT_FALSE(Specs.empty());
      checkSpecs(C, W, Specs, Emulated);
    }
  EXPECT_GT(Rewritten, 50u);
}

TEST(MatmulKernelTest, QuantizerOnEveryIsaEqualsReference) {
  // The quantizer's Bias8 comes from vpdpbusd with VNNI and from
  // pmaddubsw + pmaddwd without: both equal the scalar quantizer byte for
  // byte (VNNI emulated where the host lacks it).
  for (const char *Isa : {"avx2", "avx512-vnni"})
    for (int64_t K : {32, 96, 896, 4864}) {
      auto J = runtime::Jit::create(); // One per kernel: the symbol names repeat.
      ASSERT_TRUE(J.ok());
      SCOPED_TRACE(testing::Message() << Isa << " K=" << K);
      CpuFeatures Target = *CpuFeatures::forIsa(Isa);
      llvm::LLVMContext Ctx;
      auto M = buildQuantizeKernel(Ctx, K, Target);
      ASSERT_TRUE(M.ok()) << M.status();
      ASSERT_TRUE(emulateVnni(**M, (*J)->cpu()).ok());
      auto P = (*J)->compile(std::move(*M), quantizeFunctionName(K));
      ASSERT_TRUE(P.ok()) << P.status();
      const int64_t N = 5;
      std::vector<float> X = test::randomActivations(N, K, 9 + K);
      X[3] = 0.0f; // Zero and a whole zero block: the scale-0 path.
      std::fill_n(X.begin() + K, 32, 0.0f);
      std::vector<uint8_t> Got(activationBytes(ActivationFormat::Q8, K, N)), Want(Got.size());
      reinterpret_cast<QuantizeFn>(*P)(X.data(), Got.data(), 0, N);
      referenceQuantize(K, N, X.data(), Want.data());
      EXPECT_EQ(std::memcmp(Got.data(), Want.data(), Got.size()), 0);
    }
}

TEST(MatmulKernelTest, BlockQuantizerWritesItsBlocksAsTheRowQuantizerDoes) {
  // Every field of the blocks asked for, byte for byte as the whole-row
  // quantizer writes them, for every token; every other byte untouched.
  for (const char *Isa : {"avx2", "avx512-vnni"})
    for (int64_t K : {96, 4864}) {
      auto J = runtime::Jit::create();
      ASSERT_TRUE(J.ok());
      SCOPED_TRACE(testing::Message() << Isa << " K=" << K);
      CpuFeatures Target = *CpuFeatures::forIsa(Isa);
      llvm::LLVMContext Ctx;
      auto M = buildQuantizeKernel(Ctx, K, Target, /*Blocks=*/true);
      ASSERT_TRUE(M.ok()) << M.status();
      ASSERT_TRUE(emulateVnni(**M, (*J)->cpu()).ok());
      auto P = (*J)->compile(std::move(*M), quantizeBlocksFunctionName(K));
      ASSERT_TRUE(P.ok()) << P.status();
      auto Fn = reinterpret_cast<QuantizeBlocksFn>(*P);
      const int64_t N = 3, Blocks = K / 32, Row = q8RowBytes(K);
      std::vector<float> X = test::randomActivations(N, K, 21 + K);
      std::fill_n(X.begin() + K + 32, 32, 0.0f); // A zero block: the scale-0 path.
      std::vector<uint8_t> Want(activationBytes(ActivationFormat::Q8, K, N));
      referenceQuantize(K, N, X.data(), Want.data());
      // Which bytes of a row belong to block b (KernelABI.h's Q8 layout).
      auto InBlock = [&](int64_t Byte, int64_t B) {
        if (Byte < K) return Byte / 32 == B;
        if (Byte < 3 * K) return (Byte - K) % K / 32 == B; // Scale8, Bias8: 8 x 4 bytes a block.
        return (Byte - 3 * K) % (K / 8) / 4 == B;
      };
      const int64_t Mid = Blocks / 3, End = Blocks - 1;
      std::vector<uint8_t> Got(Want.size(), 0xA5);
      Fn(X.data(), Got.data(), N, Mid, End);
      for (int64_t T = 0; T < N; ++T)
        for (int64_t Byte = 0; Byte < Row; ++Byte) {
          bool Written = false;
          for (int64_t B = Mid; B < End; ++B)
            Written |= InBlock(Byte, B);
          ASSERT_EQ(Got[T * Row + Byte], Written ? Want[T * Row + Byte] : 0xA5)
              << "token " << T << " byte " << Byte;
        }
      // The rest in two more ranges (one empty) completes every row.
      Fn(X.data(), Got.data(), N, 0, Mid);
      Fn(X.data(), Got.data(), N, End, End);
      Fn(X.data(), Got.data(), N, End, Blocks);
      EXPECT_EQ(std::memcmp(Got.data(), Want.data(), Got.size()), 0);
    }
}

TEST(MatmulKernelTest, RowRangesAndThreadsAgree) {
  // A pool splitting the rows gives the same bits as one call over all rows,
  // and a call over a sub-range writes exactly that range.
  const Case C{4864, 896, 3};
  MatmulShape Shape{C.M, C.K, C.N, WeightType::Q8_0};
  std::vector<uint8_t> W = test::randomWeights(WeightType::Q8_0, C.M, C.K, 5);
  std::vector<float> X = test::randomActivations(C.N, C.K, 6);
  std::vector<uint8_t> Xq(activationBytes(ActivationFormat::Q8, C.K, C.N));
  referenceQuantize(C.K, C.N, X.data(), Xq.data());
  for (const KernelSpec &S : variants(Shape, Sweep::Narrow)) {
    if (S.Activations != ActivationFormat::Q8)
      continue;
    SCOPED_TRACE(S.functionName());
    auto Fn = *test::sharedCache().getMatmul(S);
    // Interleaved kernels take row ranges at multiples of their group (KernelABI.h).
    const bool Groups = S.Shape.Layout != WeightLayout::Rows;
    const int64_t Grain = Groups ? 96 : 100, First = Groups ? 1008 : 1001, Last = Groups ? 2000 : 2002;
    std::vector<uint8_t> WL = W;
    if (Groups)
      repackWeights(WeightType::Q8_0, W.data(), WL.data(), S.Shape.Layout, C.M, C.K, 0, C.M);
    std::vector<float> One(C.N * C.M), Split(C.N * C.M), Part(C.N * C.M, -1.0f);
    Fn(WL.data(), Xq.data(), One.data(), 0, C.M);
    for (unsigned Threads : {2u, 3u}) {
      runtime::ThreadPool Pool(Threads);
      for (int Rep = 0; Rep < 3; ++Rep)
        Pool.parallelFor(C.M, Grain, [&](int64_t B, int64_t E) {
          Fn(WL.data(), Xq.data(), Split.data(), B, E);
        });
      EXPECT_EQ(std::memcmp(One.data(), Split.data(), One.size() * 4), 0) << Threads << " threads";
    }
    Fn(WL.data(), Xq.data(), Part.data(), First, Last);
    for (int64_t T = 0; T < C.N; ++T)
      for (int64_t R = 0; R < C.M; ++R) {
        float Want = R >= First && R < Last ? One[T * C.M + R] : -1.0f;
        ASSERT_EQ(Part[T * C.M + R], Want) << "token " << T << " row " << R;
      }
  }
}

} // namespace

namespace {

/// Batch invariance (chooseSpec): the chosen kernel for a batch of N tokens
/// gives each token exactly the outputs the chosen one-token kernel gives
/// it alone, bit for bit, for every weight type and layout, on this host's
/// ISA and the narrower ones it can run.
TEST(MatmulKernelTest, ChosenBatchKernelsEqualTheOneTokenKernelBitForBit) {
  runtime::KernelCache &Cache = test::sharedCache();
  const CpuFeatures Host = Cache.jit().cpu();
  std::vector<CpuFeatures> Targets = {Host};
  for (const char *Isa : {"avx2", "avx512"}) {
    CpuFeatures T = *CpuFeatures::forIsa(Isa);
    if ((!T.AVX512 || Host.AVX512) && T.isaName() != Host.isaName())
      Targets.push_back(T);
  }
  for (const CpuFeatures &Cpu : Targets)
    for (int WI = 0; WI <= int(WeightType::Q6_K); ++WI) {
      const WeightType W = WeightType(WI);
      const int64_t M = 48, K = 2 * 256; // Row groups of 8 and 16; two K-quant super-blocks.
      for (WeightLayout L : {WeightLayout::Rows, chooseLayout(M, K, W, Cpu)}) {
        SCOPED_TRACE(testing::Message() << Cpu.isaName() << " " << weightTypeName(W) << " " << weightLayoutName(L));
        std::vector<uint8_t> Wt = test::randomWeights(W, M, K, 7 + WI);
        if (L != WeightLayout::Rows) {
          std::vector<uint8_t> Packed(Wt.size());
          repackWeights(W, Wt.data(), Packed.data(), L, M, K, 0, M);
          Wt = std::move(Packed);
        }
        const int64_t MaxN = 100;
        std::vector<float> X = test::randomActivations(MaxN, K, 11);
        std::vector<uint8_t> Xq(activationBytes(ActivationFormat::Q8, K, MaxN));
        auto Quantize = Cache.getQuantize(K);
        ASSERT_TRUE(Quantize.ok()) << Quantize.status();
        (*Quantize)(X.data(), Xq.data(), 0, MaxN);
        auto Input = [&](const KernelSpec &S, int64_t Token) -> const void * {
          return S.Activations == ActivationFormat::Q8 ? static_cast<const void *>(Xq.data() + Token * q8RowBytes(K))
                                                       : static_cast<const void *>(X.data() + Token * K);
        };
        const KernelSpec One = chooseSpec({M, K, 1, W, L}, Cpu);
        MatmulFn OneFn = fromSharedCache(One);
        ASSERT_NE(OneFn, nullptr);
        std::vector<float> Alone(MaxN * M);
        for (int64_t T = 0; T < MaxN; ++T)
          OneFn(Wt.data(), Input(One, T), &Alone[T * M], 0, M);
        for (int64_t N : {3, 13, 100}) { // The short-tile rows, a general row, a partial token tile.
          const KernelSpec S = chooseSpec({M, K, N, W, L}, Cpu);
          SCOPED_TRACE(S.functionName());
          MatmulFn Fn = fromSharedCache(S);
          ASSERT_NE(Fn, nullptr);
          std::vector<float> Y(N * M, NAN);
          Fn(Wt.data(), Input(S, 0), Y.data(), 0, M);
          ASSERT_EQ(std::memcmp(Y.data(), Alone.data(), N * M * sizeof(float)), 0)
              << "batch of " << N << " differs from the one-token kernel (" << One.functionName() << ")";
        }
      }
    }
}

} // namespace
