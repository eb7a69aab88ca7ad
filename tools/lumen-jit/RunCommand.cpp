//===- RunCommand.cpp - lumen-jit run --------------------------------------===//
//
// Generates text: the prompt through the chat template (or --raw), sampled
// tokens streamed to stdout as they come, progress and timings on stderr.
// --chat keeps one session across turns, so each turn prefills only itself.
//
//===----------------------------------------------------------------------===//
#include "Commands.h"
#include "Flags.h"
#include "Interrupt.h"
#include "ModelSetup.h"

#include "lumen/Model/Chat.h"
#include "lumen/Model/Generate.h"
#include "lumen/Model/Sampler.h"
#include "lumen/Model/Session.h"

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

#include <cfloat>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <optional>
#include <unistd.h>
#include <iostream>
#include <random>

namespace lumen::tool {

namespace {

struct Timings {
  int64_t PromptTokens = 0, GeneratedTokens = 0;
  double PromptSeconds = 0, GenerateSeconds = 0;
};

/// --reasoning on|off (--no-think: off): whether a model whose template
/// thinks (Qwen3) does so before its answer.
absl::StatusOr<bool> reasoningFlag() {
  const std::string R = absl::GetFlag(FLAGS_reasoning);
  if (R != "on" && R != "off")
    return absl::InvalidArgumentError(absl::StrFormat("--reasoning %s: expected on or off", R));
  if (R == "on" && flagGiven("reasoning") && absl::GetFlag(FLAGS_no_think))
    return absl::InvalidArgumentError("--reasoning on and --no-think exclude each other");
  return R == "on" && !absl::GetFlag(FLAGS_no_think);
}

/// One turn through model::generate, streaming to stdout. A reply's
/// <think>...</think> block is dimmed on a terminal.
absl::StatusOr<model::GenerateResult> turn(model::Session &S, model::Sampler &Smp,
                                           std::span<const int32_t> Prompt, int64_t MaxNew, Timings &T) {
  const bool PrintIds = absl::GetFlag(FLAGS_print_token_ids);
  const model::Tokenizer &Tok = S.model().tokenizer();
  const bool Dim = !PrintIds && isatty(fileno(stdout));
  const std::optional<int32_t> ThinkOpen = Tok.find("<think>"), ThinkClose = Tok.find("</think>");
  model::GenerateOptions O;
  O.MaxTokens = MaxNew;
  O.StopAtEndOfTurn = !absl::GetFlag(FLAGS_ignore_eos);
  O.Cancel = Interrupt::cancelFlag();
  bool First = true;
  absl::StatusOr<model::GenerateResult> R =
      model::generate(S, Smp, Prompt, O, [&](int32_t Id, std::string_view Text) {
        if (PrintIds && Id >= 0)
          std::printf(First ? "%d" : " %d", Id);
        else if (!PrintIds) {
          if (Dim && ThinkOpen && Id == *ThinkOpen)
            std::fputs("\033[2m", stdout);
          std::fwrite(Text.data(), 1, Text.size(), stdout);
          if (Dim && ThinkClose && Id == *ThinkClose)
            std::fputs("\033[22m", stdout);
        }
        First = false;
        std::fflush(stdout);
        return true;
      });
  std::printf("\n");
  std::fflush(stdout);
  if (!R.ok())
    return R;
  if (R->Reason == model::StopReason::Cancelled)
    std::fprintf(stderr, "lumen-jit: interrupted\n");
  if (R->Reason == model::StopReason::ContextFull)
    std::fprintf(stderr, "lumen-jit: the context (%lld tokens) is full; stopping\n",
                 static_cast<long long>(S.contextSize()));
  T.PromptTokens += R->PromptTokens;
  T.PromptSeconds += R->PromptSeconds;
  T.GeneratedTokens += R->GeneratedTokens;
  T.GenerateSeconds += R->GenerateSeconds;
  return R;
}

void printTimings(const Timings &T, double LoadSeconds, const runtime::KernelCache &Cache) {
  runtime::KernelCache::Stats K = Cache.stats();
  std::fprintf(stderr,
               "\nlumen-jit: load %.2f s | JIT %u kernels compiled, %u from cache, %.2f s | "
               "prompt %lld tokens %.2f s (%.1f tok/s) | generation %lld tokens %.2f s (%.1f tok/s)\n",
               LoadSeconds, K.Compiled, K.DiskHits, K.Seconds, static_cast<long long>(T.PromptTokens),
               T.PromptSeconds, T.PromptTokens / std::max(T.PromptSeconds, 1e-9),
               static_cast<long long>(T.GeneratedTokens), T.GenerateSeconds,
               T.GeneratedTokens / std::max(T.GenerateSeconds, 1e-9));
}

} // namespace

/// -n: a token count, or -1 for "until end of turn or a full context" (as
/// llama.cpp's -n -1).
static absl::StatusOr<int64_t> maxNewTokens() {
  if (absl::GetFlag(FLAGS_n) == "-1")
    return -1;
  absl::StatusOr<int64_t> N = parseCount("-n", absl::GetFlag(FLAGS_n), 128);
  if (!N.ok())
    return absl::InvalidArgumentError(absl::StrCat(N.status().message(), ", or -1 for no limit"));
  return N;
}

int runRun(const std::vector<std::string> &Args) {
  if (!Args.empty())
    return fail(absl::StrFormat("run takes no positional arguments (got '%s')", Args[0]));
  absl::StatusOr<int64_t> MaxNew = maxNewTokens();
  if (!MaxNew.ok())
    return fail(std::string(MaxNew.status().message()));
  absl::StatusOr<unsigned> Threads = threadCount();
  if (!Threads.ok())
    return fail(std::string(Threads.status().message()));
  // The sampler takes floats: a value beyond float's range is refused as typed.
  for (auto [Name, V] : {std::pair{"--temp", absl::GetFlag(FLAGS_temp)}, {"--top-p", absl::GetFlag(FLAGS_top_p)},
                         {"--min-p", absl::GetFlag(FLAGS_min_p)}, {"--repeat-penalty", absl::GetFlag(FLAGS_repeat_penalty)}})
    if (std::isfinite(V) && (std::fabs(V) > FLT_MAX || (V != 0 && std::fabs(V) < FLT_MIN)))
      return fail(absl::StrFormat("%s %g is out of range", Name, V));
  model::SamplerOptions SO;
  SO.Temperature = static_cast<float>(absl::GetFlag(FLAGS_temp));
  SO.TopK = absl::GetFlag(FLAGS_top_k);
  SO.TopP = static_cast<float>(absl::GetFlag(FLAGS_top_p));
  SO.MinP = static_cast<float>(absl::GetFlag(FLAGS_min_p));
  SO.RepeatPenalty = static_cast<float>(absl::GetFlag(FLAGS_repeat_penalty));
  SO.RepeatLastN = absl::GetFlag(FLAGS_repeat_last_n);
  absl::StatusOr<std::optional<uint64_t>> Seed = seedFlag();
  if (!Seed.ok())
    return fail(std::string(Seed.status().message()));
  // Without --seed a random one, printed so that a run can be repeated.
  SO.Seed = Seed->has_value() ? **Seed : (uint64_t(std::random_device{}()) << 32 | std::random_device{}());
  if (absl::Status St = SO.validate(); !St.ok())
    return fail(std::string(St.message()));
  const bool Chat = absl::GetFlag(FLAGS_chat), Raw = absl::GetFlag(FLAGS_raw);
  std::string System = absl::GetFlag(FLAGS_system);
  if (Raw && Chat)
    return fail("--raw and --chat exclude each other: a chat goes through the template");
  if (Raw && !System.empty())
    return fail("--system has no effect with --raw (the prompt is fed as is); put it in the prompt");
  absl::StatusOr<bool> ThinkingOr = reasoningFlag();
  if (!ThinkingOr.ok())
    return fail(std::string(ThinkingOr.status().message()));
  const bool Thinking = *ThinkingOr;
  if (Raw && !Thinking)
    return fail("--no-think / --reasoning off have no effect with --raw (the prompt is fed as is)");
  absl::StatusOr<std::string> Prompt = promptText();
  if (!Prompt.ok())
    return fail(std::string(Prompt.status().message()));
  if (Prompt->empty() && !Chat)
    return fail("no prompt: pass -p TEXT or -f FILE (or --chat)");

  absl::StatusOr<std::string> Path = modelPath(); // Before saying it loads.
  if (!Path.ok())
    return fail(std::string(Path.status().message()));
  Interrupt::install();
  std::fprintf(stderr, "lumen-jit: loading model\n");
  double LoadSeconds = 0;
  absl::StatusOr<std::unique_ptr<model::TransformerModel>> M = loadModel(&LoadSeconds);
  if (!M.ok())
    return fail(std::string(M.status().message()));
  const model::TransformerModel &Model = **M;
  const model::Tokenizer &Tok = Model.tokenizer();
  absl::StatusOr<int64_t> Ctx = contextSize(Model);
  if (!Ctx.ok())
    return fail(std::string(Ctx.status().message()));
  absl::StatusOr<Engine> E = createEngine();
  if (!E.ok())
    return fail(std::string(E.status().message()));
  absl::StatusOr<model::SessionOptions> Options = sessionOptions();
  if (!Options.ok())
    return fail(std::string(Options.status().message()));
  model::SessionOptions Opt = *Options;
  Opt.ContextSize = *Ctx;
  Opt.Threads = *Threads;
  absl::StatusOr<std::unique_ptr<model::Session>> S = model::createJitSession(Model, *E->Cache, Opt);
  if (!S.ok())
    return fail(std::string(S.status().message()));
  model::Sampler Smp(SO);
  if (SO.Temperature > 0)
    std::fprintf(stderr, "lumen-jit: sampling with seed %llu%s\n", static_cast<unsigned long long>(SO.Seed),
                 Seed->has_value() ? "" : " (--seed to repeat)");

  if (System.empty())
    System = model::defaultSystemPrompt(Tok.chatTemplate());
  const model::ChatFormat Format = model::chatFormatOf(Tok.chatTemplate(), Model.config().Arch->Chat);
  if (!Thinking && !model::chatTemplateThinks(Tok.chatTemplate()))
    std::fprintf(stderr, "lumen-jit: note: this model's chat template does not think; --no-think changes nothing\n");
  auto TurnText = [&](const std::string &User, bool First) {
    std::vector<model::ChatMessage> Msgs;
    if (First && !System.empty())
      Msgs.push_back({"system", System});
    Msgs.push_back({"user", User});
    return model::renderChat(Tok.chatTemplate(), Msgs, true, Thinking, Format);
  };
  auto Encode = [&](const std::string &Text, bool First) {
    std::vector<int32_t> Ids;
    if (First && Tok.addBos())
      Ids.push_back(*Tok.bosId());
    std::vector<int32_t> Rest = Tok.encode(Text, /*ParseSpecial=*/true);
    Ids.insert(Ids.end(), Rest.begin(), Rest.end());
    return Ids;
  };

  Timings T;
  if (!Chat) {
    std::vector<int32_t> Ids = Encode(Raw ? *Prompt : TurnText(*Prompt, true), true);
    if (static_cast<int64_t>(Ids.size()) >= (*S)->contextSize())
      return fail(absl::StrFormat("the prompt has %d tokens; the context holds %d (raise -c)", Ids.size(),
                                  (*S)->contextSize()));
    if (*MaxNew > (*S)->contextSize() - static_cast<int64_t>(Ids.size()))
      std::fprintf(stderr, "lumen-jit: warning: -n %lld goes past the %lld-token context; generation "
                           "stops when it is full\n",
                   static_cast<long long>(*MaxNew), static_cast<long long>((*S)->contextSize()));
    std::fprintf(stderr, "lumen-jit: compiling kernels\n");
    if (absl::Status St = (*S)->prepare(Ids.size()); !St.ok())
      return fail(std::string(St.message()));
    Interrupt::setCancellable(true);
    absl::StatusOr<model::GenerateResult> R = turn(**S, Smp, Ids, *MaxNew, T);
    Interrupt::setCancellable(false);
    if (!R.ok())
      return fail(std::string(R.status().message()));
    printTimings(T, LoadSeconds, *E->Cache);
    return Interrupt::requested() ? 130 : 0;
  }

  // Interactive chat: the KV cache carries the conversation; each turn adds
  // what the previous answer left unevaluated, its end of turn and the new
  // user message, so that the cache holds exactly the conversation shown.
  if (absl::Status St = (*S)->prepare(64); !St.ok())
    return fail(std::string(St.message()));
  std::fprintf(stderr, "lumen-jit: chat (empty line or EOF ends it; Ctrl-C stops a reply)\n");
  std::vector<int32_t> Carry;
  std::string Line = *Prompt; // -p, if given, is the first message.
  for (bool First = true;;) {
    Interrupt::setCancellable(true); // At the prompt Ctrl-C ends the chat (the read fails).
    Interrupt::clear();
    if (Line.empty()) {
      std::fprintf(stderr, "> ");
      if (!std::getline(std::cin, Line))
        break;
      if (!Line.empty() && Line.back() == '\r') // A CRLF terminal or file.
        Line.pop_back();
      if (Line.empty())
        break;
    }
    std::vector<int32_t> Ids = Carry;
    std::vector<int32_t> Turn = Encode(TurnText(Line, First), First);
    Ids.insert(Ids.end(), Turn.begin(), Turn.end());
    Line.clear();
    if (static_cast<int64_t>(Ids.size()) >= (*S)->contextSize() - (*S)->position()) {
      std::fprintf(stderr, "lumen-jit: the conversation no longer fits in the context (%lld tokens)\n",
                   static_cast<long long>((*S)->contextSize()));
      break;
    }
    // This turn's prompt kernels (a size not seen yet) are compiled before
    // its timing starts, so they count as JIT time, not prompt time.
    if (absl::Status St = (*S)->prepare(Ids.size()); !St.ok())
      return fail(std::string(St.message()));
    absl::StatusOr<model::GenerateResult> R = turn(**S, Smp, Ids, *MaxNew, T);
    if (!R.ok())
      return fail(std::string(R.status().message()));
    if (R->Reason == model::StopReason::Cancelled && R->PromptTokens == 0)
      continue; // Stopped in the prompt: the session is as before this turn.
    First = false;
    Carry.clear();
    if (R->PendingToken >= 0)
      Carry.push_back(R->PendingToken);
    // The turn's end token, where the vocabulary has it (else a newline).
    const std::string TurnEnd = model::chatTurnEnd(Format);
    const bool HasEnd = Tok.find(Format == model::ChatFormat::Llama3 ? "<|eot_id|>" : "<|im_end|>").has_value();
    std::vector<int32_t> End = Tok.encode(HasEnd ? TurnEnd : "\n", true);
    Carry.insert(Carry.end(), End.begin(), End.end());
  }
  Interrupt::setCancellable(false);
  printTimings(T, LoadSeconds, *E->Cache);
  return Interrupt::requested() ? 130 : 0;
}

} // namespace lumen::tool
