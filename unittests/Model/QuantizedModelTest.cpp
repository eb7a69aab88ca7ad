//===- QuantizedModelTest.cpp - Models in llama.cpp's block formats --------===//
//
// A model whose every matrix (embedding and lm_head included) is in one of
// the block formats of llama.cpp's presets loads; the reference session
// computes on it exactly what it computes on the same weights in F32, and
// the JIT session's generated kernels agree with the reference, on the
// host's ISA and on AVX2's pmaddubsw kernels, in prefill and decode. A model
// mixing types across layers, as Q4_K_M does, runs each layer with its own
// kernels. (The formats themselves are checked bit for bit against
// llama.cpp's decoder in unittests/GGUF/QuantizeTest.cpp.)
//
//===----------------------------------------------------------------------===//
#include "lumen/GGUF/GGUFFile.h"
#include "lumen/GGUF/GGUFWriter.h"
#include "lumen/GGUF/Quantize.h"
#include "lumen/Model/TransformerModel.h"
#include "lumen/Model/Session.h"
#include "lumen/Model/SyntheticModel.h"

#include "FidelityUtil.h"
#include "lumen/Codegen/KernelABI.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_format.h"
#include "gtest/gtest.h"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <deque>
#include <functional>
#include <random>

using namespace lumen;
using namespace lumen::model;
using namespace lumen::test;

