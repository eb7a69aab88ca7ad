//===- MalformedInputTest.cpp - One test per class of bad GGUF input -------===//
#include "GGUFBytes.h"

#include "gtest/gtest.h"

#include <random>

using namespace lumen::gguf;
using namespace lumen::gguf::test;

namespace {

constexpr uint32_t F32 = 0, Q8_0 = 8;

/// A valid file: two KVs, an F32 [32] tensor and a Q8_0 [32, 2] tensor.
Bytes valid(uint64_t T1Offset = 128) {
  Bytes B;
  B.header(2, 2).kvU32("general.alignment", 32);
  B.str("a.str").u32(8).str("hi");
  B.tensor("t0", {32}, F32, 0).tensor("t1", {32, 2}, Q8_0, T1Offset);
  B.pad(32).zeros(128 + 68);
  return B;
}

void expectError(const Bytes &B, const std::string &Fragment) {
  auto F = parseBytes(B);
  ASSERT_FALSE(F.ok()) << "parsed, expected an error containing: " << Fragment;
  EXPECT_NE(F.status().message().find(Fragment), std::string::npos)
      << "got: " << F.status().message() << "\nwant: " << Fragment;
  EXPECT_NE(F.status().message().find("test.gguf: at byte"), std::string::npos)
      << "errors name the file and byte offset: " << F.status().message();
}

TEST(MalformedInputTest, BaselineIsValid) {
  Bytes B = valid();
  auto F = parseBytes(B);
  ASSERT_TRUE(F.ok()) << F.status();
  EXPECT_EQ((*F)->tensors().size(), 2u);
  EXPECT_EQ((*F)->tensors()[1].NumBytes, 68u);
  EXPECT_EQ(*(*F)->getString("a.str"), "hi");
}

TEST(MalformedInputTest, BadMagic) {
  Bytes B = valid();
  B.B[0] = 'X';
  expectError(B, "bad magic");
}

TEST(MalformedInputTest, UnsupportedVersion) {
  for (uint32_t V : {0u, 1u, 4u, 0xffffffffu}) {
    Bytes B;
    B.header(0, 0, V);
    expectError(B, "unsupported GGUF version");
  }
}

TEST(MalformedInputTest, TruncationAtEveryOffset) {
  Bytes Full = valid();
  for (size_t N = 0; N < Full.B.size(); ++N) {
    Bytes Cut;
    Cut.B.assign(Full.B.begin(), Full.B.begin() + N);
    auto F = parseBytes(Cut);
    ASSERT_FALSE(F.ok()) << "prefix of " << N << " bytes parsed";
    std::string M(F.status().message());
    EXPECT_TRUE(M.find("truncated") != std::string::npos || M.find("cannot fit") != std::string::npos ||
                M.find("runs past the end") != std::string::npos ||
                M.find("outside the file") != std::string::npos)
        << N << ": " << M;
  }
}

TEST(MalformedInputTest, StringLengthBeyondFile) {
  Bytes B;
  B.header(0, 1).u64(uint64_t(1) << 40).raw("abc", 3).zeros(16);
  expectError(B, "string length 1099511627776 runs past the end of the file");
}

TEST(MalformedInputTest, StringValueBeyondFile) {
  Bytes B;
  B.header(0, 1).str("k").u32(8).u64(1000).zeros(10);
  expectError(B, "string length 1000 runs past the end");
}

TEST(MalformedInputTest, ArrayLengthBeyondFile) {
  Bytes B;
  B.header(0, 1).str("k").u32(9).u32(4).u64(uint64_t(1) << 60).zeros(32);
  expectError(B, "array of 1152921504606846976 u32 elements runs past the end");
  Bytes S;
  S.header(0, 1).str("k").u32(9).u32(8).u64(1000).zeros(64);
  expectError(S, "array of 1000 str elements runs past the end");
}

TEST(MalformedInputTest, ArraysNestedTooDeep) {
  Bytes B;
  B.header(0, 1).str("k").u32(9);
  for (int I = 0; I < 20; ++I)
    B.u32(9).u64(1);
  B.u32(4).u64(0);
  expectError(B, "nested deeper than");
}

TEST(MalformedInputTest, UnknownValueType) {
  Bytes B;
  B.header(0, 1).str("k").u32(13).u32(0).zeros(16);
  expectError(B, "metadata key 'k' has unknown value type 13");
  Bytes A;
  A.header(0, 1).str("k").u32(9).u32(77).u64(0).zeros(16);
  expectError(A, "unknown array element type 77");
}

TEST(MalformedInputTest, BoolOutOfRange) {
  Bytes B;
  B.header(0, 1).str("k").u32(7).raw("\x02", 1).zeros(16);
  expectError(B, "neither 0 nor 1");
}

TEST(MalformedInputTest, TooManyDimensions) {
  Bytes B;
  B.header(1, 0).tensor("t", {32, 1, 1, 1, 1}, F32, 0).pad(32).zeros(128);
  expectError(B, "tensor 't' has 5 dimensions (1 to 4 allowed)");
  Bytes Z;
  Z.header(1, 0).tensor("t", {}, F32, 0).pad(32).zeros(128);
  expectError(Z, "tensor 't' has 0 dimensions");
}

TEST(MalformedInputTest, ZeroDimension) {
  Bytes B;
  B.header(1, 0).tensor("t", {32, 0}, F32, 0).pad(32).zeros(128);
  expectError(B, "tensor 't' has a zero dimension (ne[1] = 0)");
}

TEST(MalformedInputTest, OverflowingDimensions) {
  Bytes B;
  B.header(1, 0).tensor("t", {uint64_t(1) << 40, uint64_t(1) << 40}, F32, 0).pad(32).zeros(64);
  expectError(B, "element count overflows");
  Bytes Huge;
  Huge.header(1, 0).tensor("t", {~uint64_t(0)}, F32, 0).pad(32).zeros(64);
  expectError(Huge, "element count overflows");
}

TEST(MalformedInputTest, UnknownTensorType) {
  Bytes B;
  B.header(1, 0).tensor("t", {32}, 99, 0).pad(32).zeros(128);
  expectError(B, "tensor 't' has unknown type 99");
}

TEST(MalformedInputTest, RowNotAMultipleOfBlock) {
  Bytes B;
  B.header(1, 0).tensor("t", {33, 2}, Q8_0, 0).pad(32).zeros(128);
  expectError(B, "ne[0] = 33 is not a multiple of the Q8_0 block size 32");
}

TEST(MalformedInputTest, MisalignedTensorData) {
  expectError(valid(/*T1Offset=*/136), "tensor 't1': data offset 136 is not aligned to 32");
}

TEST(MalformedInputTest, TensorDataOutsideFile) {
  expectError(valid(/*T1Offset=*/1 << 20), "lies outside the file");
  expectError(valid(/*T1Offset=*/~uint64_t(31)), "lies outside the file");
  // Ends exactly one byte past the end.
  Bytes B = valid();
  B.B.pop_back();
  expectError(B, "tensor 't1': data [128, +68) lies outside");
}

TEST(MalformedInputTest, OverlappingTensors) {
  expectError(valid(/*T1Offset=*/96), "tensor 't1' overlaps tensor 't0'");
}

TEST(MalformedInputTest, DuplicateKey) {
  Bytes B;
  B.header(0, 2).kvU32("k", 1).kvU32("k", 2);
  expectError(B, "duplicate metadata key 'k'");
}

TEST(MalformedInputTest, DuplicateTensorName) {
  Bytes B;
  B.header(2, 0).tensor("t", {32}, F32, 0).tensor("t", {32}, F32, 128).pad(32).zeros(256);
  expectError(B, "duplicate tensor name 't'");
}

TEST(MalformedInputTest, CountsThatCannotFit) {
  Bytes T;
  T.header(uint64_t(1) << 40, 0).zeros(64);
  expectError(T, "tensor count 1099511627776 cannot fit");
  Bytes K;
  K.header(0, ~uint64_t(0)).zeros(64);
  expectError(K, "metadata count 18446744073709551615 cannot fit");
}

TEST(MalformedInputTest, BadAlignment) {
  Bytes B;
  B.header(0, 1).kvU32("general.alignment", 48);
  expectError(B, "general.alignment 48 is not a power of two");
  Bytes Z;
  Z.header(0, 1).kvU32("general.alignment", 0);
  expectError(Z, "general.alignment 0 is not a power of two");
  Bytes T;
  T.header(0, 1).str("general.alignment").u32(8).str("32");
  expectError(T, "general.alignment has type str, expected u32");
}

TEST(MalformedInputTest, RandomBitFlipsNeverCrash) {
  // Not a fuzzer (see docs/RELIABILITY.md); a quick guard that mutated
  // headers either parse into in-bounds tensors or fail cleanly.
  Bytes Base = valid();
  std::mt19937_64 Rng(42);
  int Parsed = 0;
  for (int Iter = 0; Iter < 20000; ++Iter) {
    Bytes M = Base;
    int Flips = 1 + Rng() % 4;
    for (int I = 0; I < Flips; ++I)
      M.B[Rng() % 160] ^= static_cast<uint8_t>(1u << (Rng() % 8));
    auto F = parseBytes(M);
    if (!F.ok())
      continue;
    ++Parsed;
    for (const TensorInfo &T : (*F)->tensors()) {
      ASSERT_GE(T.Data, M.B.data());
      ASSERT_LE(T.Data + T.NumBytes, M.B.data() + M.B.size());
    }
  }
  EXPECT_GT(Parsed, 0);
}

} // namespace
