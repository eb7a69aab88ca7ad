//===- lumen/GGUF/MappedFile.h - Read-only memory mapping --------*- C++ -*-===//
#ifndef LUMEN_GGUF_MAPPEDFILE_H
#define LUMEN_GGUF_MAPPEDFILE_H

#include "lumen/Export.h"

#include "absl/status/statusor.h"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

namespace lumen::gguf {

/// A whole file mapped read-only and private. The mapping lives as long as
/// the object; spans handed out from it must not outlive it.
class LUMEN_API MappedFile {
public:
  static absl::StatusOr<std::unique_ptr<MappedFile>> open(const std::string &Path);
  ~MappedFile();
  MappedFile(const MappedFile &) = delete;
  MappedFile &operator=(const MappedFile &) = delete;

  std::span<const uint8_t> bytes() const { return {Data, Size}; }
  /// Tells the kernel the pages of [Offset, Offset + Length) are not needed
  /// now (they leave the resident set; reading them again faults them back
  /// in from the file).
  void release(size_t Offset, size_t Length) const;
  const std::string &path() const { return Path; }

private:
  MappedFile(std::string Path, const uint8_t *Data, size_t Size)
      : Path(std::move(Path)), Data(Data), Size(Size) {}
  std::string Path;
  const uint8_t *Data;
  size_t Size;
};

} // namespace lumen::gguf

#endif
