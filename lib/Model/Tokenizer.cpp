//===- Tokenizer.cpp - GPT-2 byte-level BPE (Qwen2) ------------------------===//
#include "lumen/Model/Tokenizer.h"
#include "lumen/Model/TransformerModel.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

#include <algorithm>
#include <cstdlib>
#include <queue>
#include <utf8proc.h>

namespace lumen::model {

namespace {

//===----------------------------------------------------------------------===//
// Byte-level mapping (GPT-2): every byte is a printable code point.
//===----------------------------------------------------------------------===//

struct ByteMap {
  int32_t ToCode[256];
  absl::flat_hash_map<int32_t, uint8_t> ToByte;
  ByteMap() {
    int32_t Shift = 0;
    for (int B = 0; B < 256; ++B) {
      bool Printable = (B >= '!' && B <= '~') || (B >= 0xA1 && B <= 0xAC) || (B >= 0xAE);
      ToCode[B] = Printable ? B : 256 + Shift++;
      ToByte[ToCode[B]] = static_cast<uint8_t>(B);
    }
  }
};
const ByteMap &byteMap() {
  static const ByteMap M;
  return M;
}

void appendUtf8(std::string &Out, int32_t C) {
  uint8_t Buf[4];
  utf8proc_ssize_t N = utf8proc_encode_char(C, Buf);
  Out.append(reinterpret_cast<const char *>(Buf), N);
}

//===----------------------------------------------------------------------===//
// The pre-tokenizers' split (PreTokenizer in Tokenizer.h), matched
// leftmost-first at each position, written out as code.
//===----------------------------------------------------------------------===//

struct CodePoint {
  int32_t Code;   // -1 for a byte that is not valid UTF-8.
  uint32_t Begin; // Byte offsets in the text.
  uint32_t End;
};

std::vector<CodePoint> decodeUtf8(std::string_view S) {
  std::vector<CodePoint> Out;
  Out.reserve(S.size());
  const auto *P = reinterpret_cast<const utf8proc_uint8_t *>(S.data());
  size_t I = 0;
  while (I < S.size()) {
    utf8proc_int32_t C;
    utf8proc_ssize_t N = utf8proc_iterate(P + I, S.size() - I, &C);
    if (N <= 0) { // An invalid byte stands alone (it is never a letter, number or space).
      Out.push_back({-1, static_cast<uint32_t>(I), static_cast<uint32_t>(I + 1)});
      ++I;
      continue;
    }
    Out.push_back({C, static_cast<uint32_t>(I), static_cast<uint32_t>(I + N)});
    I += N;
  }
  return Out;
}

bool isLetter(int32_t C) {
  if (C < 0) return false;
  switch (utf8proc_category(C)) {
  case UTF8PROC_CATEGORY_LU: case UTF8PROC_CATEGORY_LL: case UTF8PROC_CATEGORY_LT:
  case UTF8PROC_CATEGORY_LM: case UTF8PROC_CATEGORY_LO:
    return true;
  default:
    return false;
  }
}
bool isNumber(int32_t C) {
  if (C < 0) return false;
  utf8proc_category_t K = utf8proc_category(C);
  return K == UTF8PROC_CATEGORY_ND || K == UTF8PROC_CATEGORY_NL || K == UTF8PROC_CATEGORY_NO;
}
/// \s: Unicode White_Space.
bool isSpace(int32_t C) {
  if (C < 0) return false;
  if ((C >= 9 && C <= 13) || C == 0x85) return true;
  utf8proc_category_t K = utf8proc_category(C);
  return K == UTF8PROC_CATEGORY_ZS || K == UTF8PROC_CATEGORY_ZL || K == UTF8PROC_CATEGORY_ZP;
}
bool isNewline(int32_t C) { return C == '\r' || C == '\n'; }

/// Length in code points of the pre-token starting at I (always >= 1).
size_t matchPreToken(const std::vector<CodePoint> &Cs, size_t I, unsigned MaxDigits) {
  const size_t N = Cs.size();
  auto At = [&](size_t J) { return J < N ? Cs[J].Code : -2; };
  // 1. Contractions, ASCII case-insensitive.
  if (At(I) == '\'') {
    static const char *Suffixes[] = {"s", "t", "re", "ve", "m", "ll", "d"};
    for (const char *Sfx : Suffixes) {
      size_t L = std::strlen(Sfx), J = 0;
      while (J < L && At(I + 1 + J) >= 0 && At(I + 1 + J) < 128 &&
             std::tolower(At(I + 1 + J)) == Sfx[J])
        ++J;
      if (J == L)
        return 1 + L;
    }
  }
  // 2. One optional non-letter/number/newline, then letters.
  {
    size_t J = I;
    if (!isLetter(At(J)) && !isNumber(At(J)) && !isNewline(At(J)) && J < N && isLetter(At(J + 1)))
      ++J;
    if (isLetter(At(J))) {
      while (isLetter(At(J)))
        ++J;
      return J - I;
    }
  }
  // 3. A run of up to MaxDigits numbers.
  if (isNumber(At(I))) {
    size_t J = I + 1;
    while (J - I < MaxDigits && isNumber(At(J)))
      ++J;
    return J - I;
  }
  // 4. Optional space, punctuation/symbols, trailing newlines.
  {
    size_t J = I + (At(I) == ' ' ? 1 : 0), K = J;
    auto Punct = [&](int32_t C) { return C != -2 && !isSpace(C) && !isLetter(C) && !isNumber(C); };
    while (K < N && Punct(At(K)))
      ++K;
    if (K > J) {
      while (isNewline(At(K)))
        ++K;
      return K - I;
    }
  }
  // 5-7. Whitespace runs.
  size_t R = I;
  while (R < N && isSpace(At(R)))
    ++R;
  if (R == I)
    return 1; // Unreachable: every code point matches one of the above.
  for (size_t P = R; P-- > I;) // 5. \s*[\r\n]+ : through the run's last newline.
    if (isNewline(At(P)))
      return P + 1 - I;
  if (R == N) // 6. \s+(?!\S) : the whole run at the end of the text ...
    return R - I;
  if (R - I >= 2) // ... or all but its last space before a non-space.
    return R - 1 - I;
  return R - I; // 7. \s+
}

} // namespace

bool isValidUtf8(std::string_view S) {
  const auto *P = reinterpret_cast<const utf8proc_uint8_t *>(S.data());
  for (size_t I = 0; I < S.size();) {
    utf8proc_int32_t C;
    const utf8proc_ssize_t N = utf8proc_iterate(P + I, S.size() - I, &C);
    if (N <= 0)
      return false;
    I += N;
  }
  return true;
}

const std::vector<PreTokenizer> &preTokenizers() {
  static const std::vector<PreTokenizer> All = {
      {"qwen2", 1, true, false, false},    // Qwen2, Qwen2.5, Qwen3.
      {"llama-bpe", 3, false, true, true}, // Llama 3.x.
  };
  return All;
}

const PreTokenizer *findPreTokenizer(std::string_view Name) {
  for (const PreTokenizer &P : preTokenizers())
    if (Name == P.Name)
      return &P;
  return nullptr;
}

//===----------------------------------------------------------------------===//
// Loading
//===----------------------------------------------------------------------===//

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::fromGGUF(const gguf::GGUFFile &F) {
  auto Bad = [&](const std::string &What) {
    return absl::InvalidArgumentError(absl::StrFormat("%s: tokenizer: %s", F.name(), What));
  };
  // The pre-tokenizer: a file that names none takes its architecture's
  // (Qwen's for an unknown or absent one: what Lumen's first files were);
  // one Lumen does not run is refused.
  const PreTokenizer *Pre = findPreTokenizer("qwen2");
  if (absl::StatusOr<std::string_view> Arch = F.getString("general.architecture"); Arch.ok())
    if (const Architecture *A = findArchitecture(*Arch))
      Pre = findPreTokenizer(A->PreTokenizer);
  if (F.find("tokenizer.ggml.pre")) {
    absl::StatusOr<std::string_view> Name = F.getString("tokenizer.ggml.pre");
    if (!Name.ok())
      return Name.status();
    Pre = findPreTokenizer(*Name);
    if (!Pre) {
      std::string Known;
      for (const PreTokenizer &P : preTokenizers())
        absl::StrAppend(&Known, Known.empty() ? "" : ", ", P.Name);
      return Bad(absl::StrFormat("pre-tokenizer '%s' (tokenizer.ggml.pre) is not supported; Lumen runs %s",
                                 *Name, Known));
    }
  }
  absl::StatusOr<std::string_view> Model = F.getString("tokenizer.ggml.model");
  if (!Model.ok())
    return Model.status();
  if (*Model != "gpt2")
    return Bad(absl::StrFormat("model '%s' is not supported (only gpt2 byte-level BPE)", *Model));
  absl::StatusOr<const gguf::Value *> Tokens = F.getArray("tokenizer.ggml.tokens", gguf::ValueType::String);
  if (!Tokens.ok())
    return Tokens.status();
  absl::StatusOr<const gguf::Value *> Merges = F.getArray("tokenizer.ggml.merges", gguf::ValueType::String);
  if (!Merges.ok())
    return Merges.status();
  const gguf::Value *Types = F.find("tokenizer.ggml.token_type");
  if (Types && (!Types->isArray() || !gguf::valueTypeSize(Types->ElementType) ||
                Types->ElementType == gguf::ValueType::F32 || Types->ElementType == gguf::ValueType::F64))
    return Bad("tokenizer.ggml.token_type is not an integer array");
  const uint64_t V = (*Tokens)->Count;
  if (V == 0 || V > (1u << 30))
    return Bad(absl::StrFormat("vocabulary of %d tokens", V));
  if (Types && Types->Count != V)
    return Bad(absl::StrFormat("%d token types for %d tokens", Types->Count, V));

  std::unique_ptr<Tokenizer> T(new Tokenizer());
  T->Pre = Pre;
  T->Tokens.reserve(V);
  T->Types.reserve(V);
  T->Ids.reserve(V);
  for (uint64_t I = 0; I < V; ++I) {
    T->Tokens.emplace_back((*Tokens)->Strings[I]);
    int64_t Ty = Types ? Types->intAt(I) : 1;
    T->Types.push_back(Ty >= 0 && Ty <= 6 ? static_cast<TokenType>(Ty) : TokenType::Undefined);
    T->Ids.emplace(T->Tokens.back(), static_cast<int32_t>(I)); // First wins on duplicates.
  }
  for (int B = 0; B < 256; ++B) {
    std::string S;
    appendUtf8(S, byteMap().ToCode[B]);
    auto It = T->Ids.find(S);
    if (It == T->Ids.end())
      return Bad(absl::StrFormat("byte 0x%02x has no token: not a byte-level vocabulary", B));
    T->ByteIds[B] = It->second;
  }
  T->Merges.reserve((*Merges)->Count);
  for (uint64_t R = 0; R < (*Merges)->Count; ++R) {
    std::string_view M = (*Merges)->Strings[R];
    size_t Space = M.find(' ', 1);
    if (Space == std::string_view::npos)
      return Bad(absl::StrFormat("merge %d '%s' is not 'left right'", R, M));
    std::string L(M.substr(0, Space)), Rt(M.substr(Space + 1));
    auto Li = T->Ids.find(L), Ri = T->Ids.find(Rt), Mi = T->Ids.find(L + Rt);
    if (Li == T->Ids.end() || Ri == T->Ids.end() || Mi == T->Ids.end())
      return Bad(absl::StrFormat("merge %d '%s' uses or makes a token not in the vocabulary", R, M));
    uint64_t Key = (uint64_t(uint32_t(Li->second)) << 32) | uint32_t(Ri->second);
    T->Merges.emplace(Key, Merge{static_cast<int32_t>(R), Mi->second}); // Lowest rank wins.
  }
  T->AddedByFirstByte.resize(256);
  for (uint64_t I = 0; I < V; ++I)
    if ((T->Types[I] == TokenType::Control || T->Types[I] == TokenType::UserDefined) &&
        !T->Tokens[I].empty())
      T->AddedByFirstByte[static_cast<uint8_t>(T->Tokens[I][0])].push_back(static_cast<int32_t>(I));
  for (std::vector<int32_t> &Bucket : T->AddedByFirstByte)
    std::stable_sort(Bucket.begin(), Bucket.end(), [&](int32_t A, int32_t B) {
      return T->Tokens[A].size() > T->Tokens[B].size();
    });

  auto OptionalId = [&](const char *Key) -> absl::StatusOr<std::optional<int32_t>> {
    if (!F.find(Key))
      return std::optional<int32_t>();
    absl::StatusOr<uint32_t> Id = F.getU32(Key);
    if (!Id.ok())
      return Id.status();
    if (*Id >= V)
      return Bad(absl::StrFormat("%s = %d is outside the vocabulary of %d", Key, *Id, V));
    return std::optional<int32_t>(static_cast<int32_t>(*Id));
  };
  absl::StatusOr<std::optional<int32_t>> Eos = OptionalId("tokenizer.ggml.eos_token_id");
  if (!Eos.ok())
    return Eos.status();
  absl::StatusOr<std::optional<int32_t>> Bos = OptionalId("tokenizer.ggml.bos_token_id");
  if (!Bos.ok())
    return Bos.status();
  T->Bos = *Bos;
  T->AddBos = Pre->AddBosByDefault && T->Bos.has_value();
  if (F.find("tokenizer.ggml.add_bos_token")) {
    absl::StatusOr<bool> Add = F.getBool("tokenizer.ggml.add_bos_token");
    if (!Add.ok())
      return Add.status();
    T->AddBos = *Add && T->Bos.has_value();
  }
  absl::StatusOr<std::optional<int32_t>> Eot = OptionalId("tokenizer.ggml.eot_token_id");
  if (!Eot.ok())
    return Eot.status();
  for (const std::optional<int32_t> &Id : {*Eos, *Eot})
    if (Id && !std::count(T->Stops.begin(), T->Stops.end(), *Id))
      T->Stops.push_back(*Id);
  // The families' end-of-turn and end-of-text tokens, by name: Qwen's, and
  // Llama 3's (eot; eom ends a tool call's turn).
  for (const char *S : {"<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<|eom_id|>", "<|end_of_text|>"})
    if (std::optional<int32_t> Id = T->find(S); Id && !std::count(T->Stops.begin(), T->Stops.end(), *Id))
      T->Stops.push_back(*Id);
  if (F.find("tokenizer.chat_template")) {
    absl::StatusOr<std::string_view> Tpl = F.getString("tokenizer.chat_template");
    if (!Tpl.ok())
      return Tpl.status();
    T->ChatTemplate = std::string(*Tpl);
  }
  return T;
}

//===----------------------------------------------------------------------===//
// Encoding
//===----------------------------------------------------------------------===//

std::optional<int32_t> Tokenizer::find(std::string_view Text) const {
  auto It = Ids.find(std::string(Text));
  if (It == Ids.end())
    return std::nullopt;
  return It->second;
}

TokenType Tokenizer::type(int32_t Id) const {
  return Id >= 0 && Id < vocabSize() ? Types[Id] : TokenType::Undefined;
}

void Tokenizer::bpe(std::string_view Word, std::vector<int32_t> &Out) const {
  if (Pre->IgnoreMerges && Word.size() > 1) {
    std::string Mapped; // The vocabulary's byte-level spelling of Word.
    for (char C : Word)
      appendUtf8(Mapped, byteMap().ToCode[static_cast<uint8_t>(C)]);
    if (auto It = Ids.find(Mapped); It != Ids.end() && Types[It->second] != TokenType::Control &&
                                    Types[It->second] != TokenType::UserDefined) {
      Out.push_back(It->second);
      return;
    }
  }
  // A doubly linked list of symbols and a heap of candidate merges ordered by
  // (rank, position): the lowest rank first, leftmost among equals.
  struct Sym {
    int32_t Id;
    int32_t Prev, Next;
  };
  std::vector<Sym> Syms(Word.size());
  for (size_t I = 0; I < Word.size(); ++I)
    Syms[I] = {ByteIds[static_cast<uint8_t>(Word[I])], static_cast<int32_t>(I) - 1,
               I + 1 < Word.size() ? static_cast<int32_t>(I + 1) : -1};
  struct Cand {
    int32_t Rank, Left, LeftId, RightId;
    bool operator>(const Cand &O) const { return Rank != O.Rank ? Rank > O.Rank : Left > O.Left; }
  };
  std::priority_queue<Cand, std::vector<Cand>, std::greater<Cand>> Heap;
  auto Consider = [&](int32_t L) {
    if (L < 0 || Syms[L].Next < 0)
      return;
    int32_t R = Syms[L].Next;
    auto It = Merges.find((uint64_t(uint32_t(Syms[L].Id)) << 32) | uint32_t(Syms[R].Id));
    if (It != Merges.end())
      Heap.push({It->second.Rank, L, Syms[L].Id, Syms[R].Id});
  };
  for (int32_t I = 0; I + 1 < static_cast<int32_t>(Syms.size()); ++I)
    Consider(I);
  while (!Heap.empty()) {
    Cand C = Heap.top();
    Heap.pop();
    Sym &L = Syms[C.Left];
    if (L.Id != C.LeftId || L.Next < 0 || Syms[L.Next].Id != C.RightId)
      continue; // Stale: one side has changed since this candidate was queued.
    int32_t R = L.Next;
    L.Id = Merges.find((uint64_t(uint32_t(C.LeftId)) << 32) | uint32_t(C.RightId))->second.Result;
    L.Next = Syms[R].Next;
    if (L.Next >= 0)
      Syms[L.Next].Prev = C.Left;
    Syms[R].Id = -1;
    Consider(L.Prev);
    Consider(C.Left);
  }
  for (int32_t I = Syms.empty() ? -1 : 0; I >= 0; I = Syms[I].Next)
    Out.push_back(Syms[I].Id);
}

void Tokenizer::encodeSegment(std::string_view Text, std::vector<int32_t> &Out) const {
  if (Text.empty())
    return;
  // NFC where the normalizer asks for it (Qwen's); text that is not valid
  // UTF-8 is left as is.
  std::string Normalized;
  if (Pre->Nfc) {
    utf8proc_uint8_t *Mapped = nullptr;
    utf8proc_ssize_t Len = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t *>(Text.data()),
                                        static_cast<utf8proc_ssize_t>(Text.size()), &Mapped,
                                        static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_COMPOSE));
    if (Len >= 0) {
      Normalized.assign(reinterpret_cast<const char *>(Mapped), Len);
      Text = Normalized;
    }
    std::free(Mapped);
  }
  std::vector<CodePoint> Cs = decodeUtf8(Text);
  for (size_t I = 0; I < Cs.size();) {
    size_t L = matchPreToken(Cs, I, Pre->MaxDigits);
    uint32_t Begin = Cs[I].Begin, End = Cs[I + L - 1].End;
    bpe(Text.substr(Begin, End - Begin), Out);
    I += L;
  }
}

