//===- Scheduler.cpp - Continuous batching over slots ----------------------===//
#include "lumen/Server/Scheduler.h"

#include "lumen/Model/Tokenizer.h"

#include "absl/strings/str_format.h"

#include <algorithm>
#include <cmath>
#include <iterator>
#include <numeric>

namespace lumen::server {

namespace {

double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

/// Id's log-probability under Logits (log-softmax) and the Top best alternatives.
TokenLogprob logprobOf(const model::Tokenizer &Tok, std::span<const float> Logits, int32_t Id, int Top) {
  const float Max = *std::max_element(Logits.begin(), Logits.end());
  double Sum = 0;
  for (float L : Logits)
    Sum += std::exp(double(L) - Max);
  const double LogZ = Max + std::log(Sum);
  TokenLogprob T;
  T.Token = Tok.tokenBytes(Id);
  T.Logprob = static_cast<float>(Logits[Id] - LogZ);
  if (Top > 0) {
    std::vector<int32_t> Ids(Logits.size());
    std::iota(Ids.begin(), Ids.end(), 0);
    const size_t K = std::min<size_t>(Top, Ids.size());
    std::partial_sort(Ids.begin(), Ids.begin() + K, Ids.end(), [&](int32_t A, int32_t B) {
      return Logits[A] != Logits[B] ? Logits[A] > Logits[B] : A < B;
    });
    for (size_t I = 0; I < K; ++I)
      T.Top.emplace_back(Tok.tokenBytes(Ids[I]), static_cast<float>(Logits[Ids[I]] - LogZ));
  }
  return T;
}

/// The length of the longest suffix of Text that begins some stop string
/// (and so may complete into one with the next token).
size_t heldBack(const std::string &Text, const std::vector<std::string> &Stops) {
  size_t Keep = 0;
  for (const std::string &S : Stops)
    for (size_t L = std::min(S.size() - 1, Text.size()); L > Keep; --L)
      if (Text.compare(Text.size() - L, L, S, 0, L) == 0) {
        Keep = L;
        break;
      }
  return Keep;
}

} // namespace

bool Job::next(JobEvent &E, std::chrono::milliseconds Wait) {
  std::unique_lock<std::mutex> L(M);
  if (!CV.wait_for(L, Wait, [&] { return !Events.empty(); }))
    return false;
  E = std::move(Events.front());
  Events.pop_front();
  return true;
}

void Job::push(JobEvent E) {
  {
    std::lock_guard<std::mutex> L(M);
    Events.push_back(std::move(E));
  }
  CV.notify_all();
}

/// One sequence of the session and the job it serves, if any.
struct Scheduler::Slot {
  int32_t Seq = 0;
  std::shared_ptr<Job> J;
  std::vector<int32_t> Cached; // The tokens in the sequence's KV cache.
  size_t Fed = 0;              // Prompt tokens in the cache.
  int32_t Pending = -1;        // Sampled, to be fed at the next step.
  std::unique_ptr<model::Sampler> Smp;
  std::unique_ptr<model::StreamDecoder> Text;
  std::string Held;            // Text that may begin a stop string.
  std::vector<TokenLogprob> HeldLogprobs; // Not yet sent: their text has not begun before Held.
  size_t Sent = 0;                        // Answer bytes emitted before Held.
  int64_t Generated = 0, Reused = 0;
  uint64_t LastUse = 0;

