//===- SyntheticModelTest.cpp - Random-weight Qwen2 files ------------------===//
#include "Fixtures.h"
#include "lumen/Model/Chat.h"
#include "lumen/Model/Session.h"
#include "lumen/Model/SyntheticModel.h"
#include "lumen/Runtime/Jit.h"

#include "lumen/GGUF/Quantize.h"
#include "lumen/Quantize/QuantPreset.h"

#include "absl/strings/str_format.h"
#include "gtest/gtest.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>

using namespace lumen;
using namespace lumen::model;

namespace {

std::string tmpPath(const std::string &Name) {
  return std::string(LUMEN_TEST_TMPDIR) + "/" + Name;
}

std::string slurp(const std::string &Path) {
  std::ifstream In(Path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(In), {});
}

/// A small shape so each test writes a few MB at most.
ModelShape smallShape() {
  ModelShape S = *syntheticPreset("tiny");
  S.Vocab = 2048;
  return S;
}

/// The small shape as architecture Arch: 4 heads of HeadDim (2 KV heads) on a
/// 128-wide embedding.
ModelShape smallShapeOf(const char *Arch, uint32_t HeadDim) {
  ModelShape S = smallShape();
  S.Arch = findArchitecture(Arch);
  S.Dim = 128;
  S.Heads = 4;
  S.KVHeads = 2;
  S.HeadDim = HeadDim;
  return S;
}

double rmsOfMatrix(const gguf::TensorInfo &T) {
  std::vector<float> Row(T.Dims[0]);
  double Sum = 0;
  for (int64_t R = 0; R < T.numRows(); ++R) {
    gguf::dequantizeRow(T.Type, T.Data + R * T.rowBytes(), Row.data(), T.Dims[0]);
    for (float X : Row) Sum += double(X) * X;
  }
  return std::sqrt(Sum / T.numElements());
}

/// The JIT computes what the scalar reference does, prompt batch and all
/// (within 5 % rms of the logits at each position).
void expectJitMatchesReference(const TransformerModel &M) {
  auto J = runtime::Jit::create();
  ASSERT_TRUE(J.ok());
  runtime::KernelCache Cache(**J);
  auto Ref = createReferenceSession(M);
  auto Jit = createJitSession(M, Cache);
  ASSERT_TRUE(Ref.ok() && Jit.ok());
  const std::vector<int32_t> Ids = {72, 101, 108, 108, 111, 32, 119, 111, 114, 108, 100};
  std::vector<float> A, B;
  ASSERT_TRUE((*Ref)->eval(Ids, true, A).ok());
  ASSERT_TRUE((*Jit)->eval(Ids, true, B).ok());
  const int64_t V = M.config().Vocab;
  for (size_t T = 0; T < Ids.size(); ++T) {
    double Sq = 0, Ss = 0;
    for (int64_t I = 0; I < V; ++I) {
      Sq += (A[T * V + I] - B[T * V + I]) * (A[T * V + I] - B[T * V + I]);
      Ss += A[T * V + I] * A[T * V + I];
    }
    EXPECT_LT(std::sqrt(Sq / V), 0.05 * std::sqrt(Ss / V)) << T;
  }
}

TEST(SyntheticModelTest, Presets) {
  // Each preset's hyper-parameters, as the real Qwen2.5 configs have them
  // (the 7B's vocabulary padded to 152064; 0.5B-3B tie their embeddings).
  struct Expect {
    const char *Name;
    uint32_t Layers, Dim, FFN, Heads, KVHeads, Vocab;
    bool Tied;
  };
  for (const Expect &E : {Expect{"qwen2.5-0.5b", 24, 896, 4864, 14, 2, 151936, true},
                          Expect{"qwen2.5-1.5b", 28, 1536, 8960, 12, 2, 151936, true},
                          Expect{"Qwen2.5-3B", 36, 2048, 11008, 16, 2, 151936, true},
                          Expect{"qwen2.5-7b", 28, 3584, 18944, 28, 4, 152064, false}}) {
    SCOPED_TRACE(E.Name);
    auto P = syntheticPreset(E.Name);
    ASSERT_TRUE(P.ok()) << P.status();
    EXPECT_EQ(P->Layers, E.Layers);
    EXPECT_EQ(P->Dim, E.Dim);
    EXPECT_EQ(P->FFN, E.FFN);
    EXPECT_EQ(P->Heads, E.Heads);
    EXPECT_EQ(P->KVHeads, E.KVHeads);
    EXPECT_EQ(P->HeadDim, E.Dim / E.Heads);
    EXPECT_EQ(P->Vocab, E.Vocab);
    EXPECT_EQ(P->TiedOutput, E.Tied);
  }
  // Qwen3: 128-wide heads on any embedding, q/k norms, no biases.
  for (const Expect &E : {Expect{"qwen3-0.6b", 28, 1024, 3072, 16, 8, 151936, true},
                          Expect{"qwen3-1.7b", 28, 2048, 6144, 16, 8, 151936, true}}) {
    SCOPED_TRACE(E.Name);
    auto P = syntheticPreset(E.Name);
    ASSERT_TRUE(P.ok()) << P.status();
    EXPECT_STREQ(P->Arch->Name, "qwen3");
    EXPECT_EQ(P->Layers, E.Layers);
    EXPECT_EQ(P->Dim, E.Dim);
    EXPECT_EQ(P->FFN, E.FFN);
    EXPECT_EQ(P->Heads, E.Heads);
    EXPECT_EQ(P->KVHeads, E.KVHeads);
    EXPECT_EQ(P->HeadDim, 128u);
    EXPECT_EQ(P->Vocab, E.Vocab);
    EXPECT_EQ(P->TiedOutput, E.Tied);
  }
  // Llama 3.x: heads of 64 (1B) or 128, 8 KV heads, 128256 tokens, RoPE
  // base 500000 with Llama 3.1's scaling (factor 32 for 3.2, 8 for 3.1).
  struct LlamaExpect {
    const char *Name;
    uint32_t Layers, Dim, FFN, Heads, HeadDim;
    bool Tied;
    float Factor;
  };
  for (const LlamaExpect &E : {LlamaExpect{"llama3.2-1b", 16, 2048, 8192, 32, 64, true, 32},
                               LlamaExpect{"llama3.2-3b", 28, 3072, 8192, 24, 128, true, 32},
                               LlamaExpect{"llama3.1-8b", 32, 4096, 14336, 32, 128, false, 8}}) {
    SCOPED_TRACE(E.Name);
    auto P = syntheticPreset(E.Name);
    ASSERT_TRUE(P.ok()) << P.status();
    EXPECT_STREQ(P->Arch->Name, "llama");
    EXPECT_EQ(P->Layers, E.Layers);
    EXPECT_EQ(P->Dim, E.Dim);
    EXPECT_EQ(P->FFN, E.FFN);
    EXPECT_EQ(P->Heads, E.Heads);
    EXPECT_EQ(P->KVHeads, 8u);
    EXPECT_EQ(P->HeadDim, E.HeadDim);
    EXPECT_EQ(P->Vocab, 128256u);
    EXPECT_EQ(P->TiedOutput, E.Tied);
    EXPECT_EQ(P->RopeBase, 500000.0f);
    EXPECT_EQ(P->Llama3RopeFactor, E.Factor);
  }
  auto Bad = syntheticPreset("llama");
  ASSERT_FALSE(Bad.ok());
  EXPECT_NE(Bad.status().message().find("unknown preset 'llama'"), std::string::npos);
}

TEST(SyntheticModelTest, LayoutMetadataAndScales) {
  SynthOptions O;
  O.Shape = smallShape();
  O.Seed = 3;
  std::string Path = tmpPath("synth-tiny.gguf");
  ASSERT_TRUE(writeSyntheticModel(O, Path).ok());
  auto F = gguf::GGUFFile::open(Path);
  ASSERT_TRUE(F.ok()) << F.status();
  const gguf::GGUFFile &G = **F;
  EXPECT_EQ(*G.getString("general.architecture"), "qwen2");
  EXPECT_NE(G.getString("general.name")->find("synthetic random weights"), std::string::npos);
  EXPECT_EQ(*G.getU32("general.file_type"), 7u);
  EXPECT_EQ(*G.getU32("qwen2.block_count"), 3u);
  EXPECT_EQ(*G.getU32("qwen2.embedding_length"), 192u);
  EXPECT_EQ(*G.getU32("qwen2.feed_forward_length"), 512u);
  EXPECT_EQ(*G.getU32("qwen2.attention.head_count"), 3u);
  EXPECT_EQ(*G.getU32("qwen2.attention.head_count_kv"), 1u);
  EXPECT_FLOAT_EQ(*G.getF32("qwen2.rope.freq_base"), 1e6f);
  EXPECT_EQ(*G.getString("tokenizer.ggml.model"), "gpt2");
  auto Tokens = G.getArray("tokenizer.ggml.tokens", gguf::ValueType::String);
  ASSERT_TRUE(Tokens.ok());
  EXPECT_EQ((*Tokens)->Count, 2048u) << "byte-level vocabulary padded to the vocab size";
  EXPECT_EQ((*Tokens)->Strings['a'], "a");
  EXPECT_EQ((*Tokens)->Strings[' '], "\xC4\xA0") << "GPT-2 byte map: space is U+0120";

  ASSERT_EQ(G.tensors().size(), 2u + 3 * 12);
  EXPECT_EQ(G.findTensor("output.weight"), nullptr) << "tied output";
  const gguf::TensorInfo *K = G.findTensor("blk.2.attn_k.weight");
  ASSERT_NE(K, nullptr);
  EXPECT_EQ(K->Type, gguf::TensorType::Q8_0);
  EXPECT_EQ(K->Dims[0], 192);
  EXPECT_EQ(K->Dims[1], 64);
  const gguf::TensorInfo *Down = G.findTensor("blk.0.ffn_down.weight");
  ASSERT_NE(Down, nullptr);
  EXPECT_EQ(Down->Dims[0], 512);
  EXPECT_EQ(Down->Dims[1], 192);

  // The documented scales: unit-variance outputs for unit-rms inputs.
  EXPECT_NEAR(rmsOfMatrix(*G.findTensor("blk.1.ffn_up.weight")), 1 / std::sqrt(192.0), 0.003);
  EXPECT_NEAR(rmsOfMatrix(*G.findTensor("blk.1.attn_q.weight")), 1.25 / std::sqrt(192.0),
              0.004);
  // Later layers' residual branches are smaller than earlier ones'.
  EXPECT_GT(rmsOfMatrix(*G.findTensor("blk.0.attn_output.weight")),
            1.3 * rmsOfMatrix(*G.findTensor("blk.2.attn_output.weight")));
}

TEST(SyntheticModelTest, LlamaLayoutTokenizerAndForward) {
  // A small Llama 3: 4 heads of 32 on a 128-wide embedding, rope_freqs of
  // factor 32, Llama 3's specials, template and pre-tokenizer.
  SynthOptions O;
  O.Shape = smallShapeOf("llama", 32);
  O.Shape.RopeBase = 500000;
  O.Shape.Llama3RopeFactor = 32;
  O.Seed = 6;
  const std::string Path = tmpPath("synth-llama.gguf");
  ASSERT_TRUE(writeSyntheticModel(O, Path).ok());
  {
    auto F = gguf::GGUFFile::open(Path);
    ASSERT_TRUE(F.ok()) << F.status();
    const gguf::GGUFFile &G = **F;
    EXPECT_EQ(*G.getString("general.architecture"), "llama");
    EXPECT_EQ(*G.getU32("llama.rope.dimension_count"), 32u);
    EXPECT_EQ(*G.getString("tokenizer.ggml.pre"), "llama-bpe");
    EXPECT_EQ(G.findTensor("blk.0.attn_q.bias"), nullptr);
    EXPECT_EQ(G.findTensor("blk.0.attn_q_norm.weight"), nullptr);
    ASSERT_NE(G.findTensor("rope_freqs.weight"), nullptr);
    EXPECT_EQ(G.findTensor("rope_freqs.weight")->Dims[0], 16);
  }
  auto M = TransformerModel::load(Path);
  ASSERT_TRUE(M.ok()) << M.status();
  const Tokenizer &Tok = (*M)->tokenizer();
  EXPECT_TRUE(Tok.addBos());
  EXPECT_EQ(chatFormatOf(Tok.chatTemplate()), ChatFormat::Llama3);
  const std::optional<int32_t> Eot = Tok.find("<|eot_id|>"), Eom = Tok.find("<|eom_id|>");
  ASSERT_TRUE(Eot && Eom);
  EXPECT_NE(std::count(Tok.stopIds().begin(), Tok.stopIds().end(), *Eot), 0);
  EXPECT_NE(std::count(Tok.stopIds().begin(), Tok.stopIds().end(), *Eom), 0);
  ASSERT_NE((*M)->RopeFreqs, nullptr);
  EXPECT_EQ((*M)->RopeFreqs[15], 32.0f);
  expectJitMatchesReference(**M);
}

TEST(SyntheticModelTest, Qwen3LayoutAndForward) {
  // A small Qwen3: 4 heads of 64 on a 128-wide embedding (q: 256 rows).
  SynthOptions O;
  O.Shape = smallShapeOf("qwen3", 64);
  O.Seed = 4;
  const std::string Path = tmpPath("synth-qwen3.gguf");
  ASSERT_TRUE(writeSyntheticModel(O, Path).ok());
  {
    auto F = gguf::GGUFFile::open(Path);
    ASSERT_TRUE(F.ok()) << F.status();
    const gguf::GGUFFile &G = **F;
    EXPECT_EQ(*G.getString("general.architecture"), "qwen3");
    EXPECT_EQ(*G.getU32("qwen3.attention.key_length"), 64u);
    EXPECT_EQ(G.findTensor("blk.0.attn_q.bias"), nullptr);
    ASSERT_NE(G.findTensor("blk.0.attn_q_norm.weight"), nullptr);
    EXPECT_EQ(G.findTensor("blk.0.attn_k_norm.weight")->Dims[0], 64);
    EXPECT_EQ(G.findTensor("blk.0.attn_q.weight")->Dims[1], 256);
    EXPECT_EQ(G.findTensor("blk.0.attn_output.weight")->Dims[0], 256);
  }
  auto M = TransformerModel::load(Path);
  ASSERT_TRUE(M.ok()) << M.status();
  EXPECT_EQ((*M)->config().qDim(), 256u);
  expectJitMatchesReference(**M);
}

TEST(SyntheticModelTest, FloatMatrices) {
  // The same gaussians as the Q8_0 file, stored as F16, BF16 or F32; the
  // norm weights and biases stay F32.
  SynthOptions O;
  O.Shape = smallShape();
  O.Seed = 3;
  ASSERT_TRUE(writeSyntheticModel(O, tmpPath("synth-q8_0.gguf")).ok());
  auto Q8 = gguf::GGUFFile::open(tmpPath("synth-q8_0.gguf"));
  ASSERT_TRUE(Q8.ok()) << Q8.status();
  const gguf::TensorInfo &Q8Up = *(*Q8)->findTensor("blk.1.ffn_up.weight");
  std::vector<float> Want(192), Got(192);
  gguf::dequantizeRow(Q8Up.Type, Q8Up.Data + 5 * Q8Up.rowBytes(), Want.data(), 192);
  for (auto [Type, FileType] : {std::pair{gguf::TensorType::F16, 1u}, {gguf::TensorType::BF16, 32u},
                                {gguf::TensorType::F32, 0u}}) {
    SCOPED_TRACE(gguf::tensorTypeTraits(Type).Name);
    O.Type = *quant::presetFromName(gguf::tensorTypeTraits(Type).Name);
    const std::string Path = tmpPath("synth-float.gguf");
    ASSERT_TRUE(writeSyntheticModel(O, Path).ok());
    auto F = gguf::GGUFFile::open(Path);
    ASSERT_TRUE(F.ok()) << F.status();
    EXPECT_EQ(*(*F)->getU32("general.file_type"), FileType);
    EXPECT_EQ((*F)->findTensor("token_embd.weight")->Type, Type);
    EXPECT_EQ((*F)->findTensor("blk.2.attn_k.bias")->Type, gguf::TensorType::F32);
    const gguf::TensorInfo &Up = *(*F)->findTensor("blk.1.ffn_up.weight");
    EXPECT_EQ(Up.Type, Type);
    EXPECT_NEAR(rmsOfMatrix(Up), 1 / std::sqrt(192.0), 0.003);
    gguf::dequantizeRow(Up.Type, Up.Data + 5 * Up.rowBytes(), Got.data(), 192);
    for (int I = 0; I < 192; ++I)
      ASSERT_NEAR(Got[I], Want[I], 0.01 * std::fabs(Want[I]) + 0.002) << "row 5, column " << I;
  }
}

TEST(SyntheticModelTest, QuantizationPresets) {
  // The same gaussians again, quantized as they are written, each tensor in
  // the type llama.cpp's quantizer gives it for the preset.
  SynthOptions O;
  O.Shape = smallShape();
  O.Shape.Dim = 256;
  O.Shape.Heads = 4;
  O.Shape.KVHeads = 2;
  O.Shape.HeadDim = 64;
  O.Seed = 3;
  O.Type = quant::Preset::F32;
  ASSERT_TRUE(writeSyntheticModel(O, tmpPath("synth-f32.gguf")).ok());
  auto F32 = gguf::GGUFFile::open(tmpPath("synth-f32.gguf"));
  ASSERT_TRUE(F32.ok()) << F32.status();
  for (quant::Preset P : {quant::Preset::Q4_K_M, quant::Preset::Q2_K, quant::Preset::Q4_0}) {
    const quant::PresetInfo &Info = quant::presetInfo(P);
    SCOPED_TRACE(std::string(Info.Name));
    O.Type = P;
    const std::string Path = tmpPath("synth-preset.gguf");
    ASSERT_TRUE(writeSyntheticModel(O, Path).ok());
    auto F = gguf::GGUFFile::open(Path);
    ASSERT_TRUE(F.ok()) << F.status();
    EXPECT_EQ(*(*F)->getU32("general.file_type"), Info.FileType);
    auto Facts = quant::modelFacts(**F);
    ASSERT_TRUE(Facts.ok()) << Facts.status();
    const quant::TensorTypePlan Plan(P, *Facts);
    for (const gguf::TensorInfo &T : (*F)->tensors()) {
      const gguf::TensorInfo &Ref = *(*F32)->findTensor(T.Name);
      EXPECT_EQ(T.Type, Plan.typeFor(T.Name, std::span(T.Dims.data(), T.NumDims)).value_or(Ref.Type)) << T.Name;
      if (T.NumDims < 2)
        continue;
      // Every matrix decodes to the F32 file's values within its type's error.
      std::vector<float> Got(T.Dims[0]), Want(T.Dims[0]);
      double Err = 0, Norm = 0;
      for (int64_t R = 0; R < T.numRows(); R += 7) {
        gguf::dequantizeRow(T.Type, T.Data + R * T.rowBytes(), Got.data(), T.Dims[0]);
        gguf::dequantizeRow(Ref.Type, Ref.Data + R * Ref.rowBytes(), Want.data(), T.Dims[0]);
        for (int64_t I = 0; I < T.Dims[0]; ++I)
          Err += (Got[I] - Want[I]) * (Got[I] - Want[I]), Norm += Want[I] * Want[I];
      }
      EXPECT_LT(std::sqrt(Err / Norm), T.Type == gguf::TensorType::Q2_K ? 0.3 : 0.16) << T.Name;
    }
  }
  // Q4_K_M gives half the layers' attn_v and ffn_down Q6_K and the tied
  // embedding (the output) Q6_K.
  O.Type = quant::Preset::Q4_K_M;
  ASSERT_TRUE(writeSyntheticModel(O, tmpPath("synth-q4km.gguf")).ok());
  auto F = gguf::GGUFFile::open(tmpPath("synth-q4km.gguf"));
  ASSERT_TRUE(F.ok());
  EXPECT_EQ((*F)->findTensor("token_embd.weight")->Type, gguf::TensorType::Q6_K);
  EXPECT_EQ((*F)->findTensor("blk.2.ffn_down.weight")->Type, gguf::TensorType::Q6_K); // The last eighth.
  EXPECT_EQ((*F)->findTensor("blk.0.ffn_down.weight")->Type, gguf::TensorType::Q4_K);
  EXPECT_EQ((*F)->findTensor("blk.0.attn_q.weight")->Type, gguf::TensorType::Q4_K);
}

TEST(SyntheticModelTest, DeterministicAcrossThreadCounts) {
  SynthOptions O;
  O.Shape = smallShape();
  O.Seed = 9;
  O.Threads = 1;
  ASSERT_TRUE(writeSyntheticModel(O, tmpPath("det1.gguf")).ok());
  O.Threads = 3;
  ASSERT_TRUE(writeSyntheticModel(O, tmpPath("det3.gguf")).ok());
  O.Seed = 10;
  ASSERT_TRUE(writeSyntheticModel(O, tmpPath("det-other.gguf")).ok());
  std::string A = slurp(tmpPath("det1.gguf")), B = slurp(tmpPath("det3.gguf"));
  ASSERT_FALSE(A.empty());
  EXPECT_TRUE(A == B) << "same seed, same bytes";
  std::string C = slurp(tmpPath("det-other.gguf"));
  EXPECT_EQ(A.size(), C.size());
  EXPECT_FALSE(A == C) << "another seed, other weights";
}

TEST(SyntheticModelTest, UntiedOutputAndTokenizerCopy) {
  std::string Fixture = std::string(LUMEN_SHARED_DIR) + "/fixtures/tiny-qwen2.gguf";
  LUMEN_REQUIRE_SHARED(Fixture);
  auto Source = gguf::GGUFFile::open(Fixture);
  ASSERT_TRUE(Source.ok());
  SynthOptions O;
  O.Shape = smallShape();
  O.Shape.TiedOutput = false;
  O.TokenizerFrom = Source->get();
  std::string Path = tmpPath("synth-tok.gguf");
  ASSERT_TRUE(writeSyntheticModel(O, Path).ok());
  auto F = gguf::GGUFFile::open(Path);
  ASSERT_TRUE(F.ok()) << F.status();
  for (const gguf::KeyValue &KV : (*Source)->metadata()) {
    if (!KV.Key.starts_with("tokenizer."))
      continue;
    const gguf::Value *Copy = (*F)->find(KV.Key);
    ASSERT_NE(Copy, nullptr) << KV.Key;
    EXPECT_EQ(Copy->toString(8), KV.Val.toString(8)) << KV.Key;
  }
  const gguf::TensorInfo *Out = (*F)->findTensor("output.weight");
  ASSERT_NE(Out, nullptr);
  EXPECT_EQ(Out->Dims[1], 151936) << "vocab follows the copied tokenizer";
}

TEST(SyntheticModelTest, RejectsInconsistentShapes) {
  SynthOptions O;
  O.Shape = smallShape();
  O.Shape.Heads = 5; // 192 is not divisible by 5.
  auto S = writeSyntheticModel(O, tmpPath("bad.gguf"));
  ASSERT_FALSE(S.ok());
  EXPECT_NE(S.message().find("not divisible by 5 heads"), std::string::npos) << S;
  O.Shape = smallShape();
  O.Shape.FFN = 500;
  S = writeSyntheticModel(O, tmpPath("bad.gguf"));
  ASSERT_FALSE(S.ok());
  EXPECT_NE(S.message().find("multiples of 32"), std::string::npos) << S;
}

} // namespace
