//===- VectorOps.cpp - Vectorised elementwise ops of the JIT path ----------===//
#include "VectorOps.h"
#include "Wide16.h"

#include <algorithm>
#include <cmath>
#include <immintrin.h>
#include <iterator>

namespace lumen::model::vec {

namespace {

float hsum(__m256 V) {
  __m128 S = _mm_add_ps(_mm256_castps256_ps128(V), _mm256_extractf128_ps(V, 1));
  S = _mm_add_ps(S, _mm_movehl_ps(S, S));
  S = _mm_add_ss(S, _mm_movehdup_ps(S));
  return _mm_cvtss_f32(S);
}

/// e^x = 2^n * e^r with n = round(x / ln 2) and r = x - n ln 2 (ln 2 in two
/// parts), in [-ln2/2, ln2/2]; e^r by a degree-6 polynomial (relative error
/// ~2e-7); x clamped to +-88. Both widths below use these constants.
namespace expconst {
constexpr float Clamp = 88.0f, Log2E = 1.44269504088896341f, Ln2Hi = 0.693359375f, Ln2Lo = -2.12194440e-4f;
/// The polynomial's coefficients, highest degree first, down to x^2's.
constexpr float Poly[] = {1.9875691500e-4f, 1.3981999507e-3f, 8.3334519073e-3f,
                          4.1665795894e-2f, 1.6666665459e-1f, 5.0000001201e-1f};
} // namespace expconst

/// e^x for 8 floats.
__m256 exp8(__m256 X) {
  using namespace expconst;
  X = _mm256_min_ps(_mm256_max_ps(X, _mm256_set1_ps(-Clamp)), _mm256_set1_ps(Clamp));
  __m256 N = _mm256_round_ps(_mm256_mul_ps(X, _mm256_set1_ps(Log2E)),
                             _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 R = _mm256_fnmadd_ps(N, _mm256_set1_ps(Ln2Hi), X);
  R = _mm256_fnmadd_ps(N, _mm256_set1_ps(Ln2Lo), R);
  __m256 P = _mm256_set1_ps(Poly[0]);
  for (size_t I = 1; I < std::size(Poly); ++I)
    P = _mm256_fmadd_ps(P, R, _mm256_set1_ps(Poly[I]));
  P = _mm256_fmadd_ps(P, _mm256_mul_ps(R, R), _mm256_add_ps(R, _mm256_set1_ps(1.0f)));
  __m256i E = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(N), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(P, _mm256_castsi256_ps(E));
}

// softmaxToHalf's three passes from element I on, 8 lanes at a time and then
// one by one; the 512-bit softmax finishes its rows with them.
float maxFrom(const float *X, int64_t I, int64_t N, float Max) {
  __m256 MaxV = _mm256_set1_ps(Max);
  for (; I + 8 <= N; I += 8)
    MaxV = _mm256_max_ps(MaxV, _mm256_loadu_ps(X + I));
  __m128 Max4 = _mm_max_ps(_mm256_castps256_ps128(MaxV), _mm256_extractf128_ps(MaxV, 1));
  Max4 = _mm_max_ps(Max4, _mm_movehl_ps(Max4, Max4));
  Max = _mm_cvtss_f32(_mm_max_ss(Max4, _mm_movehdup_ps(Max4)));
  for (; I < N; ++I)
    Max = std::max(Max, X[I]);
  return Max;
}

/// X[i] = e^(X[i] - Max); returns the sum of the whole row, Acc holding the
/// 8 lane sums of the elements before I.
float expSumFrom(float *X, int64_t I, int64_t N, float Max, __m256 Acc) {
  const __m256 M = _mm256_set1_ps(Max);
  for (; I + 8 <= N; I += 8) {
    __m256 E = exp8(_mm256_sub_ps(_mm256_loadu_ps(X + I), M));
    _mm256_storeu_ps(X + I, E);
    Acc = _mm256_add_ps(Acc, E);
  }
  float Sum = hsum(Acc);
  for (; I < N; ++I)
    Sum += (X[I] = std::exp(X[I] - Max));
  return Sum;
}

/// X[i] = X[i] * Inv rounded to fp16 precision.
void normalizeToHalfFrom(float *X, int64_t I, int64_t N, float Inv) {
  const __m256 S = _mm256_set1_ps(Inv);
  for (; I + 8 <= N; I += 8)
    _mm256_storeu_ps(X + I, _mm256_cvtph_ps(_mm256_cvtps_ph(_mm256_mul_ps(_mm256_loadu_ps(X + I), S),
                                                            _MM_FROUND_TO_NEAREST_INT)));
  for (; I < N; ++I)
    X[I] = _cvtsh_ss(_cvtss_sh(X[I] * Inv, _MM_FROUND_TO_NEAREST_INT));
}

/// softmaxToHalf of a row whose maximum is known.
void softmaxToHalfGivenMax(float *X, int64_t N, float Max) {
  normalizeToHalfFrom(X, 0, N, 1.0f / expSumFrom(X, 0, N, Max, _mm256_setzero_ps()));
}

} // namespace

// The 16-lane loops (VectorOps16.inc), native on AVX-512 and emulated.
namespace native16 {
using W = Native16;
#define LUMEN_W16_TARGET LUMEN_AVX512
#include "VectorOps16.inc"
#undef LUMEN_W16_TARGET
} // namespace native16
namespace emulated16 {
using W = Emulated16;
#define LUMEN_W16_TARGET
#include "VectorOps16.inc"
#undef LUMEN_W16_TARGET
} // namespace emulated16

void rmsNorm(const float *X, const float *W, float *Out, int64_t N, float Eps) {
  __m256 Acc = _mm256_setzero_ps();
  int64_t I = 0;
  for (; I + 8 <= N; I += 8) {
    __m256 V = _mm256_loadu_ps(X + I);
    Acc = _mm256_fmadd_ps(V, V, Acc);
  }
  float Sum = hsum(Acc);
  for (; I < N; ++I)
    Sum += X[I] * X[I];
  __m256 S = _mm256_set1_ps(1.0f / std::sqrt(Sum / N + Eps));
  for (I = 0; I + 8 <= N; I += 8)
    _mm256_storeu_ps(Out + I, _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(X + I), S),
                                            _mm256_loadu_ps(W + I)));
  for (; I < N; ++I)
    Out[I] = X[I] * _mm256_cvtss_f32(S) * W[I];
}

