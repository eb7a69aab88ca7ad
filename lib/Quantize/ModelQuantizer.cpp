//===- ModelQuantizer.cpp - A GGUF model to a quantization preset ----------===//
#include "lumen/Quantize/ModelQuantizer.h"

#include "lumen/GGUF/GGUFWriter.h"
#include "lumen/GGUF/Quantize.h"
#include "lumen/Quantize/RowQuantizer.h"

#include "absl/strings/str_format.h"

#include <chrono>
#include <memory>
#include <sys/stat.h>
#include <vector>

namespace lumen::quant {

using gguf::TensorType;

namespace {
/// Whether A and B name the same existing file.
bool sameFile(const std::string &A, const std::string &B) {
  struct stat SA, SB;
  return ::stat(A.c_str(), &SA) == 0 && ::stat(B.c_str(), &SB) == 0 && SA.st_dev == SB.st_dev &&
         SA.st_ino == SB.st_ino;
}
} // namespace

absl::StatusOr<QuantizeReport> quantizeModel(const gguf::GGUFFile &In, const std::string &OutPath,
                                             const QuantizeOptions &Options) {
  const auto Start = std::chrono::steady_clock::now();
  if (absl::Status S = gguf::checkOutputPath(OutPath); !S.ok())
    return S;
  if (sameFile(In.name(), OutPath))
    return absl::InvalidArgumentError(
        absl::StrFormat("%s is the input file; write the quantized model to another path", OutPath));
  absl::StatusOr<ModelFacts> Facts = modelFacts(In);
  if (!Facts.ok())
    return Facts.status();
  const TensorTypePlan Plan(Options.Target, *Facts, {Options.LeaveOutputTensor});
  const PresetInfo &Info = Plan.preset();

  gguf::GGUFWriter W(In.alignment());
  for (const gguf::KeyValue &KV : In.metadata())
    W.setValue(KV.Key, KV.Val);
  W.setU32("general.file_type", Info.FileType);
  W.setU32("general.quantization_version", 2);

  // Decide every tensor's type first, so that a refusal writes nothing.
  QuantizeReport Report;
  struct Job {
    const gguf::TensorInfo *T;
    TensorType To;
  };
  std::vector<Job> Jobs;
  uint64_t Total = 0;
  for (const gguf::TensorInfo &T : In.tensors()) {
    const std::span<const int64_t> Dims(T.Dims.data(), T.NumDims);
    if (absl::Status S = Plan.check(T.Name, Dims); !S.ok())
      return S;
    TensorType To = Plan.typeFor(T.Name, Dims).value_or(T.Type);
    const auto Traits = gguf::tensorTypeTraits(To);
    if (To != T.Type) {
      if (gguf::isBlockQuantized(T.Type) && !Options.AllowRequantize)
        return absl::FailedPreconditionError(absl::StrFormat(
            "tensor '%s' is already quantized (%s); requantizing adds the errors of both quantizations: "
            "start from an F32, F16 or BF16 file, or pass --allow-requantize",
            T.Name, gguf::tensorTypeTraits(T.Type).Name));
      float Probe[256];
      if (T.Dims[0] % gguf::tensorTypeTraits(T.Type).BlockSize != 0 ||
          !gguf::dequantizeRow(T.Type, T.Data, Probe, 0))
        return absl::UnimplementedError(absl::StrFormat("tensor '%s': Lumen cannot decode type %s", T.Name,
                                                        gguf::tensorTypeTraits(T.Type).Name));
      if (T.Dims[0] % Traits.BlockSize != 0)
        return absl::InvalidArgumentError(absl::StrFormat("tensor '%s': rows of %d do not divide into %s blocks of %d",
                                                          T.Name, T.Dims[0], Traits.Name, Traits.BlockSize));
      Total += T.numElements();
    }
    Jobs.push_back({&T, To});
    const uint64_t After = static_cast<uint64_t>(T.numRows()) * (T.Dims[0] / Traits.BlockSize) * Traits.TypeSize;
    Report.Tensors.push_back(
        {std::string(T.Name), T.Type, To, Plan.fellBackFrom(T.Name, Dims), T.numElements(), T.NumBytes, After});
    Report.BytesBefore += T.NumBytes;
    Report.BytesAfter += After;
    Report.Elements += T.numElements();
  }

  auto Done = std::make_shared<uint64_t>(0);
  for (const Job &J : Jobs) {
    const gguf::TensorInfo &T = *J.T;
    const std::vector<int64_t> Dims(T.Dims.begin(), T.Dims.begin() + T.NumDims);
    absl::Status S;
    if (J.To == T.Type) {
      S = W.addTensor(T.Name, T.Type, Dims, std::span<const uint8_t>(T.Data, T.NumBytes));
    } else {
      const int64_t K = T.Dims[0];
      const uint64_t RowBytes = T.rowBytes();
      const TensorType From = T.Type;
      const uint8_t *Data = T.Data;
      RowQuantizerOptions RO;
      RO.Threads = Options.Threads;
      RO.OnRows = [=, &Options](int64_t Rows) {
        *Done += static_cast<uint64_t>(Rows) * K;
        return Options.OnProgress ? Options.OnProgress(*Done, Total) : absl::OkStatus();
      };
      S = W.addTensor(T.Name, J.To, Dims,
                      quantizedRows(std::string(T.Name), J.To, K,
                                    [=](int64_t Row, float *Out) {
                                      gguf::dequantizeRow(From, Data + Row * RowBytes, Out, K);
                                      return absl::OkStatus();
                                    },
                                    RO));
    }
    if (!S.ok())
      return S;
  }
  if (absl::Status S = W.write(OutPath); !S.ok())
    return S;
  struct stat St;
  Report.FileBytes = ::stat(OutPath.c_str(), &St) == 0 ? static_cast<uint64_t>(St.st_size) : 0;
  Report.Seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - Start).count();
  return Report;
}

} // namespace lumen::quant
