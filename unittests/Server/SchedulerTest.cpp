//===- SchedulerTest.cpp - Jobs from many threads, no HTTP ------------------===//
//
// The scheduler alone (run under TSan in CI): jobs submitted, read and
// cancelled from many threads; every finished job's tokens equal the same
// job run alone; the queue bound; shutdown with jobs running and waiting.
//
//===----------------------------------------------------------------------===//
#include "Model/FidelityUtil.h"

#include "lumen/Model/BatchedSession.h"
#include "lumen/Runtime/Jit.h"
#include "lumen/Runtime/KernelCache.h"
#include "lumen/Server/Scheduler.h"

#include "absl/strings/str_format.h"
#include "gtest/gtest.h"

#include <thread>

using namespace lumen;
using namespace lumen::model;
using namespace lumen::server;

namespace {

struct Fixture {
  std::unique_ptr<runtime::Jit> J = std::move(*runtime::Jit::create());
  runtime::KernelCache Cache{*J};
  std::unique_ptr<TransformerModel> M;
  Fixture() {
    SynthOptions O = test::smallSynthetic(gguf::TensorType::Q8_0, /*Tied=*/true, 81);
    const std::string Path = absl::StrFormat("%s/scheduler-small.gguf", LUMEN_TEST_TMPDIR);
    EXPECT_TRUE(writeSyntheticModel(O, Path).ok());
    M = std::move(*TransformerModel::load(Path));
  }
  std::unique_ptr<BatchedSession> session(int32_t Slots) {
    SessionOptions O;
    O.ContextSize = 256;
    O.PrefillBatch = 16;
    O.Threads = 2;
    return std::move(*createJitBatchedSession(*M, Cache, O, Slots));
  }
};

Fixture &fixture() {
  static Fixture F;
  return F;
}

JobSpec spec(int I, int64_t MaxTokens) {
  JobSpec S;
  for (int T = 0; T < 5 + I % 23; ++T)
    S.Prompt.push_back((I * 131 + T * 7) % 1000);
  S.Sampling.Temperature = I % 2 ? 0.8f : 0;
  S.Sampling.Seed = I;
  S.MaxTokens = MaxTokens;
  S.IgnoreEos = true;
  S.TopLogprobs = I % 3 == 0 ? 2 : -1;
  return S;
}

/// The job's whole output: text, logprobs and the end.
std::string drain(Job &J) {
  std::string Out;
  for (;;) {
    JobEvent E;
    if (!J.next(E, std::chrono::milliseconds(100)))
      continue;
    if (E.What == JobEvent::Text) {
      Out += E.Piece;
      for (const TokenLogprob &L : E.Logprobs)
        Out += absl::StrFormat("[%a]", L.Logprob);
    } else {
      return Out + (E.What == JobEvent::Done ? absl::StrFormat("|done %d %d", int(E.Finish), E.Counts.CompletionTokens)
                                             : "|error " + E.Message);
    }
  }
}

TEST(SchedulerTest, ManyThreadsSubmitReadAndCancel) {
  std::vector<std::string> Alone;
  {
    auto S = fixture().session(1);
    Scheduler Jobs(*S, {});
    for (int I = 0; I < 12; ++I)
      Alone.push_back(drain(**Jobs.submit(spec(I, 6 + I % 5))));
  }
  auto S = fixture().session(4);
  Scheduler Jobs(*S, {});
  std::vector<std::thread> Threads;
  std::vector<std::string> Got(24);
  for (int I = 0; I < 24; ++I)
    Threads.emplace_back([&, I] {
      if (I % 4 == 3) { // Cancelled after its first event.
        auto J = Jobs.submit(spec(100 + I, 100000));
        ASSERT_TRUE(J.ok());
        JobEvent E;
        while (!(*J)->next(E, std::chrono::milliseconds(100))) {
        }
        (*J)->cancel();
        return;
      }
      auto J = Jobs.submit(spec(I % 12, 6 + I % 12 % 5));
      ASSERT_TRUE(J.ok());
      Got[I] = drain(**J);
    });
  for (std::thread &T : Threads)
    T.join();
  for (int I = 0; I < 24; ++I) {
    if (I % 4 != 3) {
      EXPECT_EQ(Got[I], Alone[I % 12]) << "job " << I;
    }
  }
  for (int W = 0; W < 200 && Jobs.stats().BusySlots > 0; ++W)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  const SchedulerStats St = Jobs.stats();
  EXPECT_EQ(St.BusySlots, 0);
  EXPECT_EQ(St.Queued, 0);
  EXPECT_EQ(St.Requests, 24);
  EXPECT_EQ(St.Cancelled, 6);
}

TEST(SchedulerTest, QueueBoundAndBadJobs) {
  auto S = fixture().session(1);
  SchedulerOptions O;
  O.QueueLimit = 1;
  Scheduler Jobs(*S, O);
  JobSpec Empty;
  EXPECT_TRUE(absl::IsInvalidArgument(Jobs.submit(Empty).status()));
  JobSpec Long = spec(0, 1);
  Long.Prompt.assign(256, 1);
  EXPECT_NE(Jobs.submit(Long).status().message().find("context holds 256"), std::string::npos);
  JobSpec BadId = spec(0, 1);
  BadId.Prompt.push_back(5000);
  EXPECT_NE(Jobs.submit(BadId).status().message().find("outside the vocabulary"), std::string::npos);
  auto Running = Jobs.submit(spec(1, 100000));
  ASSERT_TRUE(Running.ok());
  while (Jobs.stats().BusySlots == 0)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  auto Waiting = Jobs.submit(spec(2, 3));
  ASSERT_TRUE(Waiting.ok());
  absl::Status Full = Jobs.submit(spec(3, 3)).status();
  EXPECT_TRUE(absl::IsUnavailable(Full));
  EXPECT_NE(Full.message().find("the queue is full (1 waiting of at most 1, the server's --queue)"), std::string::npos)
      << Full;
  Jobs.shutdown(); // Both end with an error; nothing hangs.
  EXPECT_NE(drain(**Running).find("|error the server is shutting down"), std::string::npos);
  EXPECT_NE(drain(**Waiting).find("|error the server is shutting down"), std::string::npos);
  EXPECT_TRUE(absl::IsFailedPrecondition(Jobs.submit(spec(4, 3)).status()));
}

TEST(SchedulerTest, ContextFullEndsWithLength) {
  auto S = fixture().session(1);
  Scheduler Jobs(*S, {});
  JobSpec J = spec(5, -1);
  J.Prompt.assign(250, 3);
  const std::string Out = drain(**Jobs.submit(J));
  // Length: 6 tokens fill positions 250..255, and a 7th is sampled from the
  // last one's logits (as run's generate(), which stops at a full context).
  EXPECT_NE(Out.find("|done 1 7"), std::string::npos) << Out;
}

/// A session whose steps from the FailFrom-th on (0-based) fail: all of
/// the step, or (OnlySequence >= 0) that sequence's logits, reported as not
/// finite as the JIT session does.
class FailingSession : public BatchedSession {
public:
  FailingSession(std::unique_ptr<BatchedSession> Inner, int FailFrom, int32_t OnlySequence = -1)
      : Inner(std::move(Inner)), FailFrom(FailFrom), OnlySequence(OnlySequence) {}
  absl::Status step(std::span<const SequenceInput> Inputs, std::vector<float> &Logits,
                    std::vector<NonFinite> *Failed) override {
    if (Steps++ < FailFrom)
      return Inner->step(Inputs, Logits, Failed);
    if (OnlySequence < 0)
      return absl::DataLossError("the logits at position 3 are not finite");
    if (absl::Status S = Inner->step(Inputs, Logits, Failed); !S.ok())
      return S;
    for (size_t I = 0; I < Inputs.size(); ++I)
      if (Inputs[I].Sequence == OnlySequence && Inputs[I].Logits)
        Failed->push_back({I, absl::DataLossError("the logits of one sequence are not finite")});
    return absl::OkStatus();
  }
  absl::Status prepare() override { return Inner->prepare(); }
  int64_t position(int32_t Sequence) const override { return Inner->position(Sequence); }
  absl::Status rewind(int32_t Sequence, int64_t P) override { return Inner->rewind(Sequence, P); }
  int32_t sequences() const override { return Inner->sequences(); }
  int64_t contextSize() const override { return Inner->contextSize(); }
  int64_t batchSize() const override { return Inner->batchSize(); }
  int64_t sequenceBytes() const override { return Inner->sequenceBytes(); }
  const TransformerModel &model() const override { return Inner->model(); }

private:
  std::unique_ptr<BatchedSession> Inner;
  int FailFrom, Steps = 0;
  int32_t OnlySequence;
};

TEST(SchedulerTest, AFailedStepEndsItsRequestsCountedAndReported) {
  FailingSession S(fixture().session(2), /*FailFrom=*/2);
  std::vector<std::string> Reported;
  SchedulerOptions O;
  O.OnFailure = [&](const absl::Status &St) { Reported.push_back(std::string(St.message())); };
  Scheduler Jobs(S, O);
  // Both requests are running when the third step fails: both end with its error.
  auto A = Jobs.submit(spec(1, 50)), B = Jobs.submit(spec(2, 50));
  ASSERT_TRUE(A.ok() && B.ok());
  for (auto *J : {&*A, &*B})
    EXPECT_NE(drain(**J).find("|error the logits at position 3 are not finite"), std::string::npos);
  Jobs.shutdown();
  EXPECT_EQ(Jobs.stats().Failed, 2);
  EXPECT_EQ(Reported, std::vector<std::string>{"the logits at position 3 are not finite"});
}

TEST(SchedulerTest, ASequenceWhoseLogitsAreNotFiniteFailsAlone) {
  // What each request makes alone.
  std::string AloneA, AloneB;
  {
    auto S = fixture().session(2);
    Scheduler Jobs(*S, {});
    AloneA = drain(**Jobs.submit(spec(2, 8)));
    AloneB = drain(**Jobs.submit(spec(1, 8)));
  }
  // Sequence 1's logits are not finite from the third step on.
  FailingSession S(fixture().session(2), /*FailFrom=*/2, /*OnlySequence=*/1);
  int Reported = 0;
  SchedulerOptions O;
  O.OnFailure = [&](const absl::Status &) { ++Reported; };
  Scheduler Jobs(S, O);
  auto A = Jobs.submit(spec(2, 8)), B = Jobs.submit(spec(1, 8));
  ASSERT_TRUE(A.ok() && B.ok());
  const std::string OutA = drain(**A), OutB = drain(**B);
  Jobs.shutdown();
  // Which slot each took is the scheduler's choice: one failed, the other is as alone.
  const bool AFailed = OutA.find("|error") != std::string::npos;
  EXPECT_NE((AFailed ? OutA : OutB).find("|error the logits of one sequence are not finite"), std::string::npos)
      << OutA << "\n" << OutB;
  EXPECT_EQ(AFailed ? OutB : OutA, AFailed ? AloneB : AloneA);
  EXPECT_EQ(Jobs.stats().Failed, 1);
  EXPECT_EQ(Reported, 1);
}

} // namespace
