//===- Quantize.cpp - Scalar (de)quantization ------------------------------===//
#include "lumen/GGUF/Quantize.h"

#include "BlockFormats.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace lumen::gguf {

float halfToFloat(uint16_t H) {
  uint32_t Sign = static_cast<uint32_t>(H & 0x8000) << 16;
  uint32_t Exp = (H >> 10) & 0x1f;
  uint32_t Mant = H & 0x3ff;
  uint32_t Bits;
  if (Exp == 0x1f) {
    Bits = Sign | 0x7f800000 | (Mant << 13); // Inf / NaN.
  } else if (Exp != 0) {
    Bits = Sign | ((Exp + 112) << 23) | (Mant << 13);
  } else if (Mant == 0) {
    Bits = Sign;
  } else { // Subnormal: value = Mant * 2^-24.
    float F = std::ldexp(static_cast<float>(Mant), -24);
    return Sign ? -F : F;
  }
  float F;
  std::memcpy(&F, &Bits, 4);
  return F;
}

uint16_t floatToHalf(float F) {
  uint32_t Bits;
  std::memcpy(&Bits, &F, 4);
  uint16_t Sign = static_cast<uint16_t>((Bits >> 16) & 0x8000);
  uint32_t Abs = Bits & 0x7fffffff;
  if (Abs > 0x7f800000)
    return Sign | 0x7e00; // NaN.
  if (Abs >= 0x477ff000)  // Rounds to >= 65520: infinity.
    return Sign | 0x7c00;
  if (Abs < 0x38800000) { // Below the smallest normal half: subnormal or zero.
    float A;
    std::memcpy(&A, &Abs, 4);
    // nearbyint rounds half to even in the default rounding mode.
    return Sign | static_cast<uint16_t>(std::nearbyint(std::ldexp(A, 24)));
  }
  // Normal: rebias the exponent, round the 13 dropped mantissa bits to even.
  uint32_t Half = (Abs - 0x38000000) >> 13;
  uint32_t Rest = Abs & 0x1fff;
  if (Rest > 0x1000 || (Rest == 0x1000 && (Half & 1)))
    ++Half;
  return Sign | static_cast<uint16_t>(Half);
}

float bf16ToFloat(uint16_t B) {
  uint32_t Bits = static_cast<uint32_t>(B) << 16;
  float F;
  std::memcpy(&F, &Bits, 4);
  return F;
}

uint16_t floatToBf16(float F) {
  uint32_t Bits;
  std::memcpy(&Bits, &F, 4);
  if ((Bits & 0x7fffffff) > 0x7f800000) // NaN: keep it one (rounding could carry it to infinity).
    return static_cast<uint16_t>((Bits >> 16) | 0x40);
  // The 16 dropped bits rounded to even; a carry into the exponent is correct
  // (up to infinity).
  Bits += 0x7fff + ((Bits >> 16) & 1);
  return static_cast<uint16_t>(Bits >> 16);
}

void quantizeRowQ8_0(const float *X, BlockQ8_0 *Out, int64_t N) {
  for (int64_t B = 0; B < N / kQ8BlockSize; ++B) {
    const float *Xb = X + B * kQ8BlockSize;
    float AMax = 0;
    for (int I = 0; I < kQ8BlockSize; ++I)
      AMax = std::max(AMax, std::fabs(Xb[I]));
    float D = AMax / 127.0f;
    float InvD = D != 0 ? 1.0f / D : 0.0f;
    Out[B].Scale = floatToHalf(D);
    for (int I = 0; I < kQ8BlockSize; ++I)
      Out[B].Quants[I] = static_cast<int8_t>(std::round(Xb[I] * InvD));
  }
}

void dequantizeRowQ8_0(const BlockQ8_0 *In, float *Out, int64_t N) {
  for (int64_t B = 0; B < N / kQ8BlockSize; ++B) {
    float D = halfToFloat(In[B].Scale);
    for (int I = 0; I < kQ8BlockSize; ++I)
      Out[B * kQ8BlockSize + I] = D * In[B].Quants[I];
  }
}