void add(float *X, const float *Y, int64_t N) {
  int64_t I = 0;
  for (; I + 8 <= N; I += 8)
    _mm256_storeu_ps(X + I, _mm256_add_ps(_mm256_loadu_ps(X + I), _mm256_loadu_ps(Y + I)));
  for (; I < N; ++I)
    X[I] += Y[I];
}

void siluMul(const float *G, const float *U, float *Out, int64_t N, Width Wide) {
  const int64_t Done = Wide == Width::Native512     ? native16::siluMul16(G, U, Out, N)
                       : Wide == Width::Emulated512 ? emulated16::siluMul16(G, U, Out, N)
                                                    : 0;
  siluMul(G + Done, U + Done, Out + Done, N - Done);
}

void siluMul(const float *G, const float *U, float *Out, int64_t N) {
  int64_t I = 0;
  const __m256 One = _mm256_set1_ps(1.0f);
  for (; I + 8 <= N; I += 8) {
    __m256 Gv = _mm256_loadu_ps(G + I);
    __m256 Sig = _mm256_div_ps(One, _mm256_add_ps(One, exp8(_mm256_sub_ps(_mm256_setzero_ps(), Gv))));
    _mm256_storeu_ps(Out + I, _mm256_mul_ps(_mm256_mul_ps(Gv, Sig), _mm256_loadu_ps(U + I)));
  }
  for (; I < N; ++I)
    Out[I] = G[I] / (1.0f + std::exp(-G[I])) * U[I];
}

void rope(float *Head, const float *Cos, const float *Sin, int64_t HeadDim) {
  const int64_t Half = HeadDim / 2;
  int64_t I = 0;
  for (; I + 8 <= Half; I += 8) {
    __m256 X0 = _mm256_loadu_ps(Head + I), X1 = _mm256_loadu_ps(Head + I + Half);
    __m256 C = _mm256_loadu_ps(Cos + I), S = _mm256_loadu_ps(Sin + I);
    _mm256_storeu_ps(Head + I, _mm256_fmsub_ps(X0, C, _mm256_mul_ps(X1, S)));
    _mm256_storeu_ps(Head + I + Half, _mm256_fmadd_ps(X0, S, _mm256_mul_ps(X1, C)));
  }
  for (; I < Half; ++I) {
    float X0 = Head[I], X1 = Head[I + Half];
    Head[I] = X0 * Cos[I] - X1 * Sin[I];
    Head[I + Half] = X0 * Sin[I] + X1 * Cos[I];
  }
}

void ropePairs(float *Head, const float *Cos, const float *Sin, int64_t HeadDim) {
  for (int64_t I = 0; I < HeadDim / 2; ++I) {
    const float X0 = Head[2 * I], X1 = Head[2 * I + 1];
    Head[2 * I] = X0 * Cos[I] - X1 * Sin[I];
    Head[2 * I + 1] = X0 * Sin[I] + X1 * Cos[I];
  }
}

void toHalf(const float *X, uint16_t *Out, int64_t N) {
  int64_t I = 0;
  for (; I + 8 <= N; I += 8)
    _mm_storeu_si128(reinterpret_cast<__m128i *>(Out + I),
                     _mm256_cvtps_ph(_mm256_loadu_ps(X + I), _MM_FROUND_TO_NEAREST_INT));
  for (; I < N; ++I)
    Out[I] = _cvtss_sh(X[I], _MM_FROUND_TO_NEAREST_INT);
}

