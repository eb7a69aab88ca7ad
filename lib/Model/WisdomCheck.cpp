//===- WisdomCheck.cpp - Tuned kernels inside the model --------------------===//
#include "lumen/Model/WisdomCheck.h"

#include "lumen/Model/Session.h"
#include "lumen/Runtime/Tuner.h"

#include <chrono>
#include <memory>

namespace lumen::model {

namespace {

double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

int64_t tokensOf(codegen::TokenClass T, int64_t PromptTokens) {
  return T == codegen::TokenClass::Decode ? 1 : PromptTokens;
}

/// Whether any kernel of class T that W's entries for Threads choose differs
/// from the table's. The kernels as chooseSpec makes them with W: a batch
/// kernel takes the one-token kernel's numerics (batch invariance), so a tuned
/// decode choice can change the prompt's kernels though their entries are the
/// table's.
bool differsFromTable(const codegen::Wisdom &W, unsigned Threads, codegen::TokenClass T, int64_t PromptTokens,
                      const codegen::CpuFeatures &Cpu) {
  for (const codegen::WisdomKernel &E : W.kernels()) {
    if (E.Threads != Threads || E.Tokens != T)
      continue;
    const codegen::MatmulShape Shape{E.M, E.K, tokensOf(T, PromptTokens), E.Type, E.Layout};
    if (!(codegen::chooseSpec(Shape, Cpu, nullptr, &W, Threads) == codegen::chooseSpec(Shape, Cpu)))
      return true;
  }
  return false;
}

/// Puts the table's choices in W's entries for Threads and class T.
void revertToTable(codegen::Wisdom &W, unsigned Threads, codegen::TokenClass T, int64_t PromptTokens,
                   const codegen::CpuFeatures &Cpu) {
  std::vector<codegen::WisdomKernel> Revert;
  for (const codegen::WisdomKernel &E : W.kernels())
    if (E.Threads == Threads && E.Tokens == T)
      Revert.push_back(E);
  for (const codegen::WisdomKernel &E : Revert) {
    const codegen::MatmulShape Shape{E.M, E.K, tokensOf(T, PromptTokens), E.Type, E.Layout};
    W.set(codegen::WisdomKernel::of(codegen::chooseSpec(Shape, Cpu), Threads, 1.0));
  }
}

} // namespace

absl::StatusOr<std::vector<WisdomCheck>> confirmWisdom(const TransformerModel &M, runtime::KernelCache &Cache,
                                                       codegen::Wisdom &Tuned, const std::vector<unsigned> &Threads,
                                                       const WisdomCheckOptions &Options) {
  const codegen::CpuFeatures &Cpu = Cache.jit().cpu();
  const int64_t Prompt = std::max<int64_t>(8, Options.PromptTokens);
  std::vector<int32_t> Tokens(Prompt);
  for (int64_t I = 0; I < Prompt; ++I)
    Tokens[I] = static_cast<int32_t>((I * 7919 + 13) % M.config().Vocab);
  std::vector<WisdomCheck> Out;
  for (unsigned T : Threads)
    for (codegen::TokenClass Class : {codegen::TokenClass::Decode, codegen::TokenClass::Prefill}) {
      WisdomCheck C;
      C.Threads = T;
      C.Tokens = Class;
      if (!differsFromTable(Tuned, T, Class, Prompt, Cpu)) {
        Out.push_back(C);
        continue;
      }
      // One session with the tuned kernels, one with the table's.
      std::unique_ptr<Session> S[2];
      for (int I = 0; I < 2; ++I) {
        SessionOptions O;
        O.Threads = T;
        O.ContextSize = Prompt + Options.DecodeTokens + 8;
        O.PrefillBatch = Prompt;
        O.HugePages = Options.HugePages;
        if (I == 1)
          O.Wisdom = std::make_shared<const codegen::Wisdom>(Tuned);
        absl::StatusOr<std::unique_ptr<Session>> New = createJitSession(M, Cache, O);
        if (!New.ok())
          return New.status();
        S[I] = std::move(*New);
        if (absl::Status St = S[I]->prepare(Prompt); !St.ok())
          return St;
      }
      absl::Status Failed;
      std::vector<float> Logits;
      // One timed run: a decode step (averaged over DecodeTokens), or the prompt batch.
      auto Run = [&](Session &Sess) {
        if (!Failed.ok() || !(Failed = Sess.rewind(0)).ok())
          return 1.0;
        if (Class == codegen::TokenClass::Prefill) {
          const double Start = now();
          Failed = Sess.eval(Tokens, false, Logits);
          return now() - Start;
        }
        Failed = Sess.eval(std::span<const int32_t>(Tokens.data(), 1), false, Logits);
        const double Start = now();
        for (int64_t I = 1; I <= Options.DecodeTokens && Failed.ok(); ++I)
          Failed = Sess.eval(std::span<const int32_t>(&Tokens[I % Prompt], 1), false, Logits);
        return (now() - Start) / Options.DecodeTokens;
      };
      Run(*S[0]); // Warm-up: caches, pages, the pool's threads.
      Run(*S[1]);
      runtime::PairedComparison P =
          runtime::comparePaired([&] { return Run(*S[0]); }, [&] { return Run(*S[1]); }, Options.Rounds);
      if (!Failed.ok())
        return Failed;
      C.Compared = true;
      C.Kept = P.BWins;
      C.TableSeconds = P.ASeconds;
      C.TunedSeconds = P.BSeconds;
      C.Gain = P.Gain;
      C.Noise = P.Noise;
      if (!C.Kept)
        revertToTable(Tuned, T, Class, Prompt, Cpu);
      // A prompt made slower beyond the noise by the decode kernels' numerics
      // (its own entries now the table's): the decode choices go too, as a
      // layout that speeds decode must not slow the prompt.
      if (Class == codegen::TokenClass::Prefill && 1 / P.Gain - 1 > P.Noise &&
          differsFromTable(Tuned, T, Class, Prompt, Cpu)) {
        revertToTable(Tuned, T, codegen::TokenClass::Decode, Prompt, Cpu);
        for (WisdomCheck &D : Out)
          if (D.Threads == T && D.Tokens == codegen::TokenClass::Decode && D.Kept) {
            D.Kept = false;
            D.SlowedPrompt = true;
          }
      }
      Out.push_back(C);
    }
  return Out;
}

} // namespace lumen::model
