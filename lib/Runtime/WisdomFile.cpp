//===- WisdomFile.cpp - Wisdom on disk -------------------------------------===//
#include "lumen/Runtime/WisdomFile.h"
#include "lumen/Runtime/Jit.h"

#include "absl/strings/str_format.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <unistd.h>

namespace lumen::runtime {

std::string wisdomPath(const std::string &CacheDir) {
  const std::string Dir = CacheDir.empty() ? defaultObjectCacheDir() : CacheDir;
  return Dir.empty() ? "" : Dir + "/wisdom.txt";
}

absl::StatusOr<codegen::Wisdom> loadWisdom(const std::string &Path, const codegen::WisdomHost &Host) {
  std::error_code EC;
  if (Path.empty() || !std::filesystem::exists(Path, EC))
    return codegen::Wisdom(Host);
  if (!std::filesystem::is_regular_file(Path, EC))
    return absl::InvalidArgumentError(absl::StrFormat("wisdom %s: not a regular file", Path));
  // Far beyond any real wisdom file: a runaway one is refused, not read.
  constexpr uintmax_t kMaxBytes = 16 << 20;
  if (std::filesystem::file_size(Path, EC) > kMaxBytes)
    return absl::InvalidArgumentError(absl::StrFormat("wisdom %s: larger than 16 MB", Path));
  std::ifstream In(Path, std::ios::binary);
  std::stringstream Text;
  Text << In.rdbuf();
  if (!In && !In.eof())
    return absl::DataLossError(absl::StrFormat("wisdom %s: cannot be read", Path));
  absl::StatusOr<codegen::Wisdom> W = codegen::Wisdom::parse(Text.str(), Host);
  if (!W.ok())
    return absl::InvalidArgumentError(absl::StrFormat("wisdom %s: %s", Path, W.status().message()));
  return W;
}

absl::Status checkWisdomWritable(const std::string &Path) {
  if (Path.empty())
    return absl::FailedPreconditionError("no place for wisdom: no kernel cache directory ($HOME is not set)");
  std::error_code EC;
  if (std::filesystem::is_directory(Path, EC))
    return absl::FailedPreconditionError(absl::StrFormat("cannot write wisdom %s: it is a directory", Path));
  const std::filesystem::path Dir = std::filesystem::path(Path).parent_path();
  if (!Dir.empty())
    std::filesystem::create_directories(Dir, EC);
  const std::string Probe = absl::StrFormat("%s.%d.probe", Path, ::getpid());
  int Fd = ::open(Probe.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (Fd < 0)
    return absl::PermissionDeniedError(absl::StrFormat("cannot write wisdom %s: %s", Path, std::strerror(errno)));
  ::close(Fd);
  ::unlink(Probe.c_str());
  return absl::OkStatus();
}

absl::Status saveWisdom(const std::string &Path, const codegen::Wisdom &W) {
  if (Path.empty())
    return absl::FailedPreconditionError("no place for wisdom: no kernel cache directory ($HOME is not set)");
  std::error_code EC;
  const std::filesystem::path Dir = std::filesystem::path(Path).parent_path();
  if (!Dir.empty())
    std::filesystem::create_directories(Dir, EC);
  const std::string Tmp = absl::StrFormat("%s.%d.tmp", Path, ::getpid());
  const std::string Text = W.print();
  int Fd = ::open(Tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (Fd < 0)
    return absl::PermissionDeniedError(absl::StrFormat("cannot write wisdom %s: %s", Tmp, std::strerror(errno)));
  bool Ok = ::write(Fd, Text.data(), Text.size()) == static_cast<ssize_t>(Text.size()) && ::fsync(Fd) == 0;
  const int Err = errno;
  Ok = ::close(Fd) == 0 && Ok;
  if (Ok)
    std::filesystem::rename(Tmp, Path, EC);
  if (!Ok || EC) {
    std::filesystem::remove(Tmp, EC);
    return absl::DataLossError(absl::StrFormat("cannot write wisdom %s: %s", Path, std::strerror(Ok ? EIO : Err)));
  }
  return absl::OkStatus();
}

} // namespace lumen::runtime
