//===- ProtocolTest.cpp - Request parsing and response shapes ---------------===//
#include "lumen/Server/Protocol.h"

#include "gtest/gtest.h"

using namespace lumen::server;
using nlohmann::json;

namespace {

std::optional<ApiError> chat(const std::string &Body, CompletionRequest &R) {
  return parseCompletionRequest(Body, true, RequestLimits(), R);
}

/// The error's param for Body (a chat request), or "ok".
std::string paramOf(const std::string &Body, bool Chat = true) {
  CompletionRequest R;
  std::optional<ApiError> E = parseCompletionRequest(Body, Chat, RequestLimits(), R);
  if (!E)
    return "ok";
  EXPECT_EQ(E->Status, 400);
  EXPECT_FALSE(E->Message.empty());
  return E->Param.empty() ? "(none)" : E->Param;
}

TEST(ProtocolTest, ParsesAFullChatRequest) {
  CompletionRequest R;
  ASSERT_FALSE(chat(R"({"model":"m","messages":[{"role":"system","content":"Be brief."},
      {"role":"user","content":[{"type":"text","text":"Hi "},{"type":"text","text":"there"}]},
      {"role":"assistant","content":null},{"role":"developer","content":"x"}],
      "stream":true,"stream_options":{"include_usage":true},"temperature":0.5,"top_p":0.9,
      "max_completion_tokens":7,"stop":["a","bc"],"seed":18446744073709551615,"frequency_penalty":0.5,
      "presence_penalty":-0.5,"logprobs":true,"top_logprobs":3,"n":1,"top_k":5,"min_p":0.1,
      "repeat_penalty":1.1,"ignore_eos":true,"user":"ignored"})",
                    R));
  EXPECT_EQ(R.Model, "m");
  ASSERT_EQ(R.Messages.size(), 4u);
  EXPECT_EQ(R.Messages[1].Content, "Hi there");
  EXPECT_EQ(R.Messages[2].Content, "");
  EXPECT_EQ(R.Messages[3].Role, "system");
  EXPECT_TRUE(R.Stream && R.IncludeUsage && R.IgnoreEos && R.Logprobs && R.SeedGiven);
  EXPECT_EQ(R.MaxTokens, 7);
  EXPECT_EQ(R.TopLogprobs, 3);
  EXPECT_EQ(R.Stop, (std::vector<std::string>{"a", "bc"}));
  EXPECT_EQ(R.Sampling.Seed, 18446744073709551615ull);
  EXPECT_FLOAT_EQ(R.Sampling.Temperature, 0.5f);
  EXPECT_FLOAT_EQ(R.Sampling.FrequencyPenalty, 0.5f);
  EXPECT_FLOAT_EQ(R.Sampling.PresencePenalty, -0.5f);
  EXPECT_EQ(R.Sampling.TopK, 5);
  EXPECT_TRUE(R.Sampling.validate().ok());
}

TEST(ProtocolTest, DefaultsAreLlamaServers) {
  CompletionRequest R;
  ASSERT_FALSE(chat(R"({"messages":[{"role":"user","content":"x"}],"stop":"END","max_tokens":null})", R));
  EXPECT_FALSE(R.Stream);
  EXPECT_EQ(R.MaxTokens, -1);
  EXPECT_EQ(R.Stop, std::vector<std::string>{"END"});
  EXPECT_FLOAT_EQ(R.Sampling.Temperature, 0.8f);
  EXPECT_EQ(R.Sampling.TopK, 40);
  EXPECT_FALSE(R.SeedGiven);
  ASSERT_FALSE(chat(R"({"messages":[{"role":"user","content":"x"}],"seed":-1,"top_k":-5,"logit_bias":{"7":2.5}})", R));
  EXPECT_FALSE(R.SeedGiven); // -1: random, as llama-server.
  EXPECT_EQ(R.Sampling.TopK, 0);
  ASSERT_EQ(R.Sampling.LogitBias.size(), 1u);
  EXPECT_EQ(R.Sampling.LogitBias[0].first, 7);
  EXPECT_FLOAT_EQ(R.Sampling.LogitBias[0].second, 2.5f);
}

