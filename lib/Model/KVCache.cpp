//===- KVCache.cpp - The JIT session's fp16 key and value caches ----------===//
#include "KVCache.h"

#include <algorithm>

namespace lumen::model {

KVCache::KVCache(int64_t Layers, int64_t KVHeads, int64_t HeadDim, int64_t Ctx, int64_t SegmentPositions,
                 bool HugePages)
    : Layers(Layers), KVHeads(KVHeads), HeadDim(HeadDim), SegmentPositions(SegmentPositions) {
  if (Layers < 1 || KVHeads < 1 || HeadDim < 1 || Ctx < 1 || SegmentPositions < vec::kKeyBlock ||
      SegmentPositions % vec::kKeyBlock != 0)
    return;
  Segments = (Ctx + SegmentPositions - 1) / SegmentPositions;
  SegmentElems = Layers * KVHeads * SegmentPositions * HeadDim;
  // Untouched anonymous memory: nothing is resident until reserve().
  const size_t Bytes = size_t(Segments) * SegmentElems * sizeof(uint16_t);
  KBuf = std::make_unique<runtime::LargeBuffer>(Bytes, HugePages, /*ZeroFill=*/false);
  VBuf = std::make_unique<runtime::LargeBuffer>(Bytes, HugePages, /*ZeroFill=*/false);
}

bool KVCache::reserve(int64_t End) {
  const int64_t Want = std::min(Segments, (End + SegmentPositions - 1) / SegmentPositions);
  const size_t Bytes = size_t(SegmentElems) * sizeof(uint16_t);
  bool Populated = true;
  for (; Resident < Want; ++Resident) {
    Populated &= KBuf->populate(Resident * Bytes, Bytes);
    Populated &= VBuf->populate(Resident * Bytes, Bytes);
  }
  return Populated;
}

int64_t KVCache::blockStart(int64_t Layer, int64_t G, int64_t P) const {
  return headOffset(Layer, G) + head(Layer, G).blockOffset(P / vec::kKeyBlock);
}

void KVCache::storeKey(int64_t Layer, int64_t G, int64_t P, const float *Key) {
  // Transposed, as attendToken reads it: [dim][position in block].
  uint16_t *K = reinterpret_cast<uint16_t *>(KBuf->data()) + blockStart(Layer, G, P);
  vec::toHalfStrided(Key, K + P % vec::kKeyBlock, HeadDim, vec::kKeyBlock);
}

void KVCache::storeValue(int64_t Layer, int64_t G, int64_t P, const float *Value) {
  uint16_t *V = reinterpret_cast<uint16_t *>(VBuf->data()) + blockStart(Layer, G, P);
  vec::toHalf(Value, V + P % vec::kKeyBlock * HeadDim, HeadDim);
}

vec::CachedHead KVCache::head(int64_t Layer, int64_t G) const {
  const int64_t At = headOffset(Layer, G);
  return {reinterpret_cast<const uint16_t *>(KBuf->data()) + At,
          reinterpret_cast<const uint16_t *>(VBuf->data()) + At, HeadDim, SegmentPositions / vec::kKeyBlock,
          SegmentElems};
}

} // namespace lumen::model
