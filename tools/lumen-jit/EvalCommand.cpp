//===- EvalCommand.cpp - lumen-jit eval ------------------------------------===//
//
// Evaluates a token sequence in one batch and prints, as JSON, the argmax
// and top logits at each requested position: how fidelity is checked.
//
//===----------------------------------------------------------------------===//
#include "Commands.h"
#include "Flags.h"
#include "ModelSetup.h"

#include "lumen/Model/Session.h"

#include "absl/flags/flag.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"

#include "nlohmann/json.hpp"

#include <algorithm>
#include <cstdio>
#include <numeric>

namespace lumen::tool {

int runEval(const std::vector<std::string> &Args) {
  if (!Args.empty())
    return fail(absl::StrFormat("eval takes no positional arguments (got '%s')", Args[0]));
  std::vector<int32_t> Tokens;
  if (absl::GetFlag(FLAGS_tokens).empty())
    return fail("eval needs --tokens ID,ID,...");
  for (absl::string_view Part : absl::StrSplit(absl::GetFlag(FLAGS_tokens), ',')) {
    int32_t Id;
    if (!absl::SimpleAtoi(Part, &Id)) // An empty part ("1,,2") too.
      return fail(absl::StrFormat("--tokens: '%s' is not a token id", std::string(Part)));
    Tokens.push_back(Id);
  }
  if (Tokens.empty())
    return fail("eval needs --tokens ID,ID,...");
  int32_t Top = absl::GetFlag(FLAGS_top);
  if (Top < 1)
    return fail("--top must be at least 1");
  const int64_t N = Tokens.size();
  absl::StatusOr<int64_t> From = parseCount("--from", absl::GetFlag(FLAGS_from), N - 1);
  if (!From.ok())
    return fail(std::string(From.status().message()));
  if (*From >= N)
    return fail(absl::StrFormat("--from %d is past the last position %d", *From, N - 1));

  // The scalar path reads every layout alike and compiles nothing: refused
  // before loading (--tune would tune first).
  if (absl::GetFlag(FLAGS_reference))
    for (const char *Flag : {LUMEN_JIT_FLAGS, "isa"})
      if (flagGiven(Flag))
        return fail(absl::StrFormat("--reference compiles no kernels: %s does not apply", flagSpelling(Flag)));

  absl::StatusOr<std::unique_ptr<model::TransformerModel>> M = loadModel();
  if (!M.ok())
    return fail(std::string(M.status().message()));
  absl::StatusOr<unsigned> Threads = threadCount();
  if (!Threads.ok())
    return fail(std::string(Threads.status().message()));
  absl::StatusOr<model::SessionOptions> Options = sessionOptions();
  if (!Options.ok())
    return fail(std::string(Options.status().message()));
  model::SessionOptions Opt = *Options;
  absl::StatusOr<int64_t> Ctx = contextSize(**M);
  if (!Ctx.ok())
    return fail(std::string(Ctx.status().message()));
  if (N > (*M)->config().ContextLength)
    return fail(absl::StrFormat("%d tokens are more than the model's trained context of %d", N,
                                (*M)->config().ContextLength));
  Opt.ContextSize = std::max<int64_t>(*Ctx, N);
  Opt.Threads = *Threads;
  absl::StatusOr<Engine> E;
  absl::StatusOr<std::unique_ptr<model::Session>> S;
  if (absl::GetFlag(FLAGS_reference)) {
    S = model::createReferenceSession(**M, Opt);
  } else {
    E = createEngine();
    if (!E.ok())
      return fail(std::string(E.status().message()));
    S = model::createJitSession(**M, *E->Cache, Opt);
  }
  if (!S.ok())
    return fail(std::string(S.status().message()));
  std::vector<float> Logits;
  if (absl::Status St = (*S)->eval(Tokens, /*AllLogits=*/true, Logits); !St.ok())
    return fail(std::string(St.message()));

  const int64_t V = (*M)->config().Vocab;
  nlohmann::json Positions = nlohmann::json::array();
  std::vector<int32_t> Order(V);
  for (int64_t P = *From; P < N; ++P) {
    const float *L = &Logits[P * V];
    std::iota(Order.begin(), Order.end(), 0);
    int32_t K = std::min<int64_t>(Top, V);
    std::partial_sort(Order.begin(), Order.begin() + K, Order.end(), [&](int32_t A, int32_t B) {
      return L[A] != L[B] ? L[A] > L[B] : A < B;
    });
    nlohmann::json TopList = nlohmann::json::array();
    for (int32_t I = 0; I < K; ++I)
      TopList.push_back({Order[I], L[Order[I]]});
    Positions.push_back({{"pos", P}, {"argmax", Order[0]}, {"top", TopList}});
  }
  std::printf("%s\n", nlohmann::json{{"positions", Positions}}
                          .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)
                          .c_str());
  return 0;
}

} // namespace lumen::tool
