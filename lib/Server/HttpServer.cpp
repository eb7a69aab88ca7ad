//===- HttpServer.cpp - The OpenAI-compatible HTTP API ---------------------===//
#include "lumen/Server/HttpServer.h"

#include "lumen/Model/Chat.h"
#include "lumen/Model/Tokenizer.h"

#include "absl/strings/str_format.h"
#include "absl/strings/match.h"

#include <httplib.h>

#include <atomic>
#include <cstdio>
#include <ctime>
#include <map>
#include <mutex>
#include <random>
#include <thread>

namespace lumen::server {

using nlohmann::json;

namespace {

/// A token's bytes as /tokenize's "piece": the text when it is valid UTF-8,
/// else the byte values (as llama-server gives them), since part of a
/// character would come out as U+FFFD and lose the bytes.
json pieceJson(const std::string &Bytes) {
  if (model::isValidUtf8(Bytes))
    return Bytes;
  json Out = json::array();
  for (unsigned char C : Bytes)
    Out.push_back(int(C));
  return Out;
}

/// JSON text; invalid UTF-8 (a token's raw bytes in logprobs) becomes U+FFFD.
std::string dump(const json &J) { return J.dump(-1, ' ', false, json::error_handler_t::replace); }

void sendJson(httplib::Response &Res, int Status, const json &J) {
  Res.status = Status;
  Res.set_content(dump(J), "application/json; charset=utf-8");
}

void sendError(httplib::Response &Res, const ApiError &E) { sendJson(Res, E.Status, E.toJson()); }

ApiError error(int Status, std::string Message, std::string Type, std::string Code = "") {
  ApiError E;
  E.Status = Status;
  E.Message = std::move(Message);
  E.Type = std::move(Type);
  E.Code = std::move(Code);
  return E;
}

/// The error a job ended with: 503 when the server is stopping, else 500.
ApiError jobError(const JobEvent &E) {
  return E.Unavailable ? error(503, E.Message, "unavailable_error") : error(500, E.Message, "server_error");
}

std::string randomHex(std::mt19937_64 &Rng) { return absl::StrFormat("%016x", Rng()); }

} // namespace

struct HttpServer::Impl {
  ServerOptions Options;
  httplib::Server Svr;
  std::thread Listener;
  int BoundPort = -1;
  int ListenSocket = -1; // The listening socket httplib made (seen in its socket-options hook).
  // Set once by setReady; read by the handlers.
  std::atomic<bool> Ready{false};
  const model::TransformerModel *Model = nullptr;
  Scheduler *Jobs = nullptr;
  std::string ModelId;
  int64_t Created = std::time(nullptr);
  std::mutex RngMutex;
  std::mt19937_64 Rng{std::random_device{}()};
  std::atomic<int> OpenStreams{0}; // Streams whose last event is not written yet.
  std::mutex CountMutex;
  std::map<int, int64_t> Responses; // By status, for /metrics.

  uint64_t draw() {
    std::lock_guard<std::mutex> L(RngMutex);
    return Rng();
  }
  std::string newId(const char *Prefix) {
    std::lock_guard<std::mutex> L(RngMutex);
    return Prefix + randomHex(Rng);
  }

  bool checkReady(httplib::Response &Res) {
    if (Ready.load())
      return true;
    sendError(Res, error(503, "Loading model", "unavailable_error"));
    return false;
  }

  /// The prompt's tokens as `lumen-jit run` makes them: the chat through
  /// the model's template (with its default system prompt when the
  /// conversation has none), or the text as it is.
  std::vector<int32_t> promptTokens(const CompletionRequest &R) const {
    const model::Tokenizer &Tok = Model->tokenizer();
    if (R.PromptIsTokens)
      return R.PromptTokens;
    std::string Text = R.Prompt;
    if (R.Chat) {
      std::vector<model::ChatMessage> Msgs = R.Messages;
      if (Msgs.front().Role != "system")
        if (std::string System = model::defaultSystemPrompt(Tok.chatTemplate()); !System.empty())
          Msgs.insert(Msgs.begin(), {"system", System});
      Text = model::renderChat(Tok.chatTemplate(), Msgs, /*AddGenerationPrompt=*/true, R.Thinking,
                               Model->config().Arch->Chat);
    }
    std::vector<int32_t> Ids;
    if (Tok.addBos() && Tok.bosId())
      Ids.push_back(*Tok.bosId());
    std::vector<int32_t> Rest = Tok.encode(Text, /*ParseSpecial=*/true);
    Ids.insert(Ids.end(), Rest.begin(), Rest.end());
    return Ids;
  }

