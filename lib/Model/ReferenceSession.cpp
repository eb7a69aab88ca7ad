//===- ReferenceSession.cpp - The plain scalar forward pass ----------------===//
//
// Qwen2 as llama.cpp's qwen2 graph computes it, written for clarity: f32
// activations and KV cache, no quantization of activations. The JIT
// path is tested against this, and this against llama.cpp's logits.
//
//===----------------------------------------------------------------------===//
#include "lumen/Model/Session.h"

#include "LogitsCheck.h"

#include <cmath>

namespace lumen::model {

namespace {

void rmsNorm(const float *X, const float *W, float *Out, int64_t N, float Eps) {
  double Sum = 0;
  for (int64_t I = 0; I < N; ++I)
    Sum += double(X[I]) * X[I];
  float Scale = static_cast<float>(1.0 / std::sqrt(Sum / N + Eps));
  for (int64_t I = 0; I < N; ++I)
    Out[I] = X[I] * Scale * W[I];
}

/// A . B in f32 with eight partial sums (a pattern compilers vectorise
/// without reassociating anything), combined in double.
float dot(const float *A, const float *B, int64_t N) {
  float Acc[8] = {};
  int64_t I = 0;
  for (; I + 8 <= N; I += 8)
    for (int J = 0; J < 8; ++J)
      Acc[J] += A[I + J] * B[I + J];
  double Sum = 0;
  for (; I < N; ++I)
    Sum += double(A[I]) * B[I];
  for (float P : Acc)
    Sum += P;
  return static_cast<float>(Sum);
}

/// Y[t][r] = W[r] . X[t] for N tokens.
void matmul(const Matrix &W, const float *X, float *Y, int64_t N) {
  std::vector<float> Row(W.Cols);
  for (int64_t R = 0; R < W.Rows; ++R) {
    W.dequantizeRow(R, Row.data());
    for (int64_t T = 0; T < N; ++T)
      Y[T * W.Rows + R] = dot(Row.data(), X + T * W.Cols, W.Cols);
  }
}

/// RoPE by the model's angles (TransformerModel::ropeAngles): element i rotates
/// with i + HeadDim/2 (RopeStyle::Neox) or 2i with 2i + 1 (Pairs).
void rope(float *Head, int64_t HeadDim, const float *Cos, const float *Sin, RopeStyle Style) {
  const int64_t Half = HeadDim / 2;
  for (int64_t I = 0; I < Half; ++I) {
    const int64_t A = Style == RopeStyle::Neox ? I : 2 * I, B = Style == RopeStyle::Neox ? I + Half : 2 * I + 1;
    const double C = Cos[I], S = Sin[I], X0 = Head[A], X1 = Head[B];
    Head[A] = static_cast<float>(X0 * C - X1 * S);
    Head[B] = static_cast<float>(X0 * S + X1 * C);
  }
}

class ReferenceSession final : public Session {
public:
  ReferenceSession(const TransformerModel &M, int64_t Ctx)
      : Session(M, Ctx), KCache(size_t(M.config().Layers) * Ctx * M.config().kvDim()),
        VCache(KCache.size()) {}

