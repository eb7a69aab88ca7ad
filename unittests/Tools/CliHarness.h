//===- CliHarness.h - Running lumen-jit as a user does ---------*- C++ -*-===//
//
// The tests of tools/lumen-jit run the built binary through the shell, with
// its stdin, stdout, stderr and exit status, or as a child process they can
// signal. Every run uses one kernel cache directory under the test tree
// (through LUMEN_CACHE_DIR, as a user's environment would), unless a test
// sets its own.
//
//===----------------------------------------------------------------------===//
#ifndef LUMEN_UNITTESTS_TOOLS_CLIHARNESS_H
#define LUMEN_UNITTESTS_TOOLS_CLIHARNESS_H

#include <string>
#include <vector>

namespace lumen::test {

inline const std::string kBinary = LUMEN_JIT_BINARY;
inline const std::string kShared = LUMEN_SHARED_DIR;
inline const std::string kTiny = kShared + "/fixtures/tiny-qwen2.gguf";
inline const std::string kTmp = LUMEN_TEST_TMPDIR;
inline const std::string kKernelCache = kTmp + "/cli-kernel-cache";

struct Result {
  int Exit;
  std::string Out, Err;
};

/// S single-quoted for sh.
std::string quote(const std::string &S);
std::string readFile(const std::string &Path);
void writeFile(const std::string &Path, const std::string &Text);
void writeExecutable(const std::string &Path, const std::string &Text);

/// Runs a shell command line; its stdout, stderr and exit status (128 + the
/// signal if a signal ended it).
Result shell(const std::string &Command);

/// lumen-jit with Args and Stdin, with LUMEN_CACHE_DIR=kKernelCache unless
/// Env sets it ("NAME=value ..." put before the command).
Result lumenJit(const std::vector<std::string> &Args, const std::string &Stdin = "", const std::string &Env = "");

/// Space-separated token ids as printed by tokenize and --print-token-ids.
std::vector<int32_t> parseIds(const std::string &Text);

/// lumen-jit as a child process with pipes, for tests that interact with
/// it or send it signals.
class Child {
public:
  explicit Child(const std::vector<std::string> &Args);
  ~Child();
  void write(const std::string &Text);
  void closeStdin();
  /// Reads stdout until it contains Needle or TimeoutSeconds pass; whether
  /// it appeared. What was read stays in out().
  bool waitForOutput(const std::string &Needle, double TimeoutSeconds) { return waitFor(Out, Needle, TimeoutSeconds); }
  /// The same for stderr.
  bool waitForError(const std::string &Needle, double TimeoutSeconds) { return waitFor(Err, Needle, TimeoutSeconds); }
  void signal(int Sig);
  /// Waits for exit (killing the child after TimeoutSeconds); its status as
  /// shell() reports it, with all remaining output read.
  int wait(double TimeoutSeconds);
  const std::string &out() const { return Out; }
  const std::string &err() const { return Err; }

private:
  void pump(double TimeoutSeconds);
  bool waitFor(const std::string &Stream, const std::string &Needle, double TimeoutSeconds);
  int Pid = -1, In = -1, OutFd = -1, ErrFd = -1;
  std::string Out, Err;
};

} // namespace lumen::test

#endif
