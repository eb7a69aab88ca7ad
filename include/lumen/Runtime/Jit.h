//===- lumen/Runtime/Jit.h - ORC LLJIT for generated kernels -----*- C++ -*-===//
//
// Jit owns an ORC LLJIT for the host and a TargetMachine of its own: modules
// are optimised with the new pass manager at O3 and compiled to an object by
// that TargetMachine, then linked by LLJIT. Compiling ourselves lets the
// on-disk object cache be consulted *before* optimisation, so a warm start
// does no optimisation or codegen at all (see docs/llvm19-notes in shared/).
// Cache entries carry their size and checksum; a bad one is dropped,
// recompiled and rewritten, with a warning naming it.
//
//===----------------------------------------------------------------------===//
#ifndef LUMEN_RUNTIME_JIT_H
#define LUMEN_RUNTIME_JIT_H

#include "lumen/Export.h"

#include "lumen/Codegen/CpuFeatures.h"

#include "absl/status/statusor.h"

#include <functional>
#include <memory>
#include <mutex>
#include <string>

namespace llvm {
class Module;
class TargetMachine;
namespace orc {
class LLJIT;
}
} // namespace llvm

namespace lumen::runtime {

struct LUMEN_API JitOptions {
  /// Kernels are compiled for this CPU; it must be able to run on the host.
  codegen::CpuFeatures Cpu = codegen::CpuFeatures::host();
  /// Directory for the persistent object cache; empty disables it.
  std::string ObjectCacheDir;
  /// Receives warnings (a corrupt cache entry dropped and recompiled);
  /// unset, they go to stderr.
  std::function<void(const std::string &)> Warn;
};

/// What one compile did, for reporting.
struct LUMEN_API CompileReport {
  bool FromDiskCache = false;
  double OptimizeSeconds = 0;
  double CodegenSeconds = 0;
  double LinkSeconds = 0;
};

class LUMEN_API Jit {
public:
  static absl::StatusOr<std::unique_ptr<Jit>> create(JitOptions Options = {});
  ~Jit();

  /// Optimises (O3) and compiles M, links it, and returns the address of
  /// Symbol. M's functions must not clash with symbols added before.
  absl::StatusOr<void *> compile(std::unique_ptr<llvm::Module> M, const std::string &Symbol,
                                 CompileReport *Report = nullptr);

  const codegen::CpuFeatures &cpu() const { return Options.Cpu; }
  /// Non-empty if the object cache directory could not be used (the JIT then
  /// compiles everything and says so once).
  const std::string &cacheWarning() const { return CacheWarning; }

private:
  explicit Jit(JitOptions Options);
  void warn(const std::string &Message) const;

  JitOptions Options;
  std::string CacheWarning;
  std::mutex Mu; // Guards TM and LLJ: codegen and LLJIT additions are not reentrant.
  std::unique_ptr<llvm::TargetMachine> TM;
  std::unique_ptr<llvm::orc::LLJIT> LLJ;
};

/// Runs the O3 pipeline on M for Cpu (what the JIT does before codegen);
/// used to show optimised IR.
LUMEN_API absl::Status optimizeModule(llvm::Module &M, const codegen::CpuFeatures &Cpu);

/// The host's default kernel object cache directory:
/// $LUMEN_CACHE_DIR, else $XDG_CACHE_HOME/lumen/kernels, else ~/.cache/lumen/kernels.
LUMEN_API std::string defaultObjectCacheDir();

} // namespace lumen::runtime

#endif
