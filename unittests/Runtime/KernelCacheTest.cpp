//===- KernelCacheTest.cpp - One compile per spec, object cache -------------===//
#include "KernelTestUtil.h"

#include "lumen/Codegen/Reference.h"

#include "gtest/gtest.h"

#include <filesystem>
#include <thread>

using namespace lumen;
using namespace lumen::codegen;

namespace {

KernelSpec decodeSpec(int64_t M, int64_t K, const CpuFeatures &Cpu) {
  return chooseSpec({M, K, 1, WeightType::Q8_0}, Cpu);
}

TEST(KernelCacheTest, SamePointerFromManyThreads) {
  auto J = runtime::Jit::create();
  ASSERT_TRUE(J.ok()) << J.status();
  runtime::KernelCache Cache(**J);
  KernelSpec S = decodeSpec(640, 896, (*J)->cpu());
  std::vector<MatmulFn> Got(8);
  std::vector<std::thread> Threads;
  for (int I = 0; I < 8; ++I)
    Threads.emplace_back([&, I] {
      auto F = Cache.getMatmul(S);
      Got[I] = F.ok() ? *F : nullptr;
    });
  for (std::thread &T : Threads)
    T.join();
  ASSERT_NE(Got[0], nullptr);
  for (MatmulFn F : Got)
    EXPECT_EQ(F, Got[0]);
  EXPECT_EQ(Cache.stats().Compiled, 1u);
  // A different spec is a different kernel.
  KernelSpec Other = S;
  Other.Accumulators = S.Accumulators == 1 ? 2 : 1;
  auto F2 = Cache.getMatmul(Other);
  ASSERT_TRUE(F2.ok());
  EXPECT_NE(*F2, Got[0]);
  EXPECT_EQ(Cache.stats().Compiled, 2u);
}

TEST(KernelCacheTest, InvalidSpecIsAnError) {
  auto J = runtime::Jit::create();
  ASSERT_TRUE(J.ok());
  runtime::KernelCache Cache(**J);
  KernelSpec S = decodeSpec(64, 96, (*J)->cpu());
  S.Shape.K = 100;
  auto F = Cache.getMatmul(S);
  ASSERT_FALSE(F.ok());
  EXPECT_NE(F.status().message().find("multiple of 32"), std::string::npos);
}

TEST(KernelCacheTest, ObjectCacheMakesSecondStartCompileNothing) {
  std::string Dir = std::string(LUMEN_TEST_TMPDIR) + "/objcache";
  std::filesystem::remove_all(Dir);
  runtime::JitOptions Options;
  Options.ObjectCacheDir = Dir;
  std::vector<uint8_t> W = test::randomWeights(WeightType::Q8_0, 256, 896, 3);
  std::vector<float> X = test::randomActivations(1, 896, 4);
  std::vector<uint8_t> Xq(q8RowBytes(896));
  referenceQuantize(896, 1, X.data(), Xq.data());
  std::vector<float> First(256), Second(256);
  for (int Start = 0; Start < 2; ++Start) {
    auto J = runtime::Jit::create(Options);
    ASSERT_TRUE(J.ok());
    EXPECT_TRUE((*J)->cacheWarning().empty());
    runtime::KernelCache Cache(**J);
    auto F = Cache.getMatmul(decodeSpec(256, 896, (*J)->cpu()));
    ASSERT_TRUE(F.ok()) << F.status();
    auto Q = Cache.getQuantize(896);
    ASSERT_TRUE(Q.ok()) << Q.status();
    (*F)(W.data(), Xq.data(), (Start ? Second : First).data(), 0, 256);
    runtime::KernelCache::Stats St = Cache.stats();
    EXPECT_EQ(St.Compiled, Start ? 0u : 2u);
    EXPECT_EQ(St.DiskHits, Start ? 2u : 0u);
  }
  EXPECT_EQ(First, Second);
  int Objects = 0;
  for (auto &E : std::filesystem::directory_iterator(Dir))
    Objects += E.path().extension() == ".o";
  EXPECT_EQ(Objects, 2);
}

TEST(KernelCacheTest, UnwritableCacheDirFallsBackWithWarning) {
  runtime::JitOptions Options;
  Options.ObjectCacheDir = "/proc/lumen-cannot-write-here";
  auto J = runtime::Jit::create(Options);
  ASSERT_TRUE(J.ok()) << J.status();
  EXPECT_NE((*J)->cacheWarning().find("not writable"), std::string::npos);
  runtime::KernelCache Cache(**J);
  EXPECT_TRUE(Cache.getQuantize(64).ok());
}

} // namespace
