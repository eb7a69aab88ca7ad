//===- lumen/Server/Scheduler.h - Continuous batching over slots -*- C++ -*-===//
//
// The scheduler owns a BatchedSession of N slots (sequences) and one thread
// that steps it: each step decodes every active slot's next token and
// prefills chunks of new prompts in the room left, all in one forward pass
// (so a long prompt does not stall the streams, and the weights are read
// once per step for all of them). Requests beyond the slots wait in a
// bounded queue. A new request takes the idle slot whose cached tokens
// share the longest prefix with its prompt and prefills only the rest.
// Requests and their results are plain data: no HTTP here.
//
// Results are batch-invariant (BatchedSession.h): a request's tokens and
// logprobs do not depend on the other requests, the slot, or the prefix
// reuse, and equal `lumen-jit run`'s with the same settings and seed.
//
//===----------------------------------------------------------------------===//
#ifndef LUMEN_SERVER_SCHEDULER_H
#define LUMEN_SERVER_SCHEDULER_H

#include "lumen/Export.h"

#include "lumen/Model/BatchedSession.h"
#include "lumen/Model/Sampler.h"
#include "lumen/Server/Protocol.h"

#include "absl/status/statusor.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace lumen::server {

/// What a job asks for: the prompt's tokens and how to generate.
struct LUMEN_API JobSpec {
  std::vector<int32_t> Prompt;
  model::SamplerOptions Sampling;
  int64_t MaxTokens = -1; // -1: until a stop or the context is full.
  std::vector<std::string> Stop;
  bool IgnoreEos = false;
  int TopLogprobs = -1;   // -1: no logprobs; 0..: with that many alternatives.
};

/// What a job produces, in order: text pieces (with their tokens' logprobs),
/// then one Done (or Error).
struct LUMEN_API JobEvent {
  enum Kind { Text, Done, Error } What = Text;
  std::string Piece;
  std::vector<TokenLogprob> Logprobs;
  FinishReason Finish = FinishReason::Stop;
  Usage Counts;
  std::string Message;      // Error.
  bool Unavailable = false; // Error: the server is stopping (503), not a failure (500).
};

/// One request in flight: the scheduler pushes events, the caller pulls them.
class LUMEN_API Job {
public:
  explicit Job(JobSpec Spec) : Spec(std::move(Spec)) {}
  /// The next event, waiting up to Wait; false on timeout.
  bool next(JobEvent &E, std::chrono::milliseconds Wait);
  /// Stops the job: its slot is freed at the next step (a client that went away).
  void cancel() { Cancelled.store(true); }
  bool cancelled() const { return Cancelled.load(); }
  const JobSpec &spec() const { return Spec; }

private:
  friend class Scheduler;
  void push(JobEvent E);

  JobSpec Spec;
  std::atomic<bool> Cancelled{false};
  std::mutex M;
  std::condition_variable CV;
  std::deque<JobEvent> Events;
};

struct LUMEN_API SchedulerOptions {
  size_t QueueLimit = 64; // Requests waiting for a slot; more are refused.
  /// Called (on the stepping thread) with the error that ended a running
  /// request: the server logs it, since its client may be gone.
  std::function<void(const absl::Status &)> OnFailure;
};

/// Counters for /metrics.
struct LUMEN_API SchedulerStats {
  int64_t Slots = 0, BusySlots = 0, Queued = 0;
  int64_t Requests = 0, Rejected = 0, Cancelled = 0;
  int64_t Failed = 0; // Running requests a forward pass's error ended.
  int64_t PromptTokens = 0, ReusedPromptTokens = 0, GeneratedTokens = 0;
  int64_t Steps = 0;
  double StepSeconds = 0;     // In steps, all told.
  double DecodeTokensPerSecond = 0; // Tokens sampled per second of stepping, over the last 5 s.
};

class LUMEN_API Scheduler {
public:
  /// Starts the stepping thread over Session (its sequences are the slots).
  Scheduler(model::BatchedSession &Session, SchedulerOptions Options);
  ~Scheduler();

  /// Queues a job. Unavailable when the queue is full; InvalidArgument when
  /// the prompt is empty, does not fit the context, or holds ids outside
  /// the vocabulary; FailedPrecondition after shutdown.
  absl::StatusOr<std::shared_ptr<Job>> submit(JobSpec Spec);
  /// Stops taking jobs, ends the queued and running ones with an error
  /// event, and joins the thread.
  void shutdown();
  SchedulerStats stats() const;

private:
  struct Slot;
  void run();
  void admit(std::unique_lock<std::mutex> &Lock);
  void finish(Slot &S, FinishReason R);
  /// Frees S's slot (its cache kept for prefix reuse).
  void release(Slot &S);
  void sampleInto(Slot &S, const float *Logits);

  model::BatchedSession &Session;
  const model::Tokenizer &Tok;
  SchedulerOptions Options;
  std::vector<std::unique_ptr<Slot>> Slots;
  mutable std::mutex M;
  std::condition_variable CV;
  std::deque<std::shared_ptr<Job>> Queue;
  bool Stopping = false;
  int64_t Free = 0; // Slots without a job (the queue's first requests take them at the next step).
  SchedulerStats Stats;
  uint64_t Clock = 0; // Slot use order, for the least recently used.
  struct RecentStep {
    double End, Seconds;
    int64_t Tokens;
  };
  std::deque<RecentStep> Recent; // The last few seconds' steps.
  std::thread Thread;
};

} // namespace lumen::server

#endif
