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

/// The 4 bytes at P as a little-endian word.
uint32_t wordAt(const uint8_t *P) {
  uint32_t V;
  std::memcpy(&V, P, 4);
  return V;
}
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
/// scales[12], [qh[32]], qs[128]; qs chunk c's byte l holds element l of
/// sub-blocks 2c (low nibble) and 2c + 1, qh byte l's bit j element l's
/// fifth bit in sub-block j.
void repackKQuants(WeightType W, const uint8_t *Src, uint8_t *Dst, WeightLayout To, int64_t K, int64_t RowBegin,
                   int64_t RowEnd) {
  const InterleavedKQuantGeometry Geo = InterleavedKQuantGeometry::of(W, To, K);
  const int64_t RowBytes = weightRowBytes(W, K), Bytes = weightRowBytes(W, 256), Half = Geo.Rows / 2;
  const int64_t QsAt = Geo.HasHigh ? 48 : 16;
  for (int64_t G = RowBegin / Geo.Rows; G < RowEnd / Geo.Rows; ++G) {
    const uint8_t *Rows = Src + G * Geo.Rows * RowBytes;
    uint8_t *Out = Dst + G * Geo.Rows * RowBytes;
    for (int64_t B = 0; B < Geo.Blocks; ++B)
      for (int64_t J = 0; J < 8; ++J) {
        const int64_t S = 8 * B + J;
        std::memset(Out + Geo.sub(S) + Geo.minHighAt(), 0, Half);
        for (int64_t R = 0; R < Geo.Rows; ++R) {
          const uint8_t *Block = Rows + R * RowBytes + B * Bytes;
          if (J == 0) {
            std::memcpy(Out + Geo.d(B) + 2 * R, Block, 2);
            std::memcpy(Out + Geo.dmin(B) + 2 * R, Block + 2, 2);
          }
          int Sc, Mn;
          kQuant45ScaleMin(J, Block + 4, Sc, Mn);
          Out[Geo.sub(S) + Geo.codesAt() + R] = uint8_t(Sc | (Mn & 3) << 6);
          Out[Geo.sub(S) + Geo.minHighAt() + R % Half] |= uint8_t((Mn >> 2) << (R < Half ? 0 : 4));
          // Elements 4v.. and 16 + 4v.. of sub-block J, from chunk J / 2.
          const int Shift = 4 * (J % 2);
          const uint8_t *Qs = Block + QsAt + 32 * (J / 2);
          for (int64_t V = 0; V < 4; ++V) {
            const uint32_t Piece = (wordAt(Qs + 4 * V) >> Shift & 0x0F0F0F0Fu) |
                                   (wordAt(Qs + 16 + 4 * V) >> Shift & 0x0F0F0F0Fu) << 4;
            std::memcpy(Out + Geo.sub(S) + Geo.nibblesAt(V) + 4 * R, &Piece, 4);
          }
          if (Geo.HasHigh) { // Byte i, bit 2v + h: bit J of qh byte 16h + 4v + i.
            uint32_t Bits = 0;
            for (int64_t V = 0; V < 4; ++V)
              for (int64_t H = 0; H < 2; ++H)
                Bits |= (wordAt(Block + 16 + 16 * H + 4 * V) >> J & 0x01010101u) << (2 * V + H);
            std::memcpy(Out + Geo.sub(S) + Geo.highAt() + 4 * R, &Bits, 4);
          }
        }
      }
  }
}

/// Rows [RowBegin, RowEnd) of a Q6_K matrix into the interleaved layout To
/// (InterleavedQ6KGeometry). File super-block: ql[128], qh[64],
/// scales[16], d; sub-block j = 4h + q's element l has its low nibble in
/// ql byte 64h + 32 (q % 2) + l (the high nibble for q >= 2), its top bits
/// at bit 2q of qh byte 32h + l, its scale in byte 8h + 2q + l / 16.
void repackQ6_K(const uint8_t *Src, uint8_t *Dst, WeightLayout To, int64_t K, int64_t RowBegin, int64_t RowEnd) {
  const InterleavedQ6KGeometry Geo = InterleavedQ6KGeometry::of(To, K);
  const int64_t RowBytes = weightRowBytes(WeightType::Q6_K, K);
  for (int64_t G = RowBegin / Geo.Rows; G < RowEnd / Geo.Rows; ++G) {
    const uint8_t *Rows = Src + G * Geo.Rows * RowBytes;
    uint8_t *Out = Dst + G * Geo.Rows * RowBytes;
    for (int64_t B = 0; B < Geo.Blocks; ++B)
      for (int64_t R = 0; R < Geo.Rows; ++R) {
        const uint8_t *Block = Rows + R * RowBytes + B * 210;
        std::memcpy(Out + Geo.d(B) + 2 * R, Block + 208, 2);
        for (int64_t J = 0; J < 8; ++J) {
          const int64_t S = 8 * B + J, H = J / 4, Q = J % 4;
          const uint8_t *Ql = Block + 64 * H + 32 * (Q % 2), *Qh = Block + 128 + 32 * H;
          for (int64_t Hf = 0; Hf < 2; ++Hf)
            Out[Geo.sub(S) + Geo.scalesAt(Hf) + R] = Block[192 + 8 * H + 2 * Q + Hf];
          const int LowShift = 4 * int(Q / 2), HighShift = 2 * int(Q);
          uint32_t High[2] = {};
          for (int64_t V = 0; V < 4; ++V) {
            const uint32_t Low = (wordAt(Ql + 4 * V) >> LowShift & 0x0F0F0F0Fu) |
                                 (wordAt(Ql + 16 + 4 * V) >> LowShift & 0x0F0F0F0Fu) << 4;
            std::memcpy(Out + Geo.sub(S) + Geo.lowAt(V) + 4 * R, &Low, 4);
            const int Field = 2 * int(V % 2);
            High[V / 2] |= (wordAt(Qh + 4 * V) >> HighShift & 0x03030303u) << 2 * Field |
                           (wordAt(Qh + 16 + 4 * V) >> HighShift & 0x03030303u) << 2 * (Field + 1);
          }
          for (int64_t P = 0; P < 2; ++P)
            std::memcpy(Out + Geo.sub(S) + Geo.highAt(P) + 4 * R, &High[P], 4);
        }
      }
  }
}

} // namespace

