//===- NonLinearBlocks.cpp - IQ4_NL -----------------------------------------===//
//
// IQ4_NL {d, qs[16]}: Q4_0's nibbles, but each indexes a table of 16
// non-uniform int8 levels (ggml's kvalues_iq4nl); weight = d * level. The
// table lookup is one vpshufb (the table in both 128-bit lanes).
//
//===----------------------------------------------------------------------===//
#include "../BlockFormat.h"

#include "lumen/GGUF/Quantize.h"

#include "llvm/IR/IntrinsicsX86.h"

#include <cstring>

using namespace llvm;

namespace lumen::codegen {

namespace {

constexpr int8_t kIQ4Levels[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

class IQ4_NLFormat : public BlockFormat {
public:
  IQ4_NLFormat() : BlockFormat(WeightType::IQ4_NL, 32, 18, /*Signed=*/true, 0, false) {}
  SubBlockIR emitSubBlock(IREmitter &E, Value *Block, unsigned) const override {
    SmallVector<Constant *, 32> Table;
    for (int I = 0; I < 32; ++I)
      Table.push_back(ConstantInt::get(E.I8, uint8_t(kIQ4Levels[I % 16])));
    Value *Index = E.nibbles(E.load(E.vec(E.I8, 16), E.gep(Block, 2), 1));
    Value *Levels = E.B.CreateIntrinsic(Intrinsic::x86_avx2_pshuf_b, {}, {ConstantVector::get(Table), Index});
    return {Levels, E.splatHalf(E.load(E.I16, Block, 1), 8)};
  }
  std::optional<LegacyLayout> legacyLayout() const override { return LegacyLayout{}; }
  const int8_t *levelTable() const override { return kIQ4Levels; }

  void decodeSubBlock(const uint8_t *Block, unsigned, SubBlockValues &Out) const override {
    for (int J = 0; J < 16; ++J) {
      Out.Quants[J] = uint8_t(kIQ4Levels[Block[2 + J] & 0xF]);
      Out.Quants[J + 16] = uint8_t(kIQ4Levels[Block[2 + J] >> 4]);
    }
    uint16_t H;
    std::memcpy(&H, Block, 2);
    Out.Scales[0] = Out.Scales[1] = gguf::halfToFloat(H);
    Out.Offsets[0] = Out.Offsets[1] = 0;
  }
};

} // namespace

const BlockFormat *nonLinearBlockFormat(WeightType W) {
  static const IQ4_NLFormat IQ4_NL;
  return W == WeightType::IQ4_NL ? &IQ4_NL : nullptr;
}

} // namespace lumen::codegen
