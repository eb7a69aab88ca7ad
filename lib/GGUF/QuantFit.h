//===- QuantFit.h - Least-squares fits of a group to integer levels -*- C++ -*-===//
//
// The search every block quantizer shares: choose a group's scale (and
// offset) so that its elements, each rounded to the nearest level, lose the
// least squared error. Candidates are spread around the rule ggml's
// reference quantizers use (the extreme element on the extreme level), each
// refined by a least-squares refit, and judged with the scale as it will be
// stored (fp16, or kept in float when a second level quantizes it later).
// ggml's own choice is always among the candidates, so for the formats
// whose scale is stored directly no group is fitted worse than ggml does.
//
//===----------------------------------------------------------------------===//
#ifndef LUMEN_LIB_GGUF_QUANTFIT_H
#define LUMEN_LIB_GGUF_QUANTFIT_H

#include <cstdint>

namespace lumen::gguf::blocks {

/// How a fitted scale or offset is stored; fits are judged by the stored value.
using StoreFn = float (*)(float);
float storeFloat(float V);
float storeHalf(float V);

/// x[i] ~ Scale * q[i] with integer q[i] in [QMin, QMax].
struct SymmetricFit {
  float Scale = 0;
  double Error = 0;
};
/// Steps candidates put the element of largest magnitude at levels
/// QMin - Spread ... QMin + Spread (ggml's QMin among them).
SymmetricFit fitSymmetric(const float *X, int N, int QMin, int QMax, int Steps, float Spread,
                          StoreFn Store, int8_t *Q);
/// The nearest levels for a given scale, and the squared error.
double assignSymmetric(const float *X, int N, float Scale, int QMin, int QMax, int8_t *Q);

/// x[i] ~ Scale * q[i] + Offset with integer q[i] in [0, QMax]; with
/// NonPositiveOffset the offset is kept <= 0 (the K-quants store -offset).
struct AffineFit {
  float Scale = 0, Offset = 0;
  double Error = 0;
};
AffineFit fitAffine(const float *X, int N, int QMax, int Steps, bool NonPositiveOffset, StoreFn Store,
                    uint8_t *Q);
double assignAffine(const float *X, int N, float Scale, float Offset, int QMax, uint8_t *Q);

/// x[i] ~ Scale * Levels[q[i]] for 16 ascending levels (IQ4_NL).
SymmetricFit fitLevels(const float *X, int N, const int8_t *Levels, int Steps, StoreFn Store, uint8_t *Q);
double assignLevels(const float *X, int N, float Scale, const int8_t *Levels, uint8_t *Q);

} // namespace lumen::gguf::blocks

#endif
