//===- Flags.cpp - lumen-jit command-line flags ----------------------------===//
#include "Flags.h"

#include "absl/flags/flag.h"

ABSL_FLAG(bool, tensors, false, "inspect: also print the tensor table");
ABSL_FLAG(std::string, preset, "qwen2.5-0.5b", "synth: qwen2.5-0.5b, qwen2.5-1.5b or tiny");
ABSL_FLAG(std::string, o, "", "synth: output file; bench: output format md, csv or json");
ABSL_FLAG(int64_t, seed, -1,
          "random seed: synth weights (default 1; a seed always writes the same bytes), run sampling "
          "(default: random)");
ABSL_FLAG(std::string, tokenizer_from, "",
          "synth: copy the tokenizer from this GGUF (default: a byte-level vocabulary)");

ABSL_FLAG(bool, print_llvm, false, "print the LLVM IR generated for --shape");
ABSL_FLAG(std::string, shape, "", "--print-llvm: KxM, e.g. 896x4864 (896 in, 4864 out)");
ABSL_FLAG(std::string, isa, "host",
          "the ISA kernels are compiled and weights laid out for: host, avx2, avx512 or avx512-vnni "
          "(run/eval/bench: one this CPU has, e.g. avx2 to time the AVX2 kernels on an AVX-512 host)");
ABSL_FLAG(std::string, layout, "auto",
          "--print-llvm: weight layout: auto (what the model loader stores for --isa: "
          "interleaved16 on avx512-vnni when M is a multiple of 16, else interleaved8 when M is a "
          "multiple of 8), rows, interleaved8 or interleaved16");
ABSL_FLAG(bool, opt, false, "--print-llvm: print the IR after the O3 pipeline");

ABSL_FLAG(std::string, m, "", "model GGUF file");
ABSL_FLAG(std::string, model, "", "model GGUF file (same as -m)");
ABSL_FLAG(std::string, p, "", "run/tokenize: prompt text; bench: prompt tokens (default 512)");
ABSL_FLAG(std::string, f, "", "run/tokenize: read the prompt from this file");
ABSL_FLAG(std::string, n, "", "run: tokens to generate (default 128); bench: generated tokens (default 128)");
ABSL_FLAG(std::string, t, "", "threads (default: all cores); bench: a list such as 1,2");
ABSL_FLAG(int64_t, c, 4096, "context size in tokens (at most the model's)");
ABSL_FLAG(int64_t, batch, 64, "prompt tokens per prefill batch");
ABSL_FLAG(double, temp, 0.8, "temperature; 0 = greedy");
ABSL_FLAG(int32_t, top_k, 40, "top-k sampling (0 = off)");
ABSL_FLAG(double, top_p, 0.95, "top-p sampling (1 = off)");
ABSL_FLAG(double, min_p, 0.05, "min-p sampling (0 = off)");
ABSL_FLAG(double, repeat_penalty, 1.0, "repeat penalty (1 = off)");
ABSL_FLAG(int32_t, repeat_last_n, 64, "tokens the repeat penalty looks back over");
ABSL_FLAG(bool, chat, false, "run: interactive multi-turn chat on stdin");
ABSL_FLAG(std::string, system, "", "run: system message (default: the model template's)");
ABSL_FLAG(bool, raw, false, "run: feed the prompt as is, without the chat template");
ABSL_FLAG(bool, ignore_eos, false, "run: keep generating past end-of-turn tokens");
ABSL_FLAG(bool, print_token_ids, false, "run: print the generated token ids instead of text");
ABSL_FLAG(bool, no_special, false, "tokenize: treat control tokens in the text as plain text");
ABSL_FLAG(std::string, tokens, "",
          "eval: comma-separated token ids; --print-llvm: token count N (1 = decode GEMV, >1 = prefill GEMM)");
ABSL_FLAG(int32_t, top, 5, "eval: logits to list per position");
ABSL_FLAG(int64_t, from, -1, "eval: first position to report (default: the last only)");
ABSL_FLAG(bool, reference, false, "eval: use the scalar reference forward pass");
ABSL_FLAG(std::string, kernel_cache, "",
          "kernel object cache directory (default: $LUMEN_CACHE_DIR or ~/.cache/lumen/kernels)");
ABSL_FLAG(bool, repack, true,
          "store Q8_0 matrices with rows interleaved 8 at a time (the kernel table's layout); "
          "--norepack keeps the file's row layout");
ABSL_FLAG(bool, huge_pages, true,
          "put the weights (a copy replacing the file pages tensor by tensor) and the KV cache in "
          "2 MB pages; --nohuge_pages --norepack reads the weights from the file mapping in place");
ABSL_FLAG(int32_t, r, 5, "bench: repetitions per test");
ABSL_FLAG(bool, profile, false, "bench: time per op class for one decode step and one prefill");
ABSL_FLAG(std::string, pg, "",
          "bench: also a prompt of P tokens then N generated, as llama-bench -pg P,N (tokens/s over both)");
ABSL_FLAG(bool, no_kernel_cache, false, "compile every kernel, read and write no object cache");

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
