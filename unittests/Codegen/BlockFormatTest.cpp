//===- BlockFormatTest.cpp - The kernels' block decoders against ggml's ----===//
//
// What the int8 kernels take from a block (levels, scales, offsets per
// sub-block) must come to exactly the weights ggml's dequantization gives:
// scale * level + offset, in float, bit for bit, for every type, on random
// blocks (every bit pattern of quants and sub-block scales is a valid block).
//
//===----------------------------------------------------------------------===//
#include "BlockFormat.h"

#include "lumen/Codegen/KernelABI.h"
#include "lumen/GGUF/Quantize.h"

#include "gtest/gtest.h"

#include <cmath>
#include <cstring>
#include <random>

using namespace lumen;
using namespace lumen::codegen;

namespace {

constexpr WeightType kQuantized[] = {WeightType::Q8_0, WeightType::Q4_0, WeightType::Q4_1, WeightType::Q5_0,
                                     WeightType::Q5_1, WeightType::IQ4_NL, WeightType::Q2_K, WeightType::Q3_K,
                                     WeightType::Q4_K, WeightType::Q5_K, WeightType::Q6_K};

TEST(BlockFormatTest, EveryQuantizedTypeHasOneAndTheFloatTypesNone) {
  for (WeightType W : kQuantized) {
    const BlockFormat *F = blockFormat(W);
    ASSERT_NE(F, nullptr) << weightTypeName(W);
    EXPECT_EQ(F->Type, W);
    EXPECT_EQ(F->Elements, weightBlockElements(W));
    EXPECT_EQ(F->Bytes, weightRowBytes(W, F->Elements));
    EXPECT_EQ(F->Bytes, int64_t(gguf::tensorTypeTraits(tensorType(W)).TypeSize));
    // The kernels start dot products at Bias8 >> s: a power of two up to 128.
    if (!F->Signed) {
      EXPECT_TRUE(F->ZeroPoint == 0 || (F->ZeroPoint <= 32 && (F->ZeroPoint & (F->ZeroPoint - 1)) == 0));
    }
  }
  for (WeightType W : {WeightType::F16, WeightType::BF16, WeightType::F32})
    EXPECT_EQ(blockFormat(W), nullptr);
}

TEST(BlockFormatTest, SubBlocksComeToGgmlsDequantization) {
  std::mt19937 Rng(7);
  std::uniform_int_distribution<int> Byte(0, 255);
  for (WeightType W : kQuantized) {
    SCOPED_TRACE(weightTypeName(W));
    const BlockFormat &F = *blockFormat(W);
    const int64_t Blocks = 64;
    std::vector<uint8_t> Data(Blocks * F.Bytes);
    for (uint8_t &B : Data)
      B = uint8_t(Byte(Rng));
    // Random bytes may make an fp16 factor infinite or NaN: clear one
    // exponent bit of every aligned pair that would be one (the factors sit
    // at even offsets; the quants stay random).
    for (int64_t At = 0; At + 1 < int64_t(Data.size()); At += 2) {
      uint16_t H;
      std::memcpy(&H, &Data[At], 2);
      if ((H & 0x7C00) == 0x7C00)
        H &= 0xBFFF;
      std::memcpy(&Data[At], &H, 2);
    }
    std::vector<float> Want(Blocks * F.Elements), Got(Blocks * F.Elements);
    ASSERT_TRUE(gguf::dequantizeRow(tensorType(W), Data.data(), Want.data(), Want.size()));
    int64_t Mismatch = 0;
    for (int64_t B = 0; B < Blocks; ++B)
      for (unsigned J = 0; J < F.subBlocks(); ++J) {
        SubBlockValues V;
        F.decodeSubBlock(Data.data() + B * F.Bytes, J, V);
        for (int I = 0; I < 32; ++I) {
          const int64_t At = B * F.Elements + J * 32 + I;
          // Unfused, as ggml: scale * level, then the offset.
          volatile float Product = V.Scales[I / 16] * float(F.level(V.Quants[I]));
          Got[At] = F.HasOffsets ? Product + V.Offsets[I / 16] : float(Product);
          if (std::memcmp(&Got[At], &Want[At], 4) != 0 && Mismatch++ < 5)
            ADD_FAILURE() << "block " << B << " sub-block " << J << " element " << I << ": " << Got[At]
                          << " vs ggml " << Want[At] << " (level " << F.level(V.Quants[I]) << ")";
        }
      }
    EXPECT_EQ(Mismatch, 0);
  }
}

TEST(BlockFormatTest, UnsignedQuantsFitPmaddubsw) {
  // Without VNNI, unsigned quants enter pmaddubsw as they are: pairs of
  // products with |x| <= 127 must stay below int16 saturation (u <= 128).
  std::mt19937 Rng(3);
  for (WeightType W : kQuantized) {
    const BlockFormat &F = *blockFormat(W);
    if (F.Signed)
      continue;
    std::vector<uint8_t> Block(F.Bytes);
    int MaxQuant = 0;
    for (int Trial = 0; Trial < 200; ++Trial) {
      for (uint8_t &B : Block)
        B = uint8_t(Rng());
      for (unsigned J = 0; J < F.subBlocks(); ++J) {
        SubBlockValues V;
        F.decodeSubBlock(Block.data(), J, V);
        for (uint8_t Q : V.Quants)
          MaxQuant = std::max<int>(MaxQuant, Q);
      }
    }
    EXPECT_LE(2 * MaxQuant * 127, 32767) << weightTypeName(W);
  }
}

} // namespace
