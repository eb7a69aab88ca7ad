//===- lumen/Model/Generate.h - Streaming generation --------------*- C++ -*-===//
//
// The generation loop every front end shares: prefill a prompt, then sample
// token after token, handing each to a callback as it is made (text pieces
// never split a UTF-8 character). The callback can stop generation, and a
// cancellation flag can be set from another thread.
//
//===----------------------------------------------------------------------===//
#ifndef LUMEN_MODEL_GENERATE_H
#define LUMEN_MODEL_GENERATE_H

#include "lumen/Export.h"

#include "lumen/Model/Sampler.h"
#include "lumen/Model/Session.h"

#include "absl/status/statusor.h"

#include <atomic>
#include <cstdint>
#include <functional>
#include <span>
#include <string_view>

namespace lumen::model {

struct LUMEN_API GenerateOptions {
  int64_t MaxTokens = 128;                // Negative: until end of turn or a full context.
  bool StopAtEndOfTurn = true;            // Stop at the tokenizer's stop ids.
  const std::atomic<bool> *Cancel = nullptr; // Checked before every token.
};

/// Called for each generated token with its text (possibly empty while a
/// character is incomplete, or for control tokens). Return false to stop.
using TokenCallback = std::function<bool(int32_t Token, std::string_view Text)>;

enum class StopReason { MaxTokens, EndOfTurn, Callback, Cancelled, ContextFull };

struct LUMEN_API GenerateResult {
  StopReason Reason = StopReason::MaxTokens;
  int64_t PromptTokens = 0, GeneratedTokens = 0;
  double PromptSeconds = 0, GenerateSeconds = 0;
  int32_t StopToken = -1; // The stop id that ended the turn (not fed to the session).
  /// The last generated token when generation stopped before feeding it to
  /// the session (MaxTokens, Callback, ContextFull), else -1. A caller that
  /// goes on in the same session (a chat) evaluates it first, so that the
  /// session holds exactly the text that was shown.
  int32_t PendingToken = -1;
};

/// Prefills Prompt into S at its current position, then generates. A
/// cancellation during the prompt leaves the session where it was
/// (Reason Cancelled, PromptTokens 0).
LUMEN_API absl::StatusOr<GenerateResult> generate(Session &S, Sampler &Smp, std::span<const int32_t> Prompt,
                                        const GenerateOptions &Options, const TokenCallback &OnToken);

} // namespace lumen::model

#endif
