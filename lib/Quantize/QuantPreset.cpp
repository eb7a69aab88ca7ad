//===- QuantPreset.cpp - llama.cpp's quantization presets ------------------===//
#include "lumen/Quantize/QuantPreset.h"

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

#include <algorithm>

namespace lumen::quant {

using gguf::TensorType;

namespace {
constexpr PresetInfo kPresets[] = {
    {Preset::Q4_0, "Q4_0", TensorType::Q4_0, 2, "4.5 bits per weight, one scale per 32"},
    {Preset::Q4_1, "Q4_1", TensorType::Q4_1, 3, "5.0 bits per weight, scale and offset per 32"},
    {Preset::Q5_0, "Q5_0", TensorType::Q5_0, 8, "5.5 bits per weight, one scale per 32"},
    {Preset::Q5_1, "Q5_1", TensorType::Q5_1, 9, "6.0 bits per weight, scale and offset per 32"},
    {Preset::Q8_0, "Q8_0", TensorType::Q8_0, 7, "8.5 bits per weight"},
    {Preset::Q2_K, "Q2_K", TensorType::Q2_K, 10, "Q2_K; Q3_K attn_output and ffn_down, Q3_K/Q4_K attn_v"},
    {Preset::Q3_K_S, "Q3_K_S", TensorType::Q3_K, 11, "Q3_K throughout"},
    {Preset::Q3_K_M, "Q3_K_M", TensorType::Q3_K, 12, "Q3_K; Q4_K/Q5_K attn_v, attn_output and ffn_down"},
    {Preset::Q3_K_L, "Q3_K_L", TensorType::Q3_K, 13, "Q3_K; Q5_K attn_v, attn_output and ffn_down"},
    {Preset::Q4_K_S, "Q4_K_S", TensorType::Q4_K, 14, "Q4_K; Q5_K in the first layers' attn_v and ffn_down"},
    {Preset::Q4_K_M, "Q4_K_M", TensorType::Q4_K, 15, "Q4_K; Q6_K in half the layers' attn_v and ffn_down"},
    {Preset::Q5_K_S, "Q5_K_S", TensorType::Q5_K, 16, "Q5_K throughout"},
    {Preset::Q5_K_M, "Q5_K_M", TensorType::Q5_K, 17, "Q5_K; Q6_K in half the layers' attn_v and ffn_down"},
    {Preset::Q6_K, "Q6_K", TensorType::Q6_K, 18, "6.6 bits per weight"},
    {Preset::F16, "F16", TensorType::F16, 1, "IEEE half"},
    {Preset::BF16, "BF16", TensorType::BF16, 32, "bfloat16"},
    {Preset::F32, "F32", TensorType::F32, 0, "single precision"},
};

bool contains(std::string_view Name, std::string_view Part) { return Name.find(Part) != std::string_view::npos; }

/// N in "blk.N.", or 0.
int layerOf(std::string_view Name) {
  int Layer = 0;
  if (Name.starts_with("blk.")) {
    std::string_view Rest = Name.substr(4);
    (void)absl::SimpleAtoi(std::string(Rest.substr(0, Rest.find('.'))), &Layer);
  }
  return Layer;
}

/// llama.cpp's choice of layers that get more bits: the first and last
/// eighth, and every third one between.
bool useMoreBits(int Layer, int Layers) {
  return Layer < Layers / 8 || Layer >= 7 * Layers / 8 || (Layer - Layers / 8) % 3 == 2;
}

/// Whether Type's blocks divide a row of RowLength.
bool blocksDivide(TensorType Type, int64_t RowLength) {
  return RowLength % gguf::tensorTypeTraits(Type).BlockSize == 0;
}

/// The type llama.cpp falls back to when Type's blocks do not divide a row:
/// for a K-quant a 32-element type, or F16 where those do not divide
/// either; none for the other types (llama-quantize stops).
std::optional<TensorType> fallback(TensorType Type, int64_t RowLength) {
  TensorType F;
  switch (Type) {
  case TensorType::Q2_K:
  case TensorType::Q3_K: F = TensorType::IQ4_NL; break;
  case TensorType::Q4_K: F = TensorType::Q5_0; break;
  case TensorType::Q5_K: F = TensorType::Q5_1; break;
  case TensorType::Q6_K: F = TensorType::Q8_0; break;
  default: return std::nullopt;
  }
  return blocksDivide(F, RowLength) ? F : TensorType::F16;
}
} // namespace

std::span<const PresetInfo> presets() { return kPresets; }

const PresetInfo &presetInfo(Preset P) {
  for (const PresetInfo &I : kPresets)
    if (I.Id == P)
      return I;
  return kPresets[0];
}

absl::StatusOr<Preset> presetFromName(std::string_view Name) {
  std::string Upper = absl::AsciiStrToUpper(std::string(Name));
  // llama-quantize's aliases: the K-quant without a size is the _M one.
  if (Upper == "Q3_K" || Upper == "Q4_K" || Upper == "Q5_K")
    Upper += "_M";
  uint32_t FileType = 0;
  const bool Numeric = absl::SimpleAtoi(Upper, &FileType); // llama_ftype numbers, as llama-quantize takes them.
  std::vector<std::string> Names;
  for (const PresetInfo &I : kPresets) {
    if (I.Name == Upper || (Numeric && I.FileType == FileType))
      return I.Id;
    Names.emplace_back(I.Name);
  }
  return absl::InvalidArgumentError(
      absl::StrFormat("unknown quantization type '%s' (expected one of %s, or llama.cpp's file type number)",
                      Name, absl::StrJoin(Names, " ")));
}

absl::StatusOr<ModelFacts> modelFacts(const gguf::GGUFFile &File) {
  absl::StatusOr<std::string_view> Arch = File.getString("general.architecture");
  if (!Arch.ok())
    return Arch.status();
  ModelFacts F;
  const std::string A(*Arch);
  for (auto [Key, Out] : {std::pair{A + ".block_count", &F.Layers}, {A + ".attention.head_count", &F.Heads},
                          {A + ".attention.head_count_kv", &F.KVHeads}}) {
    absl::StatusOr<uint32_t> V = File.getU32(Key);
    if (!V.ok() && Out == &F.KVHeads) // Optional in GGUF: no grouping.
      V = F.Heads;
    if (!V.ok())
      return V.status();
    *Out = *V;
  }
  F.HasOutput = File.findTensor("output.weight") != nullptr;
  return F;
}

TensorTypePlan::TensorTypePlan(Preset P, ModelFacts Facts, Options O) : Info(presetInfo(P)), Facts(Facts), Opts(O) {}

std::optional<TensorType> TensorTypePlan::ruleType(std::string_view Name, std::span<const int64_t> Dims) const {
  // As llama.cpp: weights of two or more dimensions, not the norms.
  if (!Name.ends_with("weight") || Dims.size() < 2 || contains(Name, "_norm.weight"))
    return std::nullopt;
  if (Opts.LeaveOutputTensor && Name == "output.weight")
    return std::nullopt;
  if (!gguf::isBlockQuantized(Info.Default))
    return Info.Default;
  return chooseForRole(Name, Dims[0]);
}

std::optional<TensorType> TensorTypePlan::typeFor(std::string_view Name, std::span<const int64_t> Dims) const {
  std::optional<TensorType> T = ruleType(Name, Dims);
  if (T && !blocksDivide(*T, Dims[0]))
    T = fallback(*T, Dims[0]).value_or(TensorType::F16);
  return T;
}

absl::Status TensorTypePlan::check(std::string_view Name, std::span<const int64_t> Dims) const {
  std::optional<TensorType> T = ruleType(Name, Dims);
  if (!T || blocksDivide(*T, Dims[0]) || fallback(*T, Dims[0]))
    return absl::OkStatus();
  const auto &Traits = gguf::tensorTypeTraits(*T);
  return absl::InvalidArgumentError(absl::StrFormat(
      "tensor '%s'%s: rows of %d elements do not divide into %s's blocks of %d, and llama-quantize has no fallback "
      "for %s (it stops: 'Unsupported tensor size encountered')",
      Name,
      *T == Info.Default ? ""
                         : absl::StrFormat(" (%s by %s's rule for this tensor)", Traits.Name, Info.Name),
      Dims[0], Traits.Name, Traits.BlockSize, Traits.Name));
}

std::optional<TensorType> TensorTypePlan::fellBackFrom(std::string_view Name, std::span<const int64_t> Dims) const {
  std::optional<TensorType> T = ruleType(Name, Dims);
  return T && !blocksDivide(*T, Dims[0]) ? T : std::nullopt;
}

TensorType TensorTypePlan::chooseForRole(std::string_view Name, int64_t RowLength) const {
  const Preset P = Info.Id;
  const int Layer = layerOf(Name), Layers = static_cast<int>(Facts.Layers);
  const uint32_t Gqa = Facts.KVHeads ? Facts.Heads / Facts.KVHeads : 1;
  // The output (or the embedding standing in for it): Q6_K unless the
  // preset is Q8_0, Q8_0 where super-blocks do not divide the rows.
  if (Name == "output.weight" || (!Facts.HasOutput && Name == "token_embd.weight")) {
    if (!blocksDivide(Info.Default, RowLength))
      return TensorType::Q8_0;
    return Info.Default == TensorType::Q8_0 ? TensorType::Q8_0 : TensorType::Q6_K;
  }
  if (contains(Name, "attn_v.weight")) {
    switch (P) {
    case Preset::Q2_K: return Gqa >= 4 ? TensorType::Q4_K : TensorType::Q3_K;
    case Preset::Q3_K_M: return Layer < 2 ? TensorType::Q5_K : TensorType::Q4_K;
    case Preset::Q3_K_L: return TensorType::Q5_K;
    case Preset::Q4_K_M:
    case Preset::Q5_K_M: return useMoreBits(Layer, Layers) ? TensorType::Q6_K : Info.Default;
    case Preset::Q4_K_S: return Layer < 4 ? TensorType::Q5_K : Info.Default;
    default: return Info.Default;
    }
  }
  if (contains(Name, "ffn_down")) {
    switch (P) {
    case Preset::Q2_K: return TensorType::Q3_K;
    case Preset::Q3_K_M: return Layer < Layers / 16 ? TensorType::Q5_K : TensorType::Q4_K;
    case Preset::Q3_K_L: return TensorType::Q5_K;
    case Preset::Q4_K_M:
    case Preset::Q5_K_M: return useMoreBits(Layer, Layers) ? TensorType::Q6_K : Info.Default;
    case Preset::Q4_K_S: return Layer < Layers / 8 ? TensorType::Q5_K : Info.Default;
    default: return Info.Default;
    }
  }
  if (contains(Name, "attn_output.weight")) {
    switch (P) {
    case Preset::Q2_K: return TensorType::Q3_K;
    case Preset::Q3_K_M: return TensorType::Q4_K;
    case Preset::Q3_K_L: return TensorType::Q5_K;
    default: return Info.Default;
    }
  }
  if (contains(Name, "attn_qkv.weight")) {
    switch (P) {
    case Preset::Q3_K_M:
    case Preset::Q3_K_L: return TensorType::Q4_K;
    case Preset::Q4_K_M: return TensorType::Q5_K;
    case Preset::Q5_K_M: return TensorType::Q6_K;
    default: return Info.Default;
    }
  }
  return Info.Default;
}

} // namespace lumen::quant
