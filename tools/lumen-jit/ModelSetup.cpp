//===- ModelSetup.cpp - Shared setup of the model commands ------------------===//
#include "ModelSetup.h"
#include "Flags.h"

#include "lumen/Runtime/WisdomFile.h"

#include "absl/flags/flag.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"

#include <algorithm>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <sys/stat.h>
#include <cstdio>
#include <fstream>
#include <thread>

namespace lumen::tool {

absl::StatusOr<codegen::CpuFeatures> isaFlag() {
  const std::string Isa = absl::AsciiStrToLower(absl::GetFlag(FLAGS_isa)); // As --type: any case.
  if (Isa == "host")
    return codegen::CpuFeatures::host();
  absl::StatusOr<codegen::CpuFeatures> Cpu = codegen::CpuFeatures::forIsa(Isa);
  if (!Cpu.ok())
    return absl::InvalidArgumentError(
        absl::StrFormat("--isa '%s': expected host, avx2, avx512 or avx512-vnni", Isa));
  return Cpu;
}

absl::StatusOr<codegen::CpuFeatures> targetCpu() {
  absl::StatusOr<codegen::CpuFeatures> Cpu = isaFlag();
  if (!Cpu.ok())
    return Cpu.status();
  // (Whether the CPU can run the kernels at all is Jit::create's check.)
  if (absl::Status S = Cpu->runsOn(codegen::CpuFeatures::host()); !S.ok())
    return absl::FailedPreconditionError(absl::StrCat("--isa: ", S.message()));
  return Cpu;
}

absl::StatusOr<std::string> modelPath() {
  std::string Path = absl::GetFlag(FLAGS_m);
  std::string Alias = absl::GetFlag(FLAGS_model);
  if (!Path.empty() && !Alias.empty() && Path != Alias)
    return absl::InvalidArgumentError("-m and --model name different files");
  if (Path.empty())
    Path = Alias;
  if (Path.empty())
    return absl::InvalidArgumentError("no model: pass -m FILE.gguf");
  return Path;
}

absl::StatusOr<std::unique_ptr<model::TransformerModel>> loadModel(double *Seconds) {
  absl::StatusOr<std::string> Path = modelPath();
  if (!Path.ok())
    return Path.status();
  absl::StatusOr<codegen::CpuFeatures> Cpu = targetCpu();
  if (!Cpu.ok())
    return Cpu.status();
  if (absl::GetFlag(FLAGS_tune)) {
    absl::StatusOr<std::vector<unsigned>> Threads = threadList();
    if (!Threads.ok())
      return Threads.status();
    if (absl::Status S = tuneModel(*Threads, stderr); !S.ok())
      return S;
  }
  auto Start = std::chrono::steady_clock::now();
  model::LoadOptions Options;
  Options.Cpu = *Cpu;
  Options.Wisdom = wisdom();
  Options.HugePages = absl::GetFlag(FLAGS_huge_pages);
  Options.Repack = absl::GetFlag(FLAGS_repack);
  absl::StatusOr<std::unique_ptr<model::TransformerModel>> M = model::TransformerModel::load(*Path, Options);
  if (Seconds)
    *Seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - Start).count();
  return M;
}

absl::StatusOr<Engine> createEngine() {
  absl::StatusOr<codegen::CpuFeatures> Cpu = targetCpu();
  if (!Cpu.ok())
    return Cpu.status();
  runtime::JitOptions Options;
  Options.Cpu = *Cpu;
  Options.Warn = [](const std::string &W) { std::fprintf(stderr, "lumen-jit: warning: %s\n", W.c_str()); };
  if (absl::GetFlag(FLAGS_no_kernel_cache) && !absl::GetFlag(FLAGS_kernel_cache).empty())
    return absl::InvalidArgumentError("--kernel-cache DIR and --no-kernel-cache exclude each other");
  if (!absl::GetFlag(FLAGS_no_kernel_cache)) {
    Options.ObjectCacheDir = absl::GetFlag(FLAGS_kernel_cache);
    if (Options.ObjectCacheDir.empty())
      Options.ObjectCacheDir = runtime::defaultObjectCacheDir();
  }
  absl::StatusOr<std::unique_ptr<runtime::Jit>> J = runtime::Jit::create(Options);
  if (!J.ok())
    return J.status();
  if (!(*J)->cacheWarning().empty())
    std::fprintf(stderr, "lumen-jit: warning: %s\n", (*J)->cacheWarning().c_str());
  Engine E;
  E.Jit = std::move(*J);
  E.Cache = std::make_unique<runtime::KernelCache>(*E.Jit);
  return E;
}

absl::StatusOr<int64_t> parseCount(const std::string &Flag, const std::string &Value, int64_t Default) {
  if (Value.empty())
    return Default;
  int64_t N;
  if (!absl::SimpleAtoi(Value, &N) || N < 0)
    return absl::InvalidArgumentError(
        absl::StrFormat("%s must be a non-negative integer (got '%s')", Flag, Value));
  return N;
}

absl::StatusOr<model::SessionOptions> sessionOptions() {
  model::SessionOptions Opt;
  Opt.PrefillBatch = absl::GetFlag(FLAGS_batch);
  if (Opt.PrefillBatch < 1)
    return absl::InvalidArgumentError(
        absl::StrFormat("--batch must be a positive token count (got %d)", Opt.PrefillBatch));
  Opt.HugePages = absl::GetFlag(FLAGS_huge_pages);
  Opt.Wisdom = wisdom();
  return Opt;
}

