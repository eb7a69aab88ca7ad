//===- TransformerModel.cpp - A loaded GGUF model ------------------------===//
#include "lumen/Model/TransformerModel.h"

#include "lumen/Codegen/KernelABI.h"
#include "lumen/GGUF/Quantize.h"
#include "lumen/Runtime/MemoryProbe.h"
#include "lumen/Runtime/ThreadPool.h"

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_format.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>

namespace lumen::model {

const std::vector<Architecture> &architectures() {
  static const std::vector<Architecture> Known = {
      // name     q/k/v biases        QKNorm HeadDimKey RoPE           rope_freqs chat (no template) pre (no key)
      {"qwen2", Presence::Required, false, false, RopeStyle::Neox, false, ChatFormat::ChatML, "qwen2"},
      {"qwen3", Presence::None, true, true, RopeStyle::Neox, false, ChatFormat::ChatML, "qwen2"},
      {"llama", Presence::Optional, false, true, RopeStyle::Pairs, true, ChatFormat::Llama3, "llama-bpe"},
  };
  return Known;
}

const Architecture *findArchitecture(std::string_view Name) {
  for (const Architecture &A : architectures())
    if (Name == A.Name)
      return &A;
  return nullptr;
}

absl::StatusOr<ModelConfig> ModelConfig::fromGGUF(const gguf::GGUFFile &F) {
  absl::StatusOr<std::string_view> ArchName = F.getString("general.architecture");
  if (!ArchName.ok())
    return ArchName.status();
  ModelConfig C;
  C.Arch = findArchitecture(*ArchName);
  if (!C.Arch) {
    std::string Names;
    for (const Architecture &A : architectures())
      Names += (Names.empty() ? "" : ", ") + std::string(A.Name);
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s: general.architecture is '%s'; Lumen runs %s models", F.name(), *ArchName, Names));
  }
  const std::string P = std::string(C.Arch->Name) + ".";
  struct U32Key {
    std::string Key;
    uint32_t *Out;
  };
  for (const U32Key &K : {U32Key{P + "block_count", &C.Layers}, {P + "embedding_length", &C.Dim},
                          {P + "feed_forward_length", &C.FFN}, {P + "attention.head_count", &C.Heads},
                          {P + "context_length", &C.ContextLength}}) {
    absl::StatusOr<uint32_t> V = F.getU32(K.Key);
    if (!V.ok())
      return V.status();
    if (*V == 0)
      return absl::InvalidArgumentError(absl::StrFormat("%s: %s is 0", F.name(), K.Key));
    *K.Out = *V;
  }
  // head_count_kv defaults to head_count (no GQA), as in llama.cpp.
  C.KVHeads = C.Heads;
  if (F.find(P + "attention.head_count_kv")) {
    absl::StatusOr<uint32_t> V = F.getU32(P + "attention.head_count_kv");
    if (!V.ok())
      return V.status();
    C.KVHeads = *V;
  }
  for (auto [Key, Out] : {std::pair{P + "rope.freq_base", &C.RopeBase},
                          {P + "attention.layer_norm_rms_epsilon", &C.RmsEps}}) {
    if (!F.find(Key))
      continue; // llama.cpp's defaults: 10000 is the generic base, but Qwen files always set it.
    absl::StatusOr<float> V = F.getF32(Key);
    if (!V.ok())
      return V.status();
    if (!(*V > 0))
      return absl::InvalidArgumentError(absl::StrFormat("%s: %s = %g must be positive", F.name(), Key, *V));
    *Out = *V;
  }
  auto Bad = [&](const std::string &What) {
    return absl::InvalidArgumentError(absl::StrFormat("%s: %s", F.name(), What));
  };
  // RoPE scaling by keys: none, or linear (every angle over the factor).
  // Llama 3.1's scaling comes as rope_freqs.weight; YaRN and the others are
  // refused rather than run unscaled.
  if (F.find(P + "rope.scaling.type")) {
    absl::StatusOr<std::string_view> Type = F.getString(P + "rope.scaling.type");
    if (!Type.ok())
      return Type.status();
    if (*Type == "linear") {
      absl::StatusOr<float> Factor = F.getF32(P + "rope.scaling.factor");
      if (!Factor.ok())
        return Factor.status();
      if (!(*Factor >= 1 && *Factor <= 1024))
        return Bad(absl::StrFormat("%srope.scaling.factor %g is not a plausible linear scaling factor", P, *Factor));
      C.RopeFreqScale = 1.0f / *Factor;
    } else if (*Type != "none") {
      return Bad(absl::StrFormat("%srope.scaling.type '%s' is not supported (Lumen runs none and linear, and "
                                 "Llama 3.1's rope_freqs.weight)",
                                 P, *Type));
    }
  }
  if (C.KVHeads == 0 || C.Heads % C.KVHeads)
    return Bad(absl::StrFormat("%sattention.head_count %d is not a multiple of head_count_kv %d", P, C.Heads,
                               C.KVHeads));
  if (C.Arch->HeadDimKey && F.find(P + "attention.key_length")) {
    absl::StatusOr<uint32_t> K = F.getU32(P + "attention.key_length");
    if (!K.ok())
      return K.status();
    C.HeadDim = *K;
    if (F.find(P + "attention.value_length")) {
      absl::StatusOr<uint32_t> V = F.getU32(P + "attention.value_length");
      if (!V.ok())
        return V.status();
      if (*V != *K)
        return Bad(absl::StrFormat("%sattention.value_length %d differs from key_length %d (Lumen's attention "
                                   "needs them equal)", P, *V, *K));
    }
    if (C.HeadDim == 0 || C.HeadDim > 1024)
      return Bad(absl::StrFormat("%sattention.key_length %d is not a plausible head dimension", P, C.HeadDim));
  } else {
    if (C.Dim % C.Heads)
      return Bad(absl::StrFormat("%sembedding_length %d is not divisible by %d heads", P, C.Dim, C.Heads));
    C.HeadDim = C.Dim / C.Heads;
  }
  if (C.HeadDim % 2)
    return Bad(absl::StrFormat("head dim %d is odd (RoPE rotates pairs)", C.HeadDim));
  if (F.find(P + "rope.dimension_count")) { // Partial rotation (fewer dimensions) is not supported.
    absl::StatusOr<uint32_t> Dims = F.getU32(P + "rope.dimension_count");
    if (!Dims.ok())
      return Dims.status();
    if (*Dims != C.HeadDim)
      return Bad(absl::StrFormat("%srope.dimension_count %d differs from the head dimension %d (Lumen rotates "
                                 "whole heads)",
                                 P, *Dims, C.HeadDim));
  }
  if (C.Dim % 32 || C.FFN % 32 || C.qDim() % 32)
    return Bad(absl::StrFormat("embedding_length %d, feed_forward_length %d and heads x head dim %d must be "
                               "multiples of 32",
                               C.Dim, C.FFN, C.qDim()));
  if (C.Layers > 1024 || C.Dim > 65536 || C.FFN > 262144 || C.qDim() > 65536)
    return Bad("implausible model size");
  return C;
}

void Matrix::dequantizeRow(int64_t R, float *Out) const {
  codegen::dequantizeWeightRow(shape(1), Data, R, Out);
}

namespace {

class WeightLoader {
public:
  explicit WeightLoader(const gguf::GGUFFile &F) : F(F) {}