TEST(ProtocolTest, BadRequestsNameTheirField) {
  EXPECT_EQ(paramOf("{"), "(none)");
  {
    // A body that is not JSON says where the parser stopped and why.
    CompletionRequest R;
    std::optional<ApiError> E = chat(R"({"messages": [tru]})", R);
    ASSERT_TRUE(E);
    EXPECT_NE(E->Message.find("the request body is not valid JSON: parse error at line 1, column 18"),
              std::string::npos)
        << E->Message;
    EXPECT_EQ(E->Message.find("[json.exception"), std::string::npos) << E->Message;
  }
  EXPECT_EQ(paramOf("[]"), "(none)");
  EXPECT_EQ(paramOf(""), "(none)");
  EXPECT_EQ(paramOf(R"({"messages":"hello"})"), "messages");
  EXPECT_EQ(paramOf(R"({"messages":[]})"), "messages");
  EXPECT_EQ(paramOf(R"({})"), "messages");
  EXPECT_EQ(paramOf(R"({"messages":[1]})"), "messages[0]");
  EXPECT_EQ(paramOf(R"({"messages":[{"role":"tool","content":"x"}]})"), "messages[0].role");
  EXPECT_EQ(paramOf(R"({"messages":[{"role":5,"content":"x"}]})"), "messages[0].role");
  EXPECT_EQ(paramOf(R"({"messages":[{"role":"user"}]})"), "messages[0].content");
  // An assistant turn that called tools: refused, not rendered without its calls.
  EXPECT_EQ(paramOf(R"({"messages":[{"role":"user","content":"x"},{"role":"assistant","content":null,)"
                    R"("tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{}"}}]}]})"),
            "messages[1].tool_calls");
  EXPECT_EQ(paramOf(R"({"messages":[{"role":"assistant","content":"","function_call":{"name":"f"}}]})"),
            "messages[0].function_call");
  EXPECT_EQ(paramOf(R"({"messages":[{"role":"assistant","content":"hi","tool_calls":[]},{"role":"user","content":"x"}]})"),
            "ok");
  EXPECT_EQ(paramOf(R"({"messages":[{"role":"user","content":5}]})"), "messages[0].content");
  EXPECT_EQ(paramOf(R"({"messages":[{"role":"user","content":[{"type":"image_url"}]}]})"),
            "messages[0].content[0].type");
  const std::string M = R"("messages":[{"role":"user","content":"x"}])";
  EXPECT_EQ(paramOf("{" + M + R"(,"temperature":"hot"})"), "temperature");
  EXPECT_EQ(paramOf("{" + M + R"(,"temperature":3})"), "temperature");
  EXPECT_EQ(paramOf("{" + M + R"(,"top_p":0})"), "top_p");
  EXPECT_EQ(paramOf("{" + M + R"(,"max_tokens":0})"), "max_tokens");
  EXPECT_EQ(paramOf("{" + M + R"(,"max_tokens":1.5})"), "max_tokens");
  EXPECT_EQ(paramOf("{" + M + R"(,"max_tokens":-3})"), "max_tokens");
  EXPECT_EQ(paramOf("{" + M + R"(,"n":2})"), "n");
  EXPECT_EQ(paramOf("{" + M + R"(,"stream":"yes"})"), "stream");
  EXPECT_EQ(paramOf("{" + M + R"(,"stream_options":{"include_usage":true}})"), "stream_options");
  EXPECT_EQ(paramOf("{" + M + R"(,"stop":[1]})"), "stop");
  EXPECT_EQ(paramOf("{" + M + R"(,"stop":["a","b","c","d","e"]})"), "stop");
  EXPECT_EQ(paramOf("{" + M + R"(,"stop":""})"), "stop");
  EXPECT_EQ(paramOf("{" + M + R"(,"seed":"1"})"), "seed");
  EXPECT_EQ(paramOf("{" + M + R"(,"seed":1.5})"), "seed");
  EXPECT_EQ(paramOf("{" + M + R"(,"top_logprobs":3})"), "top_logprobs");
  EXPECT_EQ(paramOf("{" + M + R"(,"logprobs":true,"top_logprobs":21})"), "top_logprobs");
  EXPECT_EQ(paramOf("{" + M + R"(,"frequency_penalty":2.5})"), "frequency_penalty");
  EXPECT_EQ(paramOf("{" + M + R"(,"tools":[{"type":"function"}]})"), "tools");
  EXPECT_EQ(paramOf("{" + M + R"(,"tools":[]})"), "ok"); // Some clients send an empty list.
  EXPECT_EQ(paramOf("{" + M + R"(,"tool_choice":"required"})"), "tool_choice");
  EXPECT_EQ(paramOf("{" + M + R"(,"tool_choice":{"type":"function","function":{"name":"f"}}})"), "tool_choice");
  EXPECT_EQ(paramOf("{" + M + R"(,"tool_choice":"none","tools":[]})"), "ok");
  EXPECT_EQ(paramOf("{" + M + R"(,"best_of":3})"), "best_of");
  EXPECT_EQ(paramOf("{" + M + R"(,"best_of":1})"), "ok");
  EXPECT_EQ(paramOf(R"({"prompt":"x","best_of":2})", false), "best_of");
  EXPECT_EQ(paramOf("{" + M + R"(,"logit_bias":{"x":1}})"), "logit_bias");
  EXPECT_EQ(paramOf("{" + M + R"(,"logit_bias":{"5":101}})"), "logit_bias");
  EXPECT_EQ(paramOf("{" + M + R"(,"logit_bias":[1]})"), "logit_bias");
  EXPECT_EQ(paramOf("{" + M + R"(,"logit_bias":{"99999999999":1}})"), "logit_bias");
  EXPECT_EQ(paramOf("{" + M + R"(,"top_k":-1,"repeat_last_n":-1,"logit_bias":{"5":-100}})"), "ok");
  EXPECT_EQ(paramOf("{" + M + R"(,"response_format":{"type":"json_object"}})"), "response_format");
  EXPECT_EQ(paramOf("{" + M + R"(,"model":7})"), "model");
  EXPECT_EQ(paramOf("{" + M + R"(,"temperature":null,"seed":-1})"), "ok");
  EXPECT_EQ(paramOf("{" + M + R"(,"chat_template_kwargs":[]})"), "chat_template_kwargs");
  EXPECT_EQ(paramOf("{" + M + R"(,"chat_template_kwargs":{"enable_thinking":"no"}})"), "chat_template_kwargs");
  EXPECT_EQ(paramOf("{" + M + R"(,"chat_template_kwargs":{"other":1}})"), "ok");
}

