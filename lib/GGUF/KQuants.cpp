//===- KQuants.cpp - ggml's 256-element super-block formats ----------------===//
//
// Q2_K ... Q6_K split 256 elements into 16 or 8 sub-blocks, each with its own
// small integer scale (and for Q2/Q4/Q5 a minimum) under the super-block's
// fp16 factors. Layouts as ggml-common.h declares them:
//   Q2_K  scales[16] (4-bit scale | 4-bit min << 4), qs[64] (2-bit), d, dmin
//   Q3_K  hmask[32] (third bit), qs[64] (low 2 bits), scales[12] (16 x 6 bit), d
//   Q4_K  d, dmin, scales[12] (8 x 6-bit scale and min), qs[128] (4-bit)
//   Q5_K  d, dmin, scales[12], qh[32] (fifth bit), qs[128]
//   Q6_K  ql[128] (low 4 bits), qh[64] (high 2 bits), scales[16] (int8), d
//
//===----------------------------------------------------------------------===//
#include "BlockFormats.h"

#include "lumen/GGUF/Quantize.h"


namespace lumen::gguf::blocks {

namespace {
constexpr int kSuper = 256;

float halfAt(const uint8_t *P) { return halfToFloat(loadAt<uint16_t>(P)); }

/// Sub-block J's 6-bit scale and minimum in Q4_K/Q5_K's 12 scale bytes:
/// the first four pairs in the low six bits of bytes 0-7, the last four
/// from the nibbles of bytes 8-11 with their top bits in bytes 0-7.
void scaleMinK4(int J, const uint8_t *Q, uint8_t &Scale, uint8_t &Min) {
  if (J < 4) {
    Scale = Q[J] & 63;
    Min = Q[J + 4] & 63;
  } else {
    Scale = (Q[J + 4] & 0xF) | ((Q[J - 4] >> 6) << 4);
    Min = (Q[J + 4] >> 4) | ((Q[J] >> 6) << 4);
  }
}

/// Q3_K's 16 6-bit scales, unbiased (-32 ... 31): low nibbles from bytes
/// 0-7, the high two bits from bytes 8-11.
void scalesQ3(const uint8_t *Q, int8_t *Scales) {
  for (int J = 0; J < 16; ++J) {
    const int Low = J < 8 ? Q[J] & 0xF : Q[J - 8] >> 4;
    const int High = (Q[8 + J % 4] >> (2 * (J / 4))) & 3;
    Scales[J] = static_cast<int8_t>((Low | High << 4) - 32);
  }
}
} // namespace

void dequantizeQ2_K(const uint8_t *In, float *Out, int64_t N) {
  for (int64_t B = 0; B < N / kSuper; ++B, In += 84) {
    const uint8_t *Scales = In, *Qs = In + 16;
    const float D = halfAt(In + 80), DMin = halfAt(In + 82);
    // Two halves of 128; in each, 32 bytes give four 2-bit planes, and each
    // plane's 32 elements are two sub-blocks of 16.
    for (int Half = 0; Half < 2; ++Half, Qs += 32)
      for (int Plane = 0; Plane < 4; ++Plane)
        for (int Sub = 0; Sub < 2; ++Sub) {
          const uint8_t Sc = *Scales++;
          const float Dl = D * (Sc & 0xF), Ml = DMin * (Sc >> 4);
          for (int L = 0; L < 16; ++L)
            *Out++ = Dl * ((Qs[Sub * 16 + L] >> (2 * Plane)) & 3) - Ml;
        }
  }
}

void dequantizeQ3_K(const uint8_t *In, float *Out, int64_t N) {
  for (int64_t B = 0; B < N / kSuper; ++B, In += 110) {
    const uint8_t *HMask = In, *Qs = In + 32;
    int8_t Scales[16];
    scalesQ3(In + 96, Scales);
    const float D = halfAt(In + 108);
    int Sub = 0;
    for (int Half = 0; Half < 2; ++Half, Qs += 32)
      for (int Plane = 0; Plane < 4; ++Plane) {
        // The third bit of element l of this plane is bit (4 * Half + Plane)
        // of hmask[l]; a clear bit means the 2-bit value is offset by -4.
        const uint8_t Bit = uint8_t(1) << (4 * Half + Plane);
        for (int Part = 0; Part < 2; ++Part) {
          const float Dl = D * Scales[Sub++];
          for (int L = Part * 16; L < Part * 16 + 16; ++L)
            *Out++ = Dl * (((Qs[L] >> (2 * Plane)) & 3) - ((HMask[L] & Bit) ? 0 : 4));
        }
      }
  }
}

void dequantizeQ4_K(const uint8_t *In, float *Out, int64_t N) {
  for (int64_t B = 0; B < N / kSuper; ++B, In += 144) {
    const float D = halfAt(In), DMin = halfAt(In + 2);
    const uint8_t *Scales = In + 4, *Qs = In + 16;
    // Four chunks of 32 bytes: 32 elements from the low nibbles (sub-block
    // 2c), then 32 from the high nibbles (2c + 1).
    for (int C = 0; C < 4; ++C, Qs += 32)
      for (int Nibble = 0; Nibble < 2; ++Nibble) {
        uint8_t Sc, M;
        scaleMinK4(2 * C + Nibble, Scales, Sc, M);
        const float Dl = D * Sc, Ml = DMin * M;
        for (int L = 0; L < 32; ++L)
          *Out++ = Dl * ((Qs[L] >> (4 * Nibble)) & 0xF) - Ml;
      }
  }
}

void dequantizeQ5_K(const uint8_t *In, float *Out, int64_t N) {
  for (int64_t B = 0; B < N / kSuper; ++B, In += 176) {
    const float D = halfAt(In), DMin = halfAt(In + 2);
    const uint8_t *Scales = In + 4, *Qh = In + 16, *Qs = In + 48;
    // As Q4_K; sub-block s takes its fifth bits from bit s of qh[l].
    for (int C = 0; C < 4; ++C, Qs += 32)
      for (int Nibble = 0; Nibble < 2; ++Nibble) {
        const int Sub = 2 * C + Nibble;
        uint8_t Sc, M;
        scaleMinK4(Sub, Scales, Sc, M);
        const float Dl = D * Sc, Ml = DMin * M;
        for (int L = 0; L < 32; ++L)
          *Out++ = Dl * (((Qs[L] >> (4 * Nibble)) & 0xF) + (((Qh[L] >> Sub) & 1) << 4)) - Ml;
      }
  }
}

void dequantizeQ6_K(const uint8_t *In, float *Out, int64_t N) {
  for (int64_t B = 0; B < N / kSuper; ++B, In += 210) {
    const uint8_t *Ql = In, *Qh = In + 128;
    const int8_t *Scales = reinterpret_cast<const int8_t *>(In + 192);
    const float D = halfAt(In + 208);
    // Two halves of 128 elements, each from 64 ql bytes and 32 qh bytes: the
    // four quarters of 32 take ql[l] or ql[l + 32], low or high nibble, and
    // the 2-bit pair (qh[l] >> 2q) & 3 as bits 4-5. Scales: one per 16.
    for (int Half = 0; Half < 2; ++Half, Ql += 64, Qh += 32, Scales += 8, Out += 128)
      for (int L = 0; L < 32; ++L)
        for (int Q = 0; Q < 4; ++Q) {
          const int Low = (Ql[L + 32 * (Q & 1)] >> (4 * (Q >> 1))) & 0xF;
          const int Value = (Low | ((Qh[L] >> (2 * Q)) & 3) << 4) - 32;
          Out[32 * Q + L] = D * Scales[L / 16 + 2 * Q] * Value;
        }
  }
}

} // namespace lumen::gguf::blocks
