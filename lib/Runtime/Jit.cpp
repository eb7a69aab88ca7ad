//===- Jit.cpp - ORC LLJIT for generated kernels ---------------------------===//
#include "lumen/Runtime/Jit.h"

#include "absl/strings/str_format.h"

#include "llvm/Config/llvm-config.h"
#include "llvm/ExecutionEngine/Orc/JITTargetMachineBuilder.h"
#include "llvm/ExecutionEngine/Orc/LLJIT.h"
#include "llvm/IR/LegacyPassManager.h"
#include "llvm/IR/Module.h"
#include "llvm/MC/TargetRegistry.h"
#include "llvm/Passes/PassBuilder.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/raw_ostream.h"
#include "llvm/Support/TargetSelect.h"
#include "llvm/Support/xxhash.h"
#include "llvm/Target/TargetMachine.h"
#include "llvm/TargetParser/SubtargetFeature.h"

#include <chrono>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <unistd.h>

namespace lumen::runtime {

namespace {

// Bump when the compile pipeline or the entry format changes in a way the IR
// hash cannot see.
constexpr const char *kPipelineVersion = "lumen-objcache-2";

// A cache entry: this magic, the object's size and the xxh3 hash of its key
// (the file name) and the object (both little-endian u64), then the object.
// The checksum catches what a crash or a full disk leaves behind, which the
// rename alone cannot rule out, and an entry copied under another key.
constexpr llvm::StringLiteral kEntryMagic("LUMENKO1");
constexpr size_t kEntryHeader = 8 + 8 + 8;

uint64_t entryHash(llvm::StringRef Key, llvm::StringRef Object) {
  return llvm::xxh3_64bits((Key + llvm::StringRef("\0", 1) + Object).str());
}

std::string encodeEntry(llvm::StringRef Key, llvm::StringRef Object) {
  std::string E(kEntryMagic.str());
  uint64_t Size = Object.size(), Hash = entryHash(Key, Object);
  E.append(reinterpret_cast<const char *>(&Size), 8);
  E.append(reinterpret_cast<const char *>(&Hash), 8);
  E.append(Object.data(), Object.size());
  return E;
}

/// The object in an entry, or why the entry is bad.
absl::StatusOr<llvm::StringRef> decodeEntry(llvm::StringRef Key, llvm::StringRef Entry) {
  if (Entry.size() < kEntryHeader || !Entry.starts_with(kEntryMagic))
    return absl::DataLossError(absl::StrFormat("%d bytes, no entry header", Entry.size()));
  uint64_t Size, Hash;
  std::memcpy(&Size, Entry.data() + 8, 8);
  std::memcpy(&Hash, Entry.data() + 16, 8);
  llvm::StringRef Object = Entry.drop_front(kEntryHeader);
  if (Object.size() != Size)
    return absl::DataLossError(absl::StrFormat("%d object bytes where the header says %d", Object.size(), Size));
  if (entryHash(Key, Object) != Hash)
    return absl::DataLossError("checksum mismatch");
  return Object;
}

/// Writes an entry: to a temporary name, synced, then renamed into place, so
/// that a concurrent process or a crash never leaves half a file under Path.
void writeEntry(const std::string &Path, llvm::StringRef Key, llvm::StringRef Object) {
  std::string Tmp = absl::StrFormat("%s.%d.tmp", Path, ::getpid());
  std::string Entry = encodeEntry(Key, Object);
  int Fd = ::open(Tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (Fd < 0)
    return;
  bool Ok = ::write(Fd, Entry.data(), Entry.size()) == static_cast<ssize_t>(Entry.size()) && ::fsync(Fd) == 0;
  Ok = ::close(Fd) == 0 && Ok;
  std::error_code EC;
  if (Ok)
    std::filesystem::rename(Tmp, Path, EC);
  if (!Ok || EC)
    std::filesystem::remove(Tmp, EC);
}

void initializeLLVMOnce() {
  static std::once_flag Once;
  std::call_once(Once, [] {
    llvm::InitializeNativeTarget();
    llvm::InitializeNativeTargetAsmPrinter();
  });
}

std::string errorText(llvm::Error E) { return llvm::toString(std::move(E)); }

absl::StatusOr<std::unique_ptr<llvm::TargetMachine>> makeTargetMachine(const codegen::CpuFeatures &Cpu) {
  initializeLLVMOnce();
  llvm::Expected<llvm::orc::JITTargetMachineBuilder> JTMB =
      llvm::orc::JITTargetMachineBuilder::detectHost();
  if (!JTMB)
    return absl::InternalError("cannot detect the host target: " + errorText(JTMB.takeError()));
  JTMB->setCPU(Cpu.CpuName);
  llvm::SubtargetFeatures Features;
  Features.addFeaturesVector(JTMB->getFeatures().getFeatures());
  std::string FeatureString = Cpu.featureString();
  llvm::SmallVector<llvm::StringRef, 16> Parts;
  llvm::StringRef(FeatureString).split(Parts, ',');
  for (llvm::StringRef F : Parts)
    Features.AddFeature(F); // "+x" / "-x" override what detectHost found.
  JTMB->getFeatures() = Features;
  JTMB->setCodeGenOptLevel(llvm::CodeGenOptLevel::Aggressive);
  llvm::Expected<std::unique_ptr<llvm::TargetMachine>> TM = JTMB->createTargetMachine();
  if (!TM)
    return absl::InternalError("cannot create a target machine: " + errorText(TM.takeError()));
  return std::move(*TM);
}

absl::Status runO3(llvm::Module &M, llvm::TargetMachine &TM) {
  M.setDataLayout(TM.createDataLayout());
  M.setTargetTriple(TM.getTargetTriple().str());
  llvm::LoopAnalysisManager LAM;
  llvm::FunctionAnalysisManager FAM;
  llvm::CGSCCAnalysisManager CGAM;
  llvm::ModuleAnalysisManager MAM;
  llvm::PassBuilder PB(&TM);
  PB.registerModuleAnalyses(MAM);
  PB.registerCGSCCAnalyses(CGAM);
  PB.registerFunctionAnalyses(FAM);
  PB.registerLoopAnalyses(LAM);
  PB.crossRegisterProxies(LAM, FAM, CGAM, MAM);
  llvm::ModulePassManager MPM = PB.buildPerModuleDefaultPipeline(llvm::OptimizationLevel::O3);
  MPM.run(M, MAM);
  return absl::OkStatus();
}

double secondsSince(std::chrono::steady_clock::time_point T) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - T).count();
}

/// The cache key: everything the object depends on.
std::string cacheKey(const llvm::Module &M, const codegen::CpuFeatures &Cpu) {
  std::string IR;
  llvm::raw_string_ostream OS(IR);
  M.print(OS, nullptr);
  OS << Cpu.CpuName << '\n' << Cpu.featureString() << '\n' << LLVM_VERSION_STRING << '\n'
     << kPipelineVersion << "\nO3\n";
  OS.flush();
  uint64_t H = llvm::xxh3_64bits(llvm::StringRef(IR));
  return absl::StrFormat("%s-%016x.o", M.getModuleIdentifier(), H);
}

} // namespace

