//===- lumen/Runtime/MemoryProbe.h - Measured DRAM read bandwidth -*- C++ -*-===//
//
// Decode is bound by how fast the weights stream from DRAM, so every speed
// figure is reported beside this machine's measured read bandwidth.
//
//===----------------------------------------------------------------------===//
#ifndef LUMEN_RUNTIME_MEMORYPROBE_H
#define LUMEN_RUNTIME_MEMORYPROBE_H

#include "lumen/Export.h"

#include "lumen/Runtime/ThreadPool.h"

#include <cstddef>
#include <cstdint>

namespace lumen::runtime {

/// Anonymous memory, optionally backed by 2 MB pages (madvise
/// MADV_HUGEPAGE; the kernel may still decline), zero (ZeroFill: written
/// now, so every page is resident; otherwise faulted in on first touch).
class LUMEN_API LargeBuffer {
public:
  LargeBuffer(size_t Bytes, bool HugePages, bool ZeroFill = true);
  ~LargeBuffer();
  LargeBuffer(const LargeBuffer &) = delete;
  LargeBuffer &operator=(const LargeBuffer &) = delete;
  uint8_t *data() const { return Data; }
  size_t size() const { return Bytes; }
  bool valid() const { return Data != nullptr; }
  /// Makes the pages of [Offset, Offset + Length) resident and writable in
  /// one call (MADV_POPULATE_WRITE, Linux 5.14 and later; elsewhere they
  /// fault in at their first write, as without it). In the VMs measured a
  /// demand fault of a 4 KB page cost ~9 us and a bulk populate a tenth.
  /// Returns whether the kernel populated them.
  bool populate(size_t Offset, size_t Length) const;

private:
  uint8_t *Data = nullptr;
  size_t Bytes = 0;
  size_t Mapped = 0;
  uint8_t *MappedBase = nullptr;
};

/// How the probe's loop reads: as it is, or with a prefetch of the start
/// of the 4 KB page 8 KB ahead at each page it enters (what Zen 5's decode
/// kernels do: ~25 % faster there, ~10 % slower on Zen 4; docs/BENCHMARK.md).
enum class ReadPattern { Plain, PageStartPrefetch };

/// The probe's read loop over [P, P + Bytes) (P 32-byte aligned; a tail
/// of under 128 bytes is skipped): four independent chains of 256-bit
/// loads, which streamed faster here than 512-bit ones (bench/stream_bench).
/// Returns the sum (mod 2^64) of the 64-bit words read, so the reads stay.
LUMEN_API uint64_t streamRead(const uint8_t *P, size_t Bytes, ReadPattern How = ReadPattern::Plain);

/// Best of Reps passes of each ReadPattern over Buffer on all of Pool's
/// threads (each its own contiguous slice), in GB/s (1e9 bytes/s): the
/// fastest this machine reads, whichever loop it favours; 0 if the buffer
/// is not valid.
LUMEN_API double measureReadBandwidth(ThreadPool &Pool, const LargeBuffer &Buffer, int Reps = 3);
/// The same over a fresh zero-filled buffer of Bytes.
LUMEN_API double measureReadBandwidth(ThreadPool &Pool, size_t Bytes, bool HugePages, int Reps = 3);

} // namespace lumen::runtime

#endif
