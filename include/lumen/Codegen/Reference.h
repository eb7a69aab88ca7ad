//===- lumen/Codegen/Reference.h - Scalar references of the kernels -*- C++ -*-===//
//
// Plain C++ definitions of what the generated kernels compute, for tests and
// for the scalar reference forward pass.
//
//===----------------------------------------------------------------------===//
#ifndef LUMEN_CODEGEN_REFERENCE_H
#define LUMEN_CODEGEN_REFERENCE_H

#include "lumen/Export.h"

#include "lumen/Codegen/KernelSpec.h"

#include <cstdint>

namespace lumen::codegen {

/// N rows of K floats into the Q8 activation layout (KernelABI.h), exactly
/// as the generated quantizer does.
/// ScaleBlock 256: one scale per 256 elements (KernelABI.h).
LUMEN_API void referenceQuantize(int64_t K, int64_t N, const float *X, uint8_t *Q, int64_t ScaleBlock = 32);

/// Replays Spec's kernel in scalar code, operation for operation (lanes,
/// accumulator sets, reduction tree), so results are bit-identical.
LUMEN_API void replayMatmul(const KernelSpec &Spec, const uint8_t *W, const void *X, float *Y);
/// The same for rows [RowBegin, RowEnd) only (Y[t * M + r] for those r):
/// the tuner checks a large kernel's first and last row tiles.
LUMEN_API void replayMatmulRows(const KernelSpec &Spec, const uint8_t *W, const void *X, float *Y, int64_t RowBegin,
                                int64_t RowEnd);

/// The math with no kernel structure: double-precision sums of the
/// dequantized weights (W in Shape.Layout) times f32 activations. Y is N x M.
LUMEN_API void plainMatmul(const MatmulShape &Shape, const uint8_t *W, const float *X, float *Y);

} // namespace lumen::codegen

#endif
