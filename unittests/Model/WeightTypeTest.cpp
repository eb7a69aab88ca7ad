//===- WeightTypeTest.cpp - The JIT path on F16, BF16 and F32 matrices -----===//
//
// Models whose every matrix (embedding and lm_head included) is F16, BF16
// or F32: their kernels read f32 activations where Q8_0's read Q8 ones, so
// the JIT session must hand each kernel the format its spec takes. Checked
// against the scalar reference on two threads, in prefill batches (the last
// one with padding rows) and decode steps, tied and untied.
//
//===----------------------------------------------------------------------===//
#include "lumen/Model/TransformerModel.h"
#include "lumen/Model/Session.h"
#include "lumen/Model/SyntheticModel.h"

#include "FidelityUtil.h"

#include "absl/strings/str_format.h"
#include "gtest/gtest.h"

#include <algorithm>
#include <cmath>
#include <string>

using namespace lumen;
using namespace lumen::model;
using namespace lumen::test;

namespace {

class WeightTypeTest : public ::testing::TestWithParam<gguf::TensorType> {};

TEST_P(WeightTypeTest, JitMatchesReference) {
  const gguf::TensorType Type = GetParam();
  const std::string Name(gguf::tensorTypeTraits(Type).Name);
  for (bool Tied : {false, true}) {
    SCOPED_TRACE(testing::Message() << Name << (Tied ? ", tied" : ", untied"));
    SynthOptions O = smallSynthetic(Type, Tied, 41);
    const std::string Path =
        absl::StrFormat("%s/synth-%s-%s.gguf", LUMEN_TEST_TMPDIR, Name, Tied ? "tied" : "untied");
    ASSERT_TRUE(writeSyntheticModel(O, Path).ok());
    auto M = TransformerModel::load(Path);
    ASSERT_TRUE(M.ok()) << M.status();
    for (const Matrix *W : {&(*M)->Embedding, &(*M)->Output, &(*M)->Layers[1].Down})
      EXPECT_EQ(W->Type, codegen::weightTypeOf(Type));
    EXPECT_EQ((*M)->config().TiedOutput, Tied);

    SessionOptions SO;
    SO.Threads = 2;
    SO.PrefillBatch = 16;
    auto Ref = createReferenceSession(**M);
    auto Jit = createJitSession(**M, kernelCache(), SO);
    ASSERT_TRUE(Ref.ok() && Jit.ok());
    const int64_t V = (*M)->config().Vocab;
    std::vector<int32_t> Seq;
    for (int I = 0; I < 41; ++I)
      Seq.push_back((I * 7919 + 13) % 256);
    // f32 activations on both sides: only the fp16 KV cache, the fp16
    // rounding in attention and summation order differ (measured: rms
    // <= 0.0025, largest difference <= 0.02). Activations quantized to int8,
    // as for Q8_0 matrices, give rms ~0.05 and differences ~0.5 here; a
    // kernel fed the wrong format, NaN.
    double WorstRms = 0, WorstMax = 0;
    auto Compare = [&](std::span<const int32_t> Ids, const char *What) {
      std::vector<double> Max;
      const std::vector<double> Rms = logitRmsByPosition(**Ref, **Jit, Ids, V, &Max);
      ASSERT_EQ(Rms.size(), Ids.size());
      for (size_t P = 0; P < Rms.size(); ++P) {
        ASSERT_TRUE(std::isfinite(Rms[P])) << What << " position " << P << ": non-finite JIT logits";
        EXPECT_LE(Rms[P], 0.01) << What << " position " << P;
        EXPECT_LE(Max[P], 0.1) << What << " position " << P;
        WorstRms = std::max(WorstRms, Rms[P]);
        WorstMax = std::max(WorstMax, Max[P]);
      }
    };
    // Batches of 16, 16 and 5 (a kernel for 8 tokens, 3 padding rows).
    Compare(std::span<const int32_t>(Seq).first(37), "prefill");
    for (int I = 37; I < 41; ++I)
      Compare(std::span<const int32_t>(&Seq[I], 1), "decode");
    const std::string Key = absl::StrFormat("%s_%s", Name, Tied ? "tied" : "untied");
    RecordProperty("worst_rms_" + Key, std::to_string(WorstRms));
    RecordProperty("worst_max_" + Key, std::to_string(WorstMax));
  }
}

INSTANTIATE_TEST_SUITE_P(FloatMatrices, WeightTypeTest,
                         ::testing::Values(gguf::TensorType::F16, gguf::TensorType::BF16,
                                           gguf::TensorType::F32),
                         [](const ::testing::TestParamInfo<gguf::TensorType> &Info) {
                           return std::string(gguf::tensorTypeTraits(Info.param).Name);
                         });

} // namespace
