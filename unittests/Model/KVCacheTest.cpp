//===- KVCacheTest.cpp - The JIT session's segmented fp16 KV cache --------===//
//
// Every (layer, KV head, position) has its own slot, attendToken's view of a
// head finds what store() wrote, and reserve() makes whole segments resident.
//
//===----------------------------------------------------------------------===//
#include "KVCache.h"

#include "gtest/gtest.h"

#include <immintrin.h>
#include <sys/mman.h>
#include <unistd.h>
#include <vector>

namespace lumen::model {
namespace {

float single(uint16_t H) { return _cvtsh_ss(H); }

TEST(KVCacheTest, EverySlotIsDistinctAndTheViewFindsIt) {
  constexpr int64_t Layers = 3, KVHeads = 2, HD = 8;
  for (int64_t Segment : {64, 128, 256}) {
    SCOPED_TRACE(testing::Message() << Segment << " positions a segment");
    const int64_t Ctx = 300; // Not a whole number of segments.
    KVCache C(Layers, KVHeads, HD, Ctx, Segment, /*HugePages=*/false);
    ASSERT_TRUE(C.valid());
    EXPECT_EQ(C.capacity(), (Ctx + Segment - 1) / Segment * Segment);
    C.reserve(Ctx);
    EXPECT_EQ(C.reserved(), C.capacity());
    // Small integers are exact in fp16: slot (L, G, P) holds a code of all three.
    auto Code = [&](int64_t L, int64_t G, int64_t P, int64_t D) {
      return float(((L * KVHeads + G) * 31 + P) % 1021 + D);
    };
    std::vector<float> Key(HD), Value(HD);
    for (int64_t L = 0; L < Layers; ++L)
      for (int64_t G = 0; G < KVHeads; ++G)
        for (int64_t P = 0; P < Ctx; ++P) {
          for (int64_t D = 0; D < HD; ++D) {
            Key[D] = Code(L, G, P, D);
            Value[D] = -Code(L, G, P, D);
          }
          C.store(L, G, P, Key.data(), Value.data());
        }
    for (int64_t L = 0; L < Layers; ++L)
      for (int64_t G = 0; G < KVHeads; ++G) {
        const vec::CachedHead H = C.head(L, G);
        EXPECT_EQ(H.HeadDim, HD);
        for (int64_t P = 0; P < Ctx; ++P)
          for (int64_t D = 0; D < HD; ++D) {
            const uint16_t *KB = H.keyBlock(P / vec::kKeyBlock), *VB = H.valueBlock(P / vec::kKeyBlock);
            ASSERT_EQ(single(KB[D * vec::kKeyBlock + P % vec::kKeyBlock]), Code(L, G, P, D))
                << "key of layer " << L << " head " << G << " position " << P << " dim " << D;
            ASSERT_EQ(single(VB[P % vec::kKeyBlock * HD + D]), -Code(L, G, P, D))
                << "value of layer " << L << " head " << G << " position " << P << " dim " << D;
          }
      }
  }
}

TEST(KVCacheTest, ReserveMakesWholeSegmentsResident) {
  // 4 layers x 2 heads x 64 positions x 64 dims x 2 bytes: 64 KB segments.
  KVCache C(4, 2, 64, 1000, 64, /*HugePages=*/false);
  ASSERT_TRUE(C.valid());
  const vec::CachedHead H = C.head(0, 0);
  const long Page = ::sysconf(_SC_PAGESIZE);
  auto Resident = [&](const uint16_t *P) {
    auto Begin = reinterpret_cast<uintptr_t>(P) & ~uintptr_t(Page - 1);
    unsigned char In = 0;
    return ::mincore(reinterpret_cast<void *>(Begin), Page, &In) == 0 && (In & 1);
  };
  EXPECT_EQ(C.reserved(), 0);
  if (!C.reserve(1)) // The kernel has no MADV_POPULATE_WRITE: nothing to check.
    GTEST_SKIP() << "no MADV_POPULATE_WRITE";
  EXPECT_EQ(C.reserved(), 64);
  EXPECT_TRUE(Resident(H.keyBlock(0)));
  EXPECT_TRUE(Resident(C.head(3, 1).valueBlock(0) + 64 * 64 - 1)); // The segment's last element.
  EXPECT_FALSE(Resident(H.keyBlock(1)));                           // The next segment.
  EXPECT_TRUE(C.reserve(65));
  EXPECT_EQ(C.reserved(), 128);
  EXPECT_TRUE(Resident(H.valueBlock(1)));
  C.reserve(100000);
  EXPECT_EQ(C.reserved(), C.capacity()); // Capped at the capacity.
}

} // namespace
} // namespace lumen::model
