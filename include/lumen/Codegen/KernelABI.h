//===- lumen/Codegen/KernelABI.h - Calling convention of kernels -*- C++ -*-===//
//
// The C ABI of every generated kernel. These layouts are a contract between
// the generator, the runtime and library users; change them only together.
//
// Matmul:  void F(const uint8_t *W, const void *X, float *Y,
//                 int64_t RowBegin, int64_t RowEnd)
//   Computes Y[t * M + r] = sum_k W[r][k] * X[t][k] for r in [RowBegin, RowEnd)
//   and every token t < N. Rows are independent, so a thread pool splits the
//   row range; for the interleaved layouts RowBegin and RowEnd must be
//   multiples of the row group (8 or 16, layoutRowGroup). W is the weight
//   matrix in the spec's layout (below). X is N rows of K floats
//   (ActivationFormat::F32) or N quantized rows (ActivationFormat::Q8, below).
//
// Quantize: void F(const float *X, uint8_t *Q, int64_t TokenBegin, int64_t TokenEnd)
//   Quantizes rows of K floats into the Q8 layout.
// Quantize blocks: void F(const float *X, uint8_t *Q, int64_t Tokens,
//                         int64_t BlockBegin, int64_t BlockEnd)
//   The same for the 32-value blocks [BlockBegin, BlockEnd) of tokens
//   [0, Tokens) only, every field of those blocks and nothing else: the
//   thread that produced a range of a row quantizes it where it is.
//
// Q8 activation row layout, q8RowBytes(K) = 3 * K + K / 4 bytes per token:
//   int8  Quants[K]          Q8_0 quants, block b = Quants[32b .. 32b+31]
//   float Scale8[K / 4]      block b's fp16-rounded scale, repeated 8 times
//   int32 Bias8[K / 4]       -128 * (sum of quants 4g .. 4g+3), one per group g
//   int32 BlockBias[K / 32]  -128 * (sum of block b's 32 quants)
//   float BlockScale[K / 32] block b's fp16-rounded scale, once
// The Rows kernels read Scale8 and Bias8, the interleaved kernels only the
// compact BlockBias and BlockScale: 8 bytes of activation metadata a block
// instead of a 64-byte line per two blocks beside the weight stream in L1
// (ffn_down, K = 4864, went from 86-88 % to 96-103 % of the DRAM probe).
// The weights enter vpdpbusd as unsigned (w + 128, by flipping the sign
// bit, or stored so by Interleaved16); starting each block's dot product at
// Bias8 (a lane per 4-quant group, Rows layout) or BlockBias (a lane per
// row, interleaved layouts) cancels the +128 exactly. Scale8 is
// pre-broadcast so a lane vector of scales is one load.
//
// Weight layouts (WeightLayout in KernelSpec.h):
//   Rows          row r at W + r * weightRowBytes(K): K/32 blocks of
//                 {fp16 scale, int8 quants[32]} -- the GGUF file's Q8_0.
//   Interleaved8  (Q8_0, M % 8 == 0) row group g = rows 8g .. 8g+7 at
//                 W + g * 8 * weightRowBytes(K); its block b, 272 bytes at
//                 offset 272 b, is {fp16 scale[8] (row 0..7),
//                 int8 quants[8][8][4]}: quants[j][r][i] = row r's quant
//                 32b + 4j + i. The same bytes as Rows, reordered.
//   Interleaved16 (Q8_0, M % 16 == 0) row group g = rows 16g .. 16g+15 at
//                 W + g * 16 * weightRowBytes(K); its block b, 544 bytes at
//                 offset 544 b, is {fp16 scale[16] (row 0..15),
//                 uint8 quants[8][16][4]}: quants[j][r][i] = row r's quant
//                 32b + 4j + i, plus 128. The same bytes as Rows, reordered,
//                 quants with their sign bit flipped.
//
// InterleavedGeometry below gives these offsets to the generator, the
// repacker and the readers, so they cannot disagree.
//
//===----------------------------------------------------------------------===//
#ifndef LUMEN_CODEGEN_KERNELABI_H
#define LUMEN_CODEGEN_KERNELABI_H

#include "lumen/Export.h"

#include "lumen/Codegen/KernelSpec.h"

#include <cstdint>
#include <string>

