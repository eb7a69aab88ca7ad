//===- gguf_fuzzer.cpp - GGUF parsing from arbitrary bytes -----------------===//
//
// Parses the input as a GGUF file, and when it parses, walks everything a
// loader would touch: every value's rendering, typed accessors, tensor data
// ranges, and the Qwen2 config, tokenizer and weight checks.
//
//===----------------------------------------------------------------------===//
#include "lumen/GGUF/GGUFFile.h"
#include "lumen/Model/TransformerModel.h"

#include <cstdint>
#include <cstdlib>
#include <span>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *Data, size_t Size) {
  auto F = lumen::gguf::GGUFFile::parse(std::span<const uint8_t>(Data, Size), "fuzz.gguf");
  if (!F.ok())
    return 0;
  volatile size_t Sink = 0;
  for (const lumen::gguf::KeyValue &KV : (*F)->metadata()) {
    Sink = Sink + KV.Val.toString(8).size();
    (void)(*F)->getU32(KV.Key);
    (void)(*F)->getF32(KV.Key);
    (void)(*F)->getString(KV.Key);
  }
  for (const lumen::gguf::TensorInfo &T : (*F)->tensors()) {
    // Touch the first and last byte of every tensor: must be inside the input.
    if (T.NumBytes) {
      if (T.Data < Data || T.Data + T.NumBytes > Data + Size)
        std::abort();
      Sink = Sink + T.Data[0] + T.Data[T.NumBytes - 1];
    }
  }
  (void)lumen::model::TransformerModel::fromFile(std::move(*F));
  return 0;
}
