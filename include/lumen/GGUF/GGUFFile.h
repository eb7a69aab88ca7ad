//===- lumen/GGUF/GGUFFile.h - Validating GGUF reader ------------*- C++ -*-===//
//
// GGUFFile parses a GGUF v2/v3 file in place: strings, arrays and tensor data
// are views into the read-only mapping, nothing is copied. Every length,
// count and offset is checked against the bytes that exist before it is
// used, so no input can make the reader touch memory outside the mapping,
// and allocations are bounded by the file size.
//
//===----------------------------------------------------------------------===//
#ifndef LUMEN_GGUF_GGUFFILE_H
#define LUMEN_GGUF_GGUFFILE_H

#include "lumen/Export.h"

#include "lumen/GGUF/GGUFTypes.h"
#include "lumen/GGUF/MappedFile.h"

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"

#include <array>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace lumen::gguf {

/// One metadata value. Scalars hold their value; arrays of fixed-width
/// elements point at the raw little-endian bytes in the file; arrays of
/// strings and arrays of arrays are expanded one level into views.
struct LUMEN_API Value {
  ValueType Type = ValueType::U8;
  uint64_t Bits = 0;        // Scalar payload, as read (integers, bool, float bits).
  std::string_view String;  // Type == String.
  // Type == Array:
  ValueType ElementType = ValueType::U8;
  uint64_t Count = 0;
  const uint8_t *Raw = nullptr;             // Fixed-width elements.
  std::vector<std::string_view> Strings;    // ElementType == String.
  std::vector<Value> Items;                 // ElementType == Array.

  bool isArray() const { return Type == ValueType::Array; }
  bool isInteger() const;
  bool isFloat() const { return Type == ValueType::F32 || Type == ValueType::F64; }
  /// Integer scalars as signed 64-bit (u64 above INT64_MAX saturates).
  int64_t asInt() const;
  double asDouble() const;
  /// Element I of a fixed-width numeric array, converted to double / int.
  double numberAt(uint64_t I) const;
  int64_t intAt(uint64_t I) const;
  /// Short human-readable rendering; long arrays are summarised.
  std::string toString(size_t MaxItems = 4) const;
};

struct LUMEN_API KeyValue {
  std::string_view Key;
  Value Val;
};

struct LUMEN_API TensorInfo {
  std::string_view Name;
  TensorType Type = TensorType::F32;
  unsigned NumDims = 0;
  std::array<int64_t, 4> Dims = {1, 1, 1, 1}; // ne order: Dims[0] is innermost.
  uint64_t Offset = 0;                         // From the start of the data section.
  uint64_t NumBytes = 0;
  const uint8_t *Data = nullptr;               // Into the mapping.

  int64_t numElements() const { return Dims[0] * Dims[1] * Dims[2] * Dims[3]; }
  /// Rows of Dims[0] elements each.
  int64_t numRows() const { return Dims[1] * Dims[2] * Dims[3]; }
  uint64_t rowBytes() const { return NumBytes / static_cast<uint64_t>(numRows()); }
  std::string shapeString() const;
};

class LUMEN_API GGUFFile {
public:
  /// Maps and parses the file at Path.
  static absl::StatusOr<std::unique_ptr<GGUFFile>> open(const std::string &Path);
  /// Parses bytes the caller keeps alive (tests, fuzzing). Name appears in errors.
  static absl::StatusOr<std::unique_ptr<GGUFFile>> parse(std::span<const uint8_t> Bytes,
                                                         std::string Name);

  const std::string &name() const { return Name; }
  uint32_t version() const { return Version; }
  uint32_t alignment() const { return Alignment; }
  uint64_t dataOffset() const { return DataOffset; }
  uint64_t fileSize() const { return Bytes.size(); }

  const std::vector<KeyValue> &metadata() const { return KVs; }
  const Value *find(std::string_view Key) const;

  // Typed accessors: the error names the key and what was found instead.
  // Integer getters accept any integer type whose value fits.
  absl::StatusOr<uint32_t> getU32(std::string_view Key) const;
  absl::StatusOr<uint64_t> getU64(std::string_view Key) const;
  absl::StatusOr<int32_t> getI32(std::string_view Key) const;
  absl::StatusOr<float> getF32(std::string_view Key) const;
  absl::StatusOr<bool> getBool(std::string_view Key) const;
  absl::StatusOr<std::string_view> getString(std::string_view Key) const;
  /// An array whose elements have type Element.
  absl::StatusOr<const Value *> getArray(std::string_view Key, ValueType Element) const;

  const std::vector<TensorInfo> &tensors() const { return Tensors; }
  /// The tensor data section: [dataOffset(), fileSize()).
  std::span<const uint8_t> tensorData() const { return Bytes.subspan(DataOffset); }
  /// Drops the mapped tensor data from the resident set (after it was
  /// copied elsewhere); no-op for caller-owned bytes.
  void releaseTensorData() const;
  /// The same for the whole pages inside [P, P + N), a range of bytes().
  void releaseRange(const uint8_t *P, size_t N) const;
  const TensorInfo *findTensor(std::string_view Name) const;
  absl::StatusOr<const TensorInfo *> getTensor(std::string_view Name) const;

private:
  friend class Parser;
  GGUFFile() = default;

  std::unique_ptr<MappedFile> Mapping; // Null when parsing caller-owned bytes.
  std::span<const uint8_t> Bytes;
  std::string Name;
  uint32_t Version = 0;
  uint32_t Alignment = 32;
  uint64_t DataOffset = 0;
  std::vector<KeyValue> KVs;
  absl::flat_hash_map<std::string_view, size_t> KeyIndex;
  std::vector<TensorInfo> Tensors;
  absl::flat_hash_map<std::string_view, size_t> TensorIndex;
};

} // namespace lumen::gguf

#endif
