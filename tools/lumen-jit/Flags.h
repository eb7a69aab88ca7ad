//===- Flags.h - lumen-jit command-line flags ------------------*- C++ -*-===//
//
// All flags of all subcommands. Abseil flags are process-global; each
// subcommand documents which of them it reads.
//
//===----------------------------------------------------------------------===//
#ifndef LUMEN_TOOLS_FLAGS_H
#define LUMEN_TOOLS_FLAGS_H

#include "absl/flags/declare.h"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

ABSL_DECLARE_FLAG(bool, tensors);
ABSL_DECLARE_FLAG(std::string, host);
ABSL_DECLARE_FLAG(int32_t, port);
ABSL_DECLARE_FLAG(int32_t, parallel);
ABSL_DECLARE_FLAG(int32_t, queue);
ABSL_DECLARE_FLAG(std::string, api_key);
ABSL_DECLARE_FLAG(std::string, alias);
ABSL_DECLARE_FLAG(std::string, preset);
ABSL_DECLARE_FLAG(std::string, o);
ABSL_DECLARE_FLAG(std::string, seed);
ABSL_DECLARE_FLAG(std::string, tokenizer_from);
ABSL_DECLARE_FLAG(bool, print_llvm);
ABSL_DECLARE_FLAG(std::string, shape);
ABSL_DECLARE_FLAG(std::string, isa);
ABSL_DECLARE_FLAG(bool, opt);
ABSL_DECLARE_FLAG(std::string, type);
ABSL_DECLARE_FLAG(int64_t, b);
ABSL_DECLARE_FLAG(int64_t, chunks);
ABSL_DECLARE_FLAG(bool, allow_requantize);
ABSL_DECLARE_FLAG(bool, leave_output_tensor);
// Model commands (run, tokenize, eval, bench).
ABSL_DECLARE_FLAG(std::string, m);
ABSL_DECLARE_FLAG(std::string, model);
ABSL_DECLARE_FLAG(std::string, p);
ABSL_DECLARE_FLAG(std::string, f);
ABSL_DECLARE_FLAG(std::string, n);
ABSL_DECLARE_FLAG(std::string, t);
ABSL_DECLARE_FLAG(int64_t, c);
ABSL_DECLARE_FLAG(int64_t, batch);
ABSL_DECLARE_FLAG(double, temp);
ABSL_DECLARE_FLAG(int32_t, top_k);
ABSL_DECLARE_FLAG(double, top_p);
ABSL_DECLARE_FLAG(double, min_p);
ABSL_DECLARE_FLAG(double, repeat_penalty);
ABSL_DECLARE_FLAG(int32_t, repeat_last_n);
ABSL_DECLARE_FLAG(bool, chat);
ABSL_DECLARE_FLAG(std::string, system);
ABSL_DECLARE_FLAG(bool, raw);
ABSL_DECLARE_FLAG(bool, ignore_eos);
ABSL_DECLARE_FLAG(std::string, reasoning);
ABSL_DECLARE_FLAG(bool, no_think);
ABSL_DECLARE_FLAG(bool, print_token_ids);
ABSL_DECLARE_FLAG(bool, no_special);
ABSL_DECLARE_FLAG(std::string, tokens);
ABSL_DECLARE_FLAG(int32_t, top);
ABSL_DECLARE_FLAG(std::string, from);
ABSL_DECLARE_FLAG(bool, reference);
ABSL_DECLARE_FLAG(std::string, kernel_cache);
ABSL_DECLARE_FLAG(bool, no_kernel_cache);
ABSL_DECLARE_FLAG(int32_t, r);
ABSL_DECLARE_FLAG(bool, profile);
ABSL_DECLARE_FLAG(std::string, pg);
ABSL_DECLARE_FLAG(bool, huge_pages);
ABSL_DECLARE_FLAG(bool, repack);
ABSL_DECLARE_FLAG(std::string, layout);
ABSL_DECLARE_FLAG(double, budget);
ABSL_DECLARE_FLAG(bool, tune);
ABSL_DECLARE_FLAG(bool, trace);
ABSL_DECLARE_FLAG(bool, no_wisdom);

/// The flags only the JIT path reads (the kernel cache, the tuner's wisdom):
/// listed by the commands that take them, refused by `eval --reference`.
#define LUMEN_JIT_FLAGS "kernel_cache", "no_kernel_cache", "no_wisdom", "tune", "budget"

namespace lumen::tool {

/// The command line after the spelling pass: what Abseil parses, and what the
/// pass saw before Abseil does.
struct CommandLine {
  std::vector<std::string> Storage; // Owns the strings Argv points into.
  std::vector<char *> Argv;         // Null-terminated, for absl::ParseCommandLine.
  std::vector<std::string> Given;   // Names of the known flags given (canonical: "top_k", "repack").
  std::vector<std::string> Empty;   // Known non-boolean flags, as typed, given an empty value ("--seed="), none
                                    // (last on the line) or a flag where the value goes ("-p -n").
  std::vector<std::string> Errors;  // Other mistakes found before Abseil sees them, as messages.
  std::vector<std::string> Unknown; // Arguments that look like flags but name none, as typed.
  bool Help = false;                // -h, --help, --helpfull or -?
  bool Version = false;             // --version
};

/// Rewrites "--long-name[=v]" to "--long_name[=v]" so users can spell flags
/// the way llama.cpp does (Abseil flag names cannot contain '-'). Only the
/// names of known flags change: a flag's value ("-p '- milk'", "-f -x.txt")
/// and everything after a bare "--" are left alone. Help and version
/// requests are taken out and reported instead.
CommandLine normalizeFlagSpelling(int Argc, char **Argv);

/// A subcommand as help shows it, and the flags it reads: any other flag
/// given with it is an error rather than silently ignored.
struct CommandInfo {
  const char *Name;     // "run", or "--print-llvm".
  int (*Run)(const std::vector<std::string> &Args); // Its positional arguments; the exit status.
  const char *Synopsis; // Usage line(s) after "lumen-jit ".
  const char *Summary;  // What it does, a few lines.
  std::vector<const char *> Flags; // "name", or "name|its help for this command".
};

const CommandInfo *findCommand(const std::string &Name);

/// "lumen-jit COMMAND --help": synopsis, summary, each flag with its help
/// and default.
std::string commandHelp(const CommandInfo &C);
/// "lumen-jit --help": every command's synopsis.
std::string generalHelp();
/// Records the flags given on the command line (CommandLine::Given), and
/// whether one was: a command whose default differs from the flag's
/// (perplexity's -c) asks.
void setGivenFlags(std::vector<std::string> Given);
bool flagGiven(std::string_view Canonical);

/// The first flag in Given that C does not read, if any.
std::optional<std::string> inapplicableFlag(const CommandInfo &C, const std::vector<std::string> &Given);
/// How a flag is spelled on the command line: "-m", "--top-k".
std::string flagSpelling(const std::string &Name);

} // namespace lumen::tool

#endif
