//===- lumen/Runtime/KernelCache.h - Compiled kernels by spec ----*- C++ -*-===//
#ifndef LUMEN_RUNTIME_KERNELCACHE_H
#define LUMEN_RUNTIME_KERNELCACHE_H

#include "lumen/Export.h"

#include "lumen/Codegen/KernelABI.h"
#include "lumen/Codegen/KernelSpec.h"
#include "lumen/Runtime/Jit.h"

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"

#include <functional>
#include <shared_mutex>
#include <memory>
#include <string>

namespace llvm {
class LLVMContext;
class Module;
} // namespace llvm

namespace lumen::runtime {

/// Thread-safe map from a kernel's full spec to its compiled entry point.
/// Each kernel is generated and compiled once, however many threads ask for
/// it at the same time; later requests return the same pointer.
class LUMEN_API KernelCache {
public:
  explicit KernelCache(Jit &J) : J(J) {}

  absl::StatusOr<codegen::MatmulFn> getMatmul(const codegen::KernelSpec &Spec);
  /// The activation quantizer for rows of K, one scale per ScaleBlock (32
  /// or 256) elements (KernelABI.h).
  absl::StatusOr<codegen::QuantizeFn> getQuantize(int64_t K, int64_t ScaleBlock = 32);
  absl::StatusOr<codegen::QuantizeBlocksFn> getQuantizeBlocks(int64_t K, int64_t ScaleBlock = 32);

  struct Stats {
    unsigned Compiled = 0;   // Generated and compiled in this process.
    unsigned DiskHits = 0;   // Loaded from the object cache.
    double Seconds = 0;      // Generate + optimise + codegen + link, summed.
  };
  Stats stats() const;
  Jit &jit() { return J; }

private:
  absl::StatusOr<void *> getOrCompile(const std::string &Symbol,
                                      const std::function<absl::StatusOr<std::unique_ptr<llvm::Module>>(
                                          llvm::LLVMContext &)> &Build);

  Jit &J;
  // A std::shared_mutex (pthread rwlock) rather than absl::Mutex: TSan sees
  // through it, while Debian's uninstrumented Abseil looks like a race.
  mutable std::shared_mutex Mu;
  absl::flat_hash_map<std::string, void *> Entries; // Guarded by Mu.
  Stats Counters;                                   // Guarded by Mu.
};

} // namespace lumen::runtime

#endif
