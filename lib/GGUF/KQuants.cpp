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
// The encoders fit each sub-block (QuantFit.h), quantize the sub-blocks'
// scales under the super-block's factors, then let each sub-block take the
// best of the neighbouring scale codes with its levels assigned afresh.
//
//===----------------------------------------------------------------------===//
#include "BlockFormats.h"

#include "QuantFit.h"

#include "lumen/GGUF/Quantize.h"

#include <algorithm>
#include <cmath>
#include <cstring>

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
void putHalf(uint8_t *P, float V) {
  const uint16_t H = floatToHalf(V);
  std::memcpy(P, &H, 2);
}

int nearest(float V, int Lo, int Hi) { return std::clamp(static_cast<int>(std::lrintf(V)), Lo, Hi); }

/// Sub-blocks of an affine K-quant (Q2_K, Q4_K, Q5_K): x ~ d*sc*q - dmin*m
/// with sc, m in [0, MaxCode] and q in [0, QMax].
struct AffineSuperBlock {
  float D = 0, DMin = 0;
  uint8_t Scale[16] = {}, Min[16] = {};
  uint8_t Q[256] = {};
};

/// Fits each group on its own, quantizes the groups' scales and minima to
/// MaxCode steps of two fp16 factors, then gives each group the best of the
/// neighbouring codes with its levels assigned afresh.
AffineSuperBlock fitAffineSuperBlock(const float *X, int Groups, int QMax, int MaxCode, int Steps) {
  const int Size = kSuper / Groups;
  AffineSuperBlock SB;
  float Scales[16], Offsets[16];
  for (int G = 0; G < Groups; ++G) {
    const AffineFit Fit = blocks::fitAffine(X + G * Size, Size, QMax, Steps, /*NonPositiveOffset=*/true,
                                            storeFloat, SB.Q + G * Size);
    Scales[G] = Fit.Scale, Offsets[G] = -Fit.Offset;
  }
  const float MaxScale = *std::max_element(Scales, Scales + Groups);
  const float MaxOffset = *std::max_element(Offsets, Offsets + Groups);
  SB.D = storeHalf(MaxScale / MaxCode);
  SB.DMin = storeHalf(MaxOffset / MaxCode);
  for (int G = 0; G < Groups; ++G) {
    const float *Xg = X + G * Size;
    const int Sc = SB.D > 0 ? nearest(Scales[G] / SB.D, 0, MaxCode) : 0;
    const int M = SB.DMin > 0 ? nearest(Offsets[G] / SB.DMin, 0, MaxCode) : 0;
    double Best = INFINITY;
    uint8_t Trial[32];
    for (int TrySc = std::max(0, Sc - 1); TrySc <= std::min(MaxCode, Sc + 1); ++TrySc)
      for (int TryM = std::max(0, M - 1); TryM <= std::min(MaxCode, M + 1); ++TryM) {
        const double E = assignAffine(Xg, Size, SB.D * TrySc, -SB.DMin * TryM, QMax, Trial);
        if (E < Best) {
          Best = E;
          SB.Scale[G] = static_cast<uint8_t>(TrySc), SB.Min[G] = static_cast<uint8_t>(TryM);
          std::memcpy(SB.Q + G * Size, Trial, Size);
        }
      }
  }
  return SB;
}

/// Sub-blocks of a symmetric K-quant (Q3_K, Q6_K): x ~ d*sc*q with signed
/// codes sc in [CodeMin, -CodeMin - 1] and q in [QMin, QMax].
struct SymmetricSuperBlock {
  float D = 0;
  int8_t Scale[16] = {};
  int8_t Q[256] = {};
};

SymmetricSuperBlock fitSymmetricSuperBlock(const float *X, int QMin, int QMax, int CodeMin, int Steps,
                                           float Spread) {
  constexpr int Groups = 16, Size = 16;
  SymmetricSuperBlock SB;
  float Scales[Groups];
  float Extreme = 0;
  for (int G = 0; G < Groups; ++G) {
    Scales[G] = fitSymmetric(X + G * Size, Size, QMin, QMax, Steps, Spread, storeFloat, SB.Q + G * Size).Scale;
    if (std::fabs(Scales[G]) > std::fabs(Extreme))
      Extreme = Scales[G];
  }
  SB.D = storeHalf(Extreme / CodeMin);
  for (int G = 0; G < Groups; ++G) {
    const float *Xg = X + G * Size;
    const int Sc = SB.D != 0 ? nearest(Scales[G] / SB.D, CodeMin, -CodeMin - 1) : 0;
    double Best = INFINITY;
    int8_t Trial[16];
    for (int Try = std::max(CodeMin, Sc - 1); Try <= std::min(-CodeMin - 1, Sc + 1); ++Try) {
      const double E = assignSymmetric(Xg, Size, SB.D * Try, QMin, QMax, Trial);
      if (E < Best) {
        Best = E;
        SB.Scale[G] = static_cast<int8_t>(Try);
        std::memcpy(SB.Q + G * Size, Trial, Size);
      }
    }
  }
  return SB;
}

/// Writes eight 6-bit scale and minimum pairs as scaleMinK4 reads them.
void packScaleMinK4(const uint8_t *Scale, const uint8_t *Min, uint8_t *Q) {
  for (int J = 0; J < 4; ++J) {
    Q[J] = Scale[J] | (Scale[J + 4] >> 4) << 6;
    Q[J + 4] = Min[J] | (Min[J + 4] >> 4) << 6;
    Q[J + 8] = (Scale[J + 4] & 0xF) | (Min[J + 4] & 0xF) << 4;
  }
}

