//===- WeightLayout.cpp - Weight layouts the kernels read ------------------===//
//
// The byte arrangements of KernelABI.h: repacking from the file's Rows
// layout, and reading a block or a row back for the scalar references and
// the embedding lookup.
//
//===----------------------------------------------------------------------===//
#include "lumen/Codegen/KernelABI.h"

#include "BlockFormat.h"

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
  return interleaves(W) && M > 0 &&
         M % layoutRowGroup(L) == 0 && K > 0 && K % weightBlockElements(W) == 0;
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

namespace {

/// Rows [RowBegin, RowEnd) of a legacy 4/5-bit matrix into the interleaved
/// layout To (InterleavedBlockGeometry).
void repackLegacyBlocks(const BlockFormat &F, const uint8_t *Src, uint8_t *Dst, WeightLayout To, int64_t K,
                        int64_t RowBegin, int64_t RowEnd) {
  const LegacyLayout At = *F.legacyLayout();
  const InterleavedBlockGeometry Geo = InterleavedBlockGeometry::of(F.Type, To);
  const int64_t RowBytes = weightRowBytes(F.Type, K), Blocks = K / 32, R16 = Geo.Rows;
  for (int64_t G = RowBegin / R16; G < RowEnd / R16; ++G) {
    const uint8_t *Rows = Src + G * R16 * RowBytes;
    uint8_t *Out = Dst + G * R16 * RowBytes;
    for (int64_t B = 0; B < Blocks; ++B) {
      uint64_t Masks[8] = {};
      for (int64_t R = 0; R < R16; ++R) {
        const uint8_t *Block = Rows + R * RowBytes + B * F.Bytes;
        std::memcpy(Out + Geo.scales(B) + 2 * R, Block + At.D, 2);
        if (Geo.HasMin)
          std::memcpy(Out + Geo.mins(B) + 2 * R, Block + At.M, 2);
        for (int64_t V = 0; V < 4; ++V)
          std::memcpy(Out + Geo.nibbles(B, V) + 4 * R, Block + At.Qs + 4 * V, 4);
        if (Geo.HasHigh) {
          uint32_t High;
          std::memcpy(&High, Block + At.High, 4);
          for (int64_t V = 0; V < 4; ++V)
            for (int64_t I = 0; I < 4; ++I) {
              Masks[V] |= uint64_t((High >> (4 * V + I)) & 1) << (4 * R + I);
              Masks[4 + V] |= uint64_t((High >> (16 + 4 * V + I)) & 1) << (4 * R + I);
            }
        }
      }
      if (Geo.HasHigh)
        for (int64_t J = 0; J < 8; ++J)
          std::memcpy(Out + Geo.highBits(B, J), &Masks[J], R16 / 2); // Little-endian: the low bytes.
    }
  }
}

/// Rows [RowBegin, RowEnd) of a Q4_K/Q5_K matrix into the interleaved
/// layout To (InterleavedKQuantGeometry). File super-block: d, dmin,
/// scales[12], [qh[32]], qs[128].
void repackKQuants(WeightType W, const uint8_t *Src, uint8_t *Dst, WeightLayout To, int64_t K, int64_t RowBegin,
                   int64_t RowEnd) {
  const InterleavedKQuantGeometry Geo = InterleavedKQuantGeometry::of(W, To);
  const int64_t RowBytes = weightRowBytes(W, K), Blocks = K / 256, Bytes = weightRowBytes(W, 256);
  const int64_t QsAt = Geo.HasHigh ? 48 : 16;
  for (int64_t G = RowBegin / Geo.Rows; G < RowEnd / Geo.Rows; ++G) {
    const uint8_t *Rows = Src + G * Geo.Rows * RowBytes;
    uint8_t *Out = Dst + G * Geo.Rows * RowBytes;
    for (int64_t B = 0; B < Blocks; ++B)
      for (int64_t R = 0; R < Geo.Rows; ++R) {
        const uint8_t *Block = Rows + R * RowBytes + B * Bytes;
        std::memcpy(Out + Geo.d(B) + 2 * R, Block, 2);
        std::memcpy(Out + Geo.dmin(B) + 2 * R, Block + 2, 2);
        for (int64_t P = 0; P < 12; ++P)
          Out[Geo.scales(B, P) + R] = Block[4 + P];
        if (Geo.HasHigh)
          for (int64_t V = 0; V < 8; ++V)
            std::memcpy(Out + Geo.high(B, V) + 4 * R, Block + 16 + 4 * V, 4);
        for (int64_t C = 0; C < 4; ++C)
          for (int64_t V = 0; V < 8; ++V)
            std::memcpy(Out + Geo.quants(B, C, V) + 4 * R, Block + QsAt + 32 * C + 4 * V, 4);
      }
  }
}

/// Where file super-block field bytes go in the interleaved Q6_K layout:
/// Visit(file offset, layout offset, bytes) for every piece of row Lane's
/// super-block B (file block: ql[128], qh[64], scales[16], d).
template <typename Fn> void forEachQ6KPiece(const InterleavedQ6KGeometry &Geo, int64_t B, int64_t Lane, Fn Visit) {
  for (int64_t H = 0; H < 2; ++H)
    for (int64_t V = 0; V < 8; ++V) {
      for (int64_t Q = 0; Q < 2; ++Q)
        Visit(64 * H + 32 * Q + 4 * V, Geo.low(B, H, Q, V) + 4 * Lane, 4);
      Visit(128 + 32 * H + 4 * V, Geo.high(B, H, V) + 4 * Lane, 4);
    }
  for (int64_t J = 0; J < 16; ++J)
    Visit(192 + J, Geo.scales(B, J) + Lane, 1);
  Visit(208, Geo.d(B) + 2 * Lane, 2);
}

/// Rows [RowBegin, RowEnd) of a Q6_K matrix into the interleaved layout To.
void repackQ6_K(const uint8_t *Src, uint8_t *Dst, WeightLayout To, int64_t K, int64_t RowBegin, int64_t RowEnd) {
  const InterleavedQ6KGeometry Geo = InterleavedQ6KGeometry::of(To, K);
  const int64_t RowBytes = weightRowBytes(WeightType::Q6_K, K);
  for (int64_t G = RowBegin / Geo.Rows; G < RowEnd / Geo.Rows; ++G) {
    const uint8_t *Rows = Src + G * Geo.Rows * RowBytes;
    uint8_t *Out = Dst + G * Geo.Rows * RowBytes;
    for (int64_t B = 0; B < Geo.Blocks; ++B)
      for (int64_t R = 0; R < Geo.Rows; ++R) {
        const uint8_t *Block = Rows + R * RowBytes + B * 210;
        forEachQ6KPiece(Geo, B, R, [&](int64_t From, int64_t To, int64_t N) { std::memcpy(Out + To, Block + From, N); });
      }
  }
}

} // namespace