  absl::Status eval(std::span<const int32_t> Tokens, bool AllLogits,
                    std::vector<float> &Logits) override;

private:
  std::vector<float> KCache, VCache; // [layer][position][kv dim]
};

absl::Status ReferenceSession::eval(std::span<const int32_t> Tokens, bool AllLogits,
                                    std::vector<float> &Logits) {
  if (absl::Status S = checkTokens(Tokens); !S.ok())
    return S;
  const ModelConfig &C = M.config();
  const int64_t N = Tokens.size(), D = C.Dim, KV = C.kvDim(), QD = C.qDim(), FF = C.FFN, HD = C.HeadDim;
  const int64_t Group = C.Heads / C.KVHeads;
  std::vector<float> X(N * D), XN(N * D), Q(N * QD), K(N * KV), V(N * KV), Att(N * QD), O(N * D);
  std::vector<float> Gate(N * FF), Up(N * FF), Hidden(N * FF), Down(N * D);

  // Each position's RoPE angles, once for every layer.
  std::vector<float> Cos(N * HD / 2), Sin(N * HD / 2);
  for (int64_t T = 0; T < N; ++T) {
    M.Embedding.dequantizeRow(Tokens[T], &X[T * D]);
    M.ropeAngles(Pos + T, &Cos[T * HD / 2], &Sin[T * HD / 2]);
  }

  for (uint32_t L = 0; L < C.Layers; ++L) {
    const LayerWeights &W = M.Layers[L];
    float *KC = &KCache[size_t(L) * Ctx * KV], *VC = &VCache[size_t(L) * Ctx * KV];

    // Attention block.
    for (int64_t T = 0; T < N; ++T)
      rmsNorm(&X[T * D], W.AttnNorm, &XN[T * D], D, C.RmsEps);
    matmul(W.Q, XN.data(), Q.data(), N);
    matmul(W.K, XN.data(), K.data(), N);
    matmul(W.V, XN.data(), V.data(), N);
    for (int64_t T = 0; T < N; ++T) {
      // Architecture::QKVBias: each where the file has it.
      for (int64_t I = 0; W.QBias && I < QD; ++I) Q[T * QD + I] += W.QBias[I];
      for (int64_t I = 0; W.KBias && I < KV; ++I) K[T * KV + I] += W.KBias[I];
      for (int64_t I = 0; W.VBias && I < KV; ++I) V[T * KV + I] += W.VBias[I];
      if (W.QNorm) { // Architecture::QKNorm: each head normalised before RoPE.
        for (uint32_t H = 0; H < C.Heads; ++H)
          rmsNorm(&Q[T * QD + H * HD], W.QNorm, &Q[T * QD + H * HD], HD, C.RmsEps);
        for (uint32_t H = 0; H < C.KVHeads; ++H)
          rmsNorm(&K[T * KV + H * HD], W.KNorm, &K[T * KV + H * HD], HD, C.RmsEps);
      }
      const float *Cs = &Cos[T * HD / 2], *Sn = &Sin[T * HD / 2];
      for (uint32_t H = 0; H < C.Heads; ++H)
        rope(&Q[T * QD + H * HD], HD, Cs, Sn, C.Arch->Rope);
      for (uint32_t H = 0; H < C.KVHeads; ++H)
        rope(&K[T * KV + H * HD], HD, Cs, Sn, C.Arch->Rope);
      std::copy_n(&K[T * KV], KV, &KC[(Pos + T) * KV]);
      std::copy_n(&V[T * KV], KV, &VC[(Pos + T) * KV]);
    }
    for (int64_t T = 0; T < N; ++T) {
      const int64_t Seen = Pos + T + 1; // Causal: positions 0 .. Pos + T.
      std::vector<double> Score(Seen);
      for (uint32_t H = 0; H < C.Heads; ++H) {
        const float *Qh = &Q[T * QD + H * HD];
        const int64_t KVOff = (H / Group) * HD;
        double Max = -INFINITY;
        for (int64_t P = 0; P < Seen; ++P) {
          double Dot = 0;
          for (int64_t I = 0; I < HD; ++I)
            Dot += double(Qh[I]) * KC[P * KV + KVOff + I];
          Score[P] = Dot / std::sqrt(double(HD));
          Max = std::max(Max, Score[P]);
        }
        double Sum = 0;
        for (double &S : Score)
          Sum += (S = std::exp(S - Max));
        for (int64_t I = 0; I < HD; ++I) {
          double Acc = 0;
          for (int64_t P = 0; P < Seen; ++P)
            Acc += Score[P] * VC[P * KV + KVOff + I];
          Att[T * QD + H * HD + I] = static_cast<float>(Acc / Sum);
        }
      }
    }
    matmul(W.O, Att.data(), O.data(), N);
    for (int64_t I = 0; I < N * D; ++I)
      X[I] += O[I];

    // Feed-forward block.
    for (int64_t T = 0; T < N; ++T)
      rmsNorm(&X[T * D], W.FfnNorm, &XN[T * D], D, C.RmsEps);
    matmul(W.Gate, XN.data(), Gate.data(), N);
    matmul(W.Up, XN.data(), Up.data(), N);
    for (int64_t I = 0; I < N * FF; ++I)
      Hidden[I] = Gate[I] / (1.0f + std::exp(-Gate[I])) * Up[I];
    matmul(W.Down, Hidden.data(), Down.data(), N);
    for (int64_t I = 0; I < N * D; ++I)
      X[I] += Down[I];
  }

  // Output: the final norm and the lm_head, for the last token or all.
  const int64_t First = AllLogits ? 0 : N - 1, Rows = N - First;
  for (int64_t T = First; T < N; ++T)
    rmsNorm(&X[T * D], M.OutputNorm, &XN[(T - First) * D], D, C.RmsEps);
  Logits.resize(Rows * C.Vocab);
  matmul(M.Output, XN.data(), Logits.data(), Rows);
  Pos += N;
  for (int64_t R = 0; R < Rows; ++R)
    if (absl::Status S = checkLogits(&Logits[R * C.Vocab], C.Vocab, Pos - Rows + R, /*HalfPrecision=*/false); !S.ok())
      return S;
  return absl::OkStatus();
}

} // namespace

absl::StatusOr<std::unique_ptr<Session>> createReferenceSession(const TransformerModel &M,
                                                                SessionOptions Options) {
  int64_t Ctx = std::min<int64_t>(Options.ContextSize, M.config().ContextLength);
  if (Ctx <= 0)
    return absl::InvalidArgumentError("context size must be positive");
  return std::unique_ptr<Session>(new ReferenceSession(M, Ctx));
}

} // namespace lumen::model