  absl::StatusOr<Matrix> matrix(const std::string &Name, int64_t Cols, int64_t Rows) {
    Used.insert(Name);
    absl::StatusOr<const gguf::TensorInfo *> T = F.getTensor(Name);
    if (!T.ok())
      return T.status();
    if (absl::Status S = checkShape(**T, {Cols, Rows}); !S.ok())
      return S;
    Matrix M;
    M.Data = (*T)->Data;
    M.Rows = Rows;
    M.Cols = Cols;
    std::optional<codegen::WeightType> Type = codegen::weightTypeOf((*T)->Type);
    if (!Type)
      return absl::UnimplementedError(absl::StrFormat(
          "%s: tensor '%s' has type %s; Lumen reads Q8_0, F16, BF16, F32, Q4_0, Q4_1, Q5_0, Q5_1, IQ4_NL and "
          "Q2_K-Q6_K matrices",
          F.name(), Name, gguf::tensorTypeTraits((*T)->Type).Name));
    M.Type = *Type;
    return M;
  }

  absl::StatusOr<const float *> vector(const std::string &Name, int64_t N) {
    Used.insert(Name);
    absl::StatusOr<const gguf::TensorInfo *> T = F.getTensor(Name);
    if (!T.ok())
      return T.status();
    if (absl::Status S = checkShape(**T, {N}); !S.ok())
      return S;
    if ((*T)->Type != gguf::TensorType::F32)
      return absl::UnimplementedError(absl::StrFormat("%s: tensor '%s' has type %s, expected F32",
                                                      F.name(), Name,
                                                      gguf::tensorTypeTraits((*T)->Type).Name));
    if (reinterpret_cast<uintptr_t>((*T)->Data) % alignof(float))
      return absl::InvalidArgumentError(absl::StrFormat("%s: tensor '%s' is not 4-byte aligned", F.name(), Name));
    return reinterpret_cast<const float *>((*T)->Data);
  }

