//===- LegacyQuants.cpp - ggml's 32-element block formats ------------------===//
//
// Q4_0, Q4_1, Q5_0, Q5_1 and IQ4_NL: an fp16 scale (and for _1 an fp16
// offset) per 32 elements. Element j < 16 is the low nibble of byte j, element
// j + 16 its high nibble; Q5 keeps each element's fifth bit in a 32-bit mask
// (bit j for element j). IQ4_NL maps its nibbles through a non-linear table.
//
//===----------------------------------------------------------------------===//
#include "BlockFormats.h"

#include "lumen/GGUF/Quantize.h"


namespace lumen::gguf::blocks {

namespace {
constexpr int kBlock = 32;

float halfAt(const uint8_t *P) { return halfToFloat(loadAt<uint16_t>(P)); }

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

} // namespace lumen::gguf::blocks