void readInterleavedQ6K(const uint8_t *W, WeightLayout L, int64_t K, int64_t R, int64_t B, uint8_t Block[210]) {
  const InterleavedQ6KGeometry Geo = InterleavedQ6KGeometry::of(L, K);
  const uint8_t *Group = W + R / Geo.Rows * Geo.Rows * weightRowBytes(WeightType::Q6_K, K);
  forEachQ6KPiece(Geo, B, R % Geo.Rows,
                  [&](int64_t From, int64_t To, int64_t N) { std::memcpy(Block + From, Group + To, N); });
}

void readInterleavedKQuantBlock(const BlockFormat &F, const uint8_t *W, WeightLayout L, int64_t K, int64_t R,
                                int64_t B, uint8_t Block[176]) {
  const InterleavedKQuantGeometry Geo = InterleavedKQuantGeometry::of(F.Type, L);
  const uint8_t *Group = W + R / Geo.Rows * Geo.Rows * weightRowBytes(F.Type, K);
  const int64_t Lane = R % Geo.Rows, QsAt = Geo.HasHigh ? 48 : 16;
  std::memset(Block, 0, 176);
  std::memcpy(Block, Group + Geo.d(B) + 2 * Lane, 2);
  std::memcpy(Block + 2, Group + Geo.dmin(B) + 2 * Lane, 2);
  for (int64_t P = 0; P < 12; ++P)
    Block[4 + P] = Group[Geo.scales(B, P) + Lane];
  if (Geo.HasHigh)
    for (int64_t V = 0; V < 8; ++V)
      std::memcpy(Block + 16 + 4 * V, Group + Geo.high(B, V) + 4 * Lane, 4);
  for (int64_t C = 0; C < 4; ++C)
    for (int64_t V = 0; V < 8; ++V)
      std::memcpy(Block + QsAt + 32 * C + 4 * V, Group + Geo.quants(B, C, V) + 4 * Lane, 4);
}

