//===- lumen/Runtime/ThreadPool.h - Low-overhead parallel for ----*- C++ -*-===//
//
// Persistent workers that wake on a generation counter (a short spin, then a
// futex wait through std::atomic::wait) and take chunks of an index range
// from an atomic counter (parallelFor) or first from their own contiguous
// share of it (parallelForShares). Neither allocates, and the calling
// thread works too. It waits only for the workers that joined the job: one
// that wakes late (descheduled, or more threads than cores) finds the job
// closed and is not waited for. One parallelFor at a time per pool.
//
//===----------------------------------------------------------------------===//
#ifndef LUMEN_RUNTIME_THREADPOOL_H
#define LUMEN_RUNTIME_THREADPOOL_H

#include "lumen/Export.h"

#include <atomic>
#include <cstdint>
#include <memory>
#include <thread>
#include <type_traits>
#include <vector>

namespace lumen::runtime {

class LUMEN_API ThreadPool {
public:
  /// Threads counts the caller: Threads - 1 workers are started. 0 = all cores.
  explicit ThreadPool(unsigned Threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool &) = delete;
  ThreadPool &operator=(const ThreadPool &) = delete;

  unsigned size() const { return static_cast<unsigned>(Workers.size()) + 1; }

  /// Whether parallelFor times how long the caller, its own chunks done,
  /// waits for the workers (the imbalance and wake-up cost; two clock
  /// reads a call while on). Off by default.
  void measureWaits(bool On) { TimeWaits = On; }
  /// That waiting, summed over every parallelFor since measureWaits(true).
  double waitSeconds() const { return WaitSeconds; }

  /// Calls Fn(Begin, End) on disjoint chunks of at most Grain indices
  /// covering [0, N), on all threads, and returns when all are done.
  template <typename Fn> void parallelFor(int64_t N, int64_t Grain, Fn &&F) {
    using FnT = std::remove_reference_t<Fn>;
    run(N, Grain,
        [](void *Ctx, int64_t Begin, int64_t End) { (*static_cast<FnT *>(Ctx))(Begin, End); },
        const_cast<void *>(static_cast<const void *>(&F)));
  }

  /// The same, but each thread first works through its own contiguous
  /// share of [0, N) (N / threads, front to back), and then takes what is
  /// left of the others' shares from their backs: every thread reads one
  /// sequential stream (what the decode matmuls want from DRAM), and one
  /// that the host slows down is helped at the end instead of waited for.
  /// Each claim takes half of what is left of a share, at least Grain
  /// indices: chunks start at multiples of Grain and shrink to single
  /// grains where the threads meet. With one thread, one call covers [0, N).
  template <typename Fn> void parallelForShares(int64_t N, int64_t Grain, Fn &&F) {
    using FnT = std::remove_reference_t<Fn>;
    run(N, Grain,
        [](void *Ctx, int64_t Begin, int64_t End) { (*static_cast<FnT *>(Ctx))(Begin, End); },
        const_cast<void *>(static_cast<const void *>(&F)), /*Shares=*/true);
  }

private:
  using Thunk = void (*)(void *, int64_t, int64_t);
  void run(int64_t N, int64_t Grain, Thunk Invoke, void *Ctx, bool Shares = false);
  void workerLoop();
  /// Joins the open job; Slot is then the thread's share (1.. for workers).
  bool join(unsigned &Slot);
  void drain(unsigned Slot);
  /// Claims a chunk [Begin, End) from the front or the back of share S.
  bool take(unsigned S, bool Front, int64_t &Begin, int64_t &End);

  static constexpr uint64_t kClosed = uint64_t(1) << 63;

  std::vector<std::thread> Workers;
  // The current job. The caller writes it, opens it in Join, then bumps
  // Generation; a worker reads it only after joining (a CAS on Join while it
  // is open), and the caller writes the next one only after closing Join and
  // seeing every worker that joined leave.
  Thunk Invoke = nullptr;
  void *Ctx = nullptr;
  int64_t N = 0, Grain = 1;
  bool SharesJob = false;
  alignas(64) std::atomic<int64_t> Next{0};
  // What is left of each thread's share in a shares job, in grains:
  // [Front, Back) as Front << 32 | Back, a cache line each (its owner
  // claims from it alone until it runs dry).
  struct alignas(64) Share {
    std::atomic<uint64_t> Range{0};
  };
  std::unique_ptr<Share[]> Shares;
  alignas(64) std::atomic<uint64_t> Generation{0};
  // kClosed, or'ed with the number of workers inside the job.
  alignas(64) std::atomic<uint64_t> Join{kClosed};
  std::atomic<bool> Stop{false};
  bool TimeWaits = false;
  double WaitSeconds = 0; // Written by the caller's thread only.
};

} // namespace lumen::runtime

#endif
