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
#include <string>
#include <vector>

ABSL_DECLARE_FLAG(bool, tensors);
ABSL_DECLARE_FLAG(std::string, preset);
ABSL_DECLARE_FLAG(std::string, o);
ABSL_DECLARE_FLAG(uint64_t, seed);
ABSL_DECLARE_FLAG(std::string, tokenizer_from);
ABSL_DECLARE_FLAG(bool, print_llvm);
ABSL_DECLARE_FLAG(std::string, shape);
ABSL_DECLARE_FLAG(int64_t, tokens);
ABSL_DECLARE_FLAG(std::string, isa);
ABSL_DECLARE_FLAG(bool, opt);

namespace lumen::tool {

/// Rewrites "--long-name[=v]" to "--long_name[=v]" so users can spell flags
/// the way llama.cpp does; Abseil flag names cannot contain '-'. Everything
/// after a bare "--" is left alone.
std::vector<char *> normalizeFlagSpelling(int Argc, char **Argv, std::vector<std::string> &Storage);

} // namespace lumen::tool

#endif
