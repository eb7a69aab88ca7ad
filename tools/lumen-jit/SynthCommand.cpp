//===- SynthCommand.cpp - lumen-jit synth ----------------------------------===//
#include "Commands.h"
#include "Flags.h"
#include "Interrupt.h"
#include "ModelSetup.h"
#include "Progress.h"

#include "lumen/GGUF/GGUFFile.h"
#include "lumen/Model/SyntheticModel.h"

#include "absl/flags/flag.h"
#include "absl/strings/str_format.h"

#include <chrono>
#include <cstdio>
#include <sys/stat.h>

namespace lumen::tool {

int runSynth(const std::vector<std::string> &Args) {
  if (!Args.empty())
    return fail(absl::StrFormat("synth takes no positional arguments (got '%s'); use -o OUT",
                                Args[0]));
  std::string Out = absl::GetFlag(FLAGS_o);
  if (Out.empty())
    return fail("synth needs an output file: -o OUT");
  absl::StatusOr<model::ModelShape> Shape = model::syntheticPreset(absl::GetFlag(FLAGS_preset));
  if (!Shape.ok())
    return fail(std::string(Shape.status().message()));

  model::SynthOptions Options;
  Options.Shape = *Shape;
  absl::StatusOr<quant::Preset> Type = quant::presetFromName(absl::GetFlag(FLAGS_type));
  if (!Type.ok())
    return fail(absl::StrFormat("--type: %s", Type.status().message()));
  Options.Type = *Type;
  absl::StatusOr<unsigned> Threads = threadCount();
  if (!Threads.ok())
    return fail(std::string(Threads.status().message()));
  Options.Threads = *Threads;
  absl::StatusOr<std::optional<uint64_t>> Seed = seedFlag();
  if (!Seed.ok())
    return fail(std::string(Seed.status().message()));
  Options.Seed = Seed->value_or(1);
  std::unique_ptr<gguf::GGUFFile> Tokenizer;
  if (std::string From = absl::GetFlag(FLAGS_tokenizer_from); !From.empty()) {
    absl::StatusOr<std::unique_ptr<gguf::GGUFFile>> F = gguf::GGUFFile::open(From);
    if (!F.ok())
      return fail(std::string(F.status().message()));
    Tokenizer = std::move(*F);
    Options.TokenizerFrom = Tokenizer.get();
  }

  Interrupt::install();
  Interrupt::setCancellable(true);
  ProgressBar Bar(absl::StrFormat("lumen-jit: writing %s %s to %s", Shape->Name, quant::presetInfo(*Type).Name, Out));
  Options.OnProgress = [&Bar](uint64_t Done, uint64_t Total) { return Bar.update(Done, Total); };
  auto Start = std::chrono::steady_clock::now();
  absl::Status S = model::writeSyntheticModel(Options, Out);
  Bar.finish();
  if (absl::IsCancelled(S))
    return interruptedExit();
  if (!S.ok())
    return fail(std::string(S.message()));
  double Seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - Start).count();
  struct stat St;
  ::stat(Out.c_str(), &St);
  std::fprintf(stderr,
               "lumen-jit: wrote %s: %s %s, RANDOM WEIGHTS (synthetic, seed %llu), %lld bytes "
               "(%.1f MB) in %.1f s\n",
               Out.c_str(), Shape->Name.c_str(), std::string(quant::presetInfo(Options.Type).Name).c_str(),
               static_cast<unsigned long long>(Options.Seed), static_cast<long long>(St.st_size),
               St.st_size / 1e6, Seconds);
  return 0;
}

} // namespace lumen::tool
