//===- attention_bench.cpp - One token's attention over the fp16 cache ----===//
//
// vec::attendToken as decode calls it (Qwen2.5-0.5B: 7 query heads per KV
// head, 64-wide heads, 2 KV heads a layer), one thread, 256- and 512-bit:
//  - in cache: one layer's cache, attended again and again (the compute
//    ceiling);
//  - from DRAM: every layer's cache in turn, as one decode step reads it,
//    after a 64 MB read has pushed it out of the caches.
// Prints ms per token (all layers), GFMA/s (scores + P.V) and cache GB/s.
//
//   attention_bench [--positions 512,2048] [--layers 24]
//
//===----------------------------------------------------------------------===//
#include "VectorOps.h"

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

using namespace lumen::model;

int main(int argc, char **argv) {
  absl::ParseCommandLine(argc, argv);
  constexpr int64_t HD = 64, Group = 7, KVHeads = 2;
  const int64_t Layers = absl::GetFlag(FLAGS_layers);
  if (Layers < 1) {
    std::fprintf(stderr, "attention_bench: --layers must be positive\n");
    return 1;
  }
  const bool HasAvx512 = __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq");
  std::printf("| positions | width | in cache ms/token | GFMA/s | from DRAM ms/token | GFMA/s | cache GB/s |\n"
              "|---|---|---|---|---|---|---|\n");
  for (absl::string_view PS : absl::StrSplit(absl::GetFlag(FLAGS_positions), ',')) {
    int64_t Seen;
    if (!absl::SimpleAtoi(PS, &Seen) || Seen < 1 || Seen > (1 << 20)) {
      std::fprintf(stderr, "attention_bench: '%s' is not a position count\n", std::string(PS).c_str());
      return 1;
    }
    const int64_t Ctx = (Seen + 63) / 64 * 64, Head = Ctx * HD; // One KV head's K (or V) of one layer.
    std::vector<uint16_t> K(Layers * KVHeads * Head), V(K.size());
    std::mt19937 Rng(1);
    std::normal_distribution<float> N(0.0f, 1.0f);
    for (size_t I = 0; I < K.size(); ++I) {
      K[I] = _cvtss_sh(N(Rng), 0);
      V[I] = _cvtss_sh(N(Rng), 0);
    }
    std::vector<float> Q(Group * HD), Scores(Group * Ctx), Out(Group * HD);
    for (float &X : Q) X = _cvtsh_ss(_cvtss_sh(N(Rng) * 0.2f, 0));
    // Both timings cover the same work: Layers x KV heads calls. Before each
    // DRAM run 64 MB are read, so the cache (25 MB at 2048 positions) is
    // not in the 32 MB L3, as in the model where the weights stream between.
    std::vector<uint8_t> Evict(size_t(64) << 20, 1);
    volatile uint8_t Sink = 0;
    auto Time = [&](bool Wide, bool Dram) {
      double Best = 1e30;
      for (int Rep = 0; Rep < 5; ++Rep) {
        if (Dram) {
          uint8_t X = 0;
          for (size_t I = 0; I < Evict.size(); I += 64)
            X ^= Evict[I];
          Sink = Sink ^ X;
        }
        auto T0 = std::chrono::steady_clock::now();
        for (int64_t L = 0; L < Layers; ++L)
          for (int64_t G = 0; G < KVHeads; ++G) {
            const size_t At = Dram ? size_t(L * KVHeads + G) * Head : size_t(G) * Head;
            vec::attendToken(Q.data(), Group, HD, &K[At], 64 * HD, &V[At], HD, Seen, 0.125f, Scores.data(), Ctx,
                             Out.data(), HD, Wide);
          }
        Best = std::min(Best, std::chrono::duration<double>(std::chrono::steady_clock::now() - T0).count());
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
