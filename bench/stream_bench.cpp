//===- stream_bench.cpp - How one core's DRAM read stream runs fastest ----===//
//
// The access patterns decode could use to read its weights, each timed over
// 64 MB windows taken in turn from a 1 GiB buffer in 2 MB pages (the page
// size the weights use), the variants alternating so that they share the
// host's minutes; prints median / p90 / max GB/s of each:
//  - the read probe's loop (256-bit loads, runtime::measureReadBandwidth),
//    plain and with its page-start prefetch, against the same with 512-bit
//    loads;
//  - several streams a core, far apart, read in turns of 512 bytes (the
//    loop a kernel reading several row groups at once would make);
//  - one software prefetch per 4 KB page, 8 KB ahead, into L1 or L2 (help
//    for the hardware prefetcher at page starts), against the same loop
//    without it;
//  - compute beside the stream: steps of 36 lines, each line feeding 2-8
//    int8 dot products (every second one through a nibble-splitting op or
//    not, with or without every line prefetched), as the K-quant decode and
//    the server's 8-token steps do, from DRAM and in cache (how much
//    compute a core can put beside its stream, and in what form);
//  - the JIT's own decode kernels (K 896 and K 4864, the table's choice),
//    on one thread among the patterns above, then on every thread count
//    against the probe's loop split the same way (64 MB windows);
//  - the whole buffer read as ThreadPool::parallelFor dispatches of a given
//    size (each thread its contiguous share), as decode's ~120 dispatches a
//    token read it, at each thread count.
//
//   stream_bench [--reps 40] [--passes 5] [--threads 1,2]
//
//===----------------------------------------------------------------------===//
#include "lumen/Codegen/KernelABI.h"
#include "lumen/Codegen/KernelSpec.h"
#include "lumen/Runtime/Jit.h"
#include "lumen/Runtime/KernelCache.h"
#include "lumen/Runtime/MemoryProbe.h"
#include "lumen/Runtime/ThreadPool.h"

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <immintrin.h>
#include <functional>
#include <memory>
#include <string>
#include <vector>

ABSL_FLAG(int32_t, reps, 40, "64 MB windows per pattern");
ABSL_FLAG(int32_t, passes, 5, "1 GiB passes per dispatch size");
ABSL_FLAG(std::string, threads, "1,2", "thread counts for the dispatch-size table");

using namespace lumen::runtime;

