//===- LegacyBlocks.cpp - Q8_0, Q4_0, Q4_1, Q5_0, Q5_1 ---------------------===//
//
// ggml's 32-element blocks: an fp16 scale d (and for the _1 types an fp16
// minimum m added to every weight), then the quants. Q4/Q5 keep element
// j < 16 in the low nibble of byte j and element j + 16 in its high nibble;
// Q5 adds each element's fifth bit from a 32-bit mask (bit j, element j).
//   Q8_0 {d, int8 q[32]}              weight = d * q
//   Q4_0 {d, qs[16]}                  weight = d * (q - 8)
//   Q4_1 {d, m, qs[16]}               weight = d * q + m
//   Q5_0 {d, qh[4], qs[16]}           weight = d * (q - 16)
//   Q5_1 {d, m, qh[4], qs[16]}        weight = d * q + m
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

class Q8_0Format : public BlockFormat {
public:
  Q8_0Format() : BlockFormat(WeightType::Q8_0, 32, 34, /*Signed=*/true, 0, false) {}
  SubBlockIR emitSubBlock(IREmitter &E, Value *Block, unsigned) const override {
    return {E.load(E.vec(E.I8, 32), E.gep(Block, 2), 1), E.splatHalf(E.load(E.I16, Block, 1), 8)};
  }
  void decodeSubBlock(const uint8_t *Block, unsigned, SubBlockValues &Out) const override {
    std::memcpy(Out.Quants, Block + 2, 32);
    Out.Scales[0] = Out.Scales[1] = halfAt(Block);
    Out.Offsets[0] = Out.Offsets[1] = 0;
  }
};

/// Q4_0, Q4_1, Q5_0 and Q5_1: where the fields are is all that differs.
class NibbleFormat : public BlockFormat {
public:
  NibbleFormat(WeightType T, int64_t Bytes, unsigned ZeroPoint, int MinAt, int HighBitsAt, int QuantsAt)
      : BlockFormat(T, 32, Bytes, /*Signed=*/false, ZeroPoint, MinAt >= 0), MinAt(MinAt),
        HighBitsAt(HighBitsAt), QuantsAt(QuantsAt) {}

  SubBlockIR emitSubBlock(IREmitter &E, Value *Block, unsigned) const override {
    SubBlockIR Out;
    Out.Quants = E.nibbles(E.load(E.vec(E.I8, 16), E.gep(Block, QuantsAt), 1));
    if (HighBitsAt >= 0) {
      // Lane j takes bit j of the mask: a bitcast to 32 booleans (a mask
      // register and one masked move on AVX-512).
      Value *Mask = E.B.CreateBitCast(E.load(E.I32, E.gep(Block, HighBitsAt), 1), E.vec(E.B.getInt1Ty(), 32));
      Out.Quants = E.B.CreateOr(Out.Quants, E.B.CreateSelect(Mask, ConstantInt::get(E.vec(E.I8, 32), 16),
                                                             ConstantInt::get(E.vec(E.I8, 32), 0)));
    }
    Out.Scales = E.splatHalf(E.load(E.I16, Block, 1), 8);
    if (MinAt >= 0)
      Out.Offsets = E.splatHalf(E.load(E.I16, E.gep(Block, MinAt), 1), 8);
    return Out;
  }

  std::optional<LegacyLayout> legacyLayout() const override { return LegacyLayout{0, MinAt, HighBitsAt, QuantsAt}; }

  void decodeSubBlock(const uint8_t *Block, unsigned, SubBlockValues &Out) const override {
    uint32_t High = 0;
    if (HighBitsAt >= 0)
      std::memcpy(&High, Block + HighBitsAt, 4);
    for (int J = 0; J < 16; ++J) {
      const uint8_t Byte = Block[QuantsAt + J];
      Out.Quants[J] = uint8_t((Byte & 0xF) | ((High >> J) & 1) << 4);
      Out.Quants[J + 16] = uint8_t((Byte >> 4) | ((High >> (J + 16)) & 1) << 4);
    }
    Out.Scales[0] = Out.Scales[1] = halfAt(Block);
    Out.Offsets[0] = Out.Offsets[1] = MinAt >= 0 ? halfAt(Block + MinAt) : 0.0f;
  }

private:
  int MinAt, HighBitsAt, QuantsAt; // Byte offsets; -1: no such field.
};

} // namespace

const BlockFormat *legacyBlockFormat(WeightType W) {
  static const Q8_0Format Q8_0;
  //                                 type              bytes zero  min  qh  qs
  static const NibbleFormat Q4_0(WeightType::Q4_0, 18, 8, -1, -1, 2);
  static const NibbleFormat Q4_1(WeightType::Q4_1, 20, 0, 2, -1, 4);
  static const NibbleFormat Q5_0(WeightType::Q5_0, 22, 16, -1, 2, 6);
  static const NibbleFormat Q5_1(WeightType::Q5_1, 24, 0, 2, 4, 8);
  switch (W) {
  case WeightType::Q8_0: return &Q8_0;
  case WeightType::Q4_0: return &Q4_0;
  case WeightType::Q4_1: return &Q4_1;
  case WeightType::Q5_0: return &Q5_0;
  case WeightType::Q5_1: return &Q5_1;
  default: return nullptr;
  }
}

} // namespace lumen::codegen
