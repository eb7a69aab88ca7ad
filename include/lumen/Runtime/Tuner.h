//===- lumen/Runtime/Tuner.h - Measured kernel choices -----------*- C++ -*-===//
//
// The tuner measures this machine instead of trusting the kernel table
// (ATLAS's and FFTW's approach). For one matmul shape it starts from the
// table's spec and walks the axes of codegen/TuningSpace.h one at a time
// (coordinate descent): every neighbour along an axis is compiled and timed
// against the current best under the conditions the runtime calls it in -
// decode kernels stream their weights from DRAM (copies of the matrix far
// larger than any cache, as a forward pass meets each layer's weights
// once), prefill kernels read copies beyond the L3 - on the thread count
// and row split the runtime uses. A candidate replaces the best only if it
// wins by more than the measured noise (below) and computes bit for bit
// what the reference replay says for its spec. At the end the winner is
// timed against the table's choice once more, and the table's choice is
// kept unless the winner beats it by more than the noise.
//
// Noise: every comparison runs paired rounds (5 by default), A then B then
// B then A, ..., so that a host that slows down for a while slows both. B
// wins only if it is faster in every round (all but one of five or more)
// and its median time beats A's by more than A's and B's own round-to-round
// spread (slowest / fastest round - 1, the slowest of five or more left
// out: one disturbed pass), and by at least 1 %. Two clear losses (over 3 %)
// in the first two rounds end a comparison early.
//
//===----------------------------------------------------------------------===//
#ifndef LUMEN_RUNTIME_TUNER_H
#define LUMEN_RUNTIME_TUNER_H

#include "lumen/Export.h"

#include "lumen/Codegen/KernelSpec.h"
#include "lumen/Codegen/Wisdom.h"
#include "lumen/Runtime/KernelCache.h"
#include "lumen/Runtime/ThreadPool.h"

