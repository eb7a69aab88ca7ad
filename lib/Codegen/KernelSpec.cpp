//===- KernelSpec.cpp - What one matmul kernel computes --------------------===//
#include "lumen/Codegen/KernelSpec.h"
#include "lumen/Codegen/KernelABI.h"

#include "absl/strings/match.h"
#include "absl/strings/str_format.h"

namespace lumen::codegen {

namespace {
/// Each weight type, its GGUF tensor type and its name in kernel names.
struct WeightTypeRow {
  WeightType Type;
  gguf::TensorType Tensor;
  const char *Name;
};
constexpr WeightTypeRow kWeightTypes[] = {
    {WeightType::Q8_0, gguf::TensorType::Q8_0, "q8_0"},       {WeightType::F16, gguf::TensorType::F16, "f16"},
    {WeightType::F32, gguf::TensorType::F32, "f32"},          {WeightType::BF16, gguf::TensorType::BF16, "bf16"},
    {WeightType::Q4_0, gguf::TensorType::Q4_0, "q4_0"},       {WeightType::Q4_1, gguf::TensorType::Q4_1, "q4_1"},
    {WeightType::Q5_0, gguf::TensorType::Q5_0, "q5_0"},       {WeightType::Q5_1, gguf::TensorType::Q5_1, "q5_1"},
    {WeightType::IQ4_NL, gguf::TensorType::IQ4_NL, "iq4_nl"}, {WeightType::Q2_K, gguf::TensorType::Q2_K, "q2_k"},
    {WeightType::Q3_K, gguf::TensorType::Q3_K, "q3_k"},       {WeightType::Q4_K, gguf::TensorType::Q4_K, "q4_k"},
    {WeightType::Q5_K, gguf::TensorType::Q5_K, "q5_k"},       {WeightType::Q6_K, gguf::TensorType::Q6_K, "q6_k"},
};

const WeightTypeRow &rowOf(WeightType W) {
  for (const WeightTypeRow &R : kWeightTypes)
    if (R.Type == W)
      return R;
  return kWeightTypes[0]; // Unreachable: every enumerator has a row.
}
} // namespace

const char *weightTypeName(WeightType W) { return rowOf(W).Name; }

gguf::TensorType tensorType(WeightType W) { return rowOf(W).Tensor; }

std::optional<WeightType> weightTypeFromName(std::string_view Name) {
  for (const WeightTypeRow &R : kWeightTypes)
    if (absl::EqualsIgnoreCase(absl::string_view(Name.data(), Name.size()), R.Name))
      return R.Type;
  return std::nullopt;
}

std::optional<WeightType> weightTypeOf(gguf::TensorType T) {
  for (const WeightTypeRow &R : kWeightTypes)
    if (R.Tensor == T)
      return R.Type;
  return std::nullopt;
}

const char *activationFormatName(ActivationFormat A) {
  return A == ActivationFormat::Q8 ? "q8" : "f32";
}

const char *prefetchPatternSuffix(PrefetchPattern P) {
  switch (P) {
  case PrefetchPattern::PageStart:
    return "pg";
  case PrefetchPattern::Spread:
    return "sp";
  case PrefetchPattern::LinesAndPage:
    return "lp";
  case PrefetchPattern::Lines:
    break;
  }
  return "";
}

std::string KernelSpec::functionName() const {
  // Interleaved layouts add "r" and their row group: "q8_0r16".
  const std::string Layout =
      Shape.Layout == WeightLayout::Rows ? "" : absl::StrFormat("r%d", layoutRowGroup(Shape.Layout));
  std::string Name = absl::StrFormat(
      "lumen_mm_%s%s_m%d_k%d_n%d_x%s_v%d_a%d_%s_r%d_t%d", weightTypeName(Shape.Weights), Layout,
      Shape.M, Shape.K, Shape.N,
      SuperBlockScales ? "q8k" : activationFormatName(Activations), VectorBits, Accumulators,
      VNNI ? "vnni" : "novnni",
      TileRows, TileTokens);
  if (PrefetchBytes)
    Name += absl::StrFormat("_pf%d", PrefetchBytes);
  Name += prefetchPatternSuffix(Prefetch);
  if (Paced)
    Name += "_paced";
  return Name;
}

std::string KernelSpec::describe() const {
  const char *Dot = Activations == ActivationFormat::F32 ? "f32 FMA on in-register dequantized weights"
                    : VNNI                               ? "int8 vpdpbusd"
                                                         : "int8 pmaddubsw/pmaddwd";
  return absl::StrFormat("%s weights (%s layout), M=%d K=%d N=%d: %s activations, %s, %d-bit "
                         "vectors, %d accumulator set(s), tile %d rows x %d tokens, %s%s",
                         weightTypeName(Shape.Weights), weightLayoutName(Shape.Layout), Shape.M,
                         Shape.K, Shape.N,
                         SuperBlockScales ? "q8 (a scale per 256)" : activationFormatName(Activations), Dot,
                         VectorBits,
                         Accumulators, TileRows, TileTokens,
                         !PrefetchBytes ? std::string("no prefetch")
                         : absl::StrFormat("prefetch %s%d bytes ahead",
                                           Prefetch == PrefetchPattern::PageStart ? "the page start "
                                           : Prefetch == PrefetchPattern::Spread  ? "the row tile, spread, "
                                                                                  : "",
                                           PrefetchBytes) +
                             (Prefetch == PrefetchPattern::LinesAndPage
                                  ? absl::StrFormat(" and the page start %d", kPageStartLead)
                                  : std::string()),
                         Paced ? ", paced" : "");
}

std::string quantizeFunctionName(int64_t K, int64_t ScaleBlock) {
  return ScaleBlock == 256 ? absl::StrFormat("lumen_quantize_q8s256_k%d", K) : absl::StrFormat("lumen_quantize_q8_k%d", K);
}
std::string quantizeBlocksFunctionName(int64_t K, int64_t ScaleBlock) {
  return quantizeFunctionName(K, ScaleBlock) + "_blocks";
}

absl::StatusOr<MatmulShape> parseShape(std::string_view Text, int64_t N, WeightType W) {
  auto Bad = [&](const char *Why) {
    return absl::InvalidArgumentError(
        absl::StrFormat("bad shape '%s': %s (expected KxM, e.g. 896x4864)", Text, Why));
  };
  size_t X = Text.find('x');
  if (X == std::string_view::npos)
    return Bad("no 'x'");
  int64_t Dims[2];
  std::string_view Parts[2] = {Text.substr(0, X), Text.substr(X + 1)};
  for (int I = 0; I < 2; ++I) {
    if (Parts[I].empty() || Parts[I].size() > 12)
      return Bad(Parts[I].empty() ? "empty number" : "number too long");
    int64_t V = 0;
    for (char C : Parts[I]) {
      if (C < '0' || C > '9')
        return Bad("not a decimal number");
      V = V * 10 + (C - '0');
    }
    Dims[I] = V;
  }
  MatmulShape S{Dims[1], Dims[0], N, W};
  if (absl::Status St = validateShape(S); !St.ok())
    return St;
  return S;
}

absl::Status validateShape(const MatmulShape &S) {
  if (S.M <= 0 || S.K <= 0 || S.N <= 0)
    return absl::InvalidArgumentError(
        absl::StrFormat("matmul shape M=%d K=%d N=%d: every size must be positive", S.M, S.K, S.N));
  if (const int64_t Block = weightBlockElements(S.Weights); S.K % Block)
    return absl::InvalidArgumentError(absl::StrFormat(
        "matmul shape K=%d: K must be a multiple of %d (%s)", S.K, Block,
        isFloatType(S.Weights) ? "the kernels read 32 floats a step"
                               : absl::StrFormat("one %s block", weightTypeName(S.Weights))));
  // Byte offsets are computed in 64 bits; keep every buffer far below that.
  constexpr int64_t Limit = int64_t(1) << 40;
  if (S.M > Limit / S.K || S.N > Limit / S.K || S.N > Limit / S.M)
    return absl::InvalidArgumentError(
        absl::StrFormat("matmul shape M=%d K=%d N=%d is too large", S.M, S.K, S.N));
  return absl::OkStatus();
}

absl::Status KernelSpec::validate(const CpuFeatures &Cpu) const {
  if (absl::Status S = validateShape(Shape); !S.ok())
    return S;
  auto Bad = [&](const std::string &Why) {
    return absl::InvalidArgumentError(absl::StrFormat("kernel %s: %s", functionName(), Why));
  };
  if (VectorBits != 256 && VectorBits != 512)
    return Bad("vector width must be 256 or 512 bits");
  if (Accumulators < 1 || Accumulators > 8)
    return Bad("accumulators must be 1 to 8");
  if (TileRows < 1 || TileRows > 32 || TileTokens < 1 || TileTokens > 8)
    return Bad("tile rows must be 1 to 32 and tile tokens 1 to 8");
  if (!layoutSupports(Shape.Layout, Shape.Weights, Shape.M, Shape.K))
    return Bad(absl::StrFormat("the %s layout needs Q8_0 or 32-element 4/5-bit weights and M a multiple of %d",
                               weightLayoutName(Shape.Layout), layoutRowGroup(Shape.Layout)));
  if (PrefetchBytes % 64 || PrefetchBytes > (1u << 20))
    return Bad("prefetch distance must be a multiple of 64 bytes, at most 1 MiB");
  if (Prefetch != PrefetchPattern::Lines && !PrefetchBytes)
    return Bad("page-start and spread prefetch need a prefetch distance");
  if (Prefetch == PrefetchPattern::Spread && (Shape.Layout == WeightLayout::Rows || Shape.N < 2))
    return Bad("spread prefetch is implemented for the interleaved kernels on several tokens (prefill)");
  if (Paced && (Shape.Layout == WeightLayout::Rows || TileTokens != 1))
    return Bad("pacing is implemented for the interleaved kernels on one token (decode)");
  if (SuperBlockScales && (Activations != ActivationFormat::Q8 || Shape.Layout == WeightLayout::Rows ||
                           !interleavesSubBlockRuns(Shape.Weights)))
    return Bad("a scale per 256 activations is implemented for the interleaved q4_k, q5_k and q6_k kernels");
  if (Shape.Layout != WeightLayout::Rows) {
    // A tile holds one or two whole row groups; each (group, token) cell
    // keeps one integer and Accumulators float vectors in registers (16 of
    // them on AVX2, 32 with AVX-512).
    const unsigned Group = layoutRowGroup(Shape.Layout);
    const char *Name = weightLayoutName(Shape.Layout);
    if (Activations != ActivationFormat::Q8)
      return Bad(absl::StrFormat("the %s layout is read by int8 kernels (Q8 activations) only", Name));
    if (VectorBits != Group * 32)
      return Bad(absl::StrFormat("the %s kernels use %d-bit vectors (%d rows x 4 bytes)", Name,
                                 Group * 32, Group));
    if (Shape.Layout == WeightLayout::Interleaved16 && !VNNI)
      return Bad("the interleaved16 layout stores unsigned quants for vpdpbusd: it needs VNNI");
    if (TileRows != Group && TileRows != 2 * Group)
      return Bad(absl::StrFormat("%s tiles hold %d or %d rows", Name, Group, 2 * Group));
    const unsigned Registers = Group == 16 ? 24 : 12;
    const unsigned Sums = interleavedSumsPerCell(Shape.Weights); // Integer sums a (group, token) keeps.
    if (TileRows / Group * TileTokens * (Accumulators + Sums) > Registers)
      return Bad(absl::StrFormat("row groups x tokens x (accumulators + %d) must be at most %d (registers)", Sums,
                                 Registers));
  } else {
    if (TileRows > 8)
      return Bad("tile rows must be 1 to 8");
    if (TileRows * TileTokens * Accumulators > 24)
      return Bad("rows x tokens x accumulators must be at most 24 (registers)");
  }
  if (isFloatType(Shape.Weights) && Activations != ActivationFormat::F32)
    return Bad("f16/bf16/f32 weights take f32 activations");
  if (!isFloatType(Shape.Weights) && Shape.Weights != WeightType::Q8_0 && Activations != ActivationFormat::Q8)
    return Bad(absl::StrFormat("%s weights take Q8 activations", weightTypeName(Shape.Weights)));
  if (Activations == ActivationFormat::F32 && VNNI)
    return Bad("VNNI needs Q8 activations");
  if (Activations == ActivationFormat::Q8 && !VNNI && VectorBits == 512)
    return Bad("int8 without VNNI is implemented for 256-bit vectors only");
  if (!Cpu.supportsKernels())
    return Bad(absl::StrFormat("target %s lacks AVX2/FMA/F16C", Cpu.CpuName));
  if (VectorBits == 512 && !Cpu.AVX512)
    return Bad(absl::StrFormat("512-bit vectors need AVX-512 (target is %s)", Cpu.isaName()));
  if (VNNI && !Cpu.VNNI)
    return Bad(absl::StrFormat("VNNI needs AVX512_VNNI (target is %s)", Cpu.isaName()));
  return absl::OkStatus();
}

} // namespace lumen::codegen
