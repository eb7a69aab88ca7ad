//===- SyntheticModel.cpp - Random-weight models ---------------------------===//
#include "lumen/Model/SyntheticModel.h"

#include "lumen/GGUF/GGUFWriter.h"
#include "lumen/GGUF/Quantize.h"
#include "lumen/Quantize/RowQuantizer.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_format.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <functional>
#include <memory>
#include <thread>

namespace lumen::model {

using gguf::BlockQ8_0;
using gguf::GGUFWriter;
using gguf::TensorType;

namespace {
ModelShape shape(const char *Name, uint32_t Layers, uint32_t Dim, uint32_t FFN, uint32_t Heads,
                 uint32_t KVHeads, bool Tied, uint32_t Vocab = 151936, const char *Arch = "qwen2",
                 uint32_t HeadDim = 0) {
  ModelShape S;
  S.Name = Name;
  S.Arch = findArchitecture(Arch);
  S.Layers = Layers;
  S.Dim = Dim;
  S.FFN = FFN;
  S.Heads = Heads;
  S.KVHeads = KVHeads;
  S.HeadDim = HeadDim ? HeadDim : Dim / Heads;
  S.Vocab = Vocab;
  S.ContextLength = 32768;
  S.RopeBase = 1e6f;
  S.RmsEps = 1e-6f;
  S.TiedOutput = Tied;
  return S;
}

/// Llama 3.x: RoPE base 500000, epsilon 1e-5, 128k context, 128256 tokens.
ModelShape llama3(const char *Name, uint32_t Layers, uint32_t Dim, uint32_t FFN, uint32_t Heads, uint32_t KVHeads,
                  bool Tied, uint32_t HeadDim, float RopeFactor) {
  ModelShape S = shape(Name, Layers, Dim, FFN, Heads, KVHeads, Tied, 128256, "llama", HeadDim);
  S.RopeBase = 500000.0f;
  S.RmsEps = 1e-5f;
  S.ContextLength = 131072;
  S.Llama3RopeFactor = RopeFactor;
  return S;
}
} // namespace

absl::StatusOr<ModelShape> syntheticPreset(std::string_view Name) {
  const std::string Lower = absl::AsciiStrToLower(std::string(Name));
  const std::string_view Preset = Lower;
  if (Preset == "qwen2.5-0.5b")
    return shape("Qwen2.5-0.5B-Instruct", 24, 896, 4864, 14, 2, true);
  if (Preset == "qwen2.5-1.5b")
    return shape("Qwen2.5-1.5B-Instruct", 28, 1536, 8960, 12, 2, true);
  if (Preset == "qwen2.5-3b")
    return shape("Qwen2.5-3B-Instruct", 36, 2048, 11008, 16, 2, true);
  if (Preset == "qwen2.5-7b")
    return shape("Qwen2.5-7B-Instruct", 28, 3584, 18944, 28, 4, false, 152064);
  // Qwen3: 128-wide heads whatever the embedding (0.6B: 16 x 128 on 1024).
  if (Preset == "qwen3-0.6b")
    return shape("Qwen3-0.6B", 28, 1024, 3072, 16, 8, true, 151936, "qwen3", 128);
  if (Preset == "qwen3-1.7b")
    return shape("Qwen3-1.7B", 28, 2048, 6144, 16, 8, true, 151936, "qwen3", 128);
  if (Preset == "llama3.2-1b")
    return llama3("Llama-3.2-1B-Instruct", 16, 2048, 8192, 32, 8, true, 64, 32);
  if (Preset == "llama3.2-3b")
    return llama3("Llama-3.2-3B-Instruct", 28, 3072, 8192, 24, 8, true, 128, 32);
  if (Preset == "llama3.1-8b")
    return llama3("Llama-3.1-8B-Instruct", 32, 4096, 14336, 32, 8, false, 128, 8);
  if (Preset == "tiny") // The shape of shared/fixtures/tiny-qwen2.gguf.
    return shape("Qwen2-tiny", 3, 192, 512, 3, 1, true);
  std::string Names;
  for (const std::string &N : syntheticPresetNames())
    absl::StrAppend(&Names, Names.empty() ? "" : ", ", N);
  return absl::InvalidArgumentError(absl::StrFormat("unknown preset '%s' (expected one of %s)", Preset, Names));
}

std::vector<std::string> syntheticPresetNames() {
  return {"qwen2.5-0.5b", "qwen2.5-1.5b", "qwen2.5-3b",  "qwen2.5-7b",  "qwen3-0.6b",
          "qwen3-1.7b",   "llama3.2-1b",  "llama3.2-3b", "llama3.1-8b", "tiny"};
}

namespace {

// The weight recipe. Chosen so a pre-norm network of any depth keeps unit-rms
// block inputs and a residual stream of rms ~6, logits of std ~3 with a clear
// top-1 margin, and later layers that damp rather than amplify rounding noise.
struct Recipe {
  static constexpr double LogitStd = 3.0;      // Std of the final logits.
  static constexpr double OutNormGain = 5.0;   // Mean of output_norm (small tied embeddings).
  static constexpr double EmbedTau = 0.3;      // Log-normal spread of embedding row norms.
  static constexpr double NormNoise = 0.05;    // Relative std of RMSNorm weights.
  static constexpr double QKGain = 1.25;       // Attention score std ~ QKGain^2.
  static constexpr double QKBiasStd = 0.05;
  static constexpr double VBiasStd = 0.02;
  static constexpr double FFNGain = 1.0 / 0.6; // rms(silu(g) * u) ~ 0.6 for unit g, u.
  static constexpr double SpecialTokenScale = 0.5;
  static constexpr double UnusedTokenScale = 0.1;
};

/// Residual-branch scale of layer I: decays as (I+1)^-1/2 with the total
/// energy of a uniform sqrt(24/L), so depth does not change the final rms.
double branchScale(uint32_t I, uint32_t L) {
  double Sum = 0;
  for (uint32_t J = 1; J <= L; ++J)
    Sum += 1.0 / J;
  return std::sqrt(24.0 / L) * std::sqrt(L / Sum) / std::sqrt(I + 1.0);
}

uint64_t splitMix(uint64_t &State) {
  uint64_t Z = (State += 0x9e3779b97f4a7c15ull);
  Z = (Z ^ (Z >> 30)) * 0xbf58476d1ce4e5b9ull;
  Z = (Z ^ (Z >> 27)) * 0x94d049bb133111ebull;
  return Z ^ (Z >> 31);
}

uint64_t hashName(uint64_t Seed, std::string_view Name) {
  uint64_t H = 0xcbf29ce484222325ull ^ Seed;
  for (char C : Name)
    H = (H ^ static_cast<uint8_t>(C)) * 0x100000001b3ull;
  return splitMix(H);
}

/// xoshiro256** with Box-Muller normals; one stream per (tensor, row), so the
/// bytes do not depend on how rows are split across threads.
class Normal {
public:
  explicit Normal(uint64_t Seed) {
    for (uint64_t &W : S)
      W = splitMix(Seed);
  }
  double next() {
    if (HasSpare) {
      HasSpare = false;
      return Spare;
    }
    double U1 = (static_cast<double>(bits() >> 11) + 1.0) * 0x1.0p-53; // (0, 1]
    double U2 = static_cast<double>(bits() >> 11) * 0x1.0p-53;
    double R = std::sqrt(-2.0 * std::log(U1));
    Spare = R * std::sin(2 * M_PI * U2);
    HasSpare = true;
    return R * std::cos(2 * M_PI * U2);
  }

private:
  uint64_t bits() {
    uint64_t Result = std::rotl(S[1] * 5, 7) * 9;
    uint64_t T = S[1] << 17;
    S[2] ^= S[0];
    S[3] ^= S[1];
    S[1] ^= S[2];
    S[0] ^= S[3];
    S[2] ^= T;
    S[3] = std::rotl(S[3], 45);
    return Result;
  }
  uint64_t S[4];
  double Spare = 0;
  bool HasSpare = false;
};

uint64_t rowSeed(uint64_t TensorSeed, int64_t Row) {
  uint64_t S = TensorSeed + static_cast<uint64_t>(Row) * 0xd1b54a32d192ed03ull;
  return splitMix(S);
}

/// A matrix of Rows rows of K gaussians, row r scaled by Std * RowScale[r],
/// stored as Type.
GGUFWriter::RowFiller gaussianRows(const std::string &Name, uint64_t Seed, int64_t K, double Std,
                                   std::shared_ptr<const std::vector<float>> RowScale, TensorType Type,
                                   unsigned Threads, std::function<absl::Status(int64_t)> OnRows) {
  auto Source = [=](int64_t Row, float *Out) {
    const double S = Std * (RowScale ? (*RowScale)[Row] : 1.0);
    Normal G(rowSeed(Seed, Row));
    for (int64_t I = 0; I < K; ++I)
      Out[I] = static_cast<float>(S * G.next());
    return absl::OkStatus();
  };
  quant::RowQuantizerOptions Options;
  Options.Threads = Threads;
  Options.OnRows = std::move(OnRows);
  return quant::quantizedRows(Name, Type, K, Source, Options);
}

/// An F32 vector of N values Mean + Std * gaussian.
GGUFWriter::RowFiller gaussianF32(uint64_t Seed, int64_t N, double Mean, double Std) {
  return [=](int64_t, int64_t, uint8_t *Out) {
    Normal G(rowSeed(Seed, 0));
    for (int64_t I = 0; I < N; ++I) {
      float X = static_cast<float>(Mean + Std * G.next());
      std::memcpy(Out + I * 4, &X, 4);
    }
    return absl::OkStatus();
  };
}

// Token types as llama.cpp numbers them.
constexpr int32_t kTokenNormal = 1, kTokenControl = 3, kTokenUserDefined = 4, kTokenUnused = 5;

/// GPT-2's byte-to-unicode map: printable Latin-1 bytes stand for themselves,
/// the rest are shifted to U+0100 upwards, so every byte is a visible token.
std::string byteToken(uint8_t B) {
  auto Printable = [](unsigned C) {
    return (C >= '!' && C <= '~') || (C >= 0xA1 && C <= 0xAC) || (C >= 0xAE && C <= 0xFF);
  };
  unsigned Code = B;
  if (!Printable(B)) {
    unsigned Shift = 0;
    for (unsigned C = 0; C < B; ++C)
      Shift += !Printable(C);
    Code = 256 + Shift;
  }
  std::string Utf8;
  if (Code < 0x80) {
    Utf8 += static_cast<char>(Code);
  } else {
    Utf8 += static_cast<char>(0xC0 | (Code >> 6));
    Utf8 += static_cast<char>(0x80 | (Code & 0x3F));
  }
  return Utf8;
}

constexpr std::string_view kChatMLTemplate =
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + "
    "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|im_start|>assistant\\n' }}{% endif %}";

/// ChatML with Qwen3's switch: enable_thinking=false opens the reply with an
/// empty think block.
constexpr std::string_view kQwen3Template =
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + "
    "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|im_start|>assistant\\n' }}{%- if enable_thinking is defined and enable_thinking is false %}"
    "{{- '<think>\\n\\n</think>\\n\\n' }}{%- endif %}{% endif %}";

constexpr std::string_view kLlama3Template =
    "{{- bos_token }}{% for message in messages %}{{ '<|start_header_id|>' + message['role'] + "
    "'<|end_header_id|>\n\n' + message['content'] | trim + '<|eot_id|>' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}";

/// Vocab tokens: the 256 byte tokens, then unused [PAD] ids (their types).
std::pair<std::vector<std::string>, std::vector<int32_t>> byteLevelVocabulary(uint32_t Vocab) {
  std::vector<std::string> Tokens(Vocab);
  std::vector<int32_t> Types(Vocab, kTokenUnused);
  for (uint32_t I = 0; I < Vocab; ++I)
    Tokens[I] = absl::StrFormat("[PAD%d]", I);
  for (unsigned B = 0; B < 256; ++B) {
    Tokens[B] = byteToken(static_cast<uint8_t>(B));
    Types[B] = kTokenNormal;
  }
  return {std::move(Tokens), std::move(Types)};
}

/// Llama 3's vocabulary: 256 byte tokens, its specials at their real ids (or
/// at the end of a smaller vocabulary), unused [PAD] ids up to Vocab.
std::vector<int32_t> writeLlama3ByteLevelTokenizer(GGUFWriter &W, uint32_t Vocab) {
  auto [Tokens, Types] = byteLevelVocabulary(Vocab);
  // <|begin_of_text|> 128000, <|end_of_text|> 128001, the header pair 128006-7, <|eot_id|> 128009.
  const uint32_t First = Vocab >= 128256 ? 128000 : Vocab - 10;
  const std::pair<uint32_t, const char *> Specials[] = {{0, "<|begin_of_text|>"},    {1, "<|end_of_text|>"},
                                                        {6, "<|start_header_id|>"}, {7, "<|end_header_id|>"},
                                                        {8, "<|eom_id|>"},          {9, "<|eot_id|>"}};
  for (auto [Off, Text] : Specials) {
    Tokens[First + Off] = Text;
    Types[First + Off] = kTokenControl;
  }
  W.setString("tokenizer.ggml.model", "gpt2");
  W.setString("tokenizer.ggml.pre", "llama-bpe");
  W.setStringArray("tokenizer.ggml.tokens", Tokens);
  W.setI32Array("tokenizer.ggml.token_type", Types);
  W.setStringArray("tokenizer.ggml.merges", {});
  W.setU32("tokenizer.ggml.bos_token_id", First);
  W.setU32("tokenizer.ggml.eos_token_id", First + 9);
  W.setBool("tokenizer.ggml.add_bos_token", true);
  W.setString("tokenizer.chat_template", kLlama3Template);
  return Types;
}

/// Llama 3.1's RoPE frequency divisors for a scaling Factor (low 1, high 4,
/// over an 8192-token original context): 1 for wavelengths under
/// 8192 / 4, Factor over 8192, a smooth blend between.
std::vector<float> llama3RopeFreqs(uint32_t HeadDim, float Base, float Factor) {
  constexpr double Low = 1, High = 4, OldContext = 8192;
  std::vector<float> Out;
  for (uint32_t I = 0; I < HeadDim; I += 2) {
    const double Freq = 1.0 / std::pow(double(Base), double(I) / HeadDim);
    const double Wavelen = 2 * M_PI / Freq;
    if (Wavelen < OldContext / High) {
      Out.push_back(1.0f);
    } else if (Wavelen > OldContext / Low) {
      Out.push_back(Factor);
    } else {
      const double Smooth = (OldContext / Wavelen - Low) / (High - Low);
      Out.push_back(static_cast<float>(1.0 / ((1 - Smooth) / Factor + Smooth)));
    }
  }
  return Out;
}

/// Writes a byte-level vocabulary: 256 byte tokens, Qwen's three ChatML
/// specials at their real ids (or at the end of a smaller vocabulary), and
/// for Qwen3 <think> and </think> (151667-8) and its thinking template;
/// unused [PAD] ids up to Vocab. No merges.
std::vector<int32_t> writeByteLevelTokenizer(GGUFWriter &W, uint32_t Vocab, bool Qwen3) {
  auto [Tokens, Types] = byteLevelVocabulary(Vocab);
  const uint32_t EndOfText = Vocab > 151645 ? 151643 : Vocab - 3;
  const char *Specials[] = {"<|endoftext|>", "<|im_start|>", "<|im_end|>"};
  for (uint32_t I = 0; I < 3; ++I) {
    Tokens[EndOfText + I] = Specials[I];
    Types[EndOfText + I] = kTokenControl;
  }
  if (Qwen3 && Vocab > 151668) // Added tokens, not control ones, as in Qwen3's tokenizer.
    for (auto [Id, Text] : {std::pair{151667u, "<think>"}, {151668u, "</think>"}}) {
      Tokens[Id] = Text;
      Types[Id] = kTokenUserDefined;
    }
  W.setString("tokenizer.ggml.model", "gpt2");
  W.setString("tokenizer.ggml.pre", "qwen2");
  W.setStringArray("tokenizer.ggml.tokens", Tokens);
  W.setI32Array("tokenizer.ggml.token_type", Types);
  W.setStringArray("tokenizer.ggml.merges", {});
  W.setU32("tokenizer.ggml.eos_token_id", EndOfText + 2);
  W.setU32("tokenizer.ggml.padding_token_id", EndOfText);
  W.setU32("tokenizer.ggml.bos_token_id", EndOfText);
  W.setBool("tokenizer.ggml.add_bos_token", false);
  W.setString("tokenizer.chat_template", Qwen3 ? kQwen3Template : kChatMLTemplate);
  return Types;
}

/// Copies every tokenizer.* key of From; returns the token types.
absl::StatusOr<std::vector<int32_t>> copyTokenizer(GGUFWriter &W, const gguf::GGUFFile &From) {
  absl::StatusOr<const gguf::Value *> Types =
      From.getArray("tokenizer.ggml.token_type", gguf::ValueType::I32);
  if (!Types.ok())
    return Types.status();
  for (const gguf::KeyValue &KV : From.metadata())
    if (KV.Key.starts_with("tokenizer."))
      W.setValue(KV.Key, KV.Val);
  std::vector<int32_t> Out((*Types)->Count);
  for (uint64_t I = 0; I < Out.size(); ++I)
    Out[I] = static_cast<int32_t>((*Types)->intAt(I));
  return Out;
}

absl::Status validate(const ModelShape &S) {
  auto Bad = [&](const std::string &What) {
    return absl::InvalidArgumentError(absl::StrFormat("synthetic %s: %s", S.Name, What));
  };
  if (!S.Arch)
    return Bad("no architecture");
  if (!S.Layers || !S.Dim || !S.FFN || !S.Heads || !S.KVHeads || !S.Vocab || !S.HeadDim)
    return Bad("every dimension must be positive");
  if (!S.Arch->HeadDimKey && S.Dim % S.Heads)
    return Bad(absl::StrFormat("dim %d is not divisible by %d heads", S.Dim, S.Heads));
  if (S.Heads % S.KVHeads)
    return Bad(absl::StrFormat("%d heads are not divisible by %d KV heads", S.Heads, S.KVHeads));
  if ((S.Arch->HeadDimKey ? S.HeadDim : S.Dim / S.Heads) % 2)
    return Bad("head dim must be even for RoPE");
  if (S.Dim % gguf::kQ8BlockSize || S.FFN % gguf::kQ8BlockSize ||
      (S.Arch->HeadDimKey && S.qDim() % gguf::kQ8BlockSize))
    return Bad("dim, ffn and heads x head dim must be multiples of 32 (Q8_0 blocks)");
  return absl::OkStatus();
}

} // namespace

absl::Status writeSyntheticModel(const SynthOptions &Options, const std::string &Path) {
  ModelShape S = Options.Shape;
  unsigned Threads = Options.Threads ? Options.Threads : std::max(1u, std::thread::hardware_concurrency());
  if (!S.Arch)
    S.Arch = findArchitecture("qwen2");
  const Architecture &A = *S.Arch;
  const std::string P = std::string(A.Name) + ".";
  GGUFWriter W(32);
  W.setString("general.architecture", A.Name);
  W.setString("general.type", "model");
  W.setString("general.name",
              absl::StrFormat("%s (synthetic random weights) seed=%d", S.Name, Options.Seed));
  W.setU32("general.file_type", quant::presetInfo(Options.Type).FileType);
  W.setU32("general.quantization_version", 2);
  W.setU32("general.alignment", 32);
  W.setU32(P + "block_count", S.Layers);
  W.setU32(P + "context_length", S.ContextLength);
  W.setU32(P + "embedding_length", S.Dim);
  W.setU32(P + "feed_forward_length", S.FFN);
  W.setU32(P + "attention.head_count", S.Heads);
  W.setU32(P + "attention.head_count_kv", S.KVHeads);
  W.setF32(P + "rope.freq_base", S.RopeBase);
  W.setF32(P + "attention.layer_norm_rms_epsilon", S.RmsEps);
  if (A.HeadDimKey) {
    W.setU32(P + "attention.key_length", S.HeadDim);
    W.setU32(P + "attention.value_length", S.HeadDim);
  }
  if (A.Rope == RopeStyle::Pairs) { // As llama.cpp's converter writes Llama files.
    W.setU32(P + "rope.dimension_count", S.HeadDim);
    W.setU32(P + "vocab_size", S.Vocab);
  }

  std::vector<int32_t> TokenTypes;
  if (Options.TokenizerFrom) {
    absl::StatusOr<std::vector<int32_t>> T = copyTokenizer(W, *Options.TokenizerFrom);
    if (!T.ok())
      return T.status();
    TokenTypes = std::move(*T);
    S.Vocab = static_cast<uint32_t>(TokenTypes.size());
  } else {
    const uint32_t Specials = A.Rope == RopeStyle::Pairs ? 10 : 3; // Llama 3's 128000..128009, Qwen's 3.
    if (S.Vocab < 256 + Specials)
      return absl::InvalidArgumentError(
          absl::StrFormat("vocab %d is too small for 256 byte tokens and %d specials", S.Vocab, Specials));
    TokenTypes = A.Rope == RopeStyle::Pairs ? writeLlama3ByteLevelTokenizer(W, S.Vocab)
                                            : writeByteLevelTokenizer(W, S.Vocab, std::string_view(A.Name) == "qwen3");
  }
  if (absl::Status St = validate(S); !St.ok())
    return St;
  if (!A.HeadDimKey) // The head dimension is embedding / heads.
    S.HeadDim = S.Dim / S.Heads;

  const int64_t D = S.Dim, F = S.FFN, V = S.Vocab, QD = S.qDim(), HD = S.HeadDim;
  const int64_t KVDim = S.KVHeads * HD;
  const double InvSqrtD = 1.0 / std::sqrt(D), InvSqrtF = 1.0 / std::sqrt(F);
  const uint64_t Seed = Options.Seed;

  // Per-token embedding norms: log-normal for ordinary tokens (a heavier
  // upper tail, like a trained LM's priors), small for special and unused ones.
  auto EmbedScale = std::make_shared<std::vector<float>>(V);
  {
    Normal G(hashName(Seed, "token_scale"));
    for (int64_t T = 0; T < V; ++T) {
      double N = G.next();
      int32_t Type = TokenTypes[T];
      (*EmbedScale)[T] = Type == kTokenControl || Type == kTokenUserDefined
                             ? Recipe::SpecialTokenScale
                         : Type == kTokenUnused
                             ? Recipe::UnusedTokenScale
                             : static_cast<float>(std::exp(Recipe::EmbedTau * N -
                                                           Recipe::EmbedTau * Recipe::EmbedTau));
    }
  }
  const double EmbedStd = Recipe::LogitStd / (Recipe::OutNormGain * std::sqrt(D));

  quant::ModelFacts Facts;
  Facts.Layers = S.Layers, Facts.Heads = S.Heads, Facts.KVHeads = S.KVHeads, Facts.HasOutput = !S.TiedOutput;
  const quant::TensorTypePlan Plan(Options.Type, Facts);
  // Progress over the matrices' elements (their total known once all are added).
  struct Progress {
    uint64_t Done = 0, Total = 0;
  };
  auto Counts = std::make_shared<Progress>();
  auto Mat = [&](const std::string &Name, int64_t In, int64_t Out, double Std,
                 std::shared_ptr<const std::vector<float>> RowScale = nullptr) {
    const int64_t Dims[] = {In, Out};
    const TensorType Type = Plan.typeFor(Name, Dims).value_or(TensorType::F32);
    Counts->Total += static_cast<uint64_t>(In) * Out;
    auto OnRows = [Counts, In, &Options](int64_t Rows) {
      Counts->Done += static_cast<uint64_t>(Rows) * In;
      return Options.OnProgress ? Options.OnProgress(Counts->Done, Counts->Total) : absl::OkStatus();
    };
    return W.addTensor(Name, Type, {In, Out},
                       gaussianRows(Name, hashName(Seed, Name), In, Std, std::move(RowScale), Type, Threads, OnRows));
  };
  auto Vec = [&](const std::string &Name, int64_t N, double Mean, double Std) {
    return W.addTensor(Name, TensorType::F32, {N}, gaussianF32(hashName(Seed, Name), N, Mean, Std));
  };

  absl::Status St = Mat("token_embd.weight", D, V, EmbedStd, EmbedScale);
  if (St.ok())
    St = Vec("output_norm.weight", D, Recipe::OutNormGain, Recipe::OutNormGain * Recipe::NormNoise);
  if (St.ok() && !S.TiedOutput)
    St = Mat("output.weight", D, V, EmbedStd, EmbedScale);
  std::vector<float> RopeFreqs;
  if (St.ok() && A.RopeFreqs && S.Llama3RopeFactor > 0) {
    RopeFreqs = llama3RopeFreqs(HD, S.RopeBase, S.Llama3RopeFactor);
    St = W.addTensor("rope_freqs.weight", TensorType::F32, {HD / 2},
                     std::span(reinterpret_cast<const uint8_t *>(RopeFreqs.data()), RopeFreqs.size() * 4));
  }
  for (uint32_t L = 0; L < S.Layers && St.ok(); ++L) {
    std::string B = absl::StrFormat("blk.%d.", L);
    double Branch = branchScale(L, S.Layers);
    // With per-head q/k norms (Qwen3) the norms' weights set the score
    // scale instead of the projections'. The tensors in llama.cpp's order.
    const double QKScale = A.QKNorm ? InvSqrtD : Recipe::QKGain * InvSqrtD;
    auto Then = [&](const std::function<absl::Status()> &Write) {
      if (St.ok())
        St = Write();
    };
    Then([&] { return Vec(B + "attn_norm.weight", D, 1.0, Recipe::NormNoise); });
    Then([&] { return Mat(B + "attn_q.weight", D, QD, QKScale); });
    const bool Biases = A.QKVBias == Presence::Required;
    if (Biases)
      Then([&] { return Vec(B + "attn_q.bias", QD, 0.0, Recipe::QKBiasStd); });
    Then([&] { return Mat(B + "attn_k.weight", D, KVDim, QKScale); });
    if (Biases)
      Then([&] { return Vec(B + "attn_k.bias", KVDim, 0.0, Recipe::QKBiasStd); });
    Then([&] { return Mat(B + "attn_v.weight", D, KVDim, InvSqrtD); });
    if (Biases)
      Then([&] { return Vec(B + "attn_v.bias", KVDim, 0.0, Recipe::VBiasStd); });
    if (A.QKNorm) {
      Then([&] { return Vec(B + "attn_q_norm.weight", HD, Recipe::QKGain, Recipe::QKGain * Recipe::NormNoise); });
      Then([&] { return Vec(B + "attn_k_norm.weight", HD, Recipe::QKGain, Recipe::QKGain * Recipe::NormNoise); });
    }
    Then([&] { return Mat(B + "attn_output.weight", QD, D, Branch / std::sqrt(double(QD))); });
    Then([&] { return Vec(B + "ffn_norm.weight", D, 1.0, Recipe::NormNoise); });
    Then([&] { return Mat(B + "ffn_gate.weight", D, F, InvSqrtD); });
    Then([&] { return Mat(B + "ffn_up.weight", D, F, InvSqrtD); });
    Then([&] { return Mat(B + "ffn_down.weight", F, D, Branch * Recipe::FFNGain * InvSqrtF); });
  }
  if (!St.ok())
    return St;
  return W.write(Path);
}

} // namespace lumen::model
