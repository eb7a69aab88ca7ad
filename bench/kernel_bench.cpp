//===- kernel_bench.cpp - Matmul kernel microbenchmark ---------------------===//
//
// For every Qwen2.5-0.5B matmul shape and kernel variant this host can run:
//  - decode (N=1) GB/s of weights streamed from DRAM: the kernel walks
//    distinct copies of the matrix (>= 256 MB in all, like 24 layers), so
//    the 32 MB L3 cannot hold them; and in cache (one copy, the compute
//    ceiling);
//  - prefill (N tokens) int8 GOP/s (2*M*K*N / time) for register tiles;
// at 1 and 2 threads, beside the measured DRAM read bandwidth. The table's
// choice for the host comes first in each shape's rows.
//
//   kernel_bench [--threads 1,2] [--prefill-tokens 64] [--quick] [--nodecode]
//                [--type q4_k] [--shapes 1536x8960,8960x1536]
//
//===----------------------------------------------------------------------===//
#include "lumen/Codegen/KernelABI.h"
#include "lumen/Codegen/Reference.h"
#include "lumen/GGUF/Quantize.h"
#include "lumen/Runtime/Jit.h"
#include "lumen/Runtime/KernelCache.h"
#include "lumen/Runtime/MemoryProbe.h"
#include "lumen/Runtime/ThreadPool.h"
#include "lumen/Runtime/Tuner.h"

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <memory>
#include <random>

ABSL_FLAG(std::string, threads, "1,2", "thread counts");
ABSL_FLAG(int64_t, prefill_tokens, 64, "tokens for the prefill (GEMM) rows");
ABSL_FLAG(bool, quick, false, "fewer variants, shorter timing");
ABSL_FLAG(bool, huge_pages, true, "back the weight copies with 2 MB pages (madvise)");
ABSL_FLAG(bool, decode, true, "the decode (N=1) tables; --nodecode for the prefill tables alone");
ABSL_FLAG(std::string, type, "q8_0", "weight type (q8_0, q4_k, q6_k, ...)");
ABSL_FLAG(std::string, shapes, "", "KxM shapes, comma-separated (default: the Qwen2.5-0.5B matmuls)");
ABSL_FLAG(std::string, filter, "", "only the kernels whose label contains this text");
ABSL_FLAG(int, rounds, 1,
          "measure the kernels of each table this many times, one after another in turn: variants "
          "compared within one process and minute, as this host's stream rate drifts between runs");

using namespace lumen;
using namespace lumen::codegen;

namespace {

double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

struct Shape {
  std::string Name;
  int64_t K, M;
};
const Shape kShapes[] = {{"attn_q/attn_output 896x896", 896, 896},
                             {"attn_k/attn_v 896x128", 896, 128},
                             {"ffn_gate/ffn_up 896x4864", 896, 4864},
                             {"ffn_down 4864x896", 4864, 896},
                             {"lm_head 896x151936", 896, 151936}};

/// A variant's prefetch distance: the next row tile (nextTilePrefetchBytes).
constexpr unsigned kNextTileBytes = ~0u;

/// One benchmarked kernel variant.
struct Variant {
  WeightLayout Layout;
  ActivationFormat Fmt;
  unsigned Bits, Acc, Rows, Tokens, Prefetch;
  bool Paced = false;
  PrefetchPattern Pattern = PrefetchPattern::Lines;

