//===- InspectCommand.cpp - lumen-jit inspect ------------------------------===//
#include "Commands.h"
#include "Flags.h"

#include "lumen/GGUF/GGUFFile.h"

#include "absl/flags/flag.h"
#include "absl/strings/str_format.h"

#include <cstdio>
#include <map>

namespace lumen::tool {

namespace {
std::string typeLabel(const gguf::Value &V) {
  if (!V.isArray())
    return std::string(gguf::valueTypeName(V.Type));
  return absl::StrFormat("arr[%s,%d]", gguf::valueTypeName(V.ElementType), V.Count);
}
} // namespace

int runInspect(const std::vector<std::string> &Args) {
  if (Args.size() != 1)
    return fail("usage: lumen-jit inspect FILE [--tensors]");
  absl::StatusOr<std::unique_ptr<gguf::GGUFFile>> F = gguf::GGUFFile::open(Args[0]);
  if (!F.ok())
    return fail(std::string(F.status().message()));
  const gguf::GGUFFile &G = **F;

  uint64_t DataBytes = 0;
  std::map<std::string_view, int> TypeCounts;
  for (const gguf::TensorInfo &T : G.tensors()) {
    DataBytes += T.NumBytes;
    ++TypeCounts[gguf::tensorTypeTraits(T.Type).Name];
  }
  std::printf("%s: GGUF v%u, %zu tensors, %zu metadata keys, alignment %u\n", G.name().c_str(),
              G.version(), G.tensors().size(), G.metadata().size(), G.alignment());
  std::printf("  file %llu bytes, header %llu bytes, tensor data %llu bytes\n",
              static_cast<unsigned long long>(G.fileSize()),
              static_cast<unsigned long long>(G.dataOffset()),
              static_cast<unsigned long long>(DataBytes));

  std::printf("\nmetadata:\n");
  for (const gguf::KeyValue &KV : G.metadata())
    std::printf("  %-42s %-18s %s\n", std::string(KV.Key).c_str(), typeLabel(KV.Val).c_str(),
                KV.Val.toString().c_str());

  std::string Types;
  for (const auto &[Name, Count] : TypeCounts)
    Types += absl::StrFormat("%s%s: %d", Types.empty() ? "" : ", ", Name, Count);
  std::printf("\ntensors: %zu (%s), %.1f MB\n", G.tensors().size(), Types.c_str(),
              DataBytes / 1e6);
  if (!absl::GetFlag(FLAGS_tensors)) {
    std::printf("  (--tensors lists them)\n");
    return 0;
  }
  std::printf("  %5s  %-32s %-6s %-16s %12s %12s\n", "#", "name", "type", "shape", "bytes",
              "offset");
  int I = 0;
  for (const gguf::TensorInfo &T : G.tensors())
    std::printf("  %5d  %-32s %-6s %-16s %12llu %12llu\n", I++, std::string(T.Name).c_str(),
                std::string(gguf::tensorTypeTraits(T.Type).Name).c_str(), T.shapeString().c_str(),
                static_cast<unsigned long long>(T.NumBytes),
                static_cast<unsigned long long>(T.Offset));
  return 0;
}

} // namespace lumen::tool
