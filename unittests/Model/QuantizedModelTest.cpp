//===- QuantizedModelTest.cpp - Models in llama.cpp's block formats --------===//
//
// A model whose every matrix (embedding and lm_head included) is in one of
// the block formats of llama.cpp's presets loads, and the reference session
// computes on it exactly what it computes on the same weights in F32; the
// JIT session, which has no kernels for these formats yet, says so. (The
// formats themselves are checked bit for bit against llama.cpp's decoder
// in unittests/GGUF/QuantizeTest.cpp.)
//
//===----------------------------------------------------------------------===//
#include "lumen/GGUF/GGUFFile.h"
#include "lumen/GGUF/GGUFWriter.h"
#include "lumen/GGUF/Quantize.h"
#include "lumen/Model/Qwen2Model.h"
#include "lumen/Model/Session.h"
#include "lumen/Model/SyntheticQwen2.h"

#include "FidelityUtil.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_format.h"
#include "gtest/gtest.h"

#include <cmath>
#include <cstring>
#include <deque>
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

class QuantizedModelTest : public ::testing::TestWithParam<gguf::TensorType> {};

TEST_P(QuantizedModelTest, ReferenceComputesWhatF32Does) {
  const gguf::TensorType Type = GetParam();
  const std::string Name(gguf::tensorTypeTraits(Type).Name);
  // A 256-wide model (the K formats' super-block), F32 throughout.
  SynthOptions O = smallSynthetic(gguf::TensorType::F32, /*Tied=*/false, 43);
  const std::string Base = absl::StrFormat("%s/quant-base.%s.gguf", LUMEN_TEST_TMPDIR, Name);
  ASSERT_TRUE(writeSyntheticQwen2(O, Base).ok());
  auto F = gguf::GGUFFile::open(Base);
  ASSERT_TRUE(F.ok()) << F.status();

  // The same model twice: its matrices as random Type blocks, and those
  // blocks decoded to F32.
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
    const std::vector<uint8_t> &Q = Keep.emplace_back(randomBlocks(Type, T, Seed++));
    std::vector<uint8_t> &D = Keep.emplace_back(Dims[0] * Dims[1] * sizeof(float));
    ASSERT_TRUE(gguf::dequantizeRow(Type, Q.data(), reinterpret_cast<float *>(D.data()), Dims[0] * Dims[1]));
    ASSERT_TRUE(Quant.addTensor(T.Name, Type, Dims, Q).ok());
    ASSERT_TRUE(Decoded.addTensor(T.Name, gguf::TensorType::F32, Dims, D).ok());
  }
  const std::string QPath = absl::StrFormat("%s/quant-%s.gguf", LUMEN_TEST_TMPDIR, Name),
                    DPath = absl::StrFormat("%s/quant-%s-decoded.gguf", LUMEN_TEST_TMPDIR, Name);
  ASSERT_TRUE(Quant.write(QPath).ok());
  ASSERT_TRUE(Decoded.write(DPath).ok());
  auto MQ = Qwen2Model::load(QPath);
  auto MD = Qwen2Model::load(DPath);
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

  // And the JIT on the decoded model agrees with the reference on the blocks.
  auto Jit = createJitSession(**MD, kernelCache());
  ASSERT_TRUE(Jit.ok()) << Jit.status();
  auto Fresh = createReferenceSession(**MQ);
  const std::vector<double> Rms = logitRmsByPosition(**Fresh, **Jit, Seq, (*MQ)->config().Vocab);
  for (size_t P = 0; P < Rms.size(); ++P)
    EXPECT_LE(Rms[P], 0.02) << "position " << P;

  // The JIT itself has no kernels for the format yet, and says which matrix.
  auto NoJit = createJitSession(**MQ, kernelCache());
  ASSERT_FALSE(NoJit.ok());
  EXPECT_NE(NoJit.status().message().find("no generated kernels for it yet"), std::string::npos) << NoJit.status();
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
