//===- Tuner.cpp - Measured kernel choices ---------------------------------===//
#include "lumen/Runtime/Tuner.h"

#include "lumen/Codegen/KernelABI.h"
#include "lumen/Codegen/Reference.h"
#include "lumen/Codegen/TuningSpace.h"
#include "lumen/GGUF/Quantize.h"
#include "lumen/Runtime/MemoryProbe.h"

#include "absl/strings/str_format.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <random>

namespace lumen::runtime {

using namespace codegen;

namespace {

double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

double median(std::vector<double> V) {
  std::sort(V.begin(), V.end());
  return V.size() % 2 ? V[V.size() / 2] : (V[V.size() / 2 - 1] + V[V.size() / 2]) / 2;
}

/// Slowest over fastest, minus one, leaving out the slowest round of five
/// or more: one pass the host disturbed is not the spread.
double spread(std::vector<double> V) {
  std::sort(V.begin(), V.end());
  if (V.size() >= 5)
    V.pop_back();
  return V.back() / V.front() - 1;
}

std::string describeLayoutAndChoices(const KernelSpec &S) {
  return absl::StrFormat("%s %s", weightLayoutName(S.Shape.Layout), describeChoices(S));
}

} // namespace

void fillSampleWeights(uint8_t *P, size_t Bytes, WeightType W, WeightLayout L, int64_t K) {
  // 16 rows: a whole number of row groups of every layout, so a matrix of
  // any M (a multiple of its group) starting at any copy reads whole groups.
  constexpr int64_t Rows = 16;
  const int64_t RowBytes = weightRowBytes(W, K);
  std::vector<uint8_t> File(Rows * RowBytes), Unit(File.size());
  std::vector<float> X(K);
  std::mt19937 Rng(7);
  std::normal_distribution<float> N(0, 0.02f);
  for (int64_t R = 0; R < Rows; ++R) {
    for (float &V : X)
      V = N(Rng);
    gguf::quantizeRow(tensorType(W), X.data(), File.data() + R * RowBytes, K);
  }
  repackWeights(W, File.data(), Unit.data(), L, Rows, K, 0, Rows);
  for (size_t At = 0; At < Bytes; At += Unit.size())
    std::memcpy(P + At, Unit.data(), std::min(Unit.size(), Bytes - At));
}

/// Copies of one matrix's weights, back to back.
struct Tuner::Arena {
  WeightType Type;
  WeightLayout Layout;
  int64_t K;
  std::unique_ptr<LargeBuffer> Buffer;
};

/// A compiled candidate with its weights, activations and output.
struct Tuner::Timed {
  KernelSpec Spec;
  MatmulFn Fn = nullptr;
  const uint8_t *W = nullptr;
  int64_t Copies = 1, MatBytes = 0;
  std::shared_ptr<std::vector<uint8_t>> X; // Q8 rows or floats, N tokens.
  std::shared_ptr<std::vector<float>> Y;
};

Tuner::Tuner(KernelCache &Cache, TunerOptions Options)
    : Cache(Cache), Options(Options), Pool(std::max(1u, Options.Threads)) {
  this->Options.Rounds = std::max(3u, Options.Rounds);
}

Tuner::~Tuner() = default;

const uint8_t *Tuner::weightsFor(const MatmulShape &Sh, int64_t &Copies) {
  const int64_t MatBytes = Sh.M * weightRowBytes(Sh.Weights, Sh.K);
  const size_t Want = Sh.N == 1 ? Options.DecodeBytes : Options.PrefillBytes;
  Copies = std::max<int64_t>(2, (Want + MatBytes - 1) / MatBytes);
  const size_t Bytes = size_t(Copies) * MatBytes;
  for (auto It = Arenas.begin(); It != Arenas.end(); ++It) {
    Arena &A = **It;
    if (A.Type == Sh.Weights && A.Layout == Sh.Layout && A.K == Sh.K && A.Buffer->size() >= Bytes) {
      std::rotate(Arenas.begin(), It, It + 1); // Most recently used first.
      return Arenas.front()->Buffer->data();
    }
  }
  // At most two sets of copies live (a layout comparison needs both).
  if (Arenas.size() >= 2)
    Arenas.pop_back();
  auto A = std::make_unique<Arena>();
  A->Type = Sh.Weights;
  A->Layout = Sh.Layout;
  A->K = Sh.K;
  // Room for the decode copies too, so prefill and decode share one fill.
  const size_t Size = std::max(Bytes, size_t(std::max<int64_t>(2, (Options.DecodeBytes + MatBytes - 1) / MatBytes)) *
                                          MatBytes);
  A->Buffer = std::make_unique<LargeBuffer>(Size, Options.HugePages, /*ZeroFill=*/false);
  if (!A->Buffer->valid())
    return nullptr;
  fillSampleWeights(A->Buffer->data(), Size, Sh.Weights, Sh.Layout, Sh.K);
  Arenas.insert(Arenas.begin(), std::move(A));
  return Arenas.front()->Buffer->data();
}

absl::StatusOr<Tuner::Timed> Tuner::prepare(const KernelSpec &Spec) {
  absl::StatusOr<MatmulFn> Fn = Cache.getMatmul(Spec);
  if (!Fn.ok())
    return Fn.status();
  const MatmulShape &Sh = Spec.Shape;
  Timed T;
  T.Spec = Spec;
  T.Fn = *Fn;
  T.MatBytes = Sh.M * weightRowBytes(Sh.Weights, Sh.K);
  T.W = weightsFor(Sh, T.Copies);
  if (!T.W)
    return absl::ResourceExhaustedError(
        absl::StrFormat("tuner: cannot allocate %d MB of weight copies", T.Copies * T.MatBytes >> 20));
  std::vector<float> X(Sh.N * Sh.K);
  std::mt19937 Rng(11);
  std::normal_distribution<float> Normal(0, 1);
  for (float &V : X)
    V = Normal(Rng);
  if (Spec.Activations == ActivationFormat::Q8) {
    T.X = std::make_shared<std::vector<uint8_t>>(Sh.N * q8RowBytes(Sh.K));
    referenceQuantize(Sh.K, Sh.N, X.data(), T.X->data());
  } else {
    T.X = std::make_shared<std::vector<uint8_t>>(X.size() * sizeof(float));
    std::memcpy(T.X->data(), X.data(), T.X->size());
  }
  T.Y = std::make_shared<std::vector<float>>(Sh.N * Sh.M);
  return T;
}

double Tuner::pass(const Timed &T) {
  const int64_t M = T.Spec.Shape.M;
  const double Start = now();
  for (int64_t C = 0; C < T.Copies; ++C) {
    const uint8_t *W = T.W + C * T.MatBytes;
    // As the runtime splits rows: a contiguous share a thread, then help.
    Pool.parallelForShares(M, kMaxRowGroup, [&](int64_t B, int64_t E) { T.Fn(W, T.X->data(), T.Y->data(), B, E); });
  }
  return (now() - Start) / T.Copies;
}

PairedComparison comparePaired(const std::function<double()> &A, const std::function<double()> &B,
                               unsigned Rounds) {
  std::vector<double> TA, TB;
  for (unsigned R = 0; R < std::max(3u, Rounds); ++R) {
    // A B, B A, A B, ...: a slow spell of the host falls on both.
    if (R % 2 == 0) {
      TA.push_back(A());
      TB.push_back(B());
    } else {
      TB.push_back(B());
      TA.push_back(A());
    }
    // Pruning: two clear losses end it.
    if (R == 1 && TB[0] > 1.03 * TA[0] && TB[1] > 1.03 * TA[1])
      break;
  }
  PairedComparison O;
  O.Rounds = static_cast<unsigned>(TA.size());
  O.ASeconds = median(TA);
  O.BSeconds = median(TB);
  O.Gain = O.ASeconds / O.BSeconds;
  O.Noise = std::max({spread(TA), spread(TB), 0.01});
  size_t Lost = 0;
  for (size_t R = 0; R < TA.size(); ++R)
    Lost += TB[R] >= TA[R];
  // Every round, or all but one of five or more.
  O.BWins = TA.size() >= 3 && Lost <= (TA.size() >= 5 ? 1u : 0u) && O.Gain - 1 > O.Noise;
  return O;
}

PairedComparison Tuner::compare(const Timed &A, const Timed &B, const char *Why) {
  pass(A); // Warm code, TLBs and the pool.
  pass(B);
  PairedComparison O = comparePaired([&] { return pass(A); }, [&] { return pass(B); }, Options.Rounds);
  if (Options.Trace)
    Options.Trace(absl::StrFormat("%s %s %s: %s -> %s: %.3fx (noise %.1f %%, %d rounds) %s", Why,
                                  weightTypeName(A.Spec.Shape.Weights),
                                  absl::StrFormat("%dx%d n%d", A.Spec.Shape.K, A.Spec.Shape.M, A.Spec.Shape.N),
                                  describeLayoutAndChoices(A.Spec), describeLayoutAndChoices(B.Spec), O.Gain,
                                  100 * O.Noise, O.Rounds, O.BWins ? "WINS" : "no"));
  return O;
}

absl::Status Tuner::checkReplay(const Timed &T) {
  const KernelSpec &S = T.Spec;
  const MatmulShape &Sh = S.Shape;
  // The first rows (a whole tile and a partial one) and the last ones.
  const int64_t Group = layoutRowGroup(Sh.Layout);
  const int64_t Span = std::min<int64_t>(Sh.M, (S.TileRows * 3 / 2 + Group - 1) / Group * Group + Group);
  std::vector<float> Expected(Sh.N * Sh.M), Got(Sh.N * Sh.M);
  for (auto [B, E] : {std::pair<int64_t, int64_t>{0, Span}, {(Sh.M - Span) / Group * Group, Sh.M}}) {
    T.Fn(T.W, T.X->data(), Got.data(), B, E);
    replayMatmulRows(S, T.W, T.X->data(), Expected.data(), B, E);
    for (int64_t Tok = 0; Tok < Sh.N; ++Tok)
      if (std::memcmp(&Got[Tok * Sh.M + B], &Expected[Tok * Sh.M + B], (E - B) * sizeof(float)) != 0)
        return absl::InternalError(absl::StrFormat(
            "kernel %s differs from its reference replay (token %d, rows %d..%d): not used", S.functionName(), Tok,
            B, E));
  }
  return absl::OkStatus();
}

absl::StatusOr<KernelTuning> Tuner::tuneKernel(const MatmulShape &Shape, double Seconds) {
  const double Deadline = now() + Seconds;
  const CpuFeatures &Cpu = Cache.jit().cpu();
  KernelTuning Result;
  Result.Table = chooseSpec(Shape, Cpu);
  absl::StatusOr<Timed> Table = prepare(Result.Table);
  if (!Table.ok())
    return Table.status();
  Timed Best = *Table;
  // Coordinate descent: each axis in turn from the best so far; a second
  // sweep only if the first moved.
  for (int Sweep = 0; Sweep < 2 && !Result.OutOfTime; ++Sweep) {
    bool Moved = false;
    for (TuningAxis Axis : tuningAxes(Shape.N)) {
      std::optional<Timed> Winner;
      double WinnerGain = 1;
      for (const KernelSpec &C : candidatesAlong(Best.Spec, Axis, Cpu)) {
        if (now() > Deadline) {
          Result.OutOfTime = true;
          break;
        }
        absl::StatusOr<Timed> T = prepare(C);
        if (!T.ok())
          return T.status();
        ++Result.Measured;
        PairedComparison O = compare(Best, *T, tuningAxisName(Axis));
        if (O.BWins && O.Gain > WinnerGain) {
          Winner = *T;
          WinnerGain = O.Gain;
        }
      }
      if (Winner) {
        if (absl::Status S = checkReplay(*Winner); !S.ok())
          return S;
        Best = *Winner;
        Moved = true;
      }
      if (Result.OutOfTime)
        break;
    }
    if (!Moved)
      break;
  }
  // The winner against the table's choice, head to head: kept only if it
  // still wins beyond the noise (a chain of small wins can be noise).
  Result.Tuned = Result.Table;
  if (!(Best.Spec == Result.Table)) {
    PairedComparison O = compare(*Table, Best, "final");
    Result.TableSeconds = O.ASeconds;
    Result.Noise = O.Noise;
    if (O.BWins) {
      Result.Tuned = Best.Spec;
      Result.TunedSeconds = O.BSeconds;
      Result.Gain = O.Gain;
      return Result;
    }
  } else {
    Result.TableSeconds = pass(*Table);
  }
  Result.TunedSeconds = Result.TableSeconds;
  return Result;
}

absl::StatusOr<LayoutTuning> Tuner::tuneLayout(WeightType W, int64_t M, int64_t K, double Seconds) {
  const double Deadline = now() + Seconds;
  const CpuFeatures &Cpu = Cache.jit().cpu();
  LayoutTuning Result;
  Result.Table = Result.Chosen = chooseLayout(M, K, W, Cpu);
  auto Timer = [&](WeightLayout L, int64_t N) { return prepare(chooseSpec({M, K, N, W, L}, Cpu)); };
  for (WeightLayout L : {WeightLayout::Interleaved16, WeightLayout::Interleaved8, WeightLayout::Rows}) {
    if (L == Result.Table || !layoutSupports(L, W, M, K) || (L == WeightLayout::Interleaved16 && !Cpu.VNNI))
      continue;
    if (now() > Deadline)
      break;
    absl::StatusOr<Timed> TableDecode = Timer(Result.Table, 1), Decode = Timer(L, 1);
    if (!TableDecode.ok() || !Decode.ok())
      return TableDecode.ok() ? Decode.status() : TableDecode.status();
    ++Result.Measured;
    PairedComparison O = compare(*TableDecode, *Decode, "layout");
    if (!O.BWins || O.Gain <= Result.Gain)
      continue;
    // Decode won; the prompt must not get slower for it.
    absl::StatusOr<Timed> TablePrefill = Timer(Result.Table, Options.PrefillTokens),
                          Prefill = Timer(L, Options.PrefillTokens);
    if (!TablePrefill.ok() || !Prefill.ok())
      return TablePrefill.ok() ? Prefill.status() : TablePrefill.status();
    if (compare(*Prefill, *TablePrefill, "layout").BWins)
      continue;
    Result.Chosen = L;
    Result.Gain = O.Gain;
  }
  return Result;
}

std::string describeChoices(const KernelSpec &S) {
  std::string Out = absl::StrFormat("v%d a%d %s %dx%d", S.VectorBits, S.Accumulators,
                                    S.Activations == ActivationFormat::F32 ? "f32" : S.VNNI ? "vnni" : "avx2",
                                    S.TileRows, S.TileTokens);
  if (S.PrefetchBytes)
    absl::StrAppendFormat(&Out, " pf%d%s", S.PrefetchBytes, prefetchPatternSuffix(S.Prefetch));
  if (S.Paced)
    Out += " paced";
  return Out;
}

absl::StatusOr<std::vector<TuneReport>>
tuneTargets(KernelCache &Cache, const std::vector<TuneTarget> &Targets, const std::vector<unsigned> &Threads,
            double BudgetSeconds, const TunerOptions &Base, Wisdom &Wis,
            const std::function<absl::Status(size_t, size_t, const std::string &)> &Progress) {
  // Jobs share the budget by weight (in tenths of a decode search): a
  // layout comparison is a few timings, a kernel's search many, a prefill
  // search's timings the longest.
  struct Job {
    size_t Target;
    unsigned Threads;
    enum Kind { Layout, Decode, Prefill } What;
    unsigned Weight;
  };
  std::vector<Job> Jobs;
  for (size_t TI = 0; TI < Threads.size(); ++TI)
    for (size_t I = 0; I < Targets.size(); ++I) {
      if (TI == 0)
        Jobs.push_back({I, Threads[TI], Job::Layout, 3});
      Jobs.push_back({I, Threads[TI], Job::Decode, 10});
      if (Targets[I].Prefill)
        Jobs.push_back({I, Threads[TI], Job::Prefill, 15}); // Its passes are longer.
    }
  size_t WeightAll = 0;
  for (const Job &J : Jobs)
    WeightAll += J.Weight;
  size_t WeightLeft = WeightAll;
  const double Deadline = now() + BudgetSeconds;
  const CpuFeatures &Cpu = Cache.jit().cpu();
  std::vector<TuneReport> Report;
  std::unique_ptr<Tuner> T;
  for (size_t JI = 0; JI < Jobs.size(); ++JI) {
    const Job &J = Jobs[JI];
    const TuneTarget &Target = Targets[J.Target];
    const char *What = J.What == Job::Layout ? "layout" : J.What == Job::Decode ? "decode" : "prefill";
    if (Progress)
      if (absl::Status S = Progress(WeightAll - WeightLeft, WeightAll,
                                    absl::StrFormat("%s %s %dx%d, %d thread(s)", Target.Name, What, Target.K,
                                                    Target.M, J.Threads));
          !S.ok())
        return S;
    if (!T || T->options().Threads != J.Threads) {
      TunerOptions O = Base;
      O.Threads = J.Threads;
      T.reset(); // Free the previous tuner's weight copies first.
      T = std::make_unique<Tuner>(Cache, O);
    }
    const double Share = std::max(0.0, Deadline - now()) * J.Weight / double(WeightLeft);
    WeightLeft -= J.Weight;
    TuneReport Row;
    Row.Name = Target.Name;
    Row.What = What;
    Row.Type = Target.Type;
    Row.M = Target.M;
    Row.K = Target.K;
    Row.Threads = J.Threads;
    if (J.What == Job::Layout) {
      absl::StatusOr<LayoutTuning> L = T->tuneLayout(Target.Type, Target.M, Target.K, Share);
      if (!L.ok())
        return L.status();
      if (L->Measured)
        Wis.set(WisdomLayout{Target.Type, Target.M, Target.K, L->Chosen, L->Gain});
      Row.Table = weightLayoutName(L->Table);
      Row.Tuned = weightLayoutName(L->Chosen);
      Row.Gain = L->Gain;
      Row.Measured = L->Measured;
    } else {
      const int64_t N = J.What == Job::Decode ? 1 : Base.PrefillTokens;
      const MatmulShape Shape{Target.M, Target.K, N, Target.Type,
                              chooseLayout(Target.M, Target.K, Target.Type, Cpu, &Wis)};
      absl::StatusOr<KernelTuning> K = T->tuneKernel(Shape, Share);
      if (!K.ok())
        return K.status();
      // A search the budget ended before it measured anything confirms
      // nothing: no entry (an older one stays).
      if (K->Measured)
        Wis.set(WisdomKernel::of(K->Tuned, J.Threads, K->Gain));
      Row.Table = describeChoices(K->Table);
      Row.Tuned = describeChoices(K->Tuned);
      Row.Gain = K->Gain;
      Row.Measured = K->Measured;
      Row.OutOfTime = K->OutOfTime;
    }
    Report.push_back(std::move(Row));
  }
  if (Progress)
    if (absl::Status S = Progress(WeightAll, WeightAll, "done"); !S.ok())
      return S;
  return Report;
}

} // namespace lumen::runtime
