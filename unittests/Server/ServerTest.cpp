//===- ServerTest.cpp - The HTTP API end to end, in process -----------------===//
//
// A server on a loopback port over a small synthetic model (and the 0.5B
// synthetic one), driven by an HTTP client: answers equal what `run`'s
// generation loop gives; batch invariance (the same requests alone and among
// others, arriving at different times: identical text and logprobs); SSE
// framing; stop strings; prefix reuse; errors; the API key; the queue;
// clients that go away; a load test; shutdown.
//
//===----------------------------------------------------------------------===//
#include "Fixtures.h"
#include "Model/FidelityUtil.h"

#include "lumen/Model/BatchedSession.h"
#include "lumen/Model/Chat.h"
#include "lumen/Model/Generate.h"
#include "lumen/Runtime/Jit.h"
#include "lumen/Runtime/KernelCache.h"
#include "lumen/Server/HttpServer.h"
#include "lumen/Server/Scheduler.h"

#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"

#include <httplib.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <random>
#include <thread>

using namespace lumen;
using namespace lumen::model;
using namespace lumen::server;
using nlohmann::json;

namespace {

runtime::KernelCache &kernelCache() {
  static std::unique_ptr<runtime::Jit> J = std::move(*runtime::Jit::create());
  static runtime::KernelCache Cache(*J);
  return Cache;
}

const TransformerModel &smallModel() {
  static std::unique_ptr<TransformerModel> M = [] {
    SynthOptions O = test::smallSynthetic(gguf::TensorType::Q8_0, /*Tied=*/false, 71);
    const std::string Path = absl::StrFormat("%s/server-small.gguf", LUMEN_TEST_TMPDIR);
    if (!writeSyntheticModel(O, Path).ok())
      std::abort();
    return std::move(*TransformerModel::load(Path));
  }();
  return *M;
}

/// A server on a free loopback port.
struct TestServer {
  std::unique_ptr<BatchedSession> Session;
  std::unique_ptr<Scheduler> Jobs;
  std::unique_ptr<HttpServer> Http;