bool dequantizeRow(TensorType Type, const void *Row, float *Out, int64_t N) {
  switch (Type) {
  case TensorType::F32:
    std::memcpy(Out, Row, N * sizeof(float));
    return true;
  case TensorType::F16: {
    const uint16_t *H = static_cast<const uint16_t *>(Row);
    for (int64_t I = 0; I < N; ++I)
      Out[I] = halfToFloat(H[I]);
    return true;
  }
  case TensorType::BF16: {
    const uint16_t *H = static_cast<const uint16_t *>(Row);
    for (int64_t I = 0; I < N; ++I)
      Out[I] = bf16ToFloat(H[I]);
    return true;
  }
  case TensorType::Q8_0:
    dequantizeRowQ8_0(static_cast<const BlockQ8_0 *>(Row), Out, N);
    return true;
  default:
    break;
  }
  using DecodeFn = void (*)(const uint8_t *, float *, int64_t);
  static constexpr std::pair<TensorType, DecodeFn> kBlockFormats[] = {
      {TensorType::Q4_0, blocks::dequantizeQ4_0}, {TensorType::Q4_1, blocks::dequantizeQ4_1},
      {TensorType::Q5_0, blocks::dequantizeQ5_0}, {TensorType::Q5_1, blocks::dequantizeQ5_1},
      {TensorType::IQ4_NL, blocks::dequantizeIQ4_NL}, {TensorType::Q2_K, blocks::dequantizeQ2_K},
      {TensorType::Q3_K, blocks::dequantizeQ3_K}, {TensorType::Q4_K, blocks::dequantizeQ4_K},
      {TensorType::Q5_K, blocks::dequantizeQ5_K}, {TensorType::Q6_K, blocks::dequantizeQ6_K}};
  for (auto [T, Decode] : kBlockFormats)
    if (T == Type) {
      Decode(static_cast<const uint8_t *>(Row), Out, N);
      return true;
    }
  return false;
}

namespace {
using EncodeFn = void (*)(const float *, uint8_t *, int64_t);
constexpr std::pair<TensorType, EncodeFn> kEncoders[] = {
    {TensorType::Q4_0, blocks::quantizeQ4_0}, {TensorType::Q4_1, blocks::quantizeQ4_1},
    {TensorType::Q5_0, blocks::quantizeQ5_0}, {TensorType::Q5_1, blocks::quantizeQ5_1},
    {TensorType::IQ4_NL, blocks::quantizeIQ4_NL}, {TensorType::Q2_K, blocks::quantizeQ2_K},
    {TensorType::Q3_K, blocks::quantizeQ3_K}, {TensorType::Q4_K, blocks::quantizeQ4_K},
    {TensorType::Q5_K, blocks::quantizeQ5_K}, {TensorType::Q6_K, blocks::quantizeQ6_K}};
} // namespace

bool canQuantizeTo(TensorType Type) {
  switch (Type) {
  case TensorType::F32:
  case TensorType::F16:
  case TensorType::BF16:
  case TensorType::Q8_0:
    return true;
  default:
    return std::any_of(std::begin(kEncoders), std::end(kEncoders), [&](auto E) { return E.first == Type; });
  }
}

bool quantizeRow(TensorType Type, const float *X, void *Out, int64_t N) {
  switch (Type) {
  case TensorType::F32:
    std::memcpy(Out, X, N * sizeof(float));
    return true;
  case TensorType::F16: {
    uint16_t *H = static_cast<uint16_t *>(Out);
    for (int64_t I = 0; I < N; ++I)
      H[I] = floatToHalf(X[I]);
    return true;
  }
  case TensorType::BF16: {
    uint16_t *H = static_cast<uint16_t *>(Out);
    for (int64_t I = 0; I < N; ++I)
      H[I] = floatToBf16(X[I]);
    return true;
  }
  case TensorType::Q8_0:
    quantizeRowQ8_0(X, static_cast<BlockQ8_0 *>(Out), N);
    return true;
  default:
    break;
  }
  for (auto [T, Encode] : kEncoders)
    if (T == Type) {
      Encode(X, static_cast<uint8_t *>(Out), N);
      return true;
    }
  return false;
}

} // namespace lumen::gguf
