//===- ReadmeClaimsTest.cpp - What the README says lumen-jit does ----------===//
//
// Each test holds one of the README's claims about the command line to what
// a user would see, so that the claim cannot break unnoticed.
//
//===----------------------------------------------------------------------===//
#include "CliHarness.h"
#include "Fixtures.h"

#include "lumen/Codegen/CpuFeatures.h"

#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "nlohmann/json.hpp"
#include "gtest/gtest.h"

#include <filesystem>
#include <set>

namespace {

using namespace lumen::test;

const std::string kChatHi = "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
                            "<|im_start|>assistant\n";

std::vector<int32_t> tokenizeTiny(const std::string &Text) {
  Result R = lumenJit({"tokenize", "-m", kTiny, "-p", Text});
  EXPECT_EQ(R.Exit, 0) << R.Err;
  return parseIds(R.Out);
}

/// eval's JSON for the last position of Ids, with extra flags.
nlohmann::json evalLast(const std::vector<int32_t> &Ids, std::vector<std::string> Extra = {}) {
  std::vector<std::string> Args = {"eval", "-m", kTiny, "-t", "1", "--top", "5", "--tokens", absl::StrJoin(Ids, ",")};
  Args.insert(Args.end(), Extra.begin(), Extra.end());
  Result R = lumenJit(Args);
  EXPECT_EQ(R.Exit, 0) << R.Err;
  return R.Exit == 0 ? nlohmann::json::parse(R.Out)["positions"][0] : nlohmann::json();
}

TEST(ReadmeClaimsTest, BenchJsonWithSeveralThreadCounts) {
  const std::string Model = kTmp + "/claims-bench.gguf";
  ASSERT_EQ(lumenJit({"synth", "--preset", "tiny", "-o", Model, "--seed", "4"}).Exit, 0);
  Result R = lumenJit({"bench", "-m", Model, "-p", "8", "-n", "2", "-t", "1,2", "-r", "1", "-o", "json"});
  ASSERT_EQ(R.Exit, 0) << R.Err;
  nlohmann::json J = nlohmann::json::parse(R.Out);
  ASSERT_EQ(J.size(), 4u) << R.Out;
  std::set<std::pair<int, std::string>> Seen;
  for (const auto &Row : J) {
    Seen.insert({Row["threads"].get<int>(), Row["test"].get<std::string>()});
    EXPECT_GT(Row["tps_mean"].get<double>(), 0) << Row;
    EXPECT_GT(Row["weight_gbs"].get<double>(), 0) << Row;
    EXPECT_GT(Row["read_probe_gbs"].get<double>(), 0) << Row;
  }
  EXPECT_EQ(Seen, (std::set<std::pair<int, std::string>>{{1, "pp8"}, {1, "tg2"}, {2, "pp8"}, {2, "tg2"}}));
}

TEST(ReadmeClaimsTest, SystemMessageAndPromptFile) {
  LUMEN_REQUIRE_SHARED(kTiny);
  // --system goes into the template: the prompt is exactly the rendered chat.
  std::vector<int32_t> Ids = tokenizeTiny(kChatHi);
  Result R = lumenJit({"run", "-m", kTiny, "-p", "Hi", "--system", "Be brief.", "-n", "1", "--temp", "0", "-t", "1",
                       "--print-token-ids"});
  ASSERT_EQ(R.Exit, 0) << R.Err;
  EXPECT_NE(R.Err.find("prompt " + std::to_string(Ids.size()) + " tokens"), std::string::npos) << R.Err;
  EXPECT_EQ(parseIds(R.Out), std::vector<int32_t>{evalLast(Ids)["argmax"].get<int32_t>()});
  // -f FILE is the same prompt as -p with the file's text.
  writeFile(kTmp + "/claims-prompt.txt", "Hi");
  Result F = lumenJit({"run", "-m", kTiny, "-f", kTmp + "/claims-prompt.txt", "--system", "Be brief.", "-n", "1",
                       "--temp", "0", "-t", "1", "--print-token-ids"});
  EXPECT_EQ(F.Out, R.Out);
}

TEST(ReadmeClaimsTest, SamplingFlagsReachTheSampler) {
  LUMEN_REQUIRE_SHARED(kTiny);
  auto Run = [](std::vector<std::string> Sampling) {
    std::vector<std::string> Args = {"run", "-m", kTiny, "-p", "Once upon a time", "--raw", "-n", "24", "-t", "1",
                                     "--ignore-eos", "--print-token-ids", "--seed", "3"};
    Args.insert(Args.end(), Sampling.begin(), Sampling.end());
    Result R = lumenJit(Args);
    EXPECT_EQ(R.Exit, 0) << R.Err;
    return parseIds(R.Out);
  };
  const std::vector<int32_t> Greedy = Run({"--temp", "0"});
  ASSERT_EQ(Greedy.size(), 24u);
  // Each of these leaves only the most likely token, whatever the temperature.
  EXPECT_EQ(Run({"--temp", "5", "--top-k", "1"}), Greedy);
  EXPECT_EQ(Run({"--temp", "5", "--top-k", "0", "--top-p", "0.000001", "--min-p", "0"}), Greedy);
  EXPECT_EQ(Run({"--temp", "5", "--top-k", "0", "--top-p", "1", "--min-p", "1"}), Greedy);
  // And without them a hot sampler wanders off.
  EXPECT_NE(Run({"--temp", "5", "--top-k", "0", "--top-p", "1", "--min-p", "0"}), Greedy);
  // A strong repeat penalty keeps greedy decoding from repeating a token in
  // its window, which plain greedy decoding of this model does.
  auto Repeats = [](const std::vector<int32_t> &Ids) { return std::set<int32_t>(Ids.begin(), Ids.end()).size() < Ids.size(); };
  EXPECT_TRUE(Repeats(Greedy));
  EXPECT_FALSE(Repeats(Run({"--temp", "0", "--repeat-penalty", "1000", "--repeat-last-n", "64"})));
}

TEST(ReadmeClaimsTest, WeightPlacementFlagsAlone) {
  LUMEN_REQUIRE_SHARED(kTiny);
  // --norepack alone (file layout in 2 MB pages) and --nohuge_pages alone
  // (repacked in 4 KB pages) compute what the default does.
  std::vector<int32_t> Ids = tokenizeTiny("The capital of France is");
  nlohmann::json Default = evalLast(Ids);
  for (std::vector<std::string> Flags : {std::vector<std::string>{"--norepack"}, {"--nohuge_pages"}, {"--nohuge-pages"}}) {
    nlohmann::json P = evalLast(Ids, Flags);
    EXPECT_EQ(P["argmax"], Default["argmax"]) << Flags[0];
    for (int I = 0; I < 5; ++I)
      EXPECT_NEAR(P["top"][I][1].get<double>(), Default["top"][I][1].get<double>(), 0.05) << Flags[0];
  }
}

TEST(ReadmeClaimsTest, IsaLevelsTheHostHas) {
  LUMEN_REQUIRE_SHARED(kTiny);
  const lumen::codegen::CpuFeatures Host = lumen::codegen::CpuFeatures::host();
  std::vector<int32_t> Ids = tokenizeTiny("The capital of France is");
  nlohmann::json Reference = evalLast(Ids, {"--reference"});
  for (const char *Isa : {"avx2", "avx512", "avx512-vnni"}) {
    SCOPED_TRACE(Isa);
    const bool Has = std::string(Isa) == "avx2" ? Host.AVX2 : std::string(Isa) == "avx512" ? Host.AVX512 : Host.VNNI;
    if (!Has) {
      // The level is refused with a message naming it, and the test says why it does not compute.
      Result R = lumenJit({"eval", "-m", kTiny, "--tokens", "1", "--isa", Isa});
      EXPECT_EQ(R.Exit, 1);
      std::printf("note: this host lacks %s; only its refusal was checked\n", Isa);
      continue;
    }
    nlohmann::json P = evalLast(Ids, {"--isa", Isa});
    EXPECT_EQ(P["argmax"], Reference["argmax"]);
    EXPECT_NEAR(P["top"][0][1].get<double>(), Reference["top"][0][1].get<double>(), 0.5);
    Result R = lumenJit({"run", "-m", kTiny, "-p", "Hi", "-n", "4", "--temp", "0", "-t", "1", "--isa", Isa});
    EXPECT_EQ(R.Exit, 0) << R.Err;
  }
}

TEST(ReadmeClaimsTest, SynthWritesEveryPreset) {
  // qwen2.5-1.5b: 28 layers of 1536, 1.6 GB, its embedding tied as the
  // real model's; checked by its metadata and tensor table, then removed.
  const std::string Out = kTmp + "/claims-1.5b.gguf";
  Result S = lumenJit({"synth", "--preset", "qwen2.5-1.5b", "-o", Out});
  ASSERT_EQ(S.Exit, 0) << S.Err;
  Result I = lumenJit({"inspect", Out, "--tensors"});
  std::filesystem::remove(Out);
  ASSERT_EQ(I.Exit, 0) << I.Err;
  EXPECT_NE(I.Out.find("qwen2.block_count                          u32                28"), std::string::npos) << I.Out;
  EXPECT_NE(I.Out.find("qwen2.embedding_length                     u32                1536"), std::string::npos);
  EXPECT_NE(I.Out.find("qwen2.feed_forward_length                  u32                8960"), std::string::npos);
  EXPECT_NE(I.Out.find(" token_embd.weight "), std::string::npos) << I.Out;
  EXPECT_EQ(I.Out.find(" output.weight "), std::string::npos) << I.Out;
}

} // namespace