  explicit TestServer(const TransformerModel &M, int32_t Slots = 4, ServerOptions SO = {}, size_t Queue = 64,
                      int64_t Ctx = 512, int64_t Batch = 32) {
    SessionOptions O;
    O.ContextSize = Ctx;
    O.PrefillBatch = Batch;
    O.Threads = 2;
    Session = std::move(*createJitBatchedSession(M, kernelCache(), O, Slots));
    SchedulerOptions JO;
    JO.QueueLimit = Queue;
    Jobs = std::make_unique<Scheduler>(*Session, JO);
    SO.Port = 0;
    Http = std::make_unique<HttpServer>(SO);
    EXPECT_TRUE(Http->bind().ok());
    Http->start();
    Http->setReady(M, *Jobs, "test-model");
  }
  ~TestServer() {
    Jobs->shutdown();
    Http->stop();
  }
  httplib::Client client() const {
    httplib::Client C("127.0.0.1", Http->port());
    C.set_read_timeout(120, 0);
    return C;
  }
  json metrics() const {
    auto R = client().Get("/metrics");
    json Out = json::object();
    if (!R)
      return Out;
    for (absl::string_view Line : absl::StrSplit(R->body, '\n'))
      if (!Line.empty() && Line[0] != '#')
        if (size_t Sp = Line.rfind(' '); Sp != std::string_view::npos)
          Out[std::string(Line.substr(0, Sp))] = std::stod(std::string(Line.substr(Sp + 1)));
    return Out;
  }
};

json post(const TestServer &S, const std::string &Path, const json &Body, int *Status = nullptr,
          const httplib::Headers &H = {}) {
  auto R = S.client().Post(Path, H, Body.dump(), "application/json");
  if (!R) {
    ADD_FAILURE() << "no response from " << Path << ": " << httplib::to_string(R.error());
    return {};
  }
  if (Status)
    *Status = R->status;
  else
    EXPECT_EQ(R->status, 200) << R->body;
  return json::parse(R->body, nullptr, false);
}

json chatBody(const std::string &User, int MaxTokens, double Temp = 0, bool Logprobs = true) {
  json B = {{"messages", {{{"role", "user"}, {"content", User}}}}, {"max_tokens", MaxTokens},
            {"temperature", Temp}, {"ignore_eos", true}};
  if (Logprobs) {
    B["logprobs"] = true;
    B["top_logprobs"] = 3;
  }
  return B;
}

/// The data lines of an SSE body.
std::vector<std::string> events(const std::string &Body) {
  std::vector<std::string> Out;
  for (absl::string_view E : absl::StrSplit(Body, "\n\n", absl::SkipEmpty())) {
    EXPECT_TRUE(E.substr(0, 6) == "data: ") << E;
    Out.emplace_back(E.substr(6));
  }
  return Out;
}

/// A streamed /v1/completions request's legacy logprobs field (tokens,
/// text_offset, ...), its chunks' arrays joined.
json streamedLogprobs(TestServer &S, json Body, const char *Field) {
  Body["stream"] = true;
  auto R = S.client().Post("/v1/completions", Body.dump(), "application/json");
  json Out = json::array();
  if (!R)
    return Out;
  for (const std::string &E : events(R->body)) {
    if (E == "[DONE]")
      continue;
    if (json C = json::parse(E); !C["choices"].empty() && C["choices"][0]["logprobs"].is_object())
      for (const json &V : C["choices"][0]["logprobs"][Field])
        Out.push_back(V);
  }
  return Out;
}

TEST(ServerTest, ChatEqualsRunsGenerationLoop) {
  const TransformerModel &M = smallModel();
  TestServer S(M);
  json R = post(S, "/v1/chat/completions", chatBody("Hello there", 24, 0, false));
  ASSERT_TRUE(R.is_object());
  const std::string Text = R["choices"][0]["message"]["content"];
  EXPECT_EQ(R["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(R["usage"]["completion_tokens"], 24);
  EXPECT_EQ(R["model"], "test-model");
  // What `lumen-jit run -p "Hello there" --temp 0 --ignore-eos -n 24` computes.
  const Tokenizer &Tok = M.tokenizer();
  std::vector<ChatMessage> Msgs;
  if (std::string Sys = defaultSystemPrompt(Tok.chatTemplate()); !Sys.empty())
    Msgs.push_back({"system", Sys});
  Msgs.push_back({"user", "Hello there"});
  std::vector<int32_t> Ids;
  if (Tok.addBos())
    Ids.push_back(*Tok.bosId());
  for (int32_t Id : Tok.encode(renderChatML(Msgs, true), true))
    Ids.push_back(Id);
  EXPECT_EQ(R["usage"]["prompt_tokens"], Ids.size());
  SessionOptions O;
  O.ContextSize = 512;
  O.Threads = 2;
  auto Session = createJitSession(M, kernelCache(), O);
  ASSERT_TRUE(Session.ok());
  SamplerOptions SO;
  SO.Temperature = 0;
  Sampler Smp(SO);
  GenerateOptions G;
  G.MaxTokens = 24;
  G.StopAtEndOfTurn = false;
  std::string Want;
  ASSERT_TRUE(generate(**Session, Smp, Ids, G, [&](int32_t, std::string_view P) {
                Want += P;
                return true;
              }).ok());
  EXPECT_EQ(Text, Want);
  EXPECT_FALSE(Text.empty());
}

/// The requests of the invariance tests: prompts of different lengths,
/// greedy and seeded sampling, with logprobs.
std::vector<json> invarianceRequests() {
  std::vector<json> Out;
  const char *Prompts[] = {"a", "The quick brown fox jumps over the lazy dog, twice over and then once more.",
                           "0123456789 0123456789 0123456789 0123456789 0123456789 0123456789", "Why?",
                           "Tell me about the sea."};
  int I = 0;
  for (const char *P : Prompts) {
    json B = chatBody(P, 12 + 3 * I, I % 2 ? 0.9 : 0);
    B["seed"] = 1000 + I;
    Out.push_back(B);
    ++I;
  }
  return Out;
}

/// Text and logprobs of each request.
std::vector<std::string> answers(const std::vector<json> &Responses) {
  std::vector<std::string> Out;
  for (const json &R : Responses)
    Out.push_back(R["choices"][0]["message"]["content"].dump() + R["choices"][0]["logprobs"].dump() +
                  R["usage"]["completion_tokens"].dump());
  return Out;
}

void expectBatchInvariant(const TransformerModel &M, int32_t Slots) {
  const std::vector<json> Requests = invarianceRequests();
  std::vector<json> Alone;
  {
    TestServer S(M, 1); // One slot: every request alone.
    for (const json &B : Requests)
      Alone.push_back(post(S, "/v1/chat/completions", B));
  }
  // All at once, then staggered (each arriving while others run), on a
  // server with more slots, some requests queued; and each twice, so that
  // the second copy lands in another slot with a reused prefix.
  for (int Round = 0; Round < 2; ++Round) {
    TestServer S(M, Slots, {}, 64, 512, 16);
    std::vector<json> Together(2 * Requests.size());
    std::vector<std::thread> Threads;
    for (size_t I = 0; I < Together.size(); ++I)
      Threads.emplace_back([&, I] {
        if (Round == 1)
          std::this_thread::sleep_for(std::chrono::milliseconds(15 * I));
        Together[I] = post(S, "/v1/chat/completions", Requests[I % Requests.size()]);
      });
    for (std::thread &T : Threads)
      T.join();
    const std::vector<std::string> Want = answers(Alone);
    const std::vector<std::string> Got = answers(Together);
    for (size_t I = 0; I < Got.size(); ++I)
      EXPECT_EQ(Got[I], Want[I % Want.size()]) << "request " << I % Want.size() << " (copy " << I / Want.size()
                                               << ", round " << Round << ")";
    EXPECT_GT(S.metrics()["lumen_prompt_tokens_reused_total"].get<double>(), 0);
  }
}

TEST(ServerTest, BatchInvariantOnTheSmallModel) { expectBatchInvariant(smallModel(), 3); }

TEST(ServerTest, BatchInvariantOnTheTinyFixture) {
  const std::string Path = std::string(LUMEN_SHARED_DIR) + "/fixtures/tiny-qwen2.gguf";
  LUMEN_REQUIRE_SHARED(Path);
  auto M = TransformerModel::load(Path);
  ASSERT_TRUE(M.ok());
  expectBatchInvariant(**M, 4);
}

TEST(ServerTest, BatchInvariantOnThe05bModel) {
  const std::string Path = LUMEN_QWEN05B;
  LUMEN_REQUIRE_FILE(Path, "written by the make_qwen05b_fixture test");
  auto M = TransformerModel::load(Path);
  ASSERT_TRUE(M.ok());
  const std::vector<json> All = invarianceRequests();
  std::vector<json> Requests(All.begin(), All.begin() + 3);
  for (json &R : Requests)
    R["max_tokens"] = 6;
  std::vector<json> Alone, Together(Requests.size());
  {
    TestServer S(**M, 1);
    for (const json &B : Requests)
      Alone.push_back(post(S, "/v1/chat/completions", B));
  }
  TestServer S(**M, 3, {}, 8, 512, 16);
  std::vector<std::thread> Threads;
  for (size_t I = 0; I < Requests.size(); ++I)
    Threads.emplace_back([&, I] { Together[I] = post(S, "/v1/chat/completions", Requests[I]); });
  for (std::thread &T : Threads)
    T.join();
  EXPECT_EQ(answers(Together), answers(Alone));
}

TEST(ServerTest, StreamingFramesAndEqualsTheWholeAnswer) {
  TestServer S(smallModel());
  json B = chatBody("Stream this", 10, 0, false);
  json Whole = post(S, "/v1/chat/completions", B);
  B["stream"] = true;
  B["stream_options"] = {{"include_usage", true}};
  auto R = S.client().Post("/v1/chat/completions", B.dump(), "application/json");
  ASSERT_TRUE(R);
  EXPECT_EQ(R->status, 200);
  EXPECT_EQ(R->get_header_value("Content-Type"), "text/event-stream");
  std::vector<std::string> E = events(R->body);
  ASSERT_GE(E.size(), 4u);
  EXPECT_EQ(E.back(), "[DONE]");
  std::string Text;
  for (size_t I = 0; I + 3 < E.size(); ++I) {
    json C = json::parse(E[I]);
    EXPECT_EQ(C["object"], "chat.completion.chunk");
    EXPECT_EQ(C["choices"][0]["delta"].contains("role"), I == 0);
    EXPECT_TRUE(C["choices"][0]["finish_reason"].is_null());
    Text += C["choices"][0]["delta"]["content"].get<std::string>();
  }
  json Final = json::parse(E[E.size() - 3]), Usage = json::parse(E[E.size() - 2]);
  EXPECT_EQ(Final["choices"][0]["finish_reason"], "length");
  EXPECT_TRUE(Usage["choices"].empty());
  EXPECT_EQ(Usage["usage"]["completion_tokens"], 10);
  EXPECT_EQ(Text, Whole["choices"][0]["message"]["content"]);
  // Completions stream too.
  json C = {{"prompt", "Once upon"}, {"max_tokens", 4}, {"stream", true}, {"temperature", 0}, {"ignore_eos", true}};
  auto RC = S.client().Post("/v1/completions", C.dump(), "application/json");
  ASSERT_TRUE(RC);
  std::vector<std::string> EC = events(RC->body);
  ASSERT_GE(EC.size(), 2u);
  EXPECT_EQ(json::parse(EC[0])["object"], "text_completion");
  EXPECT_EQ(EC.back(), "[DONE]");
}

TEST(ServerTest, CompletionsTakeTextOrTokenIds) {
  TestServer S(smallModel());
  const Tokenizer &Tok = smallModel().tokenizer();
  json A = post(S, "/v1/completions",
                {{"prompt", "Once upon a time"}, {"max_tokens", 5}, {"temperature", 0}, {"ignore_eos", true},
                 {"logprobs", 2}});
  std::vector<int32_t> Ids;
  if (Tok.addBos())
    Ids.push_back(*Tok.bosId());
  for (int32_t Id : Tok.encode("Once upon a time", true))
    Ids.push_back(Id);
  json B = post(S, "/v1/completions",
                {{"prompt", Ids}, {"max_tokens", 5}, {"temperature", 0}, {"ignore_eos", true}, {"logprobs", 2}});
  EXPECT_EQ(A["object"], "text_completion");
  EXPECT_EQ(A["choices"][0]["text"], B["choices"][0]["text"]);
  EXPECT_EQ(A["choices"][0]["logprobs"], B["choices"][0]["logprobs"]);
  EXPECT_EQ(A["choices"][0]["logprobs"]["tokens"].size(), 5u);
  EXPECT_EQ(A["choices"][0]["logprobs"]["top_logprobs"][0].size(), 2u);
  // /tokenize and /detokenize agree with the tokenizer.
  json T = post(S, "/tokenize", {{"content", "Once upon a time"}});
  EXPECT_EQ(T["tokens"], json(Tok.encode("Once upon a time", true)));
  json D = post(S, "/detokenize", {{"tokens", T["tokens"]}});
  EXPECT_EQ(D["content"], "Once upon a time");
  json P = post(S, "/tokenize", {{"content", "ab"}, {"with_pieces", true}});
  EXPECT_TRUE(P["tokens"][0].contains("piece"));
  // A piece that is part of a character comes as its byte values (as
  // llama-server gives it), so the pieces always add up to the text.
  const std::string Text = "\xE2\x82\xAC \xF0\x9F\xA6\x99 x";
  json Pieces = post(S, "/tokenize", {{"content", Text}, {"with_pieces", true}});
  std::string Joined;
  bool SawBytes = false;
  for (const json &E : Pieces["tokens"]) {
    if (E["piece"].is_string()) {
      Joined += E["piece"].get<std::string>();
    } else {
      ASSERT_TRUE(E["piece"].is_array()) << E.dump();
      SawBytes = true;
      for (const json &B : E["piece"])
        Joined += static_cast<char>(B.get<int>());
    }
  }
  EXPECT_EQ(Joined, Text) << Pieces.dump();
  EXPECT_TRUE(SawBytes) << "the small vocabulary splits these characters into bytes: " << Pieces.dump();
}

// chat_template_kwargs.enable_thinking, as llama-server takes it: false
// opens a thinking model's reply (Qwen3's template) with the empty think
// block (here in byte tokens: the small vocabulary has no <think>), and
// changes nothing for a model that does not think.
TEST(ServerTest, EnableThinkingFalseOpensTheReplyWithAnEmptyThinkBlock) {
  static std::unique_ptr<TransformerModel> Qwen3 = [] {
    SynthOptions O = test::smallSynthetic(gguf::TensorType::Q8_0, /*Tied=*/true, 72);
    O.Shape.Arch = findArchitecture("qwen3");
    const std::string Path = absl::StrFormat("%s/server-qwen3.gguf", LUMEN_TEST_TMPDIR);
    if (!writeSyntheticModel(O, Path).ok())
      std::abort();
    return std::move(*TransformerModel::load(Path));
  }();
  auto PromptTokens = [](const TransformerModel &M, bool Thinking) {
    TestServer S(M, 1);
    json B = chatBody("Hello", 1, 0, false);
    if (!Thinking)
      B["chat_template_kwargs"] = {{"enable_thinking", false}};
    return post(S, "/v1/chat/completions", B)["usage"]["prompt_tokens"].get<int>();
  };
  const int On = PromptTokens(*Qwen3, true), Off = PromptTokens(*Qwen3, false);
  EXPECT_EQ(Off, On + static_cast<int>(std::string("<think>\n\n</think>\n\n").size())) << On;
  EXPECT_EQ(PromptTokens(smallModel(), false), PromptTokens(smallModel(), true));
}

TEST(ServerTest, StopStringsEndTheAnswerBeforeThem) {
  TestServer S(smallModel());
  json Full = post(S, "/v1/chat/completions", chatBody("Say something", 30, 0, false));
  const std::string Text = Full["choices"][0]["message"]["content"];
  ASSERT_GE(Text.size(), 12u);
  const std::string Stop = Text.substr(8, 3);
  json B = chatBody("Say something", 30, 0, false);
  B["stop"] = {Stop, "\x01never"};
  json R = post(S, "/v1/chat/completions", B);
  EXPECT_EQ(R["choices"][0]["message"]["content"], Text.substr(0, Text.find(Stop)));
  EXPECT_EQ(R["choices"][0]["finish_reason"], "stop");
  B["stream"] = true; // Streamed: the same text, nothing of the stop string.
  auto RS = S.client().Post("/v1/chat/completions", B.dump(), "application/json");
  std::string Streamed;
  for (const std::string &E : events(RS->body)) {
    if (E == "[DONE]")
      continue;
    if (json C = json::parse(E); !C["choices"].empty() && C["choices"][0]["delta"].contains("content"))
      Streamed += C["choices"][0]["delta"]["content"].get<std::string>();
  }
  EXPECT_EQ(Streamed, Text.substr(0, Text.find(Stop)));
}

TEST(ServerTest, AStopStringsTokensTakeTheirLogprobsAway) {
  TestServer S(smallModel());
  json B = {{"prompt", "Once upon a time"}, {"max_tokens", 24}, {"temperature", 0}, {"ignore_eos", true},
            {"logprobs", 1}};
  json Full = post(S, "/v1/completions", B);
  const std::string Text = Full["choices"][0]["text"];
  const json &Tokens = Full["choices"][0]["logprobs"]["tokens"];
  // A stop string that begins exactly where generated token I begins.
  size_t I = 2, At = 0;
  std::string Before;
  for (size_t J = 0; J < Tokens.size(); ++J) {
    const std::string T = Tokens[J];
    const bool Plain = !T.empty() && std::all_of(T.begin(), T.end(), [](char C) { return C > ' ' && C < 127; });
    if (J >= 2 && Plain && Text.find(T) == Before.size() && Text.compare(0, Before.size(), Before) == 0) {
      I = J, At = Before.size();
      break;
    }
    Before += T;
  }
  ASSERT_GT(At, 0u) << "no plain token to stop at in " << Full.dump();
  B["stop"] = Tokens[I];
  json R = post(S, "/v1/completions", B);
  EXPECT_EQ(R["choices"][0]["text"], Text.substr(0, At));
  json Kept = json::array();
  for (size_t J = 0; J < I; ++J)
    Kept.push_back(Tokens[J]);
  // The stop string's token is not part of the answer: nor is its logprob.
  EXPECT_EQ(R["choices"][0]["logprobs"]["tokens"], Kept);
  EXPECT_EQ(streamedLogprobs(S, B, "tokens"), Kept);
}

TEST(ServerTest, StreamedTextOffsetsAreWhereTheTokensBegin) {
  const std::string Path = std::string(LUMEN_SHARED_DIR) + "/fixtures/tiny-qwen2.gguf";
  LUMEN_REQUIRE_SHARED(Path);
  auto M = TransformerModel::load(Path);
  ASSERT_TRUE(M.ok());
  TestServer S(**M);
  json B = {{"prompt", "Hello world"}, {"max_tokens", 24}, {"temperature", 0}, {"ignore_eos", true},
            {"logprobs", 1}};
  json Full = post(S, "/v1/completions", B);
  const std::string Text = Full["choices"][0]["text"];
  const json &Tokens = Full["choices"][0]["logprobs"]["tokens"], &Offsets = Full["choices"][0]["logprobs"]["text_offset"];
  ASSERT_EQ(Tokens.size(), Offsets.size());
  // A word token of two characters or more, not the last: a stop string that
  // begins with its last character (and never matches) holds that character
  // back until the next token, which then shares a chunk with it.
  std::string Stop;
  for (size_t J = 0; J + 1 < Tokens.size() && Stop.empty(); ++J) {
    const std::string T = Tokens[J];
    if (T.size() >= 2 && std::all_of(T.begin(), T.end(), [](char C) { return C > ' ' && C < 127; }) &&
        Text.compare(Offsets[J].get<size_t>(), T.size(), T) == 0)
      Stop = T.substr(T.size() - 1) + "\x01";
  }
  ASSERT_FALSE(Stop.empty()) << Full.dump();
  B["stop"] = Stop;
  json Held = post(S, "/v1/completions", B);
  EXPECT_EQ(Held["choices"][0]["text"], Text);
  EXPECT_EQ(Held["choices"][0]["logprobs"]["text_offset"], Offsets);
  EXPECT_EQ(streamedLogprobs(S, B, "text_offset"), Offsets); // Each token's own start, not its chunk's.
}

TEST(ServerTest, AMultiTurnChatReusesItsPrefix) {
  TestServer S(smallModel(), 2);
  json B = chatBody("First question", 8, 0, false);
  json A = post(S, "/v1/chat/completions", B);
  B["messages"].push_back({{"role", "assistant"}, {"content", A["choices"][0]["message"]["content"]}});
  B["messages"].push_back({{"role", "user"}, {"content", "And a second one"}});
  json Second = post(S, "/v1/chat/completions", B);
  const int64_t Cached = Second["usage"]["prompt_tokens_details"]["cached_tokens"];
  EXPECT_GT(Cached, int64_t(A["usage"]["prompt_tokens"]) - 2);
  // The same conversation on a fresh server (nothing cached) answers the same.
  TestServer Fresh(smallModel(), 2);
  json Again = post(Fresh, "/v1/chat/completions", B);
  EXPECT_EQ(Again["usage"]["prompt_tokens_details"]["cached_tokens"], 0);
  EXPECT_EQ(Again["choices"][0]["message"]["content"], Second["choices"][0]["message"]["content"]);
}

TEST(ServerTest, BadRequestsGetOpenAIErrors) {
  TestServer S(smallModel(), 1, {}, 64, 64);
  auto Expect = [&](const std::string &Path, const std::string &Body, int Status, const std::string &Param) {
    auto R = S.client().Post(Path, Body, "application/json");
    ASSERT_TRUE(R) << Body;
    EXPECT_EQ(R->status, Status) << Body;
    json J = json::parse(R->body, nullptr, false);
    ASSERT_TRUE(J.is_object() && J.contains("error")) << R->body;
    EXPECT_TRUE(J["error"]["message"].is_string());
    if (!Param.empty()) {
      EXPECT_EQ(J["error"]["param"], Param) << R->body;
    }
  };
  Expect("/v1/chat/completions", "{not json", 400, "");
  Expect("/v1/chat/completions", R"({"messages":"hi"})", 400, "messages");
  Expect("/v1/chat/completions", R"({"messages":[{"role":"wizard","content":"x"}]})", 400, "messages[0].role");
  Expect("/v1/chat/completions", R"({"messages":[{"role":"user","content":"x"}],"n":3})", 400, "n");
  Expect("/v1/completions", R"({"prompt":[99999999]})", 400, "");
  // Longer than the 64-token context: a 400 that says so, not a truncation.
  std::string Long(400, 'x');
  auto R = S.client().Post("/v1/completions", json({{"prompt", Long}}).dump(), "application/json");
  ASSERT_TRUE(R);
  EXPECT_EQ(R->status, 400);
  EXPECT_EQ(json::parse(R->body)["error"]["code"], "context_length_exceeded");
  Expect("/v1/nothing", "{}", 404, "");
  auto Big = S.client().Post("/v1/completions", std::string(5 << 20, ' '), "application/json");
  ASSERT_TRUE(Big);
  EXPECT_EQ(Big->status, 413);
  // The server is still up and right.
  EXPECT_EQ(S.client().Get("/health")->status, 200);
}

TEST(ServerTest, ApiKeyGuardsEverythingButHealth) {
  ServerOptions SO;
  SO.ApiKey = "sk-test-123";
  TestServer S(smallModel(), 1, SO);
  auto C = S.client();
  EXPECT_EQ(C.Get("/health")->status, 200);
  EXPECT_EQ(C.Get("/v1/models")->status, 401);
  EXPECT_EQ(C.Get("/metrics")->status, 401);
  EXPECT_EQ(C.Post("/v1/chat/completions", chatBody("x", 2).dump(), "application/json")->status, 401);
  EXPECT_EQ(C.Get("/v1/models", {{"Authorization", "Bearer sk-test-12"}})->status, 401);
  EXPECT_EQ(C.Get("/v1/models", {{"Authorization", "sk-test-123"}})->status, 401);
  auto Ok = C.Get("/v1/models", {{"Authorization", "Bearer sk-test-123"}});
  EXPECT_EQ(Ok->status, 200);
  EXPECT_EQ(json::parse(Ok->body)["data"][0]["id"], "test-model");
  auto Denied = C.Get("/v1/models");
  EXPECT_EQ(json::parse(Denied->body)["error"]["type"], "authentication_error");
}

TEST(ServerTest, HealthIs503UntilReady) {
  ServerOptions SO;
  SO.Port = 0;
  HttpServer Http(SO);
  ASSERT_TRUE(Http.bind().ok());
  Http.start();
  httplib::Client C("127.0.0.1", Http.port());
  EXPECT_EQ(C.Get("/health")->status, 503);
  EXPECT_EQ(C.Post("/v1/chat/completions", chatBody("x", 2).dump(), "application/json")->status, 503);
  auto Page = C.Get("/");
  EXPECT_EQ(Page->status, 200);
  EXPECT_NE(Page->body.find("/v1/chat/completions"), std::string::npos);
  Http.stop();
  // A port in use is an error, not a crash.
  ServerOptions Same = SO;
  HttpServer First(SO);
  ASSERT_TRUE(First.bind().ok());
  Same.Port = First.port();
  HttpServer Second(Same);
  EXPECT_FALSE(Second.bind().ok());
}

TEST(ServerTest, AFullQueueAnswers503) {
  TestServer S(smallModel(), 1, {}, /*Queue=*/1);
  // One long request runs, one waits, the next is refused.
  json Long = chatBody("long", 400, 0, false);
  std::thread Runner([&] { post(S, "/v1/chat/completions", Long); });
  while (S.metrics()["lumen_slots_busy"].get<double>() < 1)
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  std::thread Waiter([&] { post(S, "/v1/chat/completions", chatBody("short", 2, 0, false)); });
  while (S.metrics()["lumen_queue_depth"].get<double>() < 1)
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  int Status = 0;
  json R = post(S, "/v1/chat/completions", chatBody("refused", 2, 0, false), &Status);
  EXPECT_EQ(Status, 503);
  EXPECT_EQ(R["error"]["type"], "unavailable_error");
  Runner.join();
  Waiter.join();
  EXPECT_EQ(S.metrics()["lumen_requests_rejected_total"], 1);
}

/// Streams Body and hangs up after the first chunk.
void streamAndHangUp(const TestServer &S, json Body) {
  Body["stream"] = true;
  httplib::Client C = S.client();
  httplib::Request Req;
  Req.method = "POST";
  Req.path = "/v1/chat/completions";
  Req.body = Body.dump();
  Req.set_header("Content-Type", "application/json");
  Req.content_receiver = [](const char *, size_t, uint64_t, uint64_t) { return false; };
  C.send(Req);
}

TEST(ServerTest, AClientThatGoesAwayFreesItsSlot) {
  TestServer S(smallModel(), 1);
  streamAndHangUp(S, chatBody("never mind", 100000, 0, false));
  for (int I = 0; I < 2000 && S.metrics()["lumen_slots_busy"].get<double>() > 0; ++I)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  json M = S.metrics();
  EXPECT_EQ(M["lumen_slots_busy"], 0);
  EXPECT_EQ(M["lumen_requests_cancelled_total"], 1);
  EXPECT_EQ(M["lumen_requests_failed_total"], 0); // Cancelled is not failed (SchedulerTest fails a step).
  EXPECT_LT(M["lumen_generated_tokens_total"].get<double>(), 400); // Stopped within a few steps, not at the end.
  // The slot serves the next request.
  EXPECT_EQ(post(S, "/v1/chat/completions", chatBody("next", 3, 0, false))["usage"]["completion_tokens"], 3);
}

int64_t rssKiB() {
  std::ifstream F("/proc/self/status");
  std::string Line;
  while (std::getline(F, Line))
    if (Line.rfind("VmRSS:", 0) == 0)
      return std::stoll(Line.substr(6));
  return 0;
}

TEST(ServerTest, LoadOf64Clients) {
  TestServer S(smallModel(), 8, {}, 64);
  auto Round = [&](int Seed) {
    std::vector<std::thread> Clients;
    std::atomic<int> Right{0}, Wrong{0};
    for (int I = 0; I < 64; ++I)
      Clients.emplace_back([&, I] {
        const int Kind = (I + Seed) % 4, Tokens = 4 + I % 9;
        json B = chatBody(absl::StrFormat("client %d of round %d", I, Seed), Tokens, I % 3 ? 0.7 : 0, false);
        if (Kind == 0) { // Garbage.
          auto R = S.client().Post("/v1/chat/completions", std::string("{\"messages\":[") + char('A' + I % 26),
                                   "application/json");
          (R && R->status == 400 ? Right : Wrong)++;
        } else if (Kind == 1) { // Hangs up midway.
          streamAndHangUp(S, chatBody("bye", 1000, 0, false));
          Right++;
        } else if (Kind == 2) { // Streams.
          B["stream"] = true;
          B["stream_options"] = {{"include_usage", true}};
          auto R = S.client().Post("/v1/chat/completions", B.dump(), "application/json");
          std::vector<std::string> E = R ? events(R->body) : std::vector<std::string>{};
          const bool Ok = E.size() >= 3 && E.back() == "[DONE]" &&
                          json::parse(E[E.size() - 2])["usage"]["completion_tokens"] == Tokens;
          (Ok ? Right : Wrong)++;
        } else {
          int Status = 0;
          json R = post(S, "/v1/chat/completions", B, &Status);
          (Status == 200 && R["usage"]["completion_tokens"] == Tokens ? Right : Wrong)++;
        }
      });
    for (std::thread &T : Clients)
      T.join();
    EXPECT_EQ(Wrong.load(), 0);
    EXPECT_EQ(Right.load(), 64);
    // Back to idle: every slot free, nothing queued.
    for (int I = 0; I < 2000 && S.metrics()["lumen_slots_busy"].get<double>() > 0; ++I)
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    json M = S.metrics();
    EXPECT_EQ(M["lumen_slots_busy"], 0);
    EXPECT_EQ(M["lumen_queue_depth"], 0);
  };
  Round(0); // Warms up: KV cache pages, buffers, thread stacks.
  const int64_t Before = rssKiB();
  for (int R = 1; R <= 3; ++R)
    Round(R);
  const int64_t After = rssKiB();
#ifndef __SANITIZE_ADDRESS__ // ASan's quarantine holds freed memory (RSS grows); its leak check runs at exit.
  EXPECT_LT(After - Before, 16 * 1024) << "RSS grew from " << Before << " KiB to " << After << " KiB over 3 rounds";
#else
  (void)Before;
  (void)After;
#endif
  EXPECT_EQ(S.client().Get("/health")->status, 200);
}

TEST(ServerTest, ShutdownEndsTheStreams) {
  TestServer S(smallModel(), 2);
  json B = chatBody("forever", 100000, 0, false);
  B["stream"] = true;
  std::string Body;
  std::thread Client([&] {
    auto R = S.client().Post("/v1/chat/completions", B.dump(), "application/json");
    if (R)
      Body = R->body;
  });
  while (S.metrics()["lumen_generated_tokens_total"].get<double>() < 5)
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  S.Jobs->shutdown();
  Client.join();
  std::vector<std::string> E = events(Body);
  ASSERT_GE(E.size(), 2u);
  EXPECT_EQ(E.back(), "[DONE]");
  EXPECT_NE(E[E.size() - 2].find("shutting down"), std::string::npos);
  int Status = 0;
  post(S, "/v1/chat/completions", chatBody("late", 2, 0, false), &Status);
  EXPECT_EQ(Status, 503);
}

} // namespace

namespace {

TEST(ServerTest, FreeSlotsTakeRequestsWhateverTheQueue) {
  // No waiting room, but every free slot is used: 4 at once on 4 slots all run.
  TestServer S(smallModel(), 4, {}, /*Queue=*/0);
  std::vector<std::thread> T;
  std::atomic<int> Ok{0};
  for (int I = 0; I < 4; ++I)
    T.emplace_back([&, I] {
      int Status = 0;
      post(S, "/v1/chat/completions", chatBody(absl::StrFormat("r%d", I), 20, 0, false), &Status);
      Ok += Status == 200;
    });
  for (std::thread &Th : T)
    Th.join();
  EXPECT_EQ(Ok.load(), 4);
  EXPECT_EQ(S.metrics()["lumen_requests_rejected_total"], 0);
}

TEST(ServerTest, ANonStreamedClientThatGoesAwayIsCancelled) {
  TestServer S(smallModel(), 1, {}, 64, /*Ctx=*/32000); // Room for more than 1.5 s of tokens.
  { // A raw connection: the request, 1.5 s, then it closes.
    const int Fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in Addr{};
    Addr.sin_family = AF_INET;
    Addr.sin_port = htons(S.Http->port());
    Addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(connect(Fd, reinterpret_cast<sockaddr *>(&Addr), sizeof(Addr)), 0);
    const std::string Body = chatBody("forever", 100000, 0, false).dump();
    const std::string Req = absl::StrFormat("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: "
                                            "application/json\r\nContent-Length: %d\r\n\r\n%s",
                                            Body.size(), Body);
    ASSERT_EQ(send(Fd, Req.data(), Req.size(), 0), ssize_t(Req.size()));
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    EXPECT_GT(S.metrics()["lumen_slots_busy"].get<double>(), 0);
    close(Fd);
  }
  for (int I = 0; I < 1000 && S.metrics()["lumen_slots_busy"].get<double>() > 0; ++I)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  json M = S.metrics();
  EXPECT_EQ(M["lumen_slots_busy"], 0);
  EXPECT_EQ(M["lumen_requests_cancelled_total"], 1);
  EXPECT_LT(M["lumen_generated_tokens_total"].get<double>(), 31000);
  // A long non-streamed answer (over a second: spaces go out first) still comes whole and parses.
  json R = post(S, "/v1/chat/completions", chatBody("long", 12000, 0, false));
  EXPECT_EQ(R["usage"]["completion_tokens"], 12000);
}

TEST(ServerTest, HttpDetails) {
  TestServer S(smallModel(), 1);
  auto C = S.client();
  // A JSON body sent as a form (curl -d) over httplib's 8 KiB form limit.
  std::string Long = json({{"prompt", std::string(20000, 'a')}, {"max_tokens", 1}}).dump();
  auto F = C.Post("/v1/completions", Long, "application/x-www-form-urlencoded");
  ASSERT_TRUE(F);
  EXPECT_EQ(F->status, 400); // The prompt is too long for the context, not the body for the server.
  EXPECT_EQ(json::parse(F->body)["error"]["code"], "context_length_exceeded");
  // The other method on a known path: 405 and Allow.
  auto G = C.Get("/v1/chat/completions");
  EXPECT_EQ(G->status, 405);
  EXPECT_EQ(G->get_header_value("Allow"), "POST");
  EXPECT_EQ(C.Post("/health", "", "text/plain")->status, 405);
  // /v1/models/{id}.
  EXPECT_EQ(C.Get("/v1/models/test-model")->status, 200);
  EXPECT_EQ(C.Get("/v1/models/other")->status, 404);
  // logit_bias steers greedy decoding to the token.
  const int32_t Id = smallModel().tokenizer().encode("Q", false).front();
  json B = {{"prompt", "x"}, {"max_tokens", 4}, {"temperature", 0}, {"ignore_eos", true},
            {"logit_bias", {{std::to_string(Id), 100}}}, {"logprobs", 1}};
  json R = post(S, "/v1/completions", B);
  EXPECT_EQ(R["choices"][0]["text"], "QQQQ");
  B["logit_bias"] = {{"999999", 1}};
  int Status = 0;
  json E = post(S, "/v1/completions", B, &Status);
  EXPECT_EQ(Status, 400);
  EXPECT_EQ(E["error"]["param"], "logit_bias");
  // Streamed legacy logprobs: text_offset counts on across chunks.
  B["logit_bias"] = {{std::to_string(Id), 100}};
  B["stream"] = true;
  auto RS = C.Post("/v1/completions", B.dump(), "application/json");
  std::vector<int64_t> Offsets;
  for (const std::string &Ev : events(RS->body))
    if (Ev != "[DONE]")
      if (json J = json::parse(Ev); !J["choices"].empty() && J["choices"][0]["logprobs"].is_object())
        Offsets.push_back(J["choices"][0]["logprobs"]["text_offset"][0]);
  EXPECT_EQ(Offsets, (std::vector<int64_t>{0, 1, 2, 3}));
}

TEST(ServerTest, BearerSchemeIsCaseInsensitive) {
  ServerOptions SO;
  SO.ApiKey = "k";
  TestServer S(smallModel(), 1, SO);
  EXPECT_EQ(S.client().Get("/v1/models", {{"Authorization", "bearer k"}})->status, 200);
  EXPECT_EQ(S.client().Get("/v1/models", {{"Authorization", "BEARER k"}})->status, 200);
  EXPECT_EQ(S.client().Get("/v1/models", {{"Authorization", "Basic k"}})->status, 401);
}

} // namespace
