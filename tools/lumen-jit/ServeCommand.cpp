//===- ServeCommand.cpp - lumen-jit serve -----------------------------------===//
//
// Listens first (so /health says 503 while the model loads), loads the
// model and compiles every batch size's kernels, then serves until SIGINT
// or SIGTERM: the scheduler ends the streams, the HTTP server stops, exit 0.
//
//===----------------------------------------------------------------------===//
#include "Commands.h"
#include "Flags.h"
#include "ModelSetup.h"

#include "lumen/Model/BatchedSession.h"
#include "lumen/Runtime/KernelCache.h"
#include "lumen/Server/HttpServer.h"
#include "lumen/Server/Scheduler.h"

#include "absl/flags/flag.h"
#include "absl/strings/str_format.h"

#include <atomic>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <future>
#include <memory>
#include <pthread.h>
#include <thread>
#include <unistd.h>

namespace lumen::tool {

int runServe(const std::vector<std::string> &Args) {
  if (!Args.empty())
    return fail(absl::StrFormat("serve takes no positional arguments (got '%s'); the model goes after -m", Args[0]));
  absl::StatusOr<unsigned> Threads = threadCount();
  if (!Threads.ok())
    return fail(std::string(Threads.status().message()));
  const int32_t Parallel = absl::GetFlag(FLAGS_parallel), Queue = absl::GetFlag(FLAGS_queue);
  if (Parallel < 1 || Parallel > 256)
    return fail(absl::StrFormat("--parallel %d: 1 to 256 slots", Parallel));
  // Each waiting request holds a connection thread, made at start.
  if (Queue < 0 || Queue > 1024)
    return fail(absl::StrFormat("--queue %d: 0 to 1024 waiting requests", Queue));
  const int32_t Port = absl::GetFlag(FLAGS_port);
  if (Port < 0 || Port > 65535)
    return fail(absl::StrFormat("--port %d is not in 0..65535", Port));
  // A step's tokens; a session rounds them up to a multiple of 8 (its kernels' tile).
  if (const int64_t Batch = absl::GetFlag(FLAGS_batch); Batch < 8 || Batch > 512)
    return fail(absl::StrFormat("--batch %d: 8 to 512 tokens a step", Batch));
  // -c against the model's trained context is checked when it loads.
  if (const int64_t Ctx = absl::GetFlag(FLAGS_c); Ctx < 0 || Ctx > (int64_t(1) << 24))
    return fail(absl::StrFormat("-c %d: a token count up to %d, or 0 for the model's trained context", Ctx,
                                int64_t(1) << 24));
  absl::StatusOr<std::string> Path = modelPath();
  if (!Path.ok())
    return fail(std::string(Path.status().message()));
  // A bad --isa, and the file's obvious faults, before the port is taken (the rest when it loads).
  if (absl::StatusOr<codegen::CpuFeatures> Cpu = targetCpu(); !Cpu.ok())
    return fail(std::string(Cpu.status().message()));
  std::error_code Ec;
  if (!std::filesystem::is_regular_file(*Path, Ec))
    return fail(absl::StrFormat("%s: %s", *Path,
                                std::filesystem::exists(*Path, Ec) ? "not a regular file" : "no such file"));

  // Signals are taken by this thread with sigwait: blocked before any thread starts.
  sigset_t Signals;
  sigemptyset(&Signals);
  sigaddset(&Signals, SIGINT);
  sigaddset(&Signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &Signals, nullptr);

  server::ServerOptions SO;
  SO.Host = absl::GetFlag(FLAGS_host);
  SO.Port = Port;
  SO.ApiKey = absl::GetFlag(FLAGS_api_key);
  SO.HttpThreads = static_cast<unsigned>(Parallel + Queue + 16);
  server::HttpServer Http(SO);
  if (absl::Status S = Http.bind(); !S.ok())
    return fail(std::string(S.message()));
  Http.start();
  const bool V6 = SO.Host.find(':') != std::string::npos;
  std::fprintf(stderr, "lumen-jit: listening on http://%s%s%s:%d (loading the model: /health answers 503 until ready)\n",
               V6 ? "[" : "", SO.Host.c_str(), V6 ? "]" : "", Http.port());

  // The model loads on a thread of its own, so that a signal meanwhile ends the process at once.
  std::atomic<int> LoadStatus{-1}; // -1 loading, 0 ready, 1 failed.
  std::unique_ptr<model::TransformerModel> Model;
  absl::StatusOr<Engine> E = absl::UnknownError("not created");
  std::unique_ptr<model::BatchedSession> Session;
  std::unique_ptr<server::Scheduler> Jobs;
  std::thread Loader([&] {
    auto Fail = [&](const absl::Status &S) {
      fail(std::string(S.message()));
      LoadStatus.store(1);
      kill(getpid(), SIGTERM); // Wakes the sigwait below.
    };
    absl::StatusOr<std::unique_ptr<model::TransformerModel>> M = loadModel();
    if (!M.ok())
      return Fail(M.status());
    Model = std::move(*M);
    absl::StatusOr<int64_t> Ctx = contextSize(*Model);
    if (!Ctx.ok())
      return Fail(Ctx.status());
    E = createEngine();
    if (!E.ok())
      return Fail(E.status());
    absl::StatusOr<model::SessionOptions> Options = sessionOptions();
    if (!Options.ok())
      return Fail(Options.status());
    model::SessionOptions Opt = *Options;
    Opt.ContextSize = *Ctx;
    Opt.Threads = *Threads;
    absl::StatusOr<std::unique_ptr<model::BatchedSession>> S =
        model::createJitBatchedSession(*Model, *E->Cache, Opt, Parallel);
    if (!S.ok())
      return Fail(S.status());
    Session = std::move(*S);
    std::fprintf(stderr, "lumen-jit: compiling kernels for steps of 1 to %lld tokens\n",
                 static_cast<long long>(Session->batchSize()));
    if (absl::Status St = Session->prepare(); !St.ok())
      return Fail(St);
    server::SchedulerOptions JO;
    JO.QueueLimit = static_cast<size_t>(Queue);
    JO.OnFailure = [](const absl::Status &St) {
      std::fprintf(stderr, "lumen-jit: error: a step failed, its requests end with this error: %s\n",
                   std::string(St.message()).c_str());
    };
    Jobs = std::make_unique<server::Scheduler>(*Session, JO);
    std::string Id = absl::GetFlag(FLAGS_alias);
    if (Id.empty())
      Id = std::filesystem::path(*Path).filename().string();
    Http.setReady(*Model, *Jobs, Id);
    if (const int64_t Min = Http.emptyChatTokens(); Min >= Session->contextSize())
      std::fprintf(stderr,
                   "lumen-jit: warning: -c %lld holds no chat: the chat template around an empty message is "
                   "already %lld tokens, so every chat request will be refused (raise -c)\n",
                   static_cast<long long>(Session->contextSize()), static_cast<long long>(Min));
    LoadStatus.store(0);
    std::fprintf(stderr,
                 "lumen-jit: ready: model '%s', %d slot(s) of %lld tokens (KV cache up to %.1f MiB a slot), "
                 "steps of up to %lld tokens, %u thread(s), kernels for %s (%s)%s\n",
                 Id.c_str(), Parallel, static_cast<long long>(Session->contextSize()),
                 Session->sequenceBytes() / 1048576.0, static_cast<long long>(Session->batchSize()),
                 *Threads ? *Threads : std::thread::hardware_concurrency(), E->Jit->cpu().CpuName.c_str(),
                 std::string(E->Jit->cpu().isaName()).c_str(),
                 SO.ApiKey.empty() ? "" : ", API key required");
  });

  int Signal = 0;
  sigwait(&Signals, &Signal);
  if (LoadStatus.load() != 0) {
    if (LoadStatus.load() == 1) {
      Loader.join();
      Http.stop();
      return 1;
    }
    std::fprintf(stderr, "lumen-jit: %s while loading: exiting\n", Signal == SIGINT ? "interrupted" : "terminated");
    std::fflush(stderr);
    _exit(0);
  }
  Loader.join();
  std::fprintf(stderr, "lumen-jit: %s: ending the streams and stopping (again to exit at once)\n",
               Signal == SIGINT ? "interrupted" : "terminated");
  std::thread([Signals] { // A second signal does not wait for the connections.
    int Again = 0;
    sigwait(&Signals, &Again);
    std::fprintf(stderr, "lumen-jit: exiting at once\n");
    std::fflush(stderr);
    _exit(130);
  }).detach();
  Jobs->shutdown(); // Every stream gets its end; then the connections finish.
  // A connection idle in keep-alive, or a client sending its request a byte
  // at a time, would hold up the HTTP server's stop for seconds or for ever:
  // the streams have their ends by now, so after a second the process exits
  // with whatever connections are left open (the kernel closes them).
  auto Stopped = std::make_shared<std::promise<void>>();
  std::future<void> HttpDone = Stopped->get_future();
  std::thread([&Http, Stopped] {
    Http.stop();
    Stopped->set_value();
  }).detach();
  const bool Closed = HttpDone.wait_for(std::chrono::seconds(1)) == std::future_status::ready;
  const server::SchedulerStats St = Jobs->stats();
  std::fprintf(stderr, "lumen-jit: served %lld request(s), %lld tokens generated, %lld prompt tokens (%lld reused)\n",
               static_cast<long long>(St.Requests), static_cast<long long>(St.GeneratedTokens),
               static_cast<long long>(St.PromptTokens), static_cast<long long>(St.ReusedPromptTokens));
  if (!Closed) {
    std::fprintf(stderr, "lumen-jit: connections still open after 1 s: closing them\n");
    std::fflush(stderr);
    std::fflush(stdout);
    _exit(0); // Not a return: destroying the server would wait for those connections.
  }
  return 0;
}

} // namespace lumen::tool
