//===- lumen/Codegen/KernelABI.h - Calling convention of kernels -*- C++ -*-===//
//
// The C ABI of every generated kernel. These layouts are a contract between
// the generator, the runtime and library users; change them only together.
//
// Matmul:  void F(const uint8_t *W, const void *X, float *Y,
//                 int64_t RowBegin, int64_t RowEnd)
//   Computes Y[t * M + r] = sum_k W[r][k] * X[t][k] for r in [RowBegin, RowEnd)
//   and every token t < N. Rows are independent, so a thread pool splits the
//   row range. W is the weight matrix as stored in the GGUF file (row r at
//   W + r * weightRowBytes). X is N rows of K floats (ActivationFormat::F32)
//   or N quantized rows (ActivationFormat::Q8, below).
//
// Quantize: void F(const float *X, uint8_t *Q, int64_t TokenBegin, int64_t TokenEnd)
//   Quantizes rows of K floats into the Q8 layout.
//
// Q8 activation row layout, q8RowBytes(K) = 3 * K bytes per token:
//   int8  Quants[K]        Q8_0 quants, block b = Quants[32b .. 32b+31]
//   float Scale8[K / 4]    block b's fp16-rounded scale, repeated 8 times
//   int32 Bias8[K / 4]     -128 * (sum of quants 4g .. 4g+3), one per group g
// The weights enter vpdpbusd as unsigned (w + 128, by flipping the sign
// bit); starting each block's dot product at Bias8 cancels the +128 exactly.
// Scale8 is pre-broadcast so a 512-bit lane vector of scales is one load.
//
//===----------------------------------------------------------------------===//
#ifndef LUMEN_CODEGEN_KERNELABI_H
#define LUMEN_CODEGEN_KERNELABI_H

#include "lumen/Export.h"

#include "lumen/Codegen/KernelSpec.h"

#include <cstdint>

namespace lumen::codegen {

using MatmulFn = void (*)(const uint8_t *W, const void *X, float *Y, int64_t RowBegin,
                          int64_t RowEnd);
using QuantizeFn = void (*)(const float *X, uint8_t *Q, int64_t TokenBegin, int64_t TokenEnd);

inline int64_t q8RowBytes(int64_t K) { return 3 * K; }
inline int64_t weightRowBytes(WeightType W, int64_t K) {
  switch (W) {
  case WeightType::Q8_0: return K / 32 * 34;
  case WeightType::F16: return K * 2;
  case WeightType::F32: return K * 4;
  }
  return 0;
}
/// Bytes of X for N tokens in the given format.
inline int64_t activationBytes(ActivationFormat A, int64_t K, int64_t N) {
  return N * (A == ActivationFormat::Q8 ? q8RowBytes(K) : K * 4);
}

/// Name of the quantizer kernel for rows of K.
LUMEN_API std::string quantizeFunctionName(int64_t K);

} // namespace lumen::codegen

#endif
