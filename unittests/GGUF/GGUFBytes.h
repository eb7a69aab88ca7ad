//===- GGUFBytes.h - Hand-built GGUF byte strings for tests ----*- C++ -*-===//
#ifndef LUMEN_UNITTESTS_GGUFBYTES_H
#define LUMEN_UNITTESTS_GGUFBYTES_H

#include "lumen/GGUF/GGUFFile.h"

#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <vector>

namespace lumen::gguf::test {

/// Appends little-endian fields, so a test can write any header, valid or not.
struct Bytes {
  std::vector<uint8_t> B;
  Bytes &u32(uint32_t V) { return raw(&V, 4); }
  Bytes &u64(uint64_t V) { return raw(&V, 8); }
  Bytes &f32(float V) { return raw(&V, 4); }
  Bytes &str(const std::string &S) { u64(S.size()); return raw(S.data(), S.size()); }
  Bytes &raw(const void *P, size_t N) {
    const uint8_t *C = static_cast<const uint8_t *>(P);
    B.insert(B.end(), C, C + N);
    return *this;
  }
  Bytes &pad(size_t Align) {
    while (B.size() % Align) B.push_back(0);
    return *this;
  }
  Bytes &zeros(size_t N) { B.resize(B.size() + N, 0); return *this; }
  Bytes &header(uint64_t Tensors, uint64_t KVs, uint32_t Version = 3) {
    return u32(0x46554747).u32(Version).u64(Tensors).u64(KVs);
  }
  Bytes &kvU32(const std::string &K, uint32_t V) { return str(K).u32(4).u32(V); }
  Bytes &tensor(const std::string &Name, std::vector<uint64_t> Dims, uint32_t Type, uint64_t Off) {
    str(Name).u32(Dims.size());
    for (uint64_t D : Dims) u64(D);
    return u32(Type).u64(Off);
  }
  std::span<const uint8_t> span() const { return B; }
};

inline absl::StatusOr<std::unique_ptr<GGUFFile>> parseBytes(const Bytes &B) {
  return GGUFFile::parse(B.span(), "test.gguf");
}

} // namespace lumen::gguf::test

#endif