namespace lumen::codegen {

using MatmulFn = void (*)(const uint8_t *W, const void *X, float *Y, int64_t RowBegin,
                          int64_t RowEnd);
using QuantizeFn = void (*)(const float *X, uint8_t *Q, int64_t TokenBegin, int64_t TokenEnd);
using QuantizeBlocksFn = void (*)(const float *X, uint8_t *Q, int64_t Tokens, int64_t BlockBegin,
                                  int64_t BlockEnd);

inline int64_t q8RowBytes(int64_t K) { return 3 * K + K / 4; }
inline int64_t q8BlockBiasOffset(int64_t K) { return 3 * K; }
inline int64_t q8BlockScaleOffset(int64_t K) { return 3 * K + K / 8; }
inline int64_t weightRowBytes(WeightType W, int64_t K) {
  switch (W) {
  case WeightType::Q8_0: return K / 32 * 34;
  case WeightType::F16: return K * 2;
  case WeightType::F32: return K * 4;
  case WeightType::BF16: return K * 2;
  case WeightType::Q4_0: return K / 32 * 18;
  case WeightType::Q4_1: return K / 32 * 20;
  case WeightType::Q5_0: return K / 32 * 22;
  case WeightType::Q5_1: return K / 32 * 24;
  case WeightType::IQ4_NL: return K / 32 * 18;
  case WeightType::Q2_K: return K / 256 * 84;
  case WeightType::Q3_K: return K / 256 * 110;
  case WeightType::Q4_K: return K / 256 * 144;
  case WeightType::Q5_K: return K / 256 * 176;
  case WeightType::Q6_K: return K / 256 * 210;
  }
  return 0;
}
/// Bytes of X for N tokens in the given format.
inline int64_t activationBytes(ActivationFormat A, int64_t K, int64_t N) {
  return N * (A == ActivationFormat::Q8 ? q8RowBytes(K) : K * 4);
}

/// Name of the quantizer kernel for rows of K, and of its block-range form.
/// ScaleBlock 256: one scale per 256-element super-block (Scale8 and
/// BlockScale equal across its 8 blocks; KernelSpec::SuperBlockScales), the
/// block range then in whole super-blocks.
LUMEN_API std::string quantizeFunctionName(int64_t K, int64_t ScaleBlock = 32);
LUMEN_API std::string quantizeBlocksFunctionName(int64_t K, int64_t ScaleBlock = 32);

/// Rows that a layout stores together (1, 8 or 16); row ranges split at
/// multiples. kMaxRowGroup is a multiple of every layout's group.
inline int64_t layoutRowGroup(WeightLayout L) {
  return L == WeightLayout::Interleaved16 ? 16 : L == WeightLayout::Interleaved8 ? 8 : 1;
}
constexpr int64_t kMaxRowGroup = 16;

/// Where an interleaved layout keeps block b of a row group, relative to the
/// group's start: the rows' fp16 scales (row r at 2 r), then 8 quant pieces j
/// of 4 quants of every row (row r at 4 r). One stream: a separate stream
/// of scales after the quants ran at half the DRAM speed (BENCHMARK.md).
struct InterleavedGeometry {
  int64_t Rows;  // Rows per group: 8 or 16.
  bool Unsigned; // Quants stored + 128 (sign bit flipped).

  static InterleavedGeometry of(WeightLayout L) {
    return {layoutRowGroup(L), L == WeightLayout::Interleaved16};
  }
  int64_t blockBytes() const { return 34 * Rows; }
  int64_t scales(int64_t B) const { return B * blockBytes(); }
  int64_t quants(int64_t B, int64_t J) const { return B * blockBytes() + 2 * Rows + J * 4 * Rows; }
};

/// Whether W is one of the 32-element 4/5-bit types whose blocks the
/// interleaved layouts store (Q4_0, Q4_1, Q5_0, Q5_1, IQ4_NL).
inline bool interleavesBlocks(WeightType W) {
  return W == WeightType::Q4_0 || W == WeightType::Q4_1 || W == WeightType::Q5_0 || W == WeightType::Q5_1 ||
         W == WeightType::IQ4_NL;
}

/// Where an interleaved layout keeps block b of a row group of one of those
/// types, relative to the group's start: the rows' fp16 scales d (row r at
/// 2r), their fp16 minima m (the _1 types), 4 nibble pieces v of 4 bytes a
/// row (the file's bytes 4v..4v+3: elements 4v..4v+3 in the low nibbles,
/// 16+4v..16+4v+3 in the high ones), then for Q5 the fifth bits as 8 masks
/// of a bit per row and element, mask v for the low nibbles of piece v and
/// 4+v for its high ones (row r's element 4v+i at bit 4r+i). The same size
/// as the rows: a vector of 4 bytes a row feeds vpdpbusd for every row.
struct InterleavedBlockGeometry {
  int64_t Rows;       // 8 or 16.
  bool HasMin, HasHigh;
  int64_t BlockBytes; // Rows x the type's block.

