//===- Flags.cpp - lumen-jit command-line flags ----------------------------===//
#include "Flags.h"
#include "Commands.h"

#include "absl/flags/flag.h"
#include "absl/flags/reflection.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/match.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"

#include <algorithm>

ABSL_FLAG(bool, tensors, false, "inspect: also print the tensor table");
ABSL_FLAG(std::string, preset, "qwen2.5-0.5b", "synth: qwen2.5-0.5b, qwen2.5-1.5b, qwen2.5-3b, qwen2.5-7b, qwen3-0.6b, qwen3-1.7b, llama3.2-1b, llama3.2-3b, llama3.1-8b or tiny");
ABSL_FLAG(std::string, o, "", "synth: output file; bench: output format md, csv or json");
ABSL_FLAG(std::string, seed, "",
          "random seed, a non-negative integer: synth weights (default 1; a seed always writes the same "
          "bytes), run sampling (default: random, printed on stderr)");
ABSL_FLAG(std::string, tokenizer_from, "",
          "synth: copy the tokenizer from this GGUF (default: a byte-level vocabulary)");

ABSL_FLAG(bool, print_llvm, false, "print the LLVM IR generated for --shape");
ABSL_FLAG(std::string, shape, "", "--print-llvm: KxM, e.g. 896x4864 (896 in, 4864 out)");
ABSL_FLAG(std::string, isa, "host",
          "the ISA kernels are compiled and weights laid out for: host, avx2, avx512 or avx512-vnni "
          "(run/eval/bench/perplexity/serve/tune: one this CPU has, e.g. avx2 to time the AVX2 kernels on an AVX-512 host)");
ABSL_FLAG(std::string, layout, "auto",
          "--print-llvm: weight layout: auto (what the model loader stores for --isa: "
          "interleaved16 on avx512-vnni when M is a multiple of 16, else interleaved8 when M is a "
          "multiple of 8; q2_k, q3_k, f16, bf16 and f32 always rows), rows, interleaved8 or interleaved16");
ABSL_FLAG(bool, opt, false, "--print-llvm: print the IR after the O3 pipeline");
ABSL_FLAG(std::string, type, "q8_0",
          "--print-llvm: weight type: q8_0, q4_0, q4_1, q5_0, q5_1, iq4_nl, q2_k, q3_k, q4_k, q5_k, q6_k, "
          "f16, bf16 or f32");

ABSL_FLAG(std::string, m, "", "model GGUF file");
ABSL_FLAG(std::string, model, "", "model GGUF file (same as -m)");
ABSL_FLAG(std::string, p, "", "run/tokenize: prompt text; bench: prompt tokens (default 512)");
ABSL_FLAG(std::string, f, "", "run/tokenize: read the prompt from this file");
ABSL_FLAG(std::string, n, "", "run: tokens to generate (default 128); bench: generated tokens (default 128)");
ABSL_FLAG(std::string, t, "", "threads (default: all cores); bench: a list such as 1,2");
ABSL_FLAG(int64_t, c, 4096, "context size in tokens, 0 = the model's trained context (default: 4096, or the model's if shorter)");
ABSL_FLAG(int64_t, batch, 64, "prompt tokens per prefill batch");
ABSL_FLAG(int64_t, b, 512, "perplexity: tokens per batch (as --batch; at most -c)");
ABSL_FLAG(bool, allow_requantize, false,
          "quantize: accept already quantized tensors (decoded, then quantized again: the errors add up)");
ABSL_FLAG(bool, leave_output_tensor, false, "quantize: leave output.weight in its type");
ABSL_FLAG(int64_t, chunks, 0, "perplexity: chunks to score, 0 = every whole chunk of the text");
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
ABSL_FLAG(std::string, reasoning, "on",
          "run: on lets a model whose chat template thinks (Qwen3) write its <think>...</think> block first "
          "(dimmed on a terminal); off opens the reply with an empty one, so it answers at once");
ABSL_FLAG(bool, no_think, false, "run: --reasoning off");
ABSL_FLAG(bool, print_token_ids, false, "run: print the generated token ids instead of text");
ABSL_FLAG(bool, no_special, false, "tokenize: treat control tokens in the text as plain text");
ABSL_FLAG(std::string, tokens, "",
          "eval: comma-separated token ids; --print-llvm: token count N (1 = decode GEMV, >1 = prefill GEMM)");