std::string defaultObjectCacheDir() {
  if (const char *D = std::getenv("LUMEN_CACHE_DIR"))
    return D;
  if (const char *X = std::getenv("XDG_CACHE_HOME"); X && *X)
    return std::string(X) + "/lumen/kernels";
  if (const char *H = std::getenv("HOME"); H && *H)
    return std::string(H) + "/.cache/lumen/kernels";
  return "";
}

absl::StatusOr<std::unique_ptr<Jit>> Jit::create(JitOptions Options) {
  if (!Options.Cpu.supportsKernels())
    return absl::FailedPreconditionError(absl::StrFormat(
        "CPU %s lacks AVX2/FMA/F16C, which Lumen's kernels need", Options.Cpu.CpuName));
  std::unique_ptr<Jit> J(new Jit(std::move(Options)));
  absl::StatusOr<std::unique_ptr<llvm::TargetMachine>> TM = makeTargetMachine(J->Options.Cpu);
  if (!TM.ok())
    return TM.status();
  llvm::Expected<std::unique_ptr<llvm::orc::LLJIT>> LLJ = llvm::orc::LLJITBuilder().create();
  if (!LLJ)
    return absl::InternalError("cannot create LLJIT: " + errorText(LLJ.takeError()));
  std::lock_guard<std::mutex> Lock(J->Mu);
  J->TM = std::move(*TM);
  J->LLJ = std::move(*LLJ);
  if (!J->Options.ObjectCacheDir.empty()) {
    std::error_code EC;
    std::filesystem::create_directories(J->Options.ObjectCacheDir, EC);
    if (EC || ::access(J->Options.ObjectCacheDir.c_str(), W_OK) != 0) {
      J->CacheWarning = absl::StrFormat("kernel object cache %s is not writable (%s); compiling "
                                        "without it",
                                        J->Options.ObjectCacheDir,
                                        EC ? EC.message() : std::string("permission denied"));
      J->Options.ObjectCacheDir.clear();
    }
  }
  return J;
}

