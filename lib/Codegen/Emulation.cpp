//===- Emulation.cpp - Run AVX-512 kernels on AVX2 -------------------------===//
#include "lumen/Codegen/Emulation.h"

#include "llvm/IR/IRBuilder.h"
#include "llvm/IR/InstIterator.h"
#include "llvm/IR/IntrinsicInst.h"
#include "llvm/IR/IntrinsicsX86.h"
#include "llvm/IR/Module.h"
#include "llvm/IR/Verifier.h"

#include <vector>

using namespace llvm;

namespace lumen::codegen {

namespace {
bool isVpdpbusd(Intrinsic::ID Id) {
  return Id == Intrinsic::x86_avx512_vpdpbusd_128 || Id == Intrinsic::x86_avx512_vpdpbusd_256 ||
         Id == Intrinsic::x86_avx512_vpdpbusd_512;
}

/// acc + sum_{k<4} zext(a[4j+k]) * sext(b[4j+k]) for every i32 lane j.
Value *genericDot(IRBuilder<> &B, Value *Acc, Value *A, Value *Bv) {
  auto *AccTy = cast<FixedVectorType>(Acc->getType());
  unsigned Lanes = AccTy->getNumElements();
  auto *Bytes = FixedVectorType::get(B.getInt8Ty(), 4 * Lanes);
  auto *Wide = FixedVectorType::get(B.getInt32Ty(), 4 * Lanes);
  Value *Prod = B.CreateMul(B.CreateZExt(B.CreateBitCast(A, Bytes), Wide),
                            B.CreateSExt(B.CreateBitCast(Bv, Bytes), Wide));
  Value *Sum = Acc;
  for (unsigned K = 0; K < 4; ++K) {
    SmallVector<int, 16> Mask;
    for (unsigned J = 0; J < Lanes; ++J)
      Mask.push_back(4 * J + K);
    Sum = B.CreateAdd(Sum, B.CreateShuffleVector(Prod, Mask));
  }
  return Sum;
}
} // namespace

absl::Status emulateVnni(Module &M, const CpuFeatures &Host, unsigned *Rewritten) {
  std::vector<CallInst *> Calls;
  for (Function &F : M)
    for (Instruction &I : instructions(&F))
      if (auto *II = dyn_cast<IntrinsicInst>(&I); II && isVpdpbusd(II->getIntrinsicID()))
        Calls.push_back(II);
  for (CallInst *C : Calls) {
    IRBuilder<> B(C);
    Value *V = genericDot(B, C->getArgOperand(0), C->getArgOperand(1), C->getArgOperand(2));
    C->replaceAllUsesWith(V);
    C->eraseFromParent();
  }
  for (Function &F : M) {
    if (F.isDeclaration())
      continue;
    F.addFnAttr("target-cpu", Host.CpuName);
    F.addFnAttr("target-features", Host.featureString());
  }
  if (Rewritten)
    *Rewritten = static_cast<unsigned>(Calls.size());
  if (verifyModule(M, &errs()))
    return absl::InternalError("VNNI emulation produced invalid IR");
  return absl::OkStatus();
}

} // namespace lumen::codegen
