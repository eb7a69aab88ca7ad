//===- Session.cpp - One conversation's state ------------------------------===//
#include "lumen/Model/Session.h"

#include "absl/strings/str_format.h"

namespace lumen::model {

absl::Status Session::rewind(int64_t P) {
  if (P < 0 || P > Pos)
    return absl::OutOfRangeError(absl::StrFormat("cannot rewind to %d (position is %d)", P, Pos));
  Pos = P;
  return absl::OkStatus();
}

absl::Status Session::checkTokens(std::span<const int32_t> Tokens) const {
  if (Tokens.empty())
    return absl::InvalidArgumentError("no tokens to evaluate");
  if (static_cast<int64_t>(Tokens.size()) > Ctx - Pos)
    return absl::OutOfRangeError(absl::StrFormat(
        "%d tokens do not fit: position %d of a %d-token context (the session's context size)", Tokens.size(),
        Pos, Ctx));
  const int32_t V = static_cast<int32_t>(M.config().Vocab);
  for (int32_t T : Tokens)
    if (T < 0 || T >= V)
      return absl::InvalidArgumentError(absl::StrFormat("token id %d is outside the vocabulary [0, %d)", T, V));
  return absl::OkStatus();
}

} // namespace lumen::model
