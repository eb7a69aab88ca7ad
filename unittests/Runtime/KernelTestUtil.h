//===- KernelTestUtil.h - Random matrices for kernel tests -----*- C++ -*-===//
#ifndef LUMEN_UNITTESTS_KERNELTESTUTIL_H
#define LUMEN_UNITTESTS_KERNELTESTUTIL_H

#include "lumen/Codegen/KernelABI.h"
#include "lumen/GGUF/Quantize.h"
#include "lumen/Runtime/Jit.h"
#include "lumen/Runtime/KernelCache.h"

#include <random>
#include <vector>

namespace lumen::test {

/// A host JIT shared by the tests of one binary (no disk cache).
inline runtime::KernelCache &sharedCache() {
  static std::unique_ptr<runtime::Jit> J = [] {
    auto R = runtime::Jit::create();
    if (!R.ok()) std::abort();
    return std::move(*R);
  }();
  static runtime::KernelCache Cache(*J);
  return Cache;
}

/// Where the block formats keep their fp16 factors (d, and dmin or m).
inline std::vector<int> halfFields(codegen::WeightType T) {
  using W = codegen::WeightType;
  switch (T) {
  case W::Q4_0: case W::Q5_0: case W::IQ4_NL: return {0};
  case W::Q4_1: case W::Q5_1: case W::Q4_K: case W::Q5_K: return {0, 2};
  case W::Q2_K: return {80, 82};
  case W::Q3_K: return {108};
  case W::Q6_K: return {208};
  default: return {};
  }
}

/// K weights of a block type at Out: every bit pattern of the quants and
/// sub-block scales is a valid block, so random bytes cover them all; the
/// fp16 factors are set to a random magnitude around Scale / 16 (every
/// product stays far from overflow).
inline void randomBlocks(codegen::WeightType T, uint8_t *Out, int64_t K, float Scale, std::mt19937 &Rng) {
  const int64_t Bytes = codegen::weightRowBytes(T, K);
  const int64_t Block = codegen::weightRowBytes(T, codegen::weightBlockElements(T));
  std::uniform_int_distribution<int> Byte(0, 255);
  std::uniform_real_distribution<float> Factor(0.25f, 1.0f);
  for (int64_t I = 0; I < Bytes; ++I)
    Out[I] = uint8_t(Byte(Rng));
  for (int64_t B = 0; B < Bytes / Block; ++B)
    for (int At : halfFields(T)) {
      uint16_t H = gguf::floatToHalf(Scale / 16 * Factor(Rng));
      std::memcpy(Out + B * Block + At, &H, 2);
    }
}

/// M rows of K weights in the given type, gaussian with a per-row scale.
inline std::vector<uint8_t> randomWeights(codegen::WeightType T, int64_t M, int64_t K,
                                          uint32_t Seed) {
  std::mt19937 Rng(Seed);
  std::normal_distribution<float> N(0, 1);
  int64_t RowBytes = codegen::weightRowBytes(T, K);
  std::vector<uint8_t> W(M * RowBytes);
  std::vector<float> Row(K);
  for (int64_t R = 0; R < M; ++R) {
    float Scale = 0.02f * (1 + R % 7);
    for (float &X : Row) X = Scale * N(Rng);
    uint8_t *Out = W.data() + R * RowBytes;
    switch (T) {
    case codegen::WeightType::Q8_0:
      gguf::quantizeRowQ8_0(Row.data(), reinterpret_cast<gguf::BlockQ8_0 *>(Out), K);
      break;
    case codegen::WeightType::F16:
      for (int64_t I = 0; I < K; ++I) {
        uint16_t H = gguf::floatToHalf(Row[I]);
        std::memcpy(Out + 2 * I, &H, 2);
      }
      break;
    case codegen::WeightType::F32:
      std::memcpy(Out, Row.data(), K * 4);
      break;
    case codegen::WeightType::BF16:
      for (int64_t I = 0; I < K; ++I) {
        uint16_t B = gguf::floatToBf16(Row[I]);
        std::memcpy(Out + 2 * I, &B, 2);
      }
      break;
    default:
      randomBlocks(T, Out, K, Scale, Rng);
      break;
    }
  }
  return W;
}

inline std::vector<float> randomActivations(int64_t N, int64_t K, uint32_t Seed) {
  std::mt19937 Rng(Seed);
  std::normal_distribution<float> Dist(0, 1);
  std::vector<float> X(N * K);
  for (float &V : X) V = Dist(Rng);
  // Some exact zeros and an all-zero block exercise the scale-0 path.
  if (K >= 64) for (int I = 32; I < 64; ++I) X[I] = 0;
  return X;
}

} // namespace lumen::test

#endif
