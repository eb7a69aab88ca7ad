//===- KernelCache.cpp - Compiled kernels by spec --------------------------===//
#include "lumen/Runtime/KernelCache.h"

#include "lumen/Codegen/KernelBuilder.h"

#include "llvm/IR/LLVMContext.h"
#include "llvm/IR/Module.h"

#include <chrono>

namespace lumen::runtime {

absl::StatusOr<void *> KernelCache::getOrCompile(
    const std::string &Symbol,
    const std::function<absl::StatusOr<std::unique_ptr<llvm::Module>>(llvm::LLVMContext &)> &Build) {
  {
    std::shared_lock Lock(Mu);
    auto It = Entries.find(Symbol);
    if (It != Entries.end())
      return It->second;
  }
  // Compile under the writer lock: a second thread asking for the same spec
  // waits here and then finds the entry.
  std::unique_lock Lock(Mu);
  if (auto It = Entries.find(Symbol); It != Entries.end())
    return It->second;
  auto Start = std::chrono::steady_clock::now();
  llvm::LLVMContext Ctx;
  absl::StatusOr<std::unique_ptr<llvm::Module>> M = Build(Ctx);
  if (!M.ok())
    return M.status();
  CompileReport Report;
  absl::StatusOr<void *> Addr = J.compile(std::move(*M), Symbol, &Report);
  if (!Addr.ok())
    return Addr.status();
  Entries.emplace(Symbol, *Addr);
  ++(Report.FromDiskCache ? Counters.DiskHits : Counters.Compiled);
  Counters.Seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - Start).count();
  return *Addr;
}

namespace {
/// A compiled entry point as the kernel's function type.
template <typename Fn> absl::StatusOr<Fn> entryAs(absl::StatusOr<void *> P) {
  if (!P.ok())
    return P.status();
  return reinterpret_cast<Fn>(*P);
}
} // namespace

absl::StatusOr<codegen::MatmulFn> KernelCache::getMatmul(const codegen::KernelSpec &Spec) {
  if (absl::Status S = Spec.validate(J.cpu()); !S.ok())
    return S;
  return entryAs<codegen::MatmulFn>(getOrCompile(
      Spec.functionName(), [&](llvm::LLVMContext &Ctx) { return codegen::buildKernel(Ctx, Spec, J.cpu()); }));
}

absl::StatusOr<codegen::QuantizeFn> KernelCache::getQuantize(int64_t K, int64_t ScaleBlock) {
  return entryAs<codegen::QuantizeFn>(
      getOrCompile(codegen::quantizeFunctionName(K, ScaleBlock), [&](llvm::LLVMContext &Ctx) {
        return codegen::buildQuantizeKernel(Ctx, K, J.cpu(), /*Blocks=*/false, ScaleBlock);
      }));
}

absl::StatusOr<codegen::QuantizeBlocksFn> KernelCache::getQuantizeBlocks(int64_t K, int64_t ScaleBlock) {
  return entryAs<codegen::QuantizeBlocksFn>(
      getOrCompile(codegen::quantizeBlocksFunctionName(K, ScaleBlock), [&](llvm::LLVMContext &Ctx) {
        return codegen::buildQuantizeKernel(Ctx, K, J.cpu(), /*Blocks=*/true, ScaleBlock);
      }));
}

KernelCache::Stats KernelCache::stats() const {
  std::shared_lock Lock(Mu);
  return Counters;
}

} // namespace lumen::runtime
