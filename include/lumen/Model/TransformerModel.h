//===- lumen/Model/TransformerModel.h - A loaded GGUF model -----*- C++ -*-===//
//
// The configuration, tokenizer and weights of a decoder-only transformer of
// one of the architectures Lumen runs (Architecture: qwen2, qwen3, llama). Every tensor's
// presence, type and shape is checked at load, with errors that name the key
// or tensor. Matrices of the types the interleaved layouts take (Q8_0, the
// 4/5-bit legacy types, Q4_K, Q5_K, Q6_K) are repacked into the layout the kernel
// table prefers (rows interleaved 16 or 8 at a time), in 2 MB-page memory that replaces
// the file's pages tensor by tensor -- never a dequantized or second copy.
// A model is immutable and can be shared by any number of sessions and
// threads.
//
//===----------------------------------------------------------------------===//
#ifndef LUMEN_MODEL_TRANSFORMERMODEL_H
#define LUMEN_MODEL_TRANSFORMERMODEL_H

#include "lumen/Export.h"

#include "lumen/Codegen/KernelABI.h"
#include "lumen/Codegen/Wisdom.h"
#include "lumen/GGUF/GGUFFile.h"
#include "lumen/Model/Chat.h"
#include "lumen/Model/Tokenizer.h"
#include "lumen/Runtime/Tuner.h"

#include "absl/status/statusor.h"

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace lumen::runtime {
class LargeBuffer;
}

namespace lumen::model {

/// What a decoder family adds to the common skeleton (RMSNorm, RoPE,
/// grouped-query attention, SwiGLU): the optional parts the forward passes
/// read as data, one row per `general.architecture` Lumen runs.
/// Which elements of a head RoPE rotates together.
enum class RopeStyle {
  Neox,  // i with i + HeadDim/2 (Qwen; llama.cpp's LLAMA_ROPE_TYPE_NEOX).
  Pairs, // 2i with 2i + 1 (Llama; llama.cpp's LLAMA_ROPE_TYPE_NORM).
};

/// Whether an architecture's optional part is in its files.
enum class Presence {
  None,     // Never.
  Optional, // Read where the file has it.
  Required, // Always: a file without it is refused.
};

struct LUMEN_API Architecture {
  const char *Name;  // general.architecture, and the prefix of its keys.
  Presence QKVBias;  // attn_q/k/v.bias (Qwen2: always; Llama: each where present).
  bool QKNorm;       // attn_q_norm/attn_k_norm: RMSNorm over each q and k head before RoPE (Qwen3).
  /// The head dimension comes from {arch}.attention.key_length (Qwen3-0.6B:
  /// 16 heads of 128 on a 1024 embedding), else embedding / heads.
  bool HeadDimKey;
  RopeStyle Rope;
  /// rope_freqs.weight, when the file has it: a divisor per frequency
  /// (Llama 3.1's long-context scaling, as llama.cpp's converter writes it).
  bool RopeFreqs;
  /// The chat format of a file whose template Lumen does not recognise, or
  /// that has none.
  ChatFormat Chat;
  /// The pre-tokenizer (PreTokenizer) of a file without tokenizer.ggml.pre:
  /// early conversions of Qwen2 and of Llama 3 lack the key.
  const char *PreTokenizer;
};

/// The architectures Lumen runs, and the one named Name (null if none).
LUMEN_API const std::vector<Architecture> &architectures();
LUMEN_API const Architecture *findArchitecture(std::string_view Name);

struct LUMEN_API ModelConfig {
  const Architecture *Arch = nullptr;
  uint32_t Layers = 0;
  uint32_t Dim = 0;
  uint32_t FFN = 0;
  uint32_t Heads = 0;
  uint32_t KVHeads = 0;
  uint32_t HeadDim = 0;
  uint32_t Vocab = 0;
  uint32_t ContextLength = 0;
  float RopeBase = 1e6f;
  /// {arch}.rope.scaling.type linear: every angle times 1 / rope.scaling.factor.
  float RopeFreqScale = 1.0f;
  float RmsEps = 1e-6f;
  bool TiedOutput = true;