  static InterleavedBlockGeometry of(WeightType W, WeightLayout L) {
    const int64_t R = layoutRowGroup(L);
    return {R, W == WeightType::Q4_1 || W == WeightType::Q5_1, W == WeightType::Q5_0 || W == WeightType::Q5_1,
            R * weightRowBytes(W, 32)};
  }
  int64_t scales(int64_t B) const { return B * BlockBytes; }
  int64_t mins(int64_t B) const { return B * BlockBytes + 2 * Rows; }
  int64_t nibbles(int64_t B, int64_t V) const { return B * BlockBytes + (HasMin ? 4 : 2) * Rows + V * 4 * Rows; }
  int64_t highBits(int64_t B, int64_t J) const { return nibbles(B, 0) + 16 * Rows + J * Rows / 2; }
};

/// Whether W is Q4_K or Q5_K, whose super-blocks the interleaved layouts
/// store (InterleavedKQuantGeometry).
inline bool interleavesKQuants(WeightType W) { return W == WeightType::Q4_K || W == WeightType::Q5_K; }

/// Where an interleaved layout keeps a row group of Q4_K or Q5_K, in the
/// shape of the legacy blocks': each 32-element sub-block s (sub-block s % 8
/// of super-block s / 8) of all the group's rows is one run of subBytes():
/// the rows' 6-bit scale and minimum codes (a byte a row, the scale in its
/// low six bits and the minimum's low two bits above; then a nibble a row
/// of the minimum's high four bits, row r's low in byte r % (Rows / 2) for
/// the first half of the rows, high for the second), for Q5_K the fifth
/// bits as a piece of 4 bytes a row (byte i: the fifth bit of element
/// 16h + 4v + i at bit 2v + h), and 4 nibble pieces as
/// InterleavedBlockGeometry keeps a block's. Each super-block's 8 runs
/// follow the fp16 d of its rows, then their dmin: one stream, the same
/// size as the rows. A decode step of a sub-block streamed from DRAM
/// near the legacy blocks' rate, one of a whole super-block (2304 bytes of
/// 16 rows, its scales in planes ahead) at 60-80 % of it (BENCHMARK.md).
struct InterleavedKQuantGeometry {
  int64_t Rows; // 8 or 16.
  bool HasHigh; // Q5_K.
  int64_t Blocks; // Super-blocks a row.

  static InterleavedKQuantGeometry of(WeightType W, WeightLayout L, int64_t K) {
    return {layoutRowGroup(L), W == WeightType::Q5_K, K / 256};
  }
  /// Bytes of a sub-block of the group: 17.5 (Q4_K) or 21.5 (Q5_K) a row.
  int64_t subBytes() const { return Rows * (HasHigh ? 43 : 35) / 2; }
  /// Bytes of a super-block of the group: its d and dmin, then 8 sub-blocks.
  int64_t superBytes() const { return 4 * Rows + 8 * subBytes(); }
  int64_t d(int64_t B) const { return B * superBytes(); }
  int64_t dmin(int64_t B) const { return d(B) + 2 * Rows; }
  /// Where sub-block S's run starts; its fields relative to that.
  int64_t sub(int64_t S) const { return d(S / 8) + 4 * Rows + S % 8 * subBytes(); }
  int64_t codesAt() const { return 0; }
  int64_t minHighAt() const { return Rows; }
  int64_t highAt() const { return 3 * Rows / 2; }
  int64_t nibblesAt(int64_t V) const { return (HasHigh ? 11 : 3) * Rows / 2 + V * 4 * Rows; }
};

/// Whether W is Q6_K, whose super-blocks the interleaved layouts store
/// (InterleavedQ6KGeometry).
inline bool interleavesQ6_K(WeightType W) { return W == WeightType::Q6_K; }

/// Where an interleaved layout keeps a row group of Q6_K, in the same
/// shape: each 32-element sub-block s of all the group's rows is one run of
/// subBytes(): the rows' two int8 scales (of elements 0-15, then 16-31) as
/// two planes of a byte a row, the top two bits of the 6-bit codes as 2
/// pieces of 4 bytes a row (piece p, byte i: elements 4v+i and 16+4v+i of
/// v = 2p and 2p+1, each 2-bit field k = 2 (v % 2) + h at bits 2k, h = 1
/// for the second), then the low nibbles as 4 pieces v of 4 bytes a row
/// (byte i: element 4v+i low, 16+4v+i high). Each super-block's 8 runs
/// follow the fp16 d of its rows: one stream, the same size as the rows.
struct InterleavedQ6KGeometry {
  int64_t Rows;   // 8 or 16.
  int64_t Blocks; // Super-blocks a row.

