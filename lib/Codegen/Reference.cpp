//===- Reference.cpp - Scalar references of the kernels --------------------===//
#include "lumen/Codegen/Reference.h"
#include "lumen/Codegen/KernelABI.h"

#include "BlockFormat.h"

#include "lumen/GGUF/Quantize.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

namespace lumen::codegen {

using gguf::halfToFloat;

void referenceQuantize(int64_t K, int64_t N, const float *X, uint8_t *Q, int64_t ScaleBlock) {
  for (int64_t T = 0; T < N; ++T) {
    const float *Row = X + T * K;
    uint8_t *Out = Q + T * q8RowBytes(K);
    int8_t *Quants = reinterpret_cast<int8_t *>(Out);
    for (int64_t Blk = 0; Blk < K / 32; ++Blk) {
      const float *Xb = Row + Blk * 32;
      // max |x| over the block's scale group (the block, or its 256).
      const float *Group = Row + Blk * 32 / ScaleBlock * ScaleBlock;
      float AMax = 0;
      for (int I = 0; I < ScaleBlock; ++I)
        AMax = std::max(AMax, std::fabs(Group[I]));
      float D = AMax / 127.0f;
      float Inv = AMax != 0 ? 127.0f / AMax : 0.0f;
      int32_t Q32[32];
      for (int I = 0; I < 32; ++I) {
        Q32[I] = static_cast<int32_t>(std::nearbyint(Xb[I] * Inv));
        Quants[Blk * 32 + I] = static_cast<int8_t>(Q32[I]);
      }
      float DRounded = halfToFloat(gguf::floatToHalf(D));
      int32_t BlockBias = 0;
      for (int G = 0; G < 8; ++G) {
        int32_t Bias = -128 * (Q32[4 * G] + Q32[4 * G + 1] + Q32[4 * G + 2] + Q32[4 * G + 3]);
        std::memcpy(Out + K + (Blk * 8 + G) * 4, &DRounded, 4);
        std::memcpy(Out + 2 * K + (Blk * 8 + G) * 4, &Bias, 4);
        BlockBias += Bias;
      }
      std::memcpy(Out + q8BlockBiasOffset(K) + Blk * 4, &BlockBias, 4);
      std::memcpy(Out + q8BlockScaleOffset(K) + Blk * 4, &DRounded, 4);
    }
  }
}

namespace {

template <typename T> T loadAt(const uint8_t *P) {
  T V;
  std::memcpy(&V, P, sizeof(T));
  return V;
}

/// The exact dot product of levels [Begin, End) of a decoded sub-block with
/// the activation quants Xq (the same 32 elements).
int32_t levelDot(const BlockFormat &F, const SubBlockValues &V, const int8_t *Xq, int Begin = 0, int End = 32) {
  int32_t Dot = 0;
  for (int I = Begin; I < End; ++I)
    Dot += F.level(V.Quants[I]) * int32_t(Xq[I]);
  return Dot;
}

/// The accumulator sets added in order, as the kernels' epilogue does.
float sumOfSets(const std::vector<float> &Acc) {
  float Sum = Acc[0];
  for (size_t Set = 1; Set < Acc.size(); ++Set)
    Sum += Acc[Set];
  return Sum;
}

/// One (row, token) of an interleaved kernel: the row's lane of its group,
/// one block per step, exact integer block sums, then a scaled FMA into the
/// step's accumulator set; the sets summed in order.
float replayInterleaved(const KernelSpec &S, const uint8_t *W, int64_t R, const uint8_t *X) {
  const int64_t K = S.Shape.K;
  std::vector<float> Acc(S.Accumulators, 0.0f);
  for (int64_t Blk = 0; Blk < K / 32; ++Blk) {
    Q8Block WB = readQ8Block(W, S.Shape.Layout, K, R, Blk);
    const int8_t *Xq = reinterpret_cast<const int8_t *>(X) + Blk * 32;
    int32_t Dot = 0;
    for (int I = 0; I < 32; ++I)
      Dot += int32_t(WB.Quants[I]) * int32_t(Xq[I]);
    float Scale = halfToFloat(WB.Scale) * loadAt<float>(X + q8BlockScaleOffset(K) + Blk * 4);
    float &A = Acc[Blk % S.Accumulators];
    A = std::fma(static_cast<float>(Dot), Scale, A);
  }
  return sumOfSets(Acc);
}

/// The same for the interleaved 4/5-bit block types: a block's exact integer
/// sum over levels, its scale, and for the _1 types the minimum times the
/// block's activation sum (from BlockBias).
float replayInterleavedBlocks(const KernelSpec &S, const uint8_t *W, int64_t R, const uint8_t *X) {
  const int64_t K = S.Shape.K;
  const BlockFormat &F = *blockFormat(S.Shape.Weights);
  std::vector<float> Acc(S.Accumulators, 0.0f);
  for (int64_t Blk = 0; Blk < K / 32; ++Blk) {
    SubBlockValues V;
    readInterleavedSubBlock(F, W, S.Shape.Layout, K, R, Blk, V);
    const int32_t Dot = levelDot(F, V, reinterpret_cast<const int8_t *>(X) + Blk * 32);
    const float XScale = loadAt<float>(X + q8BlockScaleOffset(K) + Blk * 4);
    float &A = Acc[Blk % S.Accumulators];
    A = std::fma(static_cast<float>(Dot), V.Scales[0] * XScale, A);
    if (F.HasOffsets) {
      const int32_t Bias = loadAt<int32_t>(X + q8BlockBiasOffset(K) + Blk * 4);
      A = std::fma(static_cast<float>(Bias), V.Offsets[0] * XScale * (-1.0f / 128), A);
    }
  }
  return sumOfSets(Acc);
}

/// And for interleaved Q4_K/Q5_K: with a scale per 256 activations each
/// super-block one step of the accumulator sets, else each sub-block.
float replayInterleavedKQuants(const KernelSpec &S, const uint8_t *W, int64_t R, const uint8_t *X) {
  const int64_t K = S.Shape.K;
  const BlockFormat &F = *blockFormat(S.Shape.Weights);
  std::vector<float> Acc(S.Accumulators, 0.0f);
  for (int64_t Blk = 0; Blk < K / 256 && S.SuperBlockScales; ++Blk) {
    // One activation scale a super-block: its scaled sums and minima as
    // exact integers, two FMAs.
    KQuantSubBlock V;
    int32_t Int = 0, Min = 0;
    for (int64_t Sub = Blk * 8; Sub < Blk * 8 + 8; ++Sub) {
      readInterleavedKQuantSub(F, W, S.Shape.Layout, K, R, Sub, V);
      Int += V.Scales[0] * levelDot(F, V.Values, reinterpret_cast<const int8_t *>(X) + Sub * 32);
      Min += V.Min * loadAt<int32_t>(X + q8BlockBiasOffset(K) + Sub * 4);
    }
    const float XScale = loadAt<float>(X + q8BlockScaleOffset(K) + Blk * 8 * 4);
    float &A = Acc[Blk % S.Accumulators];
    A = std::fma(static_cast<float>(Int), V.D * XScale, A);
    A = std::fma(static_cast<float>(Min), V.DMin * XScale * (1.0f / 128), A);
  }
  for (int64_t Sub = 0; Sub < K / 32 && !S.SuperBlockScales; ++Sub) {
    KQuantSubBlock V;
    readInterleavedKQuantSub(F, W, S.Shape.Layout, K, R, Sub, V);
    const int32_t Dot = levelDot(F, V.Values, reinterpret_cast<const int8_t *>(X) + Sub * 32);
    const float XScale = loadAt<float>(X + q8BlockScaleOffset(K) + Sub * 4);
    const int32_t Bias = loadAt<int32_t>(X + q8BlockBiasOffset(K) + Sub * 4);
    float &A = Acc[Sub % S.Accumulators];
    A = std::fma(static_cast<float>(Dot), V.Values.Scales[0] * XScale, A);
    A = std::fma(static_cast<float>(Bias), V.Values.Offsets[0] * XScale * (-1.0f / 128), A);
  }
  return sumOfSets(Acc);
}

/// And for interleaved Q6_K: per 32-element sub-block, the exact integer
/// sum of its two 16-element halves' level sums times their int8 scales,
/// then one FMA with d times the activations' scale (each sub-block one
/// step of the accumulator sets); with a scale per 256 activations, the
/// super-block's sums added up first (each super-block one step).
float replayInterleavedQ6K(const KernelSpec &S, const uint8_t *W, int64_t R, const uint8_t *X) {
  const int64_t K = S.Shape.K;
  const BlockFormat &F = *blockFormat(WeightType::Q6_K);
  std::vector<float> Acc(S.Accumulators, 0.0f);
  int32_t Int = 0; // With a scale per 256 activations, all 8 sub-blocks' sums.
  for (int64_t Sub = 0; Sub < K / 32; ++Sub) {
    KQuantSubBlock V;
    readInterleavedKQuantSub(F, W, S.Shape.Layout, K, R, Sub, V);
    const int8_t *Xq = reinterpret_cast<const int8_t *>(X) + Sub * 32;
    int32_t Sum = 0;
    for (int Half = 0; Half < 2; ++Half)
      Sum += V.Scales[Half] * levelDot(F, V.Values, Xq, 16 * Half, 16 * Half + 16);
    if (!S.SuperBlockScales) {
      const float XScale = loadAt<float>(X + q8BlockScaleOffset(K) + Sub * 4);
      float &A = Acc[Sub % S.Accumulators];
      A = std::fma(static_cast<float>(Sum), V.D * XScale, A);
      continue;
    }
    Int += Sum;
    if (Sub % 8 == 7) {
      const float XScale = loadAt<float>(X + q8BlockScaleOffset(K) + (Sub - 7) * 4);
      float &A = Acc[Sub / 8 % S.Accumulators];
      A = std::fma(static_cast<float>(Int), V.D * XScale, A);
      Int = 0;
    }
  }
  return sumOfSets(Acc);
}

/// One (row, token) cell of a kernel, lane by lane.
class CellReplay {
public:
  CellReplay(const KernelSpec &S, const uint8_t *Row, const uint8_t *X) : S(S), Row(Row), X(X) {
    bool IntDot = S.Activations == ActivationFormat::Q8;
    Format = IntDot ? blockFormat(S.Shape.Weights) : nullptr;
    SubsPerGroup = Format && S.VNNI && S.VectorBits == 512 ? 2 : 1;
    SubsPerStep = Format ? std::max<int64_t>(SubsPerGroup, Format->subBlocks()) : 1;
    Lanes = IntDot ? 8 * SubsPerGroup : S.VectorBits / 32;
  }

