//===- Progress.cpp - A progress bar on stderr -----------------------------===//
#include "Progress.h"

#include "Interrupt.h"

#include <algorithm>
#include <cstdio>
#include <unistd.h>

namespace lumen::tool {

void ProgressBar::start() {
  if (!Started) {
    Started = true;
    std::fprintf(stderr, "%s\n", Header.c_str());
  }
}

absl::Status ProgressBar::update(uint64_t Done, uint64_t Total) {
  if (Interrupt::requested())
    return absl::CancelledError("interrupted");
  start();
  const bool Tty = isatty(STDERR_FILENO);
  const auto Now = std::chrono::steady_clock::now();
  if (Done < Total && Now - Last < std::chrono::milliseconds(Tty ? 100 : 2000))
    return absl::OkStatus();
  Last = Now;
  constexpr int Width = 30;
  const double Fraction = Total ? double(Done) / Total : 1.0;
  const double Seconds = std::chrono::duration<double>(Now - Start).count();
  const int Filled = static_cast<int>(Width * Fraction);
  std::fprintf(stderr, "%s[%s%s] %3.0f%%  %.1f s", Tty ? "\r" : "", std::string(Filled, '#').c_str(),
               std::string(Width - Filled, '-').c_str(), 100 * Fraction, Seconds);
  if (Fraction > 0) { // Extrapolated, within the limit if there is one.
    double Left = Seconds / Fraction - Seconds;
    if (Limit > 0)
      Left = std::min(Left, std::max(0.0, Limit - Seconds));
    std::fprintf(stderr, ", %.0f s left", Left);
  }
  Open = Tty && Done < Total;
  std::fputs(Open ? " " : "\n", stderr);
  std::fflush(stderr);
  return absl::OkStatus();
}

void ProgressBar::finish() {
  if (Open)
    std::fputc('\n', stderr);
  Open = false;
}

int interruptedExit() {
  std::fprintf(stderr, "lumen-jit: error: interrupted; no output written\n");
  return 130;
}

} // namespace lumen::tool
