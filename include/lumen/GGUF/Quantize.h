//===- lumen/GGUF/Quantize.h - Scalar (de)quantization -----------*- C++ -*-===//
//
// Reference conversions for the tensor types Lumen reads: IEEE half,
// bfloat16, Q8_0 and the block formats of llama.cpp's quantization presets.
// These are the plain scalar definitions; the JIT kernels are tested against
// them.
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

/// Converts one row of N elements (whole blocks) to floats, exactly as ggml's
/// dequantize_row_* do: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, IQ4_NL
/// and Q2_K ... Q6_K. Returns false for other types.
LUMEN_API bool dequantizeRow(TensorType Type, const void *Row, float *Out, int64_t N);

/// Whether quantizeRow can write Type.
LUMEN_API bool canQuantizeTo(TensorType Type);

/// Converts one row of N floats (whole blocks of Type) to Type: F32, F16 and
/// BF16 by rounding to nearest even; Q8_0 by ggml's rule, byte for byte as
/// ggml writes it; the other types of dequantizeRow by a least-squares search
/// of each block's scales (lib/GGUF/QuantFit.h) whose candidates include
/// ggml's choice. X must be finite. Returns false for other types.
LUMEN_API bool quantizeRow(TensorType Type, const float *X, void *Out, int64_t N);

} // namespace lumen::gguf

#endif