  float run() {
    const int64_t K = S.Shape.K, Subs = K / 32, Steps = Subs / SubsPerStep;
    std::vector<std::vector<float>> Acc(S.Accumulators, std::vector<float>(Lanes, 0.0f));
    for (int64_t Step = 0; Step < Steps; ++Step)
      step(Step * SubsPerStep, SubsPerStep, Acc[Step % S.Accumulators]);
    std::vector<float> Tail;
    if (Subs % SubsPerStep) {
      Tail.assign(8, 0.0f);
      step(Steps * SubsPerStep, Subs % SubsPerStep, Tail);
    }
    std::vector<float> Sum = Acc[0];
    for (unsigned Set = 1; Set < S.Accumulators; ++Set)
      for (unsigned L = 0; L < Lanes; ++L)
        Sum[L] += Acc[Set][L];
    unsigned W = Lanes;
    auto AddTail = [&] {
      if (W == 8 && !Tail.empty())
        for (unsigned L = 0; L < 8; ++L)
          Sum[L] += Tail[L];
    };
    AddTail();
    while (W > 1) {
      for (unsigned L = 0; L < W / 2; ++L)
        Sum[L] = Sum[L] + Sum[L + W / 2];
      W /= 2;
      AddTail();
    }
    return Sum[0];
  }

private:
  void step(int64_t Sub, int64_t Subs, std::vector<float> &Acc) {
    if (S.Activations == ActivationFormat::Q8)
      stepInt8(Sub, Subs, Acc);
    else
      stepF32(Sub, Acc);
  }

