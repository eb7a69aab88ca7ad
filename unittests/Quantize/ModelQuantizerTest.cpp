//===- ModelQuantizerTest.cpp - A model file to a preset --------------------===//
#include "lumen/Quantize/ModelQuantizer.h"

#include "lumen/GGUF/GGUFFile.h"
#include "lumen/GGUF/GGUFWriter.h"
#include "lumen/GGUF/Quantize.h"

#include "absl/strings/str_format.h"
#include "gtest/gtest.h"

#include <cmath>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

using namespace lumen;
using namespace lumen::quant;
using gguf::TensorType;

namespace {

std::string tmpPath(const std::string &Name) { return std::string(LUMEN_TEST_TMPDIR) + "/" + Name; }

/// A two-layer Qwen2-like file: F16 matrices (or Type), F32 norms and
/// biases, gaussian values; Poison puts a NaN in blk.1.ffn_up.
void writeSource(const std::string &Path, TensorType Type = TensorType::F16, bool Poison = false) {
  gguf::GGUFWriter W;
  W.setString("general.architecture", "qwen2");
  W.setString("general.name", "quantizer test");
  W.setU32("general.file_type", 1);
  W.setU32("qwen2.block_count", 2);
  W.setU32("qwen2.attention.head_count", 4);
  W.setU32("qwen2.attention.head_count_kv", 2);
  W.setString("tokenizer.ggml.model", "gpt2");
  auto Tensor = [&](const std::string &Name, TensorType T, std::vector<int64_t> Dims) {
    const int64_t K = Dims[0];
    const bool Nan = Poison && Name == "blk.1.ffn_up.weight";
    ASSERT_TRUE(W.addTensor(Name, T, Dims,
                            [=](int64_t First, int64_t N, uint8_t *Out) {
                              const auto Tr = gguf::tensorTypeTraits(T);
                              const size_t RowBytes = K / Tr.BlockSize * Tr.TypeSize;
                              for (int64_t R = First; R < First + N; ++R) {
                                std::mt19937 Rng(static_cast<uint32_t>(std::hash<std::string>()(Name) + R));
                                std::normal_distribution<float> G(0.0f, 0.05f);
                                std::vector<float> Row(K);
                                for (float &V : Row)
                                  V = G(Rng);
                                if (Nan && R == 3)
                                  Row[5] = NAN;
                                gguf::quantizeRow(T, Row.data(), Out + (R - First) * RowBytes, K);
                              }
                              return absl::OkStatus();
                            })
                    .ok());
  };
  Tensor("token_embd.weight", Type, {256, 64});
  for (int L = 0; L < 2; ++L) {
    const std::string B = absl::StrFormat("blk.%d.", L);
    Tensor(B + "attn_norm.weight", TensorType::F32, {256});
    Tensor(B + "attn_q.weight", Type, {256, 256});
    Tensor(B + "attn_q.bias", TensorType::F32, {256});
    Tensor(B + "attn_v.weight", Type, {256, 128});
    Tensor(B + "ffn_up.weight", Type, {256, 512});
    Tensor(B + "ffn_down.weight", Type, {512, 256});
  }
  Tensor("output.weight", Type, {256, 64});
  ASSERT_TRUE(W.write(Path).ok());
}

std::unique_ptr<gguf::GGUFFile> open(const std::string &Path) {
  auto F = gguf::GGUFFile::open(Path);
  EXPECT_TRUE(F.ok()) << F.status();
  return F.ok() ? std::move(*F) : nullptr;
}

double relativeRms(const gguf::TensorInfo &A, const gguf::TensorInfo &B) {
  std::vector<float> X(A.Dims[0]), Y(A.Dims[0]);
  double E = 0, N = 0;
  for (int64_t R = 0; R < A.numRows(); ++R) {
    gguf::dequantizeRow(A.Type, A.Data + R * A.rowBytes(), X.data(), A.Dims[0]);
    gguf::dequantizeRow(B.Type, B.Data + R * B.rowBytes(), Y.data(), A.Dims[0]);
    for (int64_t I = 0; I < A.Dims[0]; ++I)
      E += (X[I] - Y[I]) * (X[I] - Y[I]), N += X[I] * X[I];
  }
  return std::sqrt(E / N);
}

TEST(ModelQuantizerTest, WritesThePresetsTypesAndKeepsTheRest) {
  writeSource(tmpPath("mq-src.gguf"));
  auto Src = open(tmpPath("mq-src.gguf"));
  ASSERT_TRUE(Src);
  for (Preset P : {Preset::Q4_K_M, Preset::Q2_K, Preset::Q5_0, Preset::Q8_0, Preset::BF16}) {
    SCOPED_TRACE(std::string(presetInfo(P).Name));
    QuantizeOptions O;
    O.Target = P;
    O.Threads = 2;
    uint64_t LastDone = 0, LastTotal = 0;
    O.OnProgress = [&](uint64_t Done, uint64_t Total) {
      EXPECT_GT(Done, LastDone);
      LastDone = Done, LastTotal = Total;
      return absl::OkStatus();
    };
    const std::string Out = tmpPath("mq-out.gguf");
    absl::StatusOr<QuantizeReport> R = quantizeModel(*Src, Out, O);
    ASSERT_TRUE(R.ok()) << R.status();
    EXPECT_EQ(LastDone, LastTotal);
    auto Q = open(Out);
    ASSERT_TRUE(Q);
    // Metadata: all of it, with the preset's file type.
    EXPECT_EQ(Q->metadata().size(), Src->metadata().size() + 1); // + quantization_version
    EXPECT_EQ(*Q->getString("general.name"), "quantizer test");
    EXPECT_EQ(*Q->getU32("general.file_type"), presetInfo(P).FileType);
    const TensorTypePlan Plan(P, *modelFacts(*Src));
    uint64_t Bytes = 0;
    ASSERT_EQ(Q->tensors().size(), Src->tensors().size());
    for (const gguf::TensorInfo &T : Q->tensors()) {
      const gguf::TensorInfo &S = *Src->findTensor(T.Name);
      EXPECT_EQ(T.Dims, S.Dims) << T.Name;
      EXPECT_EQ(T.Type, Plan.typeFor(T.Name, std::span(S.Dims.data(), S.NumDims)).value_or(S.Type)) << T.Name;
      Bytes += T.NumBytes;
      if (T.Type == S.Type)
        EXPECT_EQ(std::memcmp(T.Data, S.Data, T.NumBytes), 0) << T.Name << " copied";
      else
        EXPECT_LT(relativeRms(S, T), T.Type == TensorType::Q2_K   ? 0.3
                                     : T.Type == TensorType::Q3_K ? 0.18
                                                                  : 0.1)
            << T.Name;
    }
    EXPECT_EQ(R->BytesAfter, Bytes);
    EXPECT_EQ(R->FileBytes, std::filesystem::file_size(Out));
    EXPECT_NEAR(R->bitsPerWeight(), 8.0 * Bytes / R->Elements, 1e-9);
  }
}

TEST(ModelQuantizerTest, RequantizingNeedsConsent) {
  writeSource(tmpPath("mq-q8.gguf"), TensorType::Q8_0);
  auto Src = open(tmpPath("mq-q8.gguf"));
  ASSERT_TRUE(Src);
  const std::string Out = tmpPath("mq-requant.gguf");
  std::filesystem::remove(Out);
  QuantizeOptions O;
  O.Target = Preset::Q4_0;
  absl::StatusOr<QuantizeReport> R = quantizeModel(*Src, Out, O);
  ASSERT_FALSE(R.ok());
  EXPECT_NE(R.status().message().find("--allow-requantize"), std::string::npos) << R.status();
  EXPECT_FALSE(std::filesystem::exists(Out));
  O.AllowRequantize = true;
  R = quantizeModel(*Src, Out, O);
  ASSERT_TRUE(R.ok()) << R.status();
  EXPECT_EQ(open(Out)->findTensor("blk.0.ffn_up.weight")->Type, TensorType::Q4_0);
  // Q8_0 to Q8_0 has nothing to requantize: a copy.
  O.AllowRequantize = false;
  O.Target = Preset::Q8_0;
  EXPECT_TRUE(quantizeModel(*Src, Out, O).ok());
}

TEST(ModelQuantizerTest, FailuresLeaveNoFile) {
  const std::string Dir = tmpPath("mq-dir");
  std::filesystem::remove_all(Dir);
  std::filesystem::create_directory(Dir);
  writeSource(Dir + "/src.gguf");
  auto Src = open(Dir + "/src.gguf");
  ASSERT_TRUE(Src);
  QuantizeOptions O;
  O.Target = Preset::Q4_K_M;
  // Cancelled midway (Ctrl-C in the command).
  int Calls = 0;
  O.OnProgress = [&](uint64_t, uint64_t) {
    return ++Calls == 3 ? absl::CancelledError("stop") : absl::OkStatus();
  };
  absl::StatusOr<QuantizeReport> R = quantizeModel(*Src, Dir + "/out.gguf", O);
  EXPECT_TRUE(absl::IsCancelled(R.status())) << R.status();
  O.OnProgress = nullptr;
  // Over its own input; onto a directory.
  R = quantizeModel(*Src, Dir + "/src.gguf", O);
  EXPECT_NE(R.status().message().find("input file"), std::string::npos) << R.status();
  R = quantizeModel(*Src, Dir, O);
  EXPECT_NE(R.status().message().find("directory"), std::string::npos) << R.status();
  // Only the source is there: no partial output, no temporary file.
  std::vector<std::string> Names;
  for (const auto &E : std::filesystem::directory_iterator(Dir))
    Names.push_back(E.path().filename());
  EXPECT_EQ(Names, std::vector<std::string>{"src.gguf"});
}

TEST(ModelQuantizerTest, ANaNWeightIsAnErrorNamingIt) {
  writeSource(tmpPath("mq-nan.gguf"), TensorType::F32, /*Poison=*/true);
  auto Src = open(tmpPath("mq-nan.gguf"));
  ASSERT_TRUE(Src);
  const std::string Out = tmpPath("mq-nan-out.gguf");
  std::filesystem::remove(Out);
  QuantizeOptions O;
  O.Target = Preset::Q4_0;
  absl::StatusOr<QuantizeReport> R = quantizeModel(*Src, Out, O);
  ASSERT_FALSE(R.ok());
  EXPECT_NE(R.status().message().find("blk.1.ffn_up.weight' row 3"), std::string::npos) << R.status();
  EXPECT_FALSE(std::filesystem::exists(Out));
}

TEST(ModelQuantizerTest, LeaveOutputTensor) {
  writeSource(tmpPath("mq-src2.gguf"));
  auto Src = open(tmpPath("mq-src2.gguf"));
  ASSERT_TRUE(Src);
  QuantizeOptions O;
  O.Target = Preset::Q4_K_M;
  O.LeaveOutputTensor = true;
  ASSERT_TRUE(quantizeModel(*Src, tmpPath("mq-leave.gguf"), O).ok());
  auto Q = open(tmpPath("mq-leave.gguf"));
  EXPECT_EQ(Q->findTensor("output.weight")->Type, TensorType::F16);
  EXPECT_EQ(Q->findTensor("token_embd.weight")->Type, TensorType::Q4_K);
}

} // namespace
