//===- FixtureReaderTest.cpp - Reading the shared tiny Qwen2 fixture -------===//
#include "Fixtures.h"
#include "lumen/GGUF/GGUFFile.h"
#include "lumen/GGUF/Quantize.h"

#include "absl/strings/str_format.h"
#include "gtest/gtest.h"

#include <cmath>
#include <filesystem>

using namespace lumen::gguf;

namespace {

const std::string kFixture = std::string(LUMEN_SHARED_DIR) + "/fixtures/tiny-qwen2.gguf";

class FixtureReaderTest : public ::testing::Test {
protected:
  void SetUp() override {
    LUMEN_REQUIRE_SHARED(kFixture);
    auto F = GGUFFile::open(kFixture);
    ASSERT_TRUE(F.ok()) << F.status();
    File = std::move(*F);
  }
  std::unique_ptr<GGUFFile> File;
};

TEST_F(FixtureReaderTest, Header) {
  EXPECT_EQ(File->version(), 3u);
  EXPECT_EQ(File->alignment(), 32u);
  EXPECT_EQ(File->fileSize(), 38190784u);
  EXPECT_EQ(File->dataOffset(), 5933248u);
  EXPECT_EQ(File->metadata().size(), 24u);
  EXPECT_EQ(File->tensors().size(), 38u);
}

TEST_F(FixtureReaderTest, MetadataValues) {
  EXPECT_EQ(*File->getString("general.architecture"), "qwen2");
  EXPECT_EQ(*File->getString("general.type"), "model");
  EXPECT_EQ(*File->getString("general.name"), "Qwen2 tiny fixture (synthetic random weights)");
  EXPECT_EQ(*File->getU32("general.file_type"), 7u);
  EXPECT_EQ(*File->getU32("general.quantization_version"), 2u);
  EXPECT_EQ(*File->getU32("general.alignment"), 32u);
  EXPECT_EQ(*File->getU32("qwen2.block_count"), 3u);
  EXPECT_EQ(*File->getU32("qwen2.context_length"), 32768u);
  EXPECT_EQ(*File->getU32("qwen2.embedding_length"), 192u);
  EXPECT_EQ(*File->getU32("qwen2.feed_forward_length"), 512u);
  EXPECT_EQ(*File->getU32("qwen2.attention.head_count"), 3u);
  EXPECT_EQ(*File->getU32("qwen2.attention.head_count_kv"), 1u);
  EXPECT_FLOAT_EQ(*File->getF32("qwen2.rope.freq_base"), 1e6f);
  EXPECT_FLOAT_EQ(*File->getF32("qwen2.attention.layer_norm_rms_epsilon"), 1e-6f);
  EXPECT_EQ(*File->getString("tokenizer.ggml.model"), "gpt2");
  EXPECT_EQ(*File->getString("tokenizer.ggml.pre"), "qwen2");
  EXPECT_EQ(*File->getU32("tokenizer.ggml.eos_token_id"), 151645u);
  EXPECT_EQ(*File->getU32("tokenizer.ggml.padding_token_id"), 151643u);
  EXPECT_EQ(*File->getU32("tokenizer.ggml.bos_token_id"), 151643u);
  EXPECT_FALSE(*File->getBool("tokenizer.ggml.add_bos_token"));
  auto Template = File->getString("tokenizer.chat_template");
  ASSERT_TRUE(Template.ok());
  EXPECT_NE(Template->find("<|im_start|>"), std::string_view::npos);

  auto Tokens = File->getArray("tokenizer.ggml.tokens", ValueType::String);
  ASSERT_TRUE(Tokens.ok()) << Tokens.status();
  ASSERT_EQ((*Tokens)->Count, 151936u);
  EXPECT_EQ((*Tokens)->Strings[0], "!");
  EXPECT_EQ((*Tokens)->Strings[151643], "<|endoftext|>");
  EXPECT_EQ((*Tokens)->Strings[151645], "<|im_end|>");
  auto Types = File->getArray("tokenizer.ggml.token_type", ValueType::I32);
  ASSERT_TRUE(Types.ok());
  EXPECT_EQ((*Types)->Count, 151936u);
  EXPECT_EQ((*Types)->intAt(0), 1);
  EXPECT_EQ((*Types)->intAt(151643), 3);
  auto Merges = File->getArray("tokenizer.ggml.merges", ValueType::String);
  ASSERT_TRUE(Merges.ok());
  EXPECT_EQ((*Merges)->Count, 151387u);
  EXPECT_EQ((*Merges)->Strings[2], "i n");
}

TEST_F(FixtureReaderTest, EveryTensorTypeShapeOffset) {
  // The qwen2 layout, in file order, with offsets recomputed independently.
  const int64_t D = 192, F = 512, KV = 64, V = 151936;
  struct Expect { std::string Name; TensorType Type; std::vector<int64_t> Shape; };
  std::vector<Expect> Want = {{"token_embd.weight", TensorType::Q8_0, {D, V}},
                              {"output_norm.weight", TensorType::F32, {D}}};
  for (int L = 0; L < 3; ++L) {
    std::string B = absl::StrFormat("blk.%d.", L);
    std::vector<Expect> Block = {
        {B + "attn_norm.weight", TensorType::F32, {D}},
        {B + "attn_q.weight", TensorType::Q8_0, {D, D}},
        {B + "attn_q.bias", TensorType::F32, {D}},
        {B + "attn_k.weight", TensorType::Q8_0, {D, KV}},
        {B + "attn_k.bias", TensorType::F32, {KV}},
        {B + "attn_v.weight", TensorType::Q8_0, {D, KV}},
        {B + "attn_v.bias", TensorType::F32, {KV}},
        {B + "attn_output.weight", TensorType::Q8_0, {D, D}},
        {B + "ffn_norm.weight", TensorType::F32, {D}},
        {B + "ffn_gate.weight", TensorType::Q8_0, {D, F}},
        {B + "ffn_up.weight", TensorType::Q8_0, {D, F}},
        {B + "ffn_down.weight", TensorType::Q8_0, {F, D}}};
    Want.insert(Want.end(), Block.begin(), Block.end());
  }
  ASSERT_EQ(File->tensors().size(), Want.size());
  uint64_t Offset = 0;
  for (size_t I = 0; I < Want.size(); ++I) {
    const TensorInfo &T = File->tensors()[I];
    SCOPED_TRACE(Want[I].Name);
    EXPECT_EQ(T.Name, Want[I].Name);
    EXPECT_EQ(T.Type, Want[I].Type);
    ASSERT_EQ(T.NumDims, Want[I].Shape.size());
    for (size_t J = 0; J < T.NumDims; ++J)
      EXPECT_EQ(T.Dims[J], Want[I].Shape[J]);
    Offset = (Offset + 31) / 32 * 32;
    EXPECT_EQ(T.Offset, Offset);
    int64_t Elems = 1;
    for (int64_t S : Want[I].Shape) Elems *= S;
    uint64_t Bytes = T.Type == TensorType::Q8_0 ? Elems / 32 * 34 : Elems * 4;
    EXPECT_EQ(T.NumBytes, Bytes);
    EXPECT_EQ(T.Data, File->tensors()[0].Data + T.Offset);
    Offset += Bytes;
    EXPECT_EQ(File->findTensor(Want[I].Name), &T);
  }
  EXPECT_EQ(File->dataOffset() + Offset, File->fileSize());
}

TEST_F(FixtureReaderTest, TensorDataIsPlausible) {
  // Norm weights are ~1; Q8_0 scales are finite and positive.
  const TensorInfo *Norm = File->findTensor("blk.0.attn_norm.weight");
  ASSERT_NE(Norm, nullptr);
  std::vector<float> X(192);
  ASSERT_TRUE(dequantizeRow(Norm->Type, Norm->Data, X.data(), 192));
  double Mean = 0;
  for (float V : X) Mean += V / 192;
  EXPECT_NEAR(Mean, 1.0, 0.05);
  const TensorInfo *Q = File->findTensor("blk.0.attn_q.weight");
  ASSERT_NE(Q, nullptr);
  EXPECT_EQ(Q->rowBytes(), 192u / 32 * 34);
  const BlockQ8_0 *B = reinterpret_cast<const BlockQ8_0 *>(Q->Data);
  for (int I = 0; I < 6; ++I) {
    float S = halfToFloat(B[I].Scale);
    EXPECT_TRUE(std::isfinite(S) && S > 0) << S;
  }
}

TEST_F(FixtureReaderTest, AccessorErrorsNameTheKey) {
  auto Missing = File->getU32("qwen2.no_such_key");
  ASSERT_FALSE(Missing.ok());
  EXPECT_TRUE(absl::IsNotFound(Missing.status()));
  EXPECT_NE(Missing.status().message().find("'qwen2.no_such_key'"), std::string::npos);
  auto Wrong = File->getU32("general.architecture");
  ASSERT_FALSE(Wrong.ok());
  EXPECT_NE(Wrong.status().message().find("'general.architecture' has type str, expected u32"),
            std::string::npos) << Wrong.status();
  auto WrongArr = File->getArray("tokenizer.ggml.tokens", ValueType::I32);
  ASSERT_FALSE(WrongArr.ok());
  EXPECT_NE(WrongArr.status().message().find("arr[str], expected arr[i32]"), std::string::npos)
      << WrongArr.status();
  auto NoTensor = File->getTensor("output.weight");
  ASSERT_FALSE(NoTensor.ok());
  EXPECT_NE(NoTensor.status().message().find("missing tensor 'output.weight'"), std::string::npos);
}

TEST(MappedFileTest, ErrorsForMissingFileAndDirectory) {
  auto Missing = GGUFFile::open("/nonexistent/model.gguf");
  ASSERT_FALSE(Missing.ok());
  EXPECT_NE(Missing.status().message().find("cannot open"), std::string::npos);
  auto Dir = GGUFFile::open("/tmp");
  ASSERT_FALSE(Dir.ok());
  EXPECT_NE(Dir.status().message().find("not a regular file"), std::string::npos);
}

} // namespace