  /// A tensor the forward pass would not read is refused (as llama.cpp
  /// refuses a file with tensors its architecture does not load): computing
  /// without it would silently give other results than the file means.
  absl::Status checkAllUsed(const char *Arch) const {
    for (const gguf::TensorInfo &T : F.tensors())
      if (!Used.contains(std::string(T.Name)))
        return absl::InvalidArgumentError(
            absl::StrFormat("%s: tensor '%s' is not part of the %s architecture as Lumen runs it", F.name(), T.Name,
                            Arch));
    return absl::OkStatus();
  }

private:
  absl::Status checkShape(const gguf::TensorInfo &T, std::vector<int64_t> Want) {
    bool Ok = T.NumDims == Want.size();
    for (size_t I = 0; Ok && I < Want.size(); ++I)
      Ok = T.Dims[I] == Want[I];
    if (Ok)
      return absl::OkStatus();
    std::string W;
    for (int64_t D : Want)
      W += (W.empty() ? "" : ", ") + std::to_string(D);
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s: tensor '%s' has shape %s, the model config needs [%s]", F.name(), T.Name, T.shapeString(), W));
  }
  const gguf::GGUFFile &F;
  absl::flat_hash_set<std::string> Used;
};

} // namespace

TransformerModel::TransformerModel() = default;
TransformerModel::~TransformerModel() = default;

absl::StatusOr<std::unique_ptr<TransformerModel>> TransformerModel::load(const std::string &Path, LoadOptions Options) {
  absl::StatusOr<std::unique_ptr<gguf::GGUFFile>> F = gguf::GGUFFile::open(Path);
  if (!F.ok())
    return F.status();
  return fromFile(std::move(*F), Options);
}

void TransformerModel::placeWeights(const LoadOptions &Options) {
  if (!Options.Repack && !Options.HugePages)
    return;
  // Every distinct matrix (the tied lm_head is the embedding itself).
  std::vector<Matrix *> All = {&Embedding};
  for (LayerWeights &L : Layers)
    for (Matrix *W : {&L.Q, &L.K, &L.V, &L.O, &L.Gate, &L.Up, &L.Down})
      All.push_back(W);
  const bool Tied = Output.Data == Embedding.Data;
  if (!Tied)
    All.push_back(&Output);
  // The norm weights and biases too, after the matrices: in the file they
  // lie between the matrices, and where the page cache holds the file in
  // large folios (ext4 on Linux 6.18 here) each vector read maps a whole
  // 2 MB folio into the process (~55 MB resident for Qwen2.5-0.5B).
  struct Vector {
    const float **P;
    int64_t N;
  };
  const int64_t D = Config.Dim, KV = Config.kvDim(), QD = Config.qDim(), HD = Config.HeadDim;
  std::vector<Vector> Vectors = {{&OutputNorm, D}};
  for (LayerWeights &L : Layers)
    for (Vector V : {Vector{&L.AttnNorm, D}, {&L.QBias, QD}, {&L.KBias, KV}, {&L.VBias, KV}, {&L.QNorm, HD},
                     {&L.KNorm, HD}, {&L.FfnNorm, D}})
      if (*V.P) // The architecture's optional parts only.
        Vectors.push_back(V);
  if (RopeFreqs)
    Vectors.push_back({&RopeFreqs, HD / 2});
  constexpr int64_t kAlign = 4096; // Each matrix starts on its own page.
  constexpr int64_t kVectorAlign = 64;
  int64_t Total = 0;
  for (const Matrix *W : All)
    Total += (W->bytes() + kAlign - 1) / kAlign * kAlign;
  for (const Vector &V : Vectors)
    Total += (V.N * int64_t(sizeof(float)) + kVectorAlign - 1) / kVectorAlign * kVectorAlign;
  auto Arena = std::make_unique<runtime::LargeBuffer>(Total, Options.HugePages, /*ZeroFill=*/false);
  if (!Arena->valid())
    return; // No memory for the copy: keep computing from the mapping.

  // Where each matrix goes, and pieces of ~16 MB (whole row groups) that
  // the threads copy and release independently: the copy's page faults and
  // the file's page-ins run in parallel, and the peak resident size stays
  // the weights plus a piece per thread.
  struct Piece {
    const Matrix *W;
    uint8_t *Dst;
    codegen::WeightLayout To;
    int64_t RowBegin, RowEnd;
  };
  std::vector<Piece> Pieces;
  std::vector<std::pair<uint8_t *, codegen::WeightLayout>> Placed;
  uint8_t *At = Arena->data();
  for (const Matrix *W : All) {
    codegen::WeightLayout To = Options.Repack ? codegen::chooseLayout(W->Rows, W->Cols, W->Type, Options.Cpu, Options.Wisdom.get())
                                              : codegen::WeightLayout::Rows;
    const int64_t RowBytes = codegen::weightRowBytes(W->Type, W->Cols);
    const int64_t Group = codegen::layoutRowGroup(To);
    const int64_t Step = std::max<int64_t>(Group, (int64_t(16) << 20) / RowBytes / Group * Group);
    for (int64_t R = 0; R < W->Rows; R += Step)
      Pieces.push_back({W, At, To, R, std::min(W->Rows, R + Step)});
    Placed.emplace_back(At, To);
    At += (W->bytes() + kAlign - 1) / kAlign * kAlign;
  }
  // The vectors first, while little else is resident: their folios stay
  // mapped until the release at the end.
  for (const Vector &V : Vectors) {
    std::memcpy(At, *V.P, V.N * sizeof(float));
    *V.P = reinterpret_cast<const float *>(At);
    At += (V.N * int64_t(sizeof(float)) + kVectorAlign - 1) / kVectorAlign * kVectorAlign;
  }
  runtime::ThreadPool Pool(Options.Threads);
  Pool.parallelFor(static_cast<int64_t>(Pieces.size()), 1, [&](int64_t Begin, int64_t End) {
    for (int64_t I = Begin; I < End; ++I) {
      const Piece &P = Pieces[I];
      const int64_t RowBytes = codegen::weightRowBytes(P.W->Type, P.W->Cols);
      codegen::repackWeights(P.W->Type, P.W->Data, P.Dst, P.To, P.W->Rows, P.W->Cols, P.RowBegin, P.RowEnd);
      File->releaseRange(P.W->Data + P.RowBegin * RowBytes, (P.RowEnd - P.RowBegin) * RowBytes);
    }
  });
  for (size_t I = 0; I < All.size(); ++I) {
    All[I]->Data = Placed[I].first;
    All[I]->Layout = Placed[I].second;
  }
  if (Tied)
    Output = Embedding;
  // Nothing reads the tensor data in the file any more.
  File->releaseTensorData();
  WeightArena = std::move(Arena);
}

absl::StatusOr<std::unique_ptr<TransformerModel>> TransformerModel::fromFile(std::unique_ptr<gguf::GGUFFile> File,
                                                                  LoadOptions Options) {
  absl::StatusOr<ModelConfig> C = ModelConfig::fromGGUF(*File);
  if (!C.ok())
    return C.status();
  absl::StatusOr<std::unique_ptr<Tokenizer>> Tok = Tokenizer::fromGGUF(*File);
  if (!Tok.ok())
    return Tok.status();
  std::unique_ptr<TransformerModel> M(new TransformerModel());
  M->Config = *C;
  M->Tok = std::move(*Tok);
  const gguf::TensorInfo *Embd = File->findTensor("token_embd.weight");
  if (!Embd)
    return absl::NotFoundError(absl::StrFormat("%s: missing tensor 'token_embd.weight'", File->name()));
  M->Config.Vocab = static_cast<uint32_t>(Embd->Dims[1]);
  M->Config.TiedOutput = File->findTensor("output.weight") == nullptr;
  // As llama.cpp: the embedding has one row per vocabulary entry, no more, no less.
  if (M->Tok->vocabSize() != static_cast<int64_t>(M->Config.Vocab))
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s: the tokenizer has %d tokens but token_embd.weight has %d rows", File->name(),
        M->Tok->vocabSize(), M->Config.Vocab));

  const ModelConfig &Cf = M->Config;
  const Architecture &A = *Cf.Arch;
  const int64_t D = Cf.Dim, KV = Cf.kvDim(), QD = Cf.qDim(), HD = Cf.HeadDim, FF = Cf.FFN, V = Cf.Vocab;
  WeightLoader L(*File);
  auto Take = [](auto &&R, auto &Out) -> absl::Status {
    if (!R.ok())
      return R.status();
    Out = *R;
    return absl::OkStatus();
  };
  absl::Status S = Take(L.matrix("token_embd.weight", D, V), M->Embedding);
  if (S.ok()) S = Take(L.vector("output_norm.weight", D), M->OutputNorm);
  if (S.ok()) {
    if (Cf.TiedOutput)
      M->Output = M->Embedding;
    else
      S = Take(L.matrix("output.weight", D, V), M->Output);
  }
  M->Layers.resize(Cf.Layers);
  for (uint32_t I = 0; I < Cf.Layers && S.ok(); ++I) {
    std::string B = absl::StrFormat("blk.%d.", I);
    LayerWeights &W = M->Layers[I];
    for (absl::Status Step : {Take(L.vector(B + "attn_norm.weight", D), W.AttnNorm),
                              Take(L.matrix(B + "attn_q.weight", D, QD), W.Q),
                              Take(L.matrix(B + "attn_k.weight", D, KV), W.K),
                              Take(L.matrix(B + "attn_v.weight", D, KV), W.V),
                              Take(L.matrix(B + "attn_output.weight", QD, D), W.O),
                              Take(L.vector(B + "ffn_norm.weight", D), W.FfnNorm),
                              Take(L.matrix(B + "ffn_gate.weight", D, FF), W.Gate),
                              Take(L.matrix(B + "ffn_up.weight", D, FF), W.Up),
                              Take(L.matrix(B + "ffn_down.weight", FF, D), W.Down)})
      if (S.ok() && !Step.ok())
        S = Step;
    // The architecture's optional parts: required when it declares them,
    // read where present when they are optional (Llama's biases, each alone).
    if (A.QKVBias != Presence::None)
      for (auto [Name, Width, Out] : {std::tuple{"attn_q.bias", QD, &W.QBias}, {"attn_k.bias", KV, &W.KBias},
                                      {"attn_v.bias", KV, &W.VBias}})
        if (A.QKVBias == Presence::Required || File->findTensor(B + Name))
          if (absl::Status Step = Take(L.vector(B + Name, Width), *Out); S.ok() && !Step.ok())
            S = Step;
    if (A.QKNorm)
      for (absl::Status Step : {Take(L.vector(B + "attn_q_norm.weight", HD), W.QNorm),
                                Take(L.vector(B + "attn_k_norm.weight", HD), W.KNorm)})
        if (S.ok() && !Step.ok())
          S = Step;
  }
  if (S.ok() && A.RopeFreqs && File->findTensor("rope_freqs.weight")) {
    S = Take(L.vector("rope_freqs.weight", HD / 2), M->RopeFreqs);
    for (int64_t I = 0; S.ok() && I < HD / 2; ++I)
      if (!(M->RopeFreqs[I] > 0) || !std::isfinite(M->RopeFreqs[I]))
        S = absl::InvalidArgumentError(absl::StrFormat("%s: rope_freqs.weight[%d] = %g is not a positive divisor",
                                                       File->name(), I, M->RopeFreqs[I]));
  }
  if (S.ok())
    S = L.checkAllUsed(A.Name);
  if (!S.ok())
    return S;
  M->File = std::move(File);
  M->placeWeights(Options);
  return M;
}

