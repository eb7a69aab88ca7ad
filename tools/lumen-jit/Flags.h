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
ABSL_DECLARE_FLAG(int64_t, seed);
ABSL_DECLARE_FLAG(std::string, tokenizer_from);
ABSL_DECLARE_FLAG(bool, print_llvm);
ABSL_DECLARE_FLAG(std::string, shape);
ABSL_DECLARE_FLAG(std::string, isa);
ABSL_DECLARE_FLAG(bool, opt);
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
ABSL_DECLARE_FLAG(bool, print_token_ids);
ABSL_DECLARE_FLAG(bool, no_special);
ABSL_DECLARE_FLAG(std::string, tokens);
ABSL_DECLARE_FLAG(int32_t, top);
ABSL_DECLARE_FLAG(int64_t, from);
ABSL_DECLARE_FLAG(bool, reference);
ABSL_DECLARE_FLAG(std::string, kernel_cache);
ABSL_DECLARE_FLAG(bool, no_kernel_cache);
ABSL_DECLARE_FLAG(int32_t, r);
ABSL_DECLARE_FLAG(bool, profile);
ABSL_DECLARE_FLAG(std::string, pg);
ABSL_DECLARE_FLAG(bool, huge_pages);
ABSL_DECLARE_FLAG(bool, repack);
ABSL_DECLARE_FLAG(std::string, layout);

namespace lumen::tool {

/// Rewrites "--long-name[=v]" to "--long_name[=v]" so users can spell flags
/// the way llama.cpp does; Abseil flag names cannot contain '-'. Everything
/// after a bare "--" is left alone.
std::vector<char *> normalizeFlagSpelling(int Argc, char **Argv, std::vector<std::string> &Storage);

} // namespace lumen::tool

#endif
