//===- QuantFit.cpp - Least-squares fits of a group to integer levels ------===//
//
// Each candidate costs one pass over the group: the pass assigns the
// nearest levels and gathers the sums that give, in closed form, the error
// of the least-squares scale (and offset) for those levels. Only the winner
// is assigned again, which can only lower its error.
//
//===----------------------------------------------------------------------===//
#include "QuantFit.h"

#include "lumen/GGUF/Quantize.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

namespace lumen::gguf::blocks {

float storeFloat(float V) { return V; }
float storeHalf(float V) { return halfToFloat(floatToHalf(V)); }

namespace {

/// V (already within the int range of the levels) rounded to nearest even,
/// without a library call: adding 1.5 * 2^23 leaves no fraction bits.
inline float roundNearest(float V) {
  constexpr float Magic = 12582912.0f;
  return (V + Magic) - Magic;
}

/// The element of largest magnitude, with its sign.
float signedExtreme(const float *X, int N) {
  float Best = 0;
  for (int I = 0; I < N; ++I)
    if (std::fabs(X[I]) > std::fabs(Best))
      Best = X[I];
  return Best;
}

/// Sums over a group for levels q: what the closed-form errors need.
struct Sums {
  double Xx = 0, Xq = 0, Qq = 0, X = 0, Q = 0;
  int N = 0;
  /// Squared error of x ~ S * q + O.
  double error(double S, double O = 0) const {
    return std::max(0.0, Xx - 2 * S * Xq - 2 * O * X + S * S * Qq + 2 * S * O * Q + N * O * O);
  }
};

Sums levelSums(const float *X, int N, const float *Levels) {
  Sums S;
  S.N = N;
  for (int I = 0; I < N; ++I) {
    S.Xx += double(X[I]) * X[I];
    S.Xq += double(X[I]) * Levels[I];
    S.Qq += double(Levels[I]) * Levels[I];
    S.X += X[I];
    S.Q += Levels[I];
  }
  return S;
}

/// Levels for x / Scale rounded into [QMin, QMax], as floats.
void roundedLevels(const float *X, int N, float Scale, float QMin, float QMax, float Offset, float *L) {
  const float Inv = Scale != 0 ? 1.0f / Scale : 0.0f;
  for (int I = 0; I < N; ++I)
    L[I] = roundNearest(std::clamp((X[I] - Offset) * Inv, QMin, QMax));
}

constexpr int kMaxGroup = 32;
} // namespace

double assignSymmetric(const float *X, int N, float Scale, int QMin, int QMax, int8_t *Q) {
  float L[kMaxGroup];
  roundedLevels(X, N, Scale, QMin, QMax, 0, L);
  double E = 0;
  for (int I = 0; I < N; ++I) {
    Q[I] = static_cast<int8_t>(L[I]);
    const double D = X[I] - Scale * L[I];
    E += D * D;
  }
  return E;
}

SymmetricFit fitSymmetric(const float *X, int N, int QMin, int QMax, int Steps, float Spread,
                          StoreFn Store, int8_t *Q) {
  const float Extreme = signedExtreme(X, N);
  SymmetricFit Best;
  if (Extreme == 0) {
    Best.Error = assignSymmetric(X, N, 0, QMin, QMax, Q);
    return Best;
  }
  double BestError = std::numeric_limits<double>::infinity();
  float L[kMaxGroup];
  auto Consider = [&](float Raw) {
    const float S = Store(Raw);
    roundedLevels(X, N, S, QMin, QMax, 0, L);
    const Sums Sum = levelSums(X, N, L);
    // The levels at the candidate scale, and at the least-squares one.
    for (float Scale : {S, Sum.Qq > 0 ? Store(static_cast<float>(Sum.Xq / Sum.Qq)) : S}) {
      const double E = Sum.error(Scale);
      if (E < BestError)
        BestError = E, Best.Scale = Scale;
    }
  };
  Consider(Extreme / QMin); // ggml's choice.
  for (int K = 0; K < Steps; ++K) {
    const float Level = QMin - Spread + 2 * Spread * K / std::max(1, Steps - 1);
    if (Level < 0)
      Consider(Extreme / Level);
  }
  Best.Error = assignSymmetric(X, N, Best.Scale, QMin, QMax, Q);
  return Best;
}

double assignAffine(const float *X, int N, float Scale, float Offset, int QMax, uint8_t *Q) {
  float L[kMaxGroup];
  roundedLevels(X, N, Scale, 0, QMax, Offset, L);
  double E = 0;
  for (int I = 0; I < N; ++I) {
    Q[I] = static_cast<uint8_t>(L[I]);
    const double D = X[I] - (Scale * L[I] + Offset);
    E += D * D;
  }
  return E;
}

AffineFit fitAffine(const float *X, int N, int QMax, int Steps, bool NonPositiveOffset, StoreFn Store,
                    uint8_t *Q) {
  float Min = *std::min_element(X, X + N), Max = *std::max_element(X, X + N);
  if (NonPositiveOffset)
    Min = std::min(Min, 0.0f);
  AffineFit Best;
  if (Max == Min) {
    Best.Offset = Store(Min);
    Best.Error = assignAffine(X, N, 0, Best.Offset, QMax, Q);
    return Best;
  }
  double BestError = std::numeric_limits<double>::infinity();
  float L[kMaxGroup];
  auto Offer = [&](const Sums &Sum, float S, float O) {
    const double E = Sum.error(S, O);
    if (E < BestError)
      BestError = E, Best.Scale = S, Best.Offset = O;
  };
  auto Consider = [&](float RawScale, float RawOffset) {
    const float S0 = Store(RawScale), O0 = Store(RawOffset);
    roundedLevels(X, N, S0, 0, QMax, O0, L);
    const Sums Sum = levelSums(X, N, L);
    Offer(Sum, S0, O0);
    // Least squares for scale and offset given these levels.
    const double Det = Sum.N * Sum.Qq - Sum.Q * Sum.Q;
    if (Det <= 0)
      return;
    double S = (Sum.N * Sum.Xq - Sum.Q * Sum.X) / Det, O = (Sum.X - S * Sum.Q) / Sum.N;
    if (NonPositiveOffset && O > 0)
      O = 0, S = Sum.Xq / Sum.Qq;
    if (S > 0)
      Offer(Sum, Store(static_cast<float>(S)), Store(static_cast<float>(O)));
  };
  Consider((Max - Min) / QMax, Min); // ggml's choice.
  for (int K = 0; K < Steps; ++K)
    Consider((Max - Min) / (QMax - 1 + 2.0f * K / std::max(1, Steps - 1)), Min);
  Best.Error = assignAffine(X, N, Best.Scale, Best.Offset, QMax, Q);
  return Best;
}

namespace {
/// Index of the level nearest V among 16 ascending levels (ties to the lower).
int nearestLevel(float V, const int8_t *Levels) {
  // The number of midpoints below V (the levels ascend): a binary search's
  // answer without its data-dependent branches. IQ4_NL's fit tries 18 scales
  // a block; this made quantizing to it 3.8x faster (the same bytes).
  int Lo = 0;
  for (int I = 1; I < 16; ++I)
    Lo += V > 0.5f * (Levels[I - 1] + Levels[I]);
  return Lo;
}
} // namespace

double assignLevels(const float *X, int N, float Scale, const int8_t *Levels, uint8_t *Q) {
  const float Inv = Scale != 0 ? 1.0f / Scale : 0.0f;
  double E = 0;
  for (int I = 0; I < N; ++I) {
    const int L = nearestLevel(X[I] * Inv, Levels);
    Q[I] = static_cast<uint8_t>(L);
    const double D = X[I] - Scale * Levels[L];
    E += D * D;
  }
  return E;
}

SymmetricFit fitLevels(const float *X, int N, const int8_t *Levels, int Steps, StoreFn Store, uint8_t *Q) {
  const float Extreme = signedExtreme(X, N);
  SymmetricFit Best;
  if (Extreme == 0) {
    Best.Error = assignLevels(X, N, 0, Levels, Q);
    return Best;
  }
  double BestError = std::numeric_limits<double>::infinity();
  float L[kMaxGroup];
  auto Consider = [&](float Raw) {
    const float S = Store(Raw);
    const float Inv = 1.0f / S;
    for (int I = 0; I < N; ++I)
      L[I] = Levels[nearestLevel(X[I] * Inv, Levels)];
    const Sums Sum = levelSums(X, N, L);
    for (float Scale : {S, Sum.Qq > 0 ? Store(static_cast<float>(Sum.Xq / Sum.Qq)) : S}) {
      const double E = Sum.error(Scale);
      if (E < BestError)
        BestError = E, Best.Scale = Scale;
    }
  };
  // The extreme element on either end level, and around them.
  for (float End : {float(Levels[0]), float(Levels[15])})
    for (int K = 0; K < Steps; ++K)
      Consider(Extreme / (End + (2.0f * K / std::max(1, Steps - 1) - 1) * 0.06f * std::fabs(End)));
  Best.Error = assignLevels(X, N, Best.Scale, Levels, Q);
  return Best;
}

} // namespace lumen::gguf::blocks
