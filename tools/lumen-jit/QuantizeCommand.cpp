//===- QuantizeCommand.cpp - lumen-jit quantize ----------------------------===//
//
// llama-quantize's command: IN OUT TYPE [THREADS], each tensor's type chosen
// as llama.cpp chooses it for the preset. A progress bar on stderr, then the
// summary: sizes before and after, bits per weight, time. Ctrl-C stops it
// and leaves no output file.
//
//===----------------------------------------------------------------------===//
#include "Commands.h"
#include "Flags.h"
#include "Interrupt.h"
#include "ModelSetup.h"

#include "lumen/GGUF/GGUFFile.h"
#include "lumen/Quantize/ModelQuantizer.h"

#include "absl/flags/flag.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"

#include <chrono>
#include <cstdio>
#include <map>
#include <unistd.h>

namespace lumen::tool {

namespace {

/// "[#####-----]  41%  12.3 s, 17 s left", redrawn at most 10 times a second.
class ProgressBar {
public:
  absl::Status update(uint64_t Done, uint64_t Total) {
    if (Interrupt::requested())
      return absl::CancelledError("interrupted; no output written");
    const auto Now = std::chrono::steady_clock::now();
    if (Done < Total && Now - Last < std::chrono::milliseconds(Tty ? 100 : 2000))
      return absl::OkStatus();
    Last = Now;
    constexpr int Width = 30;
    const double Fraction = Total ? double(Done) / Total : 1.0;
    const double Seconds = std::chrono::duration<double>(Now - Start).count();
    const int Filled = static_cast<int>(Width * Fraction);
    std::fprintf(stderr, "%s[%s%s] %3.0f%%  %.1f s, %.0f s left%s", Tty ? "\r" : "", std::string(Filled, '#').c_str(),
                 std::string(Width - Filled, '-').c_str(), 100 * Fraction, Seconds,
                 Fraction > 0 ? Seconds / Fraction - Seconds : 0.0, Tty && Done < Total ? " " : "\n");
    std::fflush(stderr);
    return absl::OkStatus();
  }

private:
  const bool Tty = isatty(STDERR_FILENO);
  const std::chrono::steady_clock::time_point Start = std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point Last = {};
};

void printSummary(const quant::QuantizeReport &R, const std::string &Out, const quant::PresetInfo &Preset) {
  // Tensors by type change, as llama-quantize's log says it tensor by tensor.
  std::map<std::string, int> Changes;
  for (const quant::TensorReport &T : R.Tensors)
    ++Changes[absl::StrFormat("%s -> %s", gguf::tensorTypeTraits(T.From).Name, gguf::tensorTypeTraits(T.To).Name)];
  std::fprintf(stderr, "lumen-jit: tensors:");
  for (const auto &[Change, Count] : Changes)
    std::fprintf(stderr, "  %d %s", Count, Change.c_str());
  std::fprintf(stderr, "\n");
  std::fprintf(stderr,
               "lumen-jit: wrote %s (%s): %.2f MiB -> %.2f MiB of tensors (%.2f bits per weight), file %.2f MiB, "
               "in %.1f s\n",
               Out.c_str(), std::string(Preset.Name).c_str(), R.BytesBefore / 1048576.0, R.BytesAfter / 1048576.0,
               R.bitsPerWeight(), R.FileBytes / 1048576.0, R.Seconds);
}

} // namespace

int runQuantize(const std::vector<std::string> &Args) {
  if (Args.size() < 3 || Args.size() > 4)
    return fail("quantize needs IN.gguf OUT.gguf TYPE [THREADS] (lumen-jit quantize --help lists the types)");
  absl::StatusOr<quant::Preset> Preset = quant::presetFromName(Args[2]);
  if (!Preset.ok())
    return fail(std::string(Preset.status().message()));
  absl::StatusOr<unsigned> Threads = threadCount();
  if (!Threads.ok())
    return fail(std::string(Threads.status().message()));
  if (Args.size() == 4) { // llama-quantize's trailing thread count.
    unsigned N = 0;
    if (flagGiven("t"))
      return fail("give the thread count once: -t or after TYPE");
    if (!absl::SimpleAtoi(Args[3], &N) || N == 0 || N > 1024)
      return fail(absl::StrFormat("thread count '%s' after TYPE must be 1 to 1024", Args[3]));
    *Threads = N;
  }
  absl::StatusOr<std::unique_ptr<gguf::GGUFFile>> In = gguf::GGUFFile::open(Args[0]);
  if (!In.ok())
    return fail(std::string(In.status().message()));

  Interrupt::install();
  Interrupt::setCancellable(true);
  ProgressBar Bar;
  quant::QuantizeOptions O;
  O.Target = *Preset;
  O.Threads = *Threads;
  O.AllowRequantize = absl::GetFlag(FLAGS_allow_requantize);
  O.LeaveOutputTensor = absl::GetFlag(FLAGS_leave_output_tensor);
  O.OnProgress = [&Bar](uint64_t Done, uint64_t Total) { return Bar.update(Done, Total); };
  std::fprintf(stderr, "lumen-jit: quantizing %s to %s (%s)\n", Args[0].c_str(), Args[2].c_str(),
               std::string(quant::presetInfo(*Preset).Description).c_str());
  absl::StatusOr<quant::QuantizeReport> R = quant::quantizeModel(**In, Args[1], O);
  if (!R.ok()) {
    if (absl::IsCancelled(R.status()))
      std::fputc('\n', stderr);
    return fail(absl::StrFormat("quantize: %s", R.status().message()));
  }
  printSummary(*R, Args[1], quant::presetInfo(*Preset));
  return 0;
}

} // namespace lumen::tool
