//===- SamplerTest.cpp - Sampling statistics and chat rendering ------------===//
#include "lumen/Model/Chat.h"
#include "lumen/Model/Sampler.h"

#include "gtest/gtest.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>
#include <random>
#include <set>

using namespace lumen::model;

namespace {

std::vector<float> randomLogits(int N, uint32_t Seed) {
  std::mt19937 Rng(Seed);
  std::normal_distribution<float> D(0, 2);
  std::vector<float> L(N);
  for (float &X : L) X = D(Rng);
  return L;
}

int32_t argmax(const std::vector<float> &L) {
  return static_cast<int32_t>(std::max_element(L.begin(), L.end()) - L.begin());
}

SamplerOptions plain(float Temp) {
  SamplerOptions O;
  O.Temperature = Temp;
  O.TopK = 0;
  O.TopP = 1;
  O.MinP = 0;
  return O;
}

TEST(SamplerTest, GreedyAtZeroTemperature) {
  for (uint32_t S = 0; S < 20; ++S) {
    std::vector<float> L = randomLogits(1000, S);
    Sampler G(plain(0));
    EXPECT_EQ(G.sample(L), argmax(L));
    // A very low temperature behaves as greedy.
    Sampler Cold(plain(1e-3f));
    EXPECT_EQ(Cold.sample(L), argmax(L));
  }
}

TEST(SamplerTest, GreedyFindsTheFirstLargestAnywhereInAVocabulary) {
  // Greedy skips chunks with nothing above the best so far: a maximum at
  // either end of a chunk, of the vocabulary, or tied later, is still found.
  std::vector<float> L = randomLogits(151936, 7);
  const float Top = *std::max_element(L.begin(), L.end()) + 1;
  for (int32_t At : {0, 1, 63, 64, 65, 127, 4096, 151871, 151872, 151935}) {
    std::vector<float> P = L;
    P[At] = Top;
    EXPECT_EQ(Sampler(plain(0)).sample(P), At);
    P[151935 - At / 2] = Top; // A tie further on: the lower id wins.
    EXPECT_EQ(Sampler(plain(0)).sample(P), std::min(At, 151935 - At / 2));
  }
  EXPECT_EQ(Sampler(plain(0)).sample(L), argmax(L));
}

TEST(SamplerTest, TopKNeverSamplesOutsideK) {
  std::vector<float> L = randomLogits(5000, 3);
  std::vector<int32_t> Order(L.size());
  std::iota(Order.begin(), Order.end(), 0);
  std::sort(Order.begin(), Order.end(), [&](int32_t A, int32_t B) { return L[A] > L[B]; });
  std::set<int32_t> Best(Order.begin(), Order.begin() + 5);
  SamplerOptions O = plain(3.0f); // Hot: without top-k, far more tokens would appear.
  O.TopK = 5;
  Sampler S(O);
  std::set<int32_t> Seen;
  for (int I = 0; I < 3000; ++I) {
    int32_t T = S.sample(L);
    ASSERT_TRUE(Best.count(T)) << T;
    Seen.insert(T);
  }
  EXPECT_EQ(Seen.size(), 5u);
}

TEST(SamplerTest, SeededRunsRepeat) {
  std::vector<float> L = randomLogits(1000, 4);
  SamplerOptions O; // Defaults: top-k 40, top-p 0.95, min-p 0.05, temp 0.8.
  O.Temperature = 1.5f;
  O.MinP = 0;
  O.Seed = 42;
  Sampler A(O), B(O);
  O.Seed = 43;
  Sampler C(O);
  std::vector<int32_t> SA, SB, SC;
  for (int I = 0; I < 200; ++I) {
    SA.push_back(A.sample(L));
    SB.push_back(B.sample(L));
    SC.push_back(C.sample(L));
  }
  EXPECT_EQ(SA, SB);
  EXPECT_NE(SA, SC);
}

TEST(SamplerTest, FrequenciesFollowSoftmax) {
  std::vector<float> L = {1.0f, 0.0f, -1.0f, 2.0f};
  const float T = 0.7f;
  Sampler S(plain(T));
  std::map<int32_t, int> Count;
  const int Draws = 40000;
  for (int I = 0; I < Draws; ++I)
    ++Count[S.sample(L)];
  double Z = 0;
  for (float X : L) Z += std::exp(X / T);
  for (int32_t I = 0; I < 4; ++I) {
    double P = std::exp(L[I] / T) / Z;
    double Sd = std::sqrt(P * (1 - P) / Draws);
    EXPECT_NEAR(Count[I] / double(Draws), P, 5 * Sd) << "token " << I;
  }
}

TEST(SamplerTest, TopPAndMinPCut) {
  std::vector<float> L = {5.0f, 1.0f, 0.9f, 0.8f};
  SamplerOptions O = plain(1.0f);
  O.TopP = 0.5f; // The first token alone has p > 0.9.
  Sampler P(O);
  O = plain(1.0f);
  O.MinP = 0.1f; // exp(1 - 5) = 0.018 < 0.1: only the first survives.
  Sampler M(O);
  for (int I = 0; I < 500; ++I) {
    EXPECT_EQ(P.sample(L), 0);
    EXPECT_EQ(M.sample(L), 0);
  }
}

TEST(SamplerTest, RepeatPenalty) {
  std::vector<float> L = {2.0f, 1.9f, -1.0f};
  SamplerOptions O = plain(0);
  O.RepeatPenalty = 1.1f;
  Sampler S(O);
  EXPECT_EQ(S.sample(L), 0);
  S.accept(0); // 2.0 / 1.1 = 1.82 < 1.9.
  EXPECT_EQ(S.sample(L), 1);
  O.RepeatLastN = 1;
  Sampler W(O);
  W.accept(0);
  W.accept(2); // Token 0 fell out of the one-token window.
  EXPECT_EQ(W.sample(L), 0);
}

TEST(SamplerTest, FrequencyAndPresencePenalties) {
  std::vector<float> L = {2.0f, 1.5f, -1.0f};
  SamplerOptions O = plain(0);
  O.PresencePenalty = 0.6f; // Token 0 seen: 2.0 - 0.6 = 1.4 < 1.5.
  Sampler P(O);
  P.accept(0);
  EXPECT_EQ(P.sample(L), 1);
  O.PresencePenalty = 0;
  O.FrequencyPenalty = 0.3f; // Once: 1.7 > 1.5; twice: 1.4 < 1.5.
  Sampler F(O);
  F.accept(0);
  EXPECT_EQ(F.sample(L), 0);
  F.accept(0);
  EXPECT_EQ(F.sample(L), 1);
  O.FrequencyPenalty = -2.0f; // Negative: encourages repeats.
  Sampler N(O);
  for (int I = 0; I < 3; ++I) // -1 + 3 x 2 = 5.
    N.accept(2);
  EXPECT_EQ(N.sample(L), 2);
  O.FrequencyPenalty = 2.5f;
  EXPECT_FALSE(O.validate().ok());
}

TEST(SamplerTest, GreedyEqualsTheFullChainsBestCandidate) {
  // Temperature 0 takes the argmax without copying the vocabulary; top-k 1
  // at any temperature goes through the full chain: the same token, with
  // penalties, bias and ties (the lowest id wins).
  std::mt19937 Rng(3);
  for (int Case = 0; Case < 200; ++Case) {
    std::vector<float> L(500);
    for (float &X : L)
      X = float(int(Rng() % 41) - 20) / 4; // Many ties.
    SamplerOptions O = plain(0);
    O.RepeatPenalty = Case % 3 ? 1.3f : 1.0f;
    O.FrequencyPenalty = Case % 5 ? 0.2f : 0;
    O.PresencePenalty = Case % 7 ? -0.4f : 0;
    for (int B = 0; B < Case % 4; ++B)
      O.LogitBias.emplace_back(int32_t(Rng() % 500), float(int(Rng() % 21) - 10));
    SamplerOptions Full = O;
    Full.Temperature = 1;
    Full.TopK = 1;
    Sampler G(O), F(Full);
    for (int H = 0; H < Case % 30; ++H) {
      const int32_t T = int32_t(Rng() % 500);
      G.accept(T);
      F.accept(T);
    }
    EXPECT_EQ(G.sample(L), F.sample(L)) << "case " << Case;
  }
}

TEST(SamplerTest, ValidateOptions) {
  SamplerOptions O;
  O.TopP = 0;
  EXPECT_FALSE(O.validate().ok());
  O = SamplerOptions();
  O.MinP = 2;
  EXPECT_FALSE(O.validate().ok());
  O = SamplerOptions();
  O.RepeatPenalty = 0;
  EXPECT_FALSE(O.validate().ok());
  O = SamplerOptions();
  O.Temperature = NAN;
  EXPECT_FALSE(O.validate().ok());
  EXPECT_TRUE(SamplerOptions().validate().ok());
}

TEST(ChatTest, RendersChatML) {
  std::string S = renderChatML({{"system", "Be brief."}, {"user", "Hi"}}, true);
  EXPECT_EQ(S, "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
               "<|im_start|>assistant\n");
  EXPECT_EQ(renderChatML({{"user", "x"}, {"assistant", "y"}}, false),
            "<|im_start|>user\nx<|im_end|>\n<|im_start|>assistant\ny<|im_end|>\n");
}

TEST(ChatTest, RendersLlama3AndRecognisesTheFormat) {
  const std::string Llama3Template =
      "{{- bos_token }}{% for message in messages %}{{ '<|start_header_id|>' + message['role'] + "
      "'<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' }}{% endfor %}";
  EXPECT_EQ(chatFormatOf(Llama3Template), ChatFormat::Llama3);
  EXPECT_EQ(chatFormatOf("{{'<|im_start|>' + message['role']}}"), ChatFormat::ChatML);
  EXPECT_EQ(chatFormatOf(""), ChatFormat::ChatML); // No template: ChatML, as llama.cpp.
  EXPECT_EQ(renderChat(Llama3Template, {{"system", "Be brief. "}, {"user", "\nHi"}}, true),
            "<|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
  EXPECT_EQ(chatTurnEnd(ChatFormat::Llama3), "<|eot_id|>");
  EXPECT_EQ(chatTurnEnd(ChatFormat::ChatML), "<|im_end|>\n");
}

TEST(ChatTest, ThinkingOffOpensAThinkingModelsReplyWithAnEmptyBlock) {
  const std::string Qwen3 = "{{'<|im_start|>assistant\\n'}}{%- if enable_thinking is defined and enable_thinking is "
                            "false %}{{- '<think>\\n\\n</think>\\n\\n' }}{%- endif %}";
  EXPECT_TRUE(chatTemplateThinks(Qwen3));
  EXPECT_FALSE(chatTemplateThinks("{{'<|im_start|>'}}"));
  const std::vector<ChatMessage> M = {{"user", "Hi"}};
  EXPECT_EQ(renderChat(Qwen3, M, true), "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_EQ(renderChat(Qwen3, M, true, /*Thinking=*/false),
            "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n");
  EXPECT_EQ(renderChat("{{'<|im_start|>'}}", M, true, false), renderChat("{{'<|im_start|>'}}", M, true));
  // Earlier answers lose their reasoning, as in Qwen3's template; the last
  // user message's own answer keeps it.
  const std::vector<ChatMessage> Turns = {{"user", "a"},
                                          {"assistant", "<think>\nlong\n</think>\n\nA"},
                                          {"user", "b"},
                                          {"assistant", "<think>x</think>B"}};
  EXPECT_EQ(renderChat(Qwen3, Turns, false), "<|im_start|>user\na<|im_end|>\n<|im_start|>assistant\nA<|im_end|>\n"
                                             "<|im_start|>user\nb<|im_end|>\n<|im_start|>assistant\n"
                                             "<think>x</think>B<|im_end|>\n");
  // A file without a template Lumen recognises takes its architecture's format.
  EXPECT_EQ(chatFormatOf("", ChatFormat::Llama3), ChatFormat::Llama3);
  EXPECT_EQ(chatFormatOf("{{ messages }}", ChatFormat::Llama3), ChatFormat::Llama3);
  EXPECT_EQ(renderChat("", M, true, true, ChatFormat::Llama3),
            "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n");
}

TEST(ChatTest, DefaultSystemPromptFromTemplate) {
  std::string Qwen = "{%- else %}\n        {{- '<|im_start|>system\\n' + messages[0]['content'] + "
                     "'<|im_end|>\\n' }}\n    {%- else %}\n        {{- '<|im_start|>system\\nYou are "
                     "Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\\n' }}";
  EXPECT_EQ(defaultSystemPrompt(Qwen), "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.");
  EXPECT_EQ(defaultSystemPrompt("{% for message in messages %}...{% endfor %}"), "");
}

} // namespace