  uint32_t kvDim() const { return KVHeads * HeadDim; }
  /// The query heads' width: attn_q's rows and attn_output's columns (the
  /// embedding width for Qwen2; Qwen3 may differ).
  uint32_t qDim() const { return Heads * HeadDim; }
  /// Reads {arch}.* metadata for an architecture Lumen runs; every error
  /// names the key.
  static absl::StatusOr<ModelConfig> fromGGUF(const gguf::GGUFFile &File);
};

/// A weight matrix: Rows outputs of Cols inputs, in Layout (KernelABI.h).
struct LUMEN_API Matrix {
  const uint8_t *Data = nullptr;
  codegen::WeightType Type = codegen::WeightType::Q8_0;
  codegen::WeightLayout Layout = codegen::WeightLayout::Rows;
  int64_t Rows = 0;
  int64_t Cols = 0;
  /// Row R's Cols values as floats.
  void dequantizeRow(int64_t R, float *Out) const;
  int64_t bytes() const { return Rows * codegen::weightRowBytes(Type, Cols); }
  codegen::MatmulShape shape(int64_t Tokens) const { return {Rows, Cols, Tokens, Type, Layout}; }
};

struct LUMEN_API LayerWeights {
  const float *AttnNorm;
  Matrix Q, K, V, O;
  const float *QBias = nullptr, *KBias = nullptr, *VBias = nullptr; // Architecture::QKVBias.
  const float *QNorm = nullptr, *KNorm = nullptr;                   // Architecture::QKNorm: HeadDim each.
  const float *FfnNorm;
  Matrix Gate, Up, Down;
};

struct LUMEN_API LoadOptions {
  /// Store matrices in the layout chosen by codegen::chooseLayout
  /// (Interleaved16 or Interleaved8 where M allows) instead of the file's row layout.
  bool Repack = true;
  /// Put copied matrices in 2 MB-page memory (madvise MADV_HUGEPAGE). With
  /// Repack off this still copies the matrices, in file layout. With both
  /// off the weights are read from the file mapping in place.
  bool HugePages = true;
  /// Threads that copy and repack (0: all cores).
  unsigned Threads = 0;
  /// The CPU whose kernels will read the weights (the Jit's,
  /// runtime::Jit::cpu()): the layout is chosen for it, so a Jit made for
  /// another ISA than the host's gets matrices its kernels can read.
  codegen::CpuFeatures Cpu = codegen::CpuFeatures::host();
  /// With Repack: layouts measured on this host where it has them
  /// (codegen::chooseLayout); null: the table's.
  std::shared_ptr<const codegen::Wisdom> Wisdom;
};

class LUMEN_API TransformerModel {
public:
  static absl::StatusOr<std::unique_ptr<TransformerModel>> load(const std::string &Path, LoadOptions Options = {});
  static absl::StatusOr<std::unique_ptr<TransformerModel>> fromFile(std::unique_ptr<gguf::GGUFFile> File,
                                                              LoadOptions Options = {});
  ~TransformerModel();

  const ModelConfig &config() const { return Config; }
  const Tokenizer &tokenizer() const { return *Tok; }
  const gguf::GGUFFile &file() const { return *File; }

  Matrix Embedding;            // token_embd: Vocab rows of Dim.
  const float *OutputNorm = nullptr;
  Matrix Output;               // output.weight, or the embedding when tied.
  /// rope_freqs.weight (Architecture::RopeFreqs): HeadDim / 2 divisors of
  /// the RoPE angles, or null.
  const float *RopeFreqs = nullptr;

  /// RoPE's cos and sin at position Pos, HeadDim / 2 of each: angle i is
  /// Pos * base^(-2i/HeadDim) (by repeated f32 products, as llama.cpp's
  /// ggml_rope computes it), times the frequency scale, over rope_freqs[i].
  void ropeAngles(int64_t Pos, float *Cos, float *Sin) const;
  std::vector<LayerWeights> Layers;

private:
  TransformerModel();
  /// Copies the matrices into one arena in the layouts chosen (repacking
  /// where asked), releasing each one's file pages once it is copied, so the
  /// peak resident size is the weights plus one tensor; then the norm
  /// weights and biases, so that no tensor data of the file stays resident.
  void placeWeights(const LoadOptions &Options);

  std::unique_ptr<gguf::GGUFFile> File;
  std::unique_ptr<runtime::LargeBuffer> WeightArena;
  ModelConfig Config;
  std::unique_ptr<Tokenizer> Tok;
};

/// Every distinct matrix shape and type M multiplies by, named by its
/// tensors ("attn_q/attn_output"), for the tuner: the output matrix for
/// decode only (prompts compute its logits for the last token alone).
LUMEN_API std::vector<runtime::TuneTarget> tuneTargets(const TransformerModel &M);

} // namespace lumen::model

#endif
