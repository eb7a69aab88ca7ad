//===- lumen/Codegen/KernelSpec.h - What one matmul kernel computes -*- C++ -*-===//
//
// A KernelSpec fixes everything about one generated matmul: the shape, the
// data formats, and the code-shape choices (vector width, accumulators,
// VNNI, register tile). chooseSpec() picks the choices for a shape: what the
// tuner measured on this host (Wisdom.h, docs/TUNING.md) where it has an
// entry, else one table (KernelTable.cpp), measured on our machines
// (docs/BENCHMARK.md).
//
//===----------------------------------------------------------------------===//
#ifndef LUMEN_CODEGEN_KERNELSPEC_H
#define LUMEN_CODEGEN_KERNELSPEC_H

#include "lumen/Export.h"

#include "lumen/Codegen/CpuFeatures.h"
#include "lumen/GGUF/GGUFTypes.h"

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace lumen::codegen {

/// How the M x K weight matrix is stored (row r = output r, K elements):
/// the GGUF tensor types Lumen reads and generates kernels for. The
/// quantized ones are blocks of 32 elements (256 for the K-quants) in
/// ggml's layouts; the int8 kernels read them through lib/Codegen's
/// BlockFormat (one small class per type).
enum class WeightType { Q8_0, F16, F32, BF16, Q4_0, Q4_1, Q5_0, Q5_1, IQ4_NL, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K };

/// Whether W is a plain float type (F16, BF16, F32): its kernels take f32
/// activations; every other type is quantized and takes Q8 activations.
inline bool isFloatType(WeightType W) {
  return W == WeightType::F16 || W == WeightType::F32 || W == WeightType::BF16;
}

/// Elements per block of W: 256 for the K-quants, else 32 (the float types
/// are read 32 at a time), so K must be a multiple of it.
inline int64_t weightBlockElements(WeightType W) {
  return W == WeightType::Q2_K || W == WeightType::Q3_K || W == WeightType::Q4_K || W == WeightType::Q5_K ||
                 W == WeightType::Q6_K
             ? 256
             : 32;
}

/// Integer sums an interleaved kernel keeps per (row group, token): two
/// for Q4_K/Q5_K (a nibble piece holds two sub-blocks) and Q6_K (two
/// 16-element scales a block), else one.
inline unsigned interleavedSumsPerCell(WeightType W) {
  return W == WeightType::Q4_K || W == WeightType::Q5_K || W == WeightType::Q6_K ? 2 : 1;
}

/// How the N x K activations are passed.
///  - F32: plain floats, for the float weight types (and Q8_0 weights
///    dequantized in registers, f32 FMA: not chosen, kept for comparison).
///  - Q8: Q8_0-quantized by the activation quantizer kernel (KernelABI.h),
///    multiplied with integer dot products (vpdpbusd, or pmaddubsw on AVX2)
///    with every quantized weight type.
enum class ActivationFormat { F32, Q8 };

/// How a Q8_0 matrix's bytes are arranged (KernelABI.h has the details).
///  - Rows: as in the GGUF file, row after row of 34-byte blocks.
///  - Interleaved8: rows in groups of 8, each block of the group stored as
///    8 fp16 scales then the 8 rows' quants interleaved in 4-byte pieces, so
///    one 32-byte load feeds pmaddubsw/vpdpbusd with 8 rows at once and the
///    8 row sums land in the 8 lanes (no horizontal reductions). Same size.
///  - Interleaved16: the same at 512 bits for AVX512_VNNI: 16 rows in 4-byte
///    pieces (one 64-byte vector holds 4 quants of 16 rows), quants stored
///    +128 (unsigned, as vpdpbusd takes them: no sign flip in the loop).
///    Same size.
enum class WeightLayout { Rows, Interleaved8, Interleaved16 };

struct LUMEN_API MatmulShape {
  int64_t M = 0; // Output rows.
  int64_t K = 0; // Reduction length.
  int64_t N = 1; // Tokens: 1 = decode GEMV, > 1 = prefill GEMM.
  WeightType Weights = WeightType::Q8_0;
  WeightLayout Layout = WeightLayout::Rows;
};

/// The lines a kernel step prefetches (KernelSpec::PrefetchBytes ahead).
enum class PrefetchPattern {
  /// Every line the step reads, that far ahead.
  Lines,
  /// Only the first line of the 4 KB page that far ahead (one instruction a
  /// step; the repeats within a page find the line in flight): on Zen 5 the
  /// hardware prefetcher then streams each page from its start.
  PageStart,
  /// Prefill (interleaved layouts): the row tile that far ahead, its lines
  /// spread evenly over every step of every token tile, a few a step, so
  /// that its DRAM reads trickle in over the whole tile instead of coming as
  /// a burst in the first token tile (the same lines at each later pass).
  Spread,
  /// Every line that far ahead, and the first line of the page
  /// kPageStartLead bytes ahead: a small batch (a server's decode step)
  /// computes as long as it streams, and the line prefetches alone left
  /// the stream idle during the compute (8 tokens 0.5B Q8_0 on Zen 5:
  /// +25-30 %, docs/BENCHMARK.md 2026-12-06 "the page start beside the lines").
  LinesAndPage,
};

/// How far ahead PrefetchPattern::LinesAndPage touches the page start.
inline constexpr unsigned kPageStartLead = 8192;

struct LUMEN_API KernelSpec {
  MatmulShape Shape;
  ActivationFormat Activations = ActivationFormat::Q8;
  unsigned VectorBits = 512;  // 256 or 512.
  unsigned Accumulators = 1;  // Independent accumulator sets over K.
  bool VNNI = true;           // vpdpbusd (Q8 activations only).
  unsigned TileRows = 1;      // Register tile: rows x tokens sharing loads
  unsigned TileTokens = 1;    // (rows: whole row groups when interleaved).
  /// Software prefetch this many bytes ahead of the weight stream (0: none).
  unsigned PrefetchBytes = 0;
  /// Which lines a step prefetches, PrefetchBytes ahead of what it reads.
  PrefetchPattern Prefetch = PrefetchPattern::Lines;
  /// Decode pacing (interleaved layouts, one token): each block's integer
  /// sums start from the previous block's result ANDed with an opaque zero
  /// (the value is unchanged), so the core cannot run far ahead of the
  /// weight stream with loads of its own; the hardware prefetcher then
  /// streams from DRAM a few per cent faster (docs/BENCHMARK.md).
  bool Paced = false;
  /// The Q8 activations carry one scale per 256-element super-block (the
  /// quantizer's 256 form, KernelABI.h), as llama.cpp's Q8_K: the
  /// interleaved Q4_K, Q5_K and Q6_K kernels then add a super-block's scaled
  /// sub-block sums (and minima) as exact integers and convert once.
  bool SuperBlockScales = false;

  /// A stable symbol naming every field, e.g.
  /// "lumen_mm_q8_0_m4864_k896_n1_xq8_v512_a4_vnni_r1_t1", with "q8_0r8"
  /// / "q8_0r16" for the interleaved layouts, "_pf1024" when prefetching
  /// ("_pf8192pg" for page starts) and "_paced" when paced; activations
  /// "xq8k" with SuperBlockScales.
  std::string functionName() const;
  /// One line for people: shape and choices.
  std::string describe() const;
  /// Checks the spec is well formed and compilable for Cpu.
  absl::Status validate(const CpuFeatures &Cpu) const;

  bool operator==(const KernelSpec &O) const { return functionName() == O.functionName(); }
  template <typename H> friend H AbslHashValue(H State, const KernelSpec &S) {
    return H::combine(std::move(State), S.functionName());
  }
};

/// Parses "KxM" as the design card writes shapes (896x4864: 896 in, 4864
/// out) into a shape of W weights with N tokens, validated.
LUMEN_API absl::StatusOr<MatmulShape> parseShape(std::string_view Text, int64_t N = 1,
                                                 WeightType W = WeightType::Q8_0);

/// Checks a shape on its own (positive, K a multiple of the weight type's
/// block, sizes that fit).
LUMEN_API absl::Status validateShape(const MatmulShape &Shape);

class Wisdom;

/// The prefetch distance "the next row tile": the bytes of TileRows rows of
/// Shape's weights, in whole cache lines (at least one).
LUMEN_API unsigned nextTilePrefetchBytes(const MatmulShape &Shape, unsigned TileRows);

/// Whether A and B compute each output with the same floating-point
/// operations in the same order (activation format, vector width,
/// accumulator sets, dot instruction, activation scales): such kernels give
/// bit-identical outputs whatever their tiles, prefetch or pacing, and
/// whatever the token count (each (row, token) cell accumulates alone).
LUMEN_API bool sameNumerics(const KernelSpec &A, const KernelSpec &B);

/// The kernel choice for Shape on Cpu: Wis's entry for the shape and
/// Threads when it has a valid one (measured on this host by the tuner),
/// else the per-shape table's. Why says which, and why. Shape.Layout is
/// how the weights are stored. Batch-invariant: for N > 1 the numerics
/// (sameNumerics) are the one-token choice's, so every token's outputs are
/// bit-identical to what the N = 1 kernel gives for it.
LUMEN_API KernelSpec chooseSpec(const MatmulShape &Shape, const CpuFeatures &Cpu, std::string *Why = nullptr,
                                const Wisdom *Wis = nullptr, unsigned Threads = 0);

/// The layout a model loader should store an M x K matrix of type W in for
/// Cpu: Wis's measured choice if it has one, else the table's (the widest
/// interleaving the host's kernels read: Interleaved16 on AVX512_VNNI hosts
/// when M % 16 == 0, else Interleaved8 when M % 8 == 0, else Rows).
LUMEN_API WeightLayout chooseLayout(int64_t M, int64_t K, WeightType W, const CpuFeatures &Cpu,
                                    const Wisdom *Wis = nullptr);

LUMEN_API const char *weightTypeName(WeightType W);
/// The GGUF tensor type of W, and the weight type of a GGUF tensor type
/// (nullopt for the types Lumen does not read).
LUMEN_API gguf::TensorType tensorType(WeightType W);
LUMEN_API std::optional<WeightType> weightTypeOf(gguf::TensorType T);
/// The weight type named Name ("q4_k", "Q4_K", "f16", ...), if any.
LUMEN_API std::optional<WeightType> weightTypeFromName(std::string_view Name);
LUMEN_API const char *activationFormatName(ActivationFormat A);
LUMEN_API const char *weightLayoutName(WeightLayout L);
/// The letters a kernel's name appends to its prefetch distance: "" for
/// Lines, "pg" for PageStart, "sp" for Spread.
LUMEN_API const char *prefetchPatternSuffix(PrefetchPattern P);

} // namespace lumen::codegen

#endif
