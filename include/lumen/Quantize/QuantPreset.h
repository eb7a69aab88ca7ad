//===- lumen/Quantize/QuantPreset.h - llama.cpp's quantization presets -*- C++ -*-===//
//
// A preset (Q4_K_M, Q8_0, ...) names a default weight type and the rules that
// give some tensors more bits: the output and tied embedding, attn_v in some
// layers, ffn_down in others, and the fallbacks for rows a type's blocks do
// not divide. TensorTypePlan applies them as llama.cpp's quantizer
// (llama_tensor_get_type in src/llama-quant.cpp) does for the presets below,
// so that a file Lumen writes has the tensor types of the file llama-quantize
// writes from the same model.
//
//===----------------------------------------------------------------------===//
#ifndef LUMEN_QUANTIZE_QUANTPRESET_H
#define LUMEN_QUANTIZE_QUANTPRESET_H

#include "lumen/Export.h"

#include "lumen/GGUF/GGUFFile.h"
#include "lumen/GGUF/GGUFTypes.h"

#include "absl/status/statusor.h"

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace lumen::quant {

/// The presets: Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 Q2_K Q3_K_S Q3_K_M Q3_K_L Q4_K_S
/// Q4_K_M Q5_K_S Q5_K_M Q6_K, and F16 BF16 F32 (plain conversions).
enum class Preset {
  Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K_S, Q3_K_M, Q3_K_L,
  Q4_K_S, Q4_K_M, Q5_K_S, Q5_K_M, Q6_K, F16, BF16, F32,
};

struct LUMEN_API PresetInfo {
  Preset Id;
  std::string_view Name;
  gguf::TensorType Default;
  /// general.file_type, llama.cpp's llama_ftype number.
  uint32_t FileType;
  std::string_view Description;
};

LUMEN_API const PresetInfo &presetInfo(Preset P);
/// By name, case-insensitively; the error lists the names.
LUMEN_API absl::StatusOr<Preset> presetFromName(std::string_view Name);
LUMEN_API std::span<const PresetInfo> presets();

/// What the rules need to know of the model.
struct LUMEN_API ModelFacts {
  uint32_t Layers = 0;
  uint32_t Heads = 0, KVHeads = 0;
  /// Whether the file has output.weight (otherwise the embedding doubles as
  /// the output and takes the output's type).
  bool HasOutput = false;
};
/// Reads them from {arch}.block_count, .attention.head_count(_kv) and the
/// tensor list.
LUMEN_API absl::StatusOr<ModelFacts> modelFacts(const gguf::GGUFFile &File);

class LUMEN_API TensorTypePlan {
public:
  struct Options {
    /// Leave output.weight as it is (llama-quantize --leave-output-tensor).
    bool LeaveOutputTensor = false;
  };
  TensorTypePlan(Preset P, ModelFacts Facts, Options O);
  TensorTypePlan(Preset P, ModelFacts Facts) : TensorTypePlan(P, Facts, Options{}) {}

  /// The type for tensor Name of Dims (ne order; Dims[0] is the row
  /// length), or nullopt when it is not quantized and keeps its type: not a
  /// weight, fewer than two dimensions, a norm, or a left output tensor.
  std::optional<gguf::TensorType> typeFor(std::string_view Name, std::span<const int64_t> Dims) const;
  /// InvalidArgument when the rules' type for Name does not divide its rows
  /// and llama.cpp has no fallback for that type (a legacy or Q8_0 type: only
  /// the K-quants fall back), as llama-quantize refuses such a tensor.
  absl::Status check(std::string_view Name, std::span<const int64_t> Dims) const;
  /// The type the preset's rules chose for Name when its rows do not divide
  /// into that type's blocks and typeFor gives llama.cpp's fallback instead;
  /// nullopt when the tensor took its rules' type (or is not quantized).
  std::optional<gguf::TensorType> fellBackFrom(std::string_view Name, std::span<const int64_t> Dims) const;

  const PresetInfo &preset() const { return Info; }

private:
  /// The rules' type for a quantized tensor before any fallback.
  std::optional<gguf::TensorType> ruleType(std::string_view Name, std::span<const int64_t> Dims) const;
  gguf::TensorType chooseForRole(std::string_view Name, int64_t RowLength) const;

  const PresetInfo &Info;
  ModelFacts Facts;
  Options Opts;
};

} // namespace lumen::quant

#endif
