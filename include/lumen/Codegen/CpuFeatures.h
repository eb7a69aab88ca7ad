//===- lumen/Codegen/CpuFeatures.h - Target ISA description -----*- C++ -*-===//
//
// The few x86 features the kernel generator chooses between, and the LLVM
// CPU name / feature string the kernels are compiled for.
//
//===----------------------------------------------------------------------===//
#ifndef LUMEN_CODEGEN_CPUFEATURES_H
#define LUMEN_CODEGEN_CPUFEATURES_H

#include "lumen/Export.h"

#include "absl/status/statusor.h"

#include <string>
#include <string_view>

namespace lumen::codegen {

struct LUMEN_API CpuFeatures {
  std::string CpuName = "x86-64-v3";
  bool AVX2 = false;
  bool FMA = false;
  bool F16C = false;
  bool AVX512 = false; // F + BW + VL + DQ, as every AVX-512 CPU since Skylake-X has.
  bool VNNI = false;   // AVX512_VNNI (vpdpbusd on 128/256/512-bit vectors).

  /// What this machine has (LLVM's host detection).
  static CpuFeatures host();
  /// A named ISA level: "avx2", "avx512" or "avx512-vnni".
  static absl::StatusOr<CpuFeatures> forIsa(std::string_view Isa);

  /// The LLVM target-features string ("+avx2,+fma,...", "-avx512f" when absent),
  /// so a module for "avx2" never contains AVX-512 even on an AVX-512 host.
  std::string featureString() const;
  /// "avx512-vnni", "avx512" or "avx2" (or "none").
  std::string isaName() const;
  /// Enough for the generated kernels: AVX2 + FMA + F16C.
  bool supportsKernels() const { return AVX2 && FMA && F16C; }
  /// Code for this target runs on Host: Host has every feature it uses.
  /// Otherwise the first feature Host lacks ("AVX512_VNNI"), for errors.
  absl::Status runsOn(const CpuFeatures &Host) const;
};

} // namespace lumen::codegen

#endif
