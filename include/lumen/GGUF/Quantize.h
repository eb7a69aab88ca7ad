//===- lumen/GGUF/Quantize.h - Scalar (de)quantization -----------*- C++ -*-===//
//
// Reference conversions for the tensor types Lumen computes on: IEEE half,
// bfloat16 and Q8_0. These are the plain scalar definitions; the JIT kernels
// are tested against them.
//
//===----------------------------------------------------------------------===//
#ifndef LUMEN_GGUF_QUANTIZE_H
#define LUMEN_GGUF_QUANTIZE_H

#include "lumen/Export.h"

#include "lumen/GGUF/GGUFTypes.h"

#include <cstdint>

namespace lumen::gguf {

LUMEN_API float halfToFloat(uint16_t H);
/// Round to nearest even; overflow gives infinity.
LUMEN_API uint16_t floatToHalf(float F);
LUMEN_API float bf16ToFloat(uint16_t B);
/// Round to nearest even, as ggml's fp32 -> bf16; NaN stays NaN.
LUMEN_API uint16_t floatToBf16(float F);

/// Quantizes N floats (a multiple of 32) to N/32 Q8_0 blocks, as ggml does:
/// scale = max|x| / 127, quants = round-half-away(x / scale).
LUMEN_API void quantizeRowQ8_0(const float *X, BlockQ8_0 *Out, int64_t N);
LUMEN_API void dequantizeRowQ8_0(const BlockQ8_0 *In, float *Out, int64_t N);

/// Converts one row of N elements of a computable type (F32, F16, BF16,
/// Q8_0) to floats. Returns false for other types.
LUMEN_API bool dequantizeRow(TensorType Type, const void *Row, float *Out, int64_t N);

} // namespace lumen::gguf

#endif
