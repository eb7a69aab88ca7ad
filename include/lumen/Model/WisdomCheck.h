//===- lumen/Model/WisdomCheck.h - Tuned kernels inside the model -*- C++ -*-===//
//
// The tuner times each kernel on its own (runtime/Tuner.h). Inside a forward
// pass the kernels run back to back, their weight streams one after the
// other, and a choice that won alone can lose there (measured: 1.07-1.11x
// Q4_K decode kernels that made a 1.5B model's tokens a few per cent slower
// on one thread). So the tuned choices are confirmed where they count: the
// model's decode steps and a prompt batch, with the tuned kernels against
// the table's, in the same paired rounds and by the same noise rule as the
// kernels; a token class that does not win keeps the table's choices.
//
//===----------------------------------------------------------------------===//
#ifndef LUMEN_MODEL_WISDOMCHECK_H
#define LUMEN_MODEL_WISDOMCHECK_H

#include "lumen/Export.h"

#include "lumen/Codegen/Wisdom.h"
#include "lumen/Model/TransformerModel.h"
#include "lumen/Runtime/KernelCache.h"

#include "absl/status/statusor.h"

#include <vector>

namespace lumen::model {

struct LUMEN_API WisdomCheckOptions {
  unsigned Rounds = 5;        // Paired rounds (at least 3).
  int64_t DecodeTokens = 16;  // Decode steps timed a round.
  int64_t PromptTokens = 64;  // The prompt batch timed a round (the session's prefill batch).
  bool HugePages = true;      // The sessions' KV caches.
};

/// What confirming one thread count and token class found.
struct LUMEN_API WisdomCheck {
  unsigned Threads = 0;
  codegen::TokenClass Tokens = codegen::TokenClass::Decode;
  bool Compared = false;  // False: every tuned choice was the table's (nothing to confirm).
  bool Kept = false;      // The tuned choices won beyond the noise and stay.
  /// Decode: won, but its numerics, which the prompt's kernels share for
  /// batch invariance, made the prompt slower beyond the noise: not kept.
  bool SlowedPrompt = false;
  double TableSeconds = 0, TunedSeconds = 0; // Medians: a decode step, or the prompt batch.
  double Gain = 1, Noise = 0;
};

/// Runs M (loaded with Tuned's layouts) with Tuned's kernels and with the
/// table's at each thread count, decode steps and a prompt batch; where the
/// tuned kernels do not win beyond the noise, Tuned's entries for that
/// thread count and token class are replaced by the table's choices (gain 1),
/// and where the prompt got slower beyond the noise through the decode
/// kernels' numerics, the decode entries too.
LUMEN_API absl::StatusOr<std::vector<WisdomCheck>> confirmWisdom(const TransformerModel &M, runtime::KernelCache &Cache,
                                                                 codegen::Wisdom &Tuned,
                                                                 const std::vector<unsigned> &Threads,
                                                                 const WisdomCheckOptions &Options = {});

} // namespace lumen::model

#endif
