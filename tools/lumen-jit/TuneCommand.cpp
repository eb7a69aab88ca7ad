//===- TuneCommand.cpp - lumen-jit tune ------------------------------------===//
//
// Measures the kernels a model uses on this host (runtime::tuneTargets) and
// keeps the winners as wisdom beside the kernel object cache.
//
//===----------------------------------------------------------------------===//
#include "Commands.h"
#include "Flags.h"
#include "ModelSetup.h"
#include "Progress.h"

#include "lumen/Model/WisdomCheck.h"
#include "lumen/Runtime/Tuner.h"
#include "lumen/Runtime/WisdomFile.h"

#include "absl/flags/flag.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

#include <chrono>
#include <filesystem>

namespace lumen::tool {

absl::Status tuneModel(const std::vector<unsigned> &Threads, std::FILE *Summary) {
  const auto Start = std::chrono::steady_clock::now();
  const double Budget = absl::GetFlag(FLAGS_budget);
  if (!(Budget > 0 && Budget <= 86400))
    return absl::InvalidArgumentError(
        absl::StrFormat("--budget %g: expected seconds, more than 0 and at most a day", Budget));
  const int64_t Batch = absl::GetFlag(FLAGS_batch);
  if (Batch <= codegen::kMaxSmallBatch || Batch > 512)
    return absl::InvalidArgumentError(absl::StrFormat(
        "--batch %d: the prefill kernels are tuned for %d to 512 tokens (smaller batches take the kernel table's rows)",
        Batch, codegen::kMaxSmallBatch + 1));
  absl::StatusOr<std::string> Path = modelPath();
  if (!Path.ok())
    return Path.status();
  absl::StatusOr<codegen::CpuFeatures> Cpu = targetCpu();
  if (!Cpu.ok())
    return Cpu.status();
  // The shapes only: the file mapped in place, nothing copied or repacked.
  std::vector<runtime::TuneTarget> Targets;
  {
    model::LoadOptions Options;
    Options.Cpu = *Cpu;
    Options.Repack = false;
    Options.HugePages = false;
    absl::StatusOr<std::unique_ptr<model::TransformerModel>> M = model::TransformerModel::load(*Path, Options);
    if (!M.ok())
      return M.status();
    Targets = model::tuneTargets(**M);
  }
  absl::StatusOr<Engine> E = createEngine();
  if (!E.ok())
    return E.status();
  const std::string File = wisdomFile();
  // Where the results go must take them before any time is spent.
  if (absl::Status S = runtime::checkWisdomWritable(File); !S.ok())
    return S;
  const codegen::WisdomHost Host = codegen::WisdomHost::current(*Cpu);
  absl::StatusOr<codegen::Wisdom> Wis = runtime::loadWisdom(File, Host);
  if (!Wis.ok()) {
    // Not trusted, but not lost either: other hosts' sections may be in it.
    const std::string Kept = File + ".unreadable";
    std::error_code EC;
    std::filesystem::rename(File, Kept, EC);
    std::fprintf(stderr, "lumen-jit: warning: %s; %s, and a new one is written\n",
                 std::string(Wis.status().message()).c_str(),
                 EC ? "it will be replaced" : ("it is kept as " + Kept).c_str());
    Wis = codegen::Wisdom(Host);
  }
  runtime::TunerOptions Options;
  Options.PrefillTokens = (Batch + 7) / 8 * 8; // What the session runs a batch with.
  Options.HugePages = absl::GetFlag(FLAGS_huge_pages);
  if (absl::GetFlag(FLAGS_trace))
    Options.Trace = [](const std::string &Line) { std::fprintf(stderr, "\n  %s", Line.c_str()); };
  const std::string ThreadText = absl::StrJoin(Threads, ",");
  ProgressBar Bar(absl::StrFormat("tuning %d matrix shapes of %s for %s thread(s) on %s (%s), budget %g s",
                                  Targets.size(), *Path, ThreadText, Host.Model, Cpu->isaName(), Budget));
  // Most of the budget for the kernels; what is left (a few seconds for a
  // 0.5B model) for confirming them inside the model.
  const double KernelSeconds = 0.8 * Budget;
  Bar.limitSeconds(KernelSeconds);
  absl::StatusOr<std::vector<runtime::TuneReport>> Report = runtime::tuneTargets(
      *E->Cache, Targets, Threads, KernelSeconds, Options, *Wis,
      [&](size_t Done, size_t Total, const std::string &) { return Bar.update(Done, Total); });
  Bar.finish();
  if (!Report.ok())
    return Report.status();

  // The tuned kernels against the table's in the model's own decode steps
  // and prompt batch: what won alone but not there is not kept.
  std::vector<model::WisdomCheck> Checks;
  {
    model::LoadOptions LO;
    LO.Cpu = *Cpu;
    LO.HugePages = absl::GetFlag(FLAGS_huge_pages);
    LO.Wisdom = std::make_shared<const codegen::Wisdom>(*Wis); // The tuned layouts.
    absl::StatusOr<std::unique_ptr<model::TransformerModel>> M = model::TransformerModel::load(*Path, LO);
    if (!M.ok())
      return M.status();
    model::WisdomCheckOptions CO;
    CO.PromptTokens = Options.PrefillTokens;
    CO.HugePages = LO.HugePages;
    absl::StatusOr<std::vector<model::WisdomCheck>> C = model::confirmWisdom(**M, *E->Cache, *Wis, Threads, CO);
    if (!C.ok())
      return C.status();
    Checks = std::move(*C);
  }
  if (absl::Status S = runtime::saveWisdom(File, *Wis); !S.ok())
    return S;
  // Later wisdom() calls read what was just written.
  resetWisdom();

  std::fprintf(Summary, "| matrix | type, KxM | what | threads | table's choice | tuned | candidates | speed-up |\n"
                        "|---|---|---|---|---|---|---|---|\n");
  // Kernel wins that the check inside the model did not keep.
  auto Reverted = [&](const runtime::TuneReport &R) {
    for (const model::WisdomCheck &C : Checks)
      if (C.Compared && !C.Kept && C.Threads == R.Threads &&
          (C.Tokens == codegen::TokenClass::Decode) == (R.What == "decode") && R.What != "layout")
        return true;
    return false;
  };
  for (const runtime::TuneReport &R : *Report)
    std::fprintf(Summary, "| %s | %s %lldx%lld | %s | %u | %s | %s | %u%s | %s |\n", R.Name.c_str(),
                 codegen::weightTypeName(R.Type), (long long)R.K, (long long)R.M, R.What.c_str(), R.Threads,
                 R.Table.c_str(), R.Tuned.c_str(), R.Measured, R.OutOfTime ? " (budget ran out)" : "",
                 R.Measured == 0 && R.OutOfTime ? "not measured: nothing saved"
                 : R.Gain == 1                  ? "table kept"
                 : Reverted(R) ? absl::StrFormat("%.2fx alone; not kept (below)", R.Gain).c_str()
                               : absl::StrFormat("%.2fx", R.Gain).c_str());
  std::fprintf(Summary, "\nInside the model (%d decode steps or a %d-token prompt a round, paired rounds):\n\n"
                        "| threads | what | table's kernels | tuned kernels | speed-up | kept |\n|---|---|---|---|---|---|\n",
               int(model::WisdomCheckOptions().DecodeTokens), int(Options.PrefillTokens));
  for (const model::WisdomCheck &C : Checks) {
    const bool Decode = C.Tokens == codegen::TokenClass::Decode;
    if (!C.Compared) {
      std::fprintf(Summary, "| %u | %s | - | - | - | nothing to compare: no tuned choice differs from the table's |\n",
                   C.Threads,
                   Decode ? "decode" : "prefill");
      continue;
    }
    auto Rate = [&](double Seconds) {
      return absl::StrFormat("%.1f tok/s", (Decode ? 1 : Options.PrefillTokens) / Seconds);
    };
    std::fprintf(Summary, "| %u | %s | %s | %s | %.3fx (noise %.1f %%) | %s |\n", C.Threads,
                 Decode ? "decode" : "prefill", Rate(C.TableSeconds).c_str(), Rate(C.TunedSeconds).c_str(), C.Gain,
                 100 * C.Noise,
                 C.Kept           ? "yes"
                 : C.SlowedPrompt ? "no: the prompt shares its numerics and got slower (below)"
                                  : "no: the table's choices");
  }
  // Entries that keep the table's choice are wisdom too (measured, so --print-llvm says so).
  const auto Differ = [](const auto &Entries) {
    return std::count_if(Entries.begin(), Entries.end(), [](const auto &E) { return E.Gain != 1; });
  };
  std::fprintf(Summary,
               "\nwisdom: %s (for this host: kernels %zu measured, %zd unlike the table; layouts %zu measured, %zd "
               "unlike the table); %.1f s\n",
               File.c_str(), Wis->kernels().size(), Differ(Wis->kernels()), Wis->layouts().size(),
               Differ(Wis->layouts()), std::chrono::duration<double>(std::chrono::steady_clock::now() - Start).count());
  return absl::OkStatus();
}

int runTune(const std::vector<std::string> &Args) {
  if (!Args.empty())
    return fail(absl::StrFormat("tune takes no arguments (got '%s'); the model goes after -m", Args[0]));
  absl::StatusOr<std::vector<unsigned>> Threads = threadList();
  if (!Threads.ok())
    return fail(std::string(Threads.status().message()));
  if (absl::Status S = tuneModel(*Threads, stdout); !S.ok())
    return fail(std::string(S.message()));
  return 0;
}

} // namespace lumen::tool
