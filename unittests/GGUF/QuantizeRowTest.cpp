//===- QuantizeRowTest.cpp - The block encoders -----------------------------===//
//
// quantizeRow for every type it writes: what it writes decodes (through
// dequantizeRow, which matches ggml bit for bit) to values close to the
// input -- closer than ggml's own rule for the formats whose scale is
// stored directly, since that rule is among the encoder's candidates.
//
//===----------------------------------------------------------------------===//
#include "lumen/GGUF/Quantize.h"

#include "gtest/gtest.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

using namespace lumen::gguf;

namespace {

constexpr int64_t kRow = 4096;

/// Gaussian weights with a few outliers, as trained matrices have.
std::vector<float> weights(uint64_t Seed, int64_t N, float OutlierRate = 0.002f) {
  std::mt19937_64 Rng(Seed);
  std::normal_distribution<float> Normal(0.0f, 0.02f);
  std::uniform_real_distribution<float> Uniform(0.0f, 1.0f);
  std::vector<float> X(N);
  for (float &V : X)
    V = Normal(Rng) * (Uniform(Rng) < OutlierRate ? 8.0f : 1.0f);
  return X;
}

std::vector<uint8_t> encode(TensorType T, const std::vector<float> &X) {
  const TensorTypeTraits Tr = tensorTypeTraits(T);
  std::vector<uint8_t> Bytes(X.size() / Tr.BlockSize * Tr.TypeSize);
  EXPECT_TRUE(quantizeRow(T, X.data(), Bytes.data(), static_cast<int64_t>(X.size())));
  return Bytes;
}

std::vector<float> decode(TensorType T, const std::vector<uint8_t> &Bytes, int64_t N) {
  std::vector<float> Y(N);
  EXPECT_TRUE(dequantizeRow(T, Bytes.data(), Y.data(), N));
  return Y;
}

double sumSquaredError(const std::vector<float> &X, const std::vector<float> &Y) {
  double E = 0;
  for (size_t I = 0; I < X.size(); ++I)
    E += (double(X[I]) - Y[I]) * (double(X[I]) - Y[I]);
  return E;
}

double relativeRms(const std::vector<float> &X, const std::vector<float> &Y) {
  double Norm = 0;
  for (float V : X)
    Norm += double(V) * V;
  return std::sqrt(sumSquaredError(X, Y) / Norm);
}

struct TypeBound {
  TensorType Type;
  double MaxRelativeRms; // Measured on weights() plus a margin.
};

// What each format reaches on weights() (measured, plus 15 %): about 2^-bits
// of the range.
constexpr TypeBound kBounds[] = {
    {TensorType::F32, 0.0},       {TensorType::F16, 2.6e-4},   {TensorType::BF16, 2.0e-3},
    {TensorType::Q8_0, 0.0085},   {TensorType::Q4_0, 0.115},   {TensorType::Q4_1, 0.09},
    {TensorType::Q5_0, 0.068},    {TensorType::Q5_1, 0.044},   {TensorType::IQ4_NL, 0.103},
    {TensorType::Q2_K, 0.295},    {TensorType::Q3_K, 0.176},   {TensorType::Q4_K, 0.09},
    {TensorType::Q5_K, 0.044},    {TensorType::Q6_K, 0.025},
};

class QuantizeRowTest : public ::testing::TestWithParam<TypeBound> {};

TEST_P(QuantizeRowTest, DecodesCloseToTheInput) {
  const TypeBound B = GetParam();
  ASSERT_TRUE(canQuantizeTo(B.Type));
  const std::vector<float> X = weights(7, kRow);
  const std::vector<float> Y = decode(B.Type, encode(B.Type, X), kRow);
  const double Rel = relativeRms(X, Y);
  EXPECT_LE(Rel, B.MaxRelativeRms) << tensorTypeTraits(B.Type).Name;
  // A bound far above the error would not notice a small regression.
  if (B.MaxRelativeRms > 0) {
    EXPECT_GE(Rel, B.MaxRelativeRms / 2) << tensorTypeTraits(B.Type).Name;
  }
}

TEST_P(QuantizeRowTest, ZerosConstantsAndSpikesStayExact) {
  const TensorType T = GetParam().Type;
  const int64_t N = 256;
  std::vector<float> Zeros(N, 0.0f);
  EXPECT_EQ(decode(T, encode(T, Zeros), N), Zeros);
  // A lone spike in a zero block: every format but IQ4_NL (whose levels
  // miss 0 by 1/127 of the largest) holds 0 and one value exactly up to the
  // scale's fp16 rounding.
  std::vector<float> Spike(N, 0.0f);
  Spike[37] = -0.75f;
  const std::vector<float> Y = decode(T, encode(T, Spike), N);
  const double Tolerance = T == TensorType::IQ4_NL ? 0.75 / 127 * 1.01 : 1e-3;
  for (int64_t I = 0; I < N; ++I)
    EXPECT_NEAR(Y[I], Spike[I], Tolerance) << tensorTypeTraits(T).Name << " element " << I;
}

INSTANTIATE_TEST_SUITE_P(EveryType, QuantizeRowTest, ::testing::ValuesIn(kBounds),
                         [](const auto &Info) { return std::string(tensorTypeTraits(Info.param.Type).Name); });

TEST(QuantizeRowTest, Q8_0IsGgmlsRuleByteForByte) {
  const std::vector<float> X = weights(3, kRow);
  std::vector<BlockQ8_0> Expected(kRow / 32);
  quantizeRowQ8_0(X.data(), Expected.data(), kRow);
  const std::vector<uint8_t> Bytes = encode(TensorType::Q8_0, X);
  EXPECT_EQ(std::memcmp(Bytes.data(), Expected.data(), Bytes.size()), 0);
}

/// ggml's reference rule for the 32-element symmetric formats: the element
/// of largest magnitude on level QMin, the others rounded, the scale
/// stored as fp16.
std::vector<float> ggmlSymmetric(const std::vector<float> &X, int QMin, int QMax) {
  std::vector<float> Y(X.size());
  for (size_t B = 0; B < X.size(); B += 32) {
    float Max = 0;
    for (int J = 0; J < 32; ++J)
      if (std::fabs(X[B + J]) > std::fabs(Max))
        Max = X[B + J];
    const float D = Max / QMin, Id = D != 0 ? 1.0f / D : 0.0f;
    const float Stored = halfToFloat(floatToHalf(D));
    for (int J = 0; J < 32; ++J)
      Y[B + J] = Stored * std::min(QMax, static_cast<int>(X[B + J] * Id - QMin + 0.5f) + QMin);
  }
  return Y;
}

/// ggml's rule for the affine ones: minimum and range over QMax levels.
std::vector<float> ggmlAffine(const std::vector<float> &X, int QMax) {
  std::vector<float> Y(X.size());
  for (size_t B = 0; B < X.size(); B += 32) {
    const float Min = *std::min_element(&X[B], &X[B] + 32), Max = *std::max_element(&X[B], &X[B] + 32);
    const float D = (Max - Min) / QMax, Id = D != 0 ? 1.0f / D : 0.0f;
    const float StoredD = halfToFloat(floatToHalf(D)), StoredM = halfToFloat(floatToHalf(Min));
    for (int J = 0; J < 32; ++J)
      Y[B + J] = StoredD * std::min(QMax, static_cast<int>((X[B + J] - Min) * Id + 0.5f)) + StoredM;
  }
  return Y;
}

TEST(QuantizeRowTest, NoBlockWorseThanGgmlsRule) {
  const std::vector<float> X = weights(11, kRow, 0.02f);
  struct Case {
    TensorType Type;
    std::vector<float> Ggml;
  } Cases[] = {{TensorType::Q4_0, ggmlSymmetric(X, -8, 7)},
               {TensorType::Q5_0, ggmlSymmetric(X, -16, 15)},
               {TensorType::Q4_1, ggmlAffine(X, 15)},
               {TensorType::Q5_1, ggmlAffine(X, 31)}};
  for (const Case &C : Cases) {
    const std::vector<float> Ours = decode(C.Type, encode(C.Type, X), kRow);
    int Better = 0;
    for (size_t B = 0; B < X.size(); B += 32) {
      const std::vector<float> Xb(&X[B], &X[B] + 32), Ob(&Ours[B], &Ours[B] + 32), Gb(&C.Ggml[B], &C.Ggml[B] + 32);
      const double EO = sumSquaredError(Xb, Ob), EG = sumSquaredError(Xb, Gb);
      EXPECT_LE(EO, EG * (1 + 1e-6) + 1e-12) << tensorTypeTraits(C.Type).Name << " block " << B / 32;
      Better += EO < EG * 0.999;
    }
    // The search is worth having: most blocks improve on the rule.
    EXPECT_GT(Better, static_cast<int>(X.size() / 32 / 2)) << tensorTypeTraits(C.Type).Name;
  }
}

TEST(QuantizeRowTest, RefusesTypesWithoutAnEncoder) {
  float X[256] = {};
  uint8_t Out[1024];
  for (TensorType T : {TensorType::IQ2_XXS, TensorType::Q8_K, TensorType::I32, TensorType::MXFP4}) {
    EXPECT_FALSE(canQuantizeTo(T));
    EXPECT_FALSE(quantizeRow(T, X, Out, 256));
  }
}

} // namespace