  void completion(const std::string &Body, httplib::Response &Res, bool Chat);
  /// Reads the body of a POST (any content type) up to MaxBodyBytes; false
  /// (and a 413 in Res) when it is larger.
  bool readBody(const httplib::ContentReader &Reader, httplib::Response &Res, std::string &Body);
  /// Registers a POST handler that gets the body read by readBody.
  void post(const char *Path, std::function<void(const std::string &, httplib::Response &)> Handler);
  void metrics(httplib::Response &Res);
  void routes();
};

void HttpServer::Impl::completion(const std::string &Body, httplib::Response &Res, bool Chat) {
  if (!checkReady(Res))
    return;
  auto R = std::make_shared<CompletionRequest>();
  if (std::optional<ApiError> E = parseCompletionRequest(Body, Chat, Options.Limits, *R)) {
    sendError(Res, *E);
    return;
  }
  JobSpec Spec;
  Spec.Prompt = promptTokens(*R);
  Spec.Sampling = R->Sampling;
  if (!R->SeedGiven)
    Spec.Sampling.Seed = draw();
  Spec.MaxTokens = R->MaxTokens;
  Spec.Stop = R->Stop;
  Spec.IgnoreEos = R->IgnoreEos;
  Spec.TopLogprobs = R->Logprobs ? R->TopLogprobs : -1;
  absl::StatusOr<std::shared_ptr<Job>> J = Jobs->submit(std::move(Spec));
  if (!J.ok()) {
    const std::string Msg(J.status().message());
    if (absl::IsUnavailable(J.status()) || absl::IsFailedPrecondition(J.status())) {
      sendError(Res, error(503, Msg, "unavailable_error"));
    } else {
      ApiError E = error(400, Msg, "invalid_request_error",
                         absl::StrContains(Msg, "context holds") ? "context_length_exceeded" : "");
      E.Param = absl::StartsWith(Msg, "logit_bias") ? "logit_bias" : Chat ? "messages" : "prompt";
      sendError(Res, E);
    }
    return;
  }
  auto H = std::make_shared<ResponseHeader>(ResponseHeader{newId(Chat ? "chatcmpl-" : "cmpl-"),
                                                           int64_t(std::time(nullptr)), ModelId});
  std::shared_ptr<Job> Running = *J;
  if (!R->Stream) {
    // The whole answer, as one JSON object. A client that goes away is only
    // seen when a write fails, so while the answer is made a space (JSON
    // allows leading whitespace) goes out every second, and a failed one
    // cancels the job. An answer within a second is sent as a plain body.
    std::string Text;
    std::vector<TokenLogprob> Logprobs;
    auto Collect = [&](const JobEvent &E) {
      Text += E.Piece;
      Logprobs.insert(Logprobs.end(), E.Logprobs.begin(), E.Logprobs.end());
    };
    const auto Quick = std::chrono::steady_clock::now() + std::chrono::seconds(1);
    JobEvent E;
    while (std::chrono::steady_clock::now() < Quick) {
      if (!Running->next(E, std::chrono::milliseconds(50)))
        continue;
      if (E.What == JobEvent::Text) {
        Collect(E);
        continue;
      }
      if (E.What == JobEvent::Done)
        sendJson(Res, 200, completionResponse(*R, *H, Text, Logprobs, E.Finish, E.Counts));
      else
        sendError(Res, jobError(E));
      return;
    }
    auto State = std::make_shared<std::pair<std::string, std::vector<TokenLogprob>>>(std::move(Text),
                                                                                    std::move(Logprobs));
    auto Ended = std::make_shared<bool>(false);
    Res.set_chunked_content_provider(
        "application/json; charset=utf-8",
        [R, H, Running, State, Ended](size_t, httplib::DataSink &Sink) {
          const auto Tick = std::chrono::steady_clock::now() + std::chrono::seconds(1);
          JobEvent E;
          while (std::chrono::steady_clock::now() < Tick) {
            if (!Running->next(E, std::chrono::milliseconds(100)))
              continue;
            if (E.What == JobEvent::Text) {
              State->first += E.Piece;
              State->second.insert(State->second.end(), E.Logprobs.begin(), E.Logprobs.end());
              continue;
            }
            // The status went out with the first space: an error comes as an error object.
            const json J = E.What == JobEvent::Done
                               ? completionResponse(*R, *H, State->first, State->second, E.Finish, E.Counts)
                               : jobError(E).toJson();
            const std::string Body = dump(J);
            *Ended = true;
            const bool Ok = Sink.write(Body.data(), Body.size());
            Sink.done();
            return Ok;
          }
          if (!Sink.write(" ", 1)) { // The client went away.
            Running->cancel();
            return false;
          }
          return true;
        },
        [Running, Ended](bool) {
          if (!*Ended)
            Running->cancel();
        });
    return;
  }
  // Server-sent events: a chunk per piece, the finish, the usage if asked, [DONE].
  struct Stream {
    bool First = true, Ended = false;
  };
  auto State = std::make_shared<Stream>();
  Res.set_header("Cache-Control", "no-cache");
  ++OpenStreams;
  Res.set_chunked_content_provider(
      "text/event-stream",
      [R, H, Running, State](size_t, httplib::DataSink &Sink) {
        auto Send = [&](const json &J) {
          const std::string Line = "data: " + dump(J) + "\n\n";
          return Sink.write(Line.data(), Line.size());
        };
        if (!Sink.is_writable()) { // The client went away: free its slot.
          Running->cancel();
          return false;
        }
        JobEvent E;
        if (!Running->next(E, std::chrono::milliseconds(100)))
          return true;
        bool Ok = true;
        if (E.What == JobEvent::Text) {
          Ok = Send(streamChunk(*R, *H, E.Piece, E.Logprobs, State->First));
          State->First = false;
        } else {
          if (E.What == JobEvent::Done) {
            if (State->First && R->Chat) // The role comes in the first chunk, even of an empty reply.
              Ok = Send(streamChunk(*R, *H, "", {}, true));
            Ok = Ok && Send(finalChunk(*R, *H, E.Finish));
            if (R->IncludeUsage)
              Ok = Ok && Send(usageChunk(*R, *H, E.Counts));
          } else {
            Ok = Send(jobError(E).toJson());
          }
          static const char Done[] = "data: [DONE]\n\n";
          Ok = Ok && Sink.write(Done, sizeof(Done) - 1);
          State->Ended = true;
          Sink.done();
        }
        if (!Ok)
          Running->cancel();
        return Ok;
      },
      [this, Running, State](bool) {
        if (!State->Ended)
          Running->cancel();
        --OpenStreams;
      });
}

void HttpServer::Impl::metrics(httplib::Response &Res) {
  std::string Out;
  auto Metric = [&](const char *Name, const char *Type, const char *Help, double Value) {
    Out += absl::StrFormat("# HELP lumen_%s %s\n# TYPE lumen_%s %s\nlumen_%s %.17g\n", Name, Help, Name, Type, Name,
                           Value);
  };
  Metric("ready", "gauge", "1 once the model is loaded and the API answers.", Ready.load() ? 1 : 0);
  if (Ready.load()) {
    const SchedulerStats S = Jobs->stats();
    Metric("requests_total", "counter", "Completion requests queued.", S.Requests);
    Metric("requests_rejected_total", "counter", "Completion requests refused with 503: the queue was full.",
           S.Rejected);
    Metric("requests_cancelled_total", "counter", "Requests whose clients went away before the end.", S.Cancelled);
    Metric("requests_failed_total", "counter", "Running requests ended by a forward pass's error (logged).",
           S.Failed);
    Metric("prompt_tokens_total", "counter", "Prompt tokens of the requests started.", S.PromptTokens);
    Metric("prompt_tokens_reused_total", "counter",
           "Prompt tokens taken from a slot's cache instead of prefilled (prefix reuse).", S.ReusedPromptTokens);
    Metric("generated_tokens_total", "counter", "Tokens generated.", S.GeneratedTokens);
    Metric("queue_depth", "gauge", "Requests waiting for a slot.", S.Queued);
    Metric("slots_busy", "gauge", "Slots serving a request.", S.BusySlots);
    Metric("slots_total", "gauge", "Slots (--parallel).", S.Slots);
    Metric("steps_total", "counter", "Forward passes (continuous-batching steps).", S.Steps);
    Metric("step_seconds_total", "counter", "Seconds spent in forward passes.", S.StepSeconds);
    Metric("tokens_per_second", "gauge", "Tokens generated per second of stepping, over the last 5 s.",
           S.DecodeTokensPerSecond);
  }
  Out += "# HELP lumen_http_responses_total HTTP responses by status.\n# TYPE lumen_http_responses_total counter\n";
  {
    std::lock_guard<std::mutex> L(CountMutex);
    for (auto [Status, N] : Responses)
      Out += absl::StrFormat("lumen_http_responses_total{status=\"%d\"} %d\n", Status, N);
  }
  Res.set_content(Out, "text/plain; version=0.0.4; charset=utf-8");
}

void HttpServer::Impl::routes() {
  // httplib's own cap (larger bodies: a 413 without reading them) well above
  // ours, which readBody enforces after reading the body to its end.
  Svr.set_payload_max_length(16 * Options.MaxBodyBytes);
  Svr.set_keep_alive_timeout(2); // An idle keep-alive connection holds up stop() at most this long.
  // SO_REUSEADDR only: httplib's default adds SO_REUSEPORT, with which a
  // second server on the same port would bind and share the connections.
  Svr.set_socket_options([this](socket_t Sock) {
    int Yes = 1;
    setsockopt(Sock, SOL_SOCKET, SO_REUSEADDR, &Yes, sizeof(Yes));
    ListenSocket = Sock;
  });
  const unsigned Threads = std::max(4u, Options.HttpThreads);
  Svr.new_task_queue = [Threads] { return new httplib::ThreadPool(Threads); };
  Svr.set_default_headers({{"Access-Control-Allow-Origin", "*"}});
  Svr.set_logger([this](const httplib::Request &, const httplib::Response &Res) {
    std::lock_guard<std::mutex> L(CountMutex);
    ++Responses[Res.status];
  });
  Svr.set_pre_routing_handler([this](const httplib::Request &Req, httplib::Response &Res) {
    if (Options.ApiKey.empty() || Req.method == "OPTIONS" || Req.path == "/health" ||
        (Req.method == "GET" && (Req.path == "/" || Req.path == "/index.html")))
      return httplib::Server::HandlerResponse::Unhandled;
    const std::string Auth = Req.get_header_value("Authorization");
    const std::string Prefix = "bearer "; // Auth schemes are case-insensitive (RFC 7235).
    if (!absl::StartsWithIgnoreCase(Auth, Prefix) ||
        !constantTimeEquals(Auth.substr(Prefix.size()), Options.ApiKey)) {
      Res.set_header("WWW-Authenticate", "Bearer");
      sendError(Res, error(401, "invalid or missing API key: send 'Authorization: Bearer KEY'",
                           "authentication_error", "invalid_api_key"));
      return httplib::Server::HandlerResponse::Handled;
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });
  Svr.set_error_handler([](const httplib::Request &Req, httplib::Response &Res) {
    if (!Res.body.empty())
      return;
    const std::string What = Res.status == 404   ? absl::StrFormat("no such endpoint: %s %s", Req.method, Req.path)
                             : Res.status == 413 ? std::string("the request body is too large")
                             : Res.status == 405 ? std::string("method not allowed")
                                                 : absl::StrFormat("HTTP %d", Res.status);
    sendError(Res, error(Res.status, What, "invalid_request_error"));
  });
  Svr.set_exception_handler([](const httplib::Request &, httplib::Response &Res, std::exception_ptr) {
    sendError(Res, error(500, "internal error", "server_error"));
  });
  Svr.Options(R"(/.*)", [](const httplib::Request &, httplib::Response &Res) {
    Res.set_header("Access-Control-Allow-Methods", "GET, POST, OPTIONS");
    Res.set_header("Access-Control-Allow-Headers", "Authorization, Content-Type");
    Res.status = 204;
  });

  Svr.Get("/health", [this](const httplib::Request &, httplib::Response &Res) {
    if (checkReady(Res))
      sendJson(Res, 200, {{"status", "ok"}});
  });
  Svr.Get("/metrics", [this](const httplib::Request &, httplib::Response &Res) { metrics(Res); });
  for (const char *Path : {"/", "/index.html"})
    Svr.Get(Path, [](const httplib::Request &, httplib::Response &Res) {
      Res.set_content(chatPageHtml(), "text/html; charset=utf-8");
    });
  for (const char *Path : {"/v1/models", "/models"})
    Svr.Get(Path, [this](const httplib::Request &, httplib::Response &Res) {
      if (!checkReady(Res))
        return;
      const model::ModelConfig &C = Model->config();
      json M = {{"id", ModelId},
                {"object", "model"},
                {"created", Created},
                {"owned_by", "lumen"},
                {"meta",
                 {{"n_ctx_train", C.ContextLength},
                  {"n_vocab", C.Vocab},
                  {"n_embd", C.Dim},
                  {"n_layer", C.Layers}}}};
      sendJson(Res, 200, {{"object", "list"}, {"data", json::array({M})}});
    });
  Svr.Get(R"(/v1/models/(.+))", [this](const httplib::Request &Req, httplib::Response &Res) {
    if (!checkReady(Res))
      return;
    if (Req.matches[1] != ModelId) {
      ApiError E = error(404, absl::StrFormat("no model '%s' (this server has '%s')", std::string(Req.matches[1]).substr(0, 100), ModelId),
                         "invalid_request_error", "model_not_found");
      E.Param = "model";
      sendError(Res, E);
      return;
    }
    sendJson(Res, 200, {{"id", ModelId}, {"object", "model"}, {"created", Created}, {"owned_by", "lumen"}});
  });
  for (const char *Path : {"/v1/chat/completions", "/chat/completions"})
    post(Path, [this](const std::string &Body, httplib::Response &Res) { completion(Body, Res, true); });
  for (const char *Path : {"/v1/completions", "/completions"})
    post(Path, [this](const std::string &Body, httplib::Response &Res) { completion(Body, Res, false); });
  post("/tokenize", [this](const std::string &Body, httplib::Response &Res) {
    if (!checkReady(Res))
      return;
    TokenizeRequest T;
    if (std::optional<ApiError> E = parseTokenizeRequest(Body, T)) {
      sendError(Res, *E);
      return;
    }
    const model::Tokenizer &Tok = Model->tokenizer();
    std::vector<int32_t> Ids;
    if (T.AddSpecial && Tok.addBos() && Tok.bosId())
      Ids.push_back(*Tok.bosId());
    std::vector<int32_t> Rest = Tok.encode(T.Content, /*ParseSpecial=*/true);
    Ids.insert(Ids.end(), Rest.begin(), Rest.end());
    json Tokens = json::array();
    for (int32_t Id : Ids)
      Tokens.push_back(T.WithPieces ? json{{"id", Id}, {"piece", pieceJson(Tok.tokenBytes(Id))}} : json(Id));
    sendJson(Res, 200, {{"tokens", Tokens}});
  });
  post("/detokenize", [this](const std::string &Body, httplib::Response &Res) {
    if (!checkReady(Res))
      return;
    std::vector<int32_t> Ids;
    if (std::optional<ApiError> E = parseDetokenizeRequest(Body, Model->config().Vocab, Ids)) {
      sendError(Res, *E);
      return;
    }
    sendJson(Res, 200, {{"content", Model->tokenizer().decode(Ids)}});
  });
  // A known path with the other method: 405 and what it takes.
  auto NotAllowed = [](const char *Allow) {
    return [Allow](const httplib::Request &Req, httplib::Response &Res) {
      Res.set_header("Allow", Allow);
      sendError(Res, error(405, absl::StrFormat("%s takes %s, not %s", Req.path, Allow, Req.method),
                           "invalid_request_error"));
    };
  };
  for (const char *Path : {"/v1/chat/completions", "/chat/completions", "/v1/completions", "/completions", "/tokenize",
                           "/detokenize"}) {
    Svr.Get(Path, NotAllowed("POST"));
    Svr.Put(Path, NotAllowed("POST"));
    Svr.Delete(Path, NotAllowed("POST"));
  }
  for (const char *Path : {"/health", "/metrics", "/v1/models", "/models", "/"}) {
    Svr.Post(Path, NotAllowed("GET"));
    Svr.Put(Path, NotAllowed("GET"));
    Svr.Delete(Path, NotAllowed("GET"));
  }
}

bool HttpServer::Impl::readBody(const httplib::ContentReader &Reader, httplib::Response &Res, std::string &Body) {
  bool TooLarge = false;
  // A body over the limit is read to its end and dropped, so that the
  // client, still sending, gets the 413 rather than a reset connection.
  Reader([&](const char *Data, size_t Size) {
    if (TooLarge || Body.size() + Size > Options.MaxBodyBytes) {
      TooLarge = true;
      Body.clear();
      return true;
    }
    Body.append(Data, Size);
    return true;
  });
  if (TooLarge)
    sendError(Res, error(413, absl::StrFormat("the request body is larger than %d bytes", Options.MaxBodyBytes),
                         "invalid_request_error"));
  return !TooLarge;
}

void HttpServer::Impl::post(const char *Path, std::function<void(const std::string &, httplib::Response &)> Handler) {
  // Read through a content reader: any content type is taken as the JSON
  // body (httplib would cap an application/x-www-form-urlencoded one,
  // what `curl -d` sends, at 8 KiB and parse it as a form).
  Svr.Post(Path, [this, Handler](const httplib::Request &, httplib::Response &Res,
                                 const httplib::ContentReader &Reader) {
    std::string Body;
    if (readBody(Reader, Res, Body))
      Handler(Body, Res);
  });
}

HttpServer::HttpServer(ServerOptions Options) : P(std::make_unique<Impl>()) {
  P->Options = std::move(Options);
  P->routes();
}

HttpServer::~HttpServer() { stop(); }

absl::Status HttpServer::bind() {
  const ServerOptions &O = P->Options;
  if (O.Port < 0 || O.Port > 65535)
    return absl::InvalidArgumentError(absl::StrFormat("port %d is not in 0..65535", O.Port));
  P->BoundPort = O.Port == 0 ? P->Svr.bind_to_any_port(O.Host) : (P->Svr.bind_to_port(O.Host, O.Port) ? O.Port : -1);
  if (P->BoundPort < 0)
    return absl::UnavailableError(absl::StrFormat(
        "cannot listen on %s:%d (address in use, or not an address of this machine)", O.Host, O.Port));
  // Debian's cpp-httplib 0.11 listens with a backlog of 5: a burst of new
  // connections (64 clients at once) overflowed the accept queue, and
  // connections the kernel then dropped failed in the clients. Listening
  // again on the same socket raises the backlog (Linux).
  if (P->ListenSocket >= 0)
    ::listen(P->ListenSocket, SOMAXCONN);
  return absl::OkStatus();
}

int HttpServer::port() const { return P->BoundPort; }

void HttpServer::start() {
  P->Listener = std::thread([this] { P->Svr.listen_after_bind(); });
}

void HttpServer::setReady(const model::TransformerModel &Model, Scheduler &Jobs, std::string ModelId) {
  P->Model = &Model;
  P->Jobs = &Jobs;
  P->ModelId = std::move(ModelId);
  P->Ready.store(true);
}

int64_t HttpServer::emptyChatTokens() const {
  CompletionRequest R;
  R.Chat = true;
  R.Messages = {{"user", ""}};
  return P->Model ? static_cast<int64_t>(P->promptTokens(R).size()) : 0;
}

void HttpServer::stop() {
  if (!P)
    return;
  // httplib stops calling stream providers once it stops: let the streams
  // write their last events first (the scheduler has ended their jobs).
  for (int I = 0; I < 500 && P->OpenStreams.load() > 0; ++I)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  P->Svr.stop();
  if (P->Listener.joinable())
    P->Listener.join();
}

} // namespace lumen::server
