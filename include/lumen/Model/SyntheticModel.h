//===- lumen/Model/SyntheticModel.h - Random-weight models ------*- C++ -*-===//
//
// Writes GGUF files with the exact tensor names, shapes, types and metadata
// of the published Qwen2.5 GGUFs (and of Qwen3 and Llama 3 by preset) (Q8_0, or any quantization preset,
// or F16, BF16 or F32 matrices), and random weights drawn at scales that keep
// activations O(1) through every layer (see
// docs/SYNTHETIC_MODELS.md for the recipe and why). Used for tests and
// benchmarks where real weights cannot be downloaded.
//
//===----------------------------------------------------------------------===//
#ifndef LUMEN_MODEL_SYNTHETICMODEL_H
#define LUMEN_MODEL_SYNTHETICMODEL_H

#include "lumen/Export.h"

#include "lumen/GGUF/GGUFFile.h"
#include "lumen/Model/TransformerModel.h"
#include "lumen/Quantize/QuantPreset.h"

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace lumen::model {

/// A named Qwen2 configuration: the hyper-parameters that fix a file's layout.
struct LUMEN_API ModelShape : ModelConfig {
  std::string Name;
  /// Llama 3.1 / 3.2's RoPE scaling factor (8, 32), written as
  /// rope_freqs.weight as llama.cpp's converter computes it; 0: none.
  float Llama3RopeFactor = 0;
};

/// "qwen2.5-0.5b", "qwen2.5-1.5b", "qwen2.5-3b", "qwen2.5-7b" or "tiny" (the
/// shape of the shared fixture).
LUMEN_API absl::StatusOr<ModelShape> syntheticPreset(std::string_view Preset);
LUMEN_API std::vector<std::string> syntheticPresetNames();

struct LUMEN_API SynthOptions {
  ModelShape Shape;
  uint64_t Seed = 1;
  /// The matrices' quantization preset, each tensor's type chosen as
  /// llama.cpp's quantizer chooses it (lumen/Quantize/QuantPreset.h) and
  /// quantized as it is written: Q8_0 as in the published files, any other
  /// preset, or F16, BF16 or F32 (the same gaussians, unrounded).
  quant::Preset Type = quant::Preset::Q8_0;
  /// Copy tokenizer.* metadata from this file; null writes a byte-level vocabulary.
  const gguf::GGUFFile *TokenizerFrom = nullptr;
  /// Threads that draw weights (0: all cores). The file does not depend on it.
  unsigned Threads = 0;
  /// Called as matrices are written with the elements done and in all; an
  /// error (say, cancelled) stops the write and leaves no file.
  std::function<absl::Status(uint64_t Done, uint64_t Total)> OnProgress;
};

/// Writes the model to Path. The same options give the same bytes.
LUMEN_API absl::Status writeSyntheticModel(const SynthOptions &Options, const std::string &Path);

} // namespace lumen::model

#endif
