//===- lumen/GGUF/GGUFTypes.h - GGUF value and tensor types ------*- C++ -*-===//
//
// The enumerations of the GGUF container format (metadata value types) and
// of ggml's tensor types, with the block geometry needed to size tensors.
//
//===----------------------------------------------------------------------===//
#ifndef LUMEN_GGUF_GGUFTYPES_H
#define LUMEN_GGUF_GGUFTYPES_H

#include "lumen/Export.h"

#include <cstdint>
#include <optional>
#include <string_view>

namespace lumen::gguf {

/// Metadata value types, numbered as in the GGUF specification.
enum class ValueType : uint32_t {
  U8 = 0, I8 = 1, U16 = 2, I16 = 3, U32 = 4, I32 = 5, F32 = 6, Bool = 7,
  String = 8, Array = 9, U64 = 10, I64 = 11, F64 = 12,
};

/// Size in bytes of a fixed-width value type; 0 for String and Array.
LUMEN_API unsigned valueTypeSize(ValueType T);
LUMEN_API std::string_view valueTypeName(ValueType T);
LUMEN_API bool isValidValueType(uint32_t Raw);

/// ggml tensor types, numbered as in ggml.h: every id ggml has assigned, so
/// that any GGUF file can be read and described, whether or not Lumen
/// computes on the type. (4 and 5 were Q4_2/Q4_3, gone before GGUF existed;
/// 31-33 and 36-38 are the interleaved Q4_0/IQ4_NL layouts ggml once wrote.)
enum class TensorType : uint32_t {
  F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3, Q5_0 = 6, Q5_1 = 7, Q8_0 = 8,
  Q8_1 = 9, Q2_K = 10, Q3_K = 11, Q4_K = 12, Q5_K = 13, Q6_K = 14, Q8_K = 15,
  IQ2_XXS = 16, IQ2_XS = 17, IQ3_XXS = 18, IQ1_S = 19, IQ4_NL = 20, IQ3_S = 21,
  IQ2_S = 22, IQ4_XS = 23, I8 = 24, I16 = 25, I32 = 26, I64 = 27, F64 = 28,
  IQ1_M = 29, BF16 = 30, Q4_0_4_4 = 31, Q4_0_4_8 = 32, Q4_0_8_8 = 33,
  TQ1_0 = 34, TQ2_0 = 35, IQ4_NL_4_4 = 36, IQ4_NL_4_8 = 37, IQ4_NL_8_8 = 38,
  MXFP4 = 39,
};

/// Block geometry of a tensor type: BlockSize elements take TypeSize bytes.
struct LUMEN_API TensorTypeTraits {
  std::string_view Name;
  uint32_t BlockSize;
  uint32_t TypeSize;
};

/// Traits of a raw type id, or nullopt if it is no ggml type.
LUMEN_API std::optional<TensorTypeTraits> tensorTypeTraits(uint32_t Raw);
LUMEN_API TensorTypeTraits tensorTypeTraits(TensorType T);
LUMEN_API std::optional<TensorType> tensorTypeFromName(std::string_view Name);

/// Whether T stores blocks of several elements (a quantized type), not one
/// value an element (F32, F16, BF16, the integer types).
inline bool isBlockQuantized(TensorType T) { return tensorTypeTraits(T).BlockSize > 1; }

/// Q8_0: 32 int8 quants sharing one fp16 scale, 34 bytes a block.
inline constexpr int kQ8BlockSize = 32;
struct LUMEN_API BlockQ8_0 {
  uint16_t Scale; // IEEE half
  int8_t Quants[kQ8BlockSize];
};
static_assert(sizeof(BlockQ8_0) == 34, "Q8_0 blocks are packed");

} // namespace lumen::gguf

#endif