void readInterleavedSubBlock(const BlockFormat &F, const uint8_t *W, WeightLayout L, int64_t K, int64_t R,
                             int64_t B, SubBlockValues &Out) {
  // The file's block, put together again, decoded as the file's.
  const LegacyLayout At = *F.legacyLayout();
  const InterleavedBlockGeometry Geo = InterleavedBlockGeometry::of(F.Type, L);
  const uint8_t *Group = W + R / Geo.Rows * Geo.Rows * weightRowBytes(F.Type, K);
  const int64_t Lane = R % Geo.Rows;
  uint8_t Block[32] = {};
  std::memcpy(Block + At.D, Group + Geo.scales(B) + 2 * Lane, 2);
  if (Geo.HasMin)
    std::memcpy(Block + At.M, Group + Geo.mins(B) + 2 * Lane, 2);
  for (int64_t V = 0; V < 4; ++V)
    std::memcpy(Block + At.Qs + 4 * V, Group + Geo.nibbles(B, V) + 4 * Lane, 4);
  if (Geo.HasHigh) {
    uint32_t High = 0;
    for (int64_t J = 0; J < 8; ++J) {
      uint64_t Mask = 0;
      std::memcpy(&Mask, Group + Geo.highBits(B, J), Geo.Rows / 2);
      for (int64_t I = 0; I < 4; ++I)
        High |= uint32_t((Mask >> (4 * Lane + I)) & 1) << ((J < 4 ? 4 * J : 16 + 4 * (J - 4)) + I);
    }
    std::memcpy(Block + At.High, &High, 4);
  }
  F.decodeSubBlock(Block, 0, Out);
}

void repackWeights(WeightType W, const uint8_t *Src, uint8_t *Dst, WeightLayout To, int64_t M, int64_t K,
                   int64_t RowBegin, int64_t RowEnd) {
  if (W == WeightType::Q8_0) {
    repackQ8_0(Src, Dst, To, M, K, RowBegin, RowEnd);
    return;
  }
  const int64_t RowBytes = weightRowBytes(W, K);
  if (To == WeightLayout::Rows) {
    std::memcpy(Dst + RowBegin * RowBytes, Src + RowBegin * RowBytes, (RowEnd - RowBegin) * RowBytes);
    return;
  }
  assert(layoutSupports(To, W, M, K) && RowBegin % layoutRowGroup(To) == 0 && RowEnd % layoutRowGroup(To) == 0);
  if (interleavesKQuants(W))
    repackKQuants(W, Src, Dst, To, K, RowBegin, RowEnd);
  else if (interleavesQ6_K(W))
    repackQ6_K(Src, Dst, To, K, RowBegin, RowEnd);
  else
    repackLegacyBlocks(*blockFormat(W), Src, Dst, To, K, RowBegin, RowEnd);
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
  if (Shape.Weights != WeightType::Q8_0) {
    // Unfused, as ggml: scale * level, then the offset.
    const BlockFormat &F = *blockFormat(Shape.Weights);
    uint8_t Block[210]; // A K-quant super-block put together again, once for its 8 sub-blocks.
    for (int64_t B = 0; B < K / 32; ++B) {
      SubBlockValues V;
      if (B % 8 == 0 && interleavesKQuants(Shape.Weights))
        readInterleavedKQuantBlock(F, W, Shape.Layout, K, R, B / 8, Block);
      else if (B % 8 == 0 && interleavesQ6_K(Shape.Weights))
        readInterleavedQ6K(W, Shape.Layout, K, R, B / 8, Block);
      if (interleavesKQuants(Shape.Weights) || interleavesQ6_K(Shape.Weights))
        F.decodeSubBlock(Block, B % 8, V);
      else
        readInterleavedSubBlock(F, W, Shape.Layout, K, R, B, V);
      for (int I = 0; I < 32; ++I) {
        const float Product = V.Scales[I / 16] * float(F.level(V.Quants[I]));
        Out[B * 32 + I] = F.HasOffsets ? Product + V.Offsets[I / 16] : Product;
      }
    }
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