#include "absl/status/statusor.h"

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace lumen::runtime {

class LargeBuffer;

struct LUMEN_API TunerOptions {
  unsigned Threads = 1;             // What the kernels will run with.
  int64_t PrefillTokens = 64;       // N of the prefill kernels timed (the runtime's prompt batch).
  unsigned Rounds = 5;              // Paired rounds a comparison (at least 3).
  size_t DecodeBytes = size_t(256) << 20;  // Weight copies a decode pass streams.
  size_t PrefillBytes = size_t(48) << 20;  // ... a prefill pass reads.
  bool HugePages = true;            // Weight copies in 2 MB pages, as the loader's.
  /// Receives a line per comparison (candidate, speed-up, noise, verdict).
  std::function<void(const std::string &)> Trace;
};

/// What tuning one kernel found.
struct LUMEN_API KernelTuning {
  codegen::KernelSpec Table, Tuned; // Tuned == Table when nothing won.
  double TableSeconds = 0, TunedSeconds = 0; // Median seconds a call, in the last comparison.
  double Gain = 1;           // TableSeconds / TunedSeconds, 1 when the table's choice was kept.
  double Noise = 0;          // The spread the final win had to exceed.
  unsigned Measured = 0;     // Candidates compiled and timed.
  bool OutOfTime = false;    // The budget ended the search early.
};

/// What comparing the weight layouts of one matrix found.
struct LUMEN_API LayoutTuning {
  codegen::WeightLayout Table = codegen::WeightLayout::Rows, Chosen = codegen::WeightLayout::Rows;
  double Gain = 1; // Decode speed-up of Chosen over Table's layout (table kernels on each).
  unsigned Measured = 0; // Other layouts compared.
};

/// What comparing two alternatives in paired rounds found.
struct LUMEN_API PairedComparison {
  bool BWins = false;        // B beats A beyond the noise (the rule above).
  double Gain = 1;           // A's median seconds over B's.
  double Noise = 0;          // The spread B's gain had to exceed.
  double ASeconds = 0, BSeconds = 0; // Medians.
  unsigned Rounds = 0;       // Paired rounds run (2 when pruned).
};

/// Times A and B (each call runs one and returns its seconds) in Rounds
/// paired rounds by the rule above.
LUMEN_API PairedComparison comparePaired(const std::function<double()> &A, const std::function<double()> &B,
                                         unsigned Rounds);

class LUMEN_API Tuner {
public:
  Tuner(KernelCache &Cache, TunerOptions Options);
  ~Tuner();

  /// Tunes the kernel for Shape (in its layout) within Seconds (the search
  /// stops early, keeping its best so far, when they run out).
  absl::StatusOr<KernelTuning> tuneKernel(const codegen::MatmulShape &Shape, double Seconds);
  /// Compares the layouts an M x K matrix of type W can take, each with its
  /// table kernel, decode and prefill; another layout than the table's is
  /// chosen only if it wins both beyond the noise.
  absl::StatusOr<LayoutTuning> tuneLayout(codegen::WeightType W, int64_t M, int64_t K, double Seconds);

  const TunerOptions &options() const { return Options; }

private:
  struct Arena;
  struct Timed;
  absl::StatusOr<Timed> prepare(const codegen::KernelSpec &Spec);
  const uint8_t *weightsFor(const codegen::MatmulShape &Shape, int64_t &Copies);
  double pass(const Timed &T);
  /// Paired rounds of two candidates' passes (comparePaired), traced.
  PairedComparison compare(const Timed &A, const Timed &B, const char *Why);
  absl::Status checkReplay(const Timed &T);

  KernelCache &Cache;
  TunerOptions Options;
  ThreadPool Pool;
  std::vector<std::unique_ptr<Arena>> Arenas; // Weight copies by type, layout and K.
};

/// One matrix shape a model multiplies by.
struct LUMEN_API TuneTarget {
  std::string Name; // For people: "ffn_gate/ffn_up".
  codegen::WeightType Type = codegen::WeightType::Q8_0;
  int64_t M = 0, K = 0;
  bool Prefill = true; // Also tune its prefill kernel (the output matrix: decode only).
};

/// One line of the summary.
struct LUMEN_API TuneReport {
  std::string Name, What; // What: "layout", "decode", "prefill".
  codegen::WeightType Type = codegen::WeightType::Q8_0;
  int64_t M = 0, K = 0;
  unsigned Threads = 0;
  std::string Table, Tuned; // Choices, described briefly.
  double Gain = 1;
  unsigned Measured = 0; // Candidates timed.
  bool OutOfTime = false;
};

/// Tunes every target (its layout, then its decode and prefill kernels in
/// that layout) for each thread count within BudgetSeconds in all, storing
/// the results in Wis (replacing older entries). Progress gets (work done,
/// all the work, what is being tuned) before each job, the work counted in
/// the jobs' shares of the budget (so the share done is the time's); returning
/// an error stops.
LUMEN_API absl::StatusOr<std::vector<TuneReport>>
tuneTargets(KernelCache &Cache, const std::vector<TuneTarget> &Targets, const std::vector<unsigned> &Threads,
            double BudgetSeconds, const TunerOptions &Base, codegen::Wisdom &Wis,
            const std::function<absl::Status(size_t, size_t, const std::string &)> &Progress = {});

/// Fills Bytes at P with copies of 16 rows of random normal weights quantized
/// to W as a file holds them and repacked to L as the loader does: what the
/// tuner and bench/kernel_bench time kernels on (the weights' values do not
/// change a kernel's speed; their layout and the bytes streamed do).
LUMEN_API void fillSampleWeights(uint8_t *P, size_t Bytes, codegen::WeightType W, codegen::WeightLayout L,
                                 int64_t K);

/// "v512 a1 vnni 16x1 pf8192pg paced": a spec's choices, briefly.
LUMEN_API std::string describeChoices(const codegen::KernelSpec &S);

} // namespace lumen::runtime

#endif
