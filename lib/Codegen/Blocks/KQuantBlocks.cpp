//===- KQuantBlocks.cpp - Q2_K, Q3_K, Q4_K, Q5_K, Q6_K ---------------------===//
//
// ggml's 256-element super-blocks (ggml-common.h), read as eight 32-element
// sub-blocks in element order. Sub-block scales (and minima) are small
// integers under the super-block's fp16 factors: 16-element granularity for
// Q2_K, Q3_K and Q6_K, 32 for Q4_K and Q5_K.
//   Q2_K  scales[16] (4-bit scale | 4-bit min << 4), qs[64], d, dmin
//         sub-block j: half j/4 of qs (32 bytes), 2-bit plane j%4
//   Q3_K  hmask[32], qs[64], scales[12] (16 x 6 bit, minus 32), d
//         as Q2_K, plus the third bit (4 (j/4) + j%4) of hmask; level = q - 4
//   Q4_K  d, dmin, scales[12] (8 x 6-bit scale and min), qs[128]
//         sub-block j: 32 bytes j/2 of qs, low or high nibble
//   Q5_K  d, dmin, scales[12], qh[32], qs[128]: as Q4_K plus bit j of qh
//   Q6_K  ql[128], qh[64], scales[16] (int8), d; level = q - 32
//         sub-block j: half j/4 (64 ql, 32 qh bytes), quarter j%4
// Weight = scale * level - dmin * min, as ggml's dequantize_row_* computes.
//
//===----------------------------------------------------------------------===//
#include "../BlockFormat.h"

#include "lumen/GGUF/Quantize.h"

#include <cstring>

using namespace llvm;

namespace lumen::codegen {

namespace {

float halfAt(const uint8_t *P) {
  uint16_t H;
  std::memcpy(&H, P, 2);
  return gguf::halfToFloat(H);
}

/// Helpers over one block in IR.
struct BlockIR {
  IREmitter &E;
  Value *Block;

