//===- request_fuzzer.cpp - The server's request parsing -------------------===//
//
// Any body either parses or is a 400 naming what is wrong, never a crash or
// an exception; what parses is a valid sampler setting, and the responses
// built from it serialize (invalid UTF-8 included). The first byte picks
// the endpoint.
//
//===----------------------------------------------------------------------===//
#include "lumen/Server/Protocol.h"

#include <cstdlib>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *Data, size_t Size) {
  using namespace lumen::server;
  if (Size == 0)
    return 0;
  const std::string_view Body(reinterpret_cast<const char *>(Data) + 1, Size - 1);
  auto CheckError = [](const ApiError &E) {
    if (E.Status != 400 || E.Message.empty())
      std::abort();
    (void)E.toJson().dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  };
  switch (Data[0] % 4) {
  case 0:
  case 1: {
    const bool Chat = Data[0] % 4 == 0;
    CompletionRequest R;
    if (std::optional<ApiError> E = parseCompletionRequest(Body, Chat, RequestLimits(), R)) {
      CheckError(*E);
      return 0;
    }
    if (!R.Sampling.validate().ok() || (Chat && R.Messages.empty()) || R.Stop.size() > 4 || R.MaxTokens == 0)
      std::abort(); // Accepted means usable.
    const ResponseHeader H{"id", 1, "m"};
    std::string Text = R.Chat ? R.Messages.back().Content : R.Prompt; // Any bytes, as generated text may be.
    std::vector<TokenLogprob> L = {{Text, -1.0f, {{Text, -1.0f}}}};
    for (const nlohmann::json &J : {completionResponse(R, H, Text, L, FinishReason::Stop, {1, 2, 0}),
                                    streamChunk(R, H, Text, L, true), finalChunk(R, H, FinishReason::Length),
                                    usageChunk(R, H, {1, 2, 3})})
      (void)J.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    return 0;
  }
  case 2: {
    TokenizeRequest T;
    if (std::optional<ApiError> E = parseTokenizeRequest(Body, T))
      CheckError(*E);
    return 0;
  }
  default: {
    std::vector<int32_t> Ids;
    if (std::optional<ApiError> E = parseDetokenizeRequest(Body, 1000, Ids)) {
      CheckError(*E);
      return 0;
    }
    for (int32_t Id : Ids)
      if (Id < 0 || Id >= 1000)
        std::abort();
    return 0;
  }
  }
}
