//===- wisdom_fuzzer.cpp - The wisdom file parser --------------------------===//
//
// Any text either parses or is an error; what parses prints back to text
// that parses to the same thing, and every entry it yields is usable by
// chooseSpec (which validates it before use) without a crash.
//
//===----------------------------------------------------------------------===//
#include "lumen/Codegen/KernelABI.h"
#include "lumen/Codegen/Wisdom.h"

#include <cstdio>
#include <cstdlib>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *Data, size_t Size) {
  using namespace lumen::codegen;
  const std::string_view Text(reinterpret_cast<const char *>(Data), Size);
  const WisdomHost Host{"Fuzz CPU", "znver5", "avx512-vnni", "19", "0.1.0"};
  auto W = Wisdom::parse(Text, Host);
  if (!W.ok())
    return 0;
  const std::string Printed = W->print();
  auto Again = Wisdom::parse(Printed, Host);
  if (!Again.ok() || Again->print() != Printed) { // Printing is a fixed point of parsing.
    std::fprintf(stderr, "printed:\n%s\n%s\n", Printed.c_str(),
                 Again.ok() ? ("printed again:\n" + Again->print()).c_str()
                            : std::string(Again.status().message()).c_str());
    std::abort();
  }
  CpuFeatures Cpu = *CpuFeatures::forIsa("avx512-vnni");
  Cpu.CpuName = "znver5";
  for (const WisdomKernel &E : W->kernels()) {
    if (E.K % 32 || E.M > (1 << 20) || E.K > (1 << 16))
      continue; // chooseSpec is given valid shapes only.
    const MatmulShape Shape{E.M, E.K, E.Tokens == TokenClass::Decode ? 1 : 8, E.Type, E.Layout};
    if (!validateShape(Shape).ok() || !layoutSupports(E.Layout, E.Type, E.M, E.K))
      continue; // Nor a layout its matrix cannot be stored in.
    KernelSpec S = chooseSpec(Shape, Cpu, nullptr, &*W, E.Threads);
    if (absl::Status V = S.validate(Cpu); !V.ok()) {
      std::fprintf(stderr, "invalid choice: %s\n", std::string(V.message()).c_str());
      std::abort(); // Wisdom or table, the choice is always valid.
    }
  }
  for (const WisdomLayout &L : W->layouts())
    if (L.M > 0 && L.K > 0)
      (void)chooseLayout(L.M, L.K, L.Type, Cpu, &*W);
  return 0;
}
