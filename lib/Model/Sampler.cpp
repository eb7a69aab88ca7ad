//===- Sampler.cpp - Next-token sampling -----------------------------------===//
#include "lumen/Model/Sampler.h"

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_format.h"

#include <algorithm>
#include <cmath>

namespace lumen::model {

absl::Status SamplerOptions::validate() const {
  auto Bad = [](const std::string &W) { return absl::InvalidArgumentError(W); };
  if (!std::isfinite(Temperature) || Temperature < 0)
    return Bad(absl::StrFormat("temperature %g must be a finite number >= 0 (0 = greedy)", Temperature));
  if (!(TopP > 0 && TopP <= 1))
    return Bad(absl::StrFormat("top-p %g must be in (0, 1]", TopP));
  if (!(MinP >= 0 && MinP <= 1))
    return Bad(absl::StrFormat("min-p %g must be in [0, 1]", MinP));
  if (!(RepeatPenalty > 0) || !std::isfinite(RepeatPenalty))
    return Bad(absl::StrFormat("repeat penalty %g must be positive", RepeatPenalty));
  for (auto [Name, V] : {std::pair{"frequency", FrequencyPenalty}, {"presence", PresencePenalty}})
    if (!std::isfinite(V) || V < -2 || V > 2)
      return Bad(absl::StrFormat("%s penalty %g must be in [-2, 2]", Name, V));
  for (auto [T, Bias] : LogitBias)
    if (T < 0 || !std::isfinite(Bias))
      return Bad(absl::StrFormat("logit bias %g for token %d: a token id and a finite number", Bias, T));
  if (RepeatLastN < 0)
    return Bad(absl::StrFormat("repeat window %d must not be negative", RepeatLastN));
  return absl::OkStatus();
}

Sampler::Sampler(SamplerOptions O) : Options(O), Rng(O.Seed) {}

void Sampler::accept(int32_t Token) {
  if (Options.RepeatLastN == 0)
    return;
  History.push_back(Token);
  while (static_cast<int32_t>(History.size()) > Options.RepeatLastN)
    History.pop_front();
}

std::vector<std::pair<int32_t, float>> Sampler::adjusted(std::span<const float> Logits) const {
  // The bias, then the penalties, as llama.cpp: the repeat penalty shrinks
  // positive logits and grows negative ones; frequency and presence subtract.
  const int32_t V = static_cast<int32_t>(Logits.size());
  absl::flat_hash_map<int32_t, float> Changed;
  for (auto [T, Bias] : Options.LogitBias)
    if (T >= 0 && T < V)
      Changed.try_emplace(T, Logits[T]).first->second += Bias;
  if (Options.RepeatPenalty != 1.0f || Options.FrequencyPenalty != 0.0f || Options.PresencePenalty != 0.0f) {
    absl::flat_hash_map<int32_t, int32_t> Count;
    for (int32_t T : History)
      ++Count[T];
    for (auto [T, N] : Count)
      if (T >= 0 && T < V) {
        float &L = Changed.try_emplace(T, Logits[T]).first->second;
        L = L > 0 ? L / Options.RepeatPenalty : L * Options.RepeatPenalty;
        L -= float(N) * Options.FrequencyPenalty + Options.PresencePenalty;
      }
  }
  std::vector<std::pair<int32_t, float>> Sorted(Changed.begin(), Changed.end());
  std::sort(Sorted.begin(), Sorted.end());
  return Sorted;
}

int32_t Sampler::greedy(std::span<const float> Logits) const {
  // The largest logit, the few that the bias and penalties change at their
  // changed values, without a copy of the vocabulary (a server samples
  // several streams a step): a scan in id order (a strict > keeps the
  // lowest id among equals) of the plain runs between the changed ids.
  const int32_t V = static_cast<int32_t>(Logits.size());
  int32_t Best = -1;
  float BestValue = 0;
  auto Scan = [&](int32_t I, int32_t To) {
    if (Best < 0 && I < To) {
      Best = I;
      BestValue = Logits[I++];
    }
    // Chunks with nothing above the best so far (nearly all, after the
    // first few) are one vectorised comparison; 8 streams' vocabularies of
    // 152k took 1.2 ms a step one compare-and-branch at a time.
    constexpr int32_t Chunk = 64;
    for (; I < To; I += Chunk) {
      const int32_t End = std::min(I + Chunk, To);
      int Above = 0;
      for (int32_t J = I; J < End; ++J)
        Above |= Logits[J] > BestValue;
      if (Above)
        for (int32_t J = I; J < End; ++J)
          if (Logits[J] > BestValue) {
            Best = J;
            BestValue = Logits[J];
          }
    }
  };
  int32_t From = 0;
  for (auto [T, L] : adjusted(Logits)) {
    Scan(From, T);
    if (Best < 0 || L > BestValue) {
      Best = T;
      BestValue = L;
    }
    From = T + 1;
  }
  Scan(From, V);
  return std::max(Best, 0);
}

int32_t Sampler::sample(std::span<const float> Logits) {
  if (Options.Temperature <= 0)
    return greedy(Logits);
  const int32_t V = static_cast<int32_t>(Logits.size());
  Candidates.resize(V);
  for (int32_t I = 0; I < V; ++I)
    Candidates[I] = {Logits[I], I};
  for (auto [T, L] : adjusted(Logits))
    Candidates[T].first = L;
  auto Greater = [](const auto &A, const auto &B) {
    return A.first != B.first ? A.first > B.first : A.second < B.second;
  };

  // Top-k: keep the K best, sorted.
  size_t K = Options.TopK > 0 ? std::min<size_t>(Options.TopK, V) : V;
  std::partial_sort(Candidates.begin(), Candidates.begin() + K, Candidates.end(), Greater);
  Candidates.resize(K);
  // Probabilities at temperature 1 for top-p and min-p (llama.cpp applies
  // temperature last in its default chain).
  std::vector<double> P(K);
  double Sum = 0;
  for (size_t I = 0; I < K; ++I)
    Sum += P[I] = std::exp(double(Candidates[I].first) - Candidates[0].first);
  size_t Keep = K;
  if (Options.TopP < 1.0f) {
    double Cum = 0;
    for (size_t I = 0; I < K; ++I) {
      Cum += P[I] / Sum;
      if (Cum >= Options.TopP) {
        Keep = I + 1;
        break;
      }
    }
  }
  if (Options.MinP > 0.0f) {
    size_t I = 1; // P[0] is the largest; always keep it.
    while (I < Keep && P[I] >= Options.MinP * P[0])
      ++I;
    Keep = I;
  }
  // Temperature, then a draw.
  std::vector<double> W(Keep);
  for (size_t I = 0; I < Keep; ++I)
    W[I] = std::exp((double(Candidates[I].first) - Candidates[0].first) / Options.Temperature);
  std::discrete_distribution<size_t> Dist(W.begin(), W.end());
  return Candidates[Dist(Rng)].second;
}

} // namespace lumen::model