namespace {

volatile uint64_t Sink;

// The probe's loop: four independent chains of 256-bit loads, plain and
// (the probe's second pattern) with the page start 8 KB ahead prefetched.
void read256(const uint8_t *P, size_t Bytes) { Sink = Sink + streamRead(P, Bytes); }
void read256PageStarts(const uint8_t *P, size_t Bytes) {
  Sink = Sink + streamRead(P, Bytes, ReadPattern::PageStartPrefetch);
}

__attribute__((target("avx512f"), noinline)) void read512(const uint8_t *P, size_t Bytes) {
  __m512i A = _mm512_setzero_si512(), B = A, C = A, D = A;
  for (size_t I = 0; I + 256 <= Bytes; I += 256) {
    A = _mm512_add_epi64(A, _mm512_load_si512(P + I));
    B = _mm512_add_epi64(B, _mm512_load_si512(P + I + 64));
    C = _mm512_add_epi64(C, _mm512_load_si512(P + I + 128));
    D = _mm512_add_epi64(D, _mm512_load_si512(P + I + 192));
  }
  Sink = Sink + _mm512_reduce_add_epi64(_mm512_add_epi64(_mm512_add_epi64(A, B), _mm512_add_epi64(C, D)));
}

// Streams far apart (Bytes / Streams each), 512 bytes from each in turn.
template <int Streams> __attribute__((target("avx2"), noinline)) void readStreams(const uint8_t *P, size_t Bytes) {
  const size_t Len = Bytes / Streams & ~size_t(511);
  __m256i A = _mm256_setzero_si256(), B = A;
  for (size_t I = 0; I < Len; I += 512)
    for (int S = 0; S < Streams; ++S)
      for (size_t J = 0; J < 512; J += 64) {
        const uint8_t *Q = P + S * Len + I + J;
        A = _mm256_add_epi64(A, _mm256_load_si256(reinterpret_cast<const __m256i *>(Q)));
        B = _mm256_add_epi64(B, _mm256_load_si256(reinterpret_cast<const __m256i *>(Q + 32)));
      }
  Sink = Sink + _mm256_extract_epi64(_mm256_add_epi64(A, B), 0);
}

// The probe's loop a 4 KB page a call, with (Hint >= 0) one prefetch per
// page 8 KB ahead first.
template <int Hint> void readPages(const uint8_t *P, size_t Bytes) {
  for (size_t I = 0; I + 4096 <= Bytes; I += 4096) {
    if constexpr (Hint >= 0)
      if (I + 8192 < Bytes)
        __builtin_prefetch(P + I + 8192, 0, Hint);
    Sink = Sink + streamRead(P + I, 4096);
  }
}

// Compute beside the stream: steps of 36 lines (a 16-row Q4_K super-block
// group), each line feeding W int8 dot products into the step's eight sums
// (added to the running total at the step's end), every second product
// through Op (none, a 16-bit shift, an and, or a GFNI byte shift: what
// splitting nibbles takes), one prefetch of the page start 8 KB ahead a
// step (the decode kernels' own) and, with LinesAhead, every line
// prefetched that many lines ahead. How much of the stream survives the
// compute, against the compute's in-cache rate.
enum class NibbleOp { None, Shift16, And, GfniShift };

template <NibbleOp Op>
__attribute__((target("avx512f,avx512bw,gfni"), always_inline)) inline __m512i applyOp(__m512i V) {
  if constexpr (Op == NibbleOp::Shift16)
    return _mm512_srli_epi16(V, 4);
  if constexpr (Op == NibbleOp::And)
    return _mm512_and_si512(V, _mm512_set1_epi8(char(0xF0)));
  if constexpr (Op == NibbleOp::GfniShift) // The bit matrix of x >> 4 in each byte.
    return _mm512_gf2p8affine_epi64_epi8(V, _mm512_set1_epi64(0x1020408000000000), 0);
  return V;
}

template <int W, NibbleOp Op, int LinesAhead = 0>
__attribute__((target("avx512f,avx512bw,avx512vnni,gfni"), noinline)) void computeSteps(const uint8_t *P,
                                                                                      size_t Bytes) {
  constexpr size_t Step = 36 * 64;
  const __m512i Z = _mm512_setzero_si512();
  __m512i X[8]; // Distinct activations, so that no two sums are the same computation.
  for (int K = 0; K < 8; ++K)
    X[K] = _mm512_set1_epi32(0x01020304 * (K + 1));
  __m512i Total = Z;
  for (size_t I = 0; I + Step <= Bytes; I += Step) {
    const uint8_t *Q = P + I;
    __builtin_prefetch(reinterpret_cast<const void *>(uintptr_t(Q + 8192) & ~uintptr_t(4095)), 0, 3);
    __m512i S[8] = {Z, Z, Z, Z, Z, Z, Z, Z};
#pragma GCC unroll 36
    for (int L = 0; L < 36; ++L) {
      if constexpr (LinesAhead > 0)
        __builtin_prefetch(Q + 64 * (L + LinesAhead), 0, 3);
      const __m512i V = _mm512_load_si512(Q + 64 * L);
#pragma GCC unroll 8
      for (int K = 0; K < W; ++K) {
        __m512i &Sum = S[(2 * L + K) & 7];
        Sum = _mm512_dpbusd_epi32(Sum, K % 2 ? applyOp<Op>(V) : V, X[K]);
      }
    }
    for (const __m512i &V : S)
      Total = _mm512_add_epi32(Total, V);
  }
  Sink = Sink + _mm512_reduce_add_epi32(Total);
}

// The JIT's own decode kernel (the table's choice for N = 1) reading a
// window as one M x K matrix in the loader's layout, its rows split among
// the pool's threads as decode splits them: what decode's matmuls stream
// at against the probe's loop, in the same minutes.
struct DecodeKernel {
  std::string Name;
  lumen::codegen::MatmulFn Fn = nullptr;
  int64_t RowBytes = 0, Group = 1;
  std::vector<uint8_t> X;
  std::vector<float> Y;

