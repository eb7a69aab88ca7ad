//===- VectorOpsTest.cpp - The JIT path's attention over the fp16 cache ---===//
//
// attendToken (one token's heads read the cache in place) and siluMul, with
// 256-bit loops, the 512-bit loops emulated as pairs of 256-bit halves (on
// every host) and native (on AVX-512 hosts), against their contracts in
// scalar floats bit for bit, and against softmax(q.k) . V in double.
//
//===----------------------------------------------------------------------===//
#include "VectorOps.h"

#include "gtest/gtest.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <immintrin.h>
#include <random>
#include <vector>

namespace lumen::model {
namespace {

uint16_t half(float X) { return _cvtss_sh(X, _MM_FROUND_TO_NEAREST_INT); }
float single(uint16_t H) { return _cvtsh_ss(H); }

/// One KV head's cache in the JIT session's layout: K in transposed blocks of
/// 64 positions ([block][dim][position in block]), V's blocks row-major, in
/// runs of SegmentBlocks blocks with a gap of other heads' runs between.
struct HeadCache {
  int64_t HD, Ctx, SegmentBlocks, Gap;
  std::vector<uint16_t> K, V;
  HeadCache(int64_t HD, int64_t Seen, std::mt19937 &Rng, int64_t SegmentBlocks = 1 << 20, int64_t Gap = 0)
      : HD(HD), Ctx((Seen + 63) / 64 * 64), SegmentBlocks(SegmentBlocks), Gap(Gap) {
    std::normal_distribution<float> N(0.0f, 1.0f);
    const int64_t Blocks = Ctx / 64;
    K.assign(view().blockOffset(Blocks - 1) + 64 * HD, half(NAN)); // The gaps are NaN: they must not be read.
    V = K;
    for (int64_t B = 0; B < Blocks; ++B)
      for (int64_t I = 0; I < 64 * HD; ++I) {
        // Every slot gets a value, also past Seen: stale entries must not leak in.
        K[view().blockOffset(B) + I] = half(N(Rng));
        V[view().blockOffset(B) + I] = half(N(Rng));
      }
  }
  vec::CachedHead view() const {
    return {K.data(), V.data(), HD, SegmentBlocks, (SegmentBlocks * 64 + Gap) * HD};
  }
  float k(int64_t P, int64_t D) const { return single(K[view().blockOffset(P / 64) + D * 64 + P % 64]); }
  float v(int64_t P, int64_t D) const { return single(V[view().blockOffset(P / 64) + P % 64 * HD + D]); }
};

/// The contract in scalar floats: each score and each output a chain of
/// fused multiply-adds in order, as every vector lane computes it.
std::vector<float> scalar(const std::vector<float> &Q, int64_t Rows, const HeadCache &C, int64_t Seen,
                          float Scale) {
  const int64_t HD = C.HD;
  std::vector<float> Out(Rows * HD, 0.0f), S(Seen);
  for (int64_t R = 0; R < Rows; ++R) {
    for (int64_t P = 0; P < Seen; ++P) {
      float Dot = 0;
      for (int64_t D = 0; D < HD; ++D)
        Dot = std::fma(Q[R * HD + D], C.k(P, D), Dot);
      S[P] = Dot * Scale;
    }
    vec::softmaxToHalf(S.data(), Seen);
    for (int64_t D = 0; D < HD; ++D)
      for (int64_t P = 0; P < Seen; ++P)
        Out[R * HD + D] = std::fma(S[P], C.v(P, D), Out[R * HD + D]);
  }
  return Out;
}

bool hostHasAvx512() {
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
}

/// The widths this host runs: the emulated 512-bit loops everywhere.
std::vector<vec::Width> widths() {
  std::vector<vec::Width> W = {vec::Width::Avx2, vec::Width::Emulated512};
  if (hostHasAvx512())
    W.push_back(vec::Width::Native512);
  return W;
}

TEST(AttendTokenTest, EqualsScalarFloatsAndTheDoubleReference) {
  std::mt19937 Rng(7);
  for (int64_t HD : {64, 128, 24, 20})
    for (int64_t Rows : {1, 6, 7, 9})
      for (int64_t Seen : {1, 5, 8, 63, 64, 65, 130, 700}) {
        // One run, runs of one block, and of two blocks 3 positions apart.
        for (auto [SegmentBlocks, Gap] : {std::pair<int64_t, int64_t>{1 << 20, 0}, {1, 64}, {2, 3}}) {
          SCOPED_TRACE(testing::Message() << "head dim " << HD << ", " << Rows << " heads, " << Seen
                                          << " positions, runs of " << SegmentBlocks << " blocks");
          HeadCache C(HD, Seen, Rng, SegmentBlocks, Gap);
          std::normal_distribution<float> N(0.0f, 1.0f);
          std::vector<float> Q(Rows * HD);
          for (float &X : Q) X = single(half(N(Rng))); // Queries enter rounded to fp16.
          const float Scale = 1.0f / std::sqrt(float(HD));

          std::vector<float> Want = scalar(Q, Rows, C, Seen, Scale), Out;
          for (vec::Width W : widths()) {
            std::vector<float> Scores(Rows * C.Ctx), O(Rows * HD, -1.0f);
            vec::attendToken(Q.data(), Rows, C.view(), Seen, Scale, Scores.data(), C.Ctx, O.data(), HD, W);
            EXPECT_EQ(0, std::memcmp(O.data(), Want.data(), O.size() * sizeof(float))) << "width " << int(W);
            Out = O;
          }

          // Softmax(q.k * scale) . V in double: the fp16 rounding of the
          // probabilities (relative 2^-11) bounds the difference.
          for (int64_t R = 0; R < Rows; ++R) {
            std::vector<double> S(Seen);
            double Max = -INFINITY, Sum = 0;
            for (int64_t P = 0; P < Seen; ++P) {
              double Dot = 0;
              for (int64_t D = 0; D < HD; ++D)
                Dot += double(Q[R * HD + D]) * C.k(P, D);
              Max = std::max(Max, S[P] = Dot * Scale);
            }
            for (double &X : S) Sum += (X = std::exp(X - Max));
            for (int64_t D = 0; D < HD; ++D) {
              double Ref = 0, Mag = 0;
              for (int64_t P = 0; P < Seen; ++P) {
                Ref += S[P] / Sum * C.v(P, D);
                Mag += S[P] / Sum * std::fabs(C.v(P, D));
              }
              ASSERT_NEAR(Out[R * HD + D], Ref, 1e-3 * Mag + 1e-6) << "head " << R << " dim " << D;
            }
          }
        }
      }
}

} // namespace
} // namespace lumen::model

