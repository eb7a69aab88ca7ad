//===- shape_fuzzer.cpp - The --shape parser -------------------------------===//
#include "lumen/Codegen/KernelSpec.h"

#include <cstdlib>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *Data, size_t Size) {
  std::string_view Text(reinterpret_cast<const char *>(Data), Size);
  auto S = lumen::codegen::parseShape(Text, 1 + (Size % 17));
  if (S.ok() && (S->K <= 0 || S->M <= 0 || S->K % 32 != 0))
    std::abort(); // A shape that parses is a valid one.
  return 0;
}