  void read(ThreadPool &Pool, const uint8_t *P, size_t Bytes) {
    const int64_t M = int64_t(Bytes) / (RowBytes * Group) * Group;
    const int64_t Share = (M / Group + Pool.size() - 1) / Pool.size() * Group;
    Pool.parallelFor(M, Share, [&](int64_t B, int64_t E) { Fn(P, X.data(), Y.data(), B, E); });
    Sink = Sink + static_cast<uint64_t>(Y[0]);
  }
};

absl::StatusOr<DecodeKernel> decodeKernel(KernelCache &Cache, int64_t K, size_t MaxBytes, std::string Name) {
  using namespace lumen::codegen;
  const CpuFeatures &Cpu = Cache.jit().cpu();
  MatmulShape Shape;
  Shape.K = K;
  Shape.M = 4864; // Any multiple of 16: the kernel takes its row range.
  Shape.Layout = chooseLayout(Shape.M, K, WeightType::Q8_0, Cpu);
  absl::StatusOr<MatmulFn> Fn = Cache.getMatmul(chooseSpec(Shape, Cpu));
  if (!Fn.ok())
    return Fn.status();
  DecodeKernel D;
  D.Name = std::move(Name);
  D.Fn = *Fn;
  D.RowBytes = weightRowBytes(WeightType::Q8_0, K);
  D.Group = layoutRowGroup(Shape.Layout);
  D.X.assign(q8RowBytes(K), 0); // Zero scales: no denormals, and the same speed.
  D.Y.assign(MaxBytes / D.RowBytes + 1, 0);
  return D;
}

double seconds(std::chrono::steady_clock::time_point T0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - T0).count();
}

struct Summary {
  double Median, P90, Max;
};
Summary summarize(std::vector<double> V) {
  std::sort(V.begin(), V.end());
  return {V[V.size() / 2], V[V.size() * 9 / 10], V.back()};
}

} // namespace

