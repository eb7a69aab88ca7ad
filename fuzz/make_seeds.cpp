//===- make_seeds.cpp - Seed corpus for the GGUF fuzzer --------------------===//
//
//   make_seeds DIR
//
// Small GGUF files from the writer: every value type, nested arrays, a few
// tensors of several types, and a miniature Qwen2 model layout.
//
//===----------------------------------------------------------------------===//
#include "lumen/GGUF/GGUFWriter.h"

#include <cstdio>
#include <string>
#include <vector>

using namespace lumen::gguf;

int main(int Argc, char **Argv) {
  if (Argc != 2)
    return 2;
  std::string Dir = Argv[1];
  static std::vector<uint8_t> Zeros(64 * 64 * 4, 0);
  {
    GGUFWriter W;
    W.setString("general.architecture", "test");
    W.setU32("a.u32", 7);
    W.setI32("a.i32", -7);
    W.setU64("a.u64", 1ull << 40);
    W.setF32("a.f32", 1.5f);
    W.setBool("a.bool", true);
    W.setStringArray("a.strs", {"x", "yz", ""});
    W.setI32Array("a.ints", std::vector<int32_t>{1, 2, 3});
    (void)W.addTensor("t.f32", TensorType::F32, {32, 2}, std::span<const uint8_t>(Zeros.data(), 256));
    (void)W.addTensor("t.q8", TensorType::Q8_0, {64, 2}, std::span<const uint8_t>(Zeros.data(), 136));
    (void)W.addTensor("t.f16", TensorType::F16, {32}, std::span<const uint8_t>(Zeros.data(), 64));
    if (!W.write(Dir + "/values.gguf").ok()) return 1;
  }
  {
    // A 1-layer, 32-dim Qwen2 with an 8-token vocabulary.
    GGUFWriter W;
    W.setString("general.architecture", "qwen2");
    for (auto [K, V] : {std::pair{"qwen2.block_count", 1u}, {"qwen2.embedding_length", 32u},
                        {"qwen2.feed_forward_length", 64u}, {"qwen2.attention.head_count", 2u},
                        {"qwen2.attention.head_count_kv", 1u}, {"qwen2.context_length", 64u}})
      W.setU32(K, V);
    W.setF32("qwen2.rope.freq_base", 10000.0f);
    W.setF32("qwen2.attention.layer_norm_rms_epsilon", 1e-6f);
    W.setString("tokenizer.ggml.model", "gpt2");
    W.setStringArray("tokenizer.ggml.tokens", {"a", "b", "ab", "<|im_end|>", "c", "d", "e", "f"});
    W.setI32Array("tokenizer.ggml.token_type", std::vector<int32_t>{1, 1, 1, 3, 1, 1, 1, 1});
    W.setStringArray("tokenizer.ggml.merges", {"a b"});
    W.setU32("tokenizer.ggml.eos_token_id", 3);
    auto Mat = [&](const std::string &N, int64_t In, int64_t Out, TensorType T) {
      int64_t Bytes = T == TensorType::Q8_0 ? In / 32 * 34 * Out : In * Out * 4;
      static std::vector<uint8_t> Buf(1 << 20, 0);
      (void)W.addTensor(N, T, {In, Out}, std::span<const uint8_t>(Buf.data(), Bytes));
    };
    Mat("token_embd.weight", 32, 8, TensorType::Q8_0);
    (void)W.addTensor("output_norm.weight", TensorType::F32, {32}, std::span<const uint8_t>(Zeros.data(), 128));
    for (const char *N : {"attn_norm", "ffn_norm", "attn_q.bias"})
      (void)W.addTensor(std::string("blk.0.") + N, TensorType::F32, {32}, std::span<const uint8_t>(Zeros.data(), 128));
    for (const char *N : {"attn_k.bias", "attn_v.bias"})
      (void)W.addTensor(std::string("blk.0.") + N, TensorType::F32, {16}, std::span<const uint8_t>(Zeros.data(), 64));
    Mat("blk.0.attn_q.weight", 32, 32, TensorType::Q8_0);
    Mat("blk.0.attn_k.weight", 32, 16, TensorType::Q8_0);
    Mat("blk.0.attn_v.weight", 32, 16, TensorType::Q8_0);
    Mat("blk.0.attn_output.weight", 32, 32, TensorType::Q8_0);
    Mat("blk.0.ffn_gate.weight", 32, 64, TensorType::Q8_0);
    Mat("blk.0.ffn_up.weight", 32, 64, TensorType::Q8_0);
    Mat("blk.0.ffn_down.weight", 64, 32, TensorType::F32);
    if (!W.write(Dir + "/mini-qwen2.gguf").ok()) return 1;
  }
  return 0;
}
