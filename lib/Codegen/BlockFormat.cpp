//===- BlockFormat.cpp - The block format of each quantized type -----------===//
#include "BlockFormat.h"

namespace lumen::codegen {

const BlockFormat *blockFormat(WeightType W) {
  for (auto Family : {legacyBlockFormat, kQuantBlockFormat, nonLinearBlockFormat})
    if (const BlockFormat *F = Family(W))
      return F;
  return nullptr;
}

} // namespace lumen::codegen
