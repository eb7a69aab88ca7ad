//===- KernelBuilder.cpp - LLVM IR for the kernels -------------------------===//
//
// The matmul is emitted as one tile function per register-tile shape that
// occurs (rows x tokens) and a driver with the ABI signature that walks the
// row range and the token tiles. A tile function holds the K loop: each step
// consumes whole weight blocks per row and keeps Accumulators x rows x tokens
// vector accumulators in registers. What a step does is one of three:
//  - int8 rows (every quantized type): the type's BlockFormat (Blocks/)
//    decodes 32-element sub-blocks into levels, scales and offsets; integer
//    dot products with the Q8 activations, one scaled FMA per sub-block
//    (two sub-blocks at once on 512-bit VNNI);
//  - f32 rows (F16, BF16, F32, and Q8_0 for comparison): FMA on floats;
//  - interleaved Q8_0: a group of 8 or 16 rows whose sums share one vector,
//    one lane each, so no reduction follows the K loop.
// Decode kernels may prefetch the weight stream ahead (KernelSpec).
//
// Floating-point operations carry no fast-math flags, so the order written
// here is the order executed; Reference.cpp replays it to check the int8
// kernels bit for bit.
//
//===----------------------------------------------------------------------===//
#include "lumen/Codegen/KernelBuilder.h"
#include "lumen/Codegen/KernelABI.h"

#include "BlockFormat.h"
#include "IREmitter.h"

#include "absl/strings/str_format.h"

#include "llvm/Support/ErrorHandling.h"
#include "llvm/IR/IRBuilder.h"
#include "llvm/IR/InlineAsm.h"
#include "llvm/IR/Intrinsics.h"
#include "llvm/IR/IntrinsicsX86.h"
#include "llvm/IR/Module.h"
#include "llvm/IR/Verifier.h"
#include "llvm/Support/raw_ostream.h"

#include <map>
#include <vector>

using namespace llvm;

namespace lumen::codegen {

namespace {

constexpr int64_t kBlock = 32;      // Elements per Q8_0 block.
constexpr int64_t kBlockBytes = 34; // fp16 scale + 32 quants.

//===----------------------------------------------------------------------===//
// Matmul
//===----------------------------------------------------------------------===//

class MatmulEmitter : IREmitter {
public:
  MatmulEmitter(Module &M, const KernelSpec &S, const CpuFeatures &Cpu)
      : IREmitter(M, Cpu), S(S), K(S.Shape.K), RowBytes(weightRowBytes(S.Shape.Weights, K)),
        XRowBytes(S.Activations == ActivationFormat::Q8 ? q8RowBytes(K) : K * 4) {
    bool IntDot = S.Activations == ActivationFormat::Q8;
    Interleaved = S.Shape.Layout != WeightLayout::Rows;
    Geo = InterleavedGeometry::of(S.Shape.Layout);
    Format = IntDot ? blockFormat(S.Shape.Weights) : nullptr;
    // A step reads whole weight blocks: one 32-element block, a K-quant
    // super-block (8 sub-blocks), or two blocks at once on 512-bit VNNI,
    // whose vpdpbusd takes two sub-blocks (64 bytes) at a time.
    SubsPerGroup = Format && !Interleaved && S.VNNI && S.VectorBits == 512 ? 2 : 1;
    // (The interleaved K-quants step one sub-block, as their layouts store
    // them, or a super-block where the activations have a scale for it.)
    const bool SubSteps = Interleaved && interleavesSubBlockRuns(S.Shape.Weights) && !S.SuperBlockScales;
    SubsPerStep = Format && !SubSteps ? std::max<int64_t>(SubsPerGroup, Format->subBlocks()) : 1;
    // Lanes of an accumulator: int8 kernels keep one lane per 4-quant group,
    // 8 per sub-block; f32 kernels one lane per float of a full vector;
    // interleaved kernels one lane per row of the group.
    AccLanes = Interleaved ? Geo.Rows : IntDot ? 8 * SubsPerGroup : S.VectorBits / 32;
    RowsPerCell = Interleaved ? Geo.Rows : 1;
  }

  Function *emit();

private:
  /// Per-tile state of one K-loop step: base pointers of the tile's rows
  /// (row groups when interleaved) and tokens.
  struct Tile {
    unsigned Rows, Tokens; // Rows counts accumulator rows: rows, or groups of 8.
    std::vector<Value *> RowPtr, TokPtr;
    Value *Pass = nullptr; // Which token tile of the row tile this is.
  };
  using Accs = std::vector<Value *>; // [Row * Tokens + Token]

  Function *emitTile(unsigned Rows, unsigned Tokens);
  /// Accumulates Subs 32-element sub-blocks from sub-block Sub on into Acc
  /// (the f32 and interleaved kernels: one block).
  void emitStep(const Tile &T, Value *Sub, unsigned Subs, Accs &Acc);
  void emitStepInt8(const Tile &T, Value *Sub, unsigned Subs, Accs &Acc);
  /// Sum plus the dot products of 4-byte groups: WOp's unsigned bytes (as
  /// i32 lanes with VNNI) against X's (a token's activation quants, i32
  /// lanes): vpdpbusd with VNNI, else pmaddubsw + pmaddwd, X's bytes
  /// negated where SignOf's are negative (WOp then holds |w|).
  Value *accumulateDot(Value *Sum, Value *WOp, Value *X, Value *SignOf = nullptr);
  /// The integer dot products of one token with a group of decoded
  /// sub-blocks (Lanes i32 lanes), exact: sum of level * activation quant.
  Value *emitDot(const SubBlockIR &W, Value *WOperand, Value *XQuants, Value *XBias, unsigned Lanes);
  void emitStepF32(const Tile &T, Value *Blk, Accs &Acc);
  void emitStepInterleaved(const Tile &T, Value *Blk, Accs &Acc);
  /// The same for the interleaved 4/5-bit block types (InterleavedBlockGeometry).
  void emitStepInterleavedBlocks(const Tile &T, Value *Blk, Accs &Acc);
  /// And for interleaved Q4_K/Q5_K (InterleavedKQuantGeometry): Subs
  /// sub-blocks from Sub on (1, or a super-block).
  void emitStepInterleavedKQuants(const Tile &T, Value *Sub, unsigned Subs, Accs &Acc);
  /// Levels of half H (0: the low nibbles) of a vector of the interleaved
  /// nibble pieces, with their fifth bits from the mask at HighAt if not
  /// null, looked up in Table if not null.
  Value *pieceLevels(Value *Nibbles, unsigned H, Value *HighAt, Value *Table);
  /// And for interleaved Q6_K (InterleavedQ6KGeometry), as for Q4_K.
  void emitStepInterleavedQ6K(const Tile &T, Value *Sub, unsigned Subs, Accs &Acc);
  /// Software prefetch of the Bytes from P + PrefetchBytes on (a line each
  /// 64), or of the start of the page they begin in (LinesAndPage: both).
  void prefetch(Value *P, unsigned Bytes);
  /// The first line of the 4 KB page that P + Lead is in.
  void prefetchPageStart(Value *P, unsigned Lead);
  /// PrefetchPattern::Spread: step Blk's share of the row tile
  /// PrefetchBytes ahead of T's.
  void prefetchSpread(const Tile &T, Value *Blk);
  void emitPrefetch(Value *At);
  /// Lanes zeros the optimizer cannot see through (an empty inline asm).
  Value *opaqueZero(unsigned Lanes);
  /// The interleaved steps' block Blk of each of T's row groups, BlockBytes
  /// apart, prefetched as the spec says (Step: the step, for Spread).
  std::vector<Value *> groupBlocks(const Tile &T, Value *Blk, int64_t BlockBytes, Value *Step);
  /// The same at byte Offset of each group, the Bytes from there prefetched.
  std::vector<Value *> groupsAt(const Tile &T, Value *Offset, int64_t Bytes, Value *Step);
  /// Where, in a row group of interleaved K-quant super-blocks of
  /// SuperBytes, sub-block Sub's super-block starts and its run does (the
  /// super-block's runs of RunBytes from FirstRun on).
  std::pair<Value *, Value *> subBlockRun(Value *Sub, int64_t SuperBytes, int64_t FirstRun, int64_t RunBytes) {
    Value *Super = B.CreateMul(B.CreateUDiv(Sub, B.getInt64(8)), B.getInt64(SuperBytes));
    Value *InSuper = B.CreateMul(B.CreateURem(Sub, B.getInt64(8)), B.getInt64(RunBytes));
    return {Super, B.CreateAdd(Super, B.CreateAdd(B.getInt64(FirstRun), InSuper))};
  }
  /// Where a (group, token) cell's integer sums start: Init, plus, when the
  /// kernel is paced, its previous result ANDed with Zero (a dependence on
  /// the previous block, not a value).
  Value *sumStart(Value *Init, Value *Prev, Value *Zero);
  /// -Z times a sum of activation quants, from its Bias (-128 times that
  /// sum): Bias >> log2(128 / Z), exact; zero for Z = 0.
  Value *zeroPointStart(Value *Bias, unsigned Z);
  /// A plus Offsets times the activations' sum: their quants' sum is
  /// BiasF / -128 (BiasF: the Bias as floats), their scale XScale.
  Value *addOffsetTerm(Value *A, Value *Offsets, Value *XScale, Value *BiasF);
  /// Block Blk's activation scale (BlockScale) of the token at X, Lanes times.
  Value *blockScaleSplat(Value *X, Value *Blk, unsigned Lanes) {
    return B.CreateVectorSplat(Lanes, load(F32, gep(gep(X, q8BlockScaleOffset(K)), B.CreateMul(Blk, B.getInt64(4))), 4));
  }
  /// Sums Main (AccLanes wide) and Tail (8 lanes or null) by halving.
  Value *reduce(Value *Main, Value *Tail);

