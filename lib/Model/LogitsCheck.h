//===- LogitsCheck.h - Refuse non-finite logits ------------------*- C++ -*-===//
//
// A NaN or infinite logit means the forward pass broke (corrupt tensor data,
// or an activation past the fp16 range of the KV cache and attention); both
// sessions return an error rather than let a sampler read it as token 0.
//
//===----------------------------------------------------------------------===//
#ifndef LUMEN_LIB_MODEL_LOGITSCHECK_H
#define LUMEN_LIB_MODEL_LOGITSCHECK_H

#include "absl/status/status.h"
#include "absl/strings/str_format.h"

#include <cstdint>
#include <cstring>

namespace lumen::model {

/// Whether N floats are all finite. On the bits (an all-ones exponent), so
/// no floating-point flag can fold the test away; vectorises.
inline bool allFinite(const float *X, int64_t N) {
  uint32_t Bad = 0;
  for (int64_t I = 0; I < N; ++I) {
    uint32_t B;
    std::memcpy(&B, &X[I], sizeof B);
    Bad |= uint32_t((B & 0x7f800000u) == 0x7f800000u);
  }
  return Bad == 0;
}

/// OK, or the error for a row of Vocab logits at Position that is not finite;
/// HalfPrecision: the session keeps the KV cache and attention in fp16.
inline absl::Status checkLogits(const float *Logits, int64_t Vocab, int64_t Position, bool HalfPrecision) {
  if (allFinite(Logits, Vocab))
    return absl::OkStatus();
  return absl::DataLossError(absl::StrFormat(
      "the logits at position %d are not finite (NaN or infinity): the file's tensor data is corrupt, or an "
      "activation overflows%s",
      Position,
      HalfPrecision ? " (the JIT path keeps the KV cache and attention in fp16, whose range ends at 65504)" : ""));
}

} // namespace lumen::model

#endif