void TransformerModel::ropeAngles(int64_t Pos, float *Cos, float *Sin) const {
  const int64_t Half = Config.HeadDim / 2;
  const float ThetaScale = std::pow(Config.RopeBase, -2.0f / Config.HeadDim);
  float Theta = static_cast<float>(Pos);
  for (int64_t I = 0; I < Half; ++I, Theta *= ThetaScale) {
    const float T = Config.RopeFreqScale * (RopeFreqs ? Theta / RopeFreqs[I] : Theta);
    Cos[I] = std::cos(T);
    Sin[I] = std::sin(T);
  }
}

std::vector<runtime::TuneTarget> tuneTargets(const TransformerModel &M) {
  std::vector<runtime::TuneTarget> Targets;
  auto Add = [&](const Matrix &W, const char *Name, bool Prefill) {
    for (runtime::TuneTarget &T : Targets)
      if (T.Type == W.Type && T.M == W.Rows && T.K == W.Cols) {
        if (T.Name.find(Name) == std::string::npos)
          T.Name += std::string("/") + Name;
        T.Prefill = T.Prefill || Prefill;
        return;
      }
    Targets.push_back({Name, W.Type, W.Rows, W.Cols, Prefill});
  };
  for (const LayerWeights &L : M.Layers)
    for (auto [W, Name] : {std::pair{&L.Q, "attn_q"}, {&L.K, "attn_k"}, {&L.V, "attn_v"}, {&L.O, "attn_output"},
                           {&L.Gate, "ffn_gate"}, {&L.Up, "ffn_up"}, {&L.Down, "ffn_down"}})
      Add(*W, Name, true);
  Add(M.Output, "output", false);
  return Targets;
}

} // namespace lumen::model