  const KernelSpec &S;
  int64_t K, RowBytes, XRowBytes;
  const BlockFormat *Format; // The int8 kernels' weight blocks (else null).
  int64_t SubsPerGroup, SubsPerStep;
  unsigned AccLanes, RowsPerCell;
  bool Interleaved;
  InterleavedGeometry Geo; // Where the interleaved layouts keep a block.
};

void MatmulEmitter::emitPrefetch(Value *At) {
  // Decode's stream, into L1; a whole row tile ahead (prefill), into L2
  // only, so L1 keeps the tile being computed (prefetcht1 beat prefetcht0
  // by 4-10 % on gate/up and down there).
  const int Locality = S.Shape.N > 1 && S.PrefetchBytes > 4096 ? 2 : 3;
  B.CreateIntrinsic(Intrinsic::prefetch, {Ptr}, {At, B.getInt32(0), B.getInt32(Locality), B.getInt32(1)}); // read, data
}

void MatmulEmitter::prefetchPageStart(Value *P, unsigned Lead) {
  Value *Ahead = gep(P, Lead);
  Value *InPage = B.CreateAnd(B.CreatePtrToInt(Ahead, I64), B.getInt64(4095));
  emitPrefetch(gep(Ahead, B.CreateNeg(InPage)));
}

void MatmulEmitter::prefetch(Value *P, unsigned Bytes) {
  if (!S.PrefetchBytes || S.Prefetch == PrefetchPattern::Spread)
    return;
  if (S.Prefetch == PrefetchPattern::PageStart)
    return prefetchPageStart(P, S.PrefetchBytes);
  if (S.Prefetch == PrefetchPattern::LinesAndPage)
    prefetchPageStart(P, kPageStartLead);
  for (unsigned Off = 0; Off < Bytes; Off += 64)
    emitPrefetch(gep(P, S.PrefetchBytes + Off));
}

void MatmulEmitter::prefetchSpread(const Tile &T, Value *Blk) {
  if (!S.PrefetchBytes || S.Prefetch != PrefetchPattern::Spread)
    return;
  // The tile ahead is TileRows rows from its first row on (row groups are
  // contiguous); step Blk of token tile Pass takes slot Pass * Steps + Blk
  // of Slots, PerSlot lines each, the last slots past its end (harmless).
  const int64_t Steps = K / kBlock / SubsPerStep, Passes = (S.Shape.N + S.TileTokens - 1) / S.TileTokens;
  const int64_t Lines = (int64_t(S.TileRows) * RowBytes + 63) / 64;
  const int64_t PerSlot = (Lines + Passes * Steps - 1) / (Passes * Steps);
  Value *Slot = B.CreateAdd(B.CreateMul(T.Pass, B.getInt64(Steps)), B.CreateUDiv(Blk, B.getInt64(SubsPerStep)));
  Value *At = gep(gep(T.RowPtr[0], S.PrefetchBytes), B.CreateMul(Slot, B.getInt64(PerSlot * 64)));
  for (int64_t L = 0; L < PerSlot; ++L)
    emitPrefetch(gep(At, L * 64));
}

Value *MatmulEmitter::opaqueZero(unsigned Lanes) {
  // No side effects and no memory: LLVM hoists it out of the loops.
  FunctionType *FT = FunctionType::get(I32, {I32}, false);
  Value *Zero = B.CreateCall(InlineAsm::get(FT, "", "=r,0", /*hasSideEffects=*/false), {B.getInt32(0)});
  return B.CreateVectorSplat(Lanes, Zero);
}

std::vector<Value *> MatmulEmitter::groupBlocks(const Tile &T, Value *Blk, int64_t BlockBytes, Value *Step) {
  return groupsAt(T, B.CreateMul(Blk, B.getInt64(BlockBytes)), BlockBytes, Step);
}

std::vector<Value *> MatmulEmitter::groupsAt(const Tile &T, Value *Offset, int64_t Bytes, Value *Step) {
  std::vector<Value *> At(T.Rows);
  for (unsigned G = 0; G < T.Rows; ++G) {
    At[G] = gep(T.RowPtr[G], Offset);
    prefetch(At[G], Bytes);
  }
  prefetchSpread(T, Step);
  return At;
}

Value *MatmulEmitter::sumStart(Value *Init, Value *Prev, Value *Zero) {
  if (!Zero)
    return Init;
  return B.CreateAdd(Init, B.CreateAnd(B.CreateBitCast(Prev, Init->getType()), Zero));
}

Value *MatmulEmitter::zeroPointStart(Value *Bias, unsigned Z) {
  if (Z == 0)
    return Constant::getNullValue(Bias->getType());
  const unsigned Shift = 7 - Log2_32(Z);
  return Shift ? B.CreateAShr(Bias, ConstantInt::get(Bias->getType(), Shift)) : Bias;
}

Value *MatmulEmitter::addOffsetTerm(Value *A, Value *Offsets, Value *XScale, Value *BiasF) {
  Value *Coef = B.CreateFMul(B.CreateFMul(Offsets, XScale), ConstantFP::get(Offsets->getType(), -1.0 / 128));
  return fma(BiasF, Coef, A);
}

Value *MatmulEmitter::reduce(Value *V, Value *Tail) {
  unsigned W = cast<FixedVectorType>(V->getType())->getNumElements();
  if (W == 8 && Tail)
    V = B.CreateFAdd(V, Tail);
  while (W > 1) {
    V = B.CreateFAdd(slice(V, 0, W / 2), slice(V, W / 2, W / 2));
    W /= 2;
    if (W == 8 && Tail)
      V = B.CreateFAdd(V, Tail);
  }
  return B.CreateExtractElement(V, uint64_t(0));
}

void MatmulEmitter::emitStep(const Tile &T, Value *Sub, unsigned Subs, Accs &Acc) {
  if (Interleaved && interleavesKQuants(S.Shape.Weights))
    emitStepInterleavedKQuants(T, Sub, Subs, Acc);
  else if (Interleaved && interleavesQ6_K(S.Shape.Weights))
    emitStepInterleavedQ6K(T, Sub, Subs, Acc);
  else if (Interleaved && S.Shape.Weights != WeightType::Q8_0)
    emitStepInterleavedBlocks(T, Sub, Acc);
  else if (Interleaved)
    emitStepInterleaved(T, Sub, Acc);
  else if (S.Activations == ActivationFormat::Q8)
    emitStepInt8(T, Sub, Subs, Acc);
  else
    emitStepF32(T, Sub, Acc);
}

void MatmulEmitter::emitStepInt8(const Tile &T, Value *Sub, unsigned Subs, Accs &Acc) {
  const BlockFormat &F = *Format;
  const unsigned Group = std::min<int64_t>(Subs, SubsPerGroup), Lanes = 8 * Group;
  VectorType *LaneI32 = vec(I32, Lanes), *LaneF32 = vec(F32, Lanes);
  // The step starts at a block boundary: its blocks are whole.
  Value *FirstBlock = B.CreateUDiv(Sub, B.getInt64(F.subBlocks()));
  Value *WOff = B.CreateMul(FirstBlock, B.getInt64(F.Bytes));
  const int64_t StepBytes = (Subs + F.subBlocks() - 1) / F.subBlocks() * F.Bytes;
  // The minima's term needs each lane's activation sum (Bias8 / -128), and
  // the dot products start from it where the levels are offset (VNNI's
  // unsigned operand, or unsigned quants with a zero point).
  const bool NeedBias = F.HasOffsets || (F.Signed ? S.VNNI : F.ZeroPoint != 0);

  for (unsigned R = 0; R < T.Rows; ++R) {
    Value *RowStep = gep(T.RowPtr[R], WOff);
    prefetch(RowStep, std::max<int64_t>(64, StepBytes / 64 * 64));
    for (unsigned First = 0; First < Subs; First += Group) {
      // A group of sub-blocks side by side: quants, scales, offsets.
      SubBlockIR W;
      for (unsigned G = 0; G < Group; ++G) {
        const unsigned J = First + G;
        SubBlockIR One = F.emitSubBlock(*this, gep(RowStep, J / F.subBlocks() * F.Bytes), J % F.subBlocks());
        W.Quants = G ? concat(W.Quants, One.Quants) : One.Quants;
        W.Scales = G ? concat(W.Scales, One.Scales) : One.Scales;
        if (F.HasOffsets)
          W.Offsets = G ? concat(W.Offsets, One.Offsets) : One.Offsets;
      }
      // What the dot products multiply: vpdpbusd takes the weights as
      // unsigned bytes (signed levels + 128: flip the sign bit); pmaddubsw
      // without VNNI takes |w| against x * sign(w) for signed levels, the
      // unsigned quants as they are (at most 63: pairs of products stay
      // below its int16 saturation).
      Value *WOperand = W.Quants;
      if (F.Signed)
        WOperand = S.VNNI ? B.CreateXor(W.Quants, ConstantInt::get(W.Quants->getType(), 0x80))
                          : B.CreateIntrinsic(Intrinsic::x86_avx2_psign_b, {}, {W.Quants, W.Quants});
      if (S.VNNI)
        WOperand = B.CreateBitCast(WOperand, LaneI32);

      // Activations of the group: quants, and per lane scale and Bias8; all
      // three advance 32 bytes a sub-block.
      Value *XOff = B.CreateMul(B.CreateAdd(Sub, B.getInt64(First)), B.getInt64(32));
      for (unsigned Tk = 0; Tk < T.Tokens; ++Tk) {
        Value *X = gep(T.TokPtr[Tk], XOff);
        Value *XQuants = load(vec(I8, 4 * Lanes), X, 4);
        Value *XScales = load(LaneF32, gep(X, K), 4);
        Value *XBias = NeedBias ? load(LaneI32, gep(X, 2 * K), 4) : nullptr;
        Value *Dot = emitDot(W, WOperand, XQuants, XBias, Lanes);
        Value *&A = Acc[R * T.Tokens + Tk];
        A = fma(B.CreateSIToFP(Dot, LaneF32), B.CreateFMul(W.Scales, XScales), A);
        if (W.Offsets) // offset * sum x, from the lanes' Bias8.
          A = addOffsetTerm(A, W.Offsets, XScales, B.CreateSIToFP(XBias, LaneF32));
      }
    }
  }
}

Value *MatmulEmitter::accumulateDot(Value *Sum, Value *WOp, Value *X, Value *SignOf) {
  const unsigned Lanes = cast<FixedVectorType>(Sum->getType())->getNumElements();
  if (S.VNNI)
    return B.CreateIntrinsic(Lanes == 16 ? Intrinsic::x86_avx512_vpdpbusd_512 : Intrinsic::x86_avx512_vpdpbusd_256,
                             {}, {Sum, WOp, X});
  Value *XOp = B.CreateBitCast(X, vec(I8, 4 * Lanes));
  if (SignOf)
    XOp = B.CreateIntrinsic(Intrinsic::x86_avx2_psign_b, {}, {XOp, SignOf});
  Value *Pairs = B.CreateIntrinsic(Intrinsic::x86_avx2_pmadd_ub_sw, {}, {WOp, XOp});
  return B.CreateAdd(Sum, B.CreateIntrinsic(Intrinsic::x86_avx2_pmadd_wd, {}, {Pairs, ConstantInt::get(vec(I16, 16), 1)}));
}

Value *MatmulEmitter::emitDot(const SubBlockIR &W, Value *WOperand, Value *XQuants, Value *XBias,
                              unsigned Lanes) {
  const BlockFormat &F = *Format;
  VectorType *LaneI32 = vec(I32, Lanes);
  // VNNI takes every level as an unsigned byte (signed ones + 128); without
  // it signed levels go as |w| against x * sign(w), unsigned ones as they are.
  const unsigned Z = F.Signed ? (S.VNNI ? 128 : 0) : F.ZeroPoint;
  Value *Init = Z ? zeroPointStart(XBias, Z) : ConstantInt::get(LaneI32, 0);
  return accumulateDot(Init, WOperand, B.CreateBitCast(XQuants, LaneI32), F.Signed ? W.Quants : nullptr);
}

void MatmulEmitter::emitStepInterleaved(const Tile &T, Value *Blk, Accs &Acc) {
  // One block of each row group: a vector of the rows' fp16 scales and 8
  // quant vectors, vector j holding quants 4j..4j+3 of every row of the
  // group (4 bytes a lane). Each token's 4 activation quants 4j..4j+3 are
  // broadcast to every lane, so the integer dot products accumulate one row
  // per lane.
  const unsigned Lanes = Geo.Rows;
  VectorType *Bytes = vec(I8, 4 * Lanes), *LaneI32 = vec(I32, Lanes), *LaneF32 = vec(F32, Lanes);
  Value *XOff = B.CreateMul(Blk, B.getInt64(32));   // Quants.
  Value *BlkOff = B.CreateMul(Blk, B.getInt64(4));  // BlockBias, BlockScale.
  std::vector<Value *> GBlk = groupBlocks(T, Blk, Geo.blockBytes(), Blk), Sums(T.Rows * T.Tokens);
  Value *Zero = S.Paced ? opaqueZero(Lanes) : nullptr;
  for (unsigned Tk = 0; Tk < T.Tokens; ++Tk) {
    // VNNI starts at BlockBias (cancels the +128 on the weights); AVX2 at 0.
    Value *Init = ConstantInt::get(LaneI32, 0);
    if (S.VNNI) {
      Value *BlockBias = gep(gep(T.TokPtr[Tk], q8BlockBiasOffset(K)), BlkOff);
      Init = B.CreateVectorSplat(Lanes, load(I32, BlockBias, 4));
    }
    for (unsigned G = 0; G < T.Rows; ++G)
      Sums[G * T.Tokens + Tk] = sumStart(Init, Acc[G * T.Tokens + Tk], Zero);
  }
  for (unsigned J = 0; J < 8; ++J) {
    std::vector<Value *> W(T.Rows), WOp(T.Rows);
    for (unsigned G = 0; G < T.Rows; ++G) {
      W[G] = load(Bytes, gep(GBlk[G], Geo.quants(0, J)), 1);
      if (!S.VNNI)
        WOp[G] = B.CreateIntrinsic(Intrinsic::x86_avx2_psign_b, {}, {W[G], W[G]});
      else if (Geo.Unsigned) // Stored as vpdpbusd takes it.
        WOp[G] = B.CreateBitCast(W[G], LaneI32);
      else // Flip the sign bit: w + 128.
        WOp[G] = B.CreateBitCast(B.CreateXor(W[G], ConstantInt::get(Bytes, 0x80)), LaneI32);
    }
    for (unsigned Tk = 0; Tk < T.Tokens; ++Tk) {
      Value *X4 = load(I32, gep(gep(T.TokPtr[Tk], XOff), 4 * J), 4);
      Value *XSplat = B.CreateVectorSplat(Lanes, X4);
      for (unsigned G = 0; G < T.Rows; ++G) {
        Value *&Sum = Sums[G * T.Tokens + Tk];
        Sum = accumulateDot(Sum, WOp[G], XSplat, S.VNNI ? nullptr : W[G]);
      }
    }
  }
  for (unsigned G = 0; G < T.Rows; ++G) {
    Value *RowScales = B.CreateFPExt(load(vec(Half, Lanes), GBlk[G], 2), LaneF32);
    for (unsigned Tk = 0; Tk < T.Tokens; ++Tk) {
      Value *XScale = load(F32, gep(gep(T.TokPtr[Tk], q8BlockScaleOffset(K)), BlkOff), 4);
      Value *Scale = B.CreateFMul(RowScales, B.CreateVectorSplat(Lanes, XScale));
      Value *&A = Acc[G * T.Tokens + Tk];
      A = fma(B.CreateSIToFP(Sums[G * T.Tokens + Tk], LaneF32), Scale, A);
    }
  }
}

void MatmulEmitter::emitStepInterleavedBlocks(const Tile &T, Value *Blk, Accs &Acc) {
  // One 32-element block of each row group: 4 vectors of nibbles, each
  // holding 4 levels of every row twice over (low nibbles: elements 4v..,
  // high: 16+4v..), a fifth bit from a mask register where the type has
  // one, and a table lookup for IQ4_NL. Against each token's broadcast
  // activations the integer dot products accumulate one row per lane; the
  // scales (and minima) follow once per block, as for Q8_0's layouts.
  const BlockFormat &F = *Format;
  const InterleavedBlockGeometry Geo = InterleavedBlockGeometry::of(S.Shape.Weights, S.Shape.Layout);
  const unsigned Lanes = Geo.Rows;
  VectorType *Bytes = vec(I8, 4 * Lanes), *LaneI32 = vec(I32, Lanes), *LaneF32 = vec(F32, Lanes);
  Value *XOff = B.CreateMul(Blk, B.getInt64(32));   // Quants.
  Value *BlkOff = B.CreateMul(Blk, B.getInt64(4));  // BlockBias, BlockScale.
  const int8_t *Table = F.levelTable();
  // What the integer sums start from: -Z * (sum of the block's activation
  // quants) = BlockBias * Z / 128, where levels are unsigned bytes minus Z
  // (IQ4_NL's table as level + 128 on VNNI; its signed levels without).
  const unsigned Z = Table ? (S.VNNI ? 128 : 0) : F.ZeroPoint;
  const bool Signed = Table && !S.VNNI;
  std::vector<Value *> GBlk = groupBlocks(T, Blk, Geo.BlockBytes, Blk), Sums(T.Rows * T.Tokens),
                       BlockBias(T.Tokens);
  Value *Zero = S.Paced ? opaqueZero(Lanes) : nullptr;
  for (unsigned Tk = 0; Tk < T.Tokens; ++Tk) {
    BlockBias[Tk] = load(I32, gep(gep(T.TokPtr[Tk], q8BlockBiasOffset(K)), BlkOff), 4);
    Value *Init = B.CreateVectorSplat(Lanes, zeroPointStart(BlockBias[Tk], Z));
    for (unsigned G = 0; G < T.Rows; ++G)
      Sums[G * T.Tokens + Tk] = sumStart(Init, Acc[G * T.Tokens + Tk], Zero);
  }
  Value *TableVec = nullptr;
  if (Table) {
    SmallVector<Constant *, 64> Entries;
    for (unsigned I = 0; I < 4 * Lanes; ++I)
      Entries.push_back(ConstantInt::get(I8, uint8_t(Table[I % 16] + (S.VNNI ? 128 : 0))));
    TableVec = ConstantVector::get(Entries);
  }
  for (unsigned V = 0; V < 4; ++V)
    for (unsigned H = 0; H < 2; ++H) {
      std::vector<Value *> W(T.Rows), WOp(T.Rows);
      for (unsigned G = 0; G < T.Rows; ++G) {
        W[G] = pieceLevels(load(Bytes, gep(GBlk[G], Geo.nibbles(0, V)), 1), H,
                           Geo.HasHigh ? gep(GBlk[G], Geo.highBits(0, 4 * H + V)) : nullptr, TableVec);
        WOp[G] = Signed ? B.CreateIntrinsic(Intrinsic::x86_avx2_psign_b, {}, {W[G], W[G]}) : W[G];
        if (S.VNNI)
          WOp[G] = B.CreateBitCast(WOp[G], LaneI32);
      }
      for (unsigned Tk = 0; Tk < T.Tokens; ++Tk) {
        Value *X4 = load(I32, gep(gep(T.TokPtr[Tk], XOff), 4 * V + 16 * H), 4);
        Value *XSplat = B.CreateVectorSplat(Lanes, X4);
        // Unsigned levels (at most 31) go to pmaddubsw as they are; IQ4_NL's
        // signed ones (without VNNI) as |w| against x * sign(w).
        for (unsigned G = 0; G < T.Rows; ++G) {
          Value *&Sum = Sums[G * T.Tokens + Tk];
          Sum = accumulateDot(Sum, WOp[G], XSplat, Signed ? W[G] : nullptr);
        }
      }
    }
  for (unsigned G = 0; G < T.Rows; ++G) {
    Value *RowScales = B.CreateFPExt(load(vec(Half, Lanes), gep(GBlk[G], Geo.scales(0)), 2), LaneF32);
    Value *RowMins = Geo.HasMin ? B.CreateFPExt(load(vec(Half, Lanes), gep(GBlk[G], Geo.mins(0)), 2), LaneF32)
                                : nullptr;
    for (unsigned Tk = 0; Tk < T.Tokens; ++Tk) {
      Value *XScale = B.CreateVectorSplat(
          Lanes, load(F32, gep(gep(T.TokPtr[Tk], q8BlockScaleOffset(K)), BlkOff), 4));
      Value *&A = Acc[G * T.Tokens + Tk];
      A = fma(B.CreateSIToFP(Sums[G * T.Tokens + Tk], LaneF32), B.CreateFMul(RowScales, XScale), A);
      if (RowMins) // m * sum x, from BlockBias.
        A = addOffsetTerm(A, RowMins, XScale, B.CreateVectorSplat(Lanes, B.CreateSIToFP(BlockBias[Tk], F32)));
    }
  }
}

Value *MatmulEmitter::pieceLevels(Value *Nibbles, unsigned H, Value *HighAt, Value *Table) {
  auto *Bytes = cast<VectorType>(Nibbles->getType());
  const unsigned N = Bytes->getElementCount().getFixedValue();
  Value *L = H ? B.CreateLShr(Nibbles, ConstantInt::get(Bytes, 4)) : Nibbles;
  L = B.CreateAnd(L, ConstantInt::get(Bytes, 0xF));
  if (HighAt) {
    Value *Mask = load(B.getIntNTy(N), HighAt, 1);
    L = B.CreateOr(L, B.CreateSelect(B.CreateBitCast(Mask, vec(B.getInt1Ty(), N)), ConstantInt::get(Bytes, 16),
                                     ConstantInt::get(Bytes, 0)));
  }
  if (Table)
    L = B.CreateIntrinsic(N == 64 ? Intrinsic::x86_avx512_pshuf_b_512 : Intrinsic::x86_avx2_pshuf_b, {},
                          {Table, L});
  return L;
}

void MatmulEmitter::emitStepInterleavedKQuants(const Tile &T, Value *Sub, unsigned Subs, Accs &Acc) {
  // Sub-block by sub-block, as the legacy blocks: 4 nibble pieces of each
  // row group, each holding 4 levels of every row twice over (low nibbles:
  // elements 4v.., high: 16+4v..), against each token's broadcast
  // activations; a sub-block's 6-bit scale and minimum codes come as a
  // byte and a nibble a row beside its levels, d and dmin from the start of
  // its super-block once a step.
  const InterleavedKQuantGeometry Geo = InterleavedKQuantGeometry::of(S.Shape.Weights, S.Shape.Layout, K);
  const unsigned Lanes = Geo.Rows, HalfRows = Lanes / 2;
  VectorType *Bytes = vec(I8, 4 * Lanes), *LaneI8 = vec(I8, Lanes), *HalfI8 = vec(I8, HalfRows),
             *LaneI32 = vec(I32, Lanes), *LaneF32 = vec(F32, Lanes);
  // Super-block Sub / 8 starts with d and dmin; its runs follow.
  auto [Super, Run] = subBlockRun(Sub, Geo.superBytes(), Geo.sub(0), Geo.subBytes());
  std::vector<Value *> GBlk = groupsAt(T, Run, Subs * Geo.subBytes(), Sub), D(T.Rows), DMin(T.Rows);
  for (unsigned G = 0; G < T.Rows; ++G) {
    Value *DAt = gep(T.RowPtr[G], Super);
    D[G] = B.CreateFPExt(load(vec(Half, Lanes), gep(DAt, Geo.d(0)), 2), LaneF32);
    DMin[G] = B.CreateFPExt(load(vec(Half, Lanes), gep(DAt, Geo.dmin(0)), 2), LaneF32);
  }
  Value *Zero = S.Paced ? opaqueZero(Lanes) : nullptr;
  SmallVector<int, 16> BothHalves; // Concatenates two vectors of HalfRows.
  for (unsigned I = 0; I < Lanes; ++I)
    BothHalves.push_back(I);
  // With a scale per 256 activations: the super-block's sums times their
  // scales, and its minima times their blocks' BlockBias, as exact integers
  // (at most 63 * 126K and 63 * 520K a sub-block, 8 of them: < 2^31).
  std::vector<Value *> IntAcc, MinAcc;
  if (S.SuperBlockScales) {
    IntAcc.assign(T.Rows * T.Tokens, ConstantInt::get(LaneI32, 0));
    MinAcc = IntAcc;
  }
  // A decode cell (one group, one token) sums the low and the high nibbles
  // in two chains, so their latency overlaps; larger tiles' cells fill the
  // registers already.
  const unsigned Chains = T.Rows * T.Tokens == 1 ? 2 : 1;
  for (unsigned J = 0; J < Subs; ++J) {
    Value *SubJ = B.CreateAdd(Sub, B.getInt64(J));
    std::vector<Value *> At(T.Rows), Sums(T.Rows * T.Tokens * Chains);
    for (unsigned G = 0; G < T.Rows; ++G) {
      At[G] = gep(GBlk[G], J * Geo.subBytes());
      for (unsigned Tk = 0; Tk < T.Tokens; ++Tk)
        for (unsigned C = 0; C < Chains; ++C)
          Sums[(G * T.Tokens + Tk) * Chains + C] =
              sumStart(ConstantInt::get(LaneI32, 0), Acc[G * T.Tokens + Tk], Zero);
    }
    std::vector<Value *> High(T.Rows);
    for (unsigned G = 0; G < T.Rows && Geo.HasHigh; ++G)
      High[G] = load(Bytes, gep(At[G], Geo.highAt()), 1);
    for (unsigned V = 0; V < 4; ++V)
      for (unsigned H = 0; H < 2; ++H) {
        std::vector<Value *> W(T.Rows);
        for (unsigned G = 0; G < T.Rows; ++G) { // Levels of at most 31: unsigned bytes.
          W[G] = pieceLevels(load(Bytes, gep(At[G], Geo.nibblesAt(V)), 1), H, nullptr, nullptr);
          if (High[G]) { // Bit 2V + H of the fifth bits' piece, moved to bit 4.
            const unsigned Bit = 2 * V + H;
            Value *Hi = Bit < 4   ? B.CreateShl(High[G], ConstantInt::get(Bytes, 4 - Bit))
                        : Bit > 4 ? B.CreateLShr(High[G], ConstantInt::get(Bytes, Bit - 4))
                                  : High[G];
            W[G] = B.CreateOr(W[G], B.CreateAnd(Hi, ConstantInt::get(Bytes, 16)));
          }
          if (S.VNNI)
            W[G] = B.CreateBitCast(W[G], LaneI32);
        }
        Value *XOff = B.CreateAdd(B.CreateMul(SubJ, B.getInt64(32)), B.getInt64(4 * V + 16 * H));
        for (unsigned Tk = 0; Tk < T.Tokens; ++Tk) {
          Value *XSplat = B.CreateVectorSplat(Lanes, load(I32, gep(T.TokPtr[Tk], XOff), 4));
          for (unsigned G = 0; G < T.Rows; ++G) {
            Value *&Sum = Sums[(G * T.Tokens + Tk) * Chains + H % Chains];
            Sum = accumulateDot(Sum, W[G], XSplat);
          }
        }
      }
    Value *SubOff = B.CreateMul(SubJ, B.getInt64(4)); // BlockBias, BlockScale.
    for (unsigned G = 0; G < T.Rows; ++G) {
      // Scale: the code's low six bits; minimum: its top two bits under
      // the row's nibble (the first half of the rows in the low nibbles).
      Value *Code = load(LaneI8, gep(At[G], Geo.codesAt()), 1), *MinHigh = load(HalfI8, gep(At[G], Geo.minHighAt()), 1);
      MinHigh = B.CreateShuffleVector(B.CreateAnd(MinHigh, ConstantInt::get(HalfI8, 0xF)),
                                      B.CreateLShr(MinHigh, ConstantInt::get(HalfI8, 4)), BothHalves);
      Value *Sc = B.CreateZExt(B.CreateAnd(Code, ConstantInt::get(LaneI8, 63)), LaneI32);
      Value *Mn = B.CreateZExt(B.CreateOr(B.CreateLShr(Code, ConstantInt::get(LaneI8, 6)),
                                          B.CreateShl(MinHigh, ConstantInt::get(LaneI8, 2))),
                               LaneI32);
      Value *Scale = S.SuperBlockScales ? nullptr : B.CreateFMul(D[G], B.CreateSIToFP(Sc, LaneF32));
      Value *Min = S.SuperBlockScales ? nullptr : B.CreateFNeg(B.CreateFMul(DMin[G], B.CreateSIToFP(Mn, LaneF32)));
      for (unsigned Tk = 0; Tk < T.Tokens; ++Tk) {
        Value *Sum = Sums[(G * T.Tokens + Tk) * Chains];
        for (unsigned C = 1; C < Chains; ++C)
          Sum = B.CreateAdd(Sum, Sums[(G * T.Tokens + Tk) * Chains + C]);
        Value *X = T.TokPtr[Tk];
        Value *Bias = load(I32, gep(gep(X, q8BlockBiasOffset(K)), SubOff), 4);
        if (S.SuperBlockScales) {
          Value *&I = IntAcc[G * T.Tokens + Tk], *&Mi = MinAcc[G * T.Tokens + Tk];
          I = B.CreateAdd(I, B.CreateMul(Sum, Sc));
          Mi = B.CreateAdd(Mi, B.CreateMul(Mn, B.CreateVectorSplat(Lanes, Bias)));
          continue;
        }
        Value *XScale = blockScaleSplat(X, SubJ, Lanes);
        Value *&A = Acc[G * T.Tokens + Tk];
        A = fma(B.CreateSIToFP(Sum, LaneF32), B.CreateFMul(Scale, XScale), A);
        // -dmin * m * sum x, from BlockBias.
        A = addOffsetTerm(A, Min, XScale, B.CreateVectorSplat(Lanes, B.CreateSIToFP(Bias, F32)));
      }
    }
  }
  // One scale for the super-block's activations: two FMAs (dmin * m * sum x
  // = dmin * m * BlockBias / -128, the sign in weight = d sc q - dmin m).
  for (unsigned G = 0; G < T.Rows && S.SuperBlockScales; ++G)
    for (unsigned Tk = 0; Tk < T.Tokens; ++Tk) {
      Value *XScale = blockScaleSplat(T.TokPtr[Tk], Sub, Lanes);
      Value *&A = Acc[G * T.Tokens + Tk];
      A = fma(B.CreateSIToFP(IntAcc[G * T.Tokens + Tk], LaneF32), B.CreateFMul(D[G], XScale), A);
      Value *MinCoef = B.CreateFMul(B.CreateFMul(DMin[G], XScale), ConstantFP::get(LaneF32, 1.0 / 128));
      A = fma(B.CreateSIToFP(MinAcc[G * T.Tokens + Tk], LaneF32), MinCoef, A);
    }
}

void MatmulEmitter::emitStepInterleavedQ6K(const Tile &T, Value *Sub, unsigned Subs, Accs &Acc) {
  // Sub-block by sub-block, as Q4_K: a low piece holds the low nibbles of 4
  // levels of both 16-element halves of every row, a high piece their top
  // two bits for two low pieces. The 6-bit codes q go into vpdpbusd as
  // unsigned bytes; each half's sum starts at -32 times its activations'
  // sum (from Bias8), so it ends as the sum of (q - 32) x. The halves' sums
  // times their int8 scales, added exactly as integers, take one FMA with d
  // times the sub-block's activation scale.
  const InterleavedQ6KGeometry Geo = InterleavedQ6KGeometry::of(S.Shape.Layout, K);
  const unsigned Lanes = Geo.Rows;
  VectorType *Bytes = vec(I8, 4 * Lanes), *LaneI8 = vec(I8, Lanes), *LaneI32 = vec(I32, Lanes),
             *LaneF32 = vec(F32, Lanes);
  // Super-block Sub / 8 starts with d; its runs follow.
  auto [Super, Run] = subBlockRun(Sub, Geo.superBytes(), Geo.sub(0), Geo.subBytes());
  std::vector<Value *> GBlk = groupsAt(T, Run, Subs * Geo.subBytes(), Sub), D(T.Rows);
  for (unsigned G = 0; G < T.Rows; ++G)
    D[G] = B.CreateFPExt(load(vec(Half, Lanes), gep(gep(T.RowPtr[G], Super), Geo.d(0)), 2), LaneF32);
  Value *Zero = S.Paced ? opaqueZero(Lanes) : nullptr;
  auto Splat = [&](unsigned V) { return ConstantInt::get(Bytes, V); };
  // With a scale per 256 activations the sub-blocks' scaled sums add up as
  // exact integers (at most 8 * 2 * 128 * 65024 < 2^31) to one FMA.
  std::vector<Value *> IntAcc;
  if (S.SuperBlockScales)
    IntAcc.assign(T.Rows * T.Tokens, ConstantInt::get(LaneI32, 0));
  for (unsigned J = 0; J < Subs; ++J) {
    Value *SubJ = B.CreateAdd(Sub, B.getInt64(J));
    std::vector<Value *> At(T.Rows), Sums(T.Rows * T.Tokens * 2); // [(G * Tokens + Tk) * 2 + Half]
    for (unsigned G = 0; G < T.Rows; ++G)
      At[G] = gep(GBlk[G], J * Geo.subBytes());
    for (unsigned Tk = 0; Tk < T.Tokens; ++Tk) {
      // -32 times a 16-element sum of quants is a quarter of the sum of
      // its four Bias8 words (-128 times each 4-element sum), exactly.
      Value *Bias8 = load(vec(I32, 8), gep(gep(T.TokPtr[Tk], 2 * K), B.CreateMul(SubJ, B.getInt64(32))), 4);
      for (unsigned H = 0; H < 2; ++H) {
        Value *Quad = B.CreateExtractElement(Bias8, uint64_t(4 * H));
        for (unsigned P = 1; P < 4; ++P)
          Quad = B.CreateAdd(Quad, B.CreateExtractElement(Bias8, uint64_t(4 * H + P)));
        Value *Start = B.CreateVectorSplat(Lanes, B.CreateAShr(Quad, B.getInt32(2)));
        for (unsigned G = 0; G < T.Rows; ++G)
          Sums[(G * T.Tokens + Tk) * 2 + H] = sumStart(Start, Acc[G * T.Tokens + Tk], Zero);
      }
    }
    for (unsigned V = 0; V < 4; ++V) {
      std::vector<Value *> Low(T.Rows), High(T.Rows);
      for (unsigned G = 0; G < T.Rows; ++G) {
        Low[G] = load(Bytes, gep(At[G], Geo.lowAt(V)), 1);
        High[G] = load(Bytes, gep(At[G], Geo.highAt(V / 2)), 1);
      }
      for (unsigned H = 0; H < 2; ++H) {
        // The top bits' field 2 (V % 2) + H, moved to bits 4 and 5.
        const unsigned Field = 2 * (V % 2) + H;
        std::vector<Value *> W(T.Rows);
        for (unsigned G = 0; G < T.Rows; ++G) {
          Value *Lo = B.CreateAnd(H ? B.CreateLShr(Low[G], Splat(4)) : Low[G], Splat(0xF));
          Value *Hi = Field < 2 ? B.CreateShl(High[G], Splat(4 - 2 * Field))
                      : Field == 3 ? B.CreateLShr(High[G], Splat(2)) : High[G];
          Value *L = B.CreateOr(Lo, B.CreateAnd(Hi, Splat(0x30)));
          W[G] = S.VNNI ? B.CreateBitCast(L, LaneI32) : L;
        }
        Value *XOff = B.CreateAdd(B.CreateMul(SubJ, B.getInt64(32)), B.getInt64(16 * H + 4 * V));
        for (unsigned Tk = 0; Tk < T.Tokens; ++Tk) {
          Value *XSplat = B.CreateVectorSplat(Lanes, load(I32, gep(T.TokPtr[Tk], XOff), 4));
          for (unsigned G = 0; G < T.Rows; ++G) {
            Value *&Sum = Sums[(G * T.Tokens + Tk) * 2 + H];
            Sum = accumulateDot(Sum, W[G], XSplat);
          }
        }
      }
    }
    for (unsigned G = 0; G < T.Rows; ++G) {
      Value *Sc0 = B.CreateSExt(load(LaneI8, gep(At[G], Geo.scalesAt(0)), 1), LaneI32);
      Value *Sc1 = B.CreateSExt(load(LaneI8, gep(At[G], Geo.scalesAt(1)), 1), LaneI32);
      for (unsigned Tk = 0; Tk < T.Tokens; ++Tk) {
        Value *Int = B.CreateAdd(B.CreateMul(Sums[(G * T.Tokens + Tk) * 2], Sc0),
                                 B.CreateMul(Sums[(G * T.Tokens + Tk) * 2 + 1], Sc1));
        if (S.SuperBlockScales) { // Added up to the super-block's end.
          Value *&I = IntAcc[G * T.Tokens + Tk];
          I = B.CreateAdd(I, Int);
          continue;
        }
        Value *XScale = blockScaleSplat(T.TokPtr[Tk], SubJ, Lanes);
        Value *&A = Acc[G * T.Tokens + Tk];
        A = fma(B.CreateSIToFP(Int, LaneF32), B.CreateFMul(D[G], XScale), A);
      }
    }
  }
  // One activation scale for the super-block: one FMA.
  for (unsigned G = 0; G < T.Rows && S.SuperBlockScales; ++G)
    for (unsigned Tk = 0; Tk < T.Tokens; ++Tk) {
      Value *XScale = blockScaleSplat(T.TokPtr[Tk], Sub, Lanes);
      Value *&A = Acc[G * T.Tokens + Tk];
      A = fma(B.CreateSIToFP(IntAcc[G * T.Tokens + Tk], LaneF32), B.CreateFMul(D[G], XScale), A);
    }
}

void MatmulEmitter::emitStepF32(const Tile &T, Value *Blk, Accs &Acc) {
  const unsigned Lanes = AccLanes, Parts = kBlock / Lanes;
  VectorType *LaneF32 = vec(F32, Lanes);
  Value *XOff = B.CreateMul(Blk, B.getInt64(kBlock * 4));
  for (unsigned R = 0; R < T.Rows; ++R) {
    // The block's weights as Parts vectors of floats, and its scale.
    std::vector<Value *> W(Parts);
    Value *Scale = nullptr;
    switch (S.Shape.Weights) {
    case WeightType::Q8_0: {
      Value *RowBlk = gep(T.RowPtr[R], B.CreateMul(Blk, B.getInt64(kBlockBytes)));
      Value *Q = load(vec(I8, 32), gep(RowBlk, 2), 1);
      Scale = splatHalf(load(I16, RowBlk, 1), Lanes);
      for (unsigned P = 0; P < Parts; ++P)
        W[P] = B.CreateSIToFP(slice(Q, P * Lanes, Lanes), LaneF32);
      break;
    }
    case WeightType::F16: {
      Value *RowBlk = gep(T.RowPtr[R], B.CreateMul(Blk, B.getInt64(kBlock * 2)));
      for (unsigned P = 0; P < Parts; ++P)
        W[P] = B.CreateFPExt(load(vec(Half, Lanes), gep(RowBlk, P * Lanes * 2), 2), LaneF32);
      break;
    }
    case WeightType::F32: {
      Value *RowBlk = gep(T.RowPtr[R], B.CreateMul(Blk, B.getInt64(kBlock * 4)));
      for (unsigned P = 0; P < Parts; ++P)
        W[P] = load(LaneF32, gep(RowBlk, P * Lanes * 4), 4);
      break;
    }
    case WeightType::BF16: {
      // A bf16 is the high half of an f32: widen and shift, exact.
      Value *RowBlk = gep(T.RowPtr[R], B.CreateMul(Blk, B.getInt64(kBlock * 2)));
      for (unsigned P = 0; P < Parts; ++P) {
        Value *Bits = B.CreateZExt(load(vec(I16, Lanes), gep(RowBlk, P * Lanes * 2), 2), vec(I32, Lanes));
        W[P] = B.CreateBitCast(B.CreateShl(Bits, 16), LaneF32);
      }
      break;
    }
    default:
      llvm_unreachable("KernelSpec::validate refuses types without generated kernels");
    }
    for (unsigned Tk = 0; Tk < T.Tokens; ++Tk) {
      Value *X = gep(T.TokPtr[Tk], XOff);
      Value *&A = Acc[R * T.Tokens + Tk];
      if (!Scale) { // Unscaled weights: straight into the accumulator.
        for (unsigned P = 0; P < Parts; ++P)
          A = fma(W[P], load(LaneF32, gep(X, P * Lanes * 4), 4), A);
        continue;
      }
      // Block dot product first, then one scaled add: Parts + 1 FMAs a block.
      Value *Sum = B.CreateFMul(W[0], load(LaneF32, X, 4));
      for (unsigned P = 1; P < Parts; ++P)
        Sum = fma(W[P], load(LaneF32, gep(X, P * Lanes * 4), 4), Sum);
      A = fma(Sum, Scale, A);
    }
  }
}

Function *MatmulEmitter::emitTile(unsigned Rows, unsigned Tokens) {
  std::string Name = absl::StrFormat("%s.tile%dx%d", S.functionName(), Rows, Tokens);
  Function *F = createFunction(Name, {Ptr, Ptr, Ptr, I64, I64}, /*External=*/false, S.VectorBits);
  F->addFnAttr(Attribute::AlwaysInline);
  Value *W = F->getArg(0), *X = F->getArg(1), *Y = F->getArg(2);
  Value *Row = F->getArg(3), *Tok0 = F->getArg(4);
  W->setName("w");
  X->setName("x");
  Y->setName("y");
  Row->setName("row");
  Tok0->setName("tok0");
  BasicBlock *Entry = BasicBlock::Create(Ctx, "entry", F);
  B.SetInsertPoint(Entry);

  // Rows of an interleaved tile come as groups (RowsPerCell).
  const unsigned RowCells = Rows / RowsPerCell;
  Tile T{RowCells, Tokens, {}, {}};
  for (unsigned R = 0; R < RowCells; ++R)
    T.RowPtr.push_back(gep(W, B.CreateMul(B.CreateAdd(Row, B.getInt64(R * RowsPerCell)),
                                          B.getInt64(RowBytes))));
  T.Pass = B.CreateUDiv(Tok0, B.getInt64(S.TileTokens));
  for (unsigned Tk = 0; Tk < Tokens; ++Tk)
    T.TokPtr.push_back(
        gep(X, B.CreateMul(B.CreateAdd(Tok0, B.getInt64(Tk)), B.getInt64(XRowBytes))));

  const int64_t Subs = K / kBlock, Steps = Subs / SubsPerStep;
  const int64_t TailSubs = Subs % SubsPerStep; // One block, on two-block steps.
  const unsigned A = S.Accumulators, Cells = RowCells * Tokens;
  const int64_t MainIters = Steps / A;
  Value *Zero = ConstantFP::get(vec(F32, AccLanes), 0.0);
  std::vector<Accs> Acc(A, Accs(Cells, Zero));

  if (MainIters > 0) {
    // do { A unrolled steps, one accumulator set each } while (++i < MainIters)
    BasicBlock *Loop = BasicBlock::Create(Ctx, "k.loop", F);
    BasicBlock *Exit = BasicBlock::Create(Ctx, "k.exit", F);
    B.CreateBr(Loop);
    B.SetInsertPoint(Loop);
    PHINode *I = B.CreatePHI(I64, 2, "k.step");
    I->addIncoming(B.getInt64(0), Entry);
    std::vector<std::vector<PHINode *>> Phis(A);
    for (unsigned Set = 0; Set < A; ++Set)
      for (unsigned C = 0; C < Cells; ++C) {
        Phis[Set].push_back(B.CreatePHI(Zero->getType(), 2, absl::StrFormat("acc%d.%d", Set, C)));
        Phis[Set][C]->addIncoming(Zero, Entry);
        Acc[Set][C] = Phis[Set][C];
      }
    for (unsigned Set = 0; Set < A; ++Set) {
      Value *Step = B.CreateAdd(B.CreateMul(I, B.getInt64(A)), B.getInt64(Set));
      emitStep(T, B.CreateMul(Step, B.getInt64(SubsPerStep)), SubsPerStep, Acc[Set]);
    }
    Value *Next = B.CreateAdd(I, B.getInt64(1), "k.next");
    BasicBlock *Latch = B.GetInsertBlock();
    I->addIncoming(Next, Latch);
    for (unsigned Set = 0; Set < A; ++Set)
      for (unsigned C = 0; C < Cells; ++C)
        Phis[Set][C]->addIncoming(Acc[Set][C], Latch);
    B.CreateCondBr(B.CreateICmpSLT(Next, B.getInt64(MainIters)), Loop, Exit);
    B.SetInsertPoint(Exit);
  }
  // Steps left over by the unrolling continue round-robin over the sets.
  for (int64_t Step = MainIters * A; Step < Steps; ++Step)
    emitStep(T, B.getInt64(Step * SubsPerStep), SubsPerStep, Acc[Step % A]);
  // An odd block on a two-block step goes to a 256-bit tail accumulator.
  Accs Tail;
  if (TailSubs) {
    Tail.assign(Cells, ConstantFP::get(vec(F32, 8), 0.0));
    emitStep(T, B.getInt64(Steps * SubsPerStep), TailSubs, Tail);
  }

  for (unsigned R = 0; R < RowCells; ++R)
    for (unsigned Tk = 0; Tk < Tokens; ++Tk) {
      unsigned C = R * Tokens + Tk;
      Value *Sum = Acc[0][C];
      for (unsigned Set = 1; Set < A; ++Set)
        Sum = B.CreateFAdd(Sum, Acc[Set][C]);
      // Interleaved cells hold a group's finished rows; row cells need a reduction.
      Value *Result = Interleaved ? Sum : reduce(Sum, Tail.empty() ? nullptr : Tail[C]);
      Value *Index = B.CreateAdd(B.CreateMul(B.CreateAdd(Tok0, B.getInt64(Tk)), B.getInt64(S.Shape.M)),
                                 B.CreateAdd(Row, B.getInt64(R * RowsPerCell)));
      B.CreateAlignedStore(Result, B.CreateGEP(F32, Y, Index), MaybeAlign(4));
    }
  B.CreateRetVoid();
  return F;
}

Function *MatmulEmitter::emit() {
  const unsigned TR = S.TileRows, TT = S.TileTokens;
  const int64_t N = S.Shape.N, FullTokens = N / TT * TT, RestTokens = N % TT;
  // Tile functions first: the driver calls them.
  std::map<std::pair<unsigned, unsigned>, Function *> Tiles;
  auto TileFn = [&](unsigned Rows, unsigned Tokens) {
    Function *&F = Tiles[{Rows, Tokens}];
    if (!F) {
      IRBuilderBase::InsertPointGuard Guard(B);
      F = emitTile(Rows, Tokens);
    }
    return F;
  };

  Function *F = createFunction(S.functionName(), {Ptr, Ptr, Ptr, I64, I64}, /*External=*/true,
                               S.VectorBits);
  Value *W = F->getArg(0), *X = F->getArg(1), *Y = F->getArg(2);
  Value *RowBegin = F->getArg(3), *RowEnd = F->getArg(4);
  W->setName("w");
  X->setName("x");
  Y->setName("y");
  RowBegin->setName("row_begin");
  RowEnd->setName("row_end");
  for (unsigned I : {0u, 1u, 2u}) {
    F->addParamAttr(I, Attribute::NoAlias);
    F->addParamAttr(I, Attribute::NoCapture);
  }
  F->addParamAttr(0, Attribute::ReadOnly);
  F->addParamAttr(1, Attribute::ReadOnly);
  F->addParamAttr(2, Attribute::WriteOnly);
  // Tile functions are created before the driver's body so the builder is free.
  // Rows left over by the row tile run one at a time (one group when
  // interleaved: the ABI keeps row ranges at multiples of the group there).
  const unsigned RestRows = RowsPerCell;
  for (unsigned Rows : {TR, RestRows}) {
    if (FullTokens) TileFn(Rows, TT);
    if (RestTokens) TileFn(Rows, RestTokens);
  }
  B.SetInsertPoint(BasicBlock::Create(Ctx, "entry", F));

  auto TokenTiles = [&](Value *Row, unsigned Rows) {
    if (FullTokens == TT) {
      B.CreateCall(TileFn(Rows, TT), {W, X, Y, Row, B.getInt64(0)});
    } else if (FullTokens > TT) {
      countedLoop(B.getInt64(0), B.getInt64(FullTokens), TT, "tok", [&](Value *Tok0) {
        B.CreateCall(TileFn(Rows, TT), {W, X, Y, Row, Tok0});
      });
    }
    if (RestTokens)
      B.CreateCall(TileFn(Rows, RestTokens), {W, X, Y, Row, B.getInt64(FullTokens)});
  };
  PHINode *Row = countedLoop(RowBegin, RowEnd, TR, "rows", [&](Value *Row) { TokenTiles(Row, TR); });
  if (TR > RestRows) // Rows that do not fill a whole tile.
    countedLoop(Row, RowEnd, RestRows, "rows.rest", [&](Value *Row) { TokenTiles(Row, RestRows); });
  B.CreateRetVoid();
  return F;
}

//===----------------------------------------------------------------------===//
// Activation quantizer
//===----------------------------------------------------------------------===//

std::string quantizerName(int64_t K, bool Blocks, int64_t ScaleBlock) {
  return Blocks ? quantizeBlocksFunctionName(K, ScaleBlock) : quantizeFunctionName(K, ScaleBlock);
}

/// f32 rows -> the Q8 activation layout of KernelABI.h, rounding as ggml's
/// x86 quantize_row_q8_0 does (nearest-even quants, fp16 scale). Whole rows
/// of a token range, or (Blocks) a block range of every token's row.
class QuantizeEmitter : IREmitter {
public:
  QuantizeEmitter(Module &M, int64_t K, const CpuFeatures &Cpu, bool Blocks, int64_t ScaleBlock)
      : IREmitter(M, Cpu), K(K), Blocks(Blocks), Subs(ScaleBlock / kBlock) {}