std::vector<int32_t> Tokenizer::encode(std::string_view Text, bool ParseSpecial) const {
  std::vector<int32_t> Out;
  size_t Start = 0;
  for (size_t I = 0; I < Text.size(); ++I) {
    // Added tokens, leftmost-longest (each bucket is sorted longest first).
    for (int32_t Id : AddedByFirstByte[static_cast<uint8_t>(Text[I])]) {
      const std::string &S = Tokens[Id];
      if (!ParseSpecial && Types[Id] == TokenType::Control)
        continue;
      if (Text.compare(I, S.size(), S) == 0) {
        encodeSegment(Text.substr(Start, I - Start), Out);
        Out.push_back(Id);
        Start = I + S.size();
        I = Start - 1;
        break;
      }
    }
  }
  encodeSegment(Text.substr(Start), Out);
  return Out;
}

//===----------------------------------------------------------------------===//
// Decoding
//===----------------------------------------------------------------------===//

std::string Tokenizer::tokenBytes(int32_t Id) const {
  if (Id < 0 || Id >= vocabSize())
    return "";
  const std::string &S = Tokens[Id];
  if (Types[Id] == TokenType::Control || Types[Id] == TokenType::UserDefined)
    return S;
  std::string Out;
  for (const CodePoint &C : decodeUtf8(S)) {
    auto It = C.Code >= 0 ? byteMap().ToByte.find(C.Code) : byteMap().ToByte.end();
    if (It != byteMap().ToByte.end())
      Out += static_cast<char>(It->second);
    else
      Out.append(S, C.Begin, C.End - C.Begin);
  }
  return Out;
}

