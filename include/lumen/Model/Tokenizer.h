//===- lumen/Model/Tokenizer.h - GPT-2 byte-level BPE ------------*- C++ -*-===//
//
// The tokenizer stored in a GGUF's tokenizer.ggml.* keys, with the semantics
// of the model's own (Hugging Face) tokenizer: added tokens matched in the
// raw text, then the pre-tokenizer tokenizer.ggml.pre names (its
// normalisation and split), then byte-level BPE by merge rank. Immutable
// after loading; safe to share.
//
//===----------------------------------------------------------------------===//
#ifndef LUMEN_MODEL_TOKENIZER_H
#define LUMEN_MODEL_TOKENIZER_H

#include "lumen/Export.h"

#include "lumen/GGUF/GGUFFile.h"

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace lumen::model {

/// Token types as llama.cpp stores them in tokenizer.ggml.token_type.
enum class TokenType : int32_t {
  Undefined = 0, Normal = 1, Unknown = 2, Control = 3, UserDefined = 4, Unused = 5, Byte = 6,
};

/// A pre-tokenizer (tokenizer.ggml.pre): how text is normalised and split
/// before BPE. The ones Lumen runs share one split regex,
///   (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,MaxDigits}
///   | ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
/// and differ in the data below.
struct LUMEN_API PreTokenizer {
  const char *Name;  // tokenizer.ggml.pre.
  unsigned MaxDigits; // Digits a pre-token takes (Qwen: 1, Llama 3: up to 3).
  bool Nfc;          // NFC-normalise the text first (Qwen's normalizer; Llama 3 has none).
  /// A pre-token that is itself in the vocabulary is that token, merges or
  /// not (Hugging Face's ignore_merges, set in Llama 3's tokenizer).
  bool IgnoreMerges;
  /// Whether BOS opens a prompt when tokenizer.ggml.add_bos_token is absent
  /// (llama.cpp's default for the vocabulary: Llama 3 yes, Qwen no).
  bool AddBosByDefault;
};

/// The pre-tokenizers Lumen runs, and the one named Name (null if none).
LUMEN_API const std::vector<PreTokenizer> &preTokenizers();
LUMEN_API const PreTokenizer *findPreTokenizer(std::string_view Name);

class LUMEN_API Tokenizer {
public:
  static absl::StatusOr<std::unique_ptr<Tokenizer>> fromGGUF(const gguf::GGUFFile &File);

  /// Token ids for Text (no BOS added). With ParseSpecial, control tokens
  /// such as <|im_start|> written in the text become their ids; user-defined
  /// added tokens (<tool_call>) are always matched, as llama.cpp does.
  std::vector<int32_t> encode(std::string_view Text, bool ParseSpecial = true) const;

  /// The bytes of one token: byte-level pieces mapped back to raw bytes,
  /// added tokens as their text. Out-of-range ids give an empty string.
  std::string tokenBytes(int32_t Id) const;
  /// Concatenated bytes of Ids (may end inside a UTF-8 sequence).
  std::string decode(const std::vector<int32_t> &Ids) const;

  int32_t vocabSize() const { return static_cast<int32_t>(Tokens.size()); }
  TokenType type(int32_t Id) const;
  std::optional<int32_t> find(std::string_view Text) const;
  /// End-of-generation ids: eos, eot, and where present <|im_end|>,
  /// <|endoftext|> (Qwen), <|eot_id|>, <|eom_id|>, <|end_of_text|> (Llama 3).
  const std::vector<int32_t> &stopIds() const { return Stops; }
  std::optional<int32_t> bosId() const { return Bos; }
  bool addBos() const { return AddBos; }
  const std::string &chatTemplate() const { return ChatTemplate; }
  const PreTokenizer &preTokenizer() const { return *Pre; }

private:
  Tokenizer() = default;
  void encodeSegment(std::string_view Text, std::vector<int32_t> &Out) const;
  void bpe(std::string_view Word, std::vector<int32_t> &Out) const;

  std::vector<std::string> Tokens;      // Vocabulary strings as stored (byte-level mapped).
  std::vector<TokenType> Types;
  absl::flat_hash_map<std::string, int32_t> Ids;
  int32_t ByteIds[256];                 // Single-byte symbols.
  struct Merge {
    int32_t Rank;
    int32_t Result;
  };
  absl::flat_hash_map<uint64_t, Merge> Merges; // (left id << 32 | right id) -> merge.
  // Control and user-defined tokens by first byte, longest first: matched in text.
  std::vector<std::vector<int32_t>> AddedByFirstByte;
  std::vector<int32_t> Stops;
  std::optional<int32_t> Bos;
  bool AddBos = false;
  std::string ChatTemplate;
  const PreTokenizer *Pre = nullptr;
};

/// Whether S is well-formed UTF-8 (no overlong forms, surrogates, code
/// points past U+10FFFF or cut sequences): a token's bytes may be part of a
/// character.
LUMEN_API bool isValidUtf8(std::string_view S);

/// Turns a stream of token ids into valid UTF-8 text: bytes of an incomplete
/// character wait for the next token, and bytes that cannot form a
/// character (byte tokens such as 0xC1, a lead byte cut short) come out as
/// U+FFFD, one per maximal ill-formed subpart, as Hugging Face decodes them.
class LUMEN_API StreamDecoder {
public:
  explicit StreamDecoder(const Tokenizer &T) : T(T) {}
  /// The text now decidable: always valid UTF-8.
  std::string push(int32_t Id);
  /// What is left at the end (an incomplete sequence becomes U+FFFD).
  std::string finish();

private:
  const Tokenizer &T;
  std::string Pending;
};

} // namespace lumen::model

#endif
