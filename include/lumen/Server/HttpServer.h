//===- lumen/Server/HttpServer.h - The OpenAI-compatible HTTP API -*- C++ -*-===//
//
// The HTTP face of the scheduler: /v1/chat/completions, /v1/completions
// (streamed as server-sent events or whole), /v1/models, /health,
// /metrics (Prometheus text), /tokenize, /detokenize and a chat page at /.
// It listens before the model is loaded (/health answers 503 until
// setReady). cpp-httplib does the HTTP; this class only routes, checks the
// API key and turns requests into scheduler jobs (docs/SERVER.md).
//
//===----------------------------------------------------------------------===//
#ifndef LUMEN_SERVER_HTTPSERVER_H
#define LUMEN_SERVER_HTTPSERVER_H

#include "lumen/Export.h"

#include "lumen/Model/TransformerModel.h"
#include "lumen/Server/Protocol.h"
#include "lumen/Server/Scheduler.h"

#include "absl/status/status.h"

#include <memory>
#include <string>

namespace lumen::server {

struct LUMEN_API ServerOptions {
  std::string Host = "127.0.0.1"; // Loopback unless told otherwise.
  int Port = 8080;                // 0: any free port (see HttpServer::port).
  std::string ApiKey;             // Non-empty: "Authorization: Bearer KEY" on every endpoint but /health.
  size_t MaxBodyBytes = 4 << 20;  // Larger bodies are refused (413).
  RequestLimits Limits;
  unsigned HttpThreads = 64;      // Connections served at once (each stream holds one).
};

class LUMEN_API HttpServer {
public:
  explicit HttpServer(ServerOptions Options);
  ~HttpServer();

  /// Binds the address (an error if it cannot: in use, bad host).
  absl::Status bind();
  /// The bound port.
  int port() const;
  /// Serves on a thread of its own until stop().
  void start();
  /// The API answers from now on with Model's tokenizer and chat template,
  /// through Jobs, under the name ModelId. Model and Jobs must outlive stop().
  void setReady(const model::TransformerModel &Model, Scheduler &Jobs, std::string ModelId);
  /// Tokens of the shortest chat prompt once ready: one empty user message
  /// through the template (with its default system prompt), as requests
  /// are rendered. A context of no more holds no chat at all.
  int64_t emptyChatTokens() const;
  /// Lets open streams write their last events (up to 5 s), stops
  /// accepting and waits for the connections' handlers. End the
  /// scheduler's jobs first (Scheduler::shutdown), so that streams finish.
  void stop();

  struct Impl;

private:
  std::unique_ptr<Impl> P;
};

/// The chat page served at / (one HTML file with its script).
LUMEN_API const char *chatPageHtml();

} // namespace lumen::server

#endif
