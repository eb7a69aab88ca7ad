//===- ThreadPool.cpp - Low-overhead parallel for --------------------------===//
#include "lumen/Runtime/ThreadPool.h"

#include <algorithm>
#include <chrono>
#include <immintrin.h>

namespace lumen::runtime {

namespace {
// Polling before sleeping, ~0.5-1 ms here (pauses of ~26 ns and the yields
// below): long enough to catch the next matmul of a forward pass, short
// enough not to burn a core when idle.
constexpr int kSpinIterations = 20000;
// A spinning thread yields its core this often, so that with more threads
// than cores the one holding a chunk is not kept off the CPU by spinners.
constexpr int kYieldEvery = 64;

/// Waits until Ready(A's value): polls for a while, then sleeps on A (a
/// futex). Returns the value that was ready.
template <typename T, typename Pred> T await(const std::atomic<T> &A, Pred Ready) {
  T V = A.load(std::memory_order_acquire);
  for (int I = 0; !Ready(V) && I < kSpinIterations; ++I) {
    if (I % kYieldEvery == kYieldEvery - 1)
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

void ThreadPool::drain() {
  for (;;) {
    int64_t Begin = Next.fetch_add(Grain, std::memory_order_relaxed);
    if (Begin >= N)
      return;
    Invoke(Ctx, Begin, std::min(N, Begin + Grain));
  }
}

bool ThreadPool::join() {
  uint64_t J = Join.load(std::memory_order_relaxed);
  while (!(J & kClosed))
    if (Join.compare_exchange_weak(J, J + 1, std::memory_order_acquire, std::memory_order_relaxed))
      return true;
  return false;
}

void ThreadPool::workerLoop() {
  uint64_t Seen = 0;
  for (;;) {
    Seen = await(Generation, [&](uint64_t G) { return G != Seen; });
    if (Stop.load(std::memory_order_relaxed))
      return;
    if (!join())
      continue; // Woke after the job was done: nothing of it is read.
    drain();
    // The last worker out of a closed job wakes the caller.
    if (Join.fetch_sub(1, std::memory_order_acq_rel) == (kClosed | 1))
      Join.notify_one();
  }
}

void ThreadPool::run(int64_t Count, int64_t ChunkSize, Thunk Fn, void *Context) {
  if (Count <= 0)
    return;
  ChunkSize = std::max<int64_t>(1, ChunkSize);
  if (Workers.empty() || Count <= ChunkSize) {
    for (int64_t Begin = 0; Begin < Count; Begin += ChunkSize)
      Fn(Context, Begin, std::min(Count, Begin + ChunkSize));
    return;
  }
  Invoke = Fn;
  Ctx = Context;
  N = Count;
  Grain = ChunkSize;
  Next.store(0, std::memory_order_relaxed);
  Join.store(0, std::memory_order_release); // Open, nobody inside.
  Generation.fetch_add(1, std::memory_order_release);
  Generation.notify_all();
  drain();
  const auto WaitStart = TimeWaits ? std::chrono::steady_clock::now() : std::chrono::steady_clock::time_point();
  // Every chunk is taken; close the job and wait for the workers inside it.
  Join.fetch_or(kClosed, std::memory_order_acq_rel);
  await(Join, [](uint64_t J) { return J == kClosed; });
  if (TimeWaits)
    WaitSeconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - WaitStart).count();
}

} // namespace lumen::runtime
