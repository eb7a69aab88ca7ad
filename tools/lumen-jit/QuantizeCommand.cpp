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
#include "Progress.h"

#include "lumen/GGUF/GGUFFile.h"
#include "lumen/Quantize/ModelQuantizer.h"

#include "absl/flags/flag.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"

#include <cstdio>
#include <map>

namespace lumen::tool {

namespace {

void printSummary(const quant::QuantizeReport &R, const std::string &Out, const quant::PresetInfo &Preset) {
  // Tensors by type change, as llama-quantize's log says it tensor by tensor.
  std::map<std::string, int> Changes;
  for (const quant::TensorReport &T : R.Tensors)
    ++Changes[absl::StrFormat("%s -> %s", gguf::tensorTypeTraits(T.From).Name, gguf::tensorTypeTraits(T.To).Name)];
  std::fprintf(stderr, "lumen-jit: tensors:");
  for (const auto &[Change, Count] : Changes)
    std::fprintf(stderr, "  %d %s", Count, Change.c_str());
  std::fprintf(stderr, "\n");
  // The tensors whose rows the preset's type does not divide, which
  // llama-quantize names one by one ("using fallback quantization").
  std::map<std::string, int> Fallbacks;
  for (const quant::TensorReport &T : R.Tensors)
    if (T.FellBackFrom)
      ++Fallbacks[absl::StrFormat("%s -> %s", gguf::tensorTypeTraits(*T.FellBackFrom).Name,
                                  gguf::tensorTypeTraits(T.To).Name)];
  if (!Fallbacks.empty()) {
    std::fprintf(stderr, "lumen-jit: fallbacks (rows not a whole number of the preset type's blocks, as in "
                         "llama-quantize):");
    for (const auto &[Change, Count] : Fallbacks)
      std::fprintf(stderr, "  %d %s", Count, Change.c_str());
    std::fprintf(stderr, "\n");
  }
  std::fprintf(stderr,
               "lumen-jit: wrote %s (%s): %.2f MiB -> %.2f MiB of tensors (%.2f bits per weight), file %.2f MiB, "
               "in %.1f s\n",
               Out.c_str(), std::string(Preset.Name).c_str(), R.BytesBefore / 1048576.0, R.BytesAfter / 1048576.0,
               R.bitsPerWeight(), R.FileBytes / 1048576.0, R.Seconds);
}

} // namespace

int runQuantize(const std::vector<std::string> &Args) {
  if (Args.size() < 3)
    return fail("quantize needs IN.gguf OUT.gguf TYPE [THREADS] (lumen-jit quantize --help lists the types)");
  if (Args.size() > 4)
    return fail(absl::StrFormat("quantize takes IN.gguf OUT.gguf TYPE [THREADS]; '%s' is one too many", Args[4]));
  if (Args[0].empty())
    return fail("the input file name is empty");
  absl::StatusOr<quant::Preset> Preset = quant::presetFromName(Args[2]);
  if (!Preset.ok())
    return fail(std::string(Preset.status().message()));
  absl::StatusOr<unsigned> Threads = threadCount();
  if (!Threads.ok())
    return fail(std::string(Threads.status().message()));
  if (Args.size() == 4) { // llama-quantize's trailing thread count; 0 = every core, as there.
    unsigned N = 0;
    if (flagGiven("t"))
      return fail("give the thread count once: -t or after TYPE");
    if (!absl::SimpleAtoi(Args[3], &N) || N > 1024)
      return fail(absl::StrFormat("thread count '%s' after TYPE must be 0 (every core) to 1024", Args[3]));
    if (N > 0)
      *Threads = N;
  }
  absl::StatusOr<std::unique_ptr<gguf::GGUFFile>> In = gguf::GGUFFile::open(Args[0]);
  if (!In.ok())
    return fail(std::string(In.status().message()));

  if (absl::GetFlag(FLAGS_leave_output_tensor) && !(*In)->findTensor("output.weight"))
    std::fprintf(stderr, "lumen-jit: note: %s has no output.weight (its embedding is tied), so "
                         "--leave-output-tensor changes nothing, as in llama-quantize\n",
                 Args[0].c_str());
  Interrupt::install();
  Interrupt::setCancellable(true);
  const quant::PresetInfo &Info = quant::presetInfo(*Preset);
  ProgressBar Bar(absl::StrFormat("lumen-jit: quantizing %s to %s (%s)", Args[0], Info.Name, Info.Description));
  quant::QuantizeOptions O;
  O.Target = *Preset;
  O.Threads = *Threads;
  O.AllowRequantize = absl::GetFlag(FLAGS_allow_requantize);
  O.LeaveOutputTensor = absl::GetFlag(FLAGS_leave_output_tensor);
  O.OnProgress = [&Bar](uint64_t Done, uint64_t Total) { return Bar.update(Done, Total); };
  Bar.start(); // Also when nothing converts (an F16 file to F16): no progress then.
  absl::StatusOr<quant::QuantizeReport> R = quant::quantizeModel(**In, Args[1], O);
  Bar.finish();
  if (absl::IsCancelled(R.status()))
    return interruptedExit();
  if (!R.ok())
    return fail(absl::StrFormat("quantize: %s", R.status().message()));
  printSummary(*R, Args[1], Info);
  return 0;
}

} // namespace lumen::tool
