//===- quant_error.cpp - Quantization error of files against their source ---===//
//
// quant_error SOURCE.gguf A.gguf [B.gguf ...]
//
// For every matrix of SOURCE (F32/F16/BF16), the relative RMS error of each
// quantized file's copy: sqrt(sum (w - q)^2 / sum w^2), both decoded with
// dequantizeRow (which matches ggml bit for bit). One line per tensor and a
// total per file, so Lumen's quantizer and llama-quantize's can be compared
// on the same tensors (docs/QUANTIZATION.md).
//
//===----------------------------------------------------------------------===//
#include "lumen/GGUF/GGUFFile.h"
#include "lumen/GGUF/Quantize.h"

#include <cmath>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

using namespace lumen::gguf;

int main(int Argc, char **Argv) {
  if (Argc < 3) {
    std::fprintf(stderr, "usage: quant_error SOURCE.gguf A.gguf [B.gguf ...]\n");
    return 2;
  }
  std::vector<std::unique_ptr<GGUFFile>> Files;
  for (int I = 1; I < Argc; ++I) {
    auto F = GGUFFile::open(Argv[I]);
    if (!F.ok()) {
      std::fprintf(stderr, "quant_error: %s\n", std::string(F.status().message()).c_str());
      return 1;
    }
    Files.push_back(std::move(*F));
  }
  const GGUFFile &Src = *Files[0];
  std::vector<double> TotalErr(Files.size(), 0), TotalNorm(Files.size(), 0);
  std::printf("%-28s", "tensor");
  for (size_t F = 1; F < Files.size(); ++F)
    std::printf(" | %-7s %-9s", "type", "rel.rms");
  std::printf("\n");
  for (const TensorInfo &T : Src.tensors()) {
    if (T.NumDims < 2)
      continue;
    const int64_t K = T.Dims[0];
    std::vector<float> W(K), Q(K);
    std::printf("%-28s", std::string(T.Name).c_str());
    for (size_t F = 1; F < Files.size(); ++F) {
      const TensorInfo *U = Files[F]->findTensor(T.Name);
      if (!U || U->Dims != T.Dims) {
        std::printf(" | %-17s", "missing");
        continue;
      }
      double Err = 0, Norm = 0;
      for (int64_t R = 0; R < T.numRows(); ++R) {
        if (!dequantizeRow(T.Type, T.Data + R * T.rowBytes(), W.data(), K) ||
            !dequantizeRow(U->Type, U->Data + R * U->rowBytes(), Q.data(), K)) {
          Err = NAN;
          break;
        }
        for (int64_t I = 0; I < K; ++I)
          Err += (double(W[I]) - Q[I]) * (double(W[I]) - Q[I]), Norm += double(W[I]) * W[I];
      }
      TotalErr[F] += Err, TotalNorm[F] += Norm;
      std::printf(" | %-7s %.6f ", std::string(tensorTypeTraits(U->Type).Name).c_str(), std::sqrt(Err / Norm));
    }
    std::printf("\n");
  }
  std::printf("%-28s", "all matrices");
  for (size_t F = 1; F < Files.size(); ++F)
    std::printf(" | %-7s %.6f ", "", std::sqrt(TotalErr[F] / TotalNorm[F]));
  std::printf("\n");
  return 0;
}