namespace {

/// A text of 40 sentences for perplexity (some 600 tokens), written to Path.
std::string perplexityText(const std::string &Path) {
  std::string Text;
  for (int I = 0; I < 40; ++I)
    Text += absl::StrFormat("The quick brown fox jumps over the lazy dog, sentence %d. ", I);
  writeFile(Path, Text);
  return Text;
}

// scripts/perplexity_vs_llama.sh with a stand-in llama-perplexity: the
// same flags to both, their estimates compared; either side's error shown.
TEST(ReadmeClaimsTest, PerplexityAgainstLlamaPerplexityScript) {
  LUMEN_REQUIRE_SHARED(kTiny);
  perplexityText(kTmp + "/claims-pvl.txt");
  const std::string Llama = kTmp + "/pvl-llama", Stand = Llama + "/build/bin/llama-perplexity";
  std::filesystem::create_directories(Llama + "/build/bin");
  auto Script = [&](const std::string &Words) {
    return shell("LUMEN_JIT=" + quote(kBinary) + " bash " + quote(LUMEN_PERPLEXITY_VS_LLAMA_SH) + " " + Words);
  };
  const std::string Args = " " + quote(kTiny) + " " + quote(kTmp + "/claims-pvl.txt") + " -c 64 --chunks 2 -t 1";
  // A stand-in that is lumen-jit itself agrees within 2 %.
  writeFile(Stand, "#!/bin/sh\nexec " + quote(kBinary) + " perplexity \"$@\"\n");
  std::filesystem::permissions(Stand, std::filesystem::perms::owner_all);
  Result Same = Script(quote(Llama) + Args);
  EXPECT_EQ(Same.Exit, 0) << Same.Out << Same.Err;
  EXPECT_NE(Same.Out.find("difference +0.00 %: ok (within 2 %)"), std::string::npos) << Same.Out;
  EXPECT_NE(Same.Out.find("llama-perplexity: Final estimate: PPL = "), std::string::npos) << Same.Out;
  writeFile(Stand, "#!/bin/sh\necho 'main: error: you need at least 128 tokens'\necho 'perf: 1 ms'\n");
  Result NoEstimate = Script(quote(Llama) + Args);
  EXPECT_EQ(NoEstimate.Exit, 1);
  EXPECT_NE(NoEstimate.Err.find("printed no final estimate:\nmain: error: you need at least 128 tokens"),
            std::string::npos)
      << NoEstimate.Err;
  // lumen-jit's own error; a missing llama-perplexity before anything runs; no arguments.
  Result Short = Script(quote(Llama) + " " + quote(kTiny) + " " + quote(kTmp + "/claims-pvl.txt") + " -c 4096");
  EXPECT_EQ(Short.Exit, 1);
  EXPECT_NE(Short.Err.find("lumen-jit perplexity failed:"), std::string::npos) << Short.Err;
  EXPECT_NE(Short.Err.find("(two chunks)"), std::string::npos) << Short.Err;
  Result NoLlama = Script(quote(kTmp + "/no-llama") + Args);
  EXPECT_EQ(NoLlama.Exit, 1);
  EXPECT_NE(NoLlama.Err.find("no llama-perplexity at"), std::string::npos) << NoLlama.Err;
  EXPECT_EQ(Script("").Exit, 2);
}

TEST(ReadmeClaimsTest, PerplexityOfATextFile) {
  LUMEN_REQUIRE_SHARED(kTiny);
  const std::string Text = perplexityText(kTmp + "/claims-ppl.txt");
  const size_t Tokens = tokenizeTiny(Text).size();
  Result R = lumenJit({"perplexity", "-m", kTiny, "-f", kTmp + "/claims-ppl.txt", "-c", "64", "-t", "1"});
  ASSERT_EQ(R.Exit, 0) << R.Err;
  // The final estimate, alone on stdout; the progress on stderr.
  EXPECT_EQ(R.Out.rfind("Final estimate: PPL = ", 0), 0u) << R.Out;
  EXPECT_EQ(std::count(R.Out.begin(), R.Out.end(), '\n'), 1) << R.Out;
  const int64_t Chunks = Tokens / 64;
  EXPECT_NE(R.Out.find(absl::StrFormat("(chunks: %d, %d tokens scored", Chunks, Chunks * 31)), std::string::npos)
      << R.Out;
  EXPECT_NE(R.Err.find(absl::StrFormat("%d/%d chunks  PPL", Chunks, Chunks)), std::string::npos)
      << R.Err;
  double Ppl = 0, Err = 0;
  ASSERT_EQ(std::sscanf(R.Out.c_str(), "Final estimate: PPL = %lf +/- %lf", &Ppl, &Err), 2) << R.Out;
  EXPECT_GT(Ppl, 1.0);
  EXPECT_GT(Err, 0.0);
  // --chunks limits it; -b is llama-perplexity's batch flag.
  Result Two = lumenJit({"perplexity", "-m", kTiny, "-f", kTmp + "/claims-ppl.txt", "-c", "64", "--chunks", "2",
                         "-b", "16", "-t", "1"});
  ASSERT_EQ(Two.Exit, 0) << Two.Err;
  EXPECT_NE(Two.Out.find("(chunks: 2, 62 tokens scored"), std::string::npos) << Two.Out;
  // --isa as for run: the AVX2 kernels and layout give the estimate of the host's.
  Result Avx2 = lumenJit({"perplexity", "-m", kTiny, "-f", kTmp + "/claims-ppl.txt", "-c", "64", "--chunks", "2",
                          "-b", "16", "-t", "1", "--isa", "avx2"});
  ASSERT_EQ(Avx2.Exit, 0) << Avx2.Err;
  double TwoPpl = 0, Avx2Ppl = 0;
  ASSERT_EQ(std::sscanf(Two.Out.c_str(), "Final estimate: PPL = %lf", &TwoPpl), 1) << Two.Out;
  ASSERT_EQ(std::sscanf(Avx2.Out.c_str(), "Final estimate: PPL = %lf", &Avx2Ppl), 1) << Avx2.Out;
  EXPECT_NEAR(Avx2Ppl / TwoPpl, 1.0, 0.02);
  EXPECT_NE(lumenJit({"perplexity", "-m", kTiny, "-f", kTmp + "/claims-ppl.txt", "-b", "16", "--batch", "16"})
                .Err.find("-b and --batch are the same setting"),
            std::string::npos);
  // -c 0 takes the model's trained context (far more than this text).
  EXPECT_NE(lumenJit({"perplexity", "-m", kTiny, "-f", kTmp + "/claims-ppl.txt", "-c", "0"}).Err.find("two chunks"),
            std::string::npos);
  // Bad input: no text, a text shorter than two chunks, a chunk too small.
  EXPECT_NE(lumenJit({"perplexity", "-m", kTiny}).Err.find("needs a text"), std::string::npos);
  Result Short = lumenJit({"perplexity", "-m", kTiny, "-p", "too short", "-c", "64"});
  EXPECT_NE(Short.Exit, 0);
  EXPECT_NE(Short.Err.find("two chunks"), std::string::npos) << Short.Err;
  EXPECT_NE(lumenJit({"perplexity", "-m", kTiny, "-f", kTmp + "/claims-ppl.txt", "-c", "3"}).Exit, 0);
  EXPECT_NE(lumenJit({"perplexity", "-m", kTiny, "-f", kTmp + "/claims-ppl.txt", "--chunks", "-1"}).Exit, 0);
}

} // namespace

