//===- QuantizeTest.cpp - Scalar conversions -------------------------------===//
#include "lumen/GGUF/Quantize.h"

#include "gtest/gtest.h"

#include <optional>

#include <cstring>

#include <sstream>

#include <set>

#include <fstream>

#include <cmath>
#include <limits>
#include <random>

using namespace lumen::gguf;

namespace {

TEST(QuantizeTest, HalfRoundTripsEveryValue) {
  for (uint32_t H = 0; H < 0x10000; ++H) {
    float F = halfToFloat(static_cast<uint16_t>(H));
    if (std::isnan(F))
      continue;
    EXPECT_EQ(floatToHalf(F), H) << std::hex << H;
  }
}

TEST(QuantizeTest, HalfKnownValues) {
  EXPECT_EQ(halfToFloat(0x3c00), 1.0f);
  EXPECT_EQ(halfToFloat(0xc000), -2.0f);
  EXPECT_EQ(halfToFloat(0x7bff), 65504.0f);
  EXPECT_EQ(halfToFloat(0x0001), std::ldexp(1.0f, -24));
  EXPECT_EQ(floatToHalf(65520.0f), 0x7c00); // Rounds up to infinity.
  EXPECT_EQ(floatToHalf(65519.0f), 0x7bff);
  // 1 + 2^-11 is halfway between 1 and the next half: ties to even (1.0).
  EXPECT_EQ(floatToHalf(1.0f + std::ldexp(1.0f, -11)), 0x3c00);
  EXPECT_EQ(floatToHalf(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3c02);
  EXPECT_TRUE(std::isnan(halfToFloat(floatToHalf(NAN))));
}

TEST(QuantizeTest, Bf16RoundTripsAndRoundsToEven) {
  for (uint32_t B = 0; B < 0x10000; ++B) {
    float F = bf16ToFloat(static_cast<uint16_t>(B));
    if (std::isnan(F))
      continue;
    EXPECT_EQ(floatToBf16(F), B) << std::hex << B;
  }
  EXPECT_EQ(floatToBf16(1.0f), 0x3f80);
  // 1 + 2^-8 is halfway between 1 and the next bf16: ties to even (1.0).
  EXPECT_EQ(floatToBf16(1.0f + std::ldexp(1.0f, -8)), 0x3f80);
  EXPECT_EQ(floatToBf16(1.0f + 3 * std::ldexp(1.0f, -8)), 0x3f82);
  EXPECT_EQ(floatToBf16(std::numeric_limits<float>::max()), 0x7f80); // Rounds up to infinity.
  EXPECT_TRUE(std::isnan(bf16ToFloat(floatToBf16(NAN))));
}

TEST(QuantizeTest, Q8_0MatchesDefinition) {
  std::mt19937 Rng(7);
  std::normal_distribution<float> N(0, 2);
  std::vector<float> X(96);
  for (float &V : X) V = N(Rng);
  X[40] = 0; // A block with one exact zero.
  std::vector<BlockQ8_0> Q(3);
  quantizeRowQ8_0(X.data(), Q.data(), 96);
  std::vector<float> Back(96);
  dequantizeRowQ8_0(Q.data(), Back.data(), 96);
  for (int B = 0; B < 3; ++B) {
    float AMax = 0;
    for (int I = 0; I < 32; ++I) AMax = std::max(AMax, std::fabs(X[B * 32 + I]));
    float D = halfToFloat(Q[B].Scale);
    EXPECT_NEAR(D, AMax / 127, AMax / 127 * 1e-3);
    int MaxQ = 0;
    for (int I = 0; I < 32; ++I) {
      MaxQ = std::max(MaxQ, std::abs(int(Q[B].Quants[I])));
      // Half a step, plus the fp16 rounding of the scale times the quant.
      EXPECT_NEAR(Back[B * 32 + I], X[B * 32 + I], D * 0.5f + 127 * std::fabs(D - AMax / 127));
    }
    EXPECT_EQ(MaxQ, 127);
  }
  EXPECT_EQ(Q[1].Quants[8], 0);
}

TEST(QuantizeTest, AllZeroBlock) {
  std::vector<float> X(32, 0.0f);
  BlockQ8_0 Q;
  quantizeRowQ8_0(X.data(), &Q, 32);
  EXPECT_EQ(Q.Scale, 0);
  for (int8_t V : Q.Quants) EXPECT_EQ(V, 0);
}

} // namespace

namespace {

/// Bytes from two hex digits a byte.
std::vector<uint8_t> fromHex(const std::string &Hex) {
  std::vector<uint8_t> Out;
  for (size_t I = 0; I + 1 < Hex.size(); I += 2)
    Out.push_back(static_cast<uint8_t>(std::stoi(Hex.substr(I, 2), nullptr, 16)));
  return Out;
}

TEST(QuantizeTest, BlockFormatsAsLlamaCppDecodesThem) {
  // unittests/GGUF/data/block-formats.golden: seeded random blocks and their
  // values as llama.cpp's gguf-py dequantizes them (scripts/make_block_golden.py).
  std::ifstream In(LUMEN_GGUF_TEST_DATA "/block-formats.golden");
  ASSERT_TRUE(In) << "missing golden data";
  std::set<std::string> Seen;
  for (std::string Line; std::getline(In, Line);) {
    std::istringstream S(Line);
    std::string Name, Raw;
    S >> Name >> Raw;
    std::vector<uint8_t> Blocks = fromHex(Raw);
    std::vector<float> Want;
    for (std::string V; S >> V;) {
      std::vector<uint8_t> B = fromHex(V);
      float F;
      std::memcpy(&F, B.data(), 4);
      Want.push_back(F);
    }
    std::optional<TensorType> T = tensorTypeFromName(Name);
    ASSERT_TRUE(T) << Name;
    TensorTypeTraits Traits = tensorTypeTraits(*T);
    ASSERT_EQ(Blocks.size() / Traits.TypeSize * Traits.BlockSize, Want.size()) << Name;
    std::vector<float> Got(Want.size(), -1.0f);
    ASSERT_TRUE(dequantizeRow(*T, Blocks.data(), Got.data(), Got.size())) << Name;
    for (size_t I = 0; I < Want.size(); ++I)
      ASSERT_EQ(std::memcmp(&Got[I], &Want[I], 4), 0) << Name << " element " << I << ": " << Got[I] << " vs " << Want[I];
    Seen.insert(Name);
  }
  EXPECT_EQ(Seen, (std::set<std::string>{"Q4_0", "Q4_1", "Q5_0", "Q5_1", "IQ4_NL", "Q2_K", "Q3_K", "Q4_K", "Q5_K",
                                         "Q6_K"}));
  float Out[32];
  EXPECT_FALSE(dequantizeRow(TensorType::IQ2_XXS, Out, Out, 256)) << "a format Lumen does not decode";
}

} // namespace