TEST(ProtocolTest, EnableThinkingAsLlamaServerTakesIt) {
  CompletionRequest R;
  ASSERT_FALSE(chat(R"({"messages":[{"role":"user","content":"x"}]})", R));
  EXPECT_TRUE(R.Thinking);
  ASSERT_FALSE(chat(R"({"messages":[{"role":"user","content":"x"}],"chat_template_kwargs":{"enable_thinking":false}})",
                    R));
  EXPECT_FALSE(R.Thinking);
}

TEST(ProtocolTest, CompletionPrompts) {
  CompletionRequest R;
  ASSERT_FALSE(parseCompletionRequest(R"({"prompt":"Once","logprobs":2})", false, RequestLimits(), R));
  EXPECT_EQ(R.Prompt, "Once");
  EXPECT_TRUE(R.Logprobs);
  EXPECT_EQ(R.TopLogprobs, 2);
  ASSERT_FALSE(parseCompletionRequest(R"({"prompt":[1,2,3]})", false, RequestLimits(), R));
  EXPECT_TRUE(R.PromptIsTokens);
  EXPECT_EQ(R.PromptTokens, (std::vector<int32_t>{1, 2, 3}));
  ASSERT_FALSE(parseCompletionRequest(R"({"prompt":["one"]})", false, RequestLimits(), R));
  EXPECT_EQ(R.Prompt, "one");
  EXPECT_EQ(paramOf(R"({"prompt":["a","b"]})", false), "prompt");
  EXPECT_EQ(paramOf(R"({"prompt":[1,-2]})", false), "prompt");
  EXPECT_EQ(paramOf(R"({"prompt":[1,"x"]})", false), "prompt");
  EXPECT_EQ(paramOf(R"({"prompt":[4294967296]})", false), "prompt");
  EXPECT_EQ(paramOf(R"({"prompt":{}})", false), "prompt");
  EXPECT_EQ(paramOf(R"({})", false), "prompt");
  EXPECT_EQ(paramOf(R"({"prompt":"x","echo":true})", false), "echo");
}

