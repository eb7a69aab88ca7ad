//===- GGUFWriter.cpp - GGUF v3 writer -------------------------------------===//
#include "lumen/GGUF/GGUFWriter.h"

#include "absl/strings/str_format.h"

#include <algorithm>
#include <atomic>
#include <fcntl.h>
#include <filesystem>
#include <sys/stat.h>
#include <unistd.h>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

namespace lumen::gguf {

namespace {
template <typename T> void put(std::string &Out, T V) {
  char B[sizeof(T)];
  std::memcpy(B, &V, sizeof(T));
  Out.append(B, sizeof(T));
}
void putString(std::string &Out, std::string_view S) {
  put<uint64_t>(Out, S.size());
  Out.append(S);
}
void putType(std::string &Out, ValueType T) { put<uint32_t>(Out, static_cast<uint32_t>(T)); }

// Encodes V without its leading type tag.
void putValueBody(std::string &Out, const Value &V) {
  switch (V.Type) {
  case ValueType::String:
    putString(Out, V.String);
    return;
  case ValueType::Array: {
    putType(Out, V.ElementType);
    put<uint64_t>(Out, V.Count);
    if (V.ElementType == ValueType::String) {
      for (std::string_view S : V.Strings)
        putString(Out, S);
    } else if (V.ElementType == ValueType::Array) {
      for (const Value &Item : V.Items)
        putValueBody(Out, Item);
    } else {
      Out.append(reinterpret_cast<const char *>(V.Raw), V.Count * valueTypeSize(V.ElementType));
    }
    return;
  }
  default: {
    char B[8];
    std::memcpy(B, &V.Bits, 8);
    Out.append(B, valueTypeSize(V.Type));
    return;
  }
  }
}

uint64_t alignUp(uint64_t N, uint64_t A) { return (N + A - 1) / A * A; }
} // namespace

GGUFWriter::GGUFWriter(uint32_t Alignment) : Alignment(Alignment) {}

void GGUFWriter::setEncoded(std::string_view Key, std::string Encoded) {
  for (auto &KV : KVs)
    if (KV.first == Key) {
      KV.second = std::move(Encoded);
      return;
    }
  KVs.emplace_back(std::string(Key), std::move(Encoded));
}

#define LUMEN_SCALAR_SETTER(Name, CType, VT)                                                       \
  void GGUFWriter::Name(std::string_view Key, CType V) {                                           \
    std::string E;                                                                                 \
    putType(E, VT);                                                                                \
    put<CType>(E, V);                                                                              \
    setEncoded(Key, std::move(E));                                                                 \
  }
LUMEN_SCALAR_SETTER(setU32, uint32_t, ValueType::U32)
LUMEN_SCALAR_SETTER(setI32, int32_t, ValueType::I32)
LUMEN_SCALAR_SETTER(setU64, uint64_t, ValueType::U64)
LUMEN_SCALAR_SETTER(setF32, float, ValueType::F32)
#undef LUMEN_SCALAR_SETTER

void GGUFWriter::setBool(std::string_view Key, bool V) {
  std::string E;
  putType(E, ValueType::Bool);
  put<uint8_t>(E, V ? 1 : 0);
  setEncoded(Key, std::move(E));
}

void GGUFWriter::setString(std::string_view Key, std::string_view V) {
  std::string E;
  putType(E, ValueType::String);
  putString(E, V);
  setEncoded(Key, std::move(E));
}

void GGUFWriter::setStringArray(std::string_view Key, const std::vector<std::string> &V) {
  std::string E;
  putType(E, ValueType::Array);
  putType(E, ValueType::String);
  put<uint64_t>(E, V.size());
  for (const std::string &S : V)
    putString(E, S);
  setEncoded(Key, std::move(E));
}

void GGUFWriter::setI32Array(std::string_view Key, std::span<const int32_t> V) {
  std::string E;
  putType(E, ValueType::Array);
  putType(E, ValueType::I32);
  put<uint64_t>(E, V.size());
  E.append(reinterpret_cast<const char *>(V.data()), V.size_bytes());
  setEncoded(Key, std::move(E));
}

void GGUFWriter::setValue(std::string_view Key, const Value &V) {
  std::string E;
  putType(E, V.Type);
  putValueBody(E, V);
  setEncoded(Key, std::move(E));
}

absl::Status GGUFWriter::addTensor(std::string_view Name, TensorType Type,
                                   std::vector<int64_t> Dims, RowFiller Fill) {
  if (Dims.empty() || Dims.size() > 4)
    return absl::InvalidArgumentError(
        absl::StrFormat("tensor '%s': %d dimensions (1 to 4 allowed)", Name, Dims.size()));
  for (const PendingTensor &T : Tensors)
    if (T.Name == Name)
      return absl::AlreadyExistsError(absl::StrFormat("tensor '%s' added twice", Name));
  TensorTypeTraits Traits = tensorTypeTraits(Type);
  int64_t Rows = 1;
  for (int64_t D : Dims) {
    if (D <= 0)
      return absl::InvalidArgumentError(absl::StrFormat("tensor '%s': dimension %d", Name, D));
    Rows *= D;
  }
  Rows /= Dims[0];
  if (Dims[0] % Traits.BlockSize)
    return absl::InvalidArgumentError(absl::StrFormat(
        "tensor '%s': ne[0] = %d is not a multiple of the %s block size %d", Name, Dims[0],
        Traits.Name, Traits.BlockSize));
  uint64_t RowBytes = static_cast<uint64_t>(Dims[0]) / Traits.BlockSize * Traits.TypeSize;
  Tensors.push_back({std::string(Name), Type, std::move(Dims), RowBytes * Rows, RowBytes, Rows,
                     std::move(Fill)});
  return absl::OkStatus();
}

absl::Status GGUFWriter::addTensor(std::string_view Name, TensorType Type,
                                   std::vector<int64_t> Dims, std::span<const uint8_t> Bytes) {
  const uint8_t *Src = Bytes.data();
  size_t Size = Bytes.size();
  if (absl::Status S = addTensor(Name, Type, std::move(Dims), RowFiller()); !S.ok())
    return S;
  PendingTensor &T = Tensors.back();
  if (T.NumBytes != Size) {
    Tensors.pop_back();
    return absl::InvalidArgumentError(absl::StrFormat(
        "tensor '%s': %d bytes given, its shape needs %d", Name, Size, T.NumBytes));
  }
  uint64_t RowBytes = T.RowBytes;
  T.Fill = [Src, RowBytes](int64_t First, int64_t N, uint8_t *Out) {
    std::memcpy(Out, Src + First * RowBytes, N * RowBytes);
    return absl::OkStatus();
  };
  return absl::OkStatus();
}

uint64_t GGUFWriter::tensorDataBytes() const {
  uint64_t N = 0;
  for (const PendingTensor &T : Tensors)
    N = alignUp(N, Alignment) + T.NumBytes;
  return N;
}

absl::Status GGUFWriter::write(const std::string &Path) const {
  if (Alignment == 0 || (Alignment & (Alignment - 1)) != 0)
    return absl::InvalidArgumentError(absl::StrFormat("alignment %d is not a power of two", Alignment));
  // Readers take the alignment from general.alignment; record ours if unset.
  bool HasAlignment = std::any_of(KVs.begin(), KVs.end(),
                                  [](const auto &KV) { return KV.first == "general.alignment"; });
  std::string Header;
  put<uint32_t>(Header, 0x46554747);
  put<uint32_t>(Header, 3);
  put<uint64_t>(Header, Tensors.size());
  put<uint64_t>(Header, KVs.size() + (HasAlignment ? 0 : 1));
  for (const auto &[Key, Encoded] : KVs) {
    putString(Header, Key);
    Header += Encoded;
  }
  if (!HasAlignment) {
    putString(Header, "general.alignment");
    putType(Header, ValueType::U32);
    put<uint32_t>(Header, Alignment);
  }
  uint64_t Offset = 0;
  for (const PendingTensor &T : Tensors) {
    putString(Header, T.Name);
    put<uint32_t>(Header, T.Dims.size());
    for (int64_t D : T.Dims)
      put<uint64_t>(Header, D);
    put<uint32_t>(Header, static_cast<uint32_t>(T.Type));
    Offset = alignUp(Offset, Alignment);
    put<uint64_t>(Header, Offset);
    Offset += T.NumBytes;
  }
  Header.resize(alignUp(Header.size(), Alignment), '\0');

  // The file is renamed into place: that would replace a FIFO, a device or a
  // symlink with a regular file, so only a regular file (or nothing) may be
  // there.
  if (absl::Status S = checkOutputPath(Path); !S.ok())
    return S;
  // A name of our own: two writers of the same path never share a temp file.
  static std::atomic<unsigned> Counter{0};
  std::string Tmp = absl::StrFormat("%s.%d.%d.tmp", Path, ::getpid(), Counter++);
  // Where the file system has them, an unnamed file in the target directory
  // (O_TMPFILE), named only once complete: an interrupted write leaves
  // nothing behind. Elsewhere a named temporary file.
  std::string Dir = std::filesystem::path(Path).parent_path().string();
  int Fd = ::access("/proc/self/fd", X_OK) == 0
               ? ::open(Dir.empty() ? "." : Dir.c_str(), O_TMPFILE | O_WRONLY | O_CLOEXEC, 0666)
               : -1;
  const bool Unnamed = Fd >= 0;
  if (!Unnamed)
    Fd = ::open(Tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  if (Fd < 0)
    return absl::PermissionDeniedError(absl::StrFormat("cannot create %s: %s", Path, std::strerror(errno)));
  // A file replaced keeps its permissions.
  if (struct stat Old; ::stat(Path.c_str(), &Old) == 0 && S_ISREG(Old.st_mode))
    (void)::fchmod(Fd, Old.st_mode & 07777);
  std::unique_ptr<FILE, int (*)(FILE *)> Out(::fdopen(Fd, "wb"), &std::fclose);
  if (!Out) {
    ::close(Fd);
    return absl::InternalError(absl::StrFormat("cannot write %s: %s", Path, std::strerror(errno)));
  }
  auto Fail = [&](const char *What) {
    std::string Msg = absl::StrFormat("%s: %s: %s", Path, What, std::strerror(errno));
    Out.reset();
    if (!Unnamed)
      std::remove(Tmp.c_str());
    return absl::DataLossError(Msg);
  };
  if (std::fwrite(Header.data(), 1, Header.size(), Out.get()) != Header.size())
    return Fail("write failed");

  constexpr uint64_t kChunkBytes = 8u << 20;
  std::vector<uint8_t> Buffer;
  static const char Zeros[64] = {};
  uint64_t Written = 0;
  for (const PendingTensor &T : Tensors) {
    uint64_t Pad = alignUp(Written, Alignment) - Written;
    if (Pad && std::fwrite(Zeros, 1, Pad, Out.get()) != Pad)
      return Fail("write failed");
    Written += Pad;
    int64_t RowsPerChunk = std::max<int64_t>(1, kChunkBytes / T.RowBytes);
    for (int64_t Row = 0; Row < T.NumRows; Row += RowsPerChunk) {
      int64_t N = std::min(RowsPerChunk, T.NumRows - Row);
      Buffer.assign(N * T.RowBytes, 0);
      if (absl::Status S = T.Fill(Row, N, Buffer.data()); !S.ok()) {
        Out.reset();
        if (!Unnamed)
          std::remove(Tmp.c_str());
        return S;
      }
      if (std::fwrite(Buffer.data(), 1, Buffer.size(), Out.get()) != Buffer.size())
        return Fail("write failed");
    }
    Written += T.NumBytes;
  }
  // On disk before the rename, so a crash leaves the old file or the new one.
  if (std::fflush(Out.get()) != 0 || ::fsync(::fileno(Out.get())) != 0)
    return Fail("flush failed");
  if (Unnamed && ::linkat(AT_FDCWD, absl::StrFormat("/proc/self/fd/%d", ::fileno(Out.get())).c_str(), AT_FDCWD,
                          Tmp.c_str(), AT_SYMLINK_FOLLOW) != 0)
    return Fail("cannot name the written file");
  if (std::fclose(Out.release()) != 0) {
    std::string Msg = absl::StrFormat("%s: close failed: %s", Path, std::strerror(errno));
    std::remove(Tmp.c_str());
    return absl::DataLossError(Msg);
  }
  if (std::rename(Tmp.c_str(), Path.c_str()) != 0) {
    std::string Msg = absl::StrFormat("cannot put %s in place (from %s): %s", Path, Tmp, std::strerror(errno));
    std::remove(Tmp.c_str());
    return absl::PermissionDeniedError(Msg);
  }
  return absl::OkStatus();
}

absl::Status checkOutputPath(const std::string &Path) {
  if (Path.empty())
    return absl::InvalidArgumentError("the output file name is empty");
  struct stat St;
  if (::lstat(Path.c_str(), &St) != 0)
    return errno == ENOENT ? absl::OkStatus()
                           : absl::PermissionDeniedError(absl::StrFormat("%s: %s", Path, std::strerror(errno)));
  if (S_ISREG(St.st_mode))
    return absl::OkStatus();
  const char *What = S_ISLNK(St.st_mode)   ? "a symbolic link"
                     : S_ISDIR(St.st_mode)  ? "a directory"
                     : S_ISFIFO(St.st_mode) ? "a FIFO"
                     : S_ISCHR(St.st_mode)  ? "a character device"
                     : S_ISBLK(St.st_mode)  ? "a block device"
                     : S_ISSOCK(St.st_mode) ? "a socket"
                                            : "not a regular file";
  return absl::FailedPreconditionError(absl::StrFormat(
      "%s is %s; refusing to replace it (output files are written whole and renamed into place: "
      "name a regular file or a new path)",
      Path, What));
}

} // namespace lumen::gguf
