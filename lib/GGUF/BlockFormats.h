//===- BlockFormats.h - ggml's quantized blocks, decoded -------*- C++ -*-===//
//
// Scalar decoding of the block formats of ggml-common.h, one function per
// format: the definition every kernel is checked against; and the encoders. Each takes
// N / BlockSize whole blocks.
//
//===----------------------------------------------------------------------===//
#ifndef LUMEN_LIB_GGUF_BLOCKFORMATS_H
#define LUMEN_LIB_GGUF_BLOCKFORMATS_H

#include <cstdint>
#include <cstring>

namespace lumen::gguf::blocks {

/// A little-endian value at P, which need not be aligned.
template <typename T> T loadAt(const uint8_t *P) {
  T V;
  std::memcpy(&V, P, sizeof(T));
  return V;
}

// 32-element blocks (LegacyQuants.cpp).
void dequantizeQ4_0(const uint8_t *In, float *Out, int64_t N);
void dequantizeQ4_1(const uint8_t *In, float *Out, int64_t N);
void dequantizeQ5_0(const uint8_t *In, float *Out, int64_t N);
void dequantizeQ5_1(const uint8_t *In, float *Out, int64_t N);
void dequantizeIQ4_NL(const uint8_t *In, float *Out, int64_t N);

// 256-element super-blocks (KQuants.cpp).
void dequantizeQ2_K(const uint8_t *In, float *Out, int64_t N);
void dequantizeQ3_K(const uint8_t *In, float *Out, int64_t N);
void dequantizeQ4_K(const uint8_t *In, float *Out, int64_t N);
void dequantizeQ5_K(const uint8_t *In, float *Out, int64_t N);
void dequantizeQ6_K(const uint8_t *In, float *Out, int64_t N);

// Encoders: N floats (whole blocks) to N / BlockSize blocks, each block's
// scales chosen by the least-squares search of QuantFit.h.
void quantizeQ4_0(const float *X, uint8_t *Out, int64_t N);
void quantizeQ4_1(const float *X, uint8_t *Out, int64_t N);
void quantizeQ5_0(const float *X, uint8_t *Out, int64_t N);
void quantizeQ5_1(const float *X, uint8_t *Out, int64_t N);
void quantizeIQ4_NL(const float *X, uint8_t *Out, int64_t N);
void quantizeQ2_K(const float *X, uint8_t *Out, int64_t N);
void quantizeQ3_K(const float *X, uint8_t *Out, int64_t N);
void quantizeQ4_K(const float *X, uint8_t *Out, int64_t N);
void quantizeQ5_K(const float *X, uint8_t *Out, int64_t N);
void quantizeQ6_K(const float *X, uint8_t *Out, int64_t N);

} // namespace lumen::gguf::blocks

#endif
