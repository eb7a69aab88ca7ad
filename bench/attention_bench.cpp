//===- attention_bench.cpp - One token's attention over the fp16 cache ----===//
//
// vec::attendToken as decode calls it (Qwen2.5-0.5B: 7 query heads per KV
// head, 64-wide heads, 2 KV heads a layer) over a KVCache, one thread,
// 256- and 512-bit:
//  - in cache: one layer's cache, attended again and again (the compute
//    ceiling);
//  - from DRAM: every layer's cache in turn, as one decode step reads it,
//    with a layer's weights (--stream-mb, read from 2 MB pages, not timed)
//    streamed between layers as a decode step does: they push the cache
//    and its page-table entries out of the caches and the TLB.
// Prints ms per token (all layers), GFMA/s (scores + P.V) and cache GB/s.
//
//   attention_bench [--positions 512,2048] [--layers 24] [--segment 256]
//                   [--huge_pages=true] [--stream_mb 22]
//
//===----------------------------------------------------------------------===//
#include "KVCache.h"
#include "VectorOps.h"

#include "lumen/Runtime/MemoryProbe.h"

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <immintrin.h>
#include <random>
#include <vector>

ABSL_FLAG(std::string, positions, "512,2048", "cached positions (the context length so far)");
ABSL_FLAG(int64_t, layers, 24, "layers (each its own cache, as in the model)");
ABSL_FLAG(int64_t, segment, lumen::model::KVCache::kSegmentPositions,
          "positions per cache segment (a multiple of 64)");
ABSL_FLAG(bool, huge_pages, true, "keep the cache in 2 MB pages");
ABSL_FLAG(int64_t, stream_mb, 22, "MB of weights read between layers (0: none)");

using namespace lumen::model;

int main(int argc, char **argv) {
  absl::ParseCommandLine(argc, argv);
  constexpr int64_t HD = 64, Group = 7, KVHeads = 2;
  const int64_t Layers = absl::GetFlag(FLAGS_layers), Segment = absl::GetFlag(FLAGS_segment);
  const int64_t StreamMB = absl::GetFlag(FLAGS_stream_mb);
  if (Layers < 1 || Segment < vec::kKeyBlock || Segment % vec::kKeyBlock != 0 || StreamMB < 0) {
    std::fprintf(stderr, "attention_bench: --layers must be positive, --segment a positive multiple of 64, "
                         "--stream_mb not negative\n");
    return 1;
  }
  const bool HasAvx512 = __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq");
  // The "weights": one layer's worth, read between layers (its own pages in
  // the TLB, as the model's weight arena in 2 MB pages).
  lumen::runtime::LargeBuffer Weights(std::max<size_t>(size_t(StreamMB) << 20, 4096), /*HugePages=*/true);
  volatile uint64_t Sink = 0;
  auto StreamWeights = [&] {
    if (StreamMB)
      Sink = Sink + lumen::runtime::streamRead(Weights.data(), Weights.size());
  };
  std::printf("| positions | width | in cache ms/token | GFMA/s | from DRAM ms/token | GFMA/s | cache GB/s |\n"
              "|---|---|---|---|---|---|---|\n");
  for (absl::string_view PS : absl::StrSplit(absl::GetFlag(FLAGS_positions), ',')) {
    int64_t Seen;
    if (!absl::SimpleAtoi(PS, &Seen) || Seen < 1 || Seen > (1 << 20)) {
      std::fprintf(stderr, "attention_bench: '%s' is not a position count\n", std::string(PS).c_str());
      return 1;
    }
    KVCache Cache(Layers, KVHeads, HD, Seen, Segment, absl::GetFlag(FLAGS_huge_pages));
    if (!Cache.valid()) {
      std::fprintf(stderr, "attention_bench: cannot allocate the cache\n");
      return 1;
    }
    Cache.reserve(Seen);
    std::mt19937 Rng(1);
    std::normal_distribution<float> N(0.0f, 1.0f);
    std::vector<float> Key(HD), Value(HD);
    for (int64_t L = 0; L < Layers; ++L)
      for (int64_t G = 0; G < KVHeads; ++G)
        for (int64_t P = 0; P < Seen; ++P) {
          for (int64_t D = 0; D < HD; ++D) {
            Key[D] = N(Rng);
            Value[D] = N(Rng);
          }
          Cache.store(L, G, P, Key.data(), Value.data());
        }
    const int64_t Stride = (Seen + 63) / 64 * 64;
    std::vector<float> Q(Group * HD), Scores(Group * Stride), Out(Group * HD);
    for (float &X : Q) X = _cvtsh_ss(_cvtss_sh(N(Rng) * 0.2f, 0));
    // Both timings cover the same work, Layers x KV heads calls; only the
    // calls are timed.
    auto Time = [&](bool Wide, bool Dram) {
      double Best = 1e30;
      for (int Rep = 0; Rep < 5; ++Rep) {
        double Sum = 0;
        for (int64_t L = 0; L < Layers; ++L) {
          if (Dram)
            StreamWeights();
          auto T0 = std::chrono::steady_clock::now();
          for (int64_t G = 0; G < KVHeads; ++G)
            vec::attendToken(Q.data(), Group, Cache.head(Dram ? L : 0, G), Seen, 0.125f, Scores.data(), Stride,
                             Out.data(), HD, Wide ? vec::Width::Native512 : vec::Width::Avx2);
          Sum += std::chrono::duration<double>(std::chrono::steady_clock::now() - T0).count();
        }
        Best = std::min(Best, Sum);
      }
      return Best;
    };
    const double FMAs = 2.0 * Layers * KVHeads * Group * Seen * HD;
    const double CacheBytes = 2.0 * Layers * KVHeads * Seen * HD * sizeof(uint16_t);
    for (bool Wide : {false, true}) {
      if (Wide && !HasAvx512)
        continue;
      const double Hot = Time(Wide, false), Cold = Time(Wide, true);
      std::printf("| %lld | %s | %.3f | %.1f | %.3f | %.1f | %.1f |\n", static_cast<long long>(Seen),
                  Wide ? "512" : "256", Hot * 1e3, FMAs / Hot / 1e9, Cold * 1e3, FMAs / Cold / 1e9,
                  CacheBytes / Cold / 1e9);
    }
  }
  return 0;
}