  Function *emit() {
    std::vector<Type *> Args = {Ptr, Ptr, I64, I64};
    if (Blocks)
      Args.push_back(I64);
    Function *F = createFunction(quantizerName(K, Blocks, Subs * kBlock), Args, true, Cpu.AVX512 ? 512 : 256);
    Value *X = F->getArg(0), *Q = F->getArg(1);
    X->setName("x");
    Q->setName("q");
    F->addParamAttr(0, Attribute::ReadOnly);
    F->addParamAttr(1, Attribute::WriteOnly);
    B.SetInsertPoint(BasicBlock::Create(Ctx, "entry", F));
    Value *TokBegin = B.getInt64(0), *TokEnd, *BlkBegin = B.getInt64(0), *BlkEnd = B.getInt64(K / kBlock);
    if (Blocks) {
      (TokEnd = F->getArg(2))->setName("tokens");
      (BlkBegin = F->getArg(3))->setName("blk_begin");
      (BlkEnd = F->getArg(4))->setName("blk_end");
    } else {
      (TokBegin = F->getArg(2))->setName("tok_begin");
      (TokEnd = F->getArg(3))->setName("tok_end");
    }
    // Groups of Subs blocks share a scale; a block range is whole groups.
    Value *GrpBegin = B.CreateUDiv(BlkBegin, B.getInt64(Subs)), *GrpEnd = B.CreateUDiv(BlkEnd, B.getInt64(Subs));
    countedLoop(TokBegin, TokEnd, 1, "tok", [&](Value *Tok) {
      Value *XRow = gep(X, B.CreateMul(Tok, B.getInt64(K * 4)));
      Value *QRow = gep(Q, B.CreateMul(Tok, B.getInt64(q8RowBytes(K))));
      countedLoop(GrpBegin, GrpEnd, 1, "blk", [&](Value *Grp) { emitGroup(XRow, QRow, Grp); });
    });
    B.CreateRetVoid();
    return F;
  }

private:
  /// The Subs blocks of group Grp under one scale: max |x| over the group.
  void emitGroup(Value *XRow, Value *QRow, Value *Grp) {
    VectorType *V32F = vec(F32, 32);
    std::vector<Value *> Xs(Subs);
    Value *AMax = nullptr;
    for (int64_t S = 0; S < Subs; ++S) {
      Value *Blk = B.CreateAdd(B.CreateMul(Grp, B.getInt64(Subs)), B.getInt64(S));
      Xs[S] = load(V32F, gep(XRow, B.CreateMul(Blk, B.getInt64(kBlock * 4))), 4);
      Value *Abs = B.CreateIntrinsic(Intrinsic::fabs, {V32F}, {Xs[S]});
      AMax = AMax ? B.CreateBinaryIntrinsic(Intrinsic::maxnum, AMax, Abs) : Abs;
    }
    // max |x| by halving: llvm.vector.reduce.fmax is lowered as a serial
    // chain of 31 scalar maxima (its NaN rule), a third of the quantizer.
    for (unsigned W = 32; W > 1; W /= 2)
      AMax = B.CreateBinaryIntrinsic(Intrinsic::maxnum, slice(AMax, 0, W / 2), slice(AMax, W / 2, W / 2));
    AMax = B.CreateExtractElement(AMax, uint64_t(0));
    Value *D = B.CreateFDiv(AMax, ConstantFP::get(F32, 127.0));
    Value *Inv = B.CreateSelect(B.CreateFCmpONE(AMax, ConstantFP::get(F32, 0.0)),
                                B.CreateFDiv(ConstantFP::get(F32, 127.0), AMax),
                                ConstantFP::get(F32, 0.0));
    for (int64_t S = 0; S < Subs; ++S)
      emitBlock(XRow, QRow, B.CreateAdd(B.CreateMul(Grp, B.getInt64(Subs)), B.getInt64(S)), Xs[S], D, Inv);
  }