void roundToHalf(const float *X, float *Out, int64_t N) {
  int64_t I = 0;
  for (; I + 8 <= N; I += 8)
    _mm256_storeu_ps(Out + I, _mm256_cvtph_ps(_mm256_cvtps_ph(_mm256_loadu_ps(X + I),
                                                              _MM_FROUND_TO_NEAREST_INT)));
  for (; I < N; ++I)
    Out[I] = _cvtsh_ss(_cvtss_sh(X[I], _MM_FROUND_TO_NEAREST_INT));
}

void toHalfStrided(const float *X, uint16_t *Out, int64_t N, int64_t Stride) {
  for (int64_t I = 0; I < N; ++I)
    Out[I * Stride] = _cvtss_sh(X[I], _MM_FROUND_TO_NEAREST_INT);
}

// The loops below hold a K block in 8 ymm or 4 zmm vectors of positions.
static_assert(kKeyBlock == 64);

namespace {
/// R heads' scores for every position, 8 positions per vector: a K vector is
/// converted once and serves all R heads (R FMAs per conversion). Max[i] is
/// the largest of row i's Seen scores, taken as they are stored (the softmax
/// then need not read the row for it).
template <int R>
void tokenScores(const float *Q, const CachedHead &C, int64_t Seen, float Scale, float *S, int64_t Stride,
                 float *Max) {
  const int64_t HD = C.HeadDim;
  const __m256 Sc = _mm256_set1_ps(Scale);
  __m256 MaxV[R];
  float Tail[R];
  for (int I = 0; I < R; ++I) {
    MaxV[I] = _mm256_set1_ps(-INFINITY);
    Tail[I] = -INFINITY;
  }
  for (int64_t P0 = 0; P0 < Seen; P0 += 64) {
    const uint16_t *KB = C.keyBlock(P0 / 64);
    const int64_t Vecs = (std::min<int64_t>(64, Seen - P0) + 7) / 8;
    // The next block's K (HD x 128 bytes, a share of its lines a pass) is
    // fetched while this one is computed; during the last block, V's first
    // block (as many bytes), which tokenValues reads first.
    const char *Next =
        reinterpret_cast<const char *>(P0 + 64 < Seen ? C.keyBlock(P0 / 64 + 1) : C.valueBlock(0));
    const int64_t Lines = 2 * HD, PerVec = (Lines + Vecs - 1) / Vecs;
    for (int64_t V = 0; V < Vecs; ++V) {
      for (int64_t L = V * PerVec; L < std::min(Lines, (V + 1) * PerVec); ++L)
        _mm_prefetch(Next + L * 64, _MM_HINT_T0);
      __m256 A[R];
      for (int I = 0; I < R; ++I)
        A[I] = _mm256_setzero_ps();
      for (int64_t D = 0; D < HD; ++D) {
        __m256 Kv = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i *>(KB + D * 64 + 8 * V)));
        for (int I = 0; I < R; ++I)
          A[I] = _mm256_fmadd_ps(_mm256_broadcast_ss(Q + I * HD + D), Kv, A[I]);
      }
      // Lanes past Seen are not scores: a last partial vector's valid
      // lanes join the maximum one by one.
      const int64_t Valid = Seen - P0 - 8 * V;
      for (int I = 0; I < R; ++I) {
        float *Out = S + I * Stride + P0 + 8 * V;
        const __m256 Sv = _mm256_mul_ps(A[I], Sc);
        _mm256_storeu_ps(Out, Sv);
        if (Valid >= 8)
          MaxV[I] = _mm256_max_ps(MaxV[I], Sv);
        else
          for (int64_t L = 0; L < Valid; ++L)
            Tail[I] = std::max(Tail[I], Out[L]);
      }
    }
  }
  for (int I = 0; I < R; ++I) {
    alignas(32) float Lanes[8];
    _mm256_store_ps(Lanes, MaxV[I]);
    Max[I] = Tail[I];
    for (float L : Lanes)
      Max[I] = std::max(Max[I], L);
  }
}