namespace {

/// Where each format keeps its fp16 factors (ggml-common.h).
std::vector<int> halfFields(gguf::TensorType T) {
  switch (T) {
  case gguf::TensorType::Q4_1: case gguf::TensorType::Q5_1: case gguf::TensorType::Q4_K: case gguf::TensorType::Q5_K:
    return {0, 2};
  case gguf::TensorType::Q2_K: return {80, 82};
  case gguf::TensorType::Q3_K: return {108};
  case gguf::TensorType::Q6_K: return {208};
  default: return {0};
  }
}

/// Random blocks of type T for a tensor like Like: seeded bytes, with every
/// fp16 factor set so that the decoded values have Like's rms.
std::vector<uint8_t> randomBlocks(gguf::TensorType T, const gguf::TensorInfo &Like, uint64_t Seed) {
  const gguf::TensorTypeTraits Tr = gguf::tensorTypeTraits(T);
  const int64_t Elements = Like.Dims[0] * Like.Dims[1], Blocks = Elements / Tr.BlockSize;
  std::vector<uint8_t> B(Blocks * Tr.TypeSize);
  std::mt19937_64 Rng(Seed);
  for (uint8_t &X : B)
    X = static_cast<uint8_t>(Rng());
  auto SetFactors = [&](float F) {
    const uint16_t H = gguf::floatToHalf(F);
    for (int64_t I = 0; I < Blocks; ++I)
      for (int At : halfFields(T))
        std::memcpy(&B[I * Tr.TypeSize + At], &H, 2);
  };
  auto Rms = [&](const void *Data, gguf::TensorType Type) {
    std::vector<float> X(Elements);
    EXPECT_TRUE(gguf::dequantizeRow(Type, Data, X.data(), Elements));
    double S = 0;
    for (float V : X)
      S += double(V) * V;
    return std::sqrt(S / Elements);
  };
  SetFactors(1.0f);
  SetFactors(static_cast<float>(Rms(Like.Data, Like.Type) / Rms(B.data(), T)));
  return B;
}

/// The model of smallSynthetic(F32) with each matrix's type from TypeOf
/// (by tensor name): random blocks of that type, written to Path; and, if
/// DecodedPath is given, the same blocks decoded to F32 there.
void writeQuantized(const std::function<gguf::TensorType(const std::string &)> &TypeOf,
                    const std::string &Path, const std::string &DecodedPath = "") {
  SynthOptions O = smallSynthetic(gguf::TensorType::F32, /*Tied=*/false, 43);
  const std::string Base = Path + ".base.gguf";
  ASSERT_TRUE(writeSyntheticModel(O, Base).ok());
  auto F = gguf::GGUFFile::open(Base);
  ASSERT_TRUE(F.ok()) << F.status();
  gguf::GGUFWriter Quant, Decoded;
  for (const gguf::KeyValue &KV : (*F)->metadata()) {
    Quant.setValue(KV.Key, KV.Val);
    Decoded.setValue(KV.Key, KV.Val);
  }
  std::deque<std::vector<uint8_t>> Keep; // Outlive the writers; a deque keeps references valid.
  uint64_t Seed = 1;
  for (const gguf::TensorInfo &T : (*F)->tensors()) {
    std::vector<int64_t> Dims(T.Dims.begin(), T.Dims.begin() + T.NumDims);
    std::span<const uint8_t> Bytes(T.Data, T.NumBytes);
    if (T.NumDims != 2) {
      ASSERT_TRUE(Quant.addTensor(T.Name, T.Type, Dims, Bytes).ok());
      ASSERT_TRUE(Decoded.addTensor(T.Name, T.Type, Dims, Bytes).ok());
      continue;
    }
    const gguf::TensorType Type = TypeOf(std::string(T.Name));
    const std::vector<uint8_t> &Q = Keep.emplace_back(randomBlocks(Type, T, Seed++));
    std::vector<uint8_t> &D = Keep.emplace_back(Dims[0] * Dims[1] * sizeof(float));
    ASSERT_TRUE(gguf::dequantizeRow(Type, Q.data(), reinterpret_cast<float *>(D.data()), Dims[0] * Dims[1]));
    ASSERT_TRUE(Quant.addTensor(T.Name, Type, Dims, Q).ok());
    ASSERT_TRUE(Decoded.addTensor(T.Name, gguf::TensorType::F32, Dims, D).ok());
  }
  ASSERT_TRUE(Quant.write(Path).ok());
  std::remove(Base.c_str());
  if (!DecodedPath.empty()) {
    ASSERT_TRUE(Decoded.write(DecodedPath).ok());
  }
}

/// A JIT for Isa, or null (with the reason) where the host cannot run it.
std::unique_ptr<runtime::Jit> jitFor(const char *Isa) {
  auto Cpu = codegen::CpuFeatures::forIsa(Isa);
  if (!Cpu.ok() || !Cpu->runsOn(codegen::CpuFeatures::host()).ok())
    return nullptr;
  runtime::JitOptions O;
  O.Cpu = *Cpu;
  auto J = runtime::Jit::create(O);
  return J.ok() ? std::move(*J) : nullptr;
}

/// The JIT session on M against the reference, on two threads: a prefill of
/// 37 tokens in batches of 16 (the last with padding rows) and 4 decode
/// steps. Int8 activations against the reference's f32 ones: rms ~0.02-0.1
/// on these models (measured; the limit leaves room); a kernel that reads a
/// block wrongly is off by far more.
void expectJitMatchesReference(const TransformerModel &M, runtime::KernelCache &Cache, const std::string &What) {
  SessionOptions SO;
  SO.Threads = 2;
  SO.PrefillBatch = 16;
  auto Ref = createReferenceSession(M);
  auto Jit = createJitSession(M, Cache, SO);
  ASSERT_TRUE(Ref.ok()) << Ref.status();
  ASSERT_TRUE(Jit.ok()) << Jit.status();
  std::vector<int32_t> Seq;
  for (int I = 0; I < 41; ++I)
    Seq.push_back((I * 7919 + 13) % 1024);
  double WorstRms = 0, WorstMax = 0;
  auto Compare = [&](std::span<const int32_t> Ids, const char *Phase) {
    std::vector<double> Max;
    const std::vector<double> Rms = logitRmsByPosition(**Ref, **Jit, Ids, M.config().Vocab, &Max);
    ASSERT_EQ(Rms.size(), Ids.size());
    for (size_t P = 0; P < Rms.size(); ++P) {
      ASSERT_TRUE(std::isfinite(Rms[P])) << What << " " << Phase << " position " << P;
      EXPECT_LE(Rms[P], 0.25) << What << " " << Phase << " position " << P;
      WorstRms = std::max(WorstRms, Rms[P]);
      WorstMax = std::max(WorstMax, Max[P]);
    }
  };
  Compare(std::span<const int32_t>(Seq).first(37), "prefill");
  for (int I = 37; I < 41; ++I)
    Compare(std::span<const int32_t>(&Seq[I], 1), "decode");
  ::testing::Test::RecordProperty("worst_rms_" + What, std::to_string(WorstRms));
  ::testing::Test::RecordProperty("worst_max_" + What, std::to_string(WorstMax));
}

class QuantizedModelTest : public ::testing::TestWithParam<gguf::TensorType> {};

TEST_P(QuantizedModelTest, ReferenceComputesWhatF32Does) {
  const gguf::TensorType Type = GetParam();
  const std::string Name(gguf::tensorTypeTraits(Type).Name);
  // The same model twice: its matrices as random Type blocks, and those
  // blocks decoded to F32.
  const std::string QPath = absl::StrFormat("%s/quant-%s.gguf", LUMEN_TEST_TMPDIR, Name),
                    DPath = absl::StrFormat("%s/quant-%s-decoded.gguf", LUMEN_TEST_TMPDIR, Name);
  writeQuantized([&](const std::string &) { return Type; }, QPath, DPath);
  auto MQ = TransformerModel::load(QPath);
  auto MD = TransformerModel::load(DPath);
  ASSERT_TRUE(MQ.ok()) << MQ.status();
  ASSERT_TRUE(MD.ok()) << MD.status();
  EXPECT_EQ(codegen::weightTypeName((*MQ)->Layers[1].Down.Type), absl::AsciiStrToLower(Name));

  // The reference session on the blocks gives the bits it gives on their
  // decoded values (the embedding row lookup included).
  std::vector<int32_t> Seq;
  for (int I = 0; I < 24; ++I)
    Seq.push_back((I * 7919 + 13) % 1024);
  auto RefQ = createReferenceSession(**MQ);
  auto RefD = createReferenceSession(**MD);
  ASSERT_TRUE(RefQ.ok() && RefD.ok());
  std::vector<float> LQ, LD;
  ASSERT_TRUE((*RefQ)->eval(Seq, true, LQ).ok());
  ASSERT_TRUE((*RefD)->eval(Seq, true, LD).ok());
  ASSERT_EQ(LQ.size(), LD.size());
  EXPECT_EQ(std::memcmp(LQ.data(), LD.data(), LQ.size() * sizeof(float)), 0);
  for (float V : LQ)
    ASSERT_TRUE(std::isfinite(V));
}

TEST_P(QuantizedModelTest, JitMatchesReference) {
  const gguf::TensorType Type = GetParam();
  const std::string Name(gguf::tensorTypeTraits(Type).Name);
  const std::string Path = absl::StrFormat("%s/quant-jit-%s.gguf", LUMEN_TEST_TMPDIR, Name);
  writeQuantized([&](const std::string &) { return Type; }, Path);
  auto M = TransformerModel::load(Path);
  ASSERT_TRUE(M.ok()) << M.status();
  // The types the interleaved layouts take are repacked at load (README),
  // the others stay in the file's rows.
  const codegen::WeightType W = *codegen::weightTypeOf(Type);
  const bool Repacked = codegen::interleaves(W);
  for (const Matrix *Mx : {&(*M)->Layers[0].Q, &(*M)->Layers[1].Down, &(*M)->Output})
    EXPECT_EQ(Mx->Layout != codegen::WeightLayout::Rows, Repacked) << codegen::weightLayoutName(Mx->Layout);
  expectJitMatchesReference(**M, kernelCache(), Name + "_host");
  // AVX2's kernels (pmaddubsw, no zero-point start on VNNI) on the same
  // model; every x86-64 host that runs Lumen has them.
  // (The weights laid out for that ISA: interleaved by 8 rows there.)
  std::unique_ptr<runtime::Jit> Avx2 = jitFor("avx2");
  ASSERT_NE(Avx2, nullptr);
  runtime::KernelCache Cache(*Avx2);
  LoadOptions LO;
  LO.Cpu = Avx2->cpu();
  auto M2 = TransformerModel::load(Path, LO);
  ASSERT_TRUE(M2.ok()) << M2.status();
  EXPECT_EQ((*M2)->Layers[0].Q.Layout, Repacked ? codegen::WeightLayout::Interleaved8 : codegen::WeightLayout::Rows);
  expectJitMatchesReference(**M2, Cache, Name + "_avx2");
  // And in the file's row layout.
  LO.Repack = false;
  auto Rows = TransformerModel::load(Path, LO);
  ASSERT_TRUE(Rows.ok()) << Rows.status();
  expectJitMatchesReference(**Rows, Cache, Name + "_avx2_rows");
}

TEST(QuantizedModelMixTest, TypesChangeAcrossLayers) {
  // As llama.cpp's Q4_K_M: Q6_K for attn_v and ffn_down in some layers (here
  // layer 0) and for lm_head; Q4_K elsewhere; a fallback type and a Q8_0
  // matrix mixed in. (Random K-quant blocks with random minima put a large
  // common offset on each sub-block's weights; a model made only of them is
  // so ill-conditioned that int8 activations can flip a sharp attention in
  // layer 1. Here the embedding and most of layer 1 are Q4_0: its kernels
  // are checked on their own in JitMatchesReference.)
  const std::string Path = absl::StrFormat("%s/quant-mixed.gguf", LUMEN_TEST_TMPDIR);
  writeQuantized(
      [](const std::string &N) {
        if (N == "output.weight" || N == "blk.0.attn_v.weight" || N == "blk.0.ffn_down.weight")
          return gguf::TensorType::Q6_K;
        if (N == "blk.1.attn_q.weight")
          return gguf::TensorType::Q5_0;
        if (N == "blk.0.attn_k.weight")
          return gguf::TensorType::Q8_0;
        if (N.starts_with("blk.0.") || N == "blk.1.ffn_down.weight")
          return gguf::TensorType::Q4_K;
        return gguf::TensorType::Q4_0;
      },
      Path);
  auto M = TransformerModel::load(Path);
  ASSERT_TRUE(M.ok()) << M.status();
  EXPECT_EQ((*M)->Layers[0].V.Type, codegen::WeightType::Q6_K);
  EXPECT_EQ((*M)->Layers[1].V.Type, codegen::WeightType::Q4_0);
  EXPECT_EQ((*M)->Layers[0].Q.Type, codegen::WeightType::Q4_K);
  EXPECT_EQ((*M)->Layers[1].Q.Type, codegen::WeightType::Q5_0);
  expectJitMatchesReference(**M, kernelCache(), "mixed");
}

INSTANTIATE_TEST_SUITE_P(
    PresetFormats, QuantizedModelTest,
    ::testing::Values(gguf::TensorType::Q4_0, gguf::TensorType::Q4_1, gguf::TensorType::Q5_0, gguf::TensorType::Q5_1,
                      gguf::TensorType::IQ4_NL, gguf::TensorType::Q2_K, gguf::TensorType::Q3_K, gguf::TensorType::Q4_K,
                      gguf::TensorType::Q5_K, gguf::TensorType::Q6_K),
    [](const ::testing::TestParamInfo<gguf::TensorType> &Info) {
      return std::string(gguf::tensorTypeTraits(Info.param).Name);
    });

} // namespace

