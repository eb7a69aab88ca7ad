//===- PerplexityCommand.cpp - lumen-jit perplexity ------------------------===//
//
// llama-perplexity's measure on a text file: chunks of -c tokens, the second
// half of each scored. A progress bar with the running estimate on stderr;
// the final estimate on stdout, last. Ctrl-C stops after the chunk in
// progress and prints the estimate over the chunks done.
//
//===----------------------------------------------------------------------===//
#include "Commands.h"
#include "Flags.h"
#include "Interrupt.h"
#include "ModelSetup.h"

#include "lumen/Model/Perplexity.h"
#include "lumen/Model/Session.h"

#include "absl/flags/flag.h"
#include "absl/strings/str_format.h"

#include <cstdio>
#include <unistd.h>

namespace lumen::tool {

namespace {

/// "[#####-----] 3/10 chunks  PPL 12.3456 +/- 0.1234  1.2 s/chunk, 8 s left"
void printProgress(const model::PerplexityEstimate &E) {
  constexpr int Width = 24;
  const int Done = int(Width * E.Chunks / E.ChunksTotal);
  const double PerChunk = E.Seconds / E.Chunks;
  const bool Tty = isatty(STDERR_FILENO);
  std::fprintf(stderr, "%s[%s%s] %lld/%lld chunks  PPL %.4f +/- %.5f  %.2f s/chunk, %.0f s left ", Tty ? "\r" : "",
               std::string(Done, '#').c_str(), std::string(Width - Done, '-').c_str(),
               static_cast<long long>(E.Chunks), static_cast<long long>(E.ChunksTotal), E.Ppl, E.Error, PerChunk,
               PerChunk * (E.ChunksTotal - E.Chunks));
  if (!Tty || E.Chunks == E.ChunksTotal)
    std::fputc('\n', stderr);
  std::fflush(stderr);
}

} // namespace

int runPerplexity(const std::vector<std::string> &Args) {
  if (!Args.empty())
    return fail(absl::StrFormat("perplexity takes no positional arguments (got '%s')", Args[0]));
  // llama-perplexity's defaults: chunks of 512 tokens, batches of 512
  // (here at most the chunk; a batch is one forward pass).
  int64_t Chunk = flagGiven("c") ? absl::GetFlag(FLAGS_c) : 512;
  if (Chunk != 0 && Chunk < 4)
    return fail(absl::StrFormat("-c must be at least 4 tokens per chunk, or 0 for the model's context (got %d)",
                                Chunk));
  if (flagGiven("b") && flagGiven("batch"))
    return fail("-b and --batch are the same setting: give one");
  int64_t Batch = flagGiven("b") ? absl::GetFlag(FLAGS_b) : flagGiven("batch") ? absl::GetFlag(FLAGS_batch) : 512;
  if (Batch < 1)
    return fail(absl::StrFormat("-b must be a positive token count (got %d)", Batch));
  const int64_t Chunks = absl::GetFlag(FLAGS_chunks);
  if (Chunks < 0)
    return fail(absl::StrFormat("--chunks must be 0 (all) or a positive count (got %d)", Chunks));
  absl::StatusOr<std::string> Text = promptText();
  if (!Text.ok())
    return fail(std::string(Text.status().message()));
  if (Text->empty())
    return fail("perplexity needs a text: -f FILE (or -p TEXT)");

  absl::StatusOr<std::unique_ptr<model::TransformerModel>> M = loadModel();
  if (!M.ok())
    return fail(std::string(M.status().message()));
  // The default chunk is at most the model's trained context, as llama-perplexity's.
  if (Chunk == 0 || (!flagGiven("c") && Chunk > (*M)->config().ContextLength))
    Chunk = (*M)->config().ContextLength;
  if (Chunk > (*M)->config().ContextLength)
    return fail(absl::StrFormat("-c %d is more than the model's trained context of %d tokens (-c 0 takes all of it)",
                                Chunk, (*M)->config().ContextLength));
  // As llama.cpp tokenizes it: special tokens as text, BOS first where the
  // model adds one (and as each chunk's first token).
  const model::Tokenizer &Tok = (*M)->tokenizer();
  std::vector<int32_t> Tokens;
  const bool Bos = Tok.addBos() && Tok.bosId();
  if (Bos)
    Tokens.push_back(*Tok.bosId());
  std::vector<int32_t> Body = Tok.encode(*Text, /*ParseSpecial=*/false);
  Tokens.insert(Tokens.end(), Body.begin(), Body.end());
  if (int64_t(Tokens.size()) < 2 * Chunk)
    return fail(absl::StrFormat("the text is %d token%s; -c %d needs at least %d (two chunks)", Tokens.size(),
                                Tokens.size() == 1 ? "" : "s", Chunk, 2 * Chunk));

  absl::StatusOr<unsigned> Threads = threadCount();
  if (!Threads.ok())
    return fail(std::string(Threads.status().message()));
  absl::StatusOr<model::SessionOptions> Options = sessionOptions();
  if (!Options.ok())
    return fail(std::string(Options.status().message()));
  model::SessionOptions Opt = *Options;
  Opt.ContextSize = Chunk;
  Opt.Threads = *Threads;
  Opt.PrefillBatch = std::min(Batch, Chunk);
  absl::StatusOr<Engine> E = createEngine();
  if (!E.ok())
    return fail(std::string(E.status().message()));
  absl::StatusOr<std::unique_ptr<model::Session>> S = model::createJitSession(**M, *E->Cache, Opt);
  if (!S.ok())
    return fail(std::string(S.status().message()));
  if (absl::Status St = (*S)->prepare(Chunk); !St.ok())
    return fail(std::string(St.message()));

  model::PerplexityOptions PO;
  PO.ChunkTokens = Chunk;
  PO.Chunks = Chunks;
  if (Bos)
    PO.ChunkStart = *Tok.bosId();
  PO.Cancel = Interrupt::cancelFlag();
  std::fprintf(stderr, "perplexity: %zu tokens, chunks: %lld of %lld tokens (the last %lld of each scored), batch %lld\n",
               Tokens.size(), static_cast<long long>(Chunks ? std::min<int64_t>(Chunks, Tokens.size() / Chunk)
                                                             : int64_t(Tokens.size()) / Chunk),
               static_cast<long long>(Chunk), static_cast<long long>(Chunk - Chunk / 2 - 1),
               static_cast<long long>(Opt.PrefillBatch));
  Interrupt::install();
  Interrupt::setCancellable(true);
  absl::StatusOr<model::PerplexityEstimate> R = model::perplexity(**S, Tokens, PO, printProgress);
  Interrupt::setCancellable(false);
  if (!R.ok())
    return fail(std::string(R.status().message()));
  if (R->Chunks < R->ChunksTotal)
    std::fprintf(stderr, "\nstopped after %lld of %lld chunks\n", static_cast<long long>(R->Chunks),
                 static_cast<long long>(R->ChunksTotal));
  std::printf("Final estimate: PPL = %.4f +/- %.5f (chunks: %lld, %lld tokens scored, %.1f s)\n", R->Ppl, R->Error,
              static_cast<long long>(R->Chunks), static_cast<long long>(R->Scored), R->Seconds);
  return Interrupt::requested() ? 130 : 0;
}

} // namespace lumen::tool
