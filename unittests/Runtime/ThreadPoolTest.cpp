//===- ThreadPoolTest.cpp - parallelFor covers every index once ------------===//
#include "lumen/Runtime/ThreadPool.h"

#include "gtest/gtest.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <set>
#include <thread>
#include <time.h>
#include <utility>
#include <vector>

using namespace lumen::runtime;

namespace {

/// Four threads a core: workers that wake late are the common case.
unsigned oversubscribed() { return 4 * std::max(1u, std::thread::hardware_concurrency()); }

/// A parallelFor body that counts every index it is given into Hits.
auto countInto(std::vector<std::atomic<int>> &Hits) {
  return [&Hits](int64_t B, int64_t E) {
    for (int64_t I = B; I < E; ++I)
      Hits[I].fetch_add(1, std::memory_order_relaxed);
  };
}

TEST(ThreadPoolTest, EveryIndexExactlyOnce) {
  for (unsigned Threads : {1u, 2u, 4u}) {
    ThreadPool Pool(Threads);
    EXPECT_EQ(Pool.size(), Threads);
    for (int64_t N : {0, 1, 7, 100, 4864, 151936})
      for (int64_t Grain : {1, 16, 1000}) {
        std::vector<std::atomic<int>> Hits(N);
        Pool.parallelFor(N, Grain, [&](int64_t B, int64_t E) {
          ASSERT_LE(E - B, Grain);
          for (int64_t I = B; I < E; ++I)
            Hits[I].fetch_add(1);
        });
        for (int64_t I = 0; I < N; ++I)
          ASSERT_EQ(Hits[I].load(), 1) << "N=" << N << " grain=" << Grain << " i=" << I;
      }
  }
}

TEST(ThreadPoolTest, ManyDispatchesUseAllThreads) {
  ThreadPool Pool(2);
  std::atomic<int64_t> Sum{0};
  std::set<std::thread::id> Seen;
  std::mutex Mu;
  for (int Rep = 0; Rep < 20000; ++Rep)
    Pool.parallelFor(64, 1, [&](int64_t B, int64_t E) {
      Sum.fetch_add(E - B);
      if (Rep % 100 == 0) {
        // Keep a chunk busy so the other thread gets some too.
        std::this_thread::sleep_for(std::chrono::microseconds(20));
        std::lock_guard<std::mutex> L(Mu);
        Seen.insert(std::this_thread::get_id());
      }
    });
  EXPECT_EQ(Sum.load(), 20000 * 64);
  EXPECT_EQ(Seen.size(), 2u);
}

TEST(ThreadPoolTest, MoreThreadsThanCoresCoverEveryIndexOnce) {
  // Workers that wake late find their job closed, or join a later one;
  // either way every index of every job runs exactly once.
  ThreadPool Pool(oversubscribed());
  std::vector<std::atomic<int>> Hits(256);
  int64_t Expected = 0;
  for (int Rep = 0; Rep < 3000; ++Rep) {
    const int64_t N = 1 + Rep % 256, Grain = 1 + Rep % 5;
    Pool.parallelFor(N, Grain, countInto(Hits));
    Expected += N;
    if (Rep % 1000 == 999) {
      int64_t Sum = 0;
      for (const std::atomic<int> &H : Hits)
        Sum += H.load();
      ASSERT_EQ(Sum, Expected) << "after " << Rep + 1 << " jobs";
    }
  }
  for (int64_t I = 0; I < 256; ++I) {
    int Want = 0; // The jobs whose N exceeds I.
    for (int Rep = 0; Rep < 3000; ++Rep)
      Want += 1 + Rep % 256 > I;
    EXPECT_EQ(Hits[I].load(), Want) << "index " << I;
  }
}

TEST(ThreadPoolTest, SharesCoverEveryIndexExactlyOnce) {
  for (unsigned Threads : {1u, 2u, 3u, 4u}) {
    ThreadPool Pool(Threads);
    for (int64_t N : {0, 1, 7, 100, 1152, 4864, 151936})
      for (int64_t Grain : {1, 16, 1000}) {
        std::vector<std::atomic<int>> Hits(N);
        Pool.parallelForShares(N, Grain, [&](int64_t B, int64_t E) {
          ASSERT_LT(B, E);
          ASSERT_EQ(B % Grain, 0) << "chunks start at multiples of the grain";
          ASSERT_TRUE(E % Grain == 0 || E == N) << "only the last chunk is short";
          if (Threads == 1) {
            ASSERT_TRUE(B == 0 && E == N) << "one thread: one call";
          }
          for (int64_t I = B; I < E; ++I)
            Hits[I].fetch_add(1);
        });
        for (int64_t I = 0; I < N; ++I)
          ASSERT_EQ(Hits[I].load(), 1) << Threads << " threads, N=" << N << " grain=" << Grain << " i=" << I;
      }
  }
}

TEST(ThreadPoolTest, SharesWithMoreThreadsThanCoresMixedWithParallelFor) {
  ThreadPool Pool(oversubscribed());
  std::vector<std::atomic<int>> Hits(300);
  int64_t Expected = 0;
  for (int Rep = 0; Rep < 3000; ++Rep) {
    const int64_t N = 1 + Rep % 300, Grain = 1 + Rep % 7;
    if (Rep % 2)
      Pool.parallelForShares(N, Grain, countInto(Hits));
    else
      Pool.parallelFor(N, Grain, countInto(Hits));
    Expected += N;
  }
  int64_t Sum = 0;
  for (const std::atomic<int> &H : Hits)
    Sum += H.load();
  EXPECT_EQ(Sum, Expected);
}

TEST(ThreadPoolTest, SharesRunFrontToBackInHalvingChunksThenTheOthersAreHelpedFromTheirBacks) {
  // Two threads, 16 grains: the caller's share is [0, 8), the worker's
  // [8, 16). Each claim takes half of what is left of a share. The worker
  // stays in its first chunk, [8, 12), until the caller has run [12, 13);
  // the caller, once it has seen the worker start, runs its share front to
  // back, then the rest of the worker's from the back.
  using Range = std::pair<int64_t, int64_t>;
  ThreadPool Pool(2);
  const std::thread::id Caller = std::this_thread::get_id();
  std::mutex Mu;
  std::vector<Range> ByCaller, ByWorker;
  std::atomic<bool> WorkerStarted{false}, CallerReachedTheWorkersChunk{false}, TimedOut{false};
  auto WaitFor = [&](const std::atomic<bool> &Flag) {
    const auto Deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!Flag.load())
      if (std::chrono::steady_clock::now() > Deadline) {
        TimedOut = true;
        return;
      }
  };
  Pool.parallelForShares(16, 1, [&](int64_t B, int64_t E) {
    const bool IsCaller = std::this_thread::get_id() == Caller;
    {
      std::lock_guard<std::mutex> L(Mu);
      (IsCaller ? ByCaller : ByWorker).push_back({B, E});
    }
    if (!IsCaller) {
      WorkerStarted = true;
      WaitFor(CallerReachedTheWorkersChunk);
    } else if (B == 0) {
      WaitFor(WorkerStarted);
    } else if (B == 12) {
      CallerReachedTheWorkersChunk = true;
    }
  });
  ASSERT_FALSE(TimedOut.load()) << "the worker never joined, or the caller never helped it";
  EXPECT_EQ(ByWorker, std::vector<Range>({{8, 12}}));
  EXPECT_EQ(ByCaller, std::vector<Range>({{0, 4}, {4, 6}, {6, 7}, {7, 8}, {14, 16}, {13, 14}, {12, 13}}));
}

