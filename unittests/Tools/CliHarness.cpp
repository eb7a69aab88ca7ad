//===- CliHarness.cpp - Running lumen-jit as a user does -------------------===//
#include "CliHarness.h"

#include "gtest/gtest.h"

#include <array>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <poll.h>
#include <sstream>
#include <sys/wait.h>
#include <unistd.h>

namespace lumen::test {

std::string quote(const std::string &S) {
  std::string Q = "'";
  for (char C : S)
    Q += C == '\'' ? std::string("'\\''") : std::string(1, C);
  return Q + "'";
}

std::string readFile(const std::string &Path) {
  std::ifstream In(Path, std::ios::binary);
  std::stringstream SS;
  SS << In.rdbuf();
  return SS.str();
}

void writeFile(const std::string &Path, const std::string &Text) {
  std::ofstream(Path, std::ios::binary) << Text;
}

void writeExecutable(const std::string &Path, const std::string &Text) {
  writeFile(Path, Text);
  std::filesystem::permissions(Path, std::filesystem::perms::owner_all);
}

Result shell(const std::string &Command) {
  static int Counter = 0;
  std::string ErrFile = kTmp + "/stderr." + std::to_string(getpid()) + "." + std::to_string(Counter++);
  Result R;
  FILE *P = popen((Command + " 2>" + quote(ErrFile)).c_str(), "r");
  std::array<char, 4096> Buf;
  size_t N;
  while ((N = fread(Buf.data(), 1, Buf.size(), P)) > 0)
    R.Out.append(Buf.data(), N);
  int Status = pclose(P);
  R.Exit = WIFEXITED(Status) ? WEXITSTATUS(Status) : 128 + WTERMSIG(Status);
  R.Err = readFile(ErrFile);
  std::filesystem::remove(ErrFile);
  return R;
}

Result lumenJit(const std::vector<std::string> &Args, const std::string &Stdin, const std::string &Env) {
  std::string Cmd = "printf %s " + quote(Stdin) + " | ";
  if (Env.find("LUMEN_CACHE_DIR=") == std::string::npos)
    Cmd += "LUMEN_CACHE_DIR=" + quote(kKernelCache) + " ";
  Cmd += Env + " " + kBinary;
  for (const std::string &A : Args)
    Cmd += ' ' + quote(A);
  return shell(Cmd);
}

std::vector<int32_t> parseIds(const std::string &Text) {
  std::vector<int32_t> Ids;
  std::istringstream S(Text);
  for (int32_t Id; S >> Id;)
    Ids.push_back(Id);
  return Ids;
}

namespace {
double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}
} // namespace

Child::Child(const std::vector<std::string> &Args) {
  int InPipe[2], OutPipe[2], ErrPipe[2];
  if (pipe(InPipe) || pipe(OutPipe) || pipe(ErrPipe)) {
    ADD_FAILURE() << "pipe failed";
    return;
  }
  Pid = fork();
  if (Pid == 0) {
    dup2(InPipe[0], 0);
    dup2(OutPipe[1], 1);
    dup2(ErrPipe[1], 2);
    for (int Fd : {InPipe[0], InPipe[1], OutPipe[0], OutPipe[1], ErrPipe[0], ErrPipe[1]})
      close(Fd);
    // A shell's background jobs ignore SIGINT; the user's terminal does not.
    std::signal(SIGINT, SIG_DFL);
    setenv("LUMEN_CACHE_DIR", kKernelCache.c_str(), 0);
    std::vector<char *> Argv = {const_cast<char *>(kBinary.c_str())};
    for (const std::string &A : Args)
      Argv.push_back(const_cast<char *>(A.c_str()));
    Argv.push_back(nullptr);
    execv(kBinary.c_str(), Argv.data());
    _exit(127);
  }
  close(InPipe[0]);
  close(OutPipe[1]);
  close(ErrPipe[1]);
  In = InPipe[1];
  OutFd = OutPipe[0];
  ErrFd = ErrPipe[0];
}

Child::~Child() {
  if (Pid > 0)
    wait(5);
  for (int Fd : {In, OutFd, ErrFd})
    if (Fd >= 0)
      close(Fd);
}

void Child::write(const std::string &Text) {
  if (In >= 0)
    (void)!::write(In, Text.data(), Text.size());
}

void Child::closeStdin() {
  if (In >= 0)
    close(In);
  In = -1;
}

void Child::pump(double TimeoutSeconds) {
  std::array<pollfd, 2> Fds = {{{OutFd, POLLIN, 0}, {ErrFd, POLLIN, 0}}};
  if (poll(Fds.data(), Fds.size(), static_cast<int>(TimeoutSeconds * 1000)) <= 0)
    return;
  std::array<char, 4096> Buf;
  for (size_t I = 0; I < Fds.size(); ++I) {
    if (!(Fds[I].revents & (POLLIN | POLLHUP)) || Fds[I].fd < 0)
      continue;
    ssize_t N = read(Fds[I].fd, Buf.data(), Buf.size());
    if (N > 0)
      (I == 0 ? Out : Err).append(Buf.data(), N);
    else if (N == 0) {
      close(Fds[I].fd);
      (I == 0 ? OutFd : ErrFd) = -1;
    }
  }
}

bool Child::waitFor(const std::string &Stream, const std::string &Needle, double TimeoutSeconds) {
  const double End = now() + TimeoutSeconds;
  while (Stream.find(Needle) == std::string::npos) {
    if (now() > End || (OutFd < 0 && ErrFd < 0))
      return false;
    pump(0.05);
  }
  return true;
}

void Child::signal(int Sig) {
  if (Pid > 0)
    kill(Pid, Sig);
}

int Child::wait(double TimeoutSeconds) {
  const double End = now() + TimeoutSeconds;
  int Status = 0;
  for (;;) {
    pid_t R = waitpid(Pid, &Status, WNOHANG);
    if (R == Pid)
      break;
    if (now() > End) {
      ADD_FAILURE() << "lumen-jit did not exit in time; killed";
      kill(Pid, SIGKILL);
      waitpid(Pid, &Status, 0);
      break;
    }
    pump(0.05);
  }
  Pid = -1;
  while (OutFd >= 0 || ErrFd >= 0)
    pump(1);
  return WIFEXITED(Status) ? WEXITSTATUS(Status) : 128 + WTERMSIG(Status);
}

} // namespace lumen::test