Jit::Jit(JitOptions Options) : Options(std::move(Options)) {}

void Jit::warn(const std::string &Message) const {
  if (Options.Warn)
    Options.Warn(Message);
  else
    llvm::errs() << "lumen: warning: " << Message << "\n";
}
Jit::~Jit() = default;

absl::StatusOr<void *> Jit::compile(std::unique_ptr<llvm::Module> M, const std::string &Symbol,
                                    CompileReport *Report) {
  CompileReport Local;
  CompileReport &R = Report ? *Report : Local;
  std::lock_guard<std::mutex> Lock(Mu);
  std::string Key, Path;
  std::unique_ptr<llvm::MemoryBuffer> Object;
  if (!Options.ObjectCacheDir.empty()) {
    Key = cacheKey(*M, Options.Cpu);
    Path = Options.ObjectCacheDir + "/" + Key;
    // Only a regular file is read: a FIFO would block, a directory fail.
    struct stat St;
    const bool Exists = ::lstat(Path.c_str(), &St) == 0;
    llvm::ErrorOr<std::unique_ptr<llvm::MemoryBuffer>> Cached =
        Exists && S_ISREG(St.st_mode) ? llvm::MemoryBuffer::getFile(Path) : std::make_error_code(std::errc::invalid_argument);
    if (Exists && !S_ISREG(St.st_mode)) {
      warn(absl::StrFormat("kernel cache entry %s is not a regular file; replacing it", Path));
      std::error_code EC;
      std::filesystem::remove_all(Path, EC);
    } else if (Cached) {
      absl::StatusOr<llvm::StringRef> Entry = decodeEntry(Key, (*Cached)->getBuffer());
      if (Entry.ok()) {
        Object = llvm::MemoryBuffer::getMemBufferCopy(*Entry, M->getModuleIdentifier());
        R.FromDiskCache = true;
      } else {
        // Dropped and recompiled below, which rewrites it.
        warn(absl::StrFormat("kernel cache entry %s is corrupt (%s); recompiling it", Path, Entry.status().message()));
        std::error_code EC;
        std::filesystem::remove(Path, EC);
      }
    }
  }
  if (!Object) {
    auto Start = std::chrono::steady_clock::now();
    if (absl::Status S = runO3(*M, *TM); !S.ok())
      return S;
    R.OptimizeSeconds = secondsSince(Start);
    Start = std::chrono::steady_clock::now();
    llvm::SmallVector<char, 0> Buffer;
    llvm::raw_svector_ostream OS(Buffer);
    llvm::legacy::PassManager PM;
    if (TM->addPassesToEmitFile(PM, OS, nullptr, llvm::CodeGenFileType::ObjectFile))
      return absl::InternalError("the target machine cannot emit object files");
    PM.run(*M);
    R.CodegenSeconds = secondsSince(Start);
    if (!Path.empty())
      writeEntry(Path, Key, llvm::StringRef(Buffer.data(), Buffer.size()));
    Object = llvm::MemoryBuffer::getMemBufferCopy(llvm::StringRef(Buffer.data(), Buffer.size()),
                                                  M->getModuleIdentifier());
  }
  auto Start = std::chrono::steady_clock::now();
  if (llvm::Error E = LLJ->addObjectFile(std::move(Object)))
    return absl::InternalError(absl::StrFormat("cannot add %s: %s", Symbol, errorText(std::move(E))));
  llvm::Expected<llvm::orc::ExecutorAddr> Addr = LLJ->lookup(Symbol);
  if (!Addr)
    return absl::InternalError(
        absl::StrFormat("cannot find %s: %s", Symbol, errorText(Addr.takeError())));
  R.LinkSeconds = secondsSince(Start);
  return Addr->toPtr<void *>();
}

absl::Status optimizeModule(llvm::Module &M, const codegen::CpuFeatures &Cpu) {
  absl::StatusOr<std::unique_ptr<llvm::TargetMachine>> TM = makeTargetMachine(Cpu);
  if (!TM.ok())
    return TM.status();
  return runO3(M, **TM);
}

} // namespace lumen::runtime