/// R heads' weighted sums of V rows, 8 dimensions per vector; 64-position
/// blocks of V (8 KB for a 64-wide head) stay in L1 across the dimension
/// passes, the accumulators round-trip through Out once per block.
template <int R>
void tokenValues(const float *P, int64_t Stride, int64_t Seen, const CachedHead &C, float *Out, int64_t OutStride) {
  const int64_t HD = C.HeadDim;
  for (int I = 0; I < R; ++I)
    std::fill_n(Out + I * OutStride, HD, 0.0f);
  for (int64_t P0 = 0; P0 < Seen; P0 += 64) {
    const int64_t P1 = std::min<int64_t>(Seen, P0 + 64);
    const uint16_t *VB = C.valueBlock(P0 / 64); // Row Pp at VB + (Pp - P0) * HD.
    // The next block's V rows (64 x HD x 2 bytes), a share per pass.
    const int64_t NextRows = std::min<int64_t>(Seen, P1 + 64) - P1;
    const uint16_t *NB = NextRows > 0 ? C.valueBlock(P0 / 64 + 1) : VB;
    for (int64_t D = 0; D + 8 <= HD; D += 8) {
      for (int64_t I = D * 64 / HD; I < std::min(NextRows, (D + 8) * 64 / HD); ++I)
        for (int64_t B = 0; B < HD * 2; B += 64)
          _mm_prefetch(reinterpret_cast<const char *>(NB + I * HD) + B, _MM_HINT_T0);
      __m256 A[R];
      for (int I = 0; I < R; ++I)
        A[I] = _mm256_loadu_ps(Out + I * OutStride + D);
      for (int64_t Pp = P0; Pp < P1; ++Pp) {
        __m256 Vv = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i *>(VB + (Pp - P0) * HD + D)));
        for (int I = 0; I < R; ++I)
          A[I] = _mm256_fmadd_ps(_mm256_broadcast_ss(P + I * Stride + Pp), Vv, A[I]);
      }
      for (int I = 0; I < R; ++I)
        _mm256_storeu_ps(Out + I * OutStride + D, A[I]);
    }
    for (int64_t D = HD / 8 * 8; D < HD; ++D) // A head dimension not a multiple of 8.
      for (int I = 0; I < R; ++I)
        for (int64_t Pp = P0; Pp < P1; ++Pp)
          Out[I * OutStride + D] =
              std::fma(P[I * Stride + Pp], _cvtsh_ss(VB[(Pp - P0) * HD + D]), Out[I * OutStride + D]);
  }
}

template <int R>
void attendRows(const float *Q, const CachedHead &C, int64_t Seen, float Scale, float *S, int64_t Stride,
                float *Out, int64_t OutStride) {
  float Max[R];
  tokenScores<R>(Q, C, Seen, Scale, S, Stride, Max);
  for (int I = 0; I < R; ++I)
    softmaxToHalfGivenMax(S + I * Stride, Seen, Max[I]);
  tokenValues<R>(S, Stride, Seen, C, Out, OutStride);
}

using AttendFn = void (*)(const float *, const CachedHead &, int64_t, float, float *, int64_t, float *, int64_t);
} // namespace

void attendToken(const float *Q, int64_t Rows, const CachedHead &Cache, int64_t Seen, float Scale, float *Scores,
                 int64_t Stride, float *Out, int64_t OutStride, Width Wide) {
  const int64_t HD = Cache.HeadDim;
  // Heads at a time: 256-bit, R accumulators + a K vector + a broadcast in
  // 16 registers (R <= 8); 512-bit, 4R accumulators + 4 K vectors in 32.
  static constexpr AttendFn Narrow[] = {attendRows<1>, attendRows<2>, attendRows<3>, attendRows<4>,
                                        attendRows<5>, attendRows<6>, attendRows<7>, attendRows<8>};
  static constexpr AttendFn Native[] = {native16::attendRows16<1>, native16::attendRows16<2>,
                                        native16::attendRows16<3>, native16::attendRows16<4>,
                                        native16::attendRows16<5>, native16::attendRows16<6>,
                                        native16::attendRows16<7>};
  static constexpr AttendFn Emulated[] = {emulated16::attendRows16<1>, emulated16::attendRows16<2>,
                                          emulated16::attendRows16<3>, emulated16::attendRows16<4>,
                                          emulated16::attendRows16<5>, emulated16::attendRows16<6>,
                                          emulated16::attendRows16<7>};
  if (HD % 64)
    Wide = Width::Avx2;
  const AttendFn *Fns = Wide == Width::Native512 ? Native : Wide == Width::Emulated512 ? Emulated : Narrow;
  const int64_t Step = Wide == Width::Avx2 ? 8 : 7;
  for (int64_t R0 = 0; R0 < Rows; R0 += Step) {
    const int64_t R = std::min<int64_t>(Step, Rows - R0);
    Fns[R - 1](Q + R0 * HD, Cache, Seen, Scale, Scores + R0 * Stride, Stride, Out + R0 * OutStride, OutStride);
  }
}

void softmaxToHalf(float *X, int64_t N) {
  // The maximum is vectorised (a scalar std::max loop is not, by the
  // compiler: it was a third of the prefill softmax); normalising and
  // rounding share a pass: the same two roundings per element.
  softmaxToHalfGivenMax(X, N, maxFrom(X, 0, N, -INFINITY));
}

} // namespace lumen::model::vec
