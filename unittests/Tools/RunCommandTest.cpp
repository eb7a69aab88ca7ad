//===- RunCommandTest.cpp - lumen-jit run as a user drives it --------------===//
//
// Conversations, interruption, the text that reaches the terminal, and the
// flags that make a run repeatable.
//
//===----------------------------------------------------------------------===//
#include "CliHarness.h"
#include "Fixtures.h"

#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "nlohmann/json.hpp"
#include "gtest/gtest.h"

#include <csignal>
#include <unistd.h>
#include <utf8proc.h>

namespace {

using namespace lumen::test;

std::vector<int32_t> tokenize(const std::string &Text) {
  Result R = lumenJit({"tokenize", "-m", kTiny, "-p", Text});
  EXPECT_EQ(R.Exit, 0) << R.Err;
  return parseIds(R.Out);
}

/// The greedy next token at every position of Ids, evaluated in one batch.
std::vector<int32_t> greedyAfterEach(const std::vector<int32_t> &Ids) {
  Result R = lumenJit({"eval", "-m", kTiny, "-t", "1", "--top", "1", "--from", "0", "--tokens", absl::StrJoin(Ids, ",")});
  EXPECT_EQ(R.Exit, 0) << R.Err;
  std::vector<int32_t> Next;
  const nlohmann::json J = nlohmann::json::parse(R.Out);
  for (const auto &P : J["positions"])
    Next.push_back(P["argmax"]);
  return Next;
}

TEST(RunCommandTest, ChatCacheHoldsExactlyThePrintedConversation) {
  LUMEN_REQUIRE_SHARED(kTiny);
  // -n cuts both replies; the cut token must still be in the history.
  Result R = lumenJit({"run", "-m", kTiny, "--chat", "-n", "3", "-t", "1", "--temp", "0", "--system", "S",
                    "--print-token-ids"},
                   "Hello\nAgain\n");
  ASSERT_EQ(R.Exit, 0) << R.Err;
  std::vector<std::string> Lines = absl::StrSplit(R.Out, '\n', absl::SkipEmpty());
  ASSERT_EQ(Lines.size(), 2u) << R.Out;
  std::vector<int32_t> Reply1 = parseIds(Lines[0]), Reply2 = parseIds(Lines[1]);
  ASSERT_EQ(Reply1.size(), 3u);
  ASSERT_EQ(Reply2.size(), 3u);
  // The conversation as printed, evaluated teacher-forced from scratch.
  std::vector<int32_t> History =
      tokenize("<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n");
  History.insert(History.end(), Reply1.begin(), Reply1.end());
  std::vector<int32_t> Turn2 = tokenize("<|im_end|>\n<|im_start|>user\nAgain<|im_end|>\n<|im_start|>assistant\n");
  History.insert(History.end(), Turn2.begin(), Turn2.end());
  const size_t Start = History.size();
  History.insert(History.end(), Reply2.begin(), Reply2.end() - 1);
  std::vector<int32_t> Next = greedyAfterEach(History);
  ASSERT_EQ(Next.size(), History.size());
  for (size_t I = 0; I < Reply2.size(); ++I)
    EXPECT_EQ(Reply2[I], Next[Start - 1 + I]) << "reply 2, token " << I;
  // The check has teeth: without reply 1's last token the model answers otherwise.
  std::vector<int32_t> Dropped(History.begin(), History.begin() + Start);
  Dropped.erase(Dropped.begin() + (Start - Turn2.size() - 1));
  std::vector<int32_t> NextDropped = greedyAfterEach(Dropped);
  ASSERT_EQ(NextDropped.size(), Dropped.size());
  EXPECT_NE(NextDropped.back(), Reply2[0]) << "this prompt cannot tell the two apart";
}

TEST(RunCommandTest, CtrlCStopsTheReplyAndPrintsTimings) {
  LUMEN_REQUIRE_SHARED(kTiny);
  Child C({"run", "-m", kTiny, "-p", "Hi", "-n", "-1", "--ignore-eos", "--temp", "0", "-t", "1", "-c", "32768",
           "--print-token-ids"});
  ASSERT_TRUE(C.waitForOutput(" ", 60)) << C.err();
  C.signal(SIGINT);
  EXPECT_EQ(C.wait(30), 130);
  EXPECT_NE(C.err().find("interrupted"), std::string::npos) << C.err();
  EXPECT_NE(C.err().find("generation "), std::string::npos) << "timings: " << C.err();
  ASSERT_FALSE(C.out().empty());
  EXPECT_EQ(C.out().back(), '\n');
}

TEST(RunCommandTest, CtrlCInChatReturnsToThePrompt) {
  LUMEN_REQUIRE_SHARED(kTiny);
  Child C({"run", "-m", kTiny, "--chat", "-n", "-1", "--ignore-eos", "--temp", "0", "-t", "1", "-c", "32768",
           "--print-token-ids"});
  C.write("Hello\n");
  ASSERT_TRUE(C.waitForOutput(" ", 60)) << C.err();
  C.signal(SIGINT);
  ASSERT_TRUE(C.waitForOutput("\n", 30)) << "the first reply ends: " << C.err();
  // Still alive and listening: a second message gets a second reply.
  const size_t FirstReply = C.out().size();
  C.write("Again\n");
  ASSERT_TRUE(C.waitForOutput("\n", 1)); // Already there; now wait for more.
  for (int I = 0; I < 600 && C.out().size() <= FirstReply + 2; ++I)
    C.waitForOutput("\x01", 0.05);
  ASSERT_GT(C.out().size(), FirstReply + 2) << "no second reply: " << C.err();
  C.signal(SIGINT);
  C.closeStdin();
  EXPECT_EQ(C.wait(30), 0) << C.err();
  EXPECT_EQ(std::count(C.out().begin(), C.out().end(), '\n'), 2) << C.out();
  EXPECT_NE(C.err().find("generation "), std::string::npos) << C.err();
}

TEST(RunCommandTest, SecondCtrlCExits) {
  LUMEN_REQUIRE_SHARED(kTiny);
  Child C({"run", "-m", kTiny, "--chat", "-n", "-1", "--ignore-eos", "-t", "1", "-c", "32768"});
  C.write("Hello\n");
  ASSERT_TRUE(C.waitForOutput("", 0));
  for (int I = 0; I < 600 && C.out().empty(); ++I)
    C.waitForOutput("\x01", 0.05);
  // Two Ctrl-C a moment apart (at once, the kernel would deliver one): the
  // second ends the process, whether the first has ended the reply yet or not.
  C.signal(SIGINT);
  usleep(20000);
  C.signal(SIGINT);
  EXPECT_EQ(C.wait(30), 130) << C.err();
}

bool isValidUtf8(const std::string &S) {
  utf8proc_int32_t Code;
  for (size_t I = 0; I < S.size();) {
    utf8proc_ssize_t N =
        utf8proc_iterate(reinterpret_cast<const utf8proc_uint8_t *>(S.data()) + I, S.size() - I, &Code);
    if (N <= 0)
      return false;
    I += N;
  }
  return true;
}

TEST(RunCommandTest, StreamedTextIsValidUtf8) {
  LUMEN_REQUIRE_SHARED(kTiny);
  // High temperature over the whole vocabulary samples byte tokens that form
  // no character (0xC1 among them with this seed).
  Result R = lumenJit({"run", "-m", kTiny, "-p", "Hi", "-n", "400", "-t", "1", "--seed", "7", "--ignore-eos", "--temp",
                    "1.5", "--top-k", "0", "--min-p", "0", "--top-p", "1"});
  ASSERT_EQ(R.Exit, 0) << R.Err;
  EXPECT_TRUE(isValidUtf8(R.Out));
  EXPECT_NE(R.Out.find("\xEF\xBF\xBD"), std::string::npos) << "no U+FFFD: the run no longer samples a bad byte";
}

TEST(RunCommandTest, SeedIsPrintedAndRepeats) {
  LUMEN_REQUIRE_SHARED(kTiny);
  const std::vector<std::string> Args = {"run", "-m", kTiny, "-p", "Tell me", "-n", "24", "-t", "1",
                                         "--temp", "1.0", "--print-token-ids", "--ignore-eos"};
  Result A = lumenJit(Args);
  ASSERT_EQ(A.Exit, 0) << A.Err;
  size_t At = A.Err.find("sampling with seed ");
  ASSERT_NE(At, std::string::npos) << A.Err;
  std::string Seed = A.Err.substr(At + 19, A.Err.find_first_of(" \n", At + 19) - At - 19);
  std::vector<std::string> Again = Args;
  Again.insert(Again.end(), {"--seed", Seed});
  Result B = lumenJit(Again);
  ASSERT_EQ(B.Exit, 0) << B.Err;
  EXPECT_EQ(A.Out, B.Out) << "the printed seed repeats the run";
  Result C = lumenJit(Again);
  EXPECT_EQ(B.Out, C.Out);
  Again.back() = std::to_string(std::stoull(Seed) + 1);
  EXPECT_NE(lumenJit(Again).Out, A.Out) << "another seed samples otherwise";
}

TEST(RunCommandTest, LlamaCppStyleLimits) {
  LUMEN_REQUIRE_SHARED(kTiny);
  // -n -1: until the context is full (with --ignore-eos), without a warning.
  Result N = lumenJit({"run", "-m", kTiny, "-p", "Hello", "--raw", "-c", "8", "-n", "-1", "--temp", "0",
                    "--print-token-ids", "--ignore-eos"});
  ASSERT_EQ(N.Exit, 0) << N.Err;
  EXPECT_EQ(parseIds(N.Out).size(), 8u) << N.Out;
  EXPECT_EQ(N.Err.find("warning"), std::string::npos) << N.Err;
  // -c 0: the model's trained context (32768 for the fixture).
  Result C = lumenJit({"run", "-m", kTiny, "-p", std::string(40, 'a'), "--raw", "-c", "0", "-n", "2", "--temp", "0"});
  EXPECT_EQ(C.Exit, 0) << C.Err;
  Result E = lumenJit({"eval", "-m", kTiny, "--tokens", "1,2,3", "-c", "0"});
  EXPECT_EQ(E.Exit, 0) << E.Err;
}

TEST(RunCommandTest, CtrlCDuringALongPromptStopsIt) {
  LUMEN_REQUIRE_SHARED(kTiny);
  // 30000 tokens of prompt: seconds of prefill; Ctrl-C must not wait for it.
  std::string Long;
  for (int I = 0; I < 6000; ++I)
    Long += "one two three four five ";
  writeFile(kTmp + "/long-prompt.txt", Long);
  Child C({"run", "-m", kTiny, "-f", kTmp + "/long-prompt.txt", "--raw", "-c", "0", "-n", "4", "-t", "1"});
  ASSERT_TRUE(C.waitForError("compiling kernels", 60)) << C.err();
  usleep(500000);
  C.signal(SIGINT);
  EXPECT_EQ(C.wait(60), 130);
  EXPECT_NE(C.err().find("interrupted"), std::string::npos) << C.err();
  EXPECT_NE(C.err().find("prompt 0 tokens"), std::string::npos) << "the prompt was not cut short: " << C.err();
}

TEST(RunCommandTest, SigtermEndsAChat) {
  LUMEN_REQUIRE_SHARED(kTiny);
  Child C({"run", "-m", kTiny, "--chat", "-n", "-1", "--ignore-eos", "-t", "1", "-c", "32768", "--print-token-ids"});
  C.write("Hello\n");
  ASSERT_TRUE(C.waitForOutput(" ", 60)) << C.err();
  C.signal(SIGTERM);
  EXPECT_EQ(C.wait(30), 128 + SIGTERM) << "SIGTERM is not Ctrl-C: it ends the process";
}

TEST(RunCommandTest, ChatTakesCrlfLines) {
  LUMEN_REQUIRE_SHARED(kTiny);
  Result Lf = lumenJit({"run", "-m", kTiny, "--chat", "-n", "3", "--temp", "0", "-t", "1", "--print-token-ids"},
                       "Hello\nAgain\n");
  Result Crlf = lumenJit({"run", "-m", kTiny, "--chat", "-n", "3", "--temp", "0", "-t", "1", "--print-token-ids"},
                         "Hello\r\nAgain\r\n\r\nnot sent\r\n");
  ASSERT_EQ(Crlf.Exit, 0) << Crlf.Err;
  EXPECT_EQ(Crlf.Out, Lf.Out) << "a CR is no part of the message, and a CRLF blank line ends the chat";
}

} // namespace