  /// Sub-blocks [Sub, Sub + Subs) in groups as the kernel takes them: lane L
  /// of a group is 4-quant piece L % 8 of its sub-block L / 8.
  void stepInt8(int64_t Sub, int64_t Subs, std::vector<float> &Acc) {
    const BlockFormat &F = *Format;
    const int64_t K = S.Shape.K, Group = std::min(Subs, SubsPerGroup);
    for (int64_t First = Sub; First < Sub + Subs; First += Group) {
      SubBlockValues W[2];
      for (int64_t G = 0; G < Group; ++G)
        F.decodeSubBlock(Row + (First + G) / F.subBlocks() * F.Bytes, (First + G) % F.subBlocks(), W[G]);
      for (int64_t L = 0; L < 8 * Group; ++L) {
        const int64_t SubBlock = First + L / 8, Piece = L % 8;
        const SubBlockValues &V = W[L / 8];
        const int8_t *Xq = reinterpret_cast<const int8_t *>(X) + SubBlock * 32 + 4 * Piece;
        int32_t Dot = 0; // What the kernel's offset dot products come to, exactly.
        for (int J = 0; J < 4; ++J)
          Dot += F.level(V.Quants[4 * Piece + J]) * int32_t(Xq[J]);
        const float XScale = loadAt<float>(X + K + (SubBlock * 8 + Piece) * 4);
        Acc[L] = std::fma(static_cast<float>(Dot), V.Scales[Piece / 4] * XScale, Acc[L]);
        if (F.HasOffsets) {
          const int32_t Bias = loadAt<int32_t>(X + 2 * K + (SubBlock * 8 + Piece) * 4);
          Acc[L] = std::fma(static_cast<float>(Bias), V.Offsets[Piece / 4] * XScale * (-1.0f / 128), Acc[L]);
        }
      }
    }
  }