std::string Tokenizer::decode(const std::vector<int32_t> &Ids) const {
  std::string Out;
  for (int32_t Id : Ids)
    Out += tokenBytes(Id);
  return Out;
}

namespace {
constexpr std::string_view kReplacement = "\xEF\xBF\xBD"; // U+FFFD

/// Moves what is decidable of Pending to Out: well-formed UTF-8 sequences as
/// they are, and each maximal ill-formed subpart as one U+FFFD (Unicode's
/// recommended practice, which Hugging Face's decoder and Python's
/// errors="replace" follow). A sequence that is well formed so far but
/// incomplete stays in Pending for the next token, unless Final.
void drainUtf8(std::string &Pending, std::string &Out, bool Final) {
  const size_t N = Pending.size();
  size_t I = 0;
  while (I < N) {
    const uint8_t B = static_cast<uint8_t>(Pending[I]);
    if (B < 0x80) {
      Out += static_cast<char>(B);
      ++I;
      continue;
    }
    // Length by lead byte, and the range of the second byte that excludes
    // overlong forms, surrogates and code points past U+10FFFF.
    size_t Need = 0;
    uint8_t Lo = 0x80, Hi = 0xBF;
    if (B >= 0xC2 && B <= 0xDF) {
      Need = 2;
    } else if (B >= 0xE0 && B <= 0xEF) {
      Need = 3;
      Lo = B == 0xE0 ? 0xA0 : 0x80;
      Hi = B == 0xED ? 0x9F : 0xBF;
    } else if (B >= 0xF0 && B <= 0xF4) {
      Need = 4;
      Lo = B == 0xF0 ? 0x90 : 0x80;
      Hi = B == 0xF4 ? 0x8F : 0xBF;
    }
    size_t Got = 1;
    for (; Need && Got < Need && I + Got < N; ++Got) {
      const uint8_t C = static_cast<uint8_t>(Pending[I + Got]);
      if (C < (Got == 1 ? Lo : 0x80) || C > (Got == 1 ? Hi : 0xBF))
        break;
    }
    if (Need && Got == Need) {
      Out.append(Pending, I, Need);
    } else if (Need && I + Got == N && !Final) {
      break; // Well formed so far: the next token may complete it.
    } else {
      Out += kReplacement;
    }
    I += Got;
  }
  Pending.erase(0, I);
}
} // namespace

std::string StreamDecoder::push(int32_t Id) {
  Pending += T.tokenBytes(Id);
  std::string Out;
  drainUtf8(Pending, Out, /*Final=*/false);
  return Out;
}

std::string StreamDecoder::finish() {
  std::string Out;
  drainUtf8(Pending, Out, /*Final=*/true);
  return Out;
}

} // namespace lumen::model
