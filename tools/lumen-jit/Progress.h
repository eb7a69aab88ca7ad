//===- Progress.h - A progress bar on stderr ---------------------*- C++ -*-===//
#ifndef LUMEN_TOOLS_PROGRESS_H
#define LUMEN_TOOLS_PROGRESS_H

#include "absl/status/status.h"

#include <chrono>
#include <cstdint>
#include <string>

namespace lumen::tool {

/// "[#####-----]  41%  12.3 s, 17 s left" (the time left once some work is
/// done), redrawn in place on a terminal
/// (at most 10 times a second), a line every 2 s otherwise. update() says
/// Cancelled once Ctrl-C was pressed (Interrupt.h, armed for cancelling).
class ProgressBar {
public:
  /// Header is printed before the first bar.
  explicit ProgressBar(std::string Header) : Header(std::move(Header)) {}
  /// The work ends within Seconds of the start (a budget): the time left
  /// shown is at most what remains of it.
  void limitSeconds(double Seconds) { Limit = Seconds; }
  /// Prints the header now (else the first update does).
  void start();
  absl::Status update(uint64_t Done, uint64_t Total);
  /// Ends a bar left open on a terminal.
  void finish();

private:
  std::string Header;
  bool Started = false, Open = false;
  double Limit = 0; // 0: none.
  const std::chrono::steady_clock::time_point Start = std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point Last = {};
};

/// Ctrl-C stopped a write: says so (no output was written) and returns 130,
/// the status a shell expects of an interrupted command.
int interruptedExit();

} // namespace lumen::tool

#endif
