//===- Flags.cpp - lumen-jit command-line flags ----------------------------===//
#include "Flags.h"

#include "absl/flags/flag.h"

ABSL_FLAG(bool, tensors, false, "inspect: also print the tensor table");
ABSL_FLAG(std::string, preset, "qwen2.5-0.5b", "synth: qwen2.5-0.5b, qwen2.5-1.5b or tiny");
ABSL_FLAG(std::string, o, "", "synth: output file");
ABSL_FLAG(uint64_t, seed, 1, "synth: random seed (the same seed writes the same bytes)");
ABSL_FLAG(std::string, tokenizer_from, "",
          "synth: copy the tokenizer from this GGUF (default: a byte-level vocabulary)");

ABSL_FLAG(bool, print_llvm, false, "print the LLVM IR generated for --shape");
ABSL_FLAG(std::string, shape, "", "--print-llvm: KxM, e.g. 896x4864 (896 in, 4864 out)");
ABSL_FLAG(int64_t, tokens, 1, "--print-llvm: tokens N (1 = decode GEMV, >1 = prefill GEMM)");
ABSL_FLAG(std::string, isa, "host", "--print-llvm: host, avx2, avx512 or avx512-vnni");
ABSL_FLAG(bool, opt, false, "--print-llvm: print the IR after the O3 pipeline");

namespace lumen::tool {

std::vector<char *> normalizeFlagSpelling(int Argc, char **Argv,
                                          std::vector<std::string> &Storage) {
  Storage.assign(Argv, Argv + Argc);
  bool Rest = false;
  for (int I = 1; I < Argc; ++I) {
    std::string &A = Storage[I];
    if (Rest || A.size() < 3 || A[0] != '-')
      continue;
    if (A == "--") {
      Rest = true;
      continue;
    }
    size_t Start = A[1] == '-' ? 2 : 1;
    size_t End = A.find('=');
    if (End == std::string::npos)
      End = A.size();
    for (size_t J = Start; J < End; ++J)
      if (A[J] == '-')
        A[J] = '_';
  }
  std::vector<char *> Out;
  for (std::string &S : Storage)
    Out.push_back(S.data());
  Out.push_back(nullptr);
  return Out;
}

} // namespace lumen::tool
