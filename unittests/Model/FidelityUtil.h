//===- FidelityUtil.h - The fixture comparison rule ---------------*- C++ -*-===//
#ifndef LUMEN_UNITTESTS_FIDELITYUTIL_H
#define LUMEN_UNITTESTS_FIDELITYUTIL_H

#include "lumen/Model/TransformerModel.h"
#include "lumen/Model/Session.h"
#include "lumen/Model/SyntheticModel.h"
#include "lumen/Runtime/Jit.h"
#include "lumen/Runtime/KernelCache.h"

#include "nlohmann/json.hpp"
#include "gtest/gtest.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <functional>
#include <span>
#include <vector>

namespace lumen::test {

using namespace lumen::model;

inline const std::string kShared = LUMEN_SHARED_DIR;

inline runtime::KernelCache &kernelCache() {
  static std::unique_ptr<runtime::Jit> J = std::move(*runtime::Jit::create());
  static runtime::KernelCache Cache(*J);
  return Cache;
}

/// A small synthetic model: 2 layers of 256 (the K formats' super-block),
/// 4 heads of 64 over 2 KV heads, FFN 512, a 1024-token byte vocabulary.
inline SynthOptions smallSynthetic(gguf::TensorType Matrices, bool Tied, uint64_t Seed) {
  SynthOptions O;
  O.Shape = *syntheticPreset("tiny");
  O.Shape.Layers = 2;
  O.Shape.Dim = 256;
  O.Shape.Heads = 4;
  O.Shape.KVHeads = 2;
  O.Shape.HeadDim = 64;
  O.Shape.FFN = 512;
  O.Shape.Vocab = 1024;
  O.Shape.TiedOutput = Tied;
  O.Seed = Seed;
  O.Type = *quant::presetFromName(gguf::tensorTypeTraits(Matrices).Name); // F16, BF16, F32 or Q8_0.
  return O;
}

inline int32_t argmax(const float *L, int64_t V) { return static_cast<int32_t>(std::max_element(L, L + V) - L); }

/// Evaluates Ids in both sessions, every position's logits, and returns the
/// rms difference of Jit's logits from Ref's at each position (none if an
/// eval failed, which is reported); MaxAbs, if given, gets the largest
/// difference at each position.
inline std::vector<double> logitRmsByPosition(Session &Ref, Session &Jit, std::span<const int32_t> Ids,
                                              int64_t Vocab, std::vector<double> *MaxAbs = nullptr) {
  std::vector<float> LR, LJ;
  const absl::Status SR = Ref.eval(Ids, true, LR), SJ = Jit.eval(Ids, true, LJ);
  EXPECT_TRUE(SR.ok()) << SR;
  EXPECT_TRUE(SJ.ok()) << SJ;
  std::vector<double> Rms;
  if (!SR.ok() || !SJ.ok())
    return Rms;
  if (MaxAbs)
    MaxAbs->clear();
  for (size_t P = 0; P < Ids.size(); ++P) {
    double Sq = 0, Max = 0;
    for (int64_t I = 0; I < Vocab; ++I) {
      const double D = double(LJ[P * Vocab + I]) - LR[P * Vocab + I];
      Sq += D * D;
      Max = std::max(Max, std::fabs(D)); // A NaN passes Max by, but makes the rms NaN.
    }
    Rms.push_back(std::sqrt(Sq / Vocab));
    if (MaxAbs)
      MaxAbs->push_back(Max);
  }
  return Rms;
}

struct Agreement {
  int Steps = 0, Agree = 0;
};

/// Checks one reference file against a session factory; returns agreement.
inline Agreement checkReference(const TransformerModel &M, const std::string &RefPath,
                         const std::function<std::unique_ptr<Session>()> &NewSession) {
  std::ifstream In(RefPath);
  nlohmann::json Ref = nlohmann::json::parse(In);
  Agreement A;
  const int64_t V = M.config().Vocab;
  for (const auto &Case : Ref["cases"]) {
    SCOPED_TRACE(Case["name"].get<std::string>());
    std::vector<int32_t> Prompt = Case["prompt_tokens"].get<std::vector<int32_t>>();
    std::vector<int32_t> Gen = Case["generated"].get<std::vector<int32_t>>();
    if (Case.contains("prompt")) {
      EXPECT_EQ(M.tokenizer().encode(Case["prompt"].get<std::string>()), Prompt);
    }
    std::vector<int32_t> Seq = Prompt;
    Seq.insert(Seq.end(), Gen.begin(), Gen.end() - 1);
    std::unique_ptr<Session> S = NewSession();
    std::vector<float> Logits;
    absl::Status St = S->eval(Seq, /*AllLogits=*/true, Logits);
    EXPECT_TRUE(St.ok()) << St;
    if (!St.ok())
      return A;
    const auto &Steps = Case["steps"];
    for (size_t I = 0; I < Steps.size(); ++I) {
      const float *L = &Logits[(Prompt.size() - 1 + I) * V];
      const auto &Top = Steps[I]["top"];
      double Sq = 0, Max = 0;
      for (const auto &Pair : Top) {
        double D = L[Pair[0].get<int32_t>()] - Pair[1].get<double>();
        Sq += D * D;
        Max = std::max(Max, std::fabs(D));
      }
      double Rms = std::sqrt(Sq / Top.size());
      EXPECT_LE(Rms, 0.5) << "step " << I;
      EXPECT_LE(Max, 1.5) << "step " << I;
      int32_t Want = Steps[I]["argmax"], Got = argmax(L, V);
      double Margin = Top[0][1].get<double>() - Top[1][1].get<double>();
      if (Margin >= 1.0) {
        EXPECT_EQ(Got, Want) << "step " << I << " margin " << Margin;
      }
      ++A.Steps;
      A.Agree += Got == Want;
    }
  }
  return A;
}

} // namespace lumen::test

#endif
