//===- MalformedModelTest.cpp - Every class of broken model file -----------===//
//
// Mutations of the tiny fixture, each loaded as a model: all must fail with
// a clear error (the table in docs/RELIABILITY.md lists them), none may
// crash, hang or read outside the file.
//
//===----------------------------------------------------------------------===//
#include "Fixtures.h"
#include "FidelityUtil.h"
#include "lumen/GGUF/GGUFWriter.h"
#include "lumen/Model/Perplexity.h"
#include "lumen/Model/TransformerModel.h"
#include "lumen/Model/Session.h"
#include "lumen/Runtime/Jit.h"
#include "lumen/Runtime/KernelCache.h"

#include "gtest/gtest.h"

#include <algorithm>
#include <cstring>
#include <functional>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <random>

using namespace lumen;

namespace {

const std::string kTiny = std::string(LUMEN_SHARED_DIR) + "/fixtures/tiny-qwen2.gguf";

class MalformedModelTest : public ::testing::Test {
protected:
  static void SetUpTestSuite() {
    std::ifstream In(kTiny, std::ios::binary);
    if (In)
      Bytes.assign(std::istreambuf_iterator<char>(In), {});
  }
  void SetUp() override {
    LUMEN_REQUIRE_SHARED(kTiny);
    ASSERT_FALSE(Bytes.empty()) << kTiny << " is empty";
  }
  /// Loads B as a model, named model.gguf; returns the status.
  static absl::Status loadStatus(const std::vector<uint8_t> &B) {
    auto F = gguf::GGUFFile::parse(B, "model.gguf");
    if (!F.ok())
      return F.status();
    return model::TransformerModel::fromFile(std::move(*F)).status();
  }
  /// Loads B as a model; returns the error ("" if it loaded).
  static std::string load(const std::vector<uint8_t> &B) { return std::string(loadStatus(B).message()); }
  /// The fixture rewritten through GGUFWriter with one change.
  static std::string rewrite(const std::function<void(gguf::GGUFWriter &, const gguf::GGUFFile &)> &Edit,
                             const std::string &SkipTensor = "", const std::string &SkipKey = "") {
    auto Src = gguf::GGUFFile::parse(Bytes, "fixture");
    gguf::GGUFWriter W;
    for (const gguf::KeyValue &KV : (*Src)->metadata())
      if (KV.Key != SkipKey)
        W.setValue(KV.Key, KV.Val);
    for (const gguf::TensorInfo &T : (*Src)->tensors())
      if (T.Name != SkipTensor)
        (void)W.addTensor(T.Name, T.Type, std::vector<int64_t>(T.Dims.begin(), T.Dims.begin() + T.NumDims),
                          std::span<const uint8_t>(T.Data, T.NumBytes));
    Edit(W, **Src);
    // A file per test: CTest runs the tests of this suite in parallel.
    const std::string Path = pathForTest();
    EXPECT_TRUE(W.write(Path).ok());
    auto M = model::TransformerModel::load(Path);
    return M.ok() ? "" : std::string(M.status().message());
  }
  static std::vector<uint8_t> Bytes;

public:
  /// rewrite and the path it writes (one a test), for the helpers below.
  static std::string rewriteForTest(const std::function<void(gguf::GGUFWriter &, const gguf::GGUFFile &)> &Edit,
                                    const std::string &SkipTensor) {
    return rewrite(Edit, SkipTensor);
  }
  static std::string pathForTest() {
    return std::string(LUMEN_TEST_TMPDIR) + "/malformed-" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name() + ".gguf";
  }
};
std::vector<uint8_t> MalformedModelTest::Bytes;

TEST_F(MalformedModelTest, IntactFixtureLoads) { EXPECT_EQ(load(Bytes), ""); }

TEST_F(MalformedModelTest, TruncationAnywhereInTheHeader) {
  // Every offset of the first 4 KB (magic, counts, the scalar keys, the
  // start of the vocabulary), every 4999th byte through the vocabulary and
  // merges, every offset of the last 1 KB of tensor infos, a few in the data.
  auto F = gguf::GGUFFile::parse(Bytes, "fixture");
  const size_t Header = (*F)->dataOffset();
  std::vector<size_t> Cuts;
  for (size_t N = 0; N < 4096; ++N) Cuts.push_back(N);
  for (size_t N = 4096; N < Header; N += 4999) Cuts.push_back(N);
  for (size_t N = Header - 1024; N < Header; ++N) Cuts.push_back(N); // Tensor infos.
  for (size_t N : {Header + 1, Bytes.size() / 2, Bytes.size() - 1}) Cuts.push_back(N);
  for (size_t N : Cuts) {
    std::vector<uint8_t> Cut(Bytes.begin(), Bytes.begin() + N);
    std::string E = load(Cut);
    ASSERT_FALSE(E.empty()) << "truncated at " << N << " loaded";
    ASSERT_TRUE(E.find("truncated") != std::string::npos || E.find("cannot fit") != std::string::npos ||
                E.find("runs past the end") != std::string::npos || E.find("outside the file") != std::string::npos)
        << N << ": " << E;
  }
}

/// A fragment of each error the reader and the loader give for a bad file
/// (docs/RELIABILITY.md's table, MalformedInputTest's hand-built headers,
/// and the tokenizer's checks of its vocabulary and merges).
const char *const kKnownErrors[] = {
    // The GGUF reader: "FILE: at byte N: ...".
    "truncated: ", "runs past the end of the file", "cannot fit in the", "lies outside the file's",
    "has unknown type", "dimensions (1 to", "has a zero dimension", "element count overflows",
    "is not a multiple of the", "is not aligned to", "overlaps tensor", "duplicate metadata key",
    "duplicate tensor name", "has unknown value type", "unknown array element type", "is neither 0 nor 1",
    "arrays nested deeper", "bad magic", "unsupported GGUF version", "general.alignment",
    // The model config and tensors.
    "missing metadata key", "missing tensor", "' has type ", "does not fit in", "has shape [",
    "general.architecture is '", "is not divisible by", "is not a multiple of head_count_kv", "is odd (RoPE",
    "must be multiples of 32", "implausible model size", "must be positive", "is not 4-byte aligned",
    "the tokenizer has ", "one type per matrix role across layers",
    // The tokenizer: "FILE: tokenizer: ...".
    "is not supported (only gpt2", "is not an integer array", "vocabulary of ", "token types for",
    "has no token: not a byte-level vocabulary", "is not 'left right'", "(tokenizer.ggml.pre) is not supported",
    "rope.scaling", "rope.dimension_count", "rope_freqs.weight",
    "uses or makes a token not in the vocabulary", "is outside the vocabulary"};

TEST_F(MalformedModelTest, RandomBitFlipsInTheHeader) {
  // Flips in the first 64 KB and in the tensor infos: the result loads (a
  // harmless flip, e.g. in a token string) or fails cleanly: a status for
  // bad input, a message that names the file and a known problem.
  auto F = gguf::GGUFFile::parse(Bytes, "fixture");
  const size_t Header = (*F)->dataOffset();
  std::mt19937_64 Rng(7);
  int Failed = 0;
  for (int I = 0; I < 100; ++I) {
    std::vector<uint8_t> M = Bytes;
    for (int J = 0; J < 3; ++J) {
      size_t At = Rng() % 2 ? Rng() % 65536 : Header - 1 - Rng() % 2400;
      M[At] ^= static_cast<uint8_t>(1u << (Rng() % 8));
    }
    const absl::Status S = loadStatus(M);
    if (S.ok())
      continue;
    ++Failed;
    const std::string E(S.message());
    // (A flipped name length can put megabytes of the file in a message.)
    const std::string Shown = E.substr(0, 300);
    EXPECT_TRUE(absl::IsInvalidArgument(S) || absl::IsNotFound(S) || absl::IsOutOfRange(S) ||
                absl::IsUnimplemented(S))
        << "flip " << I << ": " << absl::StatusCodeToString(S.code()) << ": " << Shown;
    EXPECT_TRUE(E.rfind("model.gguf: ", 0) == 0) << "flip " << I << ": the message does not name the file: "
                                                  << Shown;
    EXPECT_TRUE(std::any_of(std::begin(kKnownErrors), std::end(kKnownErrors),
                            [&](const char *K) { return E.find(K) != std::string::npos; }))
        << "flip " << I << ": not a known error: " << Shown;
  }
  EXPECT_GT(Failed, 0);
}

TEST_F(MalformedModelTest, HugeCounts) {
  std::vector<uint8_t> M = Bytes;
  uint64_t Huge = uint64_t(1) << 62;
  std::memcpy(&M[8], &Huge, 8); // Tensor count.
  EXPECT_NE(load(M).find("tensor count"), std::string::npos) << load(M);
  M = Bytes;
  std::memcpy(&M[16], &Huge, 8); // Metadata count.
  EXPECT_NE(load(M).find("metadata count"), std::string::npos);
}

TEST_F(MalformedModelTest, TensorPastTheEnd) {
  std::vector<uint8_t> M = Bytes;
  auto F = gguf::GGUFFile::parse(Bytes, "fixture");
  // The last tensor's offset field is the 8 bytes before the header padding;
  // find it by value.
  const gguf::TensorInfo &Last = (*F)->tensors().back();
  uint64_t Far = Last.Offset + (uint64_t(1) << 30);
  for (size_t At = 0; At + 8 <= (*F)->dataOffset(); ++At)
    if (std::memcmp(&M[At], &Last.Offset, 8) == 0 && At > (*F)->dataOffset() - 64) {
      std::memcpy(&M[At], &Far, 8);
      break;
    }
  EXPECT_NE(load(M).find("lies outside the file"), std::string::npos) << load(M);
}

TEST_F(MalformedModelTest, ShapeDisagreesWithConfig) {
  std::string E = rewrite([](gguf::GGUFWriter &W, const gguf::GGUFFile &) {
    W.setU32("qwen2.feed_forward_length", 1024);
  });
  EXPECT_NE(E.find("tensor 'blk.0.ffn_gate.weight' has shape [192, 512], the model config needs [192, 1024]"),
            std::string::npos) << E;
}

TEST_F(MalformedModelTest, MissingTensor) {
  std::string E = rewrite([](gguf::GGUFWriter &, const gguf::GGUFFile &) {}, "blk.1.attn_k.bias");
  EXPECT_NE(E.find("missing tensor 'blk.1.attn_k.bias'"), std::string::npos) << E;
}

TEST_F(MalformedModelTest, TensorsTheArchitectureDoesNotReadAreRefused) {
  // Computing without them would silently give other results than the file
  // means (llama.cpp refuses such files too).
  static const float Freqs[32] = {};
  std::string E = rewrite([](gguf::GGUFWriter &W, const gguf::GGUFFile &) {
    (void)W.addTensor("rope_freqs.weight", gguf::TensorType::F32, {32},
                      std::span(reinterpret_cast<const uint8_t *>(Freqs), sizeof(Freqs)));
  });
  EXPECT_NE(E.find("tensor 'rope_freqs.weight' is not part of the qwen2 architecture as Lumen runs it"),
            std::string::npos)
      << E;
}

// Llama's q/k/v biases are optional (llama.cpp reads them where present): the
// fixture relabelled llama, biases and all, computes what it does as qwen2
// but for the RoPE pairing, so the biases are read, not dropped.
TEST_F(MalformedModelTest, LlamaReadsItsOptionalBiases) {
  auto Relabel = [](gguf::GGUFWriter &W, const gguf::GGUFFile &F) {
    W.setString("general.architecture", "llama");
    for (const gguf::KeyValue &KV : F.metadata())
      if (KV.Key.starts_with("qwen2."))
        W.setValue("llama." + std::string(KV.Key.substr(6)), KV.Val);
  };
  EXPECT_EQ(rewrite(Relabel), "");
  const std::string Path = std::string(LUMEN_TEST_TMPDIR) + "/malformed-LlamaReadsItsOptionalBiases.gguf";
  auto M = model::TransformerModel::load(Path);
  ASSERT_TRUE(M.ok()) << M.status();
  EXPECT_NE((*M)->Layers[0].QBias, nullptr);
  EXPECT_NE((*M)->Layers[0].VBias, nullptr);
  // Without them (each alone may be missing) it loads too.
  EXPECT_EQ(rewrite(Relabel, "blk.0.attn_q.bias"), "");
}

TEST_F(MalformedModelTest, MissingKey) {
  std::string E = rewrite([](gguf::GGUFWriter &, const gguf::GGUFFile &) {}, "", "qwen2.block_count");
  EXPECT_NE(E.find("missing metadata key 'qwen2.block_count'"), std::string::npos) << E;
}

TEST_F(MalformedModelTest, WrongTypesForKnownKeys) {
  std::string E = rewrite([](gguf::GGUFWriter &W, const gguf::GGUFFile &) {
    W.setString("qwen2.embedding_length", "192");
  });
  EXPECT_NE(E.find("'qwen2.embedding_length' has type str, expected u32"), std::string::npos) << E;
  E = rewrite([](gguf::GGUFWriter &W, const gguf::GGUFFile &) { W.setU32("qwen2.rope.freq_base", 5); });
  EXPECT_NE(E.find("'qwen2.rope.freq_base' has type u32, expected f32"), std::string::npos) << E;
  E = rewrite([](gguf::GGUFWriter &W, const gguf::GGUFFile &) {
    W.setI32Array("tokenizer.ggml.tokens", std::vector<int32_t>{1, 2});
  });
  EXPECT_NE(E.find("'tokenizer.ggml.tokens' has type arr[i32], expected arr[str]"), std::string::npos) << E;
  E = rewrite([](gguf::GGUFWriter &W, const gguf::GGUFFile &) { W.setString("general.architecture", "gemma2"); });
  EXPECT_NE(E.find("general.architecture is 'gemma2'; Lumen runs qwen2, qwen3, llama models"), std::string::npos)
      << E;
  E = rewrite([](gguf::GGUFWriter &W, const gguf::GGUFFile &) { W.setString("tokenizer.ggml.pre", "falcon"); });
  EXPECT_NE(E.find("pre-tokenizer 'falcon' (tokenizer.ggml.pre) is not supported; Lumen runs qwen2, llama-bpe"),
            std::string::npos)
      << E;
  E = rewrite([](gguf::GGUFWriter &W, const gguf::GGUFFile &) { W.setString("qwen2.rope.scaling.type", "yarn"); });
  EXPECT_NE(E.find("qwen2.rope.scaling.type 'yarn' is not supported"), std::string::npos) << E;
  E = rewrite([](gguf::GGUFWriter &W, const gguf::GGUFFile &) { W.setU32("qwen2.rope.dimension_count", 32); });
  EXPECT_NE(E.find("qwen2.rope.dimension_count 32 differs from the head dimension 64"), std::string::npos) << E;
  E = rewrite([](gguf::GGUFWriter &W, const gguf::GGUFFile &) { W.setU32("qwen2.attention.head_count", 5); });
  EXPECT_NE(E.find("is not divisible by 5 heads"), std::string::npos) << E;
  E = rewrite([](gguf::GGUFWriter &W, const gguf::GGUFFile &) { W.setU32("tokenizer.ggml.eos_token_id", 999999); });
  EXPECT_NE(E.find("eos_token_id = 999999 is outside the vocabulary"), std::string::npos) << E;
}

TEST_F(MalformedModelTest, VocabularySmallerThanTheEmbedding) {
  std::string E = rewrite([](gguf::GGUFWriter &W, const gguf::GGUFFile &F) {
    const gguf::Value *Tokens = F.find("tokenizer.ggml.tokens");
    const gguf::Value *Types = F.find("tokenizer.ggml.token_type");
    std::vector<std::string> Fewer(Tokens->Strings.begin(), Tokens->Strings.begin() + 151900);
    std::vector<int32_t> FewerTypes;
    for (int I = 0; I < 151900; ++I) FewerTypes.push_back(static_cast<int32_t>(Types->intAt(I)));
    W.setStringArray("tokenizer.ggml.tokens", Fewer);
    W.setI32Array("tokenizer.ggml.token_type", FewerTypes);
  });
  EXPECT_NE(E.find("the tokenizer has 151900 tokens but token_embd.weight has 151936 rows"), std::string::npos) << E;
}

TEST_F(MalformedModelTest, UnsupportedTensorType) {
  // Every ggml type is known by name and block geometry, so a type Lumen does
  // not read is named rather than called unknown.
  static std::vector<uint8_t> Mx(192 * 192 / 32 * 17, 0); // Outlives the writer.
  std::string E = rewrite([](gguf::GGUFWriter &W, const gguf::GGUFFile &) {
    (void)W.addTensor("blk.0.attn_q.weight", gguf::TensorType::MXFP4, {192, 192}, Mx);
  }, "blk.0.attn_q.weight");
  EXPECT_NE(E.find("tensor 'blk.0.attn_q.weight' has type MXFP4; Lumen reads Q8_0, F16, BF16, F32, Q4_0"),
            std::string::npos) << E;
  EXPECT_EQ(E.find("unknown type"), std::string::npos) << E;
}

/// The fixture with blk.L.attn_norm.weight's values passed through Change,
/// loaded; the path names the calling test.
static std::unique_ptr<model::TransformerModel> withAttnNorm(uint32_t L, const std::function<float(float)> &Change,
                                                             std::vector<float> &Keep) {
  const std::string Name = "blk." + std::to_string(L) + ".attn_norm.weight";
  EXPECT_EQ(MalformedModelTest::rewriteForTest(
                [&](gguf::GGUFWriter &W, const gguf::GGUFFile &F) {
                  const gguf::TensorInfo *T = F.findTensor(Name);
                  ASSERT_TRUE(T && T->Type == gguf::TensorType::F32);
                  const float *V = reinterpret_cast<const float *>(T->Data);
                  Keep.assign(V, V + T->Dims[0]);
                  std::transform(Keep.begin(), Keep.end(), Keep.begin(), Change);
                  (void)W.addTensor(Name, gguf::TensorType::F32, {T->Dims[0]},
                                    std::span(reinterpret_cast<const uint8_t *>(Keep.data()), Keep.size() * 4));
                },
                Name),
            "");
  auto M = model::TransformerModel::load(MalformedModelTest::pathForTest());
  EXPECT_TRUE(M.ok()) << M.status();
  return M.ok() ? std::move(*M) : nullptr;
}

/// Both sessions' status for a few tokens, and whether their logits were finite.
static std::pair<absl::Status, absl::Status> evalBoth(const model::TransformerModel &M) {
  const std::vector<int32_t> Tokens = {785, 6722, 315, 9625, 374};
  std::vector<float> Logits;
  model::SessionOptions SO;
  SO.Threads = 2;
  auto Ref = model::createReferenceSession(M, SO);
  auto Jit = model::createJitSession(M, test::kernelCache(), SO);
  EXPECT_TRUE(Ref.ok() && Jit.ok());
  return {(*Ref)->eval(Tokens, /*AllLogits=*/true, Logits), (*Jit)->eval(Tokens, /*AllLogits=*/true, Logits)};
}

// Weights that load but break the arithmetic (a damaged file's scales, a
// model whose activations outgrow fp16) must not come out as tokens: a NaN
// logit reads as token 0 to a sampler. Both sessions return an error.
TEST_F(MalformedModelTest, NonFiniteLogitsAreAnError) {
  std::vector<float> Keep;
  auto M = withAttnNorm(0, [](float X) { return X == X ? X : 0; }, Keep); // Intact first.
  ASSERT_TRUE(M);
  auto [RefOk, JitOk] = evalBoth(*M);
  EXPECT_TRUE(RefOk.ok()) << RefOk;
  EXPECT_TRUE(JitOk.ok()) << JitOk;

  M = withAttnNorm(0, [](float X) { return X * std::numeric_limits<float>::quiet_NaN(); }, Keep);
  ASSERT_TRUE(M);
  auto [Ref, Jit] = evalBoth(*M);
  for (const absl::Status &S : {Ref, Jit}) {
    EXPECT_TRUE(absl::IsDataLoss(S)) << S;
    EXPECT_NE(S.message().find("the logits at position 0 are not finite"), std::string::npos) << S;
  }
  // perplexity says which chunk of the text it was on.
  auto Session = model::createJitSession(*M, test::kernelCache(), {});
  ASSERT_TRUE(Session.ok()) << Session.status();
  const std::vector<int32_t> Text(16, 785);
  model::PerplexityOptions PO;
  PO.ChunkTokens = 8;
  absl::StatusOr<model::PerplexityEstimate> P = model::perplexity(**Session, Text, PO);
  EXPECT_TRUE(absl::IsDataLoss(P.status())) << P.status();
  EXPECT_NE(P.status().message().find("chunk 1 of 2 (tokens 0-7 of the text): the logits at position"),
            std::string::npos)
      << P.status();
}

TEST_F(MalformedModelTest, KeysPastTheFp16RangeAreAnErrorOnTheJitPath) {
  // Keys of ~1e6: finite in the reference's f32 cache, infinite in the JIT's fp16 one.
  std::vector<float> Keep;
  auto M = withAttnNorm(1, [](float X) { return X * 1e6f; }, Keep);
  ASSERT_TRUE(M);
  auto [Ref, Jit] = evalBoth(*M);
  EXPECT_TRUE(Ref.ok()) << Ref;
  EXPECT_TRUE(absl::IsDataLoss(Jit)) << Jit;
  EXPECT_NE(Jit.message().find("fp16"), std::string::npos) << Jit;
}

} // namespace
