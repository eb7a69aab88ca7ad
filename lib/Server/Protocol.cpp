//===- Protocol.cpp - OpenAI's request and response shapes -----------------===//
#include "lumen/Server/Protocol.h"

#include "absl/strings/str_format.h"

#include <cmath>
#include <limits>

namespace lumen::server {

using nlohmann::json;

namespace {

ApiError bad(std::string Param, std::string Message) {
  ApiError E;
  E.Param = std::move(Param);
  E.Message = std::move(Message);
  return E;
}

/// Where and why a body is not JSON: the parser's own message, through its
/// SAX interface (the DOM parser without exceptions only says that it failed).
class SyntaxError : public nlohmann::json_sax<json> {
public:
  std::string Message;
  bool null() override { return true; }
  bool boolean(bool) override { return true; }
  bool number_integer(number_integer_t) override { return true; }
  bool number_unsigned(number_unsigned_t) override { return true; }
  bool number_float(number_float_t, const string_t &) override { return true; }
  bool string(string_t &) override { return true; }
  bool binary(binary_t &) override { return true; }
  bool start_object(std::size_t) override { return true; }
  bool key(string_t &) override { return true; }
  bool end_object() override { return true; }
  bool start_array(std::size_t) override { return true; }
  bool end_array() override { return true; }
  bool parse_error(std::size_t, const std::string &, const nlohmann::detail::exception &E) override {
    Message = E.what();
    // "[json.exception.parse_error.101] parse error at line 1, column 9: ...": the part after the tag.
    if (size_t Tag = Message.find("] "); Message.starts_with("[json.exception") && Tag != std::string::npos)
      Message.erase(0, Tag + 2);
    return false;
  }
};

/// The object a body must be, or the error.
std::optional<ApiError> parseObject(std::string_view Body, json &Out) {
  Out = json::parse(Body.begin(), Body.end(), nullptr, /*allow_exceptions=*/false);
  if (Out.is_discarded()) {
    SyntaxError Why;
    json::sax_parse(Body.begin(), Body.end(), &Why);
    return bad("", Why.Message.empty() ? "the request body is not valid JSON"
                                       : "the request body is not valid JSON: " + Why.Message);
  }
  if (!Out.is_object())
    return bad("", "the request body must be a JSON object");
  return std::nullopt;
}

/// Field readers: absent and null leave Out as it is; a value of the wrong
/// type or out of range is an error naming the field.
class Fields {
public:
  explicit Fields(const json &J) : J(J) {}
  const json *get(const char *Name) const {
    auto It = J.find(Name);
    return It == J.end() || It->is_null() ? nullptr : &*It;
  }
  std::optional<ApiError> boolean(const char *Name, bool &Out) const {
    if (const json *V = get(Name)) {
      if (!V->is_boolean())
        return bad(Name, absl::StrFormat("'%s' must be a boolean", Name));
      Out = V->get<bool>();
    }
    return std::nullopt;
  }
  std::optional<ApiError> number(const char *Name, double Min, double Max, float &Out) const {
    if (const json *V = get(Name)) {
      if (!V->is_number())
        return bad(Name, absl::StrFormat("'%s' must be a number", Name));
      const double D = V->get<double>();
      if (!std::isfinite(D) || D < Min || D > Max)
        return bad(Name, absl::StrFormat("'%s' is %g: it must be in [%g, %g]", Name, D, Min, Max));
      Out = static_cast<float>(D);
    }
    return std::nullopt;
  }
  std::optional<ApiError> integer(const char *Name, int64_t Min, int64_t Max, int64_t &Out) const {
    if (const json *V = get(Name)) {
      if (!V->is_number_integer())
        return bad(Name, absl::StrFormat("'%s' must be an integer", Name));
      const bool Above = V->is_number_unsigned() ? V->get<uint64_t>() > uint64_t(Max) : V->get<int64_t>() > Max;
      const bool Below = V->is_number_unsigned() ? Min > 0 && V->get<uint64_t>() < uint64_t(Min)
                                                 : V->get<int64_t>() < Min;
      if (Above || Below)
        return bad(Name, absl::StrFormat("'%s' must be in [%d, %d]", Name, Min, Max));
      Out = V->is_number_unsigned() ? int64_t(V->get<uint64_t>()) : V->get<int64_t>();
    }
    return std::nullopt;
  }
  std::optional<ApiError> string(const char *Name, std::string &Out) const {
    if (const json *V = get(Name)) {
      if (!V->is_string())
        return bad(Name, absl::StrFormat("'%s' must be a string", Name));
      Out = V->get<std::string>();
    }
    return std::nullopt;
  }

private:
  const json &J;
};

#define LUMEN_TRY(X)                                                                                                  \
  if (std::optional<ApiError> E_ = (X))                                                                               \
    return E_;

/// A message's content: a string, or an array of {"type": "text", "text": ...} parts.
std::optional<ApiError> parseContent(const json &C, const std::string &Param, std::string &Out) {
  if (C.is_null()) {
    Out.clear();
    return std::nullopt;
  }
  if (C.is_string()) {
    Out = C.get<std::string>();
    return std::nullopt;
  }
  if (!C.is_array())
    return bad(Param, absl::StrFormat("'%s' must be a string or an array of text parts", Param));
  Out.clear();
  for (size_t I = 0; I < C.size(); ++I) {
    const json &Part = C[I];
    const std::string P = absl::StrFormat("%s[%d]", Param, I);
    if (!Part.is_object())
      return bad(P, absl::StrFormat("'%s' must be an object {\"type\": \"text\", \"text\": ...}", P));
    auto Type = Part.find("type");
    if (Type == Part.end() || !Type->is_string())
      return bad(P + ".type", absl::StrFormat("'%s.type' must be a string", P));
    if (Type->get<std::string>() != "text")
      return bad(P + ".type", absl::StrFormat("'%s.type' is '%s': only text parts are supported", P,
                                              Type->get<std::string>()));
    auto Text = Part.find("text");
    if (Text == Part.end() || !Text->is_string())
      return bad(P + ".text", absl::StrFormat("'%s.text' must be a string", P));
    Out += Text->get<std::string>();
  }
  return std::nullopt;
}

std::optional<ApiError> parseMessages(const json *V, const RequestLimits &L, std::vector<model::ChatMessage> &Out) {
  if (!V)
    return bad("messages", "'messages' is required");
  if (!V->is_array())
    return bad("messages", "'messages' must be an array of messages");
  if (V->empty())
    return bad("messages", "'messages' must not be empty");
  if (V->size() > L.MaxMessages)
    return bad("messages", absl::StrFormat("'messages' has %d messages: at most %d", V->size(), L.MaxMessages));
  for (size_t I = 0; I < V->size(); ++I) {
    const json &M = (*V)[I];
    const std::string P = absl::StrFormat("messages[%d]", I);
    if (!M.is_object())
      return bad(P, absl::StrFormat("'%s' must be an object with 'role' and 'content'", P));
    auto Role = M.find("role");
    if (Role == M.end() || !Role->is_string())
      return bad(P + ".role", absl::StrFormat("'%s.role' must be a string", P));
    std::string R = Role->get<std::string>();
    if (R == "developer") // OpenAI's newer name for the system role.
      R = "system";
    if (R != "system" && R != "user" && R != "assistant")
      return bad(P + ".role", absl::StrFormat("'%s.role' is '%s': it must be system (or developer), user or assistant", P,
                                              R.size() > 40 ? R.substr(0, 40) + "..." : R));
    // A history with calls in it came from a server that had tools; this
    // one has none, and dropping the calls would give the model a
    // different conversation than the client's.
    for (const char *Calls : {"tool_calls", "function_call"})
      if (auto C = M.find(Calls); C != M.end() && !C->is_null() && !(C->is_array() && C->empty()))
        return bad(P + "." + Calls, absl::StrFormat("'%s.%s': tool and function calls are not supported", P, Calls));
    auto Content = M.find("content");
    if (Content == M.end())
      return bad(P + ".content", absl::StrFormat("'%s.content' is required", P));
    model::ChatMessage Msg{R, ""};
    LUMEN_TRY(parseContent(*Content, P + ".content", Msg.Content));
    Out.push_back(std::move(Msg));
  }
  return std::nullopt;
}

std::optional<ApiError> parseStop(const json *V, const RequestLimits &L, std::vector<std::string> &Out) {
  if (!V)
    return std::nullopt;
  std::vector<std::string> S;
  if (V->is_string()) {
    S.push_back(V->get<std::string>());
  } else if (V->is_array()) {
    for (const json &E : *V) {
      if (!E.is_string())
        return bad("stop", "'stop' must be a string or an array of strings");
      S.push_back(E.get<std::string>());
    }
  } else {
    return bad("stop", "'stop' must be a string or an array of strings");
  }
  if (S.size() > L.MaxStops)
    return bad("stop", absl::StrFormat("'stop' has %d sequences: at most %d", S.size(), L.MaxStops));
  for (const std::string &T : S) {
    if (T.empty())
      return bad("stop", "'stop' sequences must not be empty");
    if (T.size() > L.MaxStopBytes)
      return bad("stop", absl::StrFormat("a 'stop' sequence is %d bytes: at most %d", T.size(), L.MaxStopBytes));
  }
  Out = std::move(S);
  return std::nullopt;
}

/// /v1/completions' prompt: a string, an array of one string, or an array of token ids.
std::optional<ApiError> parsePrompt(const json *V, const RequestLimits &L, CompletionRequest &Out) {
  if (!V)
    return bad("prompt", "'prompt' is required");
  if (V->is_string()) {
    Out.Prompt = V->get<std::string>();
    return std::nullopt;
  }
  if (V->is_array() && V->size() == 1 && (*V)[0].is_string()) {
    Out.Prompt = (*V)[0].get<std::string>();
    return std::nullopt;
  }
  if (V->is_array() && !V->empty() && (*V)[0].is_number()) {
    if (V->size() > L.MaxPromptTokens)
      return bad("prompt", absl::StrFormat("'prompt' has %d tokens: at most %d", V->size(), L.MaxPromptTokens));
    for (const json &T : *V) {
      if (!T.is_number_integer() || (!T.is_number_unsigned() && T.get<int64_t>() < 0) ||
          (T.is_number_unsigned() ? T.get<uint64_t>() : uint64_t(T.get<int64_t>())) >
              uint64_t(std::numeric_limits<int32_t>::max()))
        return bad("prompt", "'prompt' token ids must be non-negative integers");
      Out.PromptTokens.push_back(static_cast<int32_t>(T.get<int64_t>()));
    }
    Out.PromptIsTokens = true;
    return std::nullopt;
  }
  if (V->is_array() && V->size() > 1)
    return bad("prompt", "'prompt' holds several prompts: send one per request");
  return bad("prompt", "'prompt' must be a string or an array of token ids");
}

} // namespace

json ApiError::toJson() const {
  json E = {{"message", Message}, {"type", Type}, {"param", Param.empty() ? json(nullptr) : json(Param)},
            {"code", Code.empty() ? json(nullptr) : json(Code)}};
  return {{"error", E}};
}

std::optional<ApiError> parseCompletionRequest(std::string_view Body, bool Chat, const RequestLimits &L,
                                               CompletionRequest &Out) {
  json J;
  LUMEN_TRY(parseObject(Body, J));
  Out = CompletionRequest();
  Out.Chat = Chat;
  Fields F(J);
  LUMEN_TRY(F.string("model", Out.Model));
  if (Chat) {
    LUMEN_TRY(parseMessages(F.get("messages"), L, Out.Messages));
  } else {
    LUMEN_TRY(parsePrompt(F.get("prompt"), L, Out));
    if (const json *Echo = F.get("echo"); Echo && (!Echo->is_boolean() || Echo->get<bool>()))
      return bad("echo", "'echo' is not supported (false only)");
    if (F.get("suffix"))
      return bad("suffix", "'suffix' is not supported");
  }
  LUMEN_TRY(F.boolean("stream", Out.Stream));
  if (const json *SO = F.get("stream_options")) {
    if (!SO->is_object())
      return bad("stream_options", "'stream_options' must be an object");
    if (!Out.Stream)
      return bad("stream_options", "'stream_options' is only allowed with 'stream': true");
    Fields G(*SO);
    if (std::optional<ApiError> E = G.boolean("include_usage", Out.IncludeUsage)) {
      E->Param = "stream_options.include_usage";
      return E;
    }
  }
  int64_t N = 1;
  LUMEN_TRY(F.integer("n", 1, 128, N));
  if (N != 1)
    return bad("n", "'n' must be 1: one choice per request");
  int64_t BestOf = 1; // /v1/completions' legacy twin of n.
  LUMEN_TRY(F.integer("best_of", 1, 128, BestOf));
  if (BestOf != 1)
    return bad("best_of", "'best_of' must be 1: one choice per request");
  // max_completion_tokens is OpenAI's newer name; either may come.
  LUMEN_TRY(F.integer("max_tokens", 1, L.MaxTokens, Out.MaxTokens));
  LUMEN_TRY(F.integer("max_completion_tokens", 1, L.MaxTokens, Out.MaxTokens));
  model::SamplerOptions &S = Out.Sampling;
  LUMEN_TRY(F.number("temperature", 0, 2, S.Temperature));
  LUMEN_TRY(F.number("top_p", 0, 1, S.TopP));
  if (S.TopP <= 0)
    return bad("top_p", "'top_p' must be above 0");
  int64_t TopK = S.TopK; // <= 0: every token, as llama-server.
  LUMEN_TRY(F.integer("top_k", std::numeric_limits<int32_t>::min(), std::numeric_limits<int32_t>::max(), TopK));
  S.TopK = static_cast<int32_t>(std::max<int64_t>(TopK, 0));
  LUMEN_TRY(F.number("min_p", 0, 1, S.MinP));
  LUMEN_TRY(F.number("repeat_penalty", 0, 10, S.RepeatPenalty));
  if (S.RepeatPenalty <= 0)
    return bad("repeat_penalty", "'repeat_penalty' must be above 0");
  int64_t LastN = S.RepeatLastN; // -1: the whole context, as llama-server.
  LUMEN_TRY(F.integer("repeat_last_n", -1, 1 << 20, LastN));
  S.RepeatLastN = static_cast<int32_t>(LastN < 0 ? 1 << 20 : LastN);
  LUMEN_TRY(F.number("frequency_penalty", -2, 2, S.FrequencyPenalty));
  LUMEN_TRY(F.number("presence_penalty", -2, 2, S.PresencePenalty));
  if (F.get("seed")) {
    int64_t Seed = 0;
    if (const json *V = F.get("seed"); V->is_number_unsigned()) {
      S.Seed = V->get<uint64_t>();
      Out.SeedGiven = true;
    } else {
      LUMEN_TRY(F.integer("seed", std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max(), Seed));
      S.Seed = static_cast<uint64_t>(Seed);
      Out.SeedGiven = Seed != -1; // -1: a random seed, as llama-server.
    }
  }
  if (const json *LB = F.get("logit_bias")) {
    if (!LB->is_object())
      return bad("logit_bias", "'logit_bias' must be an object of token id: bias");
    if (LB->size() > 1024)
      return bad("logit_bias", "'logit_bias' may hold at most 1024 tokens");
    for (const auto &[Key, Bias] : LB->items()) {
      int32_t Id = 0;
      if (Key.empty() || Key.size() > 10 || Key.find_first_not_of("0123456789") != std::string::npos ||
          std::stoll(Key) > std::numeric_limits<int32_t>::max())
        return bad("logit_bias", absl::StrFormat("'logit_bias' keys must be token ids ('%s' is not)",
                                                 Key.size() > 20 ? Key.substr(0, 20) + "..." : Key));
      Id = static_cast<int32_t>(std::stoll(Key));
      if (!Bias.is_number() || !std::isfinite(Bias.get<double>()) || std::fabs(Bias.get<double>()) > 100)
        return bad("logit_bias", "'logit_bias' values must be numbers in [-100, 100]");
      S.LogitBias.emplace_back(Id, static_cast<float>(Bias.get<double>()));
    }
  }
  LUMEN_TRY(parseStop(F.get("stop"), L, Out.Stop));
  LUMEN_TRY(F.boolean("ignore_eos", Out.IgnoreEos));
  if (const json *K = F.get("chat_template_kwargs"); K && Chat) {
    if (!K->is_object())
      return bad("chat_template_kwargs", "'chat_template_kwargs' must be an object");
    if (const auto It = K->find("enable_thinking"); It != K->end()) {
      if (!It->is_boolean())
        return bad("chat_template_kwargs", "'chat_template_kwargs.enable_thinking' must be a boolean");
      Out.Thinking = It->get<bool>();
    }
  }
  if (Chat) {
    LUMEN_TRY(F.boolean("logprobs", Out.Logprobs));
    int64_t Top = 0;
    LUMEN_TRY(F.integer("top_logprobs", 0, L.MaxTopLogprobs, Top));
    if (Top > 0 && !Out.Logprobs)
      return bad("top_logprobs", "'top_logprobs' needs 'logprobs': true");
    Out.TopLogprobs = static_cast<int>(Top);
  } else { // The legacy API: logprobs is the number of alternatives.
    int64_t Top = -1;
    if (const json *V = F.get("logprobs"); V && V->is_boolean()) {
      Out.Logprobs = V->get<bool>();
    } else {
      LUMEN_TRY(F.integer("logprobs", 0, L.MaxTopLogprobs, Top));
      Out.Logprobs = Top >= 0;
      Out.TopLogprobs = static_cast<int>(std::max<int64_t>(Top, 0));
    }
  }
  for (const char *Name : {"tools", "functions"}) // An empty list (some clients send one) asks for nothing.
    if (const json *T = F.get(Name); T && !(T->is_array() && T->empty()))
      return bad(Name, "tool and function calls are not supported");
  // Without tools, only "none" and "auto" (which then call nothing) can be honoured.
  if (const json *TC = F.get("tool_choice"); TC && !(TC->is_string() && (*TC == "none" || *TC == "auto")))
    return bad("tool_choice", "tool and function calls are not supported: 'tool_choice' may be \"none\" or \"auto\"");
  if (const json *RF = F.get("response_format")) {
    if (!RF->is_object() || !RF->contains("type") || !(*RF)["type"].is_string() || (*RF)["type"] != "text")
      return bad("response_format", "'response_format' must be {\"type\": \"text\"}: structured output is not "
                                    "supported");
  }
  return std::nullopt;
}

std::optional<ApiError> parseTokenizeRequest(std::string_view Body, TokenizeRequest &Out) {
  json J;
  LUMEN_TRY(parseObject(Body, J));
  Fields F(J);
  if (!F.get("content"))
    return bad("content", "'content' is required");
  LUMEN_TRY(F.string("content", Out.Content));
  LUMEN_TRY(F.boolean("add_special", Out.AddSpecial));
  LUMEN_TRY(F.boolean("with_pieces", Out.WithPieces));
  return std::nullopt;
}

std::optional<ApiError> parseDetokenizeRequest(std::string_view Body, int32_t Vocab, std::vector<int32_t> &Out) {
  json J;
  LUMEN_TRY(parseObject(Body, J));
  Fields F(J);
  const json *T = F.get("tokens");
  if (!T)
    return bad("tokens", "'tokens' is required");
  if (!T->is_array())
    return bad("tokens", "'tokens' must be an array of token ids");
  for (const json &Id : *T) {
    if (!Id.is_number_integer() || (Id.is_number_unsigned() ? Id.get<uint64_t>() >= uint64_t(Vocab)
                                                            : Id.get<int64_t>() < 0 || Id.get<int64_t>() >= Vocab))
      return bad("tokens", absl::StrFormat("'tokens' must hold token ids in [0, %d)", Vocab));
    Out.push_back(static_cast<int32_t>(Id.get<int64_t>()));
  }
  return std::nullopt;
}

const char *finishReasonName(FinishReason R) { return R == FinishReason::Stop ? "stop" : "length"; }

json Usage::toJson() const {
  return {{"prompt_tokens", PromptTokens},
          {"completion_tokens", CompletionTokens},
          {"total_tokens", PromptTokens + CompletionTokens},
          {"prompt_tokens_details", {{"cached_tokens", CachedTokens}}}};
}

namespace {

json chatLogprobs(const std::vector<TokenLogprob> &L) {
  json Content = json::array();
  auto Bytes = [](const std::string &S) {
    json B = json::array();
    for (unsigned char C : S)
      B.push_back(int(C));
    return B;
  };
  for (const TokenLogprob &T : L) {
    json Top = json::array();
    for (const auto &[Tok, P] : T.Top)
      Top.push_back({{"token", Tok}, {"logprob", P}, {"bytes", Bytes(Tok)}});
    Content.push_back({{"token", T.Token}, {"logprob", T.Logprob}, {"bytes", Bytes(T.Token)}, {"top_logprobs", Top}});
  }
  return {{"content", Content}};
}

json textLogprobs(const std::vector<TokenLogprob> &L) {
  json Tokens = json::array(), Lp = json::array(), Top = json::array(), Offsets = json::array();
  for (const TokenLogprob &T : L) {
    Tokens.push_back(T.Token);
    Lp.push_back(T.Logprob);
    json Alt = json::object();
    for (const auto &[Tok, P] : T.Top)
      Alt[Tok] = P;
    Top.push_back(Alt);
    Offsets.push_back(T.TextOffset);
  }
  return {{"tokens", Tokens}, {"token_logprobs", Lp}, {"top_logprobs", Top}, {"text_offset", Offsets}};
}

json base(const CompletionRequest &R, const ResponseHeader &H, bool Chunk) {
  return {{"id", H.Id},
          {"object", R.Chat ? (Chunk ? "chat.completion.chunk" : "chat.completion") : "text_completion"},
          {"created", H.Created},
          {"model", H.Model},
          {"system_fingerprint", "lumen"}};
}

} // namespace

json completionResponse(const CompletionRequest &R, const ResponseHeader &H, const std::string &Text,
                        const std::vector<TokenLogprob> &Logprobs, FinishReason Finish, const Usage &U) {
  json Out = base(R, H, false);
  json Choice = {{"index", 0}, {"finish_reason", finishReasonName(Finish)}};
  json Lp = R.Logprobs ? (R.Chat ? chatLogprobs(Logprobs) : textLogprobs(Logprobs)) : json(nullptr);
  if (R.Chat)
    Choice["message"] = {{"role", "assistant"}, {"content", Text}, {"refusal", nullptr}};
  else
    Choice["text"] = Text;
  Choice["logprobs"] = Lp;
  Out["choices"] = json::array({Choice});
  Out["usage"] = U.toJson();
  return Out;
}

json streamChunk(const CompletionRequest &R, const ResponseHeader &H, const std::string &Text,
                 const std::vector<TokenLogprob> &Logprobs, bool First) {
  json Out = base(R, H, true);
  json Choice = {{"index", 0}, {"finish_reason", nullptr}};
  json Lp = R.Logprobs && !Logprobs.empty() ? (R.Chat ? chatLogprobs(Logprobs) : textLogprobs(Logprobs))
                                            : json(nullptr);
  if (R.Chat) {
    json Delta = {{"content", Text}};
    if (First)
      Delta["role"] = "assistant";
    Choice["delta"] = Delta;
  } else {
    Choice["text"] = Text;
  }
  Choice["logprobs"] = Lp;
  Out["choices"] = json::array({Choice});
  if (R.IncludeUsage) // OpenAI: null in every chunk but the last.
    Out["usage"] = nullptr;
  return Out;
}

json finalChunk(const CompletionRequest &R, const ResponseHeader &H, FinishReason Finish) {
  json Out = base(R, H, true);
  json Choice = {{"index", 0}, {"finish_reason", finishReasonName(Finish)}, {"logprobs", nullptr}};
  if (R.Chat)
    Choice["delta"] = json::object();
  else
    Choice["text"] = "";
  Out["choices"] = json::array({Choice});
  if (R.IncludeUsage)
    Out["usage"] = nullptr;
  return Out;
}

json usageChunk(const CompletionRequest &R, const ResponseHeader &H, const Usage &U) {
  json Out = base(R, H, true);
  Out["choices"] = json::array();
  Out["usage"] = U.toJson();
  return Out;
}

bool constantTimeEquals(std::string_view A, std::string_view B) {
  // Every byte of the longer is looked at whatever matches; only the
  // lengths' equality shows in the time.
  const size_t N = std::max(A.size(), B.size());
  unsigned char Diff = A.size() != B.size();
  for (size_t I = 0; I < N; ++I) {
    const unsigned char X = I < A.size() ? A[I] : 0, Y = I < B.size() ? B[I] : 0;
    Diff |= X ^ Y;
  }
  volatile unsigned char Result = Diff;
  return Result == 0;
}

} // namespace lumen::server