/// Writes 16 signed 6-bit scales as scalesQ3 reads them.
void packScalesQ3(const int8_t *Scales, uint8_t *Q) {
  std::memset(Q, 0, 12);
  for (int J = 0; J < 16; ++J) {
    const int Code = Scales[J] + 32;
    Q[J % 8] |= (Code & 0xF) << (J < 8 ? 0 : 4);
    Q[8 + J % 4] |= (Code >> 4) << (2 * (J / 4));
  }
}

// Candidate scales per group (QuantFit.h), as many as ggml's searches try.
constexpr int kAffineSteps = 20;
constexpr int kSymmetricSteps = 19;
constexpr float kSymmetricSpread = 0.9f;
} // namespace

void quantizeQ2_K(const float *X, uint8_t *Out, int64_t N) {
  for (int64_t B = 0; B < N / kSuper; ++B, X += kSuper, Out += 84) {
    const AffineSuperBlock SB = fitAffineSuperBlock(X, 16, 3, 15, kAffineSteps);
    for (int G = 0; G < 16; ++G)
      Out[G] = SB.Scale[G] | SB.Min[G] << 4;
    // Element 128h + 32p + l is plane p of qs[32h + l].
    uint8_t *Qs = Out + 16;
    std::memset(Qs, 0, 64);
    for (int E = 0; E < kSuper; ++E)
      Qs[32 * (E / 128) + E % 32] |= SB.Q[E] << (2 * (E % 128 / 32));
    putHalf(Out + 80, SB.D);
    putHalf(Out + 82, SB.DMin);
  }
}

void quantizeQ3_K(const float *X, uint8_t *Out, int64_t N) {
  for (int64_t B = 0; B < N / kSuper; ++B, X += kSuper, Out += 110) {
    const SymmetricSuperBlock SB = fitSymmetricSuperBlock(X, -4, 3, -32, kSymmetricSteps, kSymmetricSpread);
    uint8_t *HMask = Out, *Qs = Out + 32;
    std::memset(Out, 0, 96);
    // Element 128h + 32p + l: low bits in plane p of qs[32h + l], the third
    // (set for levels >= 0) in bit 4h + p of hmask[l].
    for (int E = 0; E < kSuper; ++E) {
      const int Code = SB.Q[E] + 4, Plane = E % 128 / 32, L = E % 32;
      Qs[32 * (E / 128) + L] |= (Code & 3) << (2 * Plane);
      HMask[L] |= (Code >> 2) << (4 * (E / 128) + Plane);
    }
    packScalesQ3(SB.Scale, Out + 96);
    putHalf(Out + 108, SB.D);
  }
}

namespace {
/// What Q4_K and Q5_K share: d, dmin, the 12 scale bytes, and the low
/// nibbles (chunk c's byte l: sub-block 2c low, 2c + 1 high) at Qs.
void packK4(const AffineSuperBlock &SB, uint8_t *Out, uint8_t *Qs) {
  putHalf(Out, SB.D);
  putHalf(Out + 2, SB.DMin);
  packScaleMinK4(SB.Scale, SB.Min, Out + 4);
  for (int C = 0; C < 4; ++C)
    for (int L = 0; L < 32; ++L)
      Qs[32 * C + L] = (SB.Q[64 * C + L] & 0xF) | (SB.Q[64 * C + 32 + L] & 0xF) << 4;
}
} // namespace

void quantizeQ4_K(const float *X, uint8_t *Out, int64_t N) {
  for (int64_t B = 0; B < N / kSuper; ++B, X += kSuper, Out += 144)
    packK4(fitAffineSuperBlock(X, 8, 15, 63, kAffineSteps), Out, Out + 16);
}

void quantizeQ5_K(const float *X, uint8_t *Out, int64_t N) {
  for (int64_t B = 0; B < N / kSuper; ++B, X += kSuper, Out += 176) {
    const AffineSuperBlock SB = fitAffineSuperBlock(X, 8, 31, 63, kAffineSteps);
    packK4(SB, Out, Out + 48);
    uint8_t *Qh = Out + 16;
    std::memset(Qh, 0, 32);
    // Sub-block s's fifth bits: bit s of qh[l].
    for (int E = 0; E < kSuper; ++E)
      Qh[E % 32] |= (SB.Q[E] >> 4) << (E / 32);
  }
}

void quantizeQ6_K(const float *X, uint8_t *Out, int64_t N) {
  for (int64_t B = 0; B < N / kSuper; ++B, X += kSuper, Out += 210) {
    const SymmetricSuperBlock SB = fitSymmetricSuperBlock(X, -32, 31, -128, kSymmetricSteps, kSymmetricSpread);
    uint8_t *Ql = Out, *Qh = Out + 128;
    std::memset(Out, 0, 192);
    // Element 128h + 32q + l: low nibble in ql[64h + l + 32(q & 1)] (high
    // nibble for q >= 2), top two bits in pair q of qh[32h + l].
    for (int E = 0; E < kSuper; ++E) {
      const int Code = SB.Q[E] + 32, H = E / 128, Q = E % 128 / 32, L = E % 32;
      Ql[64 * H + L + 32 * (Q & 1)] |= (Code & 0xF) << (4 * (Q >> 1));
      Qh[32 * H + L] |= (Code >> 4) << (2 * Q);
    }
    std::memcpy(Out + 192, SB.Scale, 16);
    putHalf(Out + 208, SB.D);
  }
}

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
