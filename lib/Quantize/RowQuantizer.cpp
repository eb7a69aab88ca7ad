//===- RowQuantizer.cpp - Rows to a weight type as they are written --------===//
#include "lumen/Quantize/RowQuantizer.h"

#include "lumen/GGUF/Quantize.h"

#include "absl/strings/str_format.h"

#include <algorithm>
#include <cmath>
#include <mutex>
#include <thread>
#include <vector>

namespace lumen::quant {

absl::Status parallelRows(int64_t N, unsigned Threads,
                          const std::function<absl::Status(int64_t First, int64_t Count)> &Body) {
  if (!Threads)
    Threads = std::max(1u, std::thread::hardware_concurrency());
  const int64_t T = std::max<int64_t>(1, std::min<int64_t>(Threads, N));
  if (T == 1)
    return Body(0, N);
  std::mutex Lock;
  absl::Status First;
  std::vector<std::thread> Workers;
  const int64_t Per = (N + T - 1) / T;
  for (int64_t I = 0; I < T; ++I) {
    const int64_t Begin = I * Per, Count = std::min<int64_t>(Per, N - Begin);
    if (Count <= 0)
      break;
    Workers.emplace_back([&, Begin, Count] {
      absl::Status S = Body(Begin, Count);
      std::lock_guard<std::mutex> G(Lock);
      if (First.ok())
        First = std::move(S);
    });
  }
  for (std::thread &W : Workers)
    W.join();
  return First;
}

gguf::GGUFWriter::RowFiller quantizedRows(std::string Name, gguf::TensorType Type, int64_t RowLength,
                                          FloatRowSource Source, RowQuantizerOptions Options) {
  const gguf::TensorTypeTraits Traits = gguf::tensorTypeTraits(Type);
  const size_t RowBytes = RowLength / Traits.BlockSize * Traits.TypeSize;
  return [=](int64_t FirstRow, int64_t NumRows, uint8_t *Out) -> absl::Status {
    absl::Status S = parallelRows(NumRows, Options.Threads, [&](int64_t Begin, int64_t Count) -> absl::Status {
      std::vector<float> Row(RowLength);
      for (int64_t R = Begin; R < Begin + Count; ++R) {
        if (absl::Status S = Source(FirstRow + R, Row.data()); !S.ok())
          return S;
        if (!std::all_of(Row.begin(), Row.end(), [](float V) { return std::isfinite(V); }))
          return absl::InvalidArgumentError(
              absl::StrFormat("tensor '%s' row %d holds a value that is not finite (NaN or infinity)", Name,
                              FirstRow + R));
        if (!gguf::quantizeRow(Type, Row.data(), Out + R * RowBytes, RowLength))
          return absl::UnimplementedError(
              absl::StrFormat("tensor '%s': cannot write type %s", Name, Traits.Name));
      }
      return absl::OkStatus();
    });
    if (S.ok() && Options.OnRows)
      S = Options.OnRows(NumRows);
    return S;
  };
}

} // namespace lumen::quant