namespace lumen::model {
namespace {

void checkSiluMul(vec::Width W) {
  std::mt19937 Rng(3);
  std::normal_distribution<float> N(0.0f, 4.0f);
  for (int64_t Count : {1, 7, 8, 15, 16, 17, 33, 100, 4864}) {
    std::vector<float> G(Count), U(Count), Narrow(Count), Wide(Count);
    for (int64_t I = 0; I < Count; ++I) {
      G[I] = I % 13 == 0 ? (I % 2 ? 120.0f : -120.0f) : N(Rng); // The exponential's clamps too.
      U[I] = N(Rng);
    }
    vec::siluMul(G.data(), U.data(), Narrow.data(), Count);
    vec::siluMul(G.data(), U.data(), Wide.data(), Count, W);
    EXPECT_EQ(0, std::memcmp(Narrow.data(), Wide.data(), Count * sizeof(float))) << Count << " elements";
    for (int64_t I = 0; I < Count; ++I) // And it is SiLU(g) * u.
      ASSERT_NEAR(Wide[I], G[I] / (1 + std::exp(-double(G[I]))) * U[I], 1e-5 * (1 + std::fabs(G[I] * U[I])));
  }
}

TEST(SiluMulTest, Emulated512BitLoopsGiveTheBitsOf256) { checkSiluMul(vec::Width::Emulated512); }

TEST(SiluMulTest, Native512BitLoopsGiveTheBitsOf256) {
  if (!hostHasAvx512())
    GTEST_SKIP() << "needs a CPU with AVX-512 F/BW/VL/DQ (the emulated test covers the same loops)";
  checkSiluMul(vec::Width::Native512);
}

} // namespace
} // namespace lumen::model