  Value *bytes32(int64_t Offset) { return E.load(E.vec(E.I8, 32), E.gep(Block, Offset), 1); }
  /// The byte at Offset as i32.
  Value *byte(int64_t Offset) { return E.B.CreateZExt(E.load(E.I8, E.gep(Block, Offset), 1), E.I32); }
  Value *lshr(Value *V, unsigned S) { return S ? E.B.CreateLShr(V, S) : V; }
  Value *mask(Value *V, unsigned M) { return E.B.CreateAnd(V, M); }
  /// D times the integer V (i32, signed).
  Value *times(Value *D, Value *V) { return E.B.CreateFMul(D, E.B.CreateSIToFP(V, E.F32)); }
  Value *negTimes(Value *D, Value *V) { return E.B.CreateFNeg(times(D, V)); }
  /// The 16 bytes at Offset as <16 x i32>, zero-extended.
  Value *bytes16(int64_t Offset) { return E.B.CreateZExt(E.load(E.vec(E.I8, 16), E.gep(Block, Offset), 1), E.vec(E.I32, 16)); }
  /// A sub-block's two per-16 values, lanes 2J and 2J + 1 of All (16
  /// floats for the whole block, computed once: every sub-block emits the
  /// same vector and the optimizer keeps one), spread to the 8 lanes of its
  /// dot products -- a permute instead of scalar loads and conversions.
  Value *pairOf(Value *All, unsigned J) {
    const int First = 2 * J, Second = 2 * J + 1;
    return E.B.CreateShuffleVector(All, ArrayRef<int>{First, First, First, First, Second, Second, Second, Second});
  }
  /// D (a scalar) times each lane of V (<16 x i32>, signed).
  Value *times16(Value *D, Value *V) {
    return E.B.CreateFMul(E.B.CreateVectorSplat(16, D), E.B.CreateSIToFP(V, E.vec(E.F32, 16)));
  }
};

/// Q4_K/Q5_K sub-block J's 6-bit scale and minimum in the 12 bytes at S:
/// the first four pairs in the low six bits of bytes 0-7, the last four
/// from the nibbles of bytes 8-11 with their top bits in bytes 0-7.
void scaleMinK4(unsigned J, const uint8_t *S, int &Scale, int &Min) {
  if (J < 4) {
    Scale = S[J] & 63;
    Min = S[J + 4] & 63;
  } else {
    Scale = (S[J + 4] & 0xF) | ((S[J - 4] >> 6) << 4);
    Min = (S[J + 4] >> 4) | ((S[J] >> 6) << 4);
  }
}
void scaleMinK4(BlockIR &I, unsigned J, int64_t At, Value *&Scale, Value *&Min) {
  if (J < 4) {
    Scale = I.mask(I.byte(At + J), 63);
    Min = I.mask(I.byte(At + J + 4), 63);
  } else {
    auto &B = I.E.B;
    Scale = B.CreateOr(I.mask(I.byte(At + J + 4), 0xF), B.CreateShl(I.lshr(I.byte(At + J - 4), 6), 4));
    Min = B.CreateOr(I.lshr(I.byte(At + J + 4), 4), B.CreateShl(I.lshr(I.byte(At + J), 6), 4));
  }
}

/// Q3_K's 6-bit scale of 16-element sub-block J (0-15) in the 12 bytes at
/// S, unbiased: low nibble from bytes 0-7, top two bits from bytes 8-11.
int scaleQ3(unsigned J, const uint8_t *S) {
  const int Low = J < 8 ? S[J] & 0xF : S[J - 8] >> 4;
  const int High = (S[8 + J % 4] >> (2 * (J / 4))) & 3;
  return (Low | High << 4) - 32;
}
/// All 16 of them as <16 x i32>: the 12 bytes spread to the lanes that
/// read them, shifted lane by lane.
Value *scalesQ3(BlockIR &I, int64_t At) {
  IREmitter &E = I.E;
  // 12 bytes exactly: 16 would read past the last block of a tensor.
  Value *Bytes = E.B.CreateZExt(E.load(E.vec(E.I8, 12), E.gep(I.Block, At), 1), E.vec(E.I32, 12));
  SmallVector<int, 16> LowAt, HighAt;
  SmallVector<Constant *, 16> LowShift, HighShift;
  for (unsigned J = 0; J < 16; ++J) {
    LowAt.push_back(J % 8);
    HighAt.push_back(8 + J % 4);
    LowShift.push_back(E.B.getInt32(J < 8 ? 0 : 4));
    HighShift.push_back(E.B.getInt32(2 * (J / 4)));
  }
  Value *Low = E.B.CreateAnd(E.B.CreateLShr(E.B.CreateShuffleVector(Bytes, LowAt), ConstantVector::get(LowShift)), 0xF);
  Value *High = E.B.CreateAnd(E.B.CreateLShr(E.B.CreateShuffleVector(Bytes, HighAt), ConstantVector::get(HighShift)), 3);
  return E.B.CreateSub(E.B.CreateOr(Low, E.B.CreateShl(High, 4)), ConstantInt::get(E.vec(E.I32, 16), 32));
}

class Q2_KFormat : public BlockFormat {
public:
  Q2_KFormat() : BlockFormat(WeightType::Q2_K, 256, 84, false, 0, true) {}
  SubBlockIR emitSubBlock(IREmitter &E, Value *Block, unsigned J) const override {
    BlockIR I{E, Block};
    Value *D = E.halfAt(E.gep(Block, 80)), *DMin = E.halfAt(E.gep(Block, 82));
    // Byte 2J + H: the scale (low nibble) and minimum (high) of half H.
    Value *Sc = I.bytes16(0);
    Value *Scales = I.times16(D, E.B.CreateAnd(Sc, 0xF));
    Value *Mins = E.B.CreateFNeg(I.times16(DMin, E.B.CreateLShr(Sc, 4)));
    return {E.bits(I.bytes32(16 + 32 * (J / 4)), 2 * (J % 4), 3), I.pairOf(Scales, J), I.pairOf(Mins, J)};
  }
  void decodeSubBlock(const uint8_t *Block, unsigned J, SubBlockValues &Out) const override {
    const float D = halfAt(Block + 80), DMin = halfAt(Block + 82);
    for (int L = 0; L < 32; ++L)
      Out.Quants[L] = (Block[16 + 32 * (J / 4) + L] >> (2 * (J % 4))) & 3;
    for (unsigned H = 0; H < 2; ++H) {
      const uint8_t Sc = Block[2 * J + H];
      Out.Scales[H] = D * float(Sc & 0xF);
      Out.Offsets[H] = -(DMin * float(Sc >> 4));
    }
  }
};

class Q3_KFormat : public BlockFormat {
public:
  Q3_KFormat() : BlockFormat(WeightType::Q3_K, 256, 110, false, 4, false) {}
  SubBlockIR emitSubBlock(IREmitter &E, Value *Block, unsigned J) const override {
    BlockIR I{E, Block};
    Value *D = E.halfAt(E.gep(Block, 108));
    Value *Low = E.bits(I.bytes32(32 + 32 * (J / 4)), 2 * (J % 4), 3);
    Value *High = E.selectBit(I.bytes32(0), 4 * (J / 4) + J % 4, 4);
    return {E.B.CreateOr(Low, High), I.pairOf(I.times16(D, scalesQ3(I, 96)), J)};
  }
  void decodeSubBlock(const uint8_t *Block, unsigned J, SubBlockValues &Out) const override {
    const float D = halfAt(Block + 108);
    const unsigned Bit = 4 * (J / 4) + J % 4;
    for (int L = 0; L < 32; ++L)
      Out.Quants[L] = uint8_t(((Block[32 + 32 * (J / 4) + L] >> (2 * (J % 4))) & 3) | (((Block[L] >> Bit) & 1) << 2));
    for (unsigned H = 0; H < 2; ++H) {
      Out.Scales[H] = D * float(scaleQ3(2 * J + H, Block + 96));
      Out.Offsets[H] = 0;
    }
  }
};

/// Q4_K, and Q5_K with its fifth bits.
class Q45_KFormat : public BlockFormat {
public:
  Q45_KFormat(WeightType T, int64_t Bytes, int HighBitsAt, int QuantsAt)
      : BlockFormat(T, 256, Bytes, false, 0, true), HighBitsAt(HighBitsAt), QuantsAt(QuantsAt) {}
  SubBlockIR emitSubBlock(IREmitter &E, Value *Block, unsigned J) const override {
    BlockIR I{E, Block};
    Value *D = E.halfAt(Block), *DMin = E.halfAt(E.gep(Block, 2));
    Value *Quants = E.bits(I.bytes32(QuantsAt + 32 * (J / 2)), 4 * (J % 2), 0xF);
    if (HighBitsAt >= 0)
      Quants = E.B.CreateOr(Quants, E.selectBit(I.bytes32(HighBitsAt), J, 16));
    Value *Scale, *Min;
    scaleMinK4(I, J, 4, Scale, Min);
    return {Quants, E.B.CreateVectorSplat(8, I.times(D, Scale)), E.B.CreateVectorSplat(8, I.negTimes(DMin, Min))};
  }
  void decodeSubBlock(const uint8_t *Block, unsigned J, SubBlockValues &Out) const override {
    const float D = halfAt(Block), DMin = halfAt(Block + 2);
    for (int L = 0; L < 32; ++L) {
      int Q = (Block[QuantsAt + 32 * (J / 2) + L] >> (4 * (J % 2))) & 0xF;
      if (HighBitsAt >= 0)
        Q |= ((Block[HighBitsAt + L] >> J) & 1) << 4;
      Out.Quants[L] = uint8_t(Q);
    }
    int Scale, Min;
    scaleMinK4(J, Block + 4, Scale, Min);
    Out.Scales[0] = Out.Scales[1] = D * float(Scale);
    Out.Offsets[0] = Out.Offsets[1] = -(DMin * float(Min));
  }

private:
  int HighBitsAt, QuantsAt;
};

class Q6_KFormat : public BlockFormat {
public:
  Q6_KFormat() : BlockFormat(WeightType::Q6_K, 256, 210, false, 32, false) {}
  SubBlockIR emitSubBlock(IREmitter &E, Value *Block, unsigned J) const override {
    BlockIR I{E, Block};
    const unsigned Half = J / 4, Q = J % 4;
    Value *D = E.halfAt(E.gep(Block, 208));
    Value *Low = E.bits(I.bytes32(64 * Half + 32 * (Q & 1)), 4 * (Q >> 1), 0xF);
    Value *High = E.B.CreateShl(E.bits(I.bytes32(128 + 32 * Half), 2 * Q, 3), 4);
    // Sub-block J's two scales are bytes 2J and 2J + 1 of the 16 (signed).
    Value *Scales = E.B.CreateSExt(E.load(E.vec(E.I8, 16), E.gep(Block, 192), 1), E.vec(E.I32, 16));
    return {E.B.CreateOr(Low, High), I.pairOf(I.times16(D, Scales), J)};
  }
  void decodeSubBlock(const uint8_t *Block, unsigned J, SubBlockValues &Out) const override {
    const unsigned Half = J / 4, Q = J % 4;
    const float D = halfAt(Block + 208);
    for (int L = 0; L < 32; ++L) {
      const int Low = (Block[64 * Half + 32 * (Q & 1) + L] >> (4 * (Q >> 1))) & 0xF;
      const int High = (Block[128 + 32 * Half + L] >> (2 * Q)) & 3;
      Out.Quants[L] = uint8_t(Low | High << 4);
    }
    for (unsigned H = 0; H < 2; ++H) {
      Out.Scales[H] = D * float(int8_t(Block[192 + 8 * Half + 2 * Q + H]));
      Out.Offsets[H] = 0;
    }
  }
};

} // namespace

void kQuant45ScaleMin(unsigned J, const uint8_t *S, int &Scale, int &Min) { scaleMinK4(J, S, Scale, Min); }

const BlockFormat *kQuantBlockFormat(WeightType W) {
  static const Q2_KFormat Q2_K;
  static const Q3_KFormat Q3_K;
  static const Q45_KFormat Q4_K(WeightType::Q4_K, 144, -1, 16);
  static const Q45_KFormat Q5_K(WeightType::Q5_K, 176, 16, 48);
  static const Q6_KFormat Q6_K;
  switch (W) {
  case WeightType::Q2_K: return &Q2_K;
  case WeightType::Q3_K: return &Q3_K;
  case WeightType::Q4_K: return &Q4_K;
  case WeightType::Q5_K: return &Q5_K;
  case WeightType::Q6_K: return &Q6_K;
  default: return nullptr;
  }
}

} // namespace lumen::codegen
