//===- ServeCommandTest.cpp - lumen-jit serve's flags and start -------------===//
//
// What a user mistypes gets a clear error before anything listens; a port
// in use is an error, not a second server on it; SIGINT during the load
// and after it exits 0. (The API itself: unittests/Server.)
//
//===----------------------------------------------------------------------===//
#include "CliHarness.h"
#include "Fixtures.h"

#include "gtest/gtest.h"

#include <algorithm>
#include <arpa/inet.h>
#include <chrono>
#include <csignal>
#include <netinet/in.h>
#include <regex>
#include <sys/socket.h>
#include <unistd.h>

using namespace lumen::test;

namespace {

void expectError(const std::vector<std::string> &Args, const std::string &Says) {
  Result R = lumenJit(Args);
  EXPECT_EQ(R.Exit, 1) << R.Err;
  EXPECT_NE(R.Err.find(Says), std::string::npos) << R.Err;
  EXPECT_EQ(R.Err.find("listening"), std::string::npos) << "it listened first: " << R.Err;
}

TEST(ServeCommandTest, BadFlagsAreErrorsBeforeListening) {
  expectError({"serve", "-m", kTiny, "--parallel", "0"}, "--parallel 0");
  expectError({"serve", "-m", kTiny, "--parallel", "257"}, "1 to 256");
  expectError({"serve", "-m", kTiny, "--queue", "1025"}, "0 to 1024");
  expectError({"serve", "-m", kTiny, "--port", "70000"}, "0..65535");
  expectError({"serve", "-m", kTiny, "--batch", "4"}, "--batch 4: 8 to 512");
  expectError({"serve", "-m", kTiny, "--batch", "1000"}, "--batch 1000: 8 to 512");
  expectError({"serve", "-m", kTiny, "-c", "-5"}, "-c -5");
  expectError({"serve", "-m", "/nonexistent.gguf"}, "no such file");
  expectError({"serve", "-m", kTmp}, "not a regular file");
  expectError({"serve", "-m", kTiny, "extra"}, "no positional arguments");
  expectError({"serve", "-m", kTiny, "--top-k", "3"}, "does not apply");
  Result Help = lumenJit({"serve", "--help"});
  EXPECT_EQ(Help.Exit, 0);
  for (const char *Flag : {"--parallel", "--api-key", "--queue", "--alias", "--host", "--port"})
    EXPECT_NE(Help.Out.find(Flag), std::string::npos) << Flag;
}

/// The port a server on the tiny fixture listens on once ready ("" if it
/// did not get ready).
std::string readyPort(Child &Server) {
  if (!Server.waitForError("lumen-jit: ready:", 120))
    return "";
  std::smatch Port;
  const std::string Err = Server.err();
  return std::regex_search(Err, Port, std::regex("127\\.0\\.0\\.1:([0-9]+)")) ? Port[1].str() : "";
}

std::vector<std::string> tinyServer() {
  return {"serve", "-m", kTiny, "--port", "0", "-c", "256", "-t", "1", "--kernel-cache", kKernelCache};
}

TEST(ServeCommandTest, APortInUseIsAnErrorAndSigintExitsZero) {
  LUMEN_REQUIRE_SHARED(kTiny);
  std::vector<std::string> Args = tinyServer();
  Args.insert(Args.end(), {"--isa", "avx2"});
  Child First(Args);
  const std::string Port = readyPort(First);
  ASSERT_FALSE(Port.empty()) << First.err();
  // The ready line names the kernels' target, as --version does.
  EXPECT_TRUE(std::regex_search(First.err(), std::regex("ready: .*, kernels for [a-z0-9-]+ \\(avx2\\)")))
      << First.err();
  Result Second = lumenJit({"serve", "-m", kTiny, "--port", Port, "-t", "1"});
  EXPECT_EQ(Second.Exit, 1);
  EXPECT_NE(Second.Err.find("cannot listen"), std::string::npos) << Second.Err;
  First.signal(SIGINT);
  EXPECT_EQ(First.wait(30), 0) << First.err();
  First.waitForError("served 0 request(s)", 2);
  EXPECT_NE(First.err().find("served 0 request(s)"), std::string::npos) << First.err();
}

TEST(ServeCommandTest, SigtermDoesNotWaitForAClientThatNeverFinishesItsRequest) {
  LUMEN_REQUIRE_SHARED(kTiny);
  Child Server(tinyServer());
  const std::string Port = readyPort(Server);
  ASSERT_FALSE(Port.empty()) << Server.err();
  // Half a request's headers, then nothing: the connection's thread waits in a read.
  const int Sock = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(Sock, 0);
  sockaddr_in Addr{};
  Addr.sin_family = AF_INET;
  Addr.sin_port = htons(static_cast<uint16_t>(std::stoi(Port)));
  Addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(connect(Sock, reinterpret_cast<sockaddr *>(&Addr), sizeof(Addr)), 0);
  const std::string Partial = "POST /v1/completions HTTP/1.1\r\nHost: x\r\n";
  ASSERT_EQ(write(Sock, Partial.data(), Partial.size()), ssize_t(Partial.size()));
  usleep(200 * 1000);
  const auto Start = std::chrono::steady_clock::now();
  Server.signal(SIGTERM);
  EXPECT_EQ(Server.wait(30), 0) << Server.err();
  const double Seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - Start).count();
  EXPECT_LT(Seconds, 3.0) << "it waited for the client: " << Server.err();
  close(Sock);
}

TEST(ServeCommandTest, AContextThatHoldsNoChatIsWarnedOf) {
  LUMEN_REQUIRE_SHARED(kTiny);
  std::vector<std::string> Args = tinyServer();
  *std::find(Args.begin(), Args.end(), "256") = "8"; // -c 8: less than the template around an empty message.
  Child Server(Args);
  ASSERT_FALSE(readyPort(Server).empty()) << Server.err();
  EXPECT_TRUE(std::regex_search(Server.err(), std::regex("warning: -c 8 holds no chat: the chat template around an "
                                                         "empty message is already [0-9]+ tokens")))
      << Server.err();
  Server.signal(SIGINT);
  EXPECT_EQ(Server.wait(30), 0) << Server.err();
  // A context that holds a chat: no warning.
  Child Roomy(tinyServer());
  ASSERT_FALSE(readyPort(Roomy).empty()) << Roomy.err();
  EXPECT_EQ(Roomy.err().find("holds no chat"), std::string::npos) << Roomy.err();
  Roomy.signal(SIGINT);
  EXPECT_EQ(Roomy.wait(30), 0) << Roomy.err();
}

} // namespace
