//===- lumen/Model/Perplexity.h - Perplexity over a text --------*- C++ -*-===//
//
// Perplexity as llama.cpp's llama-perplexity computes it, so the numbers
// compare: the tokens are cut into non-overlapping chunks of ChunkTokens;
// each chunk is evaluated from an empty cache (its first token replaced by
// BOS where the model adds one), and the second half of each chunk is
// scored: the negative log-likelihood of every next token from position
// ChunkTokens / 2 on. PPL = exp(mean NLL); its +/- is PPL times the
// standard error of the mean NLL.
//
//===----------------------------------------------------------------------===//
#ifndef LUMEN_MODEL_PERPLEXITY_H
#define LUMEN_MODEL_PERPLEXITY_H

#include "lumen/Export.h"

#include "lumen/Model/Session.h"

#include "absl/status/statusor.h"

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>

namespace lumen::model {

struct LUMEN_API PerplexityOptions {
  int64_t ChunkTokens = 512; // llama-perplexity's -c.
  int64_t Chunks = 0;        // At most this many chunks (0: every whole chunk).
  /// Put in place of each chunk's first token (llama.cpp does so where the
  /// vocabulary adds BOS); nullopt keeps the text's token.
  std::optional<int32_t> ChunkStart;
  /// Set (from another thread or a signal handler) to stop after the chunk
  /// in progress; the result then covers the chunks done.
  const std::atomic<bool> *Cancel = nullptr;
};

/// The estimate after some chunks.
struct LUMEN_API PerplexityEstimate {
  int64_t Chunks = 0, ChunksTotal = 0;
  int64_t Scored = 0; // Tokens scored so far.
  double Ppl = 0, Error = 0;
  double Seconds = 0; // Since the start.
};

/// Perplexity of Tokens (already tokenized as llama.cpp does: with BOS if
/// the model adds one, special tokens as text) on S, whose context must
/// hold ChunkTokens. Needs at least two chunks' worth of tokens, as
/// llama-perplexity does. OnChunk, if given, sees the estimate after each.
LUMEN_API absl::StatusOr<PerplexityEstimate>
perplexity(Session &S, std::span<const int32_t> Tokens, const PerplexityOptions &Options,
           const std::function<void(const PerplexityEstimate &)> &OnChunk = nullptr);

} // namespace lumen::model

#endif