TEST(ProtocolTest, TokenizeAndDetokenize) {
  TokenizeRequest T;
  EXPECT_FALSE(parseTokenizeRequest(R"({"content":"hi","with_pieces":true})", T));
  EXPECT_TRUE(T.WithPieces);
  EXPECT_TRUE(parseTokenizeRequest(R"({"content":1})", T));
  EXPECT_TRUE(parseTokenizeRequest(R"({})", T));
  std::vector<int32_t> Ids;
  EXPECT_FALSE(parseDetokenizeRequest(R"({"tokens":[0,5]})", 10, Ids));
  EXPECT_EQ(Ids, (std::vector<int32_t>{0, 5}));
  EXPECT_EQ(parseDetokenizeRequest(R"({"tokens":[10]})", 10, Ids)->Param, "tokens");
  EXPECT_TRUE(parseDetokenizeRequest(R"({"tokens":"1"})", 10, Ids));
}

TEST(ProtocolTest, ResponseShapes) {
  CompletionRequest R;
  R.Logprobs = true;
  ResponseHeader H{"chatcmpl-1", 123, "m"};
  std::vector<TokenLogprob> L = {{"Hi", -0.5f, {{"Hi", -0.5f}, {"Yo", -1.5f}}}};
  json J = completionResponse(R, H, "Hi", L, FinishReason::Length, {10, 1, 4});
  EXPECT_EQ(J["object"], "chat.completion");
  EXPECT_EQ(J["choices"][0]["message"]["content"], "Hi");
  EXPECT_EQ(J["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(J["choices"][0]["logprobs"]["content"][0]["top_logprobs"][1]["token"], "Yo");
  EXPECT_EQ(J["usage"]["total_tokens"], 11);
  EXPECT_EQ(J["usage"]["prompt_tokens_details"]["cached_tokens"], 4);
  json C = streamChunk(R, H, "x", {}, true);
  EXPECT_EQ(C["object"], "chat.completion.chunk");
  EXPECT_EQ(C["choices"][0]["delta"]["role"], "assistant");
  EXPECT_TRUE(finalChunk(R, H, FinishReason::Stop)["choices"][0]["delta"].empty());
  EXPECT_TRUE(usageChunk(R, H, {1, 2, 0})["choices"].empty());
  R.Chat = false;
  json T = completionResponse(R, H, "Hi", L, FinishReason::Stop, {1, 1, 0});
  EXPECT_EQ(T["object"], "text_completion");
  EXPECT_EQ(T["choices"][0]["text"], "Hi");
  EXPECT_EQ(T["choices"][0]["logprobs"]["tokens"][0], "Hi");
  ApiError E;
  E.Message = "bad";
  E.Param = "x";
  EXPECT_EQ(E.toJson()["error"]["param"], "x");
  EXPECT_TRUE(E.toJson()["error"]["code"].is_null());
}

TEST(ProtocolTest, ConstantTimeEquals) {
  EXPECT_TRUE(constantTimeEquals("secret", "secret"));
  EXPECT_FALSE(constantTimeEquals("secret", "secreT"));
  EXPECT_FALSE(constantTimeEquals("secret", "secret2"));
  EXPECT_FALSE(constantTimeEquals("", "x"));
  EXPECT_TRUE(constantTimeEquals("", ""));
}

} // namespace
