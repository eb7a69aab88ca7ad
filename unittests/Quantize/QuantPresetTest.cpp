//===- QuantPresetTest.cpp - Each tensor's type, as llama-quantize chooses it ---===//
//
// data/llama-quantize-types.txt records the types llama-quantize (llama.cpp
// c392e50) gave every matrix of two F16 files for each preset: Qwen2.5-0.5B's
// shape (tied, rows of 896: the fallbacks) and a 28-layer untied one with
// Qwen2.5-1.5B's grouping (12 heads over 2) and rows of multiples of 256
// (scripts/quant_types_golden.sh regenerates it). The plan must choose the
// same ones.
//
//===----------------------------------------------------------------------===//
#include "lumen/Quantize/QuantPreset.h"

#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"

#include <fstream>
#include <map>
#include <string>
#include <vector>

using namespace lumen;
using namespace lumen::quant;
using gguf::TensorType;

namespace {

struct Shape {
  ModelFacts Facts;
  int64_t Dim, FFN, KVDim, Vocab;
};

const std::map<std::string, Shape> kShapes = {
    {"qwen2.5-0.5b", {{24, 14, 2, false}, 896, 4864, 128, 151936}},
    {"l28-untied", {{28, 12, 2, true}, 768, 1536, 128, 151936}},
};

/// The row length and rows of a Qwen2 tensor by name.
std::vector<int64_t> dimsOf(const Shape &S, const std::string &Name) {
  if (Name == "token_embd.weight" || Name == "output.weight")
    return {S.Dim, S.Vocab};
  if (Name.ends_with("attn_k.weight") || Name.ends_with("attn_v.weight"))
    return {S.Dim, S.KVDim};
  if (Name.ends_with("ffn_gate.weight") || Name.ends_with("ffn_up.weight"))
    return {S.Dim, S.FFN};
  if (Name.ends_with("ffn_down.weight"))
    return {S.FFN, S.Dim};
  return {S.Dim, S.Dim};
}

TEST(QuantPresetTest, TypesAsLlamaQuantizeChoseThem) {
  std::ifstream In(LUMEN_QUANTIZE_TEST_DATA "/llama-quantize-types.txt");
  ASSERT_TRUE(In) << "missing test data";
  std::string Line;
  int Checked = 0;
  std::map<std::string, int> PresetsSeen;
  while (std::getline(In, Line)) {
    if (Line.empty() || Line[0] == '#')
      continue;
    // "PRESET SHAPE TENSOR TYPE"
    std::vector<std::string> F = absl::StrSplit(Line, ' ', absl::SkipEmpty());
    ASSERT_EQ(F.size(), 4u) << Line;
    absl::StatusOr<Preset> P = presetFromName(F[0]);
    ASSERT_TRUE(P.ok()) << Line;
    const Shape &S = kShapes.at(F[1]);
    const TensorTypePlan Plan(*P, S.Facts);
    const std::vector<int64_t> Dims = dimsOf(S, F[2]);
    std::optional<TensorType> Want = gguf::tensorTypeFromName(F[3]);
    ASSERT_TRUE(Want) << Line;
    EXPECT_EQ(Plan.typeFor(F[2], Dims), *Want) << Line;
    ++Checked;
    ++PresetsSeen[F[0]];
  }
  // Every quantizing preset, both shapes, every matrix.
  EXPECT_EQ(PresetsSeen.size(), 14u);
  EXPECT_EQ(Checked, 14 * ((24 * 7 + 1) + (28 * 7 + 2)));
}

TEST(QuantPresetTest, ManyKVGroupsGiveQ2KAttnVFourBits) {
  // Qwen2.5-7B: 28 heads over 4 KV heads (llama.cpp's n_gqa() >= 4 rule).
  const ModelFacts Facts{28, 28, 4, true};
  const int64_t Dims[] = {3584, 512};
  EXPECT_EQ(TensorTypePlan(Preset::Q2_K, Facts).typeFor("blk.3.attn_v.weight", Dims), TensorType::Q4_K);
  EXPECT_EQ(TensorTypePlan(Preset::Q2_K, {28, 12, 4, true}).typeFor("blk.3.attn_v.weight", Dims),
            TensorType::Q3_K);
}

TEST(QuantPresetTest, WhatIsNotQuantized) {
  const TensorTypePlan Plan(Preset::Q4_K_M, {24, 14, 2, true});
  const int64_t Vec[] = {1024}, Mat[] = {1024, 1024};
  EXPECT_EQ(Plan.typeFor("blk.0.attn_norm.weight", Mat), std::nullopt);
  EXPECT_EQ(Plan.typeFor("blk.0.attn_q.bias", Mat), std::nullopt);
  EXPECT_EQ(Plan.typeFor("blk.0.attn_q.weight", Vec), std::nullopt);
  EXPECT_EQ(Plan.typeFor("output.weight", Mat), TensorType::Q6_K);
  const TensorTypePlan Leave(Preset::Q4_K_M, {24, 14, 2, true}, {.LeaveOutputTensor = true});
  EXPECT_EQ(Leave.typeFor("output.weight", Mat), std::nullopt);
  EXPECT_EQ(Leave.typeFor("token_embd.weight", Mat), TensorType::Q4_K);
  // Float presets convert every matrix and leave the rest.
  EXPECT_EQ(TensorTypePlan(Preset::BF16, {24, 14, 2, true}).typeFor("output.weight", Mat), TensorType::BF16);
  // Rows no block divides fall back, finally to F16.
  const int64_t Odd[] = {1000, 8};
  EXPECT_EQ(TensorTypePlan(Preset::Q4_0, {24, 14, 2, true}).typeFor("blk.0.attn_q.weight", Odd), TensorType::F16);
}

TEST(QuantPresetTest, FallbacksNameTheRulesType) {
  const TensorTypePlan Plan(Preset::Q4_K_M, {24, 14, 2, true});
  const int64_t Rows896[] = {896, 4864}, Rows1536[] = {1536, 8960}, Odd[] = {1000, 8};
  EXPECT_EQ(Plan.typeFor("blk.1.attn_q.weight", Rows896), TensorType::Q5_0);
  EXPECT_EQ(Plan.fellBackFrom("blk.1.attn_q.weight", Rows896), TensorType::Q4_K);
  EXPECT_EQ(Plan.fellBackFrom("blk.1.attn_q.weight", Rows1536), std::nullopt);
  EXPECT_EQ(Plan.fellBackFrom("blk.1.attn_q.weight", Odd), TensorType::Q4_K); // To F16.
  EXPECT_EQ(Plan.fellBackFrom("blk.0.attn_norm.weight", Rows896), std::nullopt);
  // The output's own rule (here the tied embedding's) takes Q8_0 for rows of 896: no fallback.
  const TensorTypePlan Tied(Preset::Q4_K_M, {24, 14, 2, false});
  EXPECT_EQ(Tied.typeFor("token_embd.weight", Rows896), TensorType::Q8_0);
  EXPECT_EQ(Tied.fellBackFrom("token_embd.weight", Rows896), std::nullopt);
}

// Only the K-quants fall back; llama-quantize refuses a tensor whose rows no
// block of a legacy type (or Q8_0) divides, and so does the plan.
TEST(QuantPresetTest, NoFallbackForTheLegacyTypes) {
  const int64_t Rows896[] = {896, 4864}, Odd[] = {1000, 8};
  EXPECT_TRUE(TensorTypePlan(Preset::Q4_K_M, {24, 14, 2, true}).check("blk.1.attn_q.weight", Odd).ok()); // F16.
  for (Preset P : {Preset::Q4_0, Preset::Q5_1, Preset::Q8_0}) {
    const TensorTypePlan Plan(P, {24, 14, 2, true});
    EXPECT_TRUE(Plan.check("blk.1.attn_q.weight", Rows896).ok());
    EXPECT_TRUE(Plan.check("blk.0.attn_norm.weight", Odd).ok()); // Not quantized.
    absl::Status S = Plan.check("blk.1.attn_q.weight", Odd);
    EXPECT_TRUE(absl::IsInvalidArgument(S)) << S;
    EXPECT_NE(S.message().find("rows of 1000 elements do not divide into"), std::string::npos) << S;
    EXPECT_NE(S.message().find("Unsupported tensor size"), std::string::npos) << S;
  }
  // A K preset's output takes Q8_0 where super-blocks do not divide; nothing after that.
  absl::Status Output = TensorTypePlan(Preset::Q4_K_M, {24, 14, 2, false}).check("token_embd.weight", Odd);
  EXPECT_NE(Output.message().find("tensor 'token_embd.weight' (Q8_0 by Q4_K_M's rule for this tensor): rows of 1000"),
            std::string::npos)
      << Output;
}

TEST(QuantPresetTest, Names) {
  EXPECT_EQ(*presetFromName("q4_k_m"), Preset::Q4_K_M);
  EXPECT_EQ(*presetFromName("Q8_0"), Preset::Q8_0);
  // llama-quantize's aliases and file type numbers.
  EXPECT_EQ(*presetFromName("q4_k"), Preset::Q4_K_M);
  EXPECT_EQ(*presetFromName("Q3_K"), Preset::Q3_K_M);
  EXPECT_EQ(*presetFromName("15"), Preset::Q4_K_M);
  EXPECT_EQ(*presetFromName("2"), Preset::Q4_0);
  EXPECT_FALSE(presetFromName("99").ok());
  absl::StatusOr<Preset> Bad = presetFromName("Q4_K_X");
  ASSERT_FALSE(Bad.ok());
  EXPECT_NE(Bad.status().message().find("Q4_K_X"), std::string::npos);
  EXPECT_NE(Bad.status().message().find("Q3_K_L"), std::string::npos);
  EXPECT_EQ(presets().size(), 17u);
  for (const PresetInfo &I : presets())
    EXPECT_EQ(&presetInfo(I.Id), &I);
}

} // namespace
