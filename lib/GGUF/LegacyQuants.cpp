//===- LegacyQuants.cpp - ggml's 32-element block formats ------------------===//
//
// Q4_0, Q4_1, Q5_0, Q5_1 and IQ4_NL: an fp16 scale (and for _1 an fp16
// offset) per 32 elements. Element j < 16 is the low nibble of byte j, element
// j + 16 its high nibble; Q5 keeps each element's fifth bit in a 32-bit mask
// (bit j for element j). IQ4_NL maps its nibbles through a non-linear table.
// Decoders first, then the encoders (each block fitted by QuantFit.h).
//
//===----------------------------------------------------------------------===//
#include "BlockFormats.h"

#include "QuantFit.h"

#include "lumen/GGUF/Quantize.h"

#include <cstring>

namespace lumen::gguf::blocks {

namespace {
constexpr int kBlock = 32;

float halfAt(const uint8_t *P) { return halfToFloat(loadAt<uint16_t>(P)); }
void putHalf(uint8_t *P, float V) {
  const uint16_t H = floatToHalf(V);
  std::memcpy(P, &H, 2);
}

/// Candidate scales tried per block (QuantFit.h): a few around ggml's rule.
constexpr int kSteps = 9;
constexpr float kSpread = 1.0f;

/// Writes 32 levels (0 ... 31) as nibbles (element j low, j + 16 high) and,
/// with Qh, their fifth bits as a 32-bit mask.
void packNibbles(const uint8_t *Levels, uint8_t *Qs, uint8_t *Qh) {
  uint32_t High = 0;
  for (int J = 0; J < 16; ++J) {
    Qs[J] = (Levels[J] & 0xF) | (Levels[J + 16] & 0xF) << 4;
    High |= uint32_t(Levels[J] >> 4) << J | uint32_t(Levels[J + 16] >> 4) << (J + 16);
  }
  if (Qh)
    std::memcpy(Qh, &High, 4);
}

/// A symmetric block: fp16 scale at Out, levels biased by -QMin.
void encodeSymmetric(const float *X, uint8_t *Out, int QMin, int QMax, uint8_t *Qh, uint8_t *Qs) {
  int8_t Q[kBlock];
  const SymmetricFit Fit = fitSymmetric(X, kBlock, QMin, QMax, kSteps, kSpread, storeHalf, Q);
  putHalf(Out, Fit.Scale);
  uint8_t Levels[kBlock];
  for (int J = 0; J < kBlock; ++J)
    Levels[J] = static_cast<uint8_t>(Q[J] - QMin);
  packNibbles(Levels, Qs, Qh);
}

/// An affine block: fp16 scale and offset at Out, levels 0 ... QMax.
void encodeAffine(const float *X, uint8_t *Out, int QMax, uint8_t *Qh, uint8_t *Qs) {
  uint8_t Levels[kBlock];
  const AffineFit Fit = fitAffine(X, kBlock, QMax, kSteps, /*NonPositiveOffset=*/false, storeHalf, Levels);
  putHalf(Out, Fit.Scale);
  putHalf(Out + 2, Fit.Offset);
  packNibbles(Levels, Qs, Qh);
}

/// The 16 levels of IQ4_NL's nibbles (ggml's kvalues_iq4nl).
constexpr int8_t kIQ4Levels[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};
} // namespace

void dequantizeQ4_0(const uint8_t *In, float *Out, int64_t N) {
  for (int64_t B = 0; B < N / kBlock; ++B, In += 18, Out += kBlock) {
    const float D = halfAt(In);
    const uint8_t *Qs = In + 2;
    for (int J = 0; J < 16; ++J) {
      Out[J] = ((Qs[J] & 0xF) - 8) * D;
      Out[J + 16] = ((Qs[J] >> 4) - 8) * D;
    }
  }
}

void dequantizeQ4_1(const uint8_t *In, float *Out, int64_t N) {
  for (int64_t B = 0; B < N / kBlock; ++B, In += 20, Out += kBlock) {
    const float D = halfAt(In), M = halfAt(In + 2);
    const uint8_t *Qs = In + 4;
    for (int J = 0; J < 16; ++J) {
      Out[J] = (Qs[J] & 0xF) * D + M;
      Out[J + 16] = (Qs[J] >> 4) * D + M;
    }
  }
}

void dequantizeQ5_0(const uint8_t *In, float *Out, int64_t N) {
  for (int64_t B = 0; B < N / kBlock; ++B, In += 22, Out += kBlock) {
    const float D = halfAt(In);
    const uint32_t Qh = loadAt<uint32_t>(In + 2);
    const uint8_t *Qs = In + 6;
    for (int J = 0; J < 16; ++J) {
      const int Lo = (Qs[J] & 0xF) | ((Qh >> J) & 1) << 4, Hi = (Qs[J] >> 4) | ((Qh >> (J + 16)) & 1) << 4;
      Out[J] = (Lo - 16) * D;
      Out[J + 16] = (Hi - 16) * D;
    }
  }
}

void dequantizeQ5_1(const uint8_t *In, float *Out, int64_t N) {
  for (int64_t B = 0; B < N / kBlock; ++B, In += 24, Out += kBlock) {
    const float D = halfAt(In), M = halfAt(In + 2);
    const uint32_t Qh = loadAt<uint32_t>(In + 4);
    const uint8_t *Qs = In + 8;
    for (int J = 0; J < 16; ++J) {
      const int Lo = (Qs[J] & 0xF) | ((Qh >> J) & 1) << 4, Hi = (Qs[J] >> 4) | ((Qh >> (J + 16)) & 1) << 4;
      Out[J] = Lo * D + M;
      Out[J + 16] = Hi * D + M;
    }
  }
}

void dequantizeIQ4_NL(const uint8_t *In, float *Out, int64_t N) {
  for (int64_t B = 0; B < N / kBlock; ++B, In += 18, Out += kBlock) {
    const float D = halfAt(In);
    const uint8_t *Qs = In + 2;
    for (int J = 0; J < 16; ++J) {
      Out[J] = D * kIQ4Levels[Qs[J] & 0xF];
      Out[J + 16] = D * kIQ4Levels[Qs[J] >> 4];
    }
  }
}

void quantizeQ4_0(const float *X, uint8_t *Out, int64_t N) {
  for (int64_t B = 0; B < N / kBlock; ++B, X += kBlock, Out += 18)
    encodeSymmetric(X, Out, -8, 7, nullptr, Out + 2);
}

void quantizeQ4_1(const float *X, uint8_t *Out, int64_t N) {
  for (int64_t B = 0; B < N / kBlock; ++B, X += kBlock, Out += 20)
    encodeAffine(X, Out, 15, nullptr, Out + 4);
}

void quantizeQ5_0(const float *X, uint8_t *Out, int64_t N) {
  for (int64_t B = 0; B < N / kBlock; ++B, X += kBlock, Out += 22)
    encodeSymmetric(X, Out, -16, 15, Out + 2, Out + 6);
}

void quantizeQ5_1(const float *X, uint8_t *Out, int64_t N) {
  for (int64_t B = 0; B < N / kBlock; ++B, X += kBlock, Out += 24)
    encodeAffine(X, Out, 31, Out + 4, Out + 8);
}

void quantizeIQ4_NL(const float *X, uint8_t *Out, int64_t N) {
  for (int64_t B = 0; B < N / kBlock; ++B, X += kBlock, Out += 18) {
    uint8_t Levels[kBlock];
    const SymmetricFit Fit = fitLevels(X, kBlock, kIQ4Levels, kSteps, storeHalf, Levels);
    putHalf(Out, Fit.Scale);
    packNibbles(Levels, Out + 2, nullptr);
  }
}

} // namespace lumen::gguf::blocks