int main(int argc, char **argv) {
  absl::ParseCommandLine(argc, argv);
  const int32_t Reps = absl::GetFlag(FLAGS_reps), Passes = absl::GetFlag(FLAGS_passes);
  std::vector<unsigned> Threads;
  for (absl::string_view S : absl::StrSplit(absl::GetFlag(FLAGS_threads), ',')) {
    unsigned T;
    if (!absl::SimpleAtoi(S, &T) || T < 1 || T > 256) {
      std::fprintf(stderr, "stream_bench: '%s' is not a thread count\n", std::string(S).c_str());
      return 1;
    }
    Threads.push_back(T);
  }
  if (Reps < 1 || Passes < 1) {
    std::fprintf(stderr, "stream_bench: --reps and --passes must be positive\n");
    return 1;
  }
  if (!__builtin_cpu_supports("avx2")) {
    std::fprintf(stderr, "stream_bench: needs AVX2\n");
    return 1;
  }
  const bool Avx512 = __builtin_cpu_supports("avx512f");
  constexpr size_t kBuffer = size_t(1) << 30, kWindow = size_t(64) << 20;
  LargeBuffer Buf(kBuffer, /*HugePages=*/true);
  if (!Buf.valid()) {
    std::fprintf(stderr, "stream_bench: cannot allocate 1 GiB\n");
    return 1;
  }

  struct Pattern {
    std::string Name;
    std::function<void(const uint8_t *, size_t)> Read;
  };
  std::vector<Pattern> Patterns = {{"one stream, 256-bit loads (the probe's loop)", read256}};
  if (Avx512)
    Patterns.push_back({"one stream, 512-bit loads", read512});
  Patterns.push_back({"2 streams far apart, 512 B turns", readStreams<2>});
  Patterns.push_back({"4 streams far apart, 512 B turns", readStreams<4>});
  Patterns.push_back({"one stream, the probe's loop prefetching page starts 8 KB ahead", read256PageStarts});
  Patterns.push_back({"one stream, the probe's loop a 4 KB page a call", readPages<-1>});
  Patterns.push_back({"the same + prefetcht0 per page, 8 KB ahead", readPages<3>});
  Patterns.push_back({"the same + prefetcht1 per page, 8 KB ahead", readPages<2>});
  const bool Vnni = Avx512 && __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512bw") &&
                    __builtin_cpu_supports("gfni");
  std::vector<Pattern> Compute;
  if (Vnni)
    Compute = {{"2 dot products a line", computeSteps<2, NibbleOp::None>},
               {"2 a line, a 16-bit shift before the second", computeSteps<2, NibbleOp::Shift16>},
               {"2 a line, an and before the second", computeSteps<2, NibbleOp::And>},
               {"4 dot products a line", computeSteps<4, NibbleOp::None>},
               {"4 a line, a 16-bit shift before every second", computeSteps<4, NibbleOp::Shift16>},
               {"4 a line, an and before every second", computeSteps<4, NibbleOp::And>},
               {"4 a line, a GFNI byte shift before every second", computeSteps<4, NibbleOp::GfniShift>},
               {"8 dot products a line", computeSteps<8, NibbleOp::None>},
               {"4 a line, GFNI, every line prefetched 2 KB ahead", computeSteps<4, NibbleOp::GfniShift, 32>},
               {"4 a line, GFNI, every line prefetched 4 KB ahead", computeSteps<4, NibbleOp::GfniShift, 64>},
               {"4 a line, GFNI, every line prefetched 8 KB ahead", computeSteps<4, NibbleOp::GfniShift, 128>}};
  for (const Pattern &C : Compute)
    Patterns.push_back({"compute beside the stream: " + C.Name, C.Read});

  // The decode kernels of gate/up and lm_head (K 896) and of down (K 4864).
  std::vector<DecodeKernel> Kernels;
  auto J = Jit::create();
  std::unique_ptr<KernelCache> Cache;
  if (J.ok())
    Cache = std::make_unique<KernelCache>(**J);
  else
    std::fprintf(stderr, "stream_bench: no JIT (%s); no kernel rows\n", std::string(J.status().message()).c_str());
  for (auto [K, Name] : {std::pair{int64_t(896), "the JIT decode kernel, K 896 (gate/up, lm_head)"},
                         std::pair{int64_t(4864), "the JIT decode kernel, K 4864 (down)"}}) {
    if (!Cache)
      break;
    absl::StatusOr<DecodeKernel> D = decodeKernel(*Cache, K, kWindow, Name);
    if (!D.ok()) {
      std::fprintf(stderr, "stream_bench: %s\n", std::string(D.status().message()).c_str());
      return 1;
    }
    Kernels.push_back(std::move(*D));
  }
  ThreadPool Single(1);
  for (DecodeKernel &D : Kernels)
    Patterns.push_back({D.Name, [&](const uint8_t *P, size_t Bytes) { D.read(Single, P, Bytes); }});

  std::printf("## One thread, 64 MB windows of a 1 GiB buffer in 2 MB pages (%d each, alternating)\n\n"
              "| pattern | median GB/s | p90 | max |\n|---|---|---|---|\n",
              Reps);
  std::vector<std::vector<double>> Rates(Patterns.size());
  size_t Window = 0; // Each read a window not read just before (L3 is 32 MB).
  for (int32_t R = 0; R < Reps; ++R)
    for (size_t P = 0; P < Patterns.size(); ++P) {
      Window = (Window + 1) % (kBuffer / kWindow);
      auto T0 = std::chrono::steady_clock::now();
      Patterns[P].Read(Buf.data() + Window * kWindow, kWindow);
      Rates[P].push_back(kWindow / seconds(T0) / 1e9);
    }
  for (size_t P = 0; P < Patterns.size(); ++P) {
    Summary S = summarize(Rates[P]);
    std::printf("| %s | %.1f | %.1f | %.1f |\n", Patterns[P].Name.c_str(), S.Median, S.P90, S.Max);
  }

  if (!Compute.empty()) {
    // The same loops over a 1 MB window read again and again (L2): their
    // compute rate, for the DRAM rows above.
    std::printf("\n## Compute beside the stream: the same loops in cache (a 1 MB window read %d times)\n\n"
                "| loop | in-cache GB/s |\n|---|---|\n", Reps);
    constexpr size_t kCached = size_t(1) << 20;
    for (const Pattern &C : Compute) {
      double Best = 0;
      for (int32_t R = 0; R < Reps; ++R) {
        auto T0 = std::chrono::steady_clock::now();
        C.Read(Buf.data(), kCached);
        Best = std::max(Best, kCached / seconds(T0) / 1e9);
      }
      std::printf("| %s | %.1f |\n", C.Name.c_str(), Best);
    }
  }

  if (!Kernels.empty()) {
    std::printf("\n## 64 MB windows on every thread: the probe's loop (a contiguous share each) against the "
                "decode kernels (rows split as decode splits them), alternating, %d each\n\n"
                "| threads | reader | median GB/s | p90 | max |\n|---|---|---|---|---|\n", Reps);
    for (unsigned T : Threads) {
      ThreadPool Pool(T);
      std::vector<std::vector<double>> V(Kernels.size() + 1);
      for (int32_t R = 0; R < Reps; ++R)
        for (size_t I = 0; I <= Kernels.size(); ++I) {
          Window = (Window + 1) % (kBuffer / kWindow);
          const uint8_t *P = Buf.data() + Window * kWindow;
          const size_t Share = kWindow / T & ~size_t(127);
          auto T0 = std::chrono::steady_clock::now();
          if (I == 0)
            Pool.parallelFor(T, 1, [&](int64_t B, int64_t) { read256(P + B * Share, Share); });
          else
            Kernels[I - 1].read(Pool, P, kWindow);
          V[I].push_back(kWindow / seconds(T0) / 1e9);
        }
      for (size_t I = 0; I <= Kernels.size(); ++I) {
        Summary S = summarize(V[I]);
        std::printf("| %u | %s | %.1f | %.1f | %.1f |\n", T, I == 0 ? "the probe's loop" : Kernels[I - 1].Name.c_str(),
                    S.Median, S.P90, S.Max);
      }
    }
  }

  std::printf("\n## The 1 GiB buffer read as parallelFor dispatches (each thread its contiguous share; "
              "%d passes of each size, alternating)\n\n| threads | bytes a dispatch | median GB/s | max |\n"
              "|---|---|---|---|\n", Passes);
  const std::vector<size_t> Sizes = {size_t(128) << 10, size_t(512) << 10, size_t(2) << 20, size_t(8) << 20,
                                     size_t(64) << 20, kBuffer};
  for (unsigned T : Threads) {
    ThreadPool Pool(T);
    std::vector<std::vector<double>> V(Sizes.size());
    for (int Pass = 0; Pass < Passes; ++Pass)
      for (size_t S = 0; S < Sizes.size(); ++S) {
        const size_t Dispatch = Sizes[S], Share = Dispatch / T & ~size_t(127);
        auto T0 = std::chrono::steady_clock::now();
        for (size_t Off = 0; Off + Dispatch <= kBuffer; Off += Dispatch)
          Pool.parallelFor(T, 1, [&](int64_t B, int64_t E) {
            for (int64_t I = B; I < E; ++I)
              read256(Buf.data() + Off + I * Share, Share);
          });
        V[S].push_back(kBuffer / seconds(T0) / 1e9);
      }
    for (size_t S = 0; S < Sizes.size(); ++S) {
      Summary Sum = summarize(V[S]);
      std::printf("| %u | %zu KB | %.1f | %.1f |\n", T, Sizes[S] >> 10, Sum.Median, Sum.Max);
    }
  }
  return 0;
}
