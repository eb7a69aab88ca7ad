//===- lumen/Quantize/ModelQuantizer.h - A GGUF model to a quantization preset -*- C++ -*-===//
//
// quantizeModel reads a model file and writes it again with each tensor in
// the type a preset's plan gives it (QuantPreset.h): metadata copied, with
// general.file_type set to the preset; tensors the plan leaves alone copied
// byte for byte; the rest decoded row by row and re-encoded. The output is
// written whole and renamed into place (GGUFWriter), so a failure or a
// cancel leaves no partial file.
//
//===----------------------------------------------------------------------===//
#ifndef LUMEN_QUANTIZE_MODELQUANTIZER_H
#define LUMEN_QUANTIZE_MODELQUANTIZER_H

#include "lumen/Export.h"

#include "lumen/GGUF/GGUFFile.h"
#include "lumen/Quantize/QuantPreset.h"

#include "absl/status/statusor.h"

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace lumen::quant {

struct LUMEN_API QuantizeOptions {
  Preset Target = Preset::Q4_K_M;
  unsigned Threads = 0; // 0: all cores.
  /// Accept quantized source tensors (decoded, then quantized again; the
  /// errors add up). llama-quantize --allow-requantize.
  bool AllowRequantize = false;
  bool LeaveOutputTensor = false;
  /// Called as tensors are written with the elements done and in all;
  /// an error (say, cancelled) stops the write.
  std::function<absl::Status(uint64_t Done, uint64_t Total)> OnProgress;
};

struct LUMEN_API TensorReport {
  std::string Name;
  gguf::TensorType From, To;
  /// The preset's type for it when its rows do not divide into that type's
  /// blocks and To is llama.cpp's fallback.
  std::optional<gguf::TensorType> FellBackFrom;
  int64_t Elements = 0;
  uint64_t BytesBefore = 0, BytesAfter = 0;
};

struct LUMEN_API QuantizeReport {
  std::vector<TensorReport> Tensors;
  uint64_t BytesBefore = 0, BytesAfter = 0; // Tensor data.
  uint64_t FileBytes = 0;                   // The written file.
  int64_t Elements = 0;
  double Seconds = 0;
  double bitsPerWeight() const { return Elements ? 8.0 * BytesAfter / Elements : 0; }
};

/// Quantizes In to OutPath. Errors, before anything is written: a preset
/// the model cannot take, a quantized source without AllowRequantize, a
/// source type Lumen cannot decode, OutPath naming In or not a regular file.
LUMEN_API absl::StatusOr<QuantizeReport> quantizeModel(const gguf::GGUFFile &In, const std::string &OutPath,
                                                       const QuantizeOptions &Options);

} // namespace lumen::quant

#endif
