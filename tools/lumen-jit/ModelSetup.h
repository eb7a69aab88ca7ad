//===- ModelSetup.h - Shared setup of the model commands -------*- C++ -*-===//
#ifndef LUMEN_TOOLS_MODELSETUP_H
#define LUMEN_TOOLS_MODELSETUP_H

#include "lumen/Model/TransformerModel.h"
#include "lumen/Model/Session.h"
#include "lumen/Runtime/Jit.h"
#include "lumen/Runtime/KernelCache.h"

#include "absl/status/statusor.h"

#include <cstdio>
#include <memory>
#include <vector>
#include <optional>
#include <string>

namespace lumen::tool {

/// --isa as CPU features: the host's for "host", else the named level.
absl::StatusOr<codegen::CpuFeatures> isaFlag();
/// The CPU the model commands compile kernels for and store weights for:
/// --isa, which this host must be able to run.
absl::StatusOr<codegen::CpuFeatures> targetCpu();

/// The file -m / --model names (they may not name two different files).
absl::StatusOr<std::string> modelPath();
/// The model named by -m / --model (weights laid out for targetCpu()),
/// with its load time.
absl::StatusOr<std::unique_ptr<model::TransformerModel>> loadModel(double *Seconds = nullptr);

/// A JIT for targetCpu() and kernel cache, with the object cache the flags ask for
/// (an unusable cache directory gives a warning on stderr, not an error).
struct Engine {
  std::unique_ptr<runtime::Jit> Jit;
  std::unique_ptr<runtime::KernelCache> Cache;
};
absl::StatusOr<Engine> createEngine();

/// The session options the flags set (--batch, --huge_pages); the caller
/// adds the context size and thread count.
absl::StatusOr<model::SessionOptions> sessionOptions();
/// -t as one thread count (0 = all cores).
absl::StatusOr<unsigned> threadCount();
/// -t as a list of thread counts ("1,2"); all cores when not given.
absl::StatusOr<std::vector<unsigned>> threadList();

/// Where the wisdom of --kernel-cache (or the default cache directory) lives.
std::string wisdomFile();
/// The wisdom the model commands use for targetCpu(): none with
/// --no-wisdom; a file that cannot be read or parsed is reported on stderr
/// and ignored. Loaded once per process (again after tuneModel()).
std::shared_ptr<const codegen::Wisdom> wisdom();
/// Forgets wisdom()'s copy (the file was rewritten).
void resetWisdom();
/// Tunes the kernels of the model -m names for each of Threads within
/// --budget (progress on stderr), merges the results into the wisdom file
/// and prints the summary table to Summary.
absl::Status tuneModel(const std::vector<unsigned> &Threads, std::FILE *Summary);
/// -p, or the contents of -f (a file, pipe or terminal; not a directory);
/// not both.
absl::StatusOr<std::string> promptText();
/// --seed if given (a non-negative integer).
absl::StatusOr<std::optional<uint64_t>> seedFlag();
/// -c for M: the flag's token count, or the model's trained context for 0
/// (and for the default where the model's is shorter).
absl::StatusOr<int64_t> contextSize(const model::TransformerModel &M);
/// Parses a positive integer flag value, with the flag's name in errors.
absl::StatusOr<int64_t> parseCount(const std::string &Flag, const std::string &Value, int64_t Default);

} // namespace lumen::tool

#endif