ABSL_FLAG(int32_t, top, 5, "eval: logits to list per position");
ABSL_FLAG(std::string, from, "", "eval: first position to report (default: the last only)");
ABSL_FLAG(bool, reference, false, "eval: use the scalar reference forward pass");
ABSL_FLAG(std::string, kernel_cache, "",
          "kernel object cache directory (default: $LUMEN_CACHE_DIR or ~/.cache/lumen/kernels)");
ABSL_FLAG(bool, repack, true,
          "store Q8_0, Q4_0..Q5_1, IQ4_NL, Q4_K, Q5_K and Q6_K matrices with rows interleaved 8 or 16 at a "
          "time (the kernel table's layout); "
          "--norepack keeps the file's row layout");
ABSL_FLAG(bool, huge_pages, true,
          "put the weights (a copy replacing the file pages tensor by tensor) and the KV cache in "
          "2 MB pages; --nohuge-pages --norepack reads the weights from the file mapping in place");
ABSL_FLAG(int32_t, r, 5, "bench: repetitions per test");
ABSL_FLAG(bool, profile, false, "bench: time per op class for one decode step and one prefill");
ABSL_FLAG(std::string, pg, "",
          "bench: also a prompt of P tokens then N generated, as llama-bench -pg P,N (tokens/s over both)");
ABSL_FLAG(bool, no_kernel_cache, false, "compile every kernel, read and write no object cache");
ABSL_FLAG(double, budget, 40,
          "tune: seconds to spend measuring, in all (each kernel gets a share; the search keeps its best so far); "
          "loading the model comes on top");
ABSL_FLAG(std::string, host, "127.0.0.1", "serve: address to listen on (0.0.0.0: every interface)");
ABSL_FLAG(int32_t, port, 8080, "serve: TCP port (0: any free port, printed)");
ABSL_FLAG(int32_t, parallel, 4, "serve: slots, requests generated at once (each its own KV cache of -c tokens)");
ABSL_FLAG(int32_t, queue, 64, "serve: requests that may wait for a slot, 0 to 1024; more are answered 503");
ABSL_FLAG(std::string, api_key, "", "serve: require 'Authorization: Bearer KEY' (every endpoint but /health)");
ABSL_FLAG(std::string, alias, "", "serve: the model's name in the API (default: the file name)");
ABSL_FLAG(bool, trace, false, "tune: print every timed comparison on stderr");
ABSL_FLAG(bool, tune, false,
          "tune the model's kernels for this host first (as 'lumen-jit tune', within --budget), then go on with "
          "the tuned kernels");
ABSL_FLAG(bool, no_wisdom, false,
          "ignore the kernel choices 'lumen-jit tune' measured on this host (wisdom.txt in the kernel cache "
          "directory, which --no-kernel-cache does not move): the kernel table's choices only");

