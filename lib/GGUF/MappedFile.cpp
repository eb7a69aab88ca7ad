//===- MappedFile.cpp - Read-only memory mapping ---------------------------===//
#include "lumen/GGUF/MappedFile.h"

#include "absl/status/status.h"
#include "absl/strings/str_format.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace lumen::gguf {

absl::StatusOr<std::unique_ptr<MappedFile>> MappedFile::open(const std::string &Path) {
  // O_NONBLOCK: opening a FIFO would otherwise wait for a writer; the fstat
  // below refuses anything but a regular file (where the flag is moot).
  int Fd = ::open(Path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (Fd < 0)
    return absl::NotFoundError(absl::StrFormat("%s: cannot open: %s", Path, std::strerror(errno)));
  struct stat St;
  if (::fstat(Fd, &St) != 0) {
    int E = errno;
    ::close(Fd);
    return absl::InternalError(absl::StrFormat("%s: cannot stat: %s", Path, std::strerror(E)));
  }
  if (!S_ISREG(St.st_mode)) {
    ::close(Fd);
    return absl::InvalidArgumentError(absl::StrFormat("%s: not a regular file", Path));
  }
  size_t Size = static_cast<size_t>(St.st_size);
  const uint8_t *Data = nullptr;
  if (Size > 0) {
    void *P = ::mmap(nullptr, Size, PROT_READ, MAP_PRIVATE, Fd, 0);
    if (P == MAP_FAILED) {
      int E = errno;
      ::close(Fd);
      return absl::InternalError(absl::StrFormat("%s: cannot map: %s", Path, std::strerror(E)));
    }
    Data = static_cast<const uint8_t *>(P);
  }
  ::close(Fd); // The mapping keeps the file referenced.
  return std::unique_ptr<MappedFile>(new MappedFile(Path, Data, Size));
}

void MappedFile::release(size_t Offset, size_t Length) const {
  const size_t Page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  size_t Begin = (Offset + Page - 1) / Page * Page, End = std::min(Size, Offset + Length) / Page * Page;
  if (Data && Begin < End)
    ::madvise(const_cast<uint8_t *>(Data) + Begin, End - Begin, MADV_DONTNEED);
}

MappedFile::~MappedFile() {
  if (Data)
    ::munmap(const_cast<uint8_t *>(Data), Size);
}

} // namespace lumen::gguf
