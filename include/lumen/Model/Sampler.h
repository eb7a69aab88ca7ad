//===- lumen/Model/Sampler.h - Next-token sampling ----------------*- C++ -*-===//
//
// llama.cpp's default chain: repeat, frequency and presence penalties over a
// window, then top-k, top-p,
// min-p, temperature, and a draw from the rest. Temperature <= 0 is greedy
// (argmax after the penalty). The same seed gives the same tokens.
//
//===----------------------------------------------------------------------===//
#ifndef LUMEN_MODEL_SAMPLER_H
#define LUMEN_MODEL_SAMPLER_H

#include "lumen/Export.h"

#include "absl/status/status.h"

#include <cstdint>
#include <deque>
#include <random>
#include <span>
#include <utility>
#include <vector>

namespace lumen::model {

struct LUMEN_API SamplerOptions {
  float Temperature = 0.8f;
  int32_t TopK = 40;        // <= 0: all tokens.
  float TopP = 0.95f;       // 1: off.
  float MinP = 0.05f;       // 0: off.
  float RepeatPenalty = 1.0f; // 1: off.
  /// OpenAI's penalties over the same window: a token's logit loses
  /// FrequencyPenalty per time it occurs there and PresencePenalty once.
  float FrequencyPenalty = 0.0f, PresencePenalty = 0.0f; // 0: off.
  int32_t RepeatLastN = 64;
  uint64_t Seed = 0xC0FFEE;
  /// Added to these tokens' logits before anything else (OpenAI's logit_bias).
  std::vector<std::pair<int32_t, float>> LogitBias;

  absl::Status validate() const;
};

class LUMEN_API Sampler {
public:
  explicit Sampler(SamplerOptions Options);

  /// Picks the next token from Logits (one per vocabulary entry).
  int32_t sample(std::span<const float> Logits);
  /// Records a token of the context (prompt or generated) for the penalty.
  void accept(int32_t Token);

private:
  /// The (id, logit) of the tokens the bias and penalties change, by id.
  std::vector<std::pair<int32_t, float>> adjusted(std::span<const float> Logits) const;
  /// Temperature 0: the argmax after the bias and penalties.
  int32_t greedy(std::span<const float> Logits) const;

  SamplerOptions Options;
  std::mt19937_64 Rng;
  std::deque<int32_t> History;
  std::vector<std::pair<float, int32_t>> Candidates; // Reused: no allocation per token.
};

} // namespace lumen::model

#endif
