//===- Generate.cpp - Streaming generation ---------------------------------===//
#include "lumen/Model/Generate.h"

#include <algorithm>
#include <chrono>

namespace lumen::model {

namespace {
double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}
} // namespace

absl::StatusOr<GenerateResult> generate(Session &S, Sampler &Smp, std::span<const int32_t> Prompt,
                                        const GenerateOptions &O, const TokenCallback &OnToken) {
  const Tokenizer &Tok = S.model().tokenizer();
  GenerateResult R;
  std::vector<float> Logits;
  double Start = now();
  // The prompt in chunks of at least 256 tokens (each chunk's last logits
  // cost one lm_head pass, under 1 % of such a chunk), so that a
  // cancellation need not wait for a long prompt; a cancelled prompt is
  // taken back out of the session.
  const int64_t Begin = S.position();
  for (size_t Done = 0; Done < Prompt.size();) {
    if (O.Cancel && O.Cancel->load(std::memory_order_relaxed)) {
      if (absl::Status St = S.rewind(Begin); !St.ok())
        return St;
      R.Reason = StopReason::Cancelled;
      R.PromptSeconds = now() - Start;
      return R;
    }
    const size_t Count = std::min<size_t>(Prompt.size() - Done, std::max<int64_t>(S.batchSize(), 256));
    if (absl::Status St = S.eval(Prompt.subspan(Done, Count), false, Logits); !St.ok())
      return St;
    Done += Count;
  }
  R.PromptTokens = Prompt.size();
  R.PromptSeconds = now() - Start;
  for (int32_t Id : Prompt)
    Smp.accept(Id);

  StreamDecoder Text(Tok);
  Start = now();
  for (;;) {
    if (R.GeneratedTokens == O.MaxTokens) {
      R.Reason = StopReason::MaxTokens;
      break;
    }
    if (O.Cancel && O.Cancel->load(std::memory_order_relaxed)) {
      R.Reason = StopReason::Cancelled;
      break;
    }
    int32_t Id = Smp.sample(Logits);
    Smp.accept(Id);
    if (O.StopAtEndOfTurn && std::count(Tok.stopIds().begin(), Tok.stopIds().end(), Id)) {
      R.Reason = StopReason::EndOfTurn;
      R.StopToken = Id;
      break;
    }
    ++R.GeneratedTokens;
    std::string Piece = Tok.type(Id) == TokenType::Control ? "" : Text.push(Id);
    R.PendingToken = Id; // Until it is evaluated below.
    if (!OnToken(Id, Piece)) {
      R.Reason = StopReason::Callback;
      break;
    }
    if (S.position() == S.contextSize()) {
      R.Reason = StopReason::ContextFull;
      break;
    }
    if (R.GeneratedTokens == O.MaxTokens)
      continue; // No need to evaluate a token nothing will follow.
    if (absl::Status St = S.eval(std::span<const int32_t>(&Id, 1), false, Logits); !St.ok())
      return St;
    R.PendingToken = -1;
  }
  if (std::string Rest = Text.finish(); !Rest.empty())
    OnToken(-1, Rest);
  R.GenerateSeconds = now() - Start;
  return R;
}

} // namespace lumen::model
