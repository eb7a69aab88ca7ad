//===- Interrupt.cpp - Ctrl-C as llama.cpp users expect it -----------------===//
#include "Interrupt.h"

#include <csignal>
#include <unistd.h>

namespace lumen::tool {

namespace {
std::atomic<bool> Requested{false};
std::atomic<bool> Cancellable{false};

extern "C" void onSignal(int) {
  // Only async-signal-safe calls here.
  if (Requested.exchange(true) || !Cancellable.load()) {
    (void)!::write(STDOUT_FILENO, "\n", 1);
    ::_exit(130);
  }
}
} // namespace

void Interrupt::install() {
  struct sigaction Action = {};
  Action.sa_handler = onSignal;
  sigemptyset(&Action.sa_mask);
  Action.sa_flags = 0; // No SA_RESTART: a blocked read returns EINTR.
  ::sigaction(SIGINT, &Action, nullptr);
}

const std::atomic<bool> *Interrupt::cancelFlag() { return &Requested; }
bool Interrupt::requested() { return Requested.load(); }
void Interrupt::setCancellable(bool On) { Cancellable.store(On); }
void Interrupt::clear() { Requested.store(false); }

} // namespace lumen::tool