absl::StatusOr<unsigned> threadCount() {
  std::string T = absl::GetFlag(FLAGS_t);
  absl::StatusOr<int64_t> N = parseCount("-t", T, 0);
  if (!N.ok() || (!T.empty() && (*N < 1 || *N > 1024)))
    return absl::InvalidArgumentError(absl::StrFormat("-t must be a thread count from 1 to 1024 (got '%s')", T));
  return static_cast<unsigned>(*N);
}

absl::StatusOr<std::vector<unsigned>> threadList() {
  const std::string Text = absl::GetFlag(FLAGS_t);
  if (Text.empty())
    return std::vector<unsigned>{std::max(1u, std::thread::hardware_concurrency())};
  std::vector<unsigned> Threads;
  for (absl::string_view T : absl::StrSplit(Text, ',')) {
    unsigned V;
    if (!absl::SimpleAtoi(T, &V) || V == 0 || V > 1024)
      return absl::InvalidArgumentError(absl::StrFormat("-t: '%s' is not a thread count", std::string(T)));
    if (std::find(Threads.begin(), Threads.end(), V) == Threads.end())
      Threads.push_back(V);
  }
  return Threads;
}

namespace {
/// wisdom()'s copy, loaded on first use.
std::optional<std::shared_ptr<const codegen::Wisdom>> &loadedWisdom() {
  static std::optional<std::shared_ptr<const codegen::Wisdom>> W;
  return W;
}
} // namespace

void resetWisdom() { loadedWisdom().reset(); }

std::string wisdomFile() { return runtime::wisdomPath(absl::GetFlag(FLAGS_kernel_cache)); }

std::shared_ptr<const codegen::Wisdom> wisdom() {
  std::optional<std::shared_ptr<const codegen::Wisdom>> &W = loadedWisdom();
  if (W)
    return *W;
  W = nullptr;
  absl::StatusOr<codegen::CpuFeatures> Cpu = targetCpu();
  if (absl::GetFlag(FLAGS_no_wisdom) || !Cpu.ok())
    return nullptr;
  absl::StatusOr<codegen::Wisdom> Loaded = runtime::loadWisdom(wisdomFile(), codegen::WisdomHost::current(*Cpu));
  if (!Loaded.ok()) {
    std::fprintf(stderr, "lumen-jit: warning: %s; ignored (the kernel table's choices are used; "
                         "'lumen-jit tune' rewrites it)\n",
                 std::string(Loaded.status().message()).c_str());
    return nullptr;
  }
  W = std::make_shared<const codegen::Wisdom>(std::move(*Loaded));
  return *W;
}

absl::StatusOr<std::string> promptText() {
  std::string P = absl::GetFlag(FLAGS_p), F = absl::GetFlag(FLAGS_f);
  if (!P.empty() && !F.empty())
    return absl::InvalidArgumentError("-p and -f both give the text: give one");
  if (F.empty())
    return P;
  // A directory opens and reads as empty; say what it is instead. Pipes and
  // terminals (-f /dev/stdin) are fine.
  struct stat St;
  if (::stat(F.c_str(), &St) != 0)
    return absl::NotFoundError(absl::StrFormat("-f %s: %s", F, std::strerror(errno)));
  if (S_ISDIR(St.st_mode))
    return absl::InvalidArgumentError(absl::StrFormat("-f %s: is a directory, not a regular file", F));
  if (!S_ISREG(St.st_mode) && !S_ISFIFO(St.st_mode) && !S_ISCHR(St.st_mode))
    return absl::InvalidArgumentError(absl::StrFormat("-f %s: not a regular file", F));
  std::ifstream In(F, std::ios::binary);
  if (!In)
    return absl::NotFoundError(absl::StrFormat("-f %s: cannot read the prompt file", F));
  // Bounded: /dev/zero or a huge file is refused, not read until memory runs out.
  constexpr size_t kMaxPrompt = size_t(64) << 20;
  std::string Text;
  char Buf[1 << 16];
  while (Text.size() <= kMaxPrompt && In.read(Buf, sizeof Buf).gcount() > 0)
    Text.append(Buf, In.gcount());
  if (In.bad())
    return absl::DataLossError(absl::StrFormat("-f %s: read error", F));
  if (Text.size() > kMaxPrompt)
    return absl::InvalidArgumentError(absl::StrFormat("-f %s: more than 64 MiB of prompt", F));
  if (Text.empty())
    return absl::InvalidArgumentError(absl::StrFormat("-f %s is empty", F));
  return Text;
}

absl::StatusOr<std::optional<uint64_t>> seedFlag() {
  std::string S = absl::GetFlag(FLAGS_seed);
  if (S.empty())
    return std::nullopt;
  uint64_t Seed;
  if (!absl::SimpleAtoi(S, &Seed) || S[0] == '-' || S[0] == '+')
    return absl::InvalidArgumentError(
        absl::StrFormat("--seed must be a non-negative integer below 2^64 (got '%s')", S));
  return Seed;
}

absl::StatusOr<int64_t> contextSize(const model::TransformerModel &M) {
  int64_t Ctx = absl::GetFlag(FLAGS_c);
  if (Ctx < 0)
    return absl::InvalidArgumentError(
        absl::StrFormat("-c must be a token count, or 0 for the model's trained context (got %d)", Ctx));
  // The default is at most what the model was trained for; a -c given is
  // checked against it.
  if (Ctx == 0 || (!flagGiven("c") && Ctx > M.config().ContextLength))
    Ctx = M.config().ContextLength;
  if (Ctx > M.config().ContextLength)
    return absl::InvalidArgumentError(absl::StrFormat(
        "-c %d is more than the model's trained context of %d tokens (-c 0 takes all of it)", Ctx,
        M.config().ContextLength));
  return Ctx;
}

} // namespace lumen::tool
