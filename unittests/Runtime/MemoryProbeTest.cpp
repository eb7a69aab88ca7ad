//===- MemoryProbeTest.cpp - LargeBuffer and the read-bandwidth probe ------===//
//
// What the probe must do, not how fast: speed is for the benchmarks.
//
//===----------------------------------------------------------------------===//
#include "lumen/Runtime/MemoryProbe.h"

#include "gtest/gtest.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <sys/mman.h>
#include <vector>

namespace lumen::runtime {
namespace {

TEST(LargeBufferTest, ZeroFilledAndHugePageAligned) {
  LargeBuffer B(size_t(8) << 20, /*HugePages=*/true);
  ASSERT_TRUE(B.valid());
  EXPECT_EQ(B.size(), size_t(8) << 20);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(B.data()) % (2u << 20), 0u);
  EXPECT_TRUE(std::all_of(B.data(), B.data() + B.size(), [](uint8_t X) { return X == 0; }));
}

TEST(LargeBufferTest, PopulateMakesExactlyTheCoveringPagesResident) {
  constexpr size_t kPage = 4096, kPages = 64;
  LargeBuffer B(kPages * kPage, /*HugePages=*/false, /*ZeroFill=*/false);
  ASSERT_TRUE(B.valid());
  auto Resident = [&] {
    std::vector<unsigned char> In(kPages);
    EXPECT_EQ(::mincore(B.data(), kPages * kPage, In.data()), 0);
    std::vector<bool> Out;
    for (unsigned char C : In)
      Out.push_back(C & 1);
    return Out;
  };
  std::vector<bool> Want(kPages, false);
  ASSERT_EQ(Resident(), Want);
  // Bytes [3 pages + 100, 6 pages + 1) cover pages 3 to 6.
  if (!B.populate(3 * kPage + 100, 3 * kPage - 99))
    GTEST_SKIP() << "the kernel has no MADV_POPULATE_WRITE";
  for (size_t P = 3; P <= 6; ++P)
    Want[P] = true;
  EXPECT_EQ(Resident(), Want);
  // (Reading the others would map the zero page into them.)
  EXPECT_TRUE(std::all_of(B.data() + 3 * kPage, B.data() + 7 * kPage, [](uint8_t X) { return X == 0; }));
  // A range past the end is clipped; an empty one populates nothing.
  EXPECT_TRUE(B.populate((kPages - 1) * kPage, 10 * kPage));
  EXPECT_FALSE(B.populate(kPages * kPage, kPage));
  Want[kPages - 1] = true;
  EXPECT_EQ(Resident(), Want);
}

TEST(LargeBufferTest, AnImpossibleSizeIsInvalidNotACrash) {
  LargeBuffer B(size_t(1) << 62, /*HugePages=*/false, /*ZeroFill=*/false);
  EXPECT_FALSE(B.valid());
  ThreadPool Pool(1);
  EXPECT_EQ(measureReadBandwidth(Pool, B), 0.0);
}

TEST(MemoryProbeTest, AKeptBufferIsProbedAgainOnEveryThreadCount) {
  LargeBuffer B(size_t(64) << 20, /*HugePages=*/true);
  ASSERT_TRUE(B.valid());
  for (unsigned Threads : {1u, 2u, 3u}) {
    ThreadPool Pool(Threads);
    for (int Round = 0; Round < 2; ++Round) {
      double GBs = measureReadBandwidth(Pool, B, /*Reps=*/2);
      EXPECT_TRUE(std::isfinite(GBs) && GBs > 0) << Threads << " threads: " << GBs;
    }
  }
  ThreadPool Pool(2);
  EXPECT_GT(measureReadBandwidth(Pool, size_t(16) << 20, /*HugePages=*/false, 1), 0.0);
}

TEST(MemoryProbeTest, StreamReadSumsEveryWordOfWhole128ByteSteps) {
  // Words at every lane position and a tail the loop must skip.
  alignas(32) std::array<uint64_t, 16 * 37 + 5> Words; // The loads are aligned.
  for (size_t I = 0; I < Words.size(); ++I)
    Words[I] = 0x9e3779b97f4a7c15ull * (I + 1); // Wraps: the sum is mod 2^64.
  for (size_t Steps : {size_t(0), size_t(1), size_t(3), size_t(37)}) {
    uint64_t Want = 0;
    for (size_t I = 0; I < Steps * 16; ++I)
      Want += Words[I];
    const size_t Bytes = Steps * 128 + (Steps < 37 ? 120 : 40); // Tails of 120 / 40 bytes are left.
    for (ReadPattern How : {ReadPattern::Plain, ReadPattern::PageStartPrefetch})
      EXPECT_EQ(streamRead(reinterpret_cast<const uint8_t *>(Words.data()), Bytes, How), Want) << Steps;
  }
}

TEST(MemoryProbeTest, PageStartPrefetchReadsTheSameWordsAcrossPages) {
  // Page-aligned, several pages and a part of one: the prefetching loop
  // enters every page start and prefetches past the end.
  LargeBuffer B(3 * 4096 + 256, /*HugePages=*/false);
  ASSERT_TRUE(B.valid());
  uint64_t *Words = reinterpret_cast<uint64_t *>(B.data());
  uint64_t Want = 0;
  for (size_t I = 0; I < B.size() / 8; ++I)
    Want += Words[I] = 0xd1b54a32d192ed03ull * (I + 7);
  EXPECT_EQ(streamRead(B.data(), B.size(), ReadPattern::Plain), Want);
  EXPECT_EQ(streamRead(B.data(), B.size(), ReadPattern::PageStartPrefetch), Want);
}

} // namespace
} // namespace lumen::runtime
