//===- lumen/Codegen/Emulation.h - Run AVX-512 kernels on AVX2 ----*- C++ -*-===//
//
// A testing aid: rewrites the x86 VNNI intrinsics of a module into generic
// LLVM IR with the same semantics (Intel SDM, VPDPBUSD: per 32-bit lane,
// acc + sum of four zero-extended bytes of A times sign-extended bytes of B,
// wrapping) and retargets every function to Host, so the AVX-512 kernels'
// logic (lane layout, bias trick, two-block steps, tails) can be executed
// and checked on machines without AVX-512.
//
//===----------------------------------------------------------------------===//
#ifndef LUMEN_CODEGEN_EMULATION_H
#define LUMEN_CODEGEN_EMULATION_H

#include "lumen/Export.h"

#include "lumen/Codegen/CpuFeatures.h"

#include "absl/status/status.h"

namespace llvm {
class Module;
}

namespace lumen::codegen {

/// Replaces every llvm.x86.avx512.vpdpbusd.{128,256,512} call in M and sets
/// each function's target attributes to Host. Returns the number of calls
/// rewritten through Rewritten.
LUMEN_API absl::Status emulateVnni(llvm::Module &M, const CpuFeatures &Host, unsigned *Rewritten = nullptr);

} // namespace lumen::codegen

#endif