  void stepF32(int64_t Blk, std::vector<float> &Acc) {
    const unsigned Parts = 32 / Lanes;
    const float *Xb = reinterpret_cast<const float *>(X) + Blk * 32;
    float W[32];
    float Scale = 0;
    bool Scaled = S.Shape.Weights == WeightType::Q8_0;
    if (Scaled) {
      const uint8_t *WB = Row + Blk * 34;
      Scale = halfToFloat(loadAt<uint16_t>(WB));
      for (int I = 0; I < 32; ++I)
        W[I] = static_cast<float>(reinterpret_cast<const int8_t *>(WB + 2)[I]);
    } else {
      gguf::dequantizeRow(tensorType(S.Shape.Weights), Row + Blk * weightRowBytes(S.Shape.Weights, 32), W, 32);
    }
    for (unsigned L = 0; L < Lanes; ++L) {
      if (!Scaled) {
        for (unsigned P = 0; P < Parts; ++P)
          Acc[L] = std::fma(W[P * Lanes + L], Xb[P * Lanes + L], Acc[L]);
        continue;
      }
      float Sum = W[L] * Xb[L];
      for (unsigned P = 1; P < Parts; ++P)
        Sum = std::fma(W[P * Lanes + L], Xb[P * Lanes + L], Sum);
      Acc[L] = std::fma(Sum, Scale, Acc[L]);
    }
  }

  const KernelSpec &S;
  const uint8_t *Row;
  const uint8_t *X;
  const BlockFormat *Format; // Int8 kernels' weight blocks.
  int64_t SubsPerGroup, SubsPerStep;
  unsigned Lanes;
};

} // namespace

void replayMatmul(const KernelSpec &S, const uint8_t *W, const void *X, float *Y) {
  replayMatmulRows(S, W, X, Y, 0, S.Shape.M);
}

void replayMatmulRows(const KernelSpec &S, const uint8_t *W, const void *X, float *Y, int64_t RowBegin,
                      int64_t RowEnd) {
  const MatmulShape &Sh = S.Shape;
  int64_t RowBytes = weightRowBytes(Sh.Weights, Sh.K);
  int64_t XBytes = activationBytes(S.Activations, Sh.K, 1);
  for (int64_t T = 0; T < Sh.N; ++T)
    for (int64_t R = std::max<int64_t>(0, RowBegin); R < std::min(RowEnd, Sh.M); ++R) {
      const uint8_t *XT = static_cast<const uint8_t *>(X) + T * XBytes;
      Y[T * Sh.M + R] = Sh.Layout == WeightLayout::Rows ? CellReplay(S, W + R * RowBytes, XT).run()
                        : Sh.Weights == WeightType::Q8_0 ? replayInterleaved(S, W, R, XT)
                        : interleavesKQuants(Sh.Weights) ? replayInterleavedKQuants(S, W, R, XT)
                        : interleavesQ6_K(Sh.Weights)    ? replayInterleavedQ6K(S, W, R, XT)
                                                         : replayInterleavedBlocks(S, W, R, XT);
    }
}

void plainMatmul(const MatmulShape &Sh, const uint8_t *W, const float *X, float *Y) {
  std::vector<float> Row(Sh.K);
  for (int64_t R = 0; R < Sh.M; ++R) {
    dequantizeWeightRow(Sh, W, R, Row.data());
    for (int64_t Tok = 0; Tok < Sh.N; ++Tok) {
      double Sum = 0;
      for (int64_t I = 0; I < Sh.K; ++I)
        Sum += double(Row[I]) * X[Tok * Sh.K + I];
      Y[Tok * Sh.M + R] = static_cast<float>(Sum);
    }
  }
}

} // namespace lumen::codegen
