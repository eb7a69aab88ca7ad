//===- BenchCommand.cpp - lumen-jit bench ----------------------------------===//
//
// In the manner of llama-bench: for each thread count, pp (a prompt of P
// random tokens in batches, from an empty context) and tg (N tokens decoded
// one at a time from an empty context), a warm-up run and then R timed
// repetitions, mean +- sd tokens/s. Beside each row: the weight bytes read
// per second and their share of this machine's read bandwidth measured at
// the same thread count (the mean of probes taken before, between and after
// the repetitions), and for pp the int8 GOP/s (2 x weights x tokens).
// --parallel P adds tgN xP: P sequences decoding together, one token of
// each a step (a server's continuous-batching step, as llama-batched-bench
// times it), aggregate tokens/s; the weights are read once a step.
//
//===----------------------------------------------------------------------===//
#include "Commands.h"
#include "Flags.h"
#include "ModelSetup.h"

#include "lumen/Model/BatchedSession.h"
#include "lumen/Model/Session.h"
#include "lumen/Runtime/MemoryProbe.h"
#include "lumen/Runtime/ThreadPool.h"

#include "absl/flags/flag.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"

#include "nlohmann/json.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <functional>
#include <random>
#include <thread>
#include <tuple>

namespace lumen::tool {

namespace {

double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

struct Row {
  unsigned Threads;
  std::string Test;
  double Mean, Sd;          // tokens/s
  double WeightGBs;         // weight bytes streamed per second
  double ProbeGBs;          // measured read bandwidth at this thread count
  double GOPs;              // pp only
};

double matrixBytes(const model::Matrix &W) { return double(W.Rows) * codegen::weightRowBytes(W.Type, W.Cols); }

/// Bytes of the layers' matrices, which every forward pass (every batch of
/// a prompt) reads once.
double layerBytes(const model::TransformerModel &M) {
  double B = 0;
  for (const model::LayerWeights &L : M.Layers)
    for (const model::Matrix *W : {&L.Q, &L.K, &L.V, &L.O, &L.Gate, &L.Up, &L.Down})
      B += matrixBytes(*W);
  return B;
}

double multiplyAdds(const model::TransformerModel &M) {
  double P = 0;
  for (const model::LayerWeights &L : M.Layers)
    for (const model::Matrix *W : {&L.Q, &L.K, &L.V, &L.O, &L.Gate, &L.Up, &L.Down})
      P += double(W->Rows) * W->Cols;
  return P;
}

/// Parallel sequences over M, each with Options' context, or none (null)
/// when Parallel is 1.
absl::StatusOr<std::unique_ptr<model::BatchedSession>> createBatched(const model::TransformerModel &M,
                                                                     runtime::KernelCache &Cache,
                                                                     model::SessionOptions Options, int32_t Parallel) {
  if (Parallel <= 1)
    return nullptr;
  Options.PrefillBatch = std::max<int64_t>(Options.PrefillBatch, Parallel);
  absl::StatusOr<std::unique_ptr<model::BatchedSession>> S = model::createJitBatchedSession(M, Cache, Options, Parallel);
  if (S.ok())
    if (absl::Status St = (*S)->prepare(); !St.ok())
      return St;
  return S;
}

/// Count steps of every sequence of S, each decoding one token of Prompt.
absl::Status decodeTogether(model::BatchedSession &S, const std::vector<int32_t> &Prompt, int64_t Count,
                            std::vector<float> &Logits) {
  std::vector<model::SequenceInput> Step(S.sequences());
  for (int64_t I = 0; I < Count; ++I) {
    for (int32_t Seq = 0; Seq < S.sequences(); ++Seq)
      Step[Seq] = {Seq, std::span<const int32_t>(&Prompt[(I + 7 * Seq) % Prompt.size()], 1), true};
    if (absl::Status St = S.step(Step, Logits); !St.ok())
      return St;
  }
  return absl::OkStatus();
}

std::pair<double, double> meanSd(const std::vector<double> &X) {
  double Mean = std::accumulate(X.begin(), X.end(), 0.0) / X.size(), Var = 0;
  for (double V : X) Var += (V - Mean) * (V - Mean);
  return {Mean, X.size() > 1 ? std::sqrt(Var / (X.size() - 1)) : 0.0};
}

/// A markdown table to Out: stdout beside the md table, stderr beside csv
/// or json (which must stay parseable).
void printProfile(FILE *Out, const char *What, const std::vector<std::pair<std::string, double>> &P, double Div) {
  double Total = 0;
  for (auto &[Name, S] : P) Total += S;
  std::fprintf(Out, "\n%s: %.2f ms\n\n| op class | ms | share |\n|---|---|---|\n", What, 1000 * Total / Div);
  for (auto &[Name, S] : P)
    std::fprintf(Out, "| %s | %.3f | %.1f%% |\n", Name.c_str(), 1000 * S / Div, 100 * S / std::max(Total, 1e-12));
}

} // namespace

int runBench(const std::vector<std::string> &Args) {
  if (!Args.empty())
    return fail(absl::StrFormat("bench takes no positional arguments (got '%s')", Args[0]));
  absl::StatusOr<int64_t> PP = parseCount("-p", absl::GetFlag(FLAGS_p), 512);
  absl::StatusOr<int64_t> TG = parseCount("-n", absl::GetFlag(FLAGS_n), 128);
  if (!PP.ok() || !TG.ok())
    return fail(std::string((!PP.ok() ? PP.status() : TG.status()).message()));
  std::vector<unsigned> Threads;
  std::string TList = absl::GetFlag(FLAGS_t).empty() ? std::to_string(std::thread::hardware_concurrency())
                                                     : absl::GetFlag(FLAGS_t);
  for (absl::string_view T : absl::StrSplit(TList, ',')) {
    unsigned V;
    if (!absl::SimpleAtoi(T, &V) || V == 0 || V > 1024)
      return fail(absl::StrFormat("-t: '%s' is not a thread count", std::string(T)));
    Threads.push_back(V);
  }
  int32_t Reps = absl::GetFlag(FLAGS_r);
  if (Reps < 1)
    return fail("-r must be at least 1");
  // -pg P,N: a prompt of P tokens, then N generated (llama-bench's -pg),
  // tokens/s over both; 0 = no such test.
  int64_t PgPrompt = 0, PgGen = 0;
  if (std::string Pg = absl::GetFlag(FLAGS_pg); !Pg.empty()) {
    std::vector<std::string> Parts = absl::StrSplit(Pg, ',');
    if (Parts.size() != 2 || !absl::SimpleAtoi(Parts[0], &PgPrompt) || !absl::SimpleAtoi(Parts[1], &PgGen) ||
        PgPrompt < 1 || PgGen < 1 || PgPrompt > (1 << 20) || PgGen > (1 << 20))
      return fail(absl::StrFormat("-pg %s: expected two positive token counts P,N (e.g. 512,128)", Pg));
  }
  std::string Format = absl::GetFlag(FLAGS_o).empty() ? "md" : absl::GetFlag(FLAGS_o);
  if (Format != "md" && Format != "csv" && Format != "json")
    return fail(absl::StrFormat("-o %s: expected md, csv or json", Format));
  if (*PP == 0 && *TG == 0 && PgPrompt == 0)
    return fail("nothing to run: -p, -n and -pg are all 0");
  const int32_t Parallel = flagGiven("parallel") ? absl::GetFlag(FLAGS_parallel) : 1;
  if (Parallel < 1 || Parallel > 256)
    return fail(absl::StrFormat("--parallel %d: 1 to 256 sequences", Parallel));
  if (Parallel > 1 && *TG == 0)
    return fail("--parallel times generation: give -n a token count");

  absl::StatusOr<std::unique_ptr<model::TransformerModel>> M = loadModel();
  if (!M.ok())
    return fail(std::string(M.status().message()));
  absl::StatusOr<Engine> E = createEngine();
  if (!E.ok())
    return fail(std::string(E.status().message()));
  const model::TransformerModel &Model = **M;
  // Refuse tests that cannot run before timing any.
  const int64_t Longest = std::max<int64_t>({*PP, *TG, PgPrompt + PgGen});
  if (Longest >= Model.config().ContextLength)
    return fail(absl::StrFormat("a test of %d tokens does not fit the model's %d-token context", Longest,
                                Model.config().ContextLength));
  // The lm_head (the embedding when tied) is read by every decode step but
  // only by a prompt's last batch.
  const double Layers = layerBytes(Model), Output = matrixBytes(Model.Output), MACs = multiplyAdds(Model);
  const double OutputMACs = double(Model.Output.Rows) * Model.Output.Cols;
  const double Bytes = Layers + Output;
  std::mt19937 Rng(1234);
  std::uniform_int_distribution<int32_t> Tok(0, std::min<int32_t>(Model.tokenizer().vocabSize(), Model.config().Vocab) - 1);
  std::vector<int32_t> Prompt(std::max<int64_t>({*PP, PgPrompt, 1}));
  for (int32_t &T : Prompt) T = Tok(Rng);

  // The read probe's 1 GB, in the same page size as the weights
  // (LoadOptions::HugePages): filled once, read around every repetition.
  runtime::LargeBuffer ProbeBuffer(size_t(1) << 30, absl::GetFlag(FLAGS_huge_pages));
  std::vector<Row> Rows;
  for (unsigned T : Threads) {
    absl::StatusOr<model::SessionOptions> Options = sessionOptions();
    if (!Options.ok())
      return fail(std::string(Options.status().message()));
    model::SessionOptions Opt = *Options;
    Opt.Threads = T;
    Opt.ContextSize = std::max<int64_t>({*PP, *TG, PgPrompt + PgGen}) + 1;
    absl::StatusOr<std::unique_ptr<model::Session>> S = model::createJitSession(Model, *E->Cache, Opt);
    if (!S.ok())
      return fail(std::string(S.status().message()));
    for (int64_t P : {*PP, PgPrompt})
      if (absl::Status St = (*S)->prepare(P); !St.ok())
        return fail(std::string(St.message()));
    absl::StatusOr<std::unique_ptr<model::BatchedSession>> BS = createBatched(Model, *E->Cache, Opt, Parallel);
    if (!BS.ok())
      return fail(std::string(BS.status().message()));
    // Probed before the first repetition and after every one, at the same
    // thread count, so that the probe sees the host as the test did: its
    // read bandwidth drifts within seconds here, and probes at the two ends
    // alone caught other seconds than the test's (docs/BENCHMARK.md).
    runtime::ThreadPool ProbePool(T);
    auto Probe = [&] { return runtime::measureReadBandwidth(ProbePool, ProbeBuffer); };
    std::vector<float> Logits;
    // Each test from an empty context; an error ends the whole run.
    auto Prefill = [&](int64_t Count) {
      return (*S)->eval(std::span<const int32_t>(Prompt.data(), Count), false, Logits);
    };
    auto Decode = [&](int64_t Count) {
      for (int64_t I = 0; I < Count; ++I)
        if (absl::Status St = (*S)->eval(std::span<const int32_t>(&Prompt[I % Prompt.size()], 1), false, Logits);
            !St.ok())
          return St;
      return absl::OkStatus();
    };
    // Every sequence decodes Count tokens from an empty context, one of each a step.
    auto DecodeTogether = [&](int64_t Count) {
      for (int32_t Seq = 0; Seq < Parallel; ++Seq)
        (void)(*BS)->rewind(Seq, 0); // Always valid: 0 <= position.
      return decodeTogether(**BS, Prompt, Count, Logits);
    };
    // Runs Body from an empty context; its seconds.
    auto Timed = [&](auto &&Body) -> absl::StatusOr<double> {
      (void)(*S)->rewind(0); // Always valid: 0 <= position.
      double T0 = now();
      if (absl::Status St = Body(); !St.ok())
        return St;
      return now() - T0;
    };
    // Weight bytes a prompt of P tokens and N decode steps read.
    auto Read = [&](int64_t P, int64_t N) {
      return (P ? std::ceil(double(P) / (*S)->batchSize()) * Layers + Output : 0) + N * Bytes;
    };
    struct Test {
      std::string Name;
      int64_t Tokens;     // Counted in tokens/s.
      double WeightBytes; // Read by one run.
      double GOPs;        // int8 GOP a token (0: none shown).
      std::function<absl::StatusOr<double>()> Run;
    };
    const std::vector<Test> Tests = {
        {absl::StrFormat("pp%d", *PP), *PP, Read(*PP, 0), 2 * MACs / 1e9, [&] { return Timed([&] { return Prefill(*PP); }); }},
        {absl::StrFormat("tg%d", *TG), *TG, Read(0, *TG), 0, [&] { return Timed([&] { return Decode(*TG); }); }},
        {absl::StrFormat("tg%d x%d", *TG, Parallel), Parallel > 1 ? Parallel * *TG : 0, Read(0, *TG),
         2 * (MACs + OutputMACs) / 1e9, [&] { return Timed([&] { return DecodeTogether(*TG); }); }},
        {absl::StrFormat("pp%d+tg%d", PgPrompt, PgGen), PgPrompt + PgGen, Read(PgPrompt, PgGen), 0,
         [&] {
           return Timed([&] {
             absl::Status St = Prefill(PgPrompt);
             return St.ok() ? Decode(PgGen) : St;
           });
         }},
    };
    for (const Test &Tst : Tests) {
      if (Tst.Tokens == 0)
        continue;
      // Warm-up: page in the weights, settle the caches.
      if (absl::StatusOr<double> Warm = Tst.Run(); !Warm.ok())
        return fail(absl::StrFormat("%s: %s", Tst.Name, Warm.status().message()));
      std::vector<double> Rates, Probes = {Probe()};
      for (int32_t R = 0; R < Reps; ++R) {
        absl::StatusOr<double> Seconds = Tst.Run();
        if (!Seconds.ok())
          return fail(absl::StrFormat("%s: %s", Tst.Name, Seconds.status().message()));
        Rates.push_back(Tst.Tokens / *Seconds);
        Probes.push_back(Probe());
      }
      const double ProbeGBs = meanSd(Probes).first;
      auto [Mean, Sd] = meanSd(Rates);
      double WeightGBs = Tst.WeightBytes / (Tst.Tokens / Mean) / 1e9;
      Rows.push_back({T, Tst.Name, Mean, Sd, WeightGBs, ProbeGBs, Tst.GOPs * Mean});
      std::fflush(stdout);
    }
  }

  const std::string ModelName = Model.file().name();
  // The name as a CSV field and a markdown cell: quoted, pipes escaped.
  std::string CsvName = "\"" + absl::StrReplaceAll(ModelName, {{"\"", "\"\""}}) + "\"";
  std::string MdName = absl::StrReplaceAll(ModelName, {{"|", "\\|"}, {"\n", " "}});
  if (Format == "json") {
    nlohmann::json J = nlohmann::json::array();
    for (const Row &R : Rows)
      J.push_back({{"model", ModelName}, {"threads", R.Threads}, {"test", R.Test}, {"tps_mean", R.Mean},
                   {"tps_sd", R.Sd}, {"weight_gbs", R.WeightGBs}, {"read_probe_gbs", R.ProbeGBs},
                   {"gops", R.GOPs ? nlohmann::json(R.GOPs) : nlohmann::json()}}); // null: not counted.
    std::printf("%s\n", J.dump(2, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
  } else if (Format == "csv") {
    std::printf("model,threads,test,tps_mean,tps_sd,weight_gbs,read_probe_gbs,gops\n");
    for (const Row &R : Rows)
      std::printf("%s,%u,%s,%.2f,%.2f,%.2f,%.2f,%s\n", CsvName.c_str(), R.Threads, R.Test.c_str(), R.Mean,
                  R.Sd, R.WeightGBs, R.ProbeGBs, R.GOPs ? absl::StrFormat("%.1f", R.GOPs).c_str() : "");
  } else {
    std::printf("| model | weights | threads | test | t/s | weight GB/s | of read BW | int8 GOP/s |\n"
                "|---|---|---|---|---|---|---|---|\n");
    for (const Row &R : Rows)
      std::printf("| %s | %.1f MB | %u | %s | %.2f ± %.2f | %.1f | %.0f%% (%.1f GB/s) | %s |\n",
                  MdName.c_str(), Bytes / 1e6, R.Threads, R.Test.c_str(), R.Mean, R.Sd, R.WeightGBs,
                  100 * R.WeightGBs / R.ProbeGBs, R.ProbeGBs,
                  R.GOPs ? absl::StrFormat("%.1f", R.GOPs).c_str() : "");
    if (std::any_of(Rows.begin(), Rows.end(),
                    [](const Row &R) { return std::lround(100 * R.WeightGBs / R.ProbeGBs) > 100; })) // As shown.
      std::printf("\nAbove 100 %% of the read bandwidth: the probe (a stream from DRAM, measured around the "
                  "repetitions) is not an upper bound here. Weights that stay in the CPU's caches between tokens "
                  "(%.1f MB of them here, all or in part) are read faster, and the host's bandwidth can change "
                  "between the probe and the run.\n",
                  Bytes / 1e6);
  }

  if (absl::GetFlag(FLAGS_profile)) {
    for (unsigned T : Threads) {
      absl::StatusOr<model::SessionOptions> Options = sessionOptions();
      if (!Options.ok())
        return fail(std::string(Options.status().message()));
      model::SessionOptions Opt = *Options;
      Opt.Threads = T;
      Opt.Profile = true;
      Opt.ContextSize = *PP + *TG + 1;
      auto S = model::createJitSession(Model, *E->Cache, Opt);
      if (!S.ok())
        return fail(std::string(S.status().message()));
      std::vector<float> Logits;
      if (*PP > 0)
        if (absl::Status St = (*S)->eval(std::span<const int32_t>(Prompt.data(), *PP), false, Logits); !St.ok())
          return fail(std::string(St.message()));
      auto PPProfile = (*S)->profile();
      for (int64_t I = 0; I < *TG; ++I)
        if (absl::Status St = (*S)->eval(std::span<const int32_t>(&Prompt[I % Prompt.size()], 1), false, Logits);
            !St.ok())
          return fail(std::string(St.message()));
      auto All = (*S)->profile();
      for (size_t I = 0; I < All.size(); ++I)
        All[I].second -= PPProfile[I].second;
      // Only what ran: -n 0 has no decode step, -p 0 no prefill.
      if (*TG > 0)
        printProfile(Format == "md" ? stdout : stderr, absl::StrFormat("Profile, %u thread(s): one decode step (mean of %d after a %d-token prompt)", T, *TG, *PP).c_str(), All, *TG);
      if (*PP > 0)
        printProfile(Format == "md" ? stdout : stderr, absl::StrFormat("Profile, %u thread(s): prefill of %d tokens", T, *PP).c_str(), PPProfile, 1);
      if (Parallel > 1) {
        Opt.ContextSize = *TG + 1;
        absl::StatusOr<std::unique_ptr<model::BatchedSession>> BS = createBatched(Model, *E->Cache, Opt, Parallel);
        if (!BS.ok())
          return fail(std::string(BS.status().message()));
        if (absl::Status St = decodeTogether(**BS, Prompt, *TG, Logits); !St.ok())
          return fail(std::string(St.message()));
        printProfile(Format == "md" ? stdout : stderr,
                     absl::StrFormat("Profile, %u thread(s): one step of %d sequences (mean of %d)", T, Parallel, *TG)
                         .c_str(),
                     (*BS)->profile(), *TG);
      }
    }
  }
  return 0;
}

} // namespace lumen::tool
