//===- main.cpp - lumen-jit command-line driver ----------------------------===//
//
// lumen-jit SUBCOMMAND [flags] [args]
//
//===----------------------------------------------------------------------===//
#include "Commands.h"
#include "Flags.h"

#include "lumen/Codegen/CpuFeatures.h"

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_format.h"

#include "llvm/Config/llvm-config.h"

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace lumen::tool {
int fail(const std::string &Message) {
  std::fprintf(stderr, "lumen-jit: error: %s\n", Message.c_str());
  return 1;
}
} // namespace lumen::tool

namespace {

void printVersion() {
  lumen::codegen::CpuFeatures Host = lumen::codegen::CpuFeatures::host();
  std::printf("lumen-jit %s (%s build)\nLLVM %s\nJIT target: %s, %s (%s)\n", LUMEN_VERSION_STRING,
              LUMEN_BUILD_TYPE, LLVM_VERSION_STRING, Host.CpuName.c_str(), std::string(Host.isaName()).c_str(),
              Host.supportsKernels() ? "runs Lumen's kernels" : "lacks AVX2/FMA/F16C: cannot run the kernels");
}

/// Status, unless stdout could not be written: output that never arrived (a
/// full disk, a closed pipe) is a failure, not an empty success.
int finish(int Status) {
  if (std::fflush(stdout) != 0 || std::ferror(stdout))
    return lumen::tool::fail(absl::StrFormat("cannot write the output: %s", std::strerror(errno)));
  return Status;
}

} // namespace

int main(int Argc, char **Argv) {
  using namespace lumen::tool;
  absl::SetProgramUsageMessage(generalHelp());
  CommandLine Line = normalizeFlagSpelling(Argc, Argv);
  // The command is the first word; --print-llvm is a command spelled as a flag.
  const CommandInfo *Command = nullptr;
  if (Argc > 1 && Argv[1][0] != '-')
    Command = findCommand(Argv[1]); // "print-llvm" too.
  if (std::find(Line.Given.begin(), Line.Given.end(), "print_llvm") != Line.Given.end()) {
    if (Command && std::string(Command->Name) != "--print-llvm")
      return fail(absl::StrFormat("--print-llvm is a command of its own; it does not go with '%s'", Command->Name));
    Command = findCommand("--print-llvm");
  }
  if (Line.Version) {
    if (Argc > 2) // "lumen-jit run --version" would read as if the run were checked.
      return fail("--version takes no other arguments: lumen-jit --version");
    printVersion();
    return finish(0);
  }
  if (Line.Help) {
    std::printf("%s", Command ? commandHelp(*Command).c_str() : generalHelp().c_str());
    return finish(0);
  }
  if (Argc > 1 && Argv[1][0] != '-' && !Command) {
    fail(absl::StrFormat("unknown command '%s'", Argv[1]));
    std::fprintf(stderr, "%s", generalHelp().c_str());
    return 2;
  }

  if (!Line.Unknown.empty()) {
    const std::string &U = Line.Unknown.front();
    const bool Negative = U.find_first_not_of("0123456789", 1) == std::string::npos;
    return fail(absl::StrFormat("unknown flag '%s'%s (lumen-jit %s--help lists the flags)", U,
                                Negative ? "; no argument takes a negative number"
                                : U.size() > 1 && U[1] != '-' && U.find('.') != std::string::npos
                                    ? "; a file name that starts with '-' goes after '--' or as ./NAME"
                                    : "",
                                Command ? std::string(Command->Name) + " " : ""));
  }
  if (!Line.Empty.empty())
    return fail(absl::StrFormat("%s needs a value", Line.Empty.front()));
  if (!Line.Errors.empty())
    return fail(Line.Errors.front());
  int ArgCount = static_cast<int>(Line.Argv.size()) - 1;
  std::vector<char *> Positional = absl::ParseCommandLine(ArgCount, Line.Argv.data());
  if (!Command) {
    // Flags alone ("lumen-jit --shape 896x4864"): say what is missing.
    if (Argc > 1)
      fail("no command: flags go after one (lumen-jit run ..., lumen-jit --print-llvm --shape ...)");
    std::fprintf(stderr, "%s", generalHelp().c_str());
    return 2;
  }
  if (std::optional<std::string> Flag = inapplicableFlag(*Command, Line.Given))
    return fail(absl::StrFormat("%s does not apply to '%s' (see lumen-jit %s --help)", flagSpelling(*Flag),
                                Command->Name, Command->Name));
  setGivenFlags(Line.Given);
  // Positional[0] is the program; for a word command Positional[1] is its name.
  size_t First = Argv[1][0] == '-' ? 1 : 2;
  std::vector<std::string> Rest(Positional.begin() + std::min(First, Positional.size()), Positional.end());
  return finish(Command->Run(Rest));
}