namespace {

TEST(ReadmeClaimsTest, LlamaCppLongFlagNames) {
  LUMEN_REQUIRE_SHARED(kTiny);
  Result Short = lumenJit({"run", "-m", kTiny, "-p", "Hi", "-n", "3", "-t", "1", "-c", "64", "--batch", "8", "--temp",
                           "0", "--print-token-ids"});
  Result Long = lumenJit({"run", "-m", kTiny, "--prompt", "Hi", "--n-predict", "3", "--threads", "1", "--ctx-size",
                          "64", "--batch-size", "8", "--temp", "0", "--print-token-ids"});
  ASSERT_EQ(Short.Exit, 0) << Short.Err;
  ASSERT_EQ(Long.Exit, 0) << Long.Err;
  EXPECT_EQ(Long.Out, Short.Out);
  EXPECT_EQ(parseIds(Long.Out).size(), 3u);
  // The long name is the same flag: a context too small for the prompt fails the same way.
  EXPECT_NE(lumenJit({"run", "-m", kTiny, "--prompt", "Hi there, how are you?", "--ctx-size", "4"}).Exit, 0);
  writeFile(kTmp + "/claims-long.txt", "Hi");
  Result File = lumenJit({"tokenize", "-m", kTiny, "--file", kTmp + "/claims-long.txt"});
  EXPECT_EQ(File.Out, lumenJit({"tokenize", "-m", kTiny, "-p", "Hi"}).Out);
}

} // namespace

