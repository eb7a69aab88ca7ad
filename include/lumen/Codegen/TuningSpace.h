//===- lumen/Codegen/TuningSpace.h - Candidate kernels to measure -*- C++ -*-===//
//
// The tuner's search space: the code-shape choices of a KernelSpec grouped
// into axes, each with the few values worth measuring. The tuner walks the
// axes one at a time from the table's choice (coordinate descent), so it
// measures a sum of the axes' sizes, not their product.
//
//===----------------------------------------------------------------------===//
#ifndef LUMEN_CODEGEN_TUNINGSPACE_H
#define LUMEN_CODEGEN_TUNINGSPACE_H

#include "lumen/Export.h"

#include "lumen/Codegen/CpuFeatures.h"
#include "lumen/Codegen/KernelSpec.h"

#include <vector>

namespace lumen::codegen {

enum class TuningAxis {
  Prefetch,     // Distance and pattern together (a pattern needs a distance).
  Tile,         // Register tile rows x tokens.
  Accumulators, // Independent accumulator sets over K.
  Pacing,       // Decode pacing (interleaved layouts).
  Isa,          // Vector width and VNNI (the row layout; interleaved ones fix both).
};

/// The axes in the order the tuner walks them for a kernel on N tokens: the
/// ones that moved the most in docs/BENCHMARK.md's experiments first (decode:
/// the prefetch, which sets how fast the weights stream; prefill: the
/// register tile, which sets how many int8 dot products a cycle issues).
LUMEN_API const std::vector<TuningAxis> &tuningAxes(int64_t N);
LUMEN_API const char *tuningAxisName(TuningAxis A);

/// From's neighbours along A: From with that axis set to each of its other
/// values, only those valid on Cpu (KernelSpec::validate), none equal to From.
LUMEN_API std::vector<KernelSpec> candidatesAlong(const KernelSpec &From, TuningAxis A, const CpuFeatures &Cpu);

} // namespace lumen::codegen

#endif
