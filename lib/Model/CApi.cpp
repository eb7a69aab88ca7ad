//===- CApi.cpp - The C API (lumen/lumen.h) --------------------------------===//
#include "lumen/lumen.h"

#include "lumen/Model/Chat.h"
#include "lumen/Model/Generate.h"
#include "lumen/Model/TransformerModel.h"
#include "lumen/Model/Sampler.h"
#include "lumen/Model/Session.h"
#include "lumen/Runtime/Jit.h"
#include "lumen/Runtime/KernelCache.h"

#include <cstdlib>
#include <cstring>
#include <random>

struct lumen_model {
  std::unique_ptr<lumen::model::TransformerModel> Model;
  std::unique_ptr<lumen::runtime::Jit> Jit;
  std::unique_ptr<lumen::runtime::KernelCache> Cache;
};

namespace {
void setError(char **Error, const absl::Status &S) {
  if (!Error)
    return;
  std::string M(S.message());
  *Error = static_cast<char *>(std::malloc(M.size() + 1));
  if (*Error)
    std::memcpy(*Error, M.c_str(), M.size() + 1);
}
} // namespace

extern "C" {

lumen_model *lumen_model_open(const char *Path, char **Error) {
  if (!Path) {
    setError(Error, absl::InvalidArgumentError("no model path"));
    return nullptr;
  }
  auto M = lumen::model::TransformerModel::load(Path);
  if (!M.ok()) {
    setError(Error, M.status());
    return nullptr;
  }
  lumen::runtime::JitOptions O;
  O.ObjectCacheDir = lumen::runtime::defaultObjectCacheDir();
  auto J = lumen::runtime::Jit::create(O);
  if (!J.ok()) {
    setError(Error, J.status());
    return nullptr;
  }
  auto *H = new lumen_model;
  H->Model = std::move(*M);
  H->Jit = std::move(*J);
  H->Cache = std::make_unique<lumen::runtime::KernelCache>(*H->Jit);
  return H;
}

void lumen_model_free(lumen_model *M) { delete M; }

int64_t lumen_tokenize(const lumen_model *M, const char *Text, int32_t *Ids, int64_t Capacity,
                       char **Error) {
  if (!M || !Text || Capacity < 0 || (Capacity > 0 && !Ids)) {
    setError(Error, absl::InvalidArgumentError("lumen_tokenize: bad arguments"));
    return -1;
  }
  std::vector<int32_t> Out = M->Model->tokenizer().encode(Text);
  if (Capacity > 0)
    std::memcpy(Ids, Out.data(), std::min<int64_t>(Capacity, Out.size()) * sizeof(int32_t));
  return static_cast<int64_t>(Out.size());
}

lumen_generate_params lumen_default_params(void) {
  // The library's own defaults, so the C API cannot drift from them.
  lumen::model::SamplerOptions S;
  lumen::model::SessionOptions O;
  lumen::model::GenerateOptions G;
  lumen_generate_params P;
  P.max_tokens = G.MaxTokens;
  P.temperature = S.Temperature;
  P.top_k = S.TopK;
  P.top_p = S.TopP;
  P.min_p = S.MinP;
  P.repeat_penalty = S.RepeatPenalty;
  P.seed = LUMEN_SEED_RANDOM; // As lumen-jit run without --seed.
  P.threads = O.Threads;
  P.context = O.ContextSize;
  P.chat = 1;
  return P;
}

int64_t lumen_generate(lumen_model *M, const char *Prompt, const lumen_generate_params *Params,
                       lumen_token_callback Callback, void *User, char **Error) {
  if (!M || !Prompt || !Callback) {
    setError(Error, absl::InvalidArgumentError("lumen_generate: model, prompt and callback are required"));
    return -1;
  }
  lumen_generate_params P = Params ? *Params : lumen_default_params();
  lumen::model::SamplerOptions SO;
  SO.Temperature = P.temperature;
  SO.TopK = P.top_k;
  SO.TopP = P.top_p;
  SO.MinP = P.min_p;
  SO.RepeatPenalty = P.repeat_penalty;
  SO.Seed = P.seed != LUMEN_SEED_RANDOM ? P.seed : (uint64_t(std::random_device{}()) << 32 | std::random_device{}());
  if (absl::Status St = SO.validate(); !St.ok()) {
    setError(Error, St);
    return -1;
  }
  lumen::model::SessionOptions O;
  O.ContextSize = P.context;
  O.Threads = P.threads;
  auto S = lumen::model::createJitSession(*M->Model, *M->Cache, O);
  if (!S.ok()) {
    setError(Error, S.status());
    return -1;
  }
  const lumen::model::Tokenizer &Tok = M->Model->tokenizer();
  std::string Text = Prompt;
  if (P.chat) {
    std::vector<lumen::model::ChatMessage> Msgs;
    if (std::string Sys = lumen::model::defaultSystemPrompt(Tok.chatTemplate()); !Sys.empty())
      Msgs.push_back({"system", Sys});
    Msgs.push_back({"user", Text});
    Text = lumen::model::renderChat(Tok.chatTemplate(), Msgs, true, true, M->Model->config().Arch->Chat);
  }
  std::vector<int32_t> Ids = Tok.encode(Text);
  if (Tok.addBos())
    Ids.insert(Ids.begin(), *Tok.bosId());
  lumen::model::Sampler Smp(SO);
  lumen::model::GenerateOptions G;
  G.MaxTokens = P.max_tokens;
  auto R = lumen::model::generate(**S, Smp, Ids, G, [&](int32_t Id, std::string_view Piece) {
    return Callback(User, Id, Piece.data(), Piece.size()) != 0;
  });
  if (!R.ok()) {
    setError(Error, R.status());
    return -1;
  }
  return R->GeneratedTokens;
}

void lumen_free(void *P) { std::free(P); }

} // extern "C"