  /// Block Blk's 32 values Xs quantized with scale D (Inv = 1 / D, or 0).
  void emitBlock(Value *XRow, Value *QRow, Value *Blk, Value *Xs, Value *D, Value *Inv) {
    (void)XRow;
    VectorType *V32F = vec(F32, 32), *V32I = vec(I32, 32);
    Value *Scaled = B.CreateFMul(Xs, B.CreateVectorSplat(32, Inv));
    Value *Quants = B.CreateFPToSI(B.CreateIntrinsic(Intrinsic::roundeven, {V32F}, {Scaled}), V32I);
    Value *Off = B.CreateMul(Blk, B.getInt64(32));
    Value *QBytes = B.CreateTrunc(Quants, vec(I8, 32));
    B.CreateAlignedStore(QBytes, gep(QRow, Off), MaybeAlign(4));
    // The scale as the weights' kernels see it: rounded through fp16.
    Value *DRounded = B.CreateFPExt(B.CreateFPTrunc(D, Half), F32);
    B.CreateAlignedStore(B.CreateVectorSplat(8, DRounded), gep(gep(QRow, K), Off), MaybeAlign(4));
    // Bias8[g] = -128 * (q[4g] + q[4g+1] + q[4g+2] + q[4g+3]): the sums of
    // 4 as a dot product with unsigned ones (one vpdpbusd, or pmaddubsw +
    // pmaddwd), not strided shuffles of the 32 lanes.
    Value *Sum;
    if (Cpu.VNNI)
      Sum = B.CreateIntrinsic(Intrinsic::x86_avx512_vpdpbusd_256, {},
                              {ConstantInt::get(vec(I32, 8), 0), ConstantInt::get(vec(I32, 8), 0x01010101),
                               B.CreateBitCast(QBytes, vec(I32, 8))});
    else
      Sum = B.CreateIntrinsic(
          Intrinsic::x86_avx2_pmadd_wd, {},
          {B.CreateIntrinsic(Intrinsic::x86_avx2_pmadd_ub_sw, {}, {ConstantInt::get(vec(I8, 32), 1), QBytes}),
           ConstantInt::get(vec(I16, 16), 1)});
    Value *Bias8 = B.CreateMul(Sum, ConstantInt::get(vec(I32, 8), -128));
    B.CreateAlignedStore(Bias8, gep(gep(QRow, 2 * K), Off), MaybeAlign(4));
    // BlockBias[b] and BlockScale[b]: the whole block's bias and its scale
    // once, for the interleaved kernels.
    Value *BlkOff = B.CreateMul(Blk, B.getInt64(4));
    B.CreateAlignedStore(B.CreateIntrinsic(Intrinsic::vector_reduce_add, {vec(I32, 8)}, {Bias8}),
                         gep(gep(QRow, q8BlockBiasOffset(K)), BlkOff), MaybeAlign(4));
    B.CreateAlignedStore(DRounded, gep(gep(QRow, q8BlockScaleOffset(K)), BlkOff), MaybeAlign(4));
  }

