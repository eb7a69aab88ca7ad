//===- lumen/Model/BatchedSession.h - Several sequences, one pass -*- C++ -*-===//
//
// A BatchedSession holds several sequences (each its own KV cache and
// position) over one read-only model, kernel cache and thread pool, and
// runs tokens of any of them through one forward pass: the tokens share
// every weight read, each attends to its own sequence. This is what a
// server's continuous batching steps on: every active stream's next token
// and a chunk of a new prompt, together.
//
// Batch invariance: a token's logits are bit-identical whatever else is in
// the step, whichever sequence holds it, and however its prompt was cut
// into steps; they equal a Session's (createJitSession) on the same tokens
// with the same options. Every per-token operation (embedding, norms,
// activation quantization, RoPE, attention) is computed token by token, and
// the matmul kernels of every batch size take the one-token kernel's
// numerics (codegen::chooseSpec).
//
//===----------------------------------------------------------------------===//
#ifndef LUMEN_MODEL_BATCHEDSESSION_H
#define LUMEN_MODEL_BATCHEDSESSION_H

#include "lumen/Export.h"

#include "lumen/Model/Session.h"

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace lumen::model {

/// One sequence's tokens in a step.
struct LUMEN_API SequenceInput {
  int32_t Sequence = 0;
  std::span<const int32_t> Tokens;
  bool Logits = true; // The last token's logits are wanted.
};

class LUMEN_API BatchedSession {
public:
  virtual ~BatchedSession() = default;

  /// An input whose logits came out not finite (corrupt tensor data, an
  /// activation past fp16's range), with the error that says so.
  struct NonFinite {
    size_t Input;
    absl::Status Error;
  };

  /// Runs every input's tokens at its sequence's position in one forward
  /// pass and advances those sequences. At most batchSize() tokens in all,
  /// each sequence at most once. Logits gets Vocab floats per input that
  /// wants them, in the inputs' order. Sequences do not share arithmetic, so
  /// one whose logits are not finite need not fail the others: with Failed,
  /// such inputs are listed there and the step returns OK (the other inputs'
  /// logits are valid); without it, the step returns the first one's error.
  virtual absl::Status step(std::span<const SequenceInput> Inputs, std::vector<float> &Logits,
                            std::vector<NonFinite> *Failed) = 0;
  absl::Status step(std::span<const SequenceInput> Inputs, std::vector<float> &Logits) {
    return step(Inputs, Logits, nullptr);
  }
  /// Compiles the kernels of every batch size a step can take (1 ..
  /// batchSize()), so that no step waits for the JIT.
  virtual absl::Status prepare() = 0;

  virtual int64_t position(int32_t Sequence) const = 0;
  /// Forgets Sequence's positions P and later (0 <= P <= position).
  virtual absl::Status rewind(int32_t Sequence, int64_t P) = 0;

  virtual int32_t sequences() const = 0;
  /// Positions each sequence holds.
  virtual int64_t contextSize() const = 0;
  /// Tokens a step takes at most.
  virtual int64_t batchSize() const = 0;
  /// Bytes of KV cache a sequence takes when full (fp16 keys and values).
  virtual int64_t sequenceBytes() const = 0;
  virtual const TransformerModel &model() const = 0;
  /// Seconds per op class over every step so far, with
  /// SessionOptions::Profile (empty otherwise), as Session::profile.
  virtual std::vector<std::pair<std::string, double>> profile() const { return {}; }
};

/// Sequences sequences of Options.ContextSize positions each through Cache's
/// kernels; a step takes up to Options.PrefillBatch tokens.
LUMEN_API absl::StatusOr<std::unique_ptr<BatchedSession>>
createJitBatchedSession(const TransformerModel &M, runtime::KernelCache &Cache, SessionOptions Options,
                        int32_t Sequences);

} // namespace lumen::model

#endif