/// CPU time of the whole process, every thread's, in seconds.
double processCpuSeconds() {
  timespec T;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &T);
  return T.tv_sec + T.tv_nsec * 1e-9;
}

TEST(ThreadPoolTest, IdleWorkersSleepAndWake) {
  // After a job, idle workers poll for ~1 ms (kSpinIterations in
  // ThreadPool.cpp), then sleep on a futex. Past that, over 200 ms idle,
  // the process uses next to no CPU; workers that never stop polling would
  // use most of the interval each (even sharing 2 cores with other work).
  ThreadPool Pool(3);
  std::atomic<int> Count{0};
  Pool.parallelFor(10, 1, [&](int64_t, int64_t) { Count++; });
  std::this_thread::sleep_for(std::chrono::milliseconds(50)); // Past the spin.
  const double Cpu0 = processCpuSeconds();
  const auto Wall0 = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  const double Cpu = processCpuSeconds() - Cpu0;
  const double Wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - Wall0).count();
  EXPECT_LT(Cpu, 0.1 * Wall * (Pool.size() - 1)) << "idle workers used " << Cpu << " s of CPU in " << Wall << " s";

  // A new job wakes them: each of its 3 chunks waits until all 3 have
  // started, so it completes only if both sleeping workers join (the
  // caller alone would time out in its first chunk).
  std::atomic<int> Started{0};
  std::atomic<bool> TimedOut{false};
  std::mutex Mu;
  std::set<std::thread::id> Threads;
  const auto Deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  Pool.parallelFor(3, 1, [&](int64_t, int64_t) {
    {
      std::lock_guard<std::mutex> L(Mu);
      Threads.insert(std::this_thread::get_id());
    }
    Started.fetch_add(1);
    while (Started.load() < 3)
      if (std::chrono::steady_clock::now() > Deadline) {
        TimedOut = true;
        return;
      }
    Count++;
  });
  EXPECT_FALSE(TimedOut.load()) << "sleeping workers did not wake for the job";
  EXPECT_EQ(Threads.size(), 3u);
  EXPECT_EQ(Count.load(), 13);
}

} // namespace

TEST(ThreadPoolWaitTest, TheCallersWaitForASlowWorkerIsMeasuredOnlyWhenAsked) {
  ThreadPool Pool(2);
  const std::thread::id Caller = std::this_thread::get_id();
  // Two chunks run at the same time on two threads (each waits until both
  // have started); the worker's takes 200 ms, the caller's returns at once.
  // (Under a loaded ctest -j the caller can be descheduled for several ms
  // before it starts waiting: 30 ms against a 25 ms bound once measured 22.)
  auto Run = [&] {
    std::atomic<int> Started{0};
    Pool.parallelFor(2, 1, [&](int64_t, int64_t) {
      Started.fetch_add(1);
      while (Started.load() < 2)
        std::this_thread::yield();
      if (std::this_thread::get_id() != Caller)
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
    });
  };
  Run();
  EXPECT_EQ(Pool.waitSeconds(), 0.0) << "not measured by default";
  Pool.measureWaits(true);
  Run();
  const double Waited = Pool.waitSeconds();
  EXPECT_GE(Waited, 0.1);
  Pool.measureWaits(false);
  Run();
  EXPECT_EQ(Pool.waitSeconds(), Waited);
}
