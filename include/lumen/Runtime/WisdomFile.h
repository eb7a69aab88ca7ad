//===- lumen/Runtime/WisdomFile.h - Wisdom on disk ---------------*- C++ -*-===//
//
// Where wisdom (codegen/Wisdom.h) lives and how it is read and written: a
// text file beside the kernel object cache, replaced whole (written to a
// temporary name, then renamed) so a reader never sees half of one.
//
//===----------------------------------------------------------------------===//
#ifndef LUMEN_RUNTIME_WISDOMFILE_H
#define LUMEN_RUNTIME_WISDOMFILE_H

#include "lumen/Export.h"

#include "lumen/Codegen/Wisdom.h"

#include "absl/status/statusor.h"

#include <string>

namespace lumen::runtime {

/// The wisdom file for a kernel object cache directory: DIR/wisdom.txt
/// (defaultObjectCacheDir()'s when CacheDir is empty); empty if there is
/// no cache directory at all (no $HOME).
LUMEN_API std::string wisdomPath(const std::string &CacheDir = "");

/// Host's wisdom from Path: empty wisdom if the file does not exist; an
/// error naming the file and line if it cannot be read or is malformed.
LUMEN_API absl::StatusOr<codegen::Wisdom> loadWisdom(const std::string &Path, const codegen::WisdomHost &Host);

/// Whether saveWisdom(Path) can succeed: its directory exists or can be
/// made and takes a new file, and Path is not a directory.
LUMEN_API absl::Status checkWisdomWritable(const std::string &Path);

/// Writes W to Path whole or not at all, creating its directory.
LUMEN_API absl::Status saveWisdom(const std::string &Path, const codegen::Wisdom &W);

} // namespace lumen::runtime

#endif