namespace lumen::tool {

namespace {

bool isHelp(std::string_view Name) {
  return Name == "h" || Name == "help" || Name == "helpfull" || Name == "helpshort" || Name == "helpon" ||
         Name == "helppackage" || Name == "?";
}

/// The name a flag argument gives, as Abseil spells names: "--ctx-size=4"
/// gives "ctx_size".
std::string flagName(std::string_view Arg) {
  const size_t Start = Arg.size() > 1 && Arg[1] == '-' ? 2 : 1;
  std::string Name(Arg.substr(Start, std::min(Arg.find('='), Arg.size()) - Start));
  std::replace(Name.begin(), Name.end(), '-', '_');
  return Name;
}

/// The flag Name sets, with its canonical name in Canonical; "norepack"
/// finds "repack" as Abseil does.
/// llama.cpp's long names for flags Lumen spells short.
constexpr std::pair<std::string_view, std::string_view> kLlamaNames[] = {
    {"ctx_size", "c"}, {"threads", "t"}, {"file", "f"}, {"prompt", "p"}, {"batch_size", "batch"}, {"n_predict", "n"}};

const absl::CommandLineFlag *lookUp(const std::string &Name, std::string *Canonical) {
  for (auto [Long, Short] : kLlamaNames)
    if (Name == Long) {
      *Canonical = std::string(Short);
      return absl::FindCommandLineFlag(*Canonical);
    }
  if (const absl::CommandLineFlag *F = absl::FindCommandLineFlag(Name)) {
    *Canonical = Name;
    return F;
  }
  // "norepack", and as llama.cpp users also write it, "no_repack" ("--no-repack").
  for (size_t Prefix : {3, 2})
    if (Name.size() > Prefix && Name.compare(0, Prefix, std::string_view("no_", Prefix)) == 0)
      if (const absl::CommandLineFlag *F = absl::FindCommandLineFlag(Name.substr(Prefix)); F && F->IsOfType<bool>()) {
        *Canonical = Name.substr(Prefix);
        return F;
      }
  return nullptr;
}

/// Why Value is no value for F, a number flag ("a whole number, not 'x'");
/// "" when it is one, or F takes text or a boolean.
std::string badNumber(const absl::CommandLineFlag &F, const std::string &Value) {
  int32_t I32;
  int64_t I64;
  double D;
  if (F.IsOfType<int32_t>() ? !absl::SimpleAtoi(Value, &I32) : F.IsOfType<int64_t>() && !absl::SimpleAtoi(Value, &I64))
    return absl::StrFormat("a whole number, not '%s'", Value);
  if (F.IsOfType<double>() && !absl::SimpleAtod(Value, &D))
    return absl::StrFormat("a number, not '%s'", Value);
  return "";
}

} // namespace

CommandLine normalizeFlagSpelling(int Argc, char **Argv) {
  CommandLine L;
  L.Storage.push_back(Argc > 0 ? Argv[0] : "lumen-jit");
  bool Rest = false, Value = false;
  for (int I = 1; I < Argc; ++I) {
    std::string A = Argv[I];
    if (Rest || Value || A.size() < 2 || A[0] != '-') {
      Value = false; // This was the previous flag's value (or a positional argument).
      L.Storage.push_back(std::move(A));
      continue;
    }
    if (A == "--") {
      Rest = true;
      L.Storage.push_back(std::move(A));
      continue;
    }
    size_t Start = A[1] == '-' ? 2 : 1;
    size_t End = std::min(A.find('='), A.size());
    const bool Inline = End < A.size(); // --flag=value
    // An empty value ("--seed=", "-p ''"), or none at all at the end of the line.
    const bool EmptyValue = Inline ? End + 1 == A.size() : I + 1 == Argc || Argv[I + 1][0] == '\0';
    const std::string Typed = A.substr(0, End); // "--ctx-size", as the user wrote it.
    std::string Name = flagName(A);
    if (isHelp(Name)) {
      L.Help = true;
      continue;
    }
    if (Name == "version") {
      L.Version = true;
      continue;
    }
    std::string Canonical;
    const absl::CommandLineFlag *F = lookUp(Name, &Canonical);
    if (!F) {
      L.Unknown.push_back(Typed);
      continue;
    }
    const bool IsBool = F->IsOfType<bool>();
    // Abseil negates a boolean as "--noNAME"; a llama.cpp name becomes ours.
    if (Canonical != Name)
      Name = IsBool ? "no" + Canonical : Canonical;
    A = A.substr(0, Start) + Name + A.substr(End);
    L.Given.push_back(Canonical);
    Value = !Inline && !IsBool; // The next argument is its value.
    // Where the value goes, another flag ("-p -n") or "--": a missing value
    // (Abseil would take it with a warning); "-p=-n" passes it as a value.
    bool FlagAsValue = false;
    if (Value && I + 1 < Argc && Argv[I + 1][0] == '-' && Argv[I + 1][1] != '\0') {
      const std::string Next = flagName(Argv[I + 1]);
      std::string Ignored;
      FlagAsValue = Next.empty() || isHelp(Next) || Next == "version" || lookUp(Next, &Ignored);
    }
    if (!IsBool && (EmptyValue || FlagAsValue))
      L.Empty.push_back(Typed);
    else if (!IsBool)
      if (std::string Bad = badNumber(*F, Inline ? A.substr(A.find('=') + 1) : std::string(Argv[I + 1])); !Bad.empty())
        L.Errors.push_back(absl::StrFormat("%s takes %s", Typed, Bad));
    // A boolean takes no value, or =true/=false (and Abseil's other spellings).
    if (IsBool && Inline) {
      const std::string V = absl::AsciiStrToLower(A.substr(End + 1));
      if (V != "true" && V != "false" && V != "1" && V != "0" && V != "yes" && V != "no" && V != "t" && V != "f" &&
          V != "y" && V != "n")
        L.Errors.push_back(absl::StrFormat("%s takes no value, not '%s'", Typed, A.substr(End + 1)));
    }
    L.Storage.push_back(std::move(A));
  }
  for (std::string &S : L.Storage)
    L.Argv.push_back(S.data());
  L.Argv.push_back(nullptr);
  return L;
}

namespace {

// Flags every command that loads a model for computing reads.
#define LUMEN_MODEL_FLAGS "m", "model", "isa", "repack", "huge_pages"

const std::vector<CommandInfo> kCommands = {
    {"run", runRun,
     "run -m FILE (-p TEXT | -f FILE | --chat) [-n N] [-t THREADS] [-c CTX] [--temp T] [--top-k K]\n"
     "              [--top-p P] [--min-p P] [--repeat-penalty R] [--seed S] [--system TEXT] [--raw]\n"
     "              [--ignore-eos] [--print-token-ids] [--reasoning on|off | --no-think]",
     "Generate text: the prompt goes through the model's chat template (--raw: as is), tokens\n"
     "stream to stdout, load/compile progress and timings to stderr. --chat is a multi-turn loop\n"
     "on stdin that keeps the KV cache. Ctrl-C stops the reply (in --chat: back to the prompt);\n"
     "a second Ctrl-C exits.",
     {LUMEN_MODEL_FLAGS, LUMEN_JIT_FLAGS, "p|prompt text", "f|read the prompt from this file",
      "n|tokens to generate, -1 = until end of turn or a full context (default: 128)",
      "t|threads (default: all cores)", "c", "batch", "temp", "top_k", "top_p", "min_p", "repeat_penalty",
      "repeat_last_n", "seed|sampling seed, a non-negative integer (default: random, printed on stderr)", "chat",
      "system", "raw", "ignore_eos", "print_token_ids", "reasoning", "no_think"}},
    {"serve", runServe,
     "serve -m FILE [--host 127.0.0.1] [--port 8080] [--parallel N] [-c CTX] [-t THREADS] [--api-key KEY]\n"
     "              [--queue N] [--alias NAME] [--batch N]",
     "An OpenAI-compatible HTTP server (/v1/chat/completions, /v1/completions, /v1/models, /health,\n"
     "/metrics, /tokenize, /detokenize, a chat page at /) with continuous batching: --parallel\n"
     "requests share each forward pass, new prompts prefilled in chunks between decode steps.\n"
     "Results are batch-invariant: equal to 'run' with the same settings and seed. Ctrl-C or\n"
     "SIGTERM ends the streams and exits 0. See docs/SERVER.md.",
     {LUMEN_MODEL_FLAGS, LUMEN_JIT_FLAGS, "host", "port", "parallel", "queue", "api_key", "alias",
      "c|context size of each slot in tokens, 0 = the model's trained context (default: 4096, or the model's if shorter)",
      "t|threads (default: all cores)", "batch|tokens a step takes at most: decode tokens and prompt chunks (default: 64)"}},
    {"tokenize", runTokenize, "tokenize -m FILE (-p TEXT | -f FILE) [--no-special]", "Print the token ids, space-separated.",
     {"m", "model", "p|the text", "f|read the text from this file", "no_special"}},
    {"eval", runEval, "eval -m FILE --tokens 1,2,3 [--top K] [--from POS] [--reference] [-t THREADS]",
     "Evaluate the ids in one batch; print JSON {\"positions\":[{\"pos\",\"argmax\",\"top\"}]}.",
     {LUMEN_MODEL_FLAGS, LUMEN_JIT_FLAGS, "tokens|comma-separated token ids", "top", "from", "reference",
      "t|threads (default: all cores)", "c|context size; grows to hold the tokens (default: 4096, or the model's if shorter)", "batch"}},
    {"bench", runBench, "bench -m FILE [-p 512] [-n 128] [-pg P,N] [--parallel P] [-t 1,2] [-r 5] [-o md|csv|json] [--profile]",
     "pp/tg (and -pg: prompt then generation) tokens/s like llama-bench, with weight GB/s\n"
     "against the measured read bandwidth; --profile adds the time per op class.",
     {LUMEN_MODEL_FLAGS, LUMEN_JIT_FLAGS, "p|prompt tokens of the pp test, 0 = none (default: 512)",
      "n|generated tokens of the tg test, 0 = none (default: 128)", "pg",
      "t|thread counts, comma-separated, e.g. 1,2 (default: all cores)", "r", "o|output format: md, csv or json (default: md)",
      "profile", "batch",
      "parallel|also tgN xP: P sequences decoding together, a token of each a step (a server's "
      "continuous batching); aggregate tokens/s (default: 1, no such test)"}},
    {"perplexity", runPerplexity, "perplexity -m FILE -f TEXT [-c 512] [-b 512] [--chunks K] [-t THREADS]",
     "Perplexity of a text as llama-perplexity computes it: chunks of -c tokens, the second half\n"
     "of each scored. A progress bar with the running estimate and its +/- on stderr, the final\n"
     "estimate on stdout. Ctrl-C stops after the chunk in progress.",
     {LUMEN_MODEL_FLAGS, LUMEN_JIT_FLAGS, "f|the text file", "p|the text itself", "c|tokens per chunk, 0 = the model's trained context (default: 512, or the model's if shorter)",
      "b", "batch|tokens per batch (as -b)", "chunks", "t|threads (default: all cores)"}},
    {"tune", runTune, "tune -m FILE [-t THREADS] [--budget SECONDS] [--batch N]",
     "Measure this host: for every matrix shape the model multiplies by, time candidate kernels\n"
     "(register tile, prefetch, accumulators, pacing, vector width) and weight layouts under\n"
     "the conditions they run in, and keep the winners that beat the kernel table's choice beyond\n"
     "the timing noise as wisdom (wisdom.txt in the kernel cache directory), which run, eval,\n"
     "bench and perplexity then use. A progress bar on stderr, a summary table on stdout.",
     {"m", "model", "isa", "kernel_cache", "no_kernel_cache",
      "t|thread counts to tune for, comma-separated, e.g. 1,2 (default: all cores)", "budget",
      "batch|prompt tokens per prefill batch the prefill kernels are timed with (default: 64)", "trace"}},
    {"inspect", runInspect, "inspect FILE [--tensors]",
     "Print a GGUF file's metadata (long arrays summarised) and, with --tensors, its tensor\n"
     "table (name, type, shape, bytes, offset).",
     {"tensors"}},
    {"synth", runSynth,
     "synth [--preset qwen2.5-0.5b|...|qwen3-1.7b|llama3.2-1b|llama3.2-3b|llama3.1-8b|tiny] -o OUT [--type PRESET] [--seed N]\n"
     "              [--tokenizer-from GGUF] [-t THREADS]",
     "Write a Qwen2, Qwen3 or Llama 3 GGUF with the real layout and random weights, quantized as it is written\n"
     "(no full-precision copy on disk) to a preset's tensor types as llama-quantize would.",
     {"preset", "o|output file",
      "type|quantization preset: Q8_0 (the default, as the published files), Q4_K_M, ... (as quantize), F16, BF16 or F32",
      "seed|weights seed; a seed always writes the same bytes (default: 1)", "tokenizer_from", "t|threads (default: all cores)"}},
    {"quantize", runQuantize,
     "quantize IN.gguf OUT.gguf TYPE [THREADS] [-t THREADS] [--allow-requantize] [--leave-output-tensor]",
     "Write IN quantized to TYPE, one of llama-quantize's presets: Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 Q2_K\n"
     "Q3_K_S Q3_K_M Q3_K_L Q4_K_S Q4_K_M Q5_K_S Q5_K_M Q6_K (or F16 BF16 F32), each tensor in the\n"
     "type llama.cpp's quantizer gives it (any case; as llama-quantize, Q3_K, Q4_K and Q5_K\n"
     "are the _M presets, and its file-type numbers work too). From F32, F16 or BF16 files\n"
     "(quantized ones with --allow-requantize). The file appears whole or not at all.",
     {"t|threads (default: all cores)", "allow_requantize", "leave_output_tensor"}},
    {"--print-llvm", runPrintLLVM,
     "--print-llvm --shape KxM [--type TYPE] [--tokens N] [--isa avx2|avx512|avx512-vnni]\n"
     "              [--layout auto|rows|interleaved8|interleaved16] [--opt] [-t THREADS] [--no-wisdom]",
     "Print the LLVM IR the kernel generator builds for a K-in, M-out matmul on N tokens (for\n"
     "this host unless --isa), with a header saying which spec and why (the tuner's wisdom or\n"
     "the kernel table); after O3 with --opt.",
     {"print_llvm", "shape", "type", "tokens|token count N: 1 = decode GEMV, > 1 = prefill GEMM (default: 1)",
      "isa|the ISA to generate for: host, avx2, avx512 or avx512-vnni (default: host)", "layout", "opt",
      "t|threads the kernel would run with, for the tuned choice (default: all cores)", "kernel_cache",
      "no_wisdom"}},
};

#undef LUMEN_MODEL_FLAGS
#undef LUMEN_JIT_FLAGS

/// "name|help for this command" or "name".
std::pair<std::string, std::string> splitEntry(const char *Entry) {
  std::pair<std::string, std::string> P = absl::StrSplit(Entry, absl::MaxSplits('|', 1));
  return P;
}

} // namespace

const CommandInfo *findCommand(const std::string &Name) {
  for (const CommandInfo &C : kCommands)
    if (Name == C.Name || (Name == "print-llvm" && std::string(C.Name) == "--print-llvm"))
      return &C;
  return nullptr;
}

std::string flagSpelling(const std::string &Name) {
  std::string S = Name;
  std::replace(S.begin(), S.end(), '_', '-');
  return (S.size() == 1 || S == "pg" ? "-" : "--") + S;
}

std::string commandHelp(const CommandInfo &C) {
  std::string Out = absl::StrFormat("usage: lumen-jit %s\n\n%s\n\nflags:\n", C.Synopsis, C.Summary);
  for (const char *Entry : C.Flags) {
    auto [Name, Override] = splitEntry(Entry);
    const absl::CommandLineFlag *F = absl::FindCommandLineFlag(Name);
    if (!F || Name == "print_llvm")
      continue;
    std::string Spelling = flagSpelling(Name);
    std::string Help = Override.empty() ? F->Help() : Override;
    // Shared help texts say which command they are for ("bench: ..."); here that is clear.
    if (size_t Colon = Help.find(": "); Colon != std::string::npos && Colon < 16 &&
                                        Help.find(' ') > Colon && Help.find(',') > Colon)
      Help.erase(0, Colon + 2);
    std::string Default = F->DefaultValue();
    if (F->IsOfType<bool>())
      Default = Default == "true" ? absl::StrFormat("on; --no%s turns it off", Spelling.substr(2)) : "";
    // A help text that states its default (say, one that depends on the model) keeps its own.
    if (Override.empty() && !Default.empty() && !absl::StrContains(Help, "(default:"))
      absl::StrAppendFormat(&Help, " (default: %s)", Default);
    // Wrapped to 100 columns beside a 21-column flag name.
    std::string Line = absl::StrFormat("  %-18s", Spelling);
    for (absl::string_view Word : absl::StrSplit(Help, ' ', absl::SkipEmpty())) {
      if (Line.size() + 1 + Word.size() > 100 && Line.size() > 21) {
        Out += Line + "\n";
        Line = std::string(20, ' ');
      }
      absl::StrAppend(&Line, " ", Word);
    }
    Out += Line + "\n";
  }
  return Out;
}

std::string generalHelp() {
  std::string Out = "Lumen: an LLVM ORC JIT inference runtime for quantized LLMs.\n\nusage:\n";
  for (const CommandInfo &C : kCommands) {
    absl::StrAppendFormat(&Out, "  lumen-jit %s\n", C.Synopsis);
    for (absl::string_view Line : absl::StrSplit(C.Summary, '\n'))
      absl::StrAppendFormat(&Out, "      %s\n", Line);
  }
  Out += "\nrun, eval, bench, perplexity, serve and tune take --isa avx2|avx512|avx512-vnni too: kernels\n"
         "and weight layout for that level instead of the host's (one this CPU has). Flags may be\n"
         "spelled with dashes or underscores. 'lumen-jit COMMAND --help' lists a command's flags with\n"
         "their defaults; 'lumen-jit --version' prints the versions and the CPU the JIT targets.\n";
  return Out;
}

namespace {
std::vector<std::string> &givenFlags() {
  static std::vector<std::string> Given;
  return Given;
}
} // namespace

void setGivenFlags(std::vector<std::string> Given) { givenFlags() = std::move(Given); }

bool flagGiven(std::string_view Canonical) {
  return std::find(givenFlags().begin(), givenFlags().end(), Canonical) != givenFlags().end();
}

std::optional<std::string> inapplicableFlag(const CommandInfo &C, const std::vector<std::string> &Given) {
  for (const std::string &G : Given)
    if (std::find_if(C.Flags.begin(), C.Flags.end(), [&](const char *F) { return splitEntry(F).first == G; }) ==
        C.Flags.end())
      return G;
  return std::nullopt;
}

} // namespace lumen::tool
