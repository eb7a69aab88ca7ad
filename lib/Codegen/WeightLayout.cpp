//===- WeightLayout.cpp - Weight layouts the kernels read ------------------===//
//
// The byte arrangements of KernelABI.h: repacking from the file's Rows
// layout, and reading a block or a row back for the scalar references and
// the embedding lookup.
//
//===----------------------------------------------------------------------===//
#include "lumen/Codegen/KernelABI.h"

#include "lumen/GGUF/Quantize.h"

#include <cassert>
#include <cstring>

namespace lumen::codegen {

namespace {
constexpr int64_t kBlockBytes = 34;
} // namespace

const char *weightLayoutName(WeightLayout L) {
  switch (L) {
  case WeightLayout::Rows: return "rows";
  case WeightLayout::Interleaved8: return "interleaved8";
  case WeightLayout::Interleaved16: return "interleaved16";
  }
  return "?";
}

bool layoutSupports(WeightLayout L, WeightType W, int64_t M, int64_t K) {
  if (L == WeightLayout::Rows)
    return true;
  return W == WeightType::Q8_0 && M > 0 && M % layoutRowGroup(L) == 0 && K > 0 && K % 32 == 0;
}

void repackQ8_0(const uint8_t *Src, uint8_t *Dst, WeightLayout To, int64_t M, int64_t K,
                int64_t RowBegin, int64_t RowEnd) {
  const int64_t RowBytes = weightRowBytes(WeightType::Q8_0, K), Blocks = K / 32;
  if (To == WeightLayout::Rows) {
    std::memcpy(Dst + RowBegin * RowBytes, Src + RowBegin * RowBytes, (RowEnd - RowBegin) * RowBytes);
    return;
  }
  const InterleavedGeometry Geo = InterleavedGeometry::of(To);
  assert(layoutSupports(To, WeightType::Q8_0, M, K) && RowBegin % Geo.Rows == 0 &&
         RowEnd % Geo.Rows == 0);
  (void)M;
  const uint32_t Flip = Geo.Unsigned ? 0x80808080u : 0;
  for (int64_t G = RowBegin / Geo.Rows; G < RowEnd / Geo.Rows; ++G) {
    const uint8_t *Rows = Src + G * Geo.Rows * RowBytes;
    uint8_t *Out = Dst + G * Geo.Rows * RowBytes;
    for (int64_t B = 0; B < Blocks; ++B)
      for (int64_t R = 0; R < Geo.Rows; ++R) {
        const uint8_t *Block = Rows + R * RowBytes + B * kBlockBytes;
        std::memcpy(Out + Geo.scales(B) + 2 * R, Block, 2);
        for (int64_t J = 0; J < 8; ++J) {
          uint32_t Piece;
          std::memcpy(&Piece, Block + 2 + 4 * J, 4);
          Piece ^= Flip;
          std::memcpy(Out + Geo.quants(B, J) + 4 * R, &Piece, 4);
        }
      }
  }
}

Q8Block readQ8Block(const uint8_t *W, WeightLayout L, int64_t K, int64_t R, int64_t B) {
  const int64_t RowBytes = weightRowBytes(WeightType::Q8_0, K);
  Q8Block Out;
  if (L == WeightLayout::Rows) {
    const uint8_t *Block = W + R * RowBytes + B * kBlockBytes;
    std::memcpy(&Out.Scale, Block, 2);
    std::memcpy(Out.Quants, Block + 2, 32);
    return Out;
  }
  const InterleavedGeometry Geo = InterleavedGeometry::of(L);
  const uint8_t *Group = W + (R / Geo.Rows) * Geo.Rows * RowBytes;
  const int64_t Lane = R % Geo.Rows;
  const uint8_t Flip = Geo.Unsigned ? 0x80 : 0;
  std::memcpy(&Out.Scale, Group + Geo.scales(B) + 2 * Lane, 2);
  for (int64_t J = 0; J < 8; ++J)
    for (int64_t I = 0; I < 4; ++I)
      Out.Quants[4 * J + I] = static_cast<int8_t>(Group[Geo.quants(B, J) + 4 * Lane + I] ^ Flip);
  return Out;
}

void dequantizeWeightRow(const MatmulShape &Shape, const uint8_t *W, int64_t R, float *Out) {
  const int64_t K = Shape.K;
  if (Shape.Layout == WeightLayout::Rows) {
    gguf::dequantizeRow(tensorType(Shape.Weights), W + R * weightRowBytes(Shape.Weights, K), Out, K);
    return;
  }
  for (int64_t B = 0; B < K / 32; ++B) {
    Q8Block Blk = readQ8Block(W, Shape.Layout, K, R, B);
    float D = gguf::halfToFloat(Blk.Scale);
    for (int I = 0; I < 32; ++I)
      Out[B * 32 + I] = D * Blk.Quants[I];
  }
}

} // namespace lumen::codegen
