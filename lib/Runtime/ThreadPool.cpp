//===- ThreadPool.cpp - Low-overhead parallel for --------------------------===//
#include "lumen/Runtime/ThreadPool.h"

#include <algorithm>
#include <chrono>
#include <immintrin.h>

namespace lumen::runtime {

namespace {
// Polling before sleeping, ~0.5-1 ms here (pauses of ~21 ns and the yields
// below): long enough to catch the next matmul of a forward pass, short
// enough not to burn a core when idle.
constexpr int kSpinIterations = 20000;
// The first ~40 us poll without yielding: the gaps between the dispatches
// of a decode step are a few microseconds, and a sched_yield here takes
// ~1.4 us (a VM), so a job that opened during one waited for it.
constexpr int kPureSpinIterations = 2048;
// Then a spinning thread yields its core this often, so that with more
// threads than cores the one holding a chunk is not kept off the CPU by spinners.
constexpr int kYieldEvery = 64;

/// Waits until Ready(A's value): polls for a while, then sleeps on A (a
/// futex). Returns the value that was ready.
template <typename T, typename Pred> T await(const std::atomic<T> &A, Pred Ready) {
  T V = A.load(std::memory_order_acquire);
  for (int I = 0; !Ready(V) && I < kSpinIterations; ++I) {
    if (I >= kPureSpinIterations && I % kYieldEvery == kYieldEvery - 1)
      std::this_thread::yield();
    else
      _mm_pause();
    V = A.load(std::memory_order_acquire);
  }
  while (!Ready(V)) {
    A.wait(V, std::memory_order_acquire);
    V = A.load(std::memory_order_acquire);
  }
  return V;
}
} // namespace

ThreadPool::ThreadPool(unsigned Threads) {
  if (Threads == 0)
    Threads = std::max(1u, std::thread::hardware_concurrency());
  Shares = std::make_unique<Share[]>(Threads);
  for (unsigned I = 1; I < Threads; ++I)
    Workers.emplace_back([this] { workerLoop(); });
}

ThreadPool::~ThreadPool() {
  Stop.store(true, std::memory_order_relaxed);
  Generation.fetch_add(1, std::memory_order_release);
  Generation.notify_all();
  for (std::thread &W : Workers)
    W.join();
}

bool ThreadPool::take(unsigned S, bool Front, int64_t &Begin, int64_t &End) {
  std::atomic<uint64_t> &R = Shares[S].Range;
  uint64_t V = R.load(std::memory_order_relaxed);
  for (;;) {
    const uint64_t F = V >> 32, B = V & 0xffffffffu;
    if (F >= B)
      return false;
    // Half of what is left (at least one grain): few calls while a share
    // is long (each call is a jump in gate/up's two streams), single
    // grains at its end, where the threads meet. (Halves beat quarters and
    // 8 equal chunks; the owner taking 3/4 was no better.)
    const uint64_t Take = std::max<uint64_t>(1, (B - F) / 2);
    const uint64_t Next = Front ? (F + Take) << 32 | B : F << 32 | (B - Take);
    if (R.compare_exchange_weak(V, Next, std::memory_order_relaxed)) {
      const uint64_t First = Front ? F : B - Take;
      Begin = static_cast<int64_t>(First) * Grain;
      End = std::min(N, static_cast<int64_t>(First + Take) * Grain);
      return true;
    }
  }
}

void ThreadPool::drain(unsigned Slot) {
  if (!SharesJob) {
    for (;;) {
      int64_t Begin = Next.fetch_add(Grain, std::memory_order_relaxed);
      if (Begin >= N)
        return;
      Invoke(Ctx, Begin, std::min(N, Begin + Grain));
    }
  }
  int64_t Begin, End;
  while (take(Slot, /*Front=*/true, Begin, End))
    Invoke(Ctx, Begin, End);
  // Then help the others, from the far ends of their shares.
  const unsigned T = size();
  for (unsigned I = 1; I < T; ++I)
    while (take((Slot + I) % T, /*Front=*/false, Begin, End))
      Invoke(Ctx, Begin, End);
}

bool ThreadPool::join(unsigned &Slot) {
  uint64_t J = Join.load(std::memory_order_relaxed);
  while (!(J & kClosed))
    if (Join.compare_exchange_weak(J, J + 1, std::memory_order_acquire, std::memory_order_relaxed)) {
      // At most size() - 1 workers are inside at once: slots 1..size()-1.
      // (One that left may hand its slot on; its share is taken by then.)
      Slot = static_cast<unsigned>(J) + 1;
      return true;
    }
  return false;
}

void ThreadPool::workerLoop() {
  uint64_t Seen = 0;
  for (;;) {
    Seen = await(Generation, [&](uint64_t G) { return G != Seen; });
    if (Stop.load(std::memory_order_relaxed))
      return;
    unsigned Slot;
    if (!join(Slot))
      continue; // Woke after the job was done: nothing of it is read.
    drain(Slot);
    // The last worker out of a closed job wakes the caller.
    if (Join.fetch_sub(1, std::memory_order_acq_rel) == (kClosed | 1))
      Join.notify_one();
  }
}

void ThreadPool::run(int64_t Count, int64_t ChunkSize, Thunk Fn, void *Context, bool SharesMode) {
  if (Count <= 0)
    return;
  ChunkSize = std::max<int64_t>(1, ChunkSize);
  const int64_t Chunks = (Count + ChunkSize - 1) / ChunkSize;
  if (Workers.empty() || Chunks == 1) {
    if (SharesMode) // One thread's share is everything: one call.
      return Fn(Context, 0, Count);
    for (int64_t Begin = 0; Begin < Count; Begin += ChunkSize)
      Fn(Context, Begin, std::min(Count, Begin + ChunkSize));
    return;
  }
  Invoke = Fn;
  Ctx = Context;
  N = Count;
  Grain = ChunkSize;
  // Grain indices are packed in 32 bits; more than that take the shared
  // counter (the split would not matter at that size).
  SharesJob = SharesMode && Chunks <= int64_t(0xffffffffu);
  if (SharesJob) {
    const uint64_t T = size();
    for (uint64_t I = 0; I < T; ++I)
      Shares[I].Range.store(uint64_t(Chunks) * I / T << 32 | uint64_t(Chunks) * (I + 1) / T,
                            std::memory_order_relaxed);
  }
  Next.store(0, std::memory_order_relaxed);
  Join.store(0, std::memory_order_release); // Open, nobody inside.
  Generation.fetch_add(1, std::memory_order_release);
  Generation.notify_all();
  drain(/*Slot=*/0);
  const auto WaitStart = TimeWaits ? std::chrono::steady_clock::now() : std::chrono::steady_clock::time_point();
  // Every chunk is taken; close the job and wait for the workers inside it.
  Join.fetch_or(kClosed, std::memory_order_acq_rel);
  await(Join, [](uint64_t J) { return J == kClosed; });
  if (TimeWaits)
    WaitSeconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - WaitStart).count();
}

} // namespace lumen::runtime
