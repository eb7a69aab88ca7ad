//===- BlockFormat.h - Quantized weight blocks as kernels read them -*- C++ -*-===//
//
// The one thing that differs between the quantized weight types in a
// kernel: how a block's bytes become integer levels and scales. Every type
// is read as 32-element sub-blocks (a Q8_0 block, a legacy block, or an
// eighth of a K-quant super-block), each giving
//   - 32 quant bytes, the weights' integer levels: signed int8 levels, or
//     unsigned bytes u whose level is u - ZeroPoint;
//   - a float scale per 16 elements (d, or d times a sub-block scale);
//   - for the types with minima, a float offset per 16 elements;
// so that weight i = Scale[i / 16] * level(i) + Offset[i / 16]. The kernel
// skeleton (KernelBuilder.cpp) takes these into integer dot products against
// the Q8 activations; the scalar replay (Reference.cpp) takes the same
// numbers from decodeSubBlock, which each format writes beside its IR.
// One file per family in Blocks/: a new type is one small class.
//
//===----------------------------------------------------------------------===//
#ifndef LUMEN_LIB_CODEGEN_BLOCKFORMAT_H
#define LUMEN_LIB_CODEGEN_BLOCKFORMAT_H

#include "IREmitter.h"

#include "lumen/Codegen/KernelSpec.h"

#include <cstdint>
#include <optional>

namespace lumen::codegen {

/// A sub-block in registers: Quants is <32 x i8>; Scales and Offsets are
/// <8 x float>, lane l for elements 4l .. 4l + 3 (the lanes of the int8
/// dot products); Offsets is null for the types without minima.
struct SubBlockIR {
  llvm::Value *Quants = nullptr, *Scales = nullptr, *Offsets = nullptr;
};

/// The same sub-block in scalar code.
struct SubBlockValues {
  uint8_t Quants[32];
  float Scales[2];  // Elements 0-15, 16-31.
  float Offsets[2]; // Zero for the types without minima.
};

/// Byte offsets of the fields of a 32-element 4/5-bit block (Q4_0, Q4_1,
/// Q5_0, Q5_1, IQ4_NL): fp16 d, fp16 m (or -1), the 32-bit fifth-bit mask
/// (or -1), the 16 bytes of nibbles (element j low in byte j, j + 16 high).
/// The interleaved layouts store these types (KernelABI.h).
struct LegacyLayout {
  int D = 0, M = -1, High = -1, Qs = 2;
};

class BlockFormat {
public:
  virtual ~BlockFormat() = default;

  WeightType Type;
  int64_t Elements;  // Per block: 32, or 256 for the K-quants.
  int64_t Bytes;     // Per block.
  bool Signed;       // Quant bytes are int8 levels (else unsigned, minus ZeroPoint).
  unsigned ZeroPoint; // 0 or a power of two up to 32 (unsigned quants only).
  bool HasOffsets;

  int64_t subBlocks() const { return Elements / 32; }
  /// The integer level of quant byte Q.
  int32_t level(uint8_t Q) const { return Signed ? int32_t(int8_t(Q)) : int32_t(Q) - int32_t(ZeroPoint); }

  /// Emits sub-block J of the block at Block (a pointer). What the
  /// sub-blocks of one block share (super-block scales) is emitted again
  /// for each; the optimizer keeps one copy.
  virtual SubBlockIR emitSubBlock(IREmitter &E, llvm::Value *Block, unsigned J) const = 0;
  /// Sub-block J of the block at Block, as emitSubBlock computes it.
  virtual void decodeSubBlock(const uint8_t *Block, unsigned J, SubBlockValues &Out) const = 0;
  /// The field offsets of the 32-element 4/5-bit types; nullopt otherwise.
  virtual std::optional<LegacyLayout> legacyLayout() const { return std::nullopt; }
  /// The 16 levels the nibbles index (IQ4_NL); null where a nibble is its
  /// level (plus the fifth bit, minus ZeroPoint).
  virtual const int8_t *levelTable() const { return nullptr; }

protected:
  BlockFormat(WeightType T, int64_t Elements, int64_t Bytes, bool Signed, unsigned ZeroPoint,
              bool HasOffsets)
      : Type(T), Elements(Elements), Bytes(Bytes), Signed(Signed), ZeroPoint(ZeroPoint),
        HasOffsets(HasOffsets) {}
};

/// The block format of a quantized weight type; null for F16, BF16 and F32.
const BlockFormat *blockFormat(WeightType W);

/// Sub-block B (a whole block: these types have one) of row R of an M x K
/// matrix of a legacy 4/5-bit type F in interleaved layout L, as
/// decodeSubBlock gives it from the file's block.
void readInterleavedSubBlock(const BlockFormat &F, const uint8_t *W, WeightLayout L, int64_t K, int64_t R,
                             int64_t B, SubBlockValues &Out);

/// Sub-block S (of super-block S / 8) of row R of a Q4_K, Q5_K or Q6_K
/// matrix in interleaved layout L: its values as decodeSubBlock gives them
/// from the file's super-block, and the codes and fp16 scales they come
/// from.
struct KQuantSubBlock {
  SubBlockValues Values;
  int Scales[2]; // Q6_K: the int8 scales of elements 0-15 and 16-31; else the 6-bit scale, twice.
  int Min;       // Q4_K, Q5_K: the 6-bit minimum.
  float D, DMin;
};
void readInterleavedKQuantSub(const BlockFormat &F, const uint8_t *W, WeightLayout L, int64_t K, int64_t R,
                              int64_t S, KQuantSubBlock &Out);
/// Q4_K/Q5_K sub-block J's 6-bit scale and minimum from the 12 scale bytes
/// at S (ggml's get_scale_min_k4).
void kQuant45ScaleMin(unsigned J, const uint8_t *S, int &Scale, int &Min);

// The families (Blocks/*.cpp).
const BlockFormat *legacyBlockFormat(WeightType W);
const BlockFormat *kQuantBlockFormat(WeightType W);
const BlockFormat *nonLinearBlockFormat(WeightType W);

} // namespace lumen::codegen

#endif
