//===- KernelTable.cpp - Per-shape kernel choices --------------------------===//
//
// The one place where kernel choices are made. Rows are tried in order; the
// first whose shape range matches wins, then the row is fitted to the ISA
// (256-bit without AVX-512, pmaddubsw without VNNI). The numbers are the
// winners of bench/kernel_bench (docs/BENCHMARK.md): the VNNI rows measured
// on Zen 4 (AVX-512 + AVX512_VNNI) and the Zen5 rows on Zen 5, the others
// on an AVX2-only host. Rerun the benchmark before changing a row. On any
// host, `lumen-jit tune` measures the neighbours of these choices and its
// wisdom (Wisdom.h), where it has an entry, is taken before the table.
//
//===----------------------------------------------------------------------===//
#include "lumen/Codegen/KernelSpec.h"
#include "lumen/Codegen/KernelABI.h"
#include "lumen/Codegen/Wisdom.h"

#include "absl/strings/str_format.h"

#include <algorithm>
#include <array>
#include <limits>

namespace lumen::codegen {

namespace {

constexpr int64_t kAny = std::numeric_limits<int64_t>::max();
/// PrefetchBytes meaning "the next row tile's bytes": the distance from a
/// block to the same block of the tile after it (shape-dependent).
constexpr unsigned kNextTile = std::numeric_limits<unsigned>::max();

/// Which hosts a row is for. The first fitting row wins, so a row for a
/// narrower class of hosts shadows the wider rows after it: the same kernel
/// streams, and the same tile fills the pipes, differently on other
/// microarchitectures.
enum class Hosts {
  Any,
  Vnni, // AVX512_VNNI.
  Zen5, // AVX512_VNNI on LLVM's znver5: two 512-bit vpdpbusd a cycle (Zen 4: one).
};

/// Which weight types a row is for.
enum class Types {
  Any,
  Packed, // Every interleaved type but Q8_0 (quants below a byte): their decode steps stream differently (below).
};

struct TableRow {
  const char *Name;
  WeightLayout Layout;
  Hosts For;
  Types Weights;
  int64_t MinN, MaxN; // Tokens.
  int64_t MinK, MaxK; // Reduction length.
  ActivationFormat Activations;
  unsigned VectorBits;
  unsigned Accumulators;
  unsigned TileRows, TileTokens;
  unsigned PrefetchBytes;
  PrefetchPattern Pattern; // Which lines (KernelSpec::Prefetch).
  bool Paced;
};

// clang-format off
constexpr std::array<TableRow, 14> kTable = {{
  // Interleaved16 (what the loader stores Q8_0 matrices as on AVX512_VNNI
  // hosts): 16 rows per 64-byte vector, quants pre-offset for vpdpbusd, so
  // a block of 16 rows is 8 loads, 8 broadcasts and 8 vpdpbusd; half the
  // instructions per weight byte of Interleaved8. Decode streams one
  // sequence of whole cache lines; the hardware prefetcher alone keeps up
  // on Zen 4 (software prefetch cost 5-15 %). Prefill tiles reuse each
  // weight vector for 8 tokens; the row tile after them is prefetched while
  // its predecessor is computed, so its first token tile does not wait on
  // DRAM (gate/up -11 %). Decode is paced: a core that runs ahead of the
  // stream with loads of its own made the prefetcher stream slower (the
  // kernels read at 86-96 % of the bare read loop unpaced, 93-97 % paced).
  //
  // Zen 5's hardware prefetcher streams a page at full speed when its start
  // was touched ahead of the stream: the first line of the page 8 KB ahead,
  // prefetched every block, took the kernels from ~30 to ~40 GB/s a core
  // (stream_bench; any other line of that page, or pacing: ~30).
  // The K-quants' sub-block steps (280-416 bytes of 16 rows) streamed best
  // with every line 4 KB ahead and that page's start: down_proj's shape
  // (kernel_bench --shapes 8960x1536, one thread) Q4_K 87-88 % of the read
  // probe against 65 % with the page start alone, Q5_K 81 against 56-61,
  // Q6_K 84-88 against 70-71; gate/up's (1536x8960) within noise of it.
  // Q8_0 does not gain (90-99 against 100-109). On a second Zen 5 host
  // 8 KB ahead beat 4 KB in the model (1.5B Q4_K_M, Q5_K_M, Q6_K,
  // `bench -p 0 -n 64`, two binaries alternated twice: one thread 85-88 % of
  // the probe -> 90-93 %, +6-11 %; two threads +1-11 %), as the tuner found
  // there for every K-quant decode shape; and it found the same for the
  // legacy blocks and IQ4_NL (Q4_0, Q4_1, Q5_0, Q5_1: 1.09-1.22x a shape):
  // in the model one thread +6-10 % (1.5B Q4_0 85 -> 97 % of the probe;
  // 0.5B Q4_0, Q4_1, Q3_K_M's IQ4_NL, the Q4_K_M/Q5_K_M fallbacks to
  // 93-99 %), two threads +2-11 % (docs/BENCHMARK.md, 2026-12-07).
  {"decode, interleaved16, zen5, packed",  WeightLayout::Interleaved16,  Hosts::Zen5,  Types::Packed, 1,  1,       32,  kAny,  ActivationFormat::Q8,   512,  1,   16,   1,      8192,      PrefetchPattern::LinesAndPage, false},
  // name                                  layout                        hosts         types        N             K           act                     bits  acc  rows  tokens  prefetch   pattern                     paced
  {"decode, interleaved16, zen5",         WeightLayout::Interleaved16,  Hosts::Zen5,  Types::Any,  1,   1,       32,  kAny,  ActivationFormat::Q8,   512,  1,   16,   1,      8192,      PrefetchPattern::PageStart,  false},
  {"decode, interleaved16",               WeightLayout::Interleaved16,  Hosts::Any,   Types::Any,  1,   1,       32,  kAny,  ActivationFormat::Q8,   512,  1,   16,   1,      0,         PrefetchPattern::Lines,      true},
  // Small batches (a server's decode steps, 2..8 streams): one tile holds
  // every token, so the weights stream once, in order, as in decode; at 8
  // tokens compute and memory take about as long, and what counts is how
  // far they overlap. Every line 4 KB ahead overlapped them best in the
  // model: 8 tokens 0.5B Q8_0 (bench -p 8 -n 0 -t 2, alternating runs)
  // 590-660 tok/s against 550 for the 32x6 prefill tiles, 4 tokens +20 %
  // against 16x2 tiles; the next tile spread or the page start 8 KB ahead
  // gained half as much (docs/BENCHMARK.md 2026-12-06 "small batches").
  // Touching the page start 8 KB ahead as well let the stream go on during
  // the compute: 8 streams' steps (bench -p 0 -n 32 -t 2 --parallel 8) 606-682
  // against 468-525 tok/s, the page start alone 363-433 ("the page start
  // beside the lines").
  {"batch, interleaved16, zen5",          WeightLayout::Interleaved16,  Hosts::Zen5,  Types::Any,  2,   8,       32,  kAny,  ActivationFormat::Q8,   512,  1,   16,   8,      4096,      PrefetchPattern::LinesAndPage, false},
  {"prefill, interleaved16, short",       WeightLayout::Interleaved16,  Hosts::Any,   Types::Any,  2,   7,       32,  kAny,  ActivationFormat::Q8,   512,  1,   16,   2,      0,         PrefetchPattern::Lines,      false},
  // Zen 5 issues two vpdpbusd a cycle, and 16x8 tiles, loading 8 activation
  // words a weight vector, left a third of that idle; 32x6 tiles share each
  // word between two row groups (12 integer + 12 float accumulators). The
  // next row tile's prefetch spread over all token tiles (a few lines a
  // step) instead of its 470 lines in the first one: +10-15 % with the
  // weights coming from DRAM (kernel_bench's prefill table).
  {"prefill, interleaved16, zen5",        WeightLayout::Interleaved16,  Hosts::Zen5,  Types::Any,  9,   kAny,    32,  kAny,  ActivationFormat::Q8,   512,  1,   32,   6,      kNextTile, PrefetchPattern::Spread,     false},
  {"prefill, interleaved16",              WeightLayout::Interleaved16,  Hosts::Any,   Types::Any,  8,   kAny,    32,  kAny,  ActivationFormat::Q8,   512,  1,   16,   8,      kNextTile, PrefetchPattern::Lines,      false},
  // Interleaved8 (what the loader stores Q8_0 matrices as elsewhere): 8
  // rows per 32-byte vector, so decode reads one sequential stream with no
  // horizontal sums. On the AVX2 hosts prefetching 1 KB ahead kept more
  // DRAM requests in flight than the hardware prefetcher alone (+5-15 %);
  // on Zen 4 with VNNI it cost as much. Prefill tiles share each activation
  // broadcast across 8 rows and each weight vector across the tile's tokens.
  // One accumulator set for decode, as for prefill (batch kernels take the
  // decode kernel's numerics, chooseSpec): with 2 sets the prefill kernels
  // lost 9-17 % (pp512 0.5B Q8_0, --isa avx2 on Zen 5), and decode with 1
  // set was no slower (tg128 86/76 against 77/75 tok/s, 2 threads;
  // docs/BENCHMARK.md 2026-12-06 "batch invariance").
  {"decode, interleaved8",                WeightLayout::Interleaved8,   Hosts::Vnni,  Types::Any,  1,   1,       32,  kAny,  ActivationFormat::Q8,   256,  1,   8,    1,      0,         PrefetchPattern::Lines,      false},
  {"decode, interleaved8",                WeightLayout::Interleaved8,   Hosts::Any,   Types::Any,  1,   1,       32,  kAny,  ActivationFormat::Q8,   256,  1,   8,    1,      1024,      PrefetchPattern::Lines,      false},
  {"prefill, interleaved8, short",        WeightLayout::Interleaved8,   Hosts::Any,   Types::Any,  2,   3,       32,  kAny,  ActivationFormat::Q8,   256,  1,   8,    2,      0,         PrefetchPattern::Lines,      false},
  {"prefill, interleaved8",               WeightLayout::Interleaved8,   Hosts::Any,   Types::Any,  4,   kAny,    32,  kAny,  ActivationFormat::Q8,   256,  1,   8,    4,      0,         PrefetchPattern::Lines,      false},
  // Rows (the file's layout, e.g. M not a multiple of 8). Decode: int8 dot
  // products beat in-register dequantization + f32 FMA by 20-30 % from
  // DRAM; one row at a time (adjacent rows in lockstep defeat the
  // prefetcher: 55 % of DRAM bandwidth); 2 accumulator sets lift the
  // in-cache ceiling a little; prefetching 1 KB ahead adds 1-28 % from DRAM
  // on one thread (-7 to +10 % on two).
  // Prefill: 2x4 tiles were best or tied.
  {"decode",                              WeightLayout::Rows,           Hosts::Any,   Types::Any,  1,   1,       32,  kAny,  ActivationFormat::Q8,   512,  2,   1,    1,      1024,      PrefetchPattern::Lines,      false},
  {"prefill, short tiles",                WeightLayout::Rows,           Hosts::Any,   Types::Any,  2,   3,       32,  kAny,  ActivationFormat::Q8,   512,  1,   2,    2,      0,         PrefetchPattern::Lines,      false},
  {"prefill",                             WeightLayout::Rows,           Hosts::Any,   Types::Any,  4,   kAny,    32,  kAny,  ActivationFormat::Q8,   512,  1,   2,    4,      0,         PrefetchPattern::Lines,      false},
}};
// clang-format on

bool rowFits(const TableRow &R, const MatmulShape &Shape, const CpuFeatures &Cpu) {
  if (R.Weights == Types::Packed && !interleavesBlocks(Shape.Weights) && !interleavesSubBlockRuns(Shape.Weights))
    return false;
  switch (R.For) {
  case Hosts::Any:
    break;
  case Hosts::Vnni:
    if (!Cpu.VNNI)
      return false;
    break;
  case Hosts::Zen5:
    if (!Cpu.VNNI || Cpu.CpuName != "znver5")
      return false;
    break;
  }
  return R.Layout == Shape.Layout && Shape.N >= R.MinN && Shape.N <= R.MaxN && Shape.K >= R.MinK &&
         Shape.K <= R.MaxK;
}

} // namespace

unsigned nextTilePrefetchBytes(const MatmulShape &Shape, unsigned TileRows) {
  return static_cast<unsigned>(std::max<int64_t>(64, TileRows * weightRowBytes(Shape.Weights, Shape.K) / 64 * 64));
}

namespace {

/// Shape's own choice, before the batch-invariance rule: wisdom's entry, else the table's row.
KernelSpec chooseOwn(const MatmulShape &Shape, const CpuFeatures &Cpu, std::string *Why, const Wisdom *Wis,
                     unsigned Threads) {
  // Measured on this host beats the table; an entry the CPU cannot run (a
  // file edited by hand) is passed over.
  std::string WisdomNote;
  if (Wis && Threads) {
    if (const WisdomKernel *E = Wis->kernel(Shape, Threads)) {
      KernelSpec S = E->spec(Shape);
      absl::Status Valid = S.validate(Cpu);
      if (Valid.ok()) {
        if (Why) {
          const bool Table = S == chooseOwn(Shape, Cpu, nullptr, nullptr, 0);
          *Why = absl::StrFormat(
              "wisdom: measured on this host for %s at %d thread(s): %s",
              E->Tokens == TokenClass::Decode ? "decode" : "prefill", Threads,
              Table ? std::string("the table's choice, kept (no other won beyond noise, alone and in the model)")
              : E->Gain > 1 ? absl::StrFormat("%.2fx the table's choice", E->Gain)
                            : std::string("not the table's choice, with no measured gain (edited by hand?)"));
        }
        return S;
      }
      WisdomNote = absl::StrFormat(" (wisdom entry passed over: %s)", Valid.message());
    } else {
      WisdomNote = absl::StrFormat(" (no wisdom for this kernel at %d thread(s): 'lumen-jit tune' measures it)",
                                   Threads);
    }
  }
  const TableRow *Row = &kTable.back();
  for (const TableRow &R : kTable)
    if (rowFits(R, Shape, Cpu)) {
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
  S.Prefetch = Row->Pattern;
  S.Paced = Row->Paced;
  if (S.PrefetchBytes == kNextTile) // Whole lines: prefetches touch a line each.
    S.PrefetchBytes = nextTilePrefetchBytes(Shape, S.TileRows);
  std::string Adjusted;
  // Fit the row to the ISA and the data: what the table prefers, where it can run.
  if (isFloatType(Shape.Weights) && S.Activations == ActivationFormat::Q8) {
    S.Activations = ActivationFormat::F32;
    Adjusted += absl::StrFormat("; f32 activations for %s weights", weightTypeName(Shape.Weights));
  }
  if (Shape.Layout != WeightLayout::Rows) {
    // Types that keep two sums a cell: fewer tokens a tile, so it stays in registers.
    const unsigned Group = layoutRowGroup(Shape.Layout), Registers = Group == 16 ? 24 : 12;
    const unsigned Cell = S.TileRows / Group * (S.Accumulators + interleavedSumsPerCell(Shape.Weights));
    if (S.TileTokens * Cell > Registers) {
      S.TileTokens = std::max(1u, Registers / Cell);
      Adjusted += absl::StrFormat("; %d tokens a tile (two sums a cell for %s)", S.TileTokens,
                                  weightTypeName(Shape.Weights));
    }
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
    *Why = absl::StrFormat("table row '%s' (N %d..%s)%s on %s%s", Row->Name, Row->MinN,
                           Row->MaxN == kAny ? "any" : absl::StrFormat("%d", Row->MaxN), Adjusted,
                           Cpu.isaName(), WisdomNote);
  return S;
}

/// Fits S's tile to the registers its accumulators leave (fewer tokens a tile).
void fitTileToRegisters(KernelSpec &S) {
  const MatmulShape &Shape = S.Shape;
  unsigned PerToken, Registers;
  if (Shape.Layout != WeightLayout::Rows) {
    const unsigned Group = layoutRowGroup(Shape.Layout);
    Registers = Group == 16 ? 24 : 12;
    PerToken = S.TileRows / Group * (S.Accumulators + interleavedSumsPerCell(Shape.Weights));
  } else {
    Registers = S.VectorBits == 512 ? 24 : 12;
    PerToken = S.TileRows * S.Accumulators;
  }
  if (S.TileTokens * PerToken > Registers)
    S.TileTokens = std::max(1u, Registers / PerToken);
}

} // namespace

bool sameNumerics(const KernelSpec &A, const KernelSpec &B) {
  return A.Activations == B.Activations && A.VectorBits == B.VectorBits && A.Accumulators == B.Accumulators &&
         A.VNNI == B.VNNI && A.SuperBlockScales == B.SuperBlockScales && A.Shape.Layout == B.Shape.Layout &&
         A.Shape.Weights == B.Shape.Weights && A.Shape.K == B.Shape.K;
}

KernelSpec chooseSpec(const MatmulShape &Shape, const CpuFeatures &Cpu, std::string *Why, const Wisdom *Wis,
                      unsigned Threads) {
  KernelSpec S = chooseOwn(Shape, Cpu, Why, Wis, Threads);
  if (Shape.N == 1)
    return S;
  // Batch invariance: every batch size computes each output exactly as the
  // one-token kernel does (docs/SERVER.md), so a sequence's logits do not
  // depend on what else shares its forward pass or how its prompt was cut.
  // The one-token (decode) choice fixes the numerics; a batch kernel keeps
  // its own tile and prefetch, refitted to the registers left.
  MatmulShape One = Shape;
  One.N = 1;
  const KernelSpec D = chooseOwn(One, Cpu, nullptr, Wis, Threads);
  if (sameNumerics(S, D))
    return S;
  S.Activations = D.Activations;
  S.VectorBits = D.VectorBits;
  S.Accumulators = D.Accumulators;
  S.VNNI = D.VNNI;
  S.SuperBlockScales = D.SuperBlockScales;
  fitTileToRegisters(S);
  if (Why)
    *Why += absl::StrFormat("; numerics of the one-token kernel (%d-bit, %d accumulator set(s)%s) for batch "
                            "invariance",
                            S.VectorBits, S.Accumulators, S.VNNI ? ", vpdpbusd" : "");
  return S;
}

WeightLayout chooseLayout(int64_t M, int64_t K, WeightType W, const CpuFeatures &Cpu, const Wisdom *Wis) {
  if (Wis)
    if (const WisdomLayout *E = Wis->layout(W, M, K); E && layoutSupports(E->Choice, W, M, K) &&
                                                      (E->Choice != WeightLayout::Interleaved16 || Cpu.VNNI))
      return E->Choice;
  // The widest interleaving the host's kernels read: their table rows above
  // beat the row layout's, decode and prefill alike.
  if (Cpu.VNNI && layoutSupports(WeightLayout::Interleaved16, W, M, K))
    return WeightLayout::Interleaved16;
  if (layoutSupports(WeightLayout::Interleaved8, W, M, K))
    return WeightLayout::Interleaved8;
  return WeightLayout::Rows;
}

} // namespace lumen::codegen