namespace {

/// The prompt's token count from run's timings line.
int promptTokens(const std::string &Err) {
  const size_t At = Err.find("| prompt ");
  return At == std::string::npos ? -1 : std::atoi(Err.c_str() + At + 9);
}

} // namespace

// A model whose template thinks (Qwen3): --no-think / --reasoning off open
// the reply with an empty think block (<think>, "\n\n", </think>, "\n\n": 6
// byte-level tokens), as Qwen3's template does for enable_thinking=false.
TEST(RunCommandTest, NoThinkOpensTheReplyWithAnEmptyThinkBlock) {
  const std::string Model = kTmp + "/qwen3-think.gguf";
  ASSERT_EQ(lumenJit({"synth", "--preset", "qwen3-0.6b", "--type", "Q4_0", "-o", Model, "--seed", "3"}).Exit, 0);
  auto Run = [&](std::vector<std::string> Extra) {
    std::vector<std::string> Args = {"run", "-m", Model, "-p", "Hi", "-n", "1", "--temp", "0", "-c", "64"};
    Args.insert(Args.end(), Extra.begin(), Extra.end());
    return lumenJit(Args);
  };
  Result On = Run({}), Off = Run({"--no-think"}), Off2 = Run({"--reasoning", "off"}), Bad = Run({"--reasoning", "x"});
  ASSERT_EQ(On.Exit, 0) << On.Err;
  ASSERT_EQ(Off.Exit, 0) << Off.Err;
  ASSERT_EQ(Off2.Exit, 0) << Off2.Err;
  EXPECT_GT(promptTokens(On.Err), 0) << On.Err;
  EXPECT_EQ(promptTokens(Off.Err), promptTokens(On.Err) + 6) << Off.Err;
  EXPECT_EQ(promptTokens(Off2.Err), promptTokens(On.Err) + 6) << Off2.Err;
  EXPECT_NE(Bad.Exit, 0);
  EXPECT_NE(Bad.Err.find("--reasoning x: expected on or off"), std::string::npos) << Bad.Err;
  Result Both = Run({"--reasoning", "on", "--no-think"}), Raw = Run({"--raw", "--no-think"});
  EXPECT_NE(Both.Err.find("--reasoning on and --no-think exclude each other"), std::string::npos) << Both.Err;
  EXPECT_NE(Raw.Err.find("have no effect with --raw"), std::string::npos) << Raw.Err;
  // A model that does not think is not changed by it.
  Result Plain = lumenJit({"run", "-m", kTiny, "-p", "Hi", "-n", "1", "--temp", "0", "-c", "64"});
  Result PlainOff = lumenJit({"run", "-m", kTiny, "-p", "Hi", "-n", "1", "--temp", "0", "-c", "64", "--no-think"});
  if (std::filesystem::exists(kTiny)) {
    EXPECT_EQ(promptTokens(PlainOff.Err), promptTokens(Plain.Err)) << PlainOff.Err;
    EXPECT_NE(PlainOff.Err.find("does not think; --no-think changes nothing"), std::string::npos) << PlainOff.Err;
  }
  std::filesystem::remove(Model);
}
