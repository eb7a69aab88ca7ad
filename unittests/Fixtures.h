//===- Fixtures.h - Test data that must be there in CI ----------*- C++ -*-===//
//
// Tests that read ../shared (the fixtures next to the checkout) skip where it
// is absent, on a developer's machine; in CI (CI=true, as .ci/run runs) the
// data must be there, and its absence is a failure, never a skip.
//
//===----------------------------------------------------------------------===//
#ifndef LUMEN_UNITTESTS_FIXTURES_H
#define LUMEN_UNITTESTS_FIXTURES_H

#include "gtest/gtest.h"

#include <cstdlib>
#include <cstring>
#include <filesystem>

namespace lumen::test {
inline bool inCI() {
  const char *Ci = std::getenv("CI");
  return Ci && std::strcmp(Ci, "true") == 0;
}
} // namespace lumen::test

/// Returns from the test (or SetUp) when Path does not exist: a skip, or a
/// failure in CI. Why says what would have made it.
#define LUMEN_REQUIRE_FILE(Path, Why)                                                                    \
  do {                                                                                                   \
    if (!std::filesystem::exists(Path)) {                                                                \
      if (::lumen::test::inCI())                                                                         \
        GTEST_FAIL() << (Path) << " is missing (" << (Why) << "); CI must run every test that reads it"; \
      GTEST_SKIP() << (Path) << " not found (" << (Why) << ")";                                          \
    }                                                                                                    \
  } while (0)

/// The tiny fixture and the files beside it: ../shared/fixtures.
#define LUMEN_REQUIRE_SHARED(Path) LUMEN_REQUIRE_FILE(Path, "../shared/fixtures next to the checkout")

#endif
