//===- GGUFTypes.cpp - GGUF value and tensor types ------------------------===//
#include "lumen/GGUF/GGUFTypes.h"

#include <array>

namespace lumen::gguf {

unsigned valueTypeSize(ValueType T) {
  switch (T) {
  case ValueType::U8: case ValueType::I8: case ValueType::Bool: return 1;
  case ValueType::U16: case ValueType::I16: return 2;
  case ValueType::U32: case ValueType::I32: case ValueType::F32: return 4;
  case ValueType::U64: case ValueType::I64: case ValueType::F64: return 8;
  case ValueType::String: case ValueType::Array: return 0;
  }
  return 0;
}

std::string_view valueTypeName(ValueType T) {
  switch (T) {
  case ValueType::U8: return "u8";
  case ValueType::I8: return "i8";
  case ValueType::U16: return "u16";
  case ValueType::I16: return "i16";
  case ValueType::U32: return "u32";
  case ValueType::I32: return "i32";
  case ValueType::F32: return "f32";
  case ValueType::Bool: return "bool";
  case ValueType::String: return "str";
  case ValueType::Array: return "arr";
  case ValueType::U64: return "u64";
  case ValueType::I64: return "i64";
  case ValueType::F64: return "f64";
  }
  return "?";
}

bool isValidValueType(uint32_t Raw) { return Raw <= 12; }

namespace {
struct TypeRow {
  TensorType Type;
  TensorTypeTraits Traits;
};
// Block sizes and bytes per block, as ggml-common.h defines the blocks.
constexpr std::array<TypeRow, 38> kTypes = {{
    {TensorType::F32, {"F32", 1, 4}},           {TensorType::F16, {"F16", 1, 2}},
    {TensorType::Q4_0, {"Q4_0", 32, 18}},       {TensorType::Q4_1, {"Q4_1", 32, 20}},
    {TensorType::Q5_0, {"Q5_0", 32, 22}},       {TensorType::Q5_1, {"Q5_1", 32, 24}},
    {TensorType::Q8_0, {"Q8_0", 32, 34}},       {TensorType::Q8_1, {"Q8_1", 32, 36}},
    {TensorType::Q2_K, {"Q2_K", 256, 84}},      {TensorType::Q3_K, {"Q3_K", 256, 110}},
    {TensorType::Q4_K, {"Q4_K", 256, 144}},     {TensorType::Q5_K, {"Q5_K", 256, 176}},
    {TensorType::Q6_K, {"Q6_K", 256, 210}},     {TensorType::Q8_K, {"Q8_K", 256, 292}},
    {TensorType::IQ2_XXS, {"IQ2_XXS", 256, 66}}, {TensorType::IQ2_XS, {"IQ2_XS", 256, 74}},
    {TensorType::IQ3_XXS, {"IQ3_XXS", 256, 98}}, {TensorType::IQ1_S, {"IQ1_S", 256, 50}},
    {TensorType::IQ4_NL, {"IQ4_NL", 32, 18}},   {TensorType::IQ3_S, {"IQ3_S", 256, 110}},
    {TensorType::IQ2_S, {"IQ2_S", 256, 82}},    {TensorType::IQ4_XS, {"IQ4_XS", 256, 136}},
    {TensorType::I8, {"I8", 1, 1}},             {TensorType::I16, {"I16", 1, 2}},
    {TensorType::I32, {"I32", 1, 4}},           {TensorType::I64, {"I64", 1, 8}},
    {TensorType::F64, {"F64", 1, 8}},           {TensorType::IQ1_M, {"IQ1_M", 256, 56}},
    {TensorType::BF16, {"BF16", 1, 2}},         {TensorType::Q4_0_4_4, {"Q4_0_4_4", 32, 18}},
    {TensorType::Q4_0_4_8, {"Q4_0_4_8", 32, 18}}, {TensorType::Q4_0_8_8, {"Q4_0_8_8", 32, 18}},
    {TensorType::TQ1_0, {"TQ1_0", 256, 54}},    {TensorType::TQ2_0, {"TQ2_0", 256, 66}},
    {TensorType::IQ4_NL_4_4, {"IQ4_NL_4_4", 32, 18}}, {TensorType::IQ4_NL_4_8, {"IQ4_NL_4_8", 32, 18}},
    {TensorType::IQ4_NL_8_8, {"IQ4_NL_8_8", 32, 18}}, {TensorType::MXFP4, {"MXFP4", 32, 17}},
}};
} // namespace

std::optional<TensorTypeTraits> tensorTypeTraits(uint32_t Raw) {
  for (const TypeRow &R : kTypes)
    if (static_cast<uint32_t>(R.Type) == Raw)
      return R.Traits;
  return std::nullopt;
}

TensorTypeTraits tensorTypeTraits(TensorType T) {
  return *tensorTypeTraits(static_cast<uint32_t>(T));
}

std::optional<TensorType> tensorTypeFromName(std::string_view Name) {
  for (const TypeRow &R : kTypes)
    if (R.Traits.Name == Name)
      return R.Type;
  return std::nullopt;
}

} // namespace lumen::gguf
