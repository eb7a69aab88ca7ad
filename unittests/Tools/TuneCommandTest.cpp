//===- TuneCommandTest.cpp - lumen-jit tune, --tune and wisdom --------------===//
#include "CliHarness.h"

#include "gtest/gtest.h"

#include <filesystem>
#include <regex>

namespace {

using namespace lumen::test;

bool contains(const std::string &S, const std::string &Part) { return S.find(Part) != std::string::npos; }

/// A kernel cache directory of the test's own (the wisdom lives in it).
std::string freshCache(const std::string &Name) {
  const std::string Dir = kTmp + "/tune-" + Name;
  std::filesystem::remove_all(Dir);
  return Dir;
}

TEST(TuneCommandTest, TunesWritesWisdomAndPrintLLVMUsesIt) {
  const std::string Cache = freshCache("basic");
  Result R = lumenJit({"tune", "-m", kTiny, "--budget", "4", "-t", "1", "--kernel-cache", Cache});
  ASSERT_EQ(R.Exit, 0) << R.Err;
  EXPECT_TRUE(contains(R.Out, "| matrix | type, KxM | what | threads | table's choice | tuned |")) << R.Out;
  EXPECT_TRUE(contains(R.Out, "| attn_q/attn_output | q8_0 192x192 | decode | 1 |")) << R.Out;
  EXPECT_TRUE(contains(R.Out, "| attn_k/attn_v | q8_0 192x64 | layout | 1 |")) << R.Out;
  EXPECT_TRUE(contains(R.Out, "| output | q8_0 192x151936 | decode | 1 |")) << R.Out;
  EXPECT_FALSE(contains(R.Out, "| output | q8_0 192x151936 | prefill")) << R.Out;
  EXPECT_TRUE(contains(R.Err, "tuning 5 matrix shapes")) << R.Err;
  // The progress bar's time left: none before any work is done, never past the budget's kernel share.
  const std::regex Left("([0-9]+)%  [0-9.]+ s(, ([0-9]+) s left)?");
  int Bars = 0;
  for (std::sregex_iterator I(R.Err.begin(), R.Err.end(), Left), End; I != End; ++I, ++Bars) {
    if (std::stoi((*I)[1]) == 0) {
      EXPECT_FALSE((*I)[2].matched) << I->str();
    } else {
      ASSERT_TRUE((*I)[2].matched) << I->str();
      EXPECT_LE(std::stoi((*I)[3]), 4) << I->str(); // --budget 4: 3.2 s for the kernels, rounded.
    }
  }
  EXPECT_GE(Bars, 2) << R.Err;
  // The check inside the model, a row per token class.
  EXPECT_TRUE(contains(R.Out, "Inside the model")) << R.Out;
  EXPECT_TRUE(contains(R.Out, "| 1 | decode | ")) << R.Out;
  EXPECT_TRUE(contains(R.Out, "| 1 | prefill | ")) << R.Out;
  const std::string Wisdom = readFile(Cache + "/wisdom.txt");
  EXPECT_TRUE(contains(Wisdom, "lumen-wisdom 1\nhost model=")) << Wisdom;
  EXPECT_TRUE(contains(Wisdom, "kernel type=q8_0")) << Wisdom;
  EXPECT_TRUE(contains(R.Out, "wisdom: " + Cache + "/wisdom.txt (for this host: ")) << R.Out;
  // How many entries differ from the table: the entries whose gain is not 1.
  std::smatch Counts;
  ASSERT_TRUE(std::regex_search(R.Out, Counts, std::regex("kernels ([0-9]+) measured, ([0-9]+) unlike the table; "
                                                          "layouts ([0-9]+) measured, ([0-9]+) unlike the table")))
      << R.Out;
  size_t Kernels = 0, Differ = 0;
  for (size_t At = Wisdom.find("\nkernel "); At != std::string::npos; At = Wisdom.find("\nkernel ", At + 1)) {
    ++Kernels;
    const std::string Line = Wisdom.substr(At + 1, Wisdom.find('\n', At + 1) - At - 1);
    Differ += std::stod(Line.substr(Line.rfind("gain=") + 5)) != 1.0;
  }
  EXPECT_EQ(std::stoul(Counts[1]), Kernels) << Wisdom;
  EXPECT_EQ(std::stoul(Counts[2]), Differ) << Wisdom;

  // The IR header says where the choice came from: wisdom at the thread
  // count it was measured at, the table otherwise or with --no-wisdom.
  Result P = lumenJit({"--print-llvm", "--shape", "192x192", "-t", "1", "--kernel-cache", Cache});
  ASSERT_EQ(P.Exit, 0) << P.Err;
  EXPECT_TRUE(contains(P.Out, "; why: wisdom: measured on this host for decode at 1 thread(s)")) << P.Out.substr(0, 600);
  P = lumenJit({"--print-llvm", "--shape", "192x192", "-t", "1", "--kernel-cache", Cache, "--no-wisdom"});
  ASSERT_EQ(P.Exit, 0) << P.Err;
  EXPECT_TRUE(contains(P.Out, "; why: table row")) << P.Out.substr(0, 600);
  P = lumenJit({"--print-llvm", "--shape", "192x192", "-t", "2", "--kernel-cache", Cache});
  EXPECT_TRUE(contains(P.Out, "no wisdom for this kernel at 2 thread(s)")) << P.Out.substr(0, 600);

  // The model commands run with it, and without it.
  for (const char *Flag : {"--tune=false", "--no-wisdom"}) {
    Result E = lumenJit({"eval", "-m", kTiny, "--tokens", "1,2,3", "-t", "1", "--kernel-cache", Cache, Flag});
    EXPECT_EQ(E.Exit, 0) << E.Err;
    EXPECT_TRUE(contains(E.Out, "\"argmax\"")) << E.Out;
  }
}

TEST(TuneCommandTest, TuneFlagTunesBeforeRunning) {
  const std::string Cache = freshCache("flag");
  Result R = lumenJit({"run", "-m", kTiny, "-p", "hi", "-n", "2", "--temp", "0", "-t", "1", "--tune", "--budget",
                       "3", "--kernel-cache", Cache});
  ASSERT_EQ(R.Exit, 0) << R.Err;
  // The summary goes to stderr: stdout is the generated text.
  EXPECT_TRUE(contains(R.Err, "| matrix | type, KxM | what |")) << R.Err;
  EXPECT_FALSE(contains(R.Out, "| matrix |")) << R.Out;
  EXPECT_TRUE(std::filesystem::exists(Cache + "/wisdom.txt"));
}

TEST(TuneCommandTest, CorruptWisdomIsReportedAndIgnored) {
  const std::string Cache = freshCache("corrupt");
  std::filesystem::create_directories(Cache);
  writeFile(Cache + "/wisdom.txt", "lumen-wisdom 1\nhost model=\"x\" cpu=y isa=z llvm=1 lumen=2\nkernel \x01\x02 bits\n");
  Result E = lumenJit({"eval", "-m", kTiny, "--tokens", "1,2", "-t", "1", "--kernel-cache", Cache});
  ASSERT_EQ(E.Exit, 0) << E.Err;
  EXPECT_TRUE(contains(E.Err, "warning: wisdom " + Cache + "/wisdom.txt: line 3")) << E.Err;
  EXPECT_TRUE(contains(E.Err, "ignored")) << E.Err;
  Result P = lumenJit({"--print-llvm", "--shape", "192x192", "--kernel-cache", Cache});
  ASSERT_EQ(P.Exit, 0) << P.Err;
  EXPECT_TRUE(contains(P.Out, "; why: table row")) << P.Out.substr(0, 600);
  // tune writes a new one, keeping the old text beside it (other hosts'
  // sections may be in it).
  const std::string Old = readFile(Cache + "/wisdom.txt");
  Result T = lumenJit({"tune", "-m", kTiny, "--budget", "1", "-t", "1", "--kernel-cache", Cache});
  ASSERT_EQ(T.Exit, 0) << T.Err;
  EXPECT_TRUE(contains(T.Err, "it is kept as " + Cache + "/wisdom.txt.unreadable")) << T.Err;
  EXPECT_EQ(readFile(Cache + "/wisdom.txt.unreadable"), Old);
  // The bad bytes are shown escaped, not sent to the terminal.
  EXPECT_TRUE(contains(T.Err, "\\x01")) << T.Err;
  EXPECT_FALSE(contains(T.Err, "\x01")) << T.Err;
  E = lumenJit({"eval", "-m", kTiny, "--tokens", "1,2", "-t", "1", "--kernel-cache", Cache});
  EXPECT_EQ(E.Exit, 0);
  EXPECT_FALSE(contains(E.Err, "warning")) << E.Err;
}

TEST(TuneCommandTest, NothingMeasuredIsNotSaved) {
  const std::string Cache = freshCache("nobudget");
  Result R = lumenJit({"tune", "-m", kTiny, "--budget", "0.001", "-t", "1", "--kernel-cache", Cache});
  ASSERT_EQ(R.Exit, 0) << R.Err;
  EXPECT_TRUE(contains(R.Out, "not measured: nothing saved")) << R.Out;
  const std::string Wisdom = readFile(Cache + "/wisdom.txt");
  EXPECT_FALSE(contains(Wisdom, "\nkernel ")) << Wisdom;
  EXPECT_TRUE(contains(R.Out, "(for this host: kernels 0 measured, ")) << R.Out;
}

TEST(TuneCommandTest, UnwritableWisdomFailsBeforeTuning) {
  const std::string Cache = freshCache("unwritable");
  std::filesystem::create_directories(Cache + "/wisdom.txt"); // A directory where the file goes.
  Result R = lumenJit({"tune", "-m", kTiny, "--budget", "30", "-t", "1", "--kernel-cache", Cache});
  EXPECT_NE(R.Exit, 0);
  EXPECT_TRUE(contains(R.Err, "cannot write wisdom " + Cache + "/wisdom.txt: it is a directory")) << R.Err;
  EXPECT_FALSE(contains(R.Err, "tuning ")) << "failed before tuning: " << R.Err;
}

TEST(TuneCommandTest, BadInvocations) {
  const std::string Cache = freshCache("bad");
  struct Case {
    std::vector<std::string> Args;
    std::string Says;
  } Cases[] = {
      {{"tune"}, "no model"},
      {{"tune", "-m", kTiny, "extra"}, "takes no arguments"},
      {{"tune", "-m", kTiny, "--budget", "0"}, "--budget 0"},
      {{"tune", "-m", kTiny, "--budget", "nan"}, "budget"},
      {{"tune", "-m", kTiny, "-t", "0"}, "not a thread count"},
      {{"tune", "-m", kTiny, "-t", "1,x"}, "not a thread count"},
      {{"tune", "-m", kTiny, "--batch", "4"}, "--batch 4"},
      {{"tune", "-m", kTiny, "--batch", "8"}, "--batch 8"},
      {{"tune", "-m", kTmp + "/no-such-model.gguf"}, "no-such-model.gguf"},
      {{"tune", "-m", kTiny, "-p", "hello"}, "does not apply to 'tune'"},
      {{"inspect", kTiny, "--tune"}, "does not apply to 'inspect'"},
  };
  for (const Case &C : Cases) {
    std::vector<std::string> Args = C.Args;
    Args.insert(Args.end(), {"--kernel-cache", Cache});
    Result R = lumenJit(Args);
    EXPECT_NE(R.Exit, 0) << C.Args.back();
    EXPECT_TRUE(contains(R.Err, C.Says)) << R.Err;
    EXPECT_FALSE(contains(R.Err, "Abort") || contains(R.Err, "terminate")) << R.Err;
  }
  EXPECT_FALSE(std::filesystem::exists(Cache + "/wisdom.txt"));
}

} // namespace
