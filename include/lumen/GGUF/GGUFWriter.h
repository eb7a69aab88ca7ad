//===- lumen/GGUF/GGUFWriter.h - GGUF v3 writer ------------------*- C++ -*-===//
//
// Builds a GGUF v3 file from metadata and tensors. Tensor bytes are produced
// by a callback a chunk of rows at a time, so a model of any size is written
// in bounded memory.
//
//===----------------------------------------------------------------------===//
#ifndef LUMEN_GGUF_GGUFWRITER_H
#define LUMEN_GGUF_GGUFWRITER_H

#include "lumen/Export.h"

#include "lumen/GGUF/GGUFFile.h"
#include "lumen/GGUF/GGUFTypes.h"

#include "absl/status/status.h"

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace lumen::gguf {

class LUMEN_API GGUFWriter {
public:
  /// Fills rows [FirstRow, FirstRow + NumRows) of a tensor into Out, which
  /// holds NumRows * rowBytes bytes. An error stops write(), which then
  /// leaves no file behind and returns it.
  using RowFiller = std::function<absl::Status(int64_t FirstRow, int64_t NumRows, uint8_t *Out)>;

  explicit GGUFWriter(uint32_t Alignment = 32);

  // Metadata, written in the order first set; setting a key again replaces it.
  // general.alignment is added from the constructor argument unless set here
  // (set it to the same value to choose its position).
  void setU32(std::string_view Key, uint32_t V);
  void setI32(std::string_view Key, int32_t V);
  void setU64(std::string_view Key, uint64_t V);
  void setF32(std::string_view Key, float V);
  void setBool(std::string_view Key, bool V);
  void setString(std::string_view Key, std::string_view V);
  void setStringArray(std::string_view Key, const std::vector<std::string> &V);
  void setI32Array(std::string_view Key, std::span<const int32_t> V);
  /// Copies a value read by GGUFFile, whatever its type.
  void setValue(std::string_view Key, const Value &V);

  /// Adds a tensor whose rows Fill produces. Dims are in ne order.
  absl::Status addTensor(std::string_view Name, TensorType Type, std::vector<int64_t> Dims,
                         RowFiller Fill);
  /// Adds a tensor from bytes the caller keeps alive until write().
  absl::Status addTensor(std::string_view Name, TensorType Type, std::vector<int64_t> Dims,
                         std::span<const uint8_t> Bytes);

  /// Writes the file (to a temporary name beside it, synced, then renamed
  /// over Path, so readers never see a partial file). Path must be absent or
  /// a regular file (see checkOutputPath). Fillers run in the order the
  /// tensors were added.
  absl::Status write(const std::string &Path) const;

  uint64_t tensorDataBytes() const;

private:
  struct PendingTensor {
    std::string Name;
    TensorType Type;
    std::vector<int64_t> Dims;
    uint64_t NumBytes;
    uint64_t RowBytes;
    int64_t NumRows;
    RowFiller Fill;
  };
  void setEncoded(std::string_view Key, std::string Encoded);

  uint32_t Alignment;
  std::vector<std::pair<std::string, std::string>> KVs; // Key, encoded type + value.
  std::vector<PendingTensor> Tensors;
};

/// Whether Path may be replaced by a file renamed into place: it is absent or
/// a regular file. A FIFO, device, directory or symlink is an error naming
/// what it is (a rename would replace it rather than write to it).
LUMEN_API absl::Status checkOutputPath(const std::string &Path);

} // namespace lumen::gguf

#endif