  int64_t K;
  bool Blocks;
  int64_t Subs; // Blocks a scale covers: 1, or 8 (256 elements).
};

absl::Status verify(const Function &F) {
  std::string Msg;
  raw_string_ostream OS(Msg);
  if (verifyFunction(F, &OS))
    return absl::InternalError(absl::StrFormat("generated IR for %s is invalid: %s",
                                               F.getName().str(), OS.str()));
  return absl::OkStatus();
}

absl::Status checkFreeName(const Module &M, const std::string &Name) {
  if (M.getNamedValue(Name))
    return absl::AlreadyExistsError(absl::StrFormat("module already defines '%s'", Name));
  return absl::OkStatus();
}

std::unique_ptr<Module> newModule(LLVMContext &Ctx, const std::string &Name) {
  auto M = std::make_unique<Module>(Name, Ctx);
  M->setTargetTriple("x86_64-pc-linux-gnu");
  return M;
}

} // namespace

absl::StatusOr<Function *> emitMatmulKernel(Module &M, const KernelSpec &Spec,
                                            const CpuFeatures &Cpu) {
  if (absl::Status S = Spec.validate(Cpu); !S.ok())
    return S;
  if (absl::Status S = checkFreeName(M, Spec.functionName()); !S.ok())
    return S;
  Function *F = MatmulEmitter(M, Spec, Cpu).emit();
  for (Function &G : M)
    if (G.getName().starts_with(Spec.functionName()))
      if (absl::Status S = verify(G); !S.ok())
        return S;
  return F;
}

absl::StatusOr<Function *> emitQuantizeKernel(Module &M, int64_t K, const CpuFeatures &Cpu, bool Blocks,
                                              int64_t ScaleBlock) {
  if (absl::Status S = validateShape({1, K, 1, WeightType::Q8_0}); !S.ok())
    return S;
  if ((ScaleBlock != 32 && ScaleBlock != 256) || K % ScaleBlock)
    return absl::InvalidArgumentError(
        absl::StrFormat("quantizer K=%d: a scale covers 32 or 256 elements, and K must be a multiple of it", K));
  if (!Cpu.supportsKernels())
    return absl::InvalidArgumentError("target lacks AVX2/FMA/F16C");
  if (absl::Status S = checkFreeName(M, quantizerName(K, Blocks, ScaleBlock)); !S.ok())
    return S;
  Function *F = QuantizeEmitter(M, K, Cpu, Blocks, ScaleBlock).emit();
  if (absl::Status S = verify(*F); !S.ok())
    return S;
  return F;
}

absl::StatusOr<std::unique_ptr<Module>> buildKernel(LLVMContext &Ctx, const KernelSpec &Spec,
                                                    const CpuFeatures &Cpu) {
  auto M = newModule(Ctx, Spec.functionName());
  absl::StatusOr<Function *> F = emitMatmulKernel(*M, Spec, Cpu);
  if (!F.ok())
    return F.status();
  return M;
}

absl::StatusOr<std::unique_ptr<Module>> buildQuantizeKernel(LLVMContext &Ctx, int64_t K,
                                                            const CpuFeatures &Cpu, bool Blocks,
                                                            int64_t ScaleBlock) {
  auto M = newModule(Ctx, quantizerName(K, Blocks, ScaleBlock));
  absl::StatusOr<Function *> F = emitQuantizeKernel(*M, K, Cpu, Blocks, ScaleBlock);
  if (!F.ok())
    return F.status();
  return M;
}

} // namespace lumen::codegen