  static InterleavedQ6KGeometry of(WeightLayout L, int64_t K) { return {layoutRowGroup(L), K / 256}; }
  /// Bytes of a sub-block of the group: 26 a row.
  int64_t subBytes() const { return 26 * Rows; }
  /// Bytes of a super-block of the group: its d, then 8 sub-blocks.
  int64_t superBytes() const { return 2 * Rows + 8 * subBytes(); }
  int64_t d(int64_t B) const { return B * superBytes(); }
  /// Where sub-block S's run starts; its fields relative to that.
  int64_t sub(int64_t S) const { return d(S / 8) + 2 * Rows + S % 8 * subBytes(); }
  int64_t scalesAt(int64_t H) const { return H * Rows; }
  int64_t highAt(int64_t P) const { return (2 + 4 * P) * Rows; }
  int64_t lowAt(int64_t V) const { return (10 + 4 * V) * Rows; }
};

/// Whether W is a K-quant whose interleaved layout stores one run a
/// 32-element sub-block (Q4_K, Q5_K, Q6_K).
inline bool interleavesSubBlockRuns(WeightType W) { return interleavesKQuants(W) || interleavesQ6_K(W); }

/// Whether the interleaved layouts store W at all (layoutSupports says at
/// which shapes).
inline bool interleaves(WeightType W) {
  return W == WeightType::Q8_0 || interleavesBlocks(W) || interleavesKQuants(W) || interleavesQ6_K(W);
}

/// Whether an M x K matrix of type W can be stored in layout L.
LUMEN_API bool layoutSupports(WeightLayout L, WeightType W, int64_t M, int64_t K);

/// Copies rows [RowBegin, RowEnd) of an M x K Q8_0 matrix from the Rows
/// layout (Src) to layout To (Dst, the same total size; rows outside the
/// range are not touched). Row bounds must be multiples of
/// layoutRowGroup(To), and layoutSupports(To, Q8_0, M, K) must hold.
LUMEN_API void repackQ8_0(const uint8_t *Src, uint8_t *Dst, WeightLayout To, int64_t M, int64_t K,
                          int64_t RowBegin, int64_t RowEnd);

/// repackQ8_0, or for the types interleavesBlocks, interleavesKQuants and
/// interleavesQ6_K
/// name the same from their file blocks to their interleaved geometry; a
/// copy for Rows.
LUMEN_API void repackWeights(WeightType W, const uint8_t *Src, uint8_t *Dst, WeightLayout To, int64_t M,
                             int64_t K, int64_t RowBegin, int64_t RowEnd);

/// Row R of an M x K matrix stored in Shape's type and layout, as floats.
LUMEN_API void dequantizeWeightRow(const MatmulShape &Shape, const uint8_t *W, int64_t R, float *Out);

/// Block B of row R of a Q8_0 matrix in layout L: its fp16 scale and quants.
struct Q8Block {
  uint16_t Scale;
  int8_t Quants[32];
};
LUMEN_API Q8Block readQ8Block(const uint8_t *W, WeightLayout L, int64_t K, int64_t R, int64_t B);

} // namespace lumen::codegen

#endif
