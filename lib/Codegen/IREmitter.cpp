//===- IREmitter.cpp - Shared helpers of the IR emitters -------------------===//
#include "IREmitter.h"

using namespace llvm;

namespace lumen::codegen {

Function *IREmitter::createFunction(StringRef Name, ArrayRef<Type *> Params, bool External,
                                    unsigned VectorBits) {
  FunctionType *FT = FunctionType::get(B.getVoidTy(), Params, false);
  Function *F =
      Function::Create(FT, External ? GlobalValue::ExternalLinkage : GlobalValue::InternalLinkage, Name, M);
  F->setDoesNotThrow();
  F->addFnAttr("target-cpu", Cpu.CpuName);
  F->addFnAttr("target-features", Cpu.featureString());
  // Both attributes are needed for the X86 backend to use (or avoid) zmm.
  std::string Width = std::to_string(VectorBits);
  F->addFnAttr("prefer-vector-width", Width);
  F->addFnAttr("min-legal-vector-width", Width);
  return F;
}

Value *IREmitter::slice(Value *V, unsigned First, unsigned N) {
  SmallVector<int, 64> Mask;
  for (unsigned I = 0; I < N; ++I)
    Mask.push_back(First + I);
  return B.CreateShuffleVector(V, Mask);
}

Value *IREmitter::concat(Value *A, Value *V) {
  unsigned N = cast<FixedVectorType>(A->getType())->getNumElements();
  SmallVector<int, 64> Mask;
  for (unsigned I = 0; I < 2 * N; ++I)
    Mask.push_back(I);
  return B.CreateShuffleVector(A, V, Mask);
}

Value *IREmitter::splatHalf(Value *Bits, unsigned N) {
  return B.CreateFPExt(B.CreateBitCast(B.CreateVectorSplat(N, Bits), vec(Half, N)), vec(F32, N));
}

Value *IREmitter::halfAt(Value *P) { return B.CreateFPExt(B.CreateBitCast(load(I16, P, 1), Half), F32); }

Value *IREmitter::nibbles(Value *Bytes16) {
  VectorType *V16 = vec(I8, 16);
  Value *Low = B.CreateAnd(Bytes16, ConstantInt::get(V16, 0xF));
  Value *High = B.CreateLShr(Bytes16, ConstantInt::get(V16, 4));
  return concat(Low, High);
}

Value *IREmitter::bits(Value *V, unsigned Shift, uint8_t Mask) {
  Type *T = V->getType();
  if (Shift)
    V = B.CreateLShr(V, ConstantInt::get(T, Shift));
  return B.CreateAnd(V, ConstantInt::get(T, Mask));
}

Value *IREmitter::selectBit(Value *V, unsigned Bit, uint8_t Value) {
  Type *T = V->getType();
  llvm::Value *Set = B.CreateICmpNE(B.CreateAnd(V, ConstantInt::get(T, 1u << Bit)), ConstantInt::get(T, 0));
  return B.CreateSelect(Set, ConstantInt::get(T, Value), ConstantInt::get(T, 0));
}

} // namespace lumen::codegen
