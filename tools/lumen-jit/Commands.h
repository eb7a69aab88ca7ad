//===- Commands.h - lumen-jit subcommands ----------------------*- C++ -*-===//
#ifndef LUMEN_TOOLS_COMMANDS_H
#define LUMEN_TOOLS_COMMANDS_H

#include <string>
#include <vector>

namespace lumen::tool {

/// Each subcommand gets its positional arguments (after the subcommand name)
/// and returns the process exit code. Flags are read from the absl globals.
int runInspect(const std::vector<std::string> &Args);
int runSynth(const std::vector<std::string> &Args);
int runPrintLLVM(const std::vector<std::string> &Args);
int runRun(const std::vector<std::string> &Args);
int runTokenize(const std::vector<std::string> &Args);
int runEval(const std::vector<std::string> &Args);
int runBench(const std::vector<std::string> &Args);
int runPerplexity(const std::vector<std::string> &Args);
int runQuantize(const std::vector<std::string> &Args);
int runTune(const std::vector<std::string> &Args);
int runServe(const std::vector<std::string> &Args);

/// Prints "lumen-jit: error: Message" to stderr and returns 1.
int fail(const std::string &Message);

} // namespace lumen::tool

#endif