namespace {

/// The type column of tensor Name in `inspect --tensors` output.
std::string tensorType(const std::string &Inspect, const std::string &Name) {
  for (const std::string &Line : std::vector<std::string>(absl::StrSplit(Inspect, '\n'))) {
    std::vector<std::string> F = absl::StrSplit(Line, ' ', absl::SkipEmpty());
    if (F.size() > 2 && F[1] == Name)
      return F[2];
  }
  return "(missing)";
}

TEST(ReadmeClaimsTest, QuantizeAsLlamaQuantizeDoes) {
  // A tiny F16 model (3 layers of 192, FFN 512: the K-quants take ffn_down,
  // the other matrices fall back as llama.cpp's quantizer falls back).
  const std::string F16 = kTmp + "/claims-q-f16.gguf", Out = kTmp + "/claims-q-out.gguf";
  ASSERT_EQ(lumenJit({"synth", "--preset", "tiny", "--type", "F16", "-o", F16, "--seed", "9"}).Exit, 0);
  for (const char *Preset : {"Q4_K_M", "q2_k", "Q5_0"}) {
    SCOPED_TRACE(Preset);
    Result R = lumenJit({"quantize", F16, Out, Preset, "1"});
    ASSERT_EQ(R.Exit, 0) << R.Err;
    // Progress, then the summary with sizes, bits per weight and time.
    EXPECT_NE(R.Err.find("100%"), std::string::npos) << R.Err;
    EXPECT_NE(R.Err.find("bits per weight"), std::string::npos) << R.Err;
    Result I = lumenJit({"inspect", Out, "--tensors"});
    ASSERT_EQ(I.Exit, 0);
    // The quantized model computes: the JIT agrees with the reference.
    const std::string Ids = "1,2,3,40,500";
    Result J = lumenJit({"eval", "-m", Out, "--tokens", Ids, "-t", "1"});
    Result Ref = lumenJit({"eval", "-m", Out, "--tokens", Ids, "--reference"});
    ASSERT_EQ(J.Exit, 0) << J.Err;
    ASSERT_EQ(Ref.Exit, 0) << Ref.Err;
    const auto JTop = nlohmann::json::parse(J.Out)["positions"][0]["top"];
    const auto RTop = nlohmann::json::parse(Ref.Out)["positions"][0]["top"];
    EXPECT_NEAR(JTop[0][1].get<double>(), RTop[0][1].get<double>(), 0.5);
  }
  Result I = lumenJit({"inspect", Out, "--tensors"});
  EXPECT_EQ(tensorType(I.Out, "blk.0.ffn_down.weight"), "Q5_0");
  Result Q4 = lumenJit({"quantize", F16, Out, "Q4_K_M", "-t", "2"});
  ASSERT_EQ(Q4.Exit, 0) << Q4.Err;
  // The summary names the fallbacks (rows of 192 take no super-block).
  EXPECT_NE(Q4.Err.find("fallbacks (rows not a whole number of the preset type's blocks"), std::string::npos)
      << Q4.Err;
  EXPECT_NE(Q4.Err.find(" Q4_K -> Q5_0"), std::string::npos) << Q4.Err;
  I = lumenJit({"inspect", Out, "--tensors"});
  EXPECT_EQ(tensorType(I.Out, "blk.2.ffn_down.weight"), "Q6_K");
  EXPECT_EQ(tensorType(I.Out, "blk.0.ffn_down.weight"), "Q4_K");
  EXPECT_EQ(tensorType(I.Out, "blk.0.attn_q.weight"), "Q5_0");
  EXPECT_EQ(tensorType(I.Out, "token_embd.weight"), "Q8_0");

  // Quantized input needs --allow-requantize; --leave-output-tensor; bad input.
  Result Re = lumenJit({"quantize", Out, kTmp + "/claims-q-re.gguf", "Q4_0"});
  EXPECT_NE(Re.Exit, 0);
  EXPECT_NE(Re.Err.find("--allow-requantize"), std::string::npos) << Re.Err;
  EXPECT_EQ(lumenJit({"quantize", Out, kTmp + "/claims-q-re.gguf", "Q4_0", "--allow-requantize"}).Exit, 0);
  EXPECT_NE(lumenJit({"quantize", F16, Out, "Q4_K_X"}).Err.find("Q3_K_M"), std::string::npos);
  EXPECT_NE(lumenJit({"quantize", F16, F16, "Q4_0"}).Err.find("input file"), std::string::npos);
  EXPECT_NE(lumenJit({"quantize", F16, Out}).Exit, 0);
  // The trailing thread count as llama-quantize reads it: 0 is every core.
  EXPECT_EQ(lumenJit({"quantize", F16, Out, "Q4_0", "0"}).Exit, 0);
  // Nothing to convert (F16 to F16): no progress, but the header and the summary.
  Result Same = lumenJit({"quantize", F16, Out, "F16"});
  EXPECT_EQ(Same.Exit, 0) << Same.Err;
  EXPECT_NE(Same.Err.find("lumen-jit: quantizing " + F16 + " to F16"), std::string::npos) << Same.Err;
  EXPECT_NE(Same.Err.find("bits per weight"), std::string::npos) << Same.Err;
  EXPECT_NE(lumenJit({"quantize", F16, Out, "Q4_0", "1025"}).Err.find("0 (every core) to 1024"), std::string::npos);
  EXPECT_NE(lumenJit({"quantize", F16, Out, "Q4_0", "-1"}).Err.find("no argument takes a negative number"),
            std::string::npos);
  // A tied model has no output.weight to leave: said, not silently ignored.
  Result Leave = lumenJit({"quantize", F16, Out, "Q4_0", "--leave-output-tensor"});
  EXPECT_EQ(Leave.Exit, 0) << Leave.Err;
  EXPECT_NE(Leave.Err.find("--leave-output-tensor changes nothing"), std::string::npos) << Leave.Err;
}

TEST(ReadmeClaimsTest, SynthQuantizesAsItWrites) {
  const std::string Out = kTmp + "/claims-synth-q.gguf";
  Result S = lumenJit({"synth", "--preset", "tiny", "--type", "q4_k_m", "-o", Out, "-t", "1"});
  ASSERT_EQ(S.Exit, 0) << S.Err;
  EXPECT_NE(S.Err.find("Q4_K_M"), std::string::npos) << S.Err;
  Result I = lumenJit({"inspect", Out, "--tensors"});
  EXPECT_NE(I.Out.find("general.file_type                          u32                15"), std::string::npos) << I.Out;
  EXPECT_EQ(tensorType(I.Out, "blk.2.ffn_down.weight"), "Q6_K");
  EXPECT_NE(lumenJit({"synth", "--preset", "tiny", "--type", "q9", "-o", Out}).Err.find("--type"), std::string::npos);
  // The 3B and 7B shapes, by what they would write.
  for (const char *P : {"qwen2.5-3b", "qwen2.5-7b"})
    EXPECT_NE(lumenJit({"synth", "--help"}).Out.find(P), std::string::npos) << P;
}

} // namespace
