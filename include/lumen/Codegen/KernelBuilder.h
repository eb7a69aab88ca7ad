//===- lumen/Codegen/KernelBuilder.h - LLVM IR for the kernels --*- C++ -*-===//
//
// Emits the LLVM IR of a matmul kernel (KernelSpec) or of the activation
// quantizer, with the C ABI of KernelABI.h. The emit* functions write into a
// module the caller owns (so another tool can inline the kernel, run its own
// passes or JIT it itself); build* make a fresh verified module.
//
//===----------------------------------------------------------------------===//
#ifndef LUMEN_CODEGEN_KERNELBUILDER_H
#define LUMEN_CODEGEN_KERNELBUILDER_H

#include "lumen/Export.h"

#include "lumen/Codegen/CpuFeatures.h"
#include "lumen/Codegen/KernelSpec.h"

#include "absl/status/statusor.h"

#include <memory>

namespace llvm {
class Function;
class LLVMContext;
class Module;
} // namespace llvm

namespace lumen::codegen {

/// Adds the function Spec.functionName() to M (replacing nothing: it is an
/// error if M already has that symbol). Its attributes target Cpu.
LUMEN_API absl::StatusOr<llvm::Function *> emitMatmulKernel(llvm::Module &M, const KernelSpec &Spec,
                                                  const CpuFeatures &Cpu);
/// Adds quantizeFunctionName(K, ScaleBlock) to M, or with Blocks its
/// block-range form quantizeBlocksFunctionName(K, ScaleBlock) (KernelABI.h).
/// ScaleBlock is 32 (Q8_0) or 256 (a scale per super-block).
LUMEN_API absl::StatusOr<llvm::Function *> emitQuantizeKernel(llvm::Module &M, int64_t K,
                                                    const CpuFeatures &Cpu, bool Blocks = false,
                                                    int64_t ScaleBlock = 32);

/// A new module named after the kernel, holding it alone; passes verifyModule.
LUMEN_API absl::StatusOr<std::unique_ptr<llvm::Module>>
buildKernel(llvm::LLVMContext &Ctx, const KernelSpec &Spec, const CpuFeatures &Cpu);
LUMEN_API absl::StatusOr<std::unique_ptr<llvm::Module>>
buildQuantizeKernel(llvm::LLVMContext &Ctx, int64_t K, const CpuFeatures &Cpu, bool Blocks = false,
                    int64_t ScaleBlock = 32);

} // namespace lumen::codegen

#endif
