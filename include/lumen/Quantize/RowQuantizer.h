//===- lumen/Quantize/RowQuantizer.h - Rows to a weight type as they are written -*- C++ -*-===//
//
// Adapts a source of float rows (a file's tensor decoded, or a generator) to
// GGUFWriter's row filler for any type quantizeRow writes, spreading the
// rows of each chunk over threads. Nothing but one chunk is ever held in
// memory, so a model is quantized without a full-precision copy.
//
//===----------------------------------------------------------------------===//
#ifndef LUMEN_QUANTIZE_ROWQUANTIZER_H
#define LUMEN_QUANTIZE_ROWQUANTIZER_H

#include "lumen/Export.h"

#include "lumen/GGUF/GGUFTypes.h"
#include "lumen/GGUF/GGUFWriter.h"

#include "absl/status/status.h"

#include <cstdint>
#include <functional>
#include <string>

namespace lumen::quant {

/// Writes row Row (RowLength floats) into Out. Called from several threads
/// at once, for different rows.
using FloatRowSource = std::function<absl::Status(int64_t Row, float *Out)>;

struct LUMEN_API RowQuantizerOptions {
  /// Threads per chunk of rows (0: all cores). The bytes do not depend on it.
  unsigned Threads = 0;
  /// Called after each chunk with the number of rows written, on the
  /// writer's thread; an error stops the write.
  std::function<absl::Status(int64_t Rows)> OnRows;
};

/// A filler for tensor Name whose rows of RowLength elements Source gives,
/// stored as Type. A row that is not finite is an error naming the tensor
/// and row.
LUMEN_API gguf::GGUFWriter::RowFiller quantizedRows(std::string Name, gguf::TensorType Type, int64_t RowLength,
                                                    FloatRowSource Source, RowQuantizerOptions Options = {});

/// Runs Body(First, Count) over [0, N) split across up to Threads threads
/// and returns the first error.
LUMEN_API absl::Status parallelRows(int64_t N, unsigned Threads,
                                    const std::function<absl::Status(int64_t First, int64_t Count)> &Body);

} // namespace lumen::quant

#endif