  bool prefilling() const { return J && Fed < J->spec().Prompt.size(); }
  bool decoding() const { return J && Pending >= 0; }
};

Scheduler::Scheduler(model::BatchedSession &Session, SchedulerOptions Options)
    : Session(Session), Tok(Session.model().tokenizer()), Options(Options) {
  for (int32_t I = 0; I < Session.sequences(); ++I) {
    Slots.push_back(std::make_unique<Slot>());
    Slots.back()->Seq = I;
    Slots.back()->Cached.reserve(Session.contextSize());
  }
  Stats.Slots = Free = Session.sequences();
  Thread = std::thread([this] { run(); });
}

Scheduler::~Scheduler() { shutdown(); }

void Scheduler::shutdown() {
  {
    std::lock_guard<std::mutex> L(M);
    Stopping = true;
  }
  CV.notify_all();
  if (Thread.joinable())
    Thread.join();
}

absl::StatusOr<std::shared_ptr<Job>> Scheduler::submit(JobSpec Spec) {
  const int64_t Ctx = Session.contextSize(), Vocab = Session.model().config().Vocab;
  if (Spec.Prompt.empty())
    return absl::InvalidArgumentError("the prompt is empty");
  if (static_cast<int64_t>(Spec.Prompt.size()) >= Ctx)
    return absl::InvalidArgumentError(
        absl::StrFormat("the prompt has %d tokens; the context holds %d (the server's -c)", Spec.Prompt.size(), Ctx));
  for (int32_t T : Spec.Prompt)
    if (T < 0 || T >= Vocab)
      return absl::InvalidArgumentError(absl::StrFormat("token id %d is outside the vocabulary [0, %d)", T, Vocab));
  for (auto [T, Bias] : Spec.Sampling.LogitBias)
    if (T >= Vocab)
      return absl::InvalidArgumentError(
          absl::StrFormat("logit_bias: token id %d is outside the vocabulary [0, %d)", T, Vocab));
  if (absl::Status S = Spec.Sampling.validate(); !S.ok())
    return S;
  auto J = std::make_shared<Job>(std::move(Spec));
  {
    std::lock_guard<std::mutex> L(M);
    if (Stopping)
      return absl::FailedPreconditionError("the server is shutting down");
    // The queue holds the requests about to take the free slots too: only
    // those beyond them wait, up to the limit.
    if (Queue.size() >= Options.QueueLimit + Free) {
      ++Stats.Rejected;
      return absl::UnavailableError(
          absl::StrFormat("the server is busy: every slot is taken and the queue is full (%d waiting of at most "
                          "%d, the server's --queue)",
                          Queue.size() - Free, Options.QueueLimit));
    }
    Queue.push_back(J);
    ++Stats.Requests;
    Stats.Queued = Queue.size();
  }
  CV.notify_all();
  return J;
}

SchedulerStats Scheduler::stats() const {
  std::lock_guard<std::mutex> L(M);
  SchedulerStats S = Stats;
  S.BusySlots = Stats.Slots - Free;
  // Tokens made per second of stepping over the steps of the last 5 s (0 when idle).
  double Stepping = 0, Made = 0;
  const double Since = now() - 5;
  for (const RecentStep &R : Recent)
    if (R.End >= Since) {
      Stepping += R.Seconds;
      Made += R.Tokens;
    }
  S.DecodeTokensPerSecond = Stepping > 0 ? Made / Stepping : 0;
  return S;
}

void Scheduler::release(Slot &S) {
  S.J.reset();
  S.Pending = -1;
  S.LastUse = ++Clock;
  std::lock_guard<std::mutex> L(M);
  ++Free;
}

void Scheduler::admit(std::unique_lock<std::mutex> &) {
  while (!Queue.empty()) {
    std::shared_ptr<Job> J = Queue.front();
    if (J->cancelled()) {
      Queue.pop_front();
      ++Stats.Cancelled;
      continue;
    }
    // The idle slot whose cache shares the longest prefix with the prompt;
    // among equals, the least recently used.
    const std::vector<int32_t> &P = J->spec().Prompt;
    Slot *Best = nullptr;
    size_t BestPrefix = 0;
    for (auto &S : Slots) {
      if (S->J)
        continue;
      const size_t N = std::min(S->Cached.size(), P.size());
      const size_t Prefix = std::mismatch(P.begin(), P.begin() + N, S->Cached.begin()).first - P.begin();
      if (!Best || Prefix > BestPrefix || (Prefix == BestPrefix && S->LastUse < Best->LastUse)) {
        Best = S.get();
        BestPrefix = Prefix;
      }
    }
    if (!Best)
      return;
    Queue.pop_front();
    Slot &S = *Best;
    // At least the prompt's last token is run again: its logits start the reply.
    const size_t Reuse = std::min(BestPrefix, P.size() - 1);
    if (!Session.rewind(S.Seq, Reuse).ok()) { // Cannot happen: Cached mirrors the position.
      S.Cached.clear();
      (void)Session.rewind(S.Seq, 0);
    } else {
      S.Cached.resize(Reuse);
    }
    S.J = J;
    --Free;
    S.Fed = S.Cached.size();
    S.Pending = -1;
    S.Smp = std::make_unique<model::Sampler>(J->spec().Sampling);
    for (int32_t T : P) // As generate(): the prompt counts for the penalties.
      S.Smp->accept(T);
    S.Text = std::make_unique<model::StreamDecoder>(Tok);
    S.Held.clear();
    S.HeldLogprobs.clear();
    S.Sent = 0;
    S.Generated = 0;
    S.Reused = S.Fed;
    S.LastUse = ++Clock;
    Stats.PromptTokens += P.size();
    Stats.ReusedPromptTokens += S.Reused;
  }
}

void Scheduler::finish(Slot &S, FinishReason R) {
  JobEvent E;
  E.What = JobEvent::Done;
  E.Finish = R;
  E.Counts = {int64_t(S.J->spec().Prompt.size()), S.Generated, S.Reused};
  S.J->push(std::move(E));
  release(S);
}

void Scheduler::sampleInto(Slot &S, const float *LogitsPtr) {
  const JobSpec &Sp = S.J->spec();
  const std::span<const float> Logits(LogitsPtr, Session.model().config().Vocab);
  const int32_t Id = S.Smp->sample(Logits);
  S.Smp->accept(Id);
  if (Sp.TopLogprobs >= 0) {
    S.HeldLogprobs.push_back(logprobOf(Tok, Logits, Id, Sp.TopLogprobs));
    S.HeldLogprobs.back().TextOffset = S.Sent + S.Held.size();
  }
  // Sends Held's first N bytes with the logprobs of the tokens whose text
  // begins in them (all held logprobs when All): a token's logprob waits
  // with its text, so one that turns out to begin a stop string is never
  // sent.
  auto Emit = [&](size_t N, bool All) {
    size_t Go = 0;
    while (Go < S.HeldLogprobs.size() && (All || S.HeldLogprobs[Go].TextOffset < S.Sent + N))
      ++Go;
    if (N == 0 && Go == 0)
      return;
    JobEvent E;
    E.Piece = S.Held.substr(0, N);
    E.Logprobs.assign(std::make_move_iterator(S.HeldLogprobs.begin()),
                      std::make_move_iterator(S.HeldLogprobs.begin() + Go));
    S.HeldLogprobs.erase(S.HeldLogprobs.begin(), S.HeldLogprobs.begin() + Go);
    S.Held.erase(0, N);
    S.Sent += N;
    S.J->push(std::move(E));
  };
  const bool EndOfTurn = std::count(Tok.stopIds().begin(), Tok.stopIds().end(), Id) > 0;
  if (EndOfTurn && !Sp.IgnoreEos) {
    if (Sp.TopLogprobs >= 0) // The end of turn is not part of the answer (nor counted in its tokens).
      S.HeldLogprobs.pop_back();
    S.Held += S.Text->finish();
    Emit(S.Held.size(), true);
    finish(S, FinishReason::Stop);
    return;
  }
  ++S.Generated;
  {
    std::lock_guard<std::mutex> L(M);
    ++Stats.GeneratedTokens;
  }
  S.Held += Tok.type(Id) == model::TokenType::Control ? std::string() : S.Text->push(Id);
  // Stop strings: the text before the first one is the reply's end; text
  // that may begin one waits for the next token.
  size_t Cut = std::string::npos;
  for (const std::string &Stop : Sp.Stop)
    Cut = std::min(Cut, S.Held.find(Stop));
  if (Cut != std::string::npos) {
    // The tokens that begin at or after the stop string are not part of
    // the answer, their logprobs neither (as llama-server and OpenAI).
    while (!S.HeldLogprobs.empty() && S.HeldLogprobs.back().TextOffset >= S.Sent + Cut)
      S.HeldLogprobs.pop_back();
    Emit(Cut, true);
    finish(S, FinishReason::Stop);
    return;
  }
  Emit(S.Held.size() - heldBack(S.Held, Sp.Stop), false);
  const bool Full = static_cast<int64_t>(S.Cached.size()) >= Session.contextSize();
  if (S.Generated == Sp.MaxTokens || Full) {
    S.Held += S.Text->finish();
    Emit(S.Held.size(), true);
    finish(S, FinishReason::Length);
    return;
  }
  S.Pending = Id;
}

void Scheduler::run() {
  std::vector<model::SequenceInput> Inputs;
  std::vector<Slot *> Owners;
  std::vector<float> Logits;
  std::vector<model::BatchedSession::NonFinite> NonFinite; // The step's inputs whose logits were not.
  for (;;) {
    {
      std::unique_lock<std::mutex> L(M);
      CV.wait(L, [&] {
        return Stopping || !Queue.empty() ||
               std::any_of(Slots.begin(), Slots.end(), [](const auto &S) { return S->J != nullptr; });
      });
      if (Stopping)
        break;
      admit(L);
      Stats.Queued = Queue.size();
    }
    // Jobs whose clients went away free their slots before the step.
    for (auto &S : Slots)
      if (S->J && S->J->cancelled()) {
        release(*S);
        std::lock_guard<std::mutex> L(M);
        ++Stats.Cancelled;
      }
    // The step: every decoding slot's token, then prompt chunks in the room left.
    Inputs.clear();
    Owners.clear();
    int64_t Room = Session.batchSize();
    for (auto &S : Slots)
      if (S->decoding()) {
        Inputs.push_back({S->Seq, {&S->Pending, 1}, true});
        Owners.push_back(S.get());
        --Room;
      }
    std::vector<Slot *> Prefilling;
    for (auto &S : Slots)
      if (S->prefilling())
        Prefilling.push_back(S.get());
    std::sort(Prefilling.begin(), Prefilling.end(), [](Slot *A, Slot *B) { return A->LastUse < B->LastUse; });
    for (Slot *S : Prefilling) {
      if (Room <= 0)
        break;
      const std::vector<int32_t> &P = S->J->spec().Prompt;
      const int64_t Chunk = std::min<int64_t>(Room, P.size() - S->Fed);
      Inputs.push_back({S->Seq, std::span(P).subspan(S->Fed, Chunk), S->Fed + Chunk == P.size()});
      Owners.push_back(S);
      Room -= Chunk;
    }
    if (Inputs.empty())
      continue;
    const double Start = now();
    // A sequence whose logits are not finite fails alone; an error of the
    // whole step fails every sequence in it.
    absl::Status St = Session.step(Inputs, Logits, &NonFinite);
    const double Seconds = now() - Start;
    std::vector<const absl::Status *> Failure(Inputs.size(), St.ok() ? nullptr : &St);
    if (!St.ok() && Options.OnFailure)
      Options.OnFailure(St);
    for (const model::BatchedSession::NonFinite &NF : NonFinite) {
      Failure[NF.Input] = &NF.Error;
      if (Options.OnFailure)
        Options.OnFailure(NF.Error);
    }
    size_t Row = 0;
    int64_t Decoded = 0, Failed = 0; // Tokens sampled, sequences failed this step.
    for (size_t I = 0; I < Inputs.size(); ++I) {
      Slot &S = *Owners[I];
      if (Failure[I]) { // The sequence's cache is unknown now: start it afresh.
        JobEvent E;
        E.What = JobEvent::Error;
        E.Message = std::string(Failure[I]->message());
        S.J->push(std::move(E));
        release(S);
        S.Cached.clear();
        (void)Session.rewind(S.Seq, 0);
        Row += St.ok() && Inputs[I].Logits; // Its logits row is there, unused.
        ++Failed;
        continue;
      }
      S.Cached.insert(S.Cached.end(), Inputs[I].Tokens.begin(), Inputs[I].Tokens.end());
      if (S.Pending >= 0) {
        S.Pending = -1;
      } else {
        S.Fed += Inputs[I].Tokens.size();
      }
      if (Inputs[I].Logits) {
        sampleInto(S, &Logits[Row++ * Session.model().config().Vocab]);
        ++Decoded;
      }
    }
    std::lock_guard<std::mutex> L(M);
    Stats.Failed += Failed;
    ++Stats.Steps;
    Stats.StepSeconds += Seconds;
    Recent.push_back({Start + Seconds, Seconds, Decoded});
    while (Recent.front().End < Start + Seconds - 5)
      Recent.pop_front();
  }
  // Shutting down: every job still here ends with an error.
  std::lock_guard<std::mutex> L(M);
  JobEvent E;
  E.What = JobEvent::Error;
  E.Unavailable = true;
  E.Message = "the server is shutting down";
  for (auto &S : Slots)
    if (S->J) {
      S->J->push(E);
      S->J.reset();
    }
  for (auto &J : Queue)
    J->push(E);
  Queue.clear();
}

} // namespace lumen::server
