//===- KVCache.h - The JIT session's fp16 key and value caches -*- C++ -*-===//
//
// Every layer's and KV head's cached keys and values, laid out for
// vec::attendToken and kept in 2 MB pages (unless told not to). A decode step reads the cache
// between the weights of every layer; with 4 KB pages one-thread attention
// after a 2048-token prompt took ~1.5x as long (docs/BENCHMARK.md).
// So that a short conversation still does not pay for the whole context in
// 2 MB pages, positions are grouped in segments, and only the segments
// reached are made resident. A segment is [layer][KV head] runs of
// SegmentPositions positions, so each head's keys and values are long
// sequential streams: in a run, V is [position][head dim] and K is
// [block of vec::kKeyBlock positions][head dim][position in block],
// transposed so attention reads 8 or 16 positions a vector.
//
//===----------------------------------------------------------------------===//
#ifndef LUMEN_LIB_MODEL_KVCACHE_H
#define LUMEN_LIB_MODEL_KVCACHE_H

#include "VectorOps.h"

#include "lumen/Runtime/MemoryProbe.h"

#include <cstdint>
#include <memory>

namespace lumen::model {

class KVCache {
public:
  /// Positions per segment unless told: runs of 32 KB per head (64-wide),
  /// 1.5 MB segments for Qwen2.5-0.5B.
  static constexpr int64_t kSegmentPositions = 256;

  /// Room for Ctx positions (rounded up to whole segments) of Layers x
  /// KVHeads heads of HeadDim. SegmentPositions must be a positive
  /// multiple of vec::kKeyBlock.
  KVCache(int64_t Layers, int64_t KVHeads, int64_t HeadDim, int64_t Ctx,
          int64_t SegmentPositions = kSegmentPositions, bool HugePages = true);
  bool valid() const { return KBuf && KBuf->valid() && VBuf && VBuf->valid(); }
  int64_t capacity() const { return Segments * SegmentPositions; }
  /// Makes the segments of positions [0, End) resident, one populate call
  /// per segment and cache (a demand fault per page cost ~9 us in the VMs
  /// measured). Returns whether the kernel populated them (without
  /// MADV_POPULATE_WRITE they fault in at their first write instead).
  bool reserve(int64_t End);
  /// Positions in the segments reserved so far.
  int64_t reserved() const { return Resident * SegmentPositions; }
  /// Rounds Key and Value (HeadDim floats each) to fp16 into position P of
  /// Layer's KV head G.
  void store(int64_t Layer, int64_t G, int64_t P, const float *Key, const float *Value) {
    storeKey(Layer, G, P, Key);
    storeValue(Layer, G, P, Value);
  }
  /// The key's and the value's halves of store, for threads that made one
  /// and not the other.
  void storeKey(int64_t Layer, int64_t G, int64_t P, const float *Key);
  void storeValue(int64_t Layer, int64_t G, int64_t P, const float *Value);
  vec::CachedHead head(int64_t Layer, int64_t G) const;

private:
  /// Elements from a segment's start to head (Layer, G)'s run in it.
  int64_t headOffset(int64_t Layer, int64_t G) const { return (Layer * KVHeads + G) * SegmentPositions * HeadDim; }
  /// Elements from the buffer's start to the block holding position P of
  /// head (Layer, G), in either cache.
  int64_t blockStart(int64_t Layer, int64_t G, int64_t P) const;

  int64_t Layers, KVHeads, HeadDim, SegmentPositions;
  int64_t Segments = 0;
  int64_t SegmentElems = 0; // Every head's run: Layers x KVHeads x SegmentPositions x HeadDim.
  int64_t Resident = 0;     // Segments [0, Resident) are populated.
  std::unique_ptr<runtime::LargeBuffer> KBuf, VBuf;
};

} // namespace lumen::model

#endif
