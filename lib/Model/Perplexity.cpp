//===- Perplexity.cpp - Perplexity over a text -----------------------------===//
#include "lumen/Model/Perplexity.h"

#include "absl/strings/str_format.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <vector>

namespace lumen::model {

namespace {

/// Sums of the scored tokens' negative log-likelihoods and their squares.
struct NllSums {
  double Nll = 0, Nll2 = 0;
  int64_t Count = 0;

  /// log softmax(Logits)[Next], with llama.cpp's arithmetic: the maximum
  /// subtracted in float, e^x in float, summed in double.
  void add(const float *Logits, int64_t Vocab, int32_t Next) {
    const float Max = *std::max_element(Logits, Logits + Vocab);
    double Sum = 0;
    for (int64_t I = 0; I < Vocab; ++I)
      Sum += std::exp(Logits[I] - Max);
    const double LogProb = double(Logits[Next] - Max) - std::log(Sum);
    Nll -= LogProb;
    Nll2 += LogProb * LogProb;
    ++Count;
  }

  PerplexityEstimate estimate() const {
    PerplexityEstimate E;
    E.Scored = Count;
    const double Mean = Nll / Count;
    E.Ppl = std::exp(Mean);
    const double Var = Nll2 / Count - Mean * Mean;
    E.Error = Var > 0 && Count > 1 ? E.Ppl * std::sqrt(Var / (Count - 1)) : 0;
    return E;
  }
};

} // namespace

absl::StatusOr<PerplexityEstimate> perplexity(Session &S, std::span<const int32_t> Tokens,
                                              const PerplexityOptions &O,
                                              const std::function<void(const PerplexityEstimate &)> &OnChunk) {
  const int64_t C = O.ChunkTokens, N = Tokens.size();
  if (C < 4)
    return absl::InvalidArgumentError(absl::StrFormat("chunks of %d tokens: at least 4 are needed", C));
  if (C > S.contextSize())
    return absl::InvalidArgumentError(
        absl::StrFormat("chunks of %d tokens do not fit the session's context of %d", C, S.contextSize()));
  if (O.Chunks < 0)
    return absl::InvalidArgumentError(absl::StrFormat("chunk count %d must not be negative", O.Chunks));
  if (N < 2 * C)
    return absl::InvalidArgumentError(absl::StrFormat(
        "the text is %d token%s; perplexity with chunks of %d needs at least %d (two chunks)", N, N == 1 ? "" : "s",
        C, 2 * C));
  const int64_t Chunks = O.Chunks ? std::min(O.Chunks, N / C) : N / C;
  const int64_t Vocab = S.model().config().Vocab, First = C / 2;
  // The second half's logits come a piece at a time, not a chunk's worth
  // (512 x 151936 floats would be 311 MB).
  const int64_t Piece = std::max<int64_t>(1, std::min<int64_t>(S.batchSize(), 64));

  const auto Start = std::chrono::steady_clock::now();
  NllSums Sums;
  PerplexityEstimate Last;
  std::vector<int32_t> Chunk(C);
  std::vector<float> Logits;
  for (int64_t K = 0; K < Chunks; ++K) {
    if (O.Cancel && O.Cancel->load(std::memory_order_relaxed))
      break;
    std::copy_n(Tokens.begin() + K * C, C, Chunk.begin());
    if (O.ChunkStart)
      Chunk[0] = *O.ChunkStart;
    // Which chunk failed tells where in the text to look.
    auto InChunk = [&](const absl::Status &St) {
      return absl::Status(St.code(), absl::StrFormat("chunk %d of %d (tokens %d-%d of the text): %s", K + 1, Chunks,
                                                     K * C, K * C + C - 1, St.message()));
    };
    if (absl::Status St = S.rewind(0); !St.ok())
      return St;
    // Positions before First are context only; from First on, each
    // position's logits score the token after it (up to the chunk's end).
    std::span<const int32_t> All(Chunk);
    if (absl::Status St = S.eval(All.first(First), /*AllLogits=*/false, Logits); !St.ok())
      return InChunk(St);
    for (int64_t P = First; P < C - 1; P += Piece) {
      const int64_t Count = std::min(Piece, C - 1 - P);
      if (absl::Status St = S.eval(All.subspan(P, Count), /*AllLogits=*/true, Logits); !St.ok())
        return InChunk(St);
      for (int64_t I = 0; I < Count; ++I)
        Sums.add(&Logits[I * Vocab], Vocab, Chunk[P + I + 1]);
    }
    Last = Sums.estimate();
    Last.Chunks = K + 1;
    Last.ChunksTotal = Chunks;
    Last.Seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - Start).count();
    if (OnChunk)
      OnChunk(Last);
  }
  if (Last.Chunks == 0)
    return absl::CancelledError("perplexity stopped before its first chunk ended");
  return Last;
}

} // namespace lumen::model
