//===- lumen/Server/Protocol.h - OpenAI's request and response shapes -*- C++ -*-===//
//
// The JSON of the OpenAI-compatible API, apart from any HTTP: requests
// parsed and checked into CompletionRequest (a bad field is an ApiError
// naming it, as OpenAI's error object does), and the response objects and
// stream chunks built from what generation produced. Pure functions of
// their inputs, so the request parsing is fuzzed on its own
// (fuzz/request_fuzzer.cpp).
//
//===----------------------------------------------------------------------===//
#ifndef LUMEN_SERVER_PROTOCOL_H
#define LUMEN_SERVER_PROTOCOL_H

#include "lumen/Export.h"

#include "lumen/Model/Chat.h"
#include "lumen/Model/Sampler.h"

#include "nlohmann/json.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace lumen::server {

/// OpenAI's error object: {"error": {"message", "type", "param", "code"}}.
struct LUMEN_API ApiError {
  int Status = 400;
  std::string Message;
  std::string Param;                          // The field at fault, if any.
  std::string Type = "invalid_request_error"; // Or "authentication_error", "server_error", ...
  std::string Code;                           // E.g. "context_length_exceeded".

  nlohmann::json toJson() const;
};

/// Bounds on what a request may ask.
struct LUMEN_API RequestLimits {
  size_t MaxMessages = 1024;
  size_t MaxStops = 4;
  size_t MaxStopBytes = 256;
  size_t MaxPromptTokens = 1 << 20; // Token-id prompts (the context bounds them again).
  int64_t MaxTokens = 1 << 20;      // max_tokens (the context bounds generation again).
  int MaxTopLogprobs = 20;
};

/// A chat or text completion request, checked.
struct LUMEN_API CompletionRequest {
  bool Chat = true;
  std::string Model;
  std::vector<model::ChatMessage> Messages; // Chat.
  std::string Prompt;                       // Completions, as text...
  std::vector<int32_t> PromptTokens;        // ...or as token ids.
  bool PromptIsTokens = false;
  bool Stream = false;
  bool IncludeUsage = false;  // stream_options.include_usage.
  int64_t MaxTokens = -1;     // -1: until a stop or the context is full.
  std::vector<std::string> Stop;
  model::SamplerOptions Sampling;
  bool SeedGiven = false;     // Else the server draws one.
  bool IgnoreEos = false;
  /// chat_template_kwargs.enable_thinking (llama-server's): false opens a
  /// thinking model's reply (Qwen3) with an empty think block.
  bool Thinking = true;
  bool Logprobs = false;
  int TopLogprobs = 0;
};

/// Parses a POST /v1/chat/completions (Chat) or /v1/completions body. The
/// sampling defaults are llama-server's (temperature 0.8, top_k 40, top_p
/// 0.95, min_p 0.05). Returns the error to answer instead, if any.
LUMEN_API std::optional<ApiError> parseCompletionRequest(std::string_view Body, bool Chat, const RequestLimits &Limits,
                                                         CompletionRequest &Out);

/// POST /tokenize: {"content": string, "add_special": bool, "with_pieces": bool}.
struct LUMEN_API TokenizeRequest {
  std::string Content;
  bool AddSpecial = false;
  bool WithPieces = false;
};
LUMEN_API std::optional<ApiError> parseTokenizeRequest(std::string_view Body, TokenizeRequest &Out);
/// POST /detokenize: {"tokens": [ids]} (ids checked against Vocab).
LUMEN_API std::optional<ApiError> parseDetokenizeRequest(std::string_view Body, int32_t Vocab,
                                                         std::vector<int32_t> &Out);

/// One generated token's log-probability and the most likely alternatives.
struct LUMEN_API TokenLogprob {
  std::string Token; // Its text (raw bytes; may be part of a character).
  float Logprob = 0;
  std::vector<std::pair<std::string, float>> Top;
  size_t TextOffset = 0; // Where its text begins in the answer's bytes (legacy completions' text_offset).
};

/// Why generation ended: "stop" (end of turn or a stop string) or "length".
enum class FinishReason { Stop, Length };
LUMEN_API const char *finishReasonName(FinishReason R);

struct LUMEN_API Usage {
  int64_t PromptTokens = 0, CompletionTokens = 0, CachedTokens = 0;
  nlohmann::json toJson() const;
};

/// The identity every response and chunk of one request carries.
struct LUMEN_API ResponseHeader {
  std::string Id; // "chatcmpl-..." or "cmpl-...".
  int64_t Created = 0;
  std::string Model;
};

/// The whole response of a request that did not stream.
LUMEN_API nlohmann::json completionResponse(const CompletionRequest &R, const ResponseHeader &H,
                                            const std::string &Text, const std::vector<TokenLogprob> &Logprobs,
                                            FinishReason Finish, const Usage &U);
/// A stream chunk with Text (and the role, for a chat's first chunk).
LUMEN_API nlohmann::json streamChunk(const CompletionRequest &R, const ResponseHeader &H, const std::string &Text,
                                     const std::vector<TokenLogprob> &Logprobs, bool First);
/// The chunk that ends a stream's choice (empty delta, the finish reason).
LUMEN_API nlohmann::json finalChunk(const CompletionRequest &R, const ResponseHeader &H, FinishReason Finish);
/// The usage chunk (stream_options.include_usage): no choices.
LUMEN_API nlohmann::json usageChunk(const CompletionRequest &R, const ResponseHeader &H, const Usage &U);

/// Whether A and B are equal, in time independent of where they differ.
LUMEN_API bool constantTimeEquals(std::string_view A, std::string_view B);

} // namespace lumen::server

#endif
