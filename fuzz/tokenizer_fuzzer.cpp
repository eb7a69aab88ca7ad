//===- tokenizer_fuzzer.cpp - Encode and decode arbitrary input ------------===//
//
// With the real Qwen tokenizer (LUMEN_FUZZ_TOKENIZER=GGUF, default the shared
// fixture): the first byte picks encode with or without special tokens, or
// decode of the rest read as int32 ids (out-of-range ones included) through
// the streaming decoder. Encoding must round-trip byte for byte when no
// special tokens are parsed.
//
//===----------------------------------------------------------------------===//
#include "lumen/GGUF/GGUFFile.h"
#include "lumen/Model/Tokenizer.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>

namespace {
std::unique_ptr<lumen::gguf::GGUFFile> File;
std::unique_ptr<lumen::model::Tokenizer> Tok;
} // namespace

extern "C" int LLVMFuzzerInitialize(int *, char ***) {
  const char *Path = std::getenv("LUMEN_FUZZ_TOKENIZER");
  auto F = lumen::gguf::GGUFFile::open(Path ? Path : LUMEN_DEFAULT_TOKENIZER);
  if (!F.ok()) {
    std::fprintf(stderr, "tokenizer_fuzzer: %s (set LUMEN_FUZZ_TOKENIZER)\n",
                 std::string(F.status().message()).c_str());
    std::exit(1);
  }
  File = std::move(*F);
  auto T = lumen::model::Tokenizer::fromGGUF(*File);
  if (!T.ok())
    std::exit(1);
  Tok = std::move(*T);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *Data, size_t Size) {
  if (Size == 0)
    return 0;
  const uint8_t Mode = Data[0] % 3;
  std::string_view Text(reinterpret_cast<const char *>(Data + 1), Size - 1);
  if (Mode == 0 || Mode == 1) {
    std::vector<int32_t> Ids = Tok->encode(Text, /*ParseSpecial=*/Mode == 1);
    for (int32_t Id : Ids)
      if (Id < 0 || Id >= Tok->vocabSize())
        std::abort();
    // Without control-token parsing every byte comes back (NFC aside: only
    // for input that NFC leaves alone, i.e. ASCII).
    bool Ascii = true;
    for (char C : Text)
      Ascii &= static_cast<unsigned char>(C) < 0x80;
    if (Mode == 0 && Ascii && Tok->decode(Ids) != Text)
      std::abort();
    return 0;
  }
  lumen::model::StreamDecoder D(*Tok);
  std::string Out;
  for (size_t I = 1; I + 4 <= Size; I += 4) {
    int32_t Id;
    std::memcpy(&Id, Data + I, 4);
    Out += D.push(Id);
  }
  Out += D.finish();
  return 0;
}
