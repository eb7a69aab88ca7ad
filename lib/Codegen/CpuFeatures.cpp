//===- CpuFeatures.cpp - Target ISA description ----------------------------===//
#include "lumen/Codegen/CpuFeatures.h"

#include "absl/strings/str_format.h"

#include "llvm/ADT/StringMap.h"
#include "llvm/TargetParser/Host.h"

#include <tuple>
#include <vector>

namespace lumen::codegen {

CpuFeatures CpuFeatures::host() {
  CpuFeatures F;
  F.CpuName = llvm::sys::getHostCPUName().str();
  llvm::StringMap<bool> Host = llvm::sys::getHostCPUFeatures();
  auto Has = [&](const char *Name) { return Host.lookup(Name); };
  F.AVX2 = Has("avx2");
  F.FMA = Has("fma");
  F.F16C = Has("f16c");
  F.AVX512 = Has("avx512f") && Has("avx512bw") && Has("avx512vl") && Has("avx512dq");
  F.VNNI = F.AVX512 && Has("avx512vnni");
  return F;
}

absl::StatusOr<CpuFeatures> CpuFeatures::forIsa(std::string_view Isa) {
  CpuFeatures F;
  F.AVX2 = F.FMA = F.F16C = true;
  if (Isa == "avx2") {
    F.CpuName = "x86-64-v3";
  } else if (Isa == "avx512") {
    F.CpuName = "x86-64-v4";
    F.AVX512 = true;
  } else if (Isa == "avx512-vnni") {
    F.CpuName = "x86-64-v4";
    F.AVX512 = F.VNNI = true;
  } else {
    return absl::InvalidArgumentError(
        absl::StrFormat("unknown ISA '%s' (expected avx2, avx512 or avx512-vnni)", Isa));
  }
  return F;
}

std::string CpuFeatures::featureString() const {
  std::vector<std::string> Parts;
  auto Add = [&](bool On, const char *Name) {
    std::string P(1, On ? '+' : '-');
    P += Name;
    Parts.push_back(std::move(P));
  };
  Add(AVX2, "avx2");
  Add(FMA, "fma");
  Add(F16C, "f16c");
  for (const char *Name : {"avx512f", "avx512bw", "avx512vl", "avx512dq", "evex512"})
    Add(AVX512, Name);
  Add(VNNI, "avx512vnni");
  std::string Out;
  for (const std::string &P : Parts)
    Out += (Out.empty() ? "" : ",") + P;
  return Out;
}

absl::Status CpuFeatures::runsOn(const CpuFeatures &Host) const {
  for (auto [Needs, Has, Name] : {std::tuple{AVX2, Host.AVX2, "AVX2"}, {FMA, Host.FMA, "FMA"},
                                  {F16C, Host.F16C, "F16C"}, {AVX512, Host.AVX512, "AVX-512 (F/BW/VL/DQ)"},
                                  {VNNI, Host.VNNI, "AVX512_VNNI"}})
    if (Needs && !Has)
      return absl::FailedPreconditionError(
          absl::StrFormat("%s code cannot run here: this CPU (%s) lacks %s", isaName(), Host.CpuName, Name));
  return absl::OkStatus();
}

std::string CpuFeatures::isaName() const {
  if (VNNI) return "avx512-vnni";
  if (AVX512) return "avx512";
  if (AVX2) return "avx2";
  return "none";
}

} // namespace lumen::codegen
