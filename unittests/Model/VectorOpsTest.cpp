//===- VectorOpsTest.cpp - The JIT path's attention over the fp16 cache ---===//
//
// attendToken (decode: one token's heads read the cache in place) against
// the blocked path prefill uses (staged fp32 blocks, scoresBlock, softmax,
// weightedSum) bit for bit, and both against a double-precision reference.
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
/// 64 positions ([block][dim][position in block]), V row-major.
struct HeadCache {
  int64_t HD, Ctx;
  std::vector<uint16_t> K, V;
  HeadCache(int64_t HD, int64_t Seen, std::mt19937 &Rng) : HD(HD), Ctx((Seen + 63) / 64 * 64) {
    std::normal_distribution<float> N(0.0f, 1.0f);
    K.resize(Ctx * HD);
    V.resize(Ctx * HD);
    // Every slot gets a value, also past Seen: stale entries must not leak in.
    for (uint16_t &H : K) H = half(N(Rng));
    for (uint16_t &H : V) H = half(N(Rng));
  }
  float k(int64_t P, int64_t D) const { return single(K[P / 64 * 64 * HD + D * 64 + P % 64]); }
  float v(int64_t P, int64_t D) const { return single(V[P * HD + D]); }
};

/// The blocked path of JitSession::attention for one token.
std::vector<float> blocked(const std::vector<float> &Q, int64_t Rows, const HeadCache &C, int64_t Seen,
                           float Scale) {
  const int64_t HD = C.HD, Stride = C.Ctx;
  std::vector<float> Scores(Rows * Stride), KT(HD * 64), VB(64 * HD), Out(Rows * HD, 0.0f);
  std::vector<const float *> QRow(Rows);
  std::vector<float *> SRow(Rows);
  for (int64_t P0 = 0; P0 < Seen; P0 += 64) {
    const int64_t P1 = std::min(Seen, P0 + 64);
    for (int64_t I = 0; I < HD; ++I)
      vec::fromHalf(&C.K[P0 * HD + I * 64], &KT[I * 64], (P1 - P0 + 7) / 8 * 8);
    for (int64_t R = 0; R < Rows; ++R) {
      QRow[R] = &Q[R * HD];
      SRow[R] = &Scores[R * Stride + P0];
    }
    vec::scoresBlock(QRow.data(), Rows, KT.data(), HD, P1 - P0, Scale, SRow.data());
  }
  for (int64_t R = 0; R < Rows; ++R)
    vec::softmaxToHalf(&Scores[R * Stride], Seen);
  for (int64_t P0 = 0; P0 < Seen; P0 += 64) {
    const int64_t P1 = std::min(Seen, P0 + 64);
    for (int64_t P = P0; P < P1; ++P)
      vec::fromHalf(&C.V[P * HD], &VB[(P - P0) * HD], HD);
    for (int64_t R = 0; R < Rows; ++R)
      vec::weightedSum(&Out[R * HD], &Scores[R * Stride + P0], VB.data(), HD, P1 - P0);
  }
  return Out;
}

TEST(AttendTokenTest, EqualsTheBlockedPathAndTheDoubleReference) {
  std::mt19937 Rng(7);
  for (int64_t HD : {64, 128, 24})
    for (int64_t Rows : {1, 6, 7, 9})
      for (int64_t Seen : {1, 5, 8, 63, 64, 65, 130, 700}) {
        SCOPED_TRACE(testing::Message() << "head dim " << HD << ", " << Rows << " heads, " << Seen << " positions");
        HeadCache C(HD, Seen, Rng);
        std::normal_distribution<float> N(0.0f, 1.0f);
        std::vector<float> Q(Rows * HD);
        for (float &X : Q) X = single(half(N(Rng))); // Queries enter rounded to fp16.
        const float Scale = 1.0f / std::sqrt(float(HD));

        std::vector<float> Want = blocked(Q, Rows, C, Seen, Scale), Out;
        for (bool Avx512 : {false, true}) {
          if (Avx512 && !__builtin_cpu_supports("avx512bw"))
            continue;
          std::vector<float> Scores(Rows * C.Ctx), O(Rows * HD, -1.0f);
          vec::attendToken(Q.data(), Rows, HD, C.K.data(), 64 * HD, C.V.data(), HD, Seen, Scale, Scores.data(),
                           C.Ctx, O.data(), HD, Avx512);
          EXPECT_EQ(0, std::memcmp(O.data(), Want.data(), O.size() * sizeof(float))) << "avx512 " << Avx512;
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

} // namespace
} // namespace lumen::model
