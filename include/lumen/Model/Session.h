//===- lumen/Model/Session.h - One conversation's state ----------*- C++ -*-===//
//
// A Session owns a KV cache and a position and runs tokens through a shared,
// read-only TransformerModel. Two implementations: the plain scalar reference
// (readable, for tests) and the JIT path (generated kernels, thread pool).
// Several sessions may use one model (and one kernel cache) from different
// threads at once.
//
//===----------------------------------------------------------------------===//
#ifndef LUMEN_MODEL_SESSION_H
#define LUMEN_MODEL_SESSION_H

#include "lumen/Export.h"

#include "lumen/Codegen/Wisdom.h"
#include "lumen/Model/TransformerModel.h"

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace lumen::runtime {
class KernelCache;
}

namespace lumen::model {

class LUMEN_API Session {
public:
  virtual ~Session() = default;

  /// Runs Tokens at positions position() .. position() + N - 1 (one batch;
  /// causal attention inside it) and advances the position. Logits gets
  /// Vocab floats for the last token, or N rows of Vocab with AllLogits.
  virtual absl::Status eval(std::span<const int32_t> Tokens, bool AllLogits,
                            std::vector<float> &Logits) = 0;

  /// Gets ready to run a prompt of PromptTokens and then decode (the JIT
  /// session compiles its kernels here), so timings can leave it out.
  virtual absl::Status prepare(int64_t PromptTokens) { return absl::OkStatus(); }

  /// Seconds spent per op class since the session began, when created with
  /// SessionOptions::Profile (empty otherwise).
  virtual std::vector<std::pair<std::string, double>> profile() const { return {}; }

  /// eval runs longer inputs in batches of at most this many tokens (each
  /// batch a forward pass that reads every weight once).
  virtual int64_t batchSize() const { return Ctx; }

  int64_t position() const { return Pos; }
  int64_t contextSize() const { return Ctx; }
  const TransformerModel &model() const { return M; }
  /// Forgets positions P and later (0 <= P <= position()).
  absl::Status rewind(int64_t P);

protected:
  Session(const TransformerModel &M, int64_t Ctx) : M(M), Ctx(Ctx) {}
  /// Ids in range and room left in the context.
  absl::Status checkTokens(std::span<const int32_t> Tokens) const;

  const TransformerModel &M;
  int64_t Ctx;
  int64_t Pos = 0;
};

struct LUMEN_API SessionOptions {
  int64_t ContextSize = 4096; // Clamped to the model's context length.
  unsigned Threads = 0;       // 0: all cores.
  int64_t PrefillBatch = 64;  // Prompt tokens per GEMM batch.
  bool Profile = false;       // Time each op class (see Session::profile).
  bool HugePages = true;      // JIT session: the KV cache in 2 MB pages (madvise; the kernel may decline).
  /// JIT session: kernel choices measured on this host (runtime::tuneTargets),
  /// used where they have an entry for a kernel at this thread count;
  /// null: the kernel table's.
  std::shared_ptr<const codegen::Wisdom> Wisdom;
};

/// The plain scalar forward pass (f32 activations and KV cache, exact dot products).
LUMEN_API absl::StatusOr<std::unique_ptr<Session>> createReferenceSession(const TransformerModel &M,
                                                                SessionOptions Options = {});
/// The JIT forward pass through Cache's kernels.
LUMEN_API absl::StatusOr<std::unique_ptr<Session>> createJitSession(const TransformerModel &M,
                                                          runtime::KernelCache &Cache,
                                                          SessionOptions Options = {});

} // namespace lumen::model

#endif
