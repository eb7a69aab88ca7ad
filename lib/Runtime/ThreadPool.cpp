//===- ThreadPool.cpp - Low-overhead parallel for --------------------------===//
#include "lumen/Runtime/ThreadPool.h"

#include <algorithm>
#include <chrono>
#include <immintrin.h>

namespace lumen::runtime {

namespace {
// About 20-50 us of polling before sleeping: long enough to catch the next
// matmul of a forward pass, short enough not to burn a core when idle.
constexpr int kSpinIterations = 20000;
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

void ThreadPool::workerLoop() {
  uint64_t Seen = 0;
  for (;;) {
    uint64_t G = Generation.load(std::memory_order_acquire);
    for (int I = 0; G == Seen && I < kSpinIterations; ++I) {
      _mm_pause();
      G = Generation.load(std::memory_order_acquire);
    }
    while (G == Seen) {
      Generation.wait(Seen, std::memory_order_acquire);
      G = Generation.load(std::memory_order_acquire);
    }
    Seen = G;
    if (Stop.load(std::memory_order_relaxed))
      return;
    drain();
    if (Done.fetch_add(1, std::memory_order_acq_rel) + 1 == Workers.size())
      Done.notify_one();
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
  Done.store(0, std::memory_order_relaxed);
  Generation.fetch_add(1, std::memory_order_release);
  Generation.notify_all();
  drain();
  const auto WaitStart = TimeWaits ? std::chrono::steady_clock::now() : std::chrono::steady_clock::time_point();
  const unsigned Want = static_cast<unsigned>(Workers.size());
  unsigned D = Done.load(std::memory_order_acquire);
  for (int I = 0; D != Want && I < kSpinIterations; ++I) {
    _mm_pause();
    D = Done.load(std::memory_order_acquire);
  }
  while (D != Want) {
    Done.wait(D, std::memory_order_acquire);
    D = Done.load(std::memory_order_acquire);
  }
  if (TimeWaits)
    WaitSeconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - WaitStart).count();
}

} // namespace lumen::runtime
