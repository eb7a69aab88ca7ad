//===- KernelTable.cpp - Per-shape kernel choices --------------------------===//
//
// The one place where kernel choices are made. Rows are tried in order; the
// first whose shape range matches wins, then the row is fitted to the ISA
// (256-bit without AVX-512, pmaddubsw without VNNI). The numbers are the
// winners of bench/kernel_bench (docs/BENCHMARK.md), measured on the AVX2
// hosts we have; the 512-bit/VNNI choices mirror them unmeasured (no
// AVX-512 machine was available). Rerun the benchmark before changing a row.
//
//===----------------------------------------------------------------------===//
#include "lumen/Codegen/KernelSpec.h"
#include "lumen/Codegen/KernelABI.h"

#include "absl/strings/str_format.h"

#include <array>
#include <limits>

namespace lumen::codegen {

namespace {

constexpr int64_t kAny = std::numeric_limits<int64_t>::max();

struct TableRow {
  const char *Name;
  WeightLayout Layout;
  int64_t MinN, MaxN; // Tokens.
  int64_t MinK, MaxK; // Reduction length.
  ActivationFormat Activations;
  unsigned VectorBits;
  unsigned Accumulators;
  unsigned TileRows, TileTokens;
  unsigned PrefetchBytes;
};

// clang-format off
constexpr std::array<TableRow, 6> kTable = {{
  // Interleaved8 (what the model loader stores Q8_0 matrices as): 8 rows per
  // 32-byte vector, so decode reads one sequential stream with no horizontal
  // sums; prefetching ahead keeps more DRAM requests in flight than the
  // hardware prefetcher alone. Prefill tiles share each activation broadcast
  // across 8 rows and each weight vector across the tile's tokens.
  // name                        layout                      N          K          act                     bits acc  rows tokens prefetch
  {"decode, interleaved",        WeightLayout::Interleaved8, 1, 1,      32, kAny,  ActivationFormat::Q8,   256, 2,   8,   1,     1024},
  {"prefill, interleaved, short",WeightLayout::Interleaved8, 2, 3,      32, kAny,  ActivationFormat::Q8,   256, 1,   8,   2,     0},
  {"prefill, interleaved",       WeightLayout::Interleaved8, 4, kAny,   32, kAny,  ActivationFormat::Q8,   256, 1,   8,   4,     0},
  // Rows (the file's layout, e.g. M not a multiple of 8). Decode: int8 dot
  // products beat in-register dequantization + f32 FMA by 20-30 % from
  // DRAM; one row at a time (adjacent rows in lockstep defeat the
  // prefetcher: 55 % of DRAM bandwidth); 2 accumulator sets lift the
  // in-cache ceiling a little; prefetching 1 KB ahead adds 1-28 % from DRAM
  // on one thread (-7 to +10 % on two).
  // Prefill: 2x4 tiles were best or tied.
  {"decode",                     WeightLayout::Rows,         1, 1,      32, kAny,  ActivationFormat::Q8,   512, 2,   1,   1,     1024},
  {"prefill, short tiles",       WeightLayout::Rows,         2, 3,      32, kAny,  ActivationFormat::Q8,   512, 1,   2,   2,     0},
  {"prefill",                    WeightLayout::Rows,         4, kAny,   32, kAny,  ActivationFormat::Q8,   512, 1,   2,   4,     0},
}};
// clang-format on

} // namespace

KernelSpec chooseSpec(const MatmulShape &Shape, const CpuFeatures &Cpu, std::string *Why) {
  const TableRow *Row = &kTable.back();
  for (const TableRow &R : kTable)
    if (R.Layout == Shape.Layout && Shape.N >= R.MinN && Shape.N <= R.MaxN && Shape.K >= R.MinK &&
        Shape.K <= R.MaxK) {
      Row = &R;
      break;
    }
  KernelSpec S;
  S.Shape = Shape;
  S.Activations = Row->Activations;
  S.VectorBits = Row->VectorBits;
  S.Accumulators = Row->Accumulators;
  S.TileRows = Row->TileRows;
  S.TileTokens = Row->TileTokens;
  S.PrefetchBytes = Row->PrefetchBytes;
  std::string Adjusted;
  // Fit the row to the ISA and the data: what the table prefers, where it can run.
  if (Shape.Weights != WeightType::Q8_0 && S.Activations == ActivationFormat::Q8) {
    S.Activations = ActivationFormat::F32;
    Adjusted += "; f32 activations for non-Q8_0 weights";
  }
  if (S.VectorBits == 512 && !Cpu.AVX512) {
    S.VectorBits = 256;
    Adjusted += "; 256-bit (no AVX-512)";
  }
  S.VNNI = S.Activations == ActivationFormat::Q8 && Cpu.VNNI;
  if (S.Activations == ActivationFormat::Q8 && !S.VNNI && S.VectorBits == 512) {
    S.VectorBits = 256;
    Adjusted += "; 256-bit pmaddubsw (no VNNI)";
  }
  if (Why)
    *Why = absl::StrFormat("table row '%s' (N %d..%s)%s on %s", Row->Name, Row->MinN,
                           Row->MaxN == kAny ? "any" : absl::StrFormat("%d", Row->MaxN), Adjusted,
                           Cpu.isaName());
  return S;
}

WeightLayout chooseLayout(int64_t M, int64_t K, WeightType W, const CpuFeatures &Cpu) {
  // Interleaved8 wherever it applies: its kernels (table rows above) are the
  // fastest on every ISA we generate for, decode and prefill alike.
  (void)Cpu;
  return layoutSupports(WeightLayout::Interleaved8, W, M, K) ? WeightLayout::Interleaved8
                                                             : WeightLayout::Rows;
}

} // namespace lumen::codegen
