//===- Interrupt.h - Ctrl-C as llama.cpp users expect it --------*- C++ -*-===//
//
// The first SIGINT (Ctrl-C) during a reply stops that reply through the
// library's GenerateOptions::Cancel; a second one, or one while nothing can
// be cancelled (loading, compiling), ends the process with status 130.
// SIGTERM keeps its default: it ends the process.
//
//===----------------------------------------------------------------------===//
#ifndef LUMEN_TOOLS_INTERRUPT_H
#define LUMEN_TOOLS_INTERRUPT_H

#include <atomic>

namespace lumen::tool {

class Interrupt {
public:
  /// Installs the handlers (without SA_RESTART, so that a read from the
  /// terminal returns at Ctrl-C).
  static void install();
  /// The flag generate() checks before every token.
  static const std::atomic<bool> *cancelFlag();
  /// Whether a signal arrived since the last clear().
  static bool requested();
  /// Arms the handler for cancelling (a reply or a prompt is in progress) or
  /// disarms it (a signal then exits at once).
  static void setCancellable(bool On);
  static void clear();
};

} // namespace lumen::tool

#endif