namespace {

/// A model quantized by Lumen's own quantizer to a preset, as `synth --type`
/// and `quantize` write it: the JIT agrees with the reference, and the
/// reference's logits stay near those of the same model in F32, the nearer
/// the more bits the preset keeps.
struct PresetCase {
  quant::Preset Preset;
  double MaxLogitRms; // Against F32, whose logits have std ~3 (measured, plus a third).
};

class QuantizedPresetTest : public ::testing::TestWithParam<PresetCase> {};

TEST_P(QuantizedPresetTest, QuantizedByLumenAndRun) {
  const PresetCase C = GetParam();
  const std::string Name(quant::presetInfo(C.Preset).Name);
  SynthOptions O = smallSynthetic(gguf::TensorType::F32, /*Tied=*/false, 47);
  const std::string F32Path = absl::StrFormat("%s/preset-f32.gguf", LUMEN_TEST_TMPDIR);
  const std::string Path = absl::StrFormat("%s/preset-%s.gguf", LUMEN_TEST_TMPDIR, Name);
  ASSERT_TRUE(writeSyntheticModel(O, F32Path).ok());
  O.Type = C.Preset;
  ASSERT_TRUE(writeSyntheticModel(O, Path).ok());
  auto MF = TransformerModel::load(F32Path);
  auto MQ = TransformerModel::load(Path);
  ASSERT_TRUE(MF.ok()) << MF.status();
  ASSERT_TRUE(MQ.ok()) << MQ.status();
  expectJitMatchesReference(**MQ, kernelCache(), Name);

  auto RefF = createReferenceSession(**MF);
  auto RefQ = createReferenceSession(**MQ);
  ASSERT_TRUE(RefF.ok() && RefQ.ok());
  std::vector<int32_t> Seq;
  for (int I = 0; I < 24; ++I)
    Seq.push_back((I * 7919 + 13) % 1024);
  const std::vector<double> Rms = logitRmsByPosition(**RefF, **RefQ, Seq, (*MF)->config().Vocab);
  double Worst = 0;
  for (double R : Rms)
    Worst = std::max(Worst, R);
  EXPECT_LE(Worst, C.MaxLogitRms) << Name;
  // A bound far above the error would not notice a worse quantizer.
  EXPECT_GE(Worst, C.MaxLogitRms / 3) << Name;
  RecordProperty("logit_rms_vs_f32_" + Name, std::to_string(Worst));
}

INSTANTIATE_TEST_SUITE_P(
    EveryPreset, QuantizedPresetTest,
    ::testing::Values(PresetCase{quant::Preset::Q2_K, 2.0}, PresetCase{quant::Preset::Q3_K_S, 1.7},
                      PresetCase{quant::Preset::Q3_K_M, 1.7}, PresetCase{quant::Preset::Q3_K_L, 1.7},
                      PresetCase{quant::Preset::Q4_K_S, 1.06}, PresetCase{quant::Preset::Q4_K_M, 1.1},
                      PresetCase{quant::Preset::Q5_K_S, 0.46}, PresetCase{quant::Preset::Q5_K_M, 0.46},
                      PresetCase{quant::Preset::Q6_K, 0.24}, PresetCase{quant::Preset::Q4_0, 1.03},
                      PresetCase{quant::Preset::Q4_1, 0.95}, PresetCase{quant::Preset::Q5_0, 0.53},
                      PresetCase{quant::Preset::Q5_1, 0.42}, PresetCase{quant::Preset::Q8_0, 0.073}),
    [](const ::testing::TestParamInfo<PresetCase> &Info) {
      return std::string(quant::presetInfo(Info.param.Preset).Name);
    });

} // namespace