  /// The variant for a shape and N tokens (VNNI where the host has it).
  KernelSpec spec(const Shape &Sh, int64_t N, WeightType W, const CpuFeatures &Cpu) const {
    KernelSpec S;
    S.Shape = {Sh.M, Sh.K, N, W, Layout};
    S.Activations = Fmt;
    S.VectorBits = Bits;
    S.VNNI = Fmt == ActivationFormat::Q8 && Cpu.VNNI;
    S.Accumulators = Acc;
    S.TileRows = Rows;
    S.TileTokens = N == 1 ? 1 : Tokens;
    S.PrefetchBytes = Prefetch == kNextTileBytes ? nextTilePrefetchBytes(S.Shape, Rows) : Prefetch;
    S.Paced = Paced && N == 1;
    S.Prefetch = Prefetch ? Pattern : PrefetchPattern::Lines;
    return S;
  }
};

std::string label(const KernelSpec &S) {
  const std::string Layout = S.Shape.Layout == WeightLayout::Rows
                                 ? "rows"
                                 : absl::StrFormat("il%d", layoutRowGroup(S.Shape.Layout));
  return absl::StrFormat("%s %s%s v%u a%u%s%s", Layout,
                         S.Activations == ActivationFormat::Q8 ? (S.VNNI ? "int8 vnni" : "int8 avx2") : "f32 fma",
                         S.SuperBlockScales ? " x-scale/256" : "",
                         S.VectorBits, S.Accumulators,
                         S.PrefetchBytes
                             ? absl::StrFormat(" pf%u%s", S.PrefetchBytes, prefetchPatternSuffix(S.Prefetch))
                             : std::string(),
                         S.Paced ? " paced" : "");
}

/// A table's kernels (each with whether it is the table's choice) as they
/// are measured: those whose label contains --filter, --rounds times over.
using SpecList = std::vector<std::pair<KernelSpec, bool>>;
SpecList selectRuns(const SpecList &Specs) {
  SpecList Runs;
  const std::string Filter = absl::GetFlag(FLAGS_filter);
  for (int R = 0; R < std::max(1, absl::GetFlag(FLAGS_rounds)); ++R)
    for (const auto &Entry : Specs)
      if (Filter.empty() || label(Entry.first).find(Filter) != std::string::npos)
        Runs.push_back(Entry);
  return Runs;
}

/// Runs Fn over rows split evenly across the pool (one contiguous slice per thread).
void runSplit(runtime::ThreadPool &Pool, MatmulFn Fn, const uint8_t *W, const void *X, float *Y,
              int64_t M) {
  // Multiples of 16 rows: interleaved kernels take row groups of 8.
  int64_t Grain = ((M + Pool.size() - 1) / Pool.size() + 15) / 16 * 16;
  Pool.parallelFor(M, Grain, [&](int64_t B, int64_t E) { Fn(W, X, Y, B, E); });
}

/// Best-of-passes seconds per call, cycling over Copies matrices.
double timeCalls(runtime::ThreadPool &Pool, MatmulFn Fn, const uint8_t *Base, int64_t MatBytes,
                 int Copies, const void *X, float *Y, int64_t M, double MinSeconds) {
  double Best = 1e30;
  double Until = now() + MinSeconds;
  int Passes = 0;
  do {
    double T0 = now();
    for (int C = 0; C < Copies; ++C)
      runSplit(Pool, Fn, Base + C * MatBytes, X, Y, M);
    Best = std::min(Best, (now() - T0) / Copies);
    ++Passes;
  } while (now() < Until || Passes < 3);
  return Best;
}

} // namespace