void readInterleavedKQuantSub(const BlockFormat &F, const uint8_t *W, WeightLayout L, int64_t K, int64_t R,
                              int64_t S, KQuantSubBlock &Out) {
  const uint8_t *Group = W + R / layoutRowGroup(L) * layoutRowGroup(L) * weightRowBytes(F.Type, K);
  if (F.Type == WeightType::Q6_K) {
    const InterleavedQ6KGeometry Geo = InterleavedQ6KGeometry::of(L, K);
    const int64_t Lane = R % Geo.Rows;
    uint16_t D;
    std::memcpy(&D, Group + Geo.d(S / 8) + 2 * Lane, 2);
    Out.D = gguf::halfToFloat(D);
    Out.DMin = 0;
    Out.Min = 0;
    for (int64_t V = 0; V < 4; ++V)
      for (int64_t I = 0; I < 4; ++I)
        for (int64_t H = 0; H < 2; ++H) {
          const int Field = 2 * int(V % 2) + int(H);
          const int Low = Group[Geo.sub(S) + Geo.lowAt(V) + 4 * Lane + I] >> 4 * H & 0xF;
          const int High = Group[Geo.sub(S) + Geo.highAt(V / 2) + 4 * Lane + I] >> 2 * Field & 3;
          Out.Values.Quants[16 * H + 4 * V + I] = uint8_t(Low | High << 4);
        }
    // As decodeSubBlock computes them from the file's block.
    for (int64_t H = 0; H < 2; ++H) {
      Out.Scales[H] = int8_t(Group[Geo.sub(S) + Geo.scalesAt(H) + Lane]);
      Out.Values.Scales[H] = Out.D * float(Out.Scales[H]);
      Out.Values.Offsets[H] = 0;
    }
    return;
  }
  const InterleavedKQuantGeometry Geo = InterleavedKQuantGeometry::of(F.Type, L, K);
  const int64_t Lane = R % Geo.Rows, Half = Geo.Rows / 2;
  uint16_t D, DMin;
  std::memcpy(&D, Group + Geo.d(S / 8) + 2 * Lane, 2);
  std::memcpy(&DMin, Group + Geo.dmin(S / 8) + 2 * Lane, 2);
  Out.D = gguf::halfToFloat(D);
  Out.DMin = gguf::halfToFloat(DMin);
  const uint8_t Code = Group[Geo.sub(S) + Geo.codesAt() + Lane];
  Out.Scales[0] = Out.Scales[1] = Code & 63;
  Out.Min = (Code >> 6) | (Group[Geo.sub(S) + Geo.minHighAt() + Lane % Half] >> (Lane < Half ? 0 : 4) & 0xF) << 2;
  for (int64_t V = 0; V < 4; ++V)
    for (int64_t I = 0; I < 4; ++I) {
      const uint8_t Byte = Group[Geo.sub(S) + Geo.nibblesAt(V) + 4 * Lane + I];
      Out.Values.Quants[4 * V + I] = Byte & 0xF;
      Out.Values.Quants[16 + 4 * V + I] = Byte >> 4;
    }
  for (int64_t I = 0; Geo.HasHigh && I < 4; ++I)
    for (int64_t V = 0; V < 4; ++V)
      for (int64_t H = 0; H < 2; ++H)
        Out.Values.Quants[16 * H + 4 * V + I] |= uint8_t((Group[Geo.sub(S) + Geo.highAt() + 4 * Lane + I] >> (2 * V + H) & 1) << 4);
  // As decodeSubBlock computes them from the file's block.
  Out.Values.Scales[0] = Out.Values.Scales[1] = Out.D * float(Out.Scales[0]);
  Out.Values.Offsets[0] = Out.Values.Offsets[1] = -(Out.DMin * float(Out.Min));
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
    for (int64_t B = 0; B < K / 32; ++B) {
      SubBlockValues V;
      if (interleavesSubBlockRuns(Shape.Weights)) {
        KQuantSubBlock Sub;
        readInterleavedKQuantSub(F, W, Shape.Layout, K, R, B, Sub);
        V = Sub.Values;
      } else {
        readInterleavedSubBlock(F, W, Shape.Layout, K, R, B, V);
      }
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
