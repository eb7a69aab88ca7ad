//===- VectorOps.h - Vectorised elementwise ops of the JIT path -*- C++ -*-===//
//
// The small ops between matmuls (norms, RoPE, softmax, SiLU, attention dot
// over the fp16 KV cache), written with AVX2/FMA/F16C intrinsics.
// This file's .cpp is compiled for AVX2; the JIT path requires it anyway.
//
//===----------------------------------------------------------------------===//
#ifndef LUMEN_LIB_MODEL_VECTOROPS_H
#define LUMEN_LIB_MODEL_VECTOROPS_H

#include <cstdint>

namespace lumen::model::vec {

/// Which loops the ops that have 512-bit forms take: 256-bit, 512-bit (the
/// CPU has AVX-512 F/BW/VL/DQ), or the 512-bit loops as pairs of 256-bit
/// halves (any AVX2 host; for tests: the same bits as the native ones).
enum class Width { Avx2, Native512, Emulated512 };

/// Positions per block of the transposed K cache (attendToken's layout).
constexpr int64_t kKeyBlock = 64;

void rmsNorm(const float *X, const float *Weight, float *Out, int64_t N, float Eps);
void add(float *X, const float *Y, int64_t N);                 // X += Y
/// Out may be Gate or Up (each element is read before it is written).
void siluMul(const float *Gate, const float *Up, float *Out, int64_t N);
/// The same with the loops of Wide (every width gives the same bits).
void siluMul(const float *Gate, const float *Up, float *Out, int64_t N, Width Wide);
/// NEOX rotation of one head with precomputed Cos/Sin of HeadDim/2 angles.
void rope(float *Head, const float *Cos, const float *Sin, int64_t HeadDim);
/// RoPE on adjacent pairs: element 2i with 2i + 1 (Llama's RopeStyle::Pairs).
void ropePairs(float *Head, const float *Cos, const float *Sin, int64_t HeadDim);
void toHalf(const float *X, uint16_t *Out, int64_t N);
/// Out[i * Stride] = fp16(X[i]) for i < N.
void toHalfStrided(const float *X, uint16_t *Out, int64_t N, int64_t Stride);
/// Out = X rounded to fp16 precision (nearest even), kept as floats.
void roundToHalf(const float *X, float *Out, int64_t N);
/// Where one KV head's cached keys and values are (read by attendToken).
/// Positions come in blocks of kKeyBlock: block b's keys, transposed
/// ([head dim][position in block]), and its values (kKeyBlock rows of
/// HeadDim) are each kKeyBlock * HeadDim contiguous elements. Runs of
/// SegmentBlocks blocks are contiguous; run s starts s * SegmentStride
/// elements after K (V).
struct CachedHead {
  const uint16_t *K, *V;
  int64_t HeadDim;
  int64_t SegmentBlocks;
  int64_t SegmentStride;

  int64_t blockOffset(int64_t B) const {
    return B / SegmentBlocks * SegmentStride + B % SegmentBlocks * kKeyBlock * HeadDim;
  }
  const uint16_t *keyBlock(int64_t B) const { return K + blockOffset(B); }
  const uint16_t *valueBlock(int64_t B) const { return V + blockOffset(B); }
};

/// One token's attention for Rows query heads that share a KV head, read
/// straight from the fp16 cache (converted in registers, no staging copy):
/// Scores[r * Stride + p] = Scale * dot(Q[r], K[p]) for p < Seen, softmaxed
/// with softmaxToHalf, then Out[r * OutStride + d] = sum_p P[r][p] * V[p][d].
/// Q is Rows x HeadDim (fp16-rounded). Stride >= Seen rounded up to
/// kKeyBlock.
/// Each lane sums its products in order with fused multiply-adds (dims for
/// a score, positions for an output), so every width gives the same bits.
/// Wide's 512-bit loops run when HeadDim % 64 == 0, else the 256-bit ones.
void attendToken(const float *Q, int64_t Rows, const CachedHead &Cache, int64_t Seen, float Scale, float *Scores,
                 int64_t Stride, float *Out, int64_t OutStride, Width Wide);
/// In-place softmax of N scores, the probabilities rounded to fp16 precision
/// (as they enter llama.cpp's product with an fp16 V cache).
void softmaxToHalf(float *X, int64_t N);

} // namespace lumen::model::vec

#endif
