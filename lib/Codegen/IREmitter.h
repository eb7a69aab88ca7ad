//===- IREmitter.h - Shared helpers of the IR emitters ----------*- C++ -*-===//
//
// An IRBuilder with the types and small idioms every emitter uses: the
// kernel skeletons of KernelBuilder.cpp and the block decoders of Blocks/.
// Internal to lib/Codegen.
//
//===----------------------------------------------------------------------===//
#ifndef LUMEN_LIB_CODEGEN_IREMITTER_H
#define LUMEN_LIB_CODEGEN_IREMITTER_H

#include "lumen/Codegen/CpuFeatures.h"

#include "llvm/IR/IRBuilder.h"
#include "llvm/IR/Module.h"

namespace lumen::codegen {

class IREmitter {
public:
  IREmitter(llvm::Module &M, const CpuFeatures &Cpu)
      : M(M), Ctx(M.getContext()), Cpu(Cpu), B(Ctx), I8(B.getInt8Ty()), I16(B.getInt16Ty()),
        I32(B.getInt32Ty()), I64(B.getInt64Ty()), F32(B.getFloatTy()), Half(B.getHalfTy()),
        Ptr(B.getPtrTy()) {}

  /// A void function with the target attributes of Cpu at VectorBits.
  llvm::Function *createFunction(llvm::StringRef Name, llvm::ArrayRef<llvm::Type *> Params,
                                 bool External, unsigned VectorBits);

  llvm::VectorType *vec(llvm::Type *Elt, unsigned N) { return llvm::FixedVectorType::get(Elt, N); }
  llvm::Value *gep(llvm::Value *Base, llvm::Value *Offset) { return B.CreateGEP(I8, Base, Offset); }
  llvm::Value *gep(llvm::Value *Base, int64_t Offset) { return gep(Base, B.getInt64(Offset)); }
  llvm::Value *load(llvm::Type *T, llvm::Value *P, unsigned Align) {
    return B.CreateAlignedLoad(T, P, llvm::MaybeAlign(Align));
  }
  /// Lanes [First, First + N) of V.
  llvm::Value *slice(llvm::Value *V, unsigned First, unsigned N);
  /// The lanes of A followed by the lanes of V (same type).
  llvm::Value *concat(llvm::Value *A, llvm::Value *V);
  /// An fp16 scale (as i16) broadcast to N floats: splatting the half
  /// before converting gives vpbroadcastw + vcvtph2ps, two instructions.
  llvm::Value *splatHalf(llvm::Value *Bits, unsigned N);
  /// The fp16 at P as a float.
  llvm::Value *halfAt(llvm::Value *P);
  /// 16 bytes -> 32: their low nibbles, then their high nibbles.
  llvm::Value *nibbles(llvm::Value *Bytes16);
  /// Byte lanes of V shifted right by Shift and masked with Mask.
  llvm::Value *bits(llvm::Value *V, unsigned Shift, uint8_t Mask);
  /// Value where bit Bit of the same lane of V is set, else 0 (per byte).
  llvm::Value *selectBit(llvm::Value *V, unsigned Bit, uint8_t Value);
  llvm::Value *fma(llvm::Value *A, llvm::Value *X, llvm::Value *Acc) {
    return B.CreateIntrinsic(llvm::Intrinsic::fma, {A->getType()}, {A, X, Acc});
  }

  /// for (IV = Start; IV + Step <= End; IV += Step) Body(IV); with runtime
  /// bounds. Returns the induction variable: after the loop, its exit value.
  template <typename BodyFn>
  llvm::PHINode *countedLoop(llvm::Value *Start, llvm::Value *End, int64_t Step, llvm::StringRef Name,
                             BodyFn Body) {
    llvm::Function *F = B.GetInsertBlock()->getParent();
    llvm::BasicBlock *Pre = B.GetInsertBlock();
    llvm::BasicBlock *Head = llvm::BasicBlock::Create(Ctx, Name + ".head", F);
    llvm::BasicBlock *BodyBB = llvm::BasicBlock::Create(Ctx, Name + ".body", F);
    llvm::BasicBlock *Exit = llvm::BasicBlock::Create(Ctx, Name + ".exit", F);
    B.CreateBr(Head);
    B.SetInsertPoint(Head);
    llvm::PHINode *IV = B.CreatePHI(I64, 2, Name + ".iv");
    IV->addIncoming(Start, Pre);
    // The tile [IV, IV + Step) must fit: IV + Step <= End.
    B.CreateCondBr(B.CreateICmpSLE(B.CreateAdd(IV, B.getInt64(Step)), End), BodyBB, Exit);
    B.SetInsertPoint(BodyBB);
    Body(IV);
    llvm::Value *Next = B.CreateAdd(IV, B.getInt64(Step), Name + ".next");
    IV->addIncoming(Next, B.GetInsertBlock());
    B.CreateBr(Head);
    B.SetInsertPoint(Exit);
    return IV;
  }

  llvm::Module &M;
  llvm::LLVMContext &Ctx;
  const CpuFeatures &Cpu;
  llvm::IRBuilder<> B;
  llvm::Type *I8, *I16, *I32, *I64, *F32, *Half, *Ptr;
};

} // namespace lumen::codegen

#endif