int main(int Argc, char **Argv) {
  absl::ParseCommandLine(Argc, Argv);
  bool Quick = absl::GetFlag(FLAGS_quick);
  double MinSeconds = Quick ? 0.15 : 0.4;
  std::vector<unsigned> ThreadCounts;
  for (absl::string_view T : absl::StrSplit(absl::GetFlag(FLAGS_threads), ','))
    ThreadCounts.push_back(std::stoi(std::string(T)));
  const std::optional<WeightType> Type = weightTypeFromName(absl::GetFlag(FLAGS_type));
  if (!Type || (*Type != WeightType::Q8_0 && isFloatType(*Type))) {
    std::fprintf(stderr, "kernel_bench: --type must be a quantized weight type (q8_0, q4_k, ...)\n");
    return 1;
  }
  const WeightType WT = *Type;
  std::vector<Shape> Shapes(std::begin(kShapes), std::end(kShapes));
  if (!absl::GetFlag(FLAGS_shapes).empty()) {
    Shapes.clear();
    for (absl::string_view Text : absl::StrSplit(absl::GetFlag(FLAGS_shapes), ',')) {
      int64_t K = 0, M = 0;
      std::vector<std::string> KM = absl::StrSplit(Text, 'x');
      if (KM.size() != 2 || !absl::SimpleAtoi(KM[0], &K) || !absl::SimpleAtoi(KM[1], &M) || K <= 0 || M <= 0 ||
          K % weightBlockElements(WT)) {
        std::fprintf(stderr, "kernel_bench: bad shape '%s' (KxM, K a multiple of the type's block)\n",
                     std::string(Text).c_str());
        return 1;
      }
      Shapes.push_back({std::string(Text), K, M});
    }
  }

  auto J = runtime::Jit::create();
  if (!J.ok()) {
    std::fprintf(stderr, "%s\n", std::string(J.status().message()).c_str());
    return 1;
  }
  runtime::KernelCache Cache(**J);
  const CpuFeatures &Cpu = (*J)->cpu();
  std::printf("# Lumen kernel benchmark\n\nhost: cpu %s, isa %s; huge pages for weights: %s\n\n",
              Cpu.CpuName.c_str(), Cpu.isaName().c_str(),
              absl::GetFlag(FLAGS_huge_pages) ? "yes" : "no");

  std::printf("## DRAM read bandwidth (1 GiB streaming read, best of 3)\n\n| threads | 4 KB pages GB/s | 2 MB pages GB/s |\n|---|---|---|\n");
  std::vector<double> Dram(ThreadCounts.size());
  for (size_t I = 0; I < ThreadCounts.size(); ++I) {
    runtime::ThreadPool Pool(ThreadCounts[I]);
    double Small = runtime::measureReadBandwidth(Pool, size_t(1) << 30, false);
    double Huge = runtime::measureReadBandwidth(Pool, size_t(1) << 30, true);
    Dram[I] = absl::GetFlag(FLAGS_huge_pages) ? Huge : Small;
    std::printf("| %u | %.1f | %.1f |\n", ThreadCounts[I], Small, Huge);
    std::fflush(stdout);
  }

  // What one pool dispatch costs: a decode step makes 5 per layer (q/k/v,
  // attention, attn_output, gate/up, down) plus lm_head's.
  std::printf("\n## Thread pool: one parallelFor round trip (empty chunks)\n\n| threads | us per dispatch |\n|---|---|\n");
  for (unsigned T : ThreadCounts) {
    runtime::ThreadPool Pool(T);
    volatile int64_t Sink = 0;
    const int Calls = 200000;
    double Best = 1e30;
    for (int Rep = 0; Rep < 3; ++Rep) {
      double T0 = now();
      for (int I = 0; I < Calls; ++I)
        Pool.parallelFor(T, 1, [&](int64_t B, int64_t) { Sink = Sink + B; });
      Best = std::min(Best, (now() - T0) / Calls);
    }
    std::printf("| %u | %.2f |\n", T, Best * 1e6);
    std::fflush(stdout);
  }

  // >= 256 MB of weight copies per layout, refilled when K changes.
  const size_t Arena = size_t(288) << 20;
  struct Filled {
    std::unique_ptr<runtime::LargeBuffer> Buf;
    int64_t K = 0;
  };
  std::map<WeightLayout, Filled> Arenas;
  auto WeightsFor = [&](WeightLayout L, int64_t K) {
    Filled &F = Arenas[L];
    if (!F.Buf)
      F.Buf = std::make_unique<runtime::LargeBuffer>(Arena, absl::GetFlag(FLAGS_huge_pages));
    if (F.K != K) {
      runtime::fillSampleWeights(F.Buf->data(), Arena, WT, L, K);
      F.K = K;
    }
    return F.Buf->data();
  };

  using WL = WeightLayout;
  using AF = ActivationFormat;
  std::vector<Variant> Decode;
  for (auto [Fmt, Bits] : {std::pair{AF::Q8, 512u}, {AF::Q8, 256u}, {AF::F32, 512u}, {AF::F32, 256u}})
    for (auto [Acc, Rows] : Quick ? std::vector<std::pair<unsigned, unsigned>>{{1, 1}, {2, 1}}
                                  : std::vector<std::pair<unsigned, unsigned>>{{1, 1}, {2, 1}, {4, 1}, {1, 2}})
      Decode.push_back({WL::Rows, Fmt, Bits, Acc, Rows, 1, 0});
  Decode.push_back({WL::Rows, AF::Q8, 256, 2, 1, 1, 1024});
  for (unsigned Acc : {1u, 2u})
    for (unsigned Rows : Quick ? std::vector<unsigned>{8} : std::vector<unsigned>{8, 16})
      for (unsigned Pf : Quick ? std::vector<unsigned>{0, 1024} : std::vector<unsigned>{0, 512, 1024, 2048})
        Decode.push_back({WL::Interleaved8, AF::Q8, 256, Acc, Rows, 1, Pf});
  for (unsigned Acc : {1u, 2u})
    for (unsigned Rows : Quick ? std::vector<unsigned>{16} : std::vector<unsigned>{16, 32})
      for (unsigned Pf : Quick ? std::vector<unsigned>{0, 2048} : std::vector<unsigned>{0, 1024, 2048, 4096, 8192}) {
        Decode.push_back({WL::Interleaved16, AF::Q8, 512, Acc, Rows, 1, Pf});
        if (Pf == 0) // The table's decode choice: paced.
          Decode.push_back({WL::Interleaved16, AF::Q8, 512, Acc, Rows, 1, Pf, true});
      }
  // Zen 5's decode choice: the start of the page 8 KB ahead, every block.
  for (unsigned Pf : Quick ? std::vector<unsigned>{8192} : std::vector<unsigned>{4096, 8192, 16384})
    Decode.push_back({WL::Interleaved16, AF::Q8, 512, 1, 16, 1, Pf, false, PrefetchPattern::PageStart});
  // Every line ahead and the page start 8 KB ahead (the small batches' choice).
  for (unsigned Pf : {2048u, 4096u})
    Decode.push_back({WL::Interleaved16, AF::Q8, 512, 1, 16, 1, Pf, false, PrefetchPattern::LinesAndPage});

  if (!absl::GetFlag(FLAGS_decode))
    Decode.clear();
  std::printf("\n## Decode (N=1): weight GB/s from DRAM (in-cache GB/s); %% of DRAM bandwidth\n\n");
  std::printf("| shape | kernel | rows | threads | DRAM GB/s | %% of DRAM | in-cache GB/s |\n|---|---|---|---|---|---|---|\n");
  for (const Shape &Sh : Shapes) {
    int64_t MatBytes = Sh.M * weightRowBytes(WT, Sh.K);
    int Copies = std::max<int64_t>(2, (int64_t(256) << 20) / MatBytes + 1);
    Copies = std::min<int64_t>(Copies, Arena / MatBytes);
    std::vector<float> X(Sh.K), Y(Sh.M);
    std::mt19937 Rng(1);
    std::normal_distribution<float> N(0, 1);
    for (float &V : X) V = N(Rng);
    std::vector<uint8_t> Xq(q8RowBytes(Sh.K)), Xq256(Xq.size());
    referenceQuantize(Sh.K, 1, X.data(), Xq.data());
    if (Sh.K % 256 == 0)
      referenceQuantize(Sh.K, 1, X.data(), Xq256.data(), 256);
    SpecList Specs;
    if (!Decode.empty()) {
      const MatmulShape Chosen{Sh.M, Sh.K, 1, WT, chooseLayout(Sh.M, Sh.K, WT, Cpu)};
      Specs.push_back({chooseSpec(Chosen, Cpu), true});
      // The same with a scale per 256 activations (interleaved K-quants).
      KernelSpec Wide = Specs.back().first;
      Wide.SuperBlockScales = true;
      if (Wide.validate(Cpu).ok())
        Specs.push_back({Wide, false});
    }
    for (const Variant &V : Decode)
      Specs.push_back({V.spec(Sh, 1, WT, Cpu), false});
    for (const auto &[S, FromTable] : selectRuns(Specs)) {
      if (!S.validate(Cpu).ok())
        continue;
      MatmulFn Fn = *Cache.getMatmul(S);
      const void *Act = S.SuperBlockScales ? (const void *)Xq256.data()
                        : S.Activations == AF::Q8 ? (const void *)Xq.data()
                                                  : (const void *)X.data();
      for (size_t TI = 0; TI < ThreadCounts.size(); ++TI) {
        runtime::ThreadPool Pool(ThreadCounts[TI]);
        const uint8_t *W = WeightsFor(S.Shape.Layout, Sh.K);
        double Cold = timeCalls(Pool, Fn, W, MatBytes, Copies, Act, Y.data(), Sh.M, MinSeconds);
        double Warm = MatBytes <= (16 << 20) ? timeCalls(Pool, Fn, W, MatBytes, 1, Act, Y.data(), Sh.M, MinSeconds / 2)
                                             : 0;
        std::printf("| %s | %s%s | %u | %u | %.1f | %.0f%% | %s |\n", Sh.Name.c_str(), FromTable ? "table: " : "",
                    label(S).c_str(), S.TileRows,
                    ThreadCounts[TI], MatBytes / Cold / 1e9, 100 * MatBytes / Cold / 1e9 / Dram[TI],
                    Warm ? absl::StrFormat("%.1f", MatBytes / Warm / 1e9).c_str() : "(>16 MB)");
        std::fflush(stdout);
      }
    }
  }

  const int64_t NTok = absl::GetFlag(FLAGS_prefill_tokens);
  std::vector<Variant> Prefill;
  for (auto [Fmt, Bits] : {std::pair{AF::Q8, 512u}, {AF::Q8, 256u}, {AF::F32, 512u}, {AF::F32, 256u}})
    for (auto [R, T] : Quick ? std::vector<std::pair<unsigned, unsigned>>{{1, 1}, {2, 4}}
                             : std::vector<std::pair<unsigned, unsigned>>{{1, 1}, {2, 2}, {2, 4}, {4, 2}, {4, 4}})
      Prefill.push_back({WL::Rows, Fmt, Bits, 1, R, T, 0});
  for (auto [R, T] : Quick ? std::vector<std::pair<unsigned, unsigned>>{{8, 4}, {16, 2}}
                           : std::vector<std::pair<unsigned, unsigned>>{{8, 2}, {8, 3}, {8, 4}, {8, 5}, {16, 1}, {16, 2}, {16, 3}})
    Prefill.push_back({WL::Interleaved8, AF::Q8, 256, 1, R, T, 0});
  for (auto [R, T] : Quick ? std::vector<std::pair<unsigned, unsigned>>{{16, 4}, {16, 8}}
                           : std::vector<std::pair<unsigned, unsigned>>{{16, 2}, {16, 4}, {16, 6}, {16, 8}, {32, 2}, {32, 4}, {32, 5}, {32, 6}})
    Prefill.push_back({WL::Interleaved16, AF::Q8, 512, 1, R, T, 0});
  // Small batches (a server's decode steps) are near the balance of compute
  // and memory: the prefetch patterns decide how much they overlap.
  if (absl::GetFlag(FLAGS_prefill_tokens) <= 16)
    for (auto [R, T] : std::vector<std::pair<unsigned, unsigned>>{{16, 8}, {32, 4}, {32, 6}, {16, 4}, {16, 2}})
      for (auto [Pf, Pat] : std::vector<std::pair<unsigned, PrefetchPattern>>{
               {kNextTileBytes, PrefetchPattern::Spread}, {8192, PrefetchPattern::PageStart},
               {4096, PrefetchPattern::Lines}, {4096, PrefetchPattern::LinesAndPage}})
        Prefill.push_back({WL::Interleaved16, AF::Q8, 512, 1, R, T, Pf, false, Pat});
  // In cache: one copy (L3-resident). From DRAM: copies over >= 64 MB in
  // turn, as a forward pass meets each layer's weights once per batch;
  // >= 256 MB for small batches, as for decode, whose rates follow the
  // stream: the 32 MB L3 held part of 64 MB and 8 tokens ran at 840-890
  // GOP/s "from DRAM" against ~515 in the model.
  const int64_t FromDram = (NTok <= 16 ? int64_t(256) : int64_t(64)) << 20;
  std::printf("\n## Prefill (N=%lld): GOP/s (2*M*K*N per second), weights in cache and from DRAM\n\n",
              (long long)NTok);
  std::printf("| shape | kernel | tile rows x tokens | threads | GOP/s in cache | GOP/s from DRAM |\n"
              "|---|---|---|---|---|---|\n");
  for (const Shape &Sh : Shapes) {
    if (Sh.M > 8192 && NTok > 16) continue; // lm_head: the last token only, but every stream of a server step.
    int64_t MatBytes = Sh.M * weightRowBytes(WT, Sh.K);
    std::vector<float> X(NTok * Sh.K), Y(NTok * Sh.M);
    std::mt19937 Rng(2);
    std::normal_distribution<float> N(0, 1);
    for (float &V : X) V = N(Rng);
    std::vector<uint8_t> Xq(q8RowBytes(Sh.K) * NTok), Xq256(Xq.size());
    referenceQuantize(Sh.K, NTok, X.data(), Xq.data());
    if (Sh.K % 256 == 0)
      referenceQuantize(Sh.K, NTok, X.data(), Xq256.data(), 256);
    // The table's choice for this host first (its next-tile prefetch
    // included), then the variants.
    const MatmulShape Chosen{Sh.M, Sh.K, NTok, WT, chooseLayout(Sh.M, Sh.K, WT, Cpu)};
    SpecList Specs = {{chooseSpec(Chosen, Cpu), true}};
    KernelSpec Wide = Specs.back().first; // With a scale per 256 activations.
    Wide.SuperBlockScales = true;
    if (Wide.validate(Cpu).ok())
      Specs.push_back({Wide, false});
    for (const Variant &V : Prefill)
      Specs.push_back({V.spec(Sh, NTok, WT, Cpu), false});
    for (const auto &[S, FromTable] : selectRuns(Specs)) {
      if (!S.validate(Cpu).ok())
        continue;
      MatmulFn Fn = *Cache.getMatmul(S);
      const void *Act = S.SuperBlockScales ? (const void *)Xq256.data()
                        : S.Activations == AF::Q8 ? (const void *)Xq.data()
                                                  : (const void *)X.data();
      for (unsigned Th : ThreadCounts) {
        runtime::ThreadPool Pool(Th);
        const int Copies = std::min<int64_t>(std::max<int64_t>(2, FromDram / MatBytes + 1), Arena / MatBytes);
        const uint8_t *W = WeightsFor(S.Shape.Layout, Sh.K);
        double Warm = timeCalls(Pool, Fn, W, MatBytes, 1, Act, Y.data(), Sh.M, MinSeconds / 2);
        double Cold = timeCalls(Pool, Fn, W, MatBytes, Copies, Act, Y.data(), Sh.M, MinSeconds / 2);
        const double Ops = 2.0 * Sh.M * Sh.K * NTok / 1e9;
        std::printf("| %s | %s%s | %ux%u | %u | %.1f | %.1f |\n", Sh.Name.c_str(), FromTable ? "table: " : "",
                    label(S).c_str(), S.TileRows, S.TileTokens, Th, Ops / Warm, Ops / Cold);
        std::fflush(stdout);
      }
    }
  }
  runtime::KernelCache::Stats St = Cache.stats();
  std::printf("\n%u kernels compiled in %.2f s (%.1f ms each)\n", St.Compiled, St.Seconds,
              1000 * St.Seconds / std::max(1u, St.Compiled));
  return 0;
}
