//===- WriterRoundTripTest.cpp - GGUFWriter output read back ---------------===//
#include "GGUFBytes.h"

#include "lumen/GGUF/GGUFWriter.h"
#include "lumen/GGUF/Quantize.h"

#include "gtest/gtest.h"

#include <filesystem>
#include <numeric>

using namespace lumen::gguf;

namespace {

std::string tmpPath(const std::string &Name) {
  return std::string(LUMEN_TEST_TMPDIR) + "/" + Name;
}

TEST(WriterRoundTripTest, EveryValueTypeAndTensors) {
  GGUFWriter W(64);
  W.setString("general.architecture", "test");
  W.setU32("a.u32", 4000000000u);
  W.setI32("a.i32", -7);
  W.setU64("a.u64", uint64_t(1) << 50);
  W.setF32("a.f32", 0.25f);
  W.setBool("a.bool", true);
  W.setStringArray("a.strs", {"x", "", "hello world"});
  std::vector<int32_t> Ints = {1, -2, 3};
  W.setI32Array("a.ints", Ints);
  W.setU32("a.u32", 5); // Replaces, keeps position.

  std::vector<float> Vec(64);
  std::iota(Vec.begin(), Vec.end(), 0.0f);
  ASSERT_TRUE(W.addTensor("vec", TensorType::F32, {64},
                          std::span<const uint8_t>(reinterpret_cast<const uint8_t *>(Vec.data()),
                                                   Vec.size() * 4)).ok());
  ASSERT_TRUE(W.addTensor("mat", TensorType::Q8_0, {64, 3},
                          [](int64_t First, int64_t N, uint8_t *Out) {
                            for (int64_t R = 0; R < N; ++R) {
                              std::vector<float> Row(64, float(First + R + 1));
                              quantizeRowQ8_0(Row.data(), reinterpret_cast<BlockQ8_0 *>(
                                                              Out + R * 68), 64);
                            }
                            return absl::OkStatus();
                          }).ok());
  std::string Path = tmpPath("roundtrip.gguf");
  ASSERT_TRUE(W.write(Path).ok());

  auto F = GGUFFile::open(Path);
  ASSERT_TRUE(F.ok()) << F.status();
  const GGUFFile &G = **F;
  EXPECT_EQ(G.version(), 3u);
  EXPECT_EQ(G.alignment(), 64u);
  ASSERT_EQ(G.metadata().size(), 9u); // 8 set + general.alignment.
  EXPECT_EQ(G.metadata()[1].Key, "a.u32");
  EXPECT_EQ(G.metadata().back().Key, "general.alignment");
  EXPECT_EQ(*G.getString("general.architecture"), "test");
  EXPECT_EQ(*G.getU32("a.u32"), 5u);
  EXPECT_EQ(*G.getI32("a.i32"), -7);
  EXPECT_EQ(*G.getU64("a.u64"), uint64_t(1) << 50);
  EXPECT_EQ(*G.getF32("a.f32"), 0.25f);
  EXPECT_TRUE(*G.getBool("a.bool"));
  EXPECT_FALSE(G.getU32("a.i32").ok()) << "negative does not fit in u32";
  auto Strs = G.getArray("a.strs", ValueType::String);
  ASSERT_TRUE(Strs.ok());
  EXPECT_EQ((*Strs)->Strings, (std::vector<std::string_view>{"x", "", "hello world"}));
  auto IntArr = G.getArray("a.ints", ValueType::I32);
  ASSERT_TRUE(IntArr.ok());
  EXPECT_EQ((*IntArr)->intAt(1), -2);

  ASSERT_EQ(G.tensors().size(), 2u);
  const TensorInfo *V = G.findTensor("vec");
  ASSERT_NE(V, nullptr);
  EXPECT_EQ(V->Offset % 64, 0u);
  EXPECT_EQ(std::memcmp(V->Data, Vec.data(), 256), 0);
  const TensorInfo *M = G.findTensor("mat");
  ASSERT_NE(M, nullptr);
  EXPECT_EQ(M->Offset, 256u);
  EXPECT_EQ(M->Dims[0], 64);
  EXPECT_EQ(M->Dims[1], 3);
  std::vector<float> Row(64);
  dequantizeRowQ8_0(reinterpret_cast<const BlockQ8_0 *>(M->Data + 2 * 68), Row.data(), 64);
  EXPECT_NEAR(Row[17], 3.0f, 1e-3);
}

TEST(WriterRoundTripTest, CopiesNestedArrays) {
  // Nested arrays are written by hand, read, copied through the writer, read again.
  test::Bytes B;
  B.header(0, 1).str("nested").u32(9).u32(9).u64(2);
  B.u32(4).u64(2).u32(10).u32(20); // [10, 20]
  B.u32(8).u64(1).str("deep");     // ["deep"]
  auto In = test::parseBytes(B);
  ASSERT_TRUE(In.ok()) << In.status();
  const Value *N = (*In)->find("nested");
  ASSERT_NE(N, nullptr);
  ASSERT_EQ(N->Items.size(), 2u);
  EXPECT_EQ(N->Items[0].intAt(1), 20);
  EXPECT_EQ(N->Items[1].Strings[0], "deep");
  EXPECT_EQ(N->toString(), "[[10, 20], ['deep']]");

  GGUFWriter W;
  W.setValue("nested", *N);
  std::string Path = tmpPath("nested.gguf");
  ASSERT_TRUE(W.write(Path).ok());
  auto Out = GGUFFile::open(Path);
  ASSERT_TRUE(Out.ok()) << Out.status();
  EXPECT_EQ((*Out)->find("nested")->toString(), "[[10, 20], ['deep']]");
}

TEST(WriterRoundTripTest, RejectsBadTensors) {
  GGUFWriter W;
  EXPECT_FALSE(W.addTensor("t", TensorType::Q8_0, {33}, GGUFWriter::RowFiller()).ok());
  EXPECT_FALSE(W.addTensor("t", TensorType::F32, {}, GGUFWriter::RowFiller()).ok());
  EXPECT_FALSE(W.addTensor("t", TensorType::F32, {1, 2, 3, 4, 5}, GGUFWriter::RowFiller()).ok());
  uint8_t Buf[8] = {};
  EXPECT_FALSE(W.addTensor("t", TensorType::F32, {4}, std::span<const uint8_t>(Buf, 8)).ok());
  EXPECT_TRUE(W.addTensor("t", TensorType::F32, {2}, std::span<const uint8_t>(Buf, 8)).ok());
  EXPECT_FALSE(W.addTensor("t", TensorType::F32, {2}, std::span<const uint8_t>(Buf, 8)).ok())
      << "duplicate name";
  auto S = W.write("/nonexistent-dir/x.gguf");
  EXPECT_FALSE(S.ok());
  EXPECT_NE(S.message().find("cannot create"), std::string::npos);
}

} // namespace
