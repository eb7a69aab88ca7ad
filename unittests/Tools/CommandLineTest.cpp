//===- CommandLineTest.cpp - Flags, help, inputs and outputs of lumen-jit --===//
//
// What a new user meets before any token is generated: help and version,
// flag spelling, where prompts come from and where files go, and errors
// that must stop a command rather than let it go on.
//
//===----------------------------------------------------------------------===//
#include "CliHarness.h"
#include "Fixtures.h"

#include "lumen/GGUF/GGUFFile.h"
#include "lumen/GGUF/GGUFWriter.h"

#include "absl/strings/str_split.h"
#include "nlohmann/json.hpp"
#include "gtest/gtest.h"

#include <algorithm>
#include <csignal>
#include <filesystem>
#include <regex>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

namespace {

using namespace lumen::test;
namespace fs = std::filesystem;

/// The files in Dir, in a stable order.
/// A short greedy run of the tiny fixture with its kernel cache in Dir,
/// which is emptied first.
std::vector<std::string> runWithEmptyCache(const std::string &Dir) {
  fs::remove_all(Dir);
  return {"run", "-m", kTiny, "-p", "Hi", "-n", "3", "--temp", "0", "-t", "1", "--print-token-ids",
          "--kernel-cache", Dir};
}

std::vector<fs::path> entriesOf(const std::string &Dir) {
  std::vector<fs::path> Entries;
  for (const auto &E : fs::directory_iterator(Dir))
    Entries.push_back(E.path());
  std::sort(Entries.begin(), Entries.end());
  return Entries;
}

TEST(CommandLineTest, HelpOnEveryCommand) {
  for (const char *H : {"-h", "--help", "--helpfull", "-help"}) {
    Result R = lumenJit({H});
    EXPECT_EQ(R.Exit, 0) << H << ": " << R.Err;
    EXPECT_NE(R.Out.find("usage:"), std::string::npos) << H;
    EXPECT_NE(R.Out.find("lumen-jit bench"), std::string::npos) << H;
    EXPECT_EQ(R.Err.find("No flags matched"), std::string::npos);
  }
  // Each command lists its own flags with their defaults, and no others.
  Result Run = lumenJit({"run", "--help"});
  ASSERT_EQ(Run.Exit, 0) << Run.Err;
  EXPECT_NE(Run.Out.find("usage: lumen-jit run -m FILE"), std::string::npos) << Run.Out;
  EXPECT_NE(Run.Out.find("--top-k"), std::string::npos);
  EXPECT_NE(Run.Out.find("(default: 40)"), std::string::npos) << "top-k's default";
  EXPECT_NE(Run.Out.find("-1 = until end of turn"), std::string::npos);
  EXPECT_EQ(Run.Out.find("--tensors"), std::string::npos) << "an inspect flag";
  for (const char *Command : {"tokenize", "eval", "bench", "inspect", "synth"}) {
    Result R = lumenJit({Command, "-h"});
    EXPECT_EQ(R.Exit, 0) << Command;
    EXPECT_NE(R.Out.find(std::string("usage: lumen-jit ") + Command), std::string::npos) << Command;
    EXPECT_NE(R.Out.find("flags:"), std::string::npos) << Command;
  }
  Result Llvm = lumenJit({"--print-llvm", "--help"});
  EXPECT_EQ(Llvm.Exit, 0);
  EXPECT_NE(Llvm.Out.find("--layout"), std::string::npos) << Llvm.Out;
  EXPECT_NE(Llvm.Out.find("interleaved16"), std::string::npos);
  // Help after other flags, even with a model that does not exist.
  EXPECT_EQ(lumenJit({"run", "-m", "/nonexistent.gguf", "-p", "x", "--help"}).Exit, 0);
}

TEST(CommandLineTest, VersionNamesLumenLlvmAndTheJitTarget) {
  Result R = lumenJit({"--version"});
  ASSERT_EQ(R.Exit, 0) << R.Err;
  EXPECT_NE(R.Out.find("lumen-jit 0."), std::string::npos) << R.Out;
  EXPECT_NE(R.Out.find("LLVM 19."), std::string::npos) << R.Out;
  EXPECT_NE(R.Out.find("JIT target: "), std::string::npos) << R.Out;
  EXPECT_EQ(R.Out.find("Debug build"), std::string::npos) << "Abseil's own --version";
#ifdef NDEBUG
  EXPECT_NE(R.Out.find("Release build"), std::string::npos) << R.Out;
#endif
  for (std::vector<std::string> Args : {std::vector<std::string>{"--version", "extra"}, {"run", "--version"}}) {
    Result Extra = lumenJit(Args);
    EXPECT_EQ(Extra.Exit, 1) << Extra.Out;
    EXPECT_NE(Extra.Err.find("--version takes no other arguments"), std::string::npos) << Extra.Err;
  }
}

TEST(CommandLineTest, FlagsThatDoNotApplyAreRefused) {
  Result R = lumenJit({"inspect", kTiny, "--top-k", "3"});
  EXPECT_EQ(R.Exit, 1);
  EXPECT_NE(R.Err.find("--top-k does not apply to 'inspect'"), std::string::npos) << R.Err;
  EXPECT_NE(lumenJit({"synth", "--preset", "tiny", "-o", kTmp + "/x.gguf", "--chat"}).Exit, 0);
  EXPECT_NE(lumenJit({"bench", "-m", kTiny, "-c", "64"}).Err.find("-c does not apply to 'bench'"),
            std::string::npos);
  EXPECT_NE(lumenJit({"tokenize", "-m", kTiny, "-p", "x", "--norepack"}).Err.find("--repack does not apply"),
            std::string::npos);
  EXPECT_NE(lumenJit({"--print-llvm", "--shape", "64x64", "-m", kTiny}).Exit, 0);
}

TEST(CommandLineTest, FlagValuesKeepTheirDashes) {
  LUMEN_REQUIRE_SHARED(kTiny);
  // Spelling normalisation changes flag names, never values.
  const std::string Text = "- buy milk - eggs --and-more";
  const std::string Dir = kTmp + "/dash-values";
  fs::create_directories(Dir);
  writeFile(Dir + "/-my-prompt.txt", Text);
  Result FromFile = shell("cd " + quote(Dir) + " && " + kBinary + " tokenize -m " + quote(kTiny) + " -f -my-prompt.txt");
  ASSERT_EQ(FromFile.Exit, 0) << FromFile.Err;
  Result FromFlag = lumenJit({"tokenize", "-m", kTiny, "-p", Text});
  ASSERT_EQ(FromFlag.Exit, 0) << FromFlag.Err;
  EXPECT_EQ(FromFlag.Out, FromFile.Out);
  EXPECT_NE(lumenJit({"tokenize", "--model", kTiny, "-p", "-_-"}).Out, lumenJit({"tokenize", "-m", kTiny, "-p", "-__"}).Out);
  // An output and a model named with leading dashes.
  Result Synth = shell("cd " + quote(Dir) + " && " + kBinary + " synth --preset tiny -o -out-file.gguf");
  ASSERT_EQ(Synth.Exit, 0) << Synth.Err;
  EXPECT_TRUE(fs::exists(Dir + "/-out-file.gguf"));
  EXPECT_FALSE(fs::exists(Dir + "/-out_file.gguf"));
  Result Model = shell("cd " + quote(Dir) + " && " + kBinary + " tokenize -m -out-file.gguf -p hi");
  EXPECT_EQ(Model.Exit, 0) << Model.Err;
  // Flag names still take either spelling, in both forms.
  EXPECT_EQ(lumenJit({"tokenize", "-m", kTiny, "-p", "<|im_end|>", "--no-special"}).Out,
            lumenJit({"tokenize", "-m", kTiny, "-p", "<|im_end|>", "--no_special"}).Out);
  EXPECT_EQ(lumenJit({"tokenize", "--model=" + kTiny, "-p=-x-"}).Out, lumenJit({"tokenize", "-m", kTiny, "-p", "-x-"}).Out);
}

TEST(CommandLineTest, PromptSourcesMustExist) {
  LUMEN_REQUIRE_SHARED(kTiny);
  Result None = lumenJit({"tokenize", "-m", kTiny});
  EXPECT_EQ(None.Exit, 1);
  EXPECT_NE(None.Err.find("tokenize needs the text: -p TEXT or -f FILE"), std::string::npos) << None.Err;
  for (const char *Command : {"tokenize", "run"}) {
    Result Dir = lumenJit({Command, "-m", kTiny, "-f", "."});
    EXPECT_EQ(Dir.Exit, 1) << Command;
    EXPECT_NE(Dir.Err.find("-f .: is a directory, not a regular file"), std::string::npos) << Dir.Err;
    Result Missing = lumenJit({Command, "-m", kTiny, "-f", kTmp + "/no-such-prompt.txt"});
    EXPECT_EQ(Missing.Exit, 1);
    EXPECT_NE(Missing.Err.find("No such file"), std::string::npos) << Missing.Err;
  }
  writeFile(kTmp + "/empty-prompt.txt", "");
  EXPECT_NE(lumenJit({"tokenize", "-m", kTiny, "-f", kTmp + "/empty-prompt.txt"}).Err.find("is empty"),
            std::string::npos);
  // A pipe is a fine prompt file.
  Result Pipe = lumenJit({"tokenize", "-m", kTiny, "-f", "/dev/stdin"}, "Hello world");
  EXPECT_EQ(Pipe.Exit, 0) << Pipe.Err;
  EXPECT_EQ(Pipe.Out, "9707 1879\n");
  EXPECT_NE(lumenJit({"tokenize", "-m", kTiny, "-p", "a", "-f", kTmp + "/empty-prompt.txt"}).Exit, 0);
}

TEST(CommandLineTest, OptionsThatWouldBeIgnoredAreRefused) {
  LUMEN_REQUIRE_SHARED(kTiny);
  auto Error = [](const std::vector<std::string> &Args) {
    Result R = lumenJit(Args);
    EXPECT_EQ(R.Exit, 1) << Args[0];
    return R.Err;
  };
  EXPECT_NE(Error({"run", "-m", kTiny, "-p", "x", "--raw", "--system", "S"}).find("--system has no effect with --raw"),
            std::string::npos);
  EXPECT_NE(Error({"run", "-m", kTiny, "--raw", "--chat"}).find("--raw and --chat"), std::string::npos);
  EXPECT_NE(Error({"eval", "-m", kTiny, "--tokens", "1,2", "--from", "-5"}).find("--from must be a non-negative"),
            std::string::npos);
  EXPECT_NE(Error({"synth", "--preset", "tiny", "-o", kTmp + "/s.gguf", "--seed", "-5"}).find("--seed must be"),
            std::string::npos);
  EXPECT_NE(Error({"run", "-m", kTiny, "-p", "x", "--seed", "-1"}).find("--seed must be"), std::string::npos);
  EXPECT_NE(Error({"run", "-m", kTiny, "-p", "x", "--temp", "inf"}).find("temperature inf must be a finite number"),
            std::string::npos);
  EXPECT_NE(Error({"run", "-m", kTiny, "-p", "x", "--temp", "-1"}).find("temperature -1 must be"), std::string::npos);
  EXPECT_NE(Error({"run", "-m", kTiny, "-p", "x", "-n", "-2"}).find("or -1 for no limit"), std::string::npos);
  EXPECT_NE(Error({"run", "-m", kTiny, "-p", "x", "-c", "-4"}).find("-c must be a token count"), std::string::npos);
}

TEST(CommandLineTest, OutputsAreRegularFilesOrNew) {
  const std::string Dir = kTmp + "/outputs";
  fs::remove_all(Dir);
  fs::create_directories(Dir);
  auto Synth = [](const std::string &Out) { return lumenJit({"synth", "--preset", "tiny", "-o", Out}); };
  // A FIFO: refused, and still a FIFO (nothing blocks on it either).
  const std::string Fifo = Dir + "/fifo";
  ASSERT_EQ(mkfifo(Fifo.c_str(), 0644), 0);
  Result F = Synth(Fifo);
  EXPECT_EQ(F.Exit, 1);
  EXPECT_NE(F.Err.find("is a FIFO; refusing to replace it"), std::string::npos) << F.Err;
  EXPECT_TRUE(fs::is_fifo(Fifo));
  // A symlink: refused; the link and its target are untouched.
  writeFile(Dir + "/target", "keep");
  fs::create_symlink(Dir + "/target", Dir + "/link");
  Result L = Synth(Dir + "/link");
  EXPECT_EQ(L.Exit, 1);
  EXPECT_NE(L.Err.find("is a symbolic link"), std::string::npos) << L.Err;
  EXPECT_TRUE(fs::is_symlink(Dir + "/link"));
  EXPECT_EQ(readFile(Dir + "/target"), "keep");
  // A directory, and a device node: a character device of our own (as
  // /dev/null's), never the system's, which a broken build would replace.
  EXPECT_NE(Synth(Dir).Err.find("is a directory"), std::string::npos);
  const std::string Device = Dir + "/null-device";
  if (mknod(Device.c_str(), S_IFCHR | 0666, makedev(1, 3)) == 0) {
    Result Dev = Synth(Device);
    EXPECT_EQ(Dev.Exit, 1);
    EXPECT_NE(Dev.Err.find("is a character device"), std::string::npos) << Dev.Err;
    struct stat St;
    ASSERT_EQ(stat(Device.c_str(), &St), 0);
    EXPECT_TRUE(S_ISCHR(St.st_mode));
  } else {
    EXPECT_NE(geteuid(), 0u) << "root can make a device node";
  }
  // A regular file is replaced whole; no temporary file is left beside it.
  writeFile(Dir + "/old.gguf", "old");
  ASSERT_EQ(Synth(Dir + "/old.gguf").Exit, 0);
  EXPECT_GT(fs::file_size(Dir + "/old.gguf"), 1000u);
  int Files = 0;
  for (const auto &E : fs::directory_iterator(Dir))
    Files += E.path().string().find(".tmp") != std::string::npos;
  EXPECT_EQ(Files, 0);
}

TEST(CommandLineTest, BenchStopsAtTheFirstError) {
  LUMEN_REQUIRE_SHARED(kTiny);
  Result R = lumenJit({"bench", "-m", kTiny, "-p", "40000", "-n", "0", "-t", "1", "-r", "1"});
  EXPECT_EQ(R.Exit, 1);
  EXPECT_NE(R.Err.find("does not fit the model's 32768-token context"), std::string::npos) << R.Err;
  EXPECT_EQ(R.Out.find("t/s"), std::string::npos) << "no table: " << R.Out;
  EXPECT_EQ(std::count(R.Err.begin(), R.Err.end(), '\n'), 1) << "one message: " << R.Err;
}

TEST(CommandLineTest, CorruptKernelCacheEntriesAreRebuilt) {
  LUMEN_REQUIRE_SHARED(kTiny);
  const std::string Dir = kTmp + "/corrupt-cache";
  const std::vector<std::string> Run = runWithEmptyCache(Dir);
  Result First = lumenJit(Run);
  ASSERT_EQ(First.Exit, 0) << First.Err;
  EXPECT_EQ(First.Err.find(" 0 kernels compiled"), std::string::npos) << "a cold cache compiles";
  const std::vector<fs::path> Entries = entriesOf(Dir);
  ASSERT_GE(Entries.size(), 3u);
  // A second start compiles nothing.
  Result Warm = lumenJit(Run);
  ASSERT_EQ(Warm.Exit, 0) << Warm.Err;
  EXPECT_NE(Warm.Err.find("JIT 0 kernels compiled"), std::string::npos) << Warm.Err;
  EXPECT_EQ(Warm.Out, First.Out);
  // Emptied, truncated and bit-flipped entries: each named, dropped, rebuilt.
  fs::resize_file(Entries[0], 0);
  fs::resize_file(Entries[1], fs::file_size(Entries[1]) / 2);
  std::string Flipped = readFile(Entries[2]);
  Flipped[Flipped.size() / 2] ^= 0x10;
  writeFile(Entries[2], Flipped);
  Result Fixed = lumenJit(Run);
  ASSERT_EQ(Fixed.Exit, 0) << Fixed.Err;
  EXPECT_EQ(Fixed.Out, First.Out);
  for (int I = 0; I < 3; ++I)
    EXPECT_NE(Fixed.Err.find("warning: kernel cache entry " + Entries[I].string() + " is corrupt"), std::string::npos)
        << Fixed.Err;
  EXPECT_NE(Fixed.Err.find("JIT 3 kernels compiled"), std::string::npos) << Fixed.Err;
  // Rewritten: the next start is warm and quiet again.
  Result Again = lumenJit(Run);
  EXPECT_EQ(Again.Err.find("warning"), std::string::npos) << Again.Err;
  EXPECT_NE(Again.Err.find("JIT 0 kernels compiled"), std::string::npos) << Again.Err;
  // LUMEN_CACHE_DIR names the directory when no flag does.
  const std::string EnvDir = kTmp + "/env-cache";
  fs::remove_all(EnvDir);
  Result Env = lumenJit({"run", "-m", kTiny, "-p", "Hi", "-n", "1", "-t", "1"}, "", "LUMEN_CACHE_DIR=" + quote(EnvDir));
  ASSERT_EQ(Env.Exit, 0) << Env.Err;
  EXPECT_FALSE(fs::is_empty(EnvDir));
  // --no-kernel-cache compiles everything and writes nothing.
  const std::string NoDir = kTmp + "/unused-cache";
  fs::remove_all(NoDir);
  Result No = lumenJit({"run", "-m", kTiny, "-p", "Hi", "-n", "1", "-t", "1", "--no-kernel-cache"}, "",
                    "LUMEN_CACHE_DIR=" + quote(NoDir));
  ASSERT_EQ(No.Exit, 0) << No.Err;
  EXPECT_NE(No.Err.find(", 0 from cache"), std::string::npos) << No.Err;
  EXPECT_FALSE(fs::exists(NoDir));
}

/// A copy of the model at From whose trained context is Ctx tokens.
void writeWithContext(const std::string &From, uint32_t Ctx, const std::string &To) {
  auto F = lumen::gguf::GGUFFile::open(From);
  ASSERT_TRUE(F.ok()) << F.status();
  lumen::gguf::GGUFWriter W;
  for (const lumen::gguf::KeyValue &KV : (*F)->metadata())
    W.setValue(KV.Key, KV.Val);
  W.setU32("qwen2.context_length", Ctx);
  for (const lumen::gguf::TensorInfo &T : (*F)->tensors())
    ASSERT_TRUE(W.addTensor(T.Name, T.Type, std::vector<int64_t>(T.Dims.begin(), T.Dims.begin() + T.NumDims),
                            std::span(T.Data, T.NumBytes))
                    .ok());
  ASSERT_TRUE(W.write(To).ok());
}

TEST(CommandLineTest, DefaultContextFitsAShortTrainedContext) {
  // -c's defaults (4096; perplexity's 512) shrink to a model trained for
  // fewer tokens, as llama.cpp's do; a -c given beyond it is an error.
  const std::string Synth = kTmp + "/ctx-src.gguf", Short = kTmp + "/ctx64.gguf";
  ASSERT_EQ(lumenJit({"synth", "--preset", "tiny", "-o", Synth, "--seed", "4"}).Exit, 0);
  writeWithContext(Synth, 64, Short);
  Result Run = lumenJit({"run", "-m", Short, "-p", "hi", "-n", "4", "--temp", "0"});
  EXPECT_EQ(Run.Exit, 0) << Run.Err;
  Result Eval = lumenJit({"eval", "-m", Short, "--tokens", "1,2,3"});
  EXPECT_EQ(Eval.Exit, 0) << Eval.Err;
  std::string Text;
  for (int I = 0; I < 60; ++I)
    Text += "the quick brown fox jumps over the lazy dog ";
  Result Ppl = lumenJit({"perplexity", "-m", Short, "-p", Text, "--chunks", "1"});
  EXPECT_EQ(Ppl.Exit, 0) << Ppl.Err;
  EXPECT_NE(Ppl.Err.find("chunks: 1 of 64 tokens"), std::string::npos) << Ppl.Err;
  EXPECT_NE(Ppl.Out.find("Final estimate: PPL = "), std::string::npos) << Ppl.Out;
  for (std::vector<std::string> Args : {std::vector<std::string>{"run", "-m", Short, "-p", "hi", "-c", "128"},
                                        {"perplexity", "-m", Short, "-p", Text, "-c", "128"}}) {
    Result R = lumenJit(Args);
    EXPECT_EQ(R.Exit, 1) << Args[0];
    EXPECT_NE(R.Err.find("-c 128 is more than the model's trained context of 64 tokens (-c 0 takes all of it)"),
              std::string::npos)
        << R.Err;
  }
  std::string Ids = "1";
  for (int I = 2; I <= 65; ++I)
    Ids += "," + std::to_string(I);
  EXPECT_NE(lumenJit({"eval", "-m", Short, "--tokens", Ids, "-c", "0"})
                .Err.find("65 tokens are more than the model's trained context of 64"),
            std::string::npos);
}

TEST(CommandLineTest, EveryGgmlTypeIsKnownByName) {
  // A file with tensors of types Lumen does not compute on is still described.
  lumen::gguf::GGUFWriter W;
  W.setString("general.architecture", "qwen2");
  std::vector<uint8_t> Bytes(4096, 0);
  ASSERT_TRUE(W.addTensor("a.iq4_nl", lumen::gguf::TensorType::IQ4_NL, {64, 2}, std::span(Bytes.data(), 72)).ok());
  ASSERT_TRUE(W.addTensor("b.iq2_xxs", lumen::gguf::TensorType::IQ2_XXS, {256, 1}, std::span(Bytes.data(), 66)).ok());
  ASSERT_TRUE(W.addTensor("c.tq2_0", lumen::gguf::TensorType::TQ2_0, {256, 1}, std::span(Bytes.data(), 66)).ok());
  ASSERT_TRUE(W.addTensor("d.mxfp4", lumen::gguf::TensorType::MXFP4, {32, 1}, std::span(Bytes.data(), 17)).ok());
  const std::string Path = kTmp + "/other-types.gguf";
  ASSERT_TRUE(W.write(Path).ok());
  Result R = lumenJit({"inspect", Path, "--tensors"});
  ASSERT_EQ(R.Exit, 0) << R.Err;
  for (const char *Type : {"IQ4_NL", "IQ2_XXS", "TQ2_0", "MXFP4"})
    EXPECT_NE(R.Out.find(Type), std::string::npos) << Type << "\n" << R.Out;
}

TEST(CommandLineTest, UnwritableOutputIsAnError) {
  // /dev/full takes no bytes: a script must not get an empty file and success.
  for (std::vector<std::string> Args : {std::vector<std::string>{"--help"}, {"--version"}, {"inspect", kTiny},
                                        {"--print-llvm", "--shape", "64x64"}, {"tokenize", "-m", kTiny, "-p", "hi"}}) {
    std::string Cmd = kBinary;
    for (const std::string &A : Args)
      Cmd += " " + quote(A);
    Result R = shell(Cmd + " > /dev/full");
    EXPECT_EQ(R.Exit, 1) << Args[0];
    EXPECT_NE(R.Err.find("lumen-jit: error: cannot write the output: No space left on device"), std::string::npos)
        << Args[0] << ": " << R.Err;
  }
}

TEST(CommandLineTest, FlagSpellingsAndMistakes) {
  LUMEN_REQUIRE_SHARED(kTiny);
  // Booleans negate as --noX, --no-X or --no_X.
  for (const char *Off : {"--norepack", "--no-repack", "--no_repack", "--no-huge-pages", "--nohuge_pages"})
    EXPECT_EQ(lumenJit({"eval", "-m", kTiny, "--tokens", "1", Off}).Exit, 0) << Off;
  Result Unknown = lumenJit({"inspect", "-x.gguf"});
  EXPECT_EQ(Unknown.Exit, 1);
  EXPECT_NE(Unknown.Err.find("unknown flag '-x.gguf'; a file name that starts with '-' goes after '--'"),
            std::string::npos)
      << Unknown.Err;
  EXPECT_NE(lumenJit({"run", "-m", kTiny, "-p", "x", "--seed="}).Err.find("--seed needs a value"), std::string::npos);
  EXPECT_NE(lumenJit({"run", "-m", kTiny, "-p", "x", "--system", ""}).Err.find("--system needs a value"),
            std::string::npos);
  // Mistakes Abseil would report in its own words, or take with a warning:
  // a boolean given a value, a flag where a value goes (the flag as typed).
  for (auto [Args, Want] : std::vector<std::pair<std::vector<std::string>, std::string>>{
           {{"--raw="}, "--raw takes no value, not ''"},
           {{"--ignore-eos=maybe"}, "--ignore-eos takes no value, not 'maybe'"},
           {{"--threads"}, "--threads needs a value"},
           {{"--ctx-size="}, "--ctx-size needs a value"},
           {{"--seed", "-n"}, "--seed needs a value"},
           {{"-n", "--"}, "-n needs a value"},
           {{"--bogus=3"}, "unknown flag '--bogus'"},
           // A number flag's value that is no number, or too large: ours, not Abseil's "Illegal value".
           {{"-c", "abc"}, "-c takes a whole number, not 'abc'"},
           {{"--ctx-size=99999999999999999999"}, "--ctx-size takes a whole number, not '99999999999999999999'"},
           {{"--temp", "warm"}, "--temp takes a number, not 'warm'"},
           {{"--top-k=1.5"}, "--top-k takes a whole number, not '1.5'"},
           {{"--batch", "0"}, "--batch must be a positive token count (got 0)"},
           {{"-t", "0"}, "-t must be a thread count from 1 to 1024 (got '0')"},
           {{"-t", "1025"}, "-t must be a thread count from 1 to 1024 (got '1025')"}}) {
    std::vector<std::string> Line = {"run", "-m", kTiny, "-p", "x"};
    Line.insert(Line.end(), Args.begin(), Args.end());
    Result R = lumenJit(Line);
    EXPECT_EQ(R.Exit, 1) << Args[0];
    EXPECT_NE(R.Err.find("lumen-jit: error: " + Want), std::string::npos) << R.Err;
    EXPECT_EQ(R.Err.find("RAW:"), std::string::npos) << R.Err;
  }
  EXPECT_EQ(lumenJit({"run", "-m", kTiny, "-p", "-x", "-n", "1", "--raw=true"}).Exit, 0); // "-x" is no flag: a prompt.
  // A value flag last on the line: our message, not Abseil's "Missing the value for the flag".
  for (const char *Last : {"-n", "--reasoning", "--temp"}) {
    Result Missing = lumenJit({"run", "-m", kTiny, "-p", "x", Last});
    EXPECT_EQ(Missing.Exit, 1) << Last;
    EXPECT_NE(Missing.Err.find(std::string(Last) + " needs a value"), std::string::npos) << Missing.Err;
    EXPECT_EQ(Missing.Err.find("ERROR:"), std::string::npos) << Missing.Err;
  }
  EXPECT_NE(lumenJit({"eval", "-m", kTiny, "--tokens", "1,,2"}).Err.find("'' is not a token id"), std::string::npos);
  EXPECT_NE(lumenJit({"eval", "-m", kTiny, "--tokens", "1", "--batch", "-1"})
                .Err.find("--batch must be a positive token count (got -1)"),
            std::string::npos);
  // Flags without a command: said, then the usage.
  Result NoCommand = lumenJit({"--shape", "896x4864"});
  EXPECT_EQ(NoCommand.Exit, 2);
  EXPECT_NE(NoCommand.Err.find("lumen-jit: error: no command"), std::string::npos) << NoCommand.Err;
  EXPECT_NE(lumenJit({"tokenize", "-m", kTiny, "--model", kTmp + "/other.gguf", "-p", "x"})
                .Err.find("-m and --model name different files"),
            std::string::npos);
  EXPECT_NE(lumenJit({"run", "-m", kTiny, "-p", "x", "-c", "40000"})
                .Err.find("-c 40000 is more than the model's trained context of 32768 tokens"),
            std::string::npos);
  EXPECT_NE(lumenJit({"run", "-m", kTiny, "-p", "x", "--kernel-cache", kTmp, "--no-kernel-cache"})
                .Err.find("exclude each other"),
            std::string::npos);
  EXPECT_NE(lumenJit({"eval", "-m", kTiny, "--tokens", "1", "--reference", "--no-kernel-cache"})
                .Err.find("--reference compiles no kernels"),
            std::string::npos);
  EXPECT_NE(lumenJit({"eval", "-m", kTiny, "--tokens", "1", "--reference", "--isa", "avx2"})
                .Err.find("--reference compiles no kernels: --isa does not apply"),
            std::string::npos);
  // Refused before anything runs: --tune would tune the model first.
  Result Tune = lumenJit({"eval", "-m", kTiny, "--tokens", "1", "--reference", "--tune", "--kernel-cache", kTmp + "/ref-tune"});
  EXPECT_NE(Tune.Err.find("--reference compiles no kernels"), std::string::npos) << Tune.Err;
  EXPECT_FALSE(std::filesystem::exists(kTmp + "/ref-tune/wisdom.txt"));
  EXPECT_NE(lumenJit({"run", "-m", kTiny, "-p", "x", "--temp", "1e40"}).Err.find("--temp 1e+40 is out of range"),
            std::string::npos);
  // The command word print-llvm is --print-llvm.
  Result Word = lumenJit({"print-llvm", "--shape", "64x64"});
  EXPECT_EQ(Word.Exit, 0) << Word.Err;
  EXPECT_NE(Word.Out.find("define void @lumen_mm"), std::string::npos);
}

TEST(CommandLineTest, PromptFilesAreBounded) {
  LUMEN_REQUIRE_SHARED(kTiny);
  writeFile(kTmp + "/empty-run-prompt.txt", "");
  EXPECT_NE(lumenJit({"run", "-m", kTiny, "-f", kTmp + "/empty-run-prompt.txt"}).Err.find("is empty"),
            std::string::npos);
  Result Zero = lumenJit({"tokenize", "-m", kTiny, "-f", "/dev/zero"}, "", "timeout 60");
  EXPECT_EQ(Zero.Exit, 1);
  EXPECT_NE(Zero.Err.find("more than 64 MiB of prompt"), std::string::npos) << Zero.Err;
}

TEST(CommandLineTest, FifosNeverBlock) {
  LUMEN_REQUIRE_SHARED(kTiny);
  const std::string Dir = kTmp + "/fifos";
  fs::remove_all(Dir);
  fs::create_directories(Dir);
  const std::string Fifo = Dir + "/model.gguf";
  ASSERT_EQ(mkfifo(Fifo.c_str(), 0644), 0);
  // A FIFO as the model: refused at once (timeout turns a hang into 124).
  for (std::vector<std::string> Args : {std::vector<std::string>{"inspect", Fifo}, {"tokenize", "-m", Fifo, "-p", "x"},
                                        {"run", "-m", Fifo, "-p", "x"}}) {
    Result R = lumenJit(Args, "", "timeout 20");
    EXPECT_EQ(R.Exit, 1) << Args[0];
    EXPECT_NE(R.Err.find("not a regular file"), std::string::npos) << Args[0] << ": " << R.Err;
  }
  // A FIFO where a kernel cache entry belongs: named, replaced, and the run goes on.
  const std::string Cache = Dir + "/cache";
  const std::vector<std::string> Run = {"run", "-m", kTiny, "-p", "Hi", "-n", "1", "-t", "1", "--kernel-cache", Cache};
  ASSERT_EQ(lumenJit(Run).Exit, 0);
  const fs::path Entry = fs::directory_iterator(Cache)->path();
  fs::remove(Entry);
  ASSERT_EQ(mkfifo(Entry.c_str(), 0644), 0);
  Result R = lumenJit(Run, "", "timeout 60");
  EXPECT_EQ(R.Exit, 0) << R.Err;
  EXPECT_NE(R.Err.find("kernel cache entry " + Entry.string() + " is not a regular file"), std::string::npos) << R.Err;
  EXPECT_TRUE(fs::is_regular_file(Entry));
}

TEST(CommandLineTest, KernelCacheEntriesAreTiedToTheirKeys) {
  LUMEN_REQUIRE_SHARED(kTiny);
  const std::string Cache = kTmp + "/swapped-cache";
  const std::vector<std::string> Run = runWithEmptyCache(Cache);
  Result First = lumenJit(Run);
  ASSERT_EQ(First.Exit, 0) << First.Err;
  const std::vector<fs::path> Entries = entriesOf(Cache);
  ASSERT_GE(Entries.size(), 2u);
  // A valid entry copied under another's name is someone else's object.
  fs::copy_file(Entries[0], Entries[1], fs::copy_options::overwrite_existing);
  Result R = lumenJit(Run);
  ASSERT_EQ(R.Exit, 0) << R.Err;
  EXPECT_EQ(R.Out, First.Out);
  EXPECT_NE(R.Err.find("kernel cache entry " + Entries[1].string() + " is corrupt (checksum mismatch)"),
            std::string::npos)
      << R.Err;
}

TEST(CommandLineTest, BenchOutputStaysParseable) {
  const std::string Dir = kTmp + "/bench-names";
  fs::create_directories(Dir);
  // A model path with bytes that are not UTF-8, a comma and a pipe.
  const std::string Model = Dir + "/bad\xff,name|x.gguf";
  ASSERT_EQ(lumenJit({"synth", "--preset", "tiny", "-o", Model, "--seed", "2"}).Exit, 0);
  Result J = lumenJit({"bench", "-m", Model, "-p", "4", "-n", "2", "-t", "1", "-r", "1", "-o", "json", "--profile"});
  ASSERT_EQ(J.Exit, 0) << J.Err;
  nlohmann::json Rows = nlohmann::json::parse(J.Out); // The profile went to stderr.
  ASSERT_EQ(Rows.size(), 2u);
  EXPECT_GT(Rows[0]["gops"].get<double>(), 0.0) << J.Out; // pp4
  EXPECT_TRUE(Rows[1]["gops"].is_null()) << J.Out;         // tg2: not counted
  EXPECT_NE(Rows[0]["model"].get<std::string>().find("\xEF\xBF\xBD,name|x.gguf"), std::string::npos);
  EXPECT_NE(J.Err.find("Profile, 1 thread(s)"), std::string::npos);
  Result C = lumenJit({"bench", "-m", Model, "-p", "4", "-n", "0", "-t", "1", "-r", "1", "-o", "csv"});
  ASSERT_EQ(C.Exit, 0) << C.Err;
  EXPECT_NE(C.Out.find("\"" + Model + "\",1,pp4,"), std::string::npos) << C.Out;
  Result M = lumenJit({"bench", "-m", Model, "-p", "4", "-n", "0", "-t", "1", "-r", "1"});
  EXPECT_NE(M.Out.find("bad\xff,name\\|x.gguf"), std::string::npos) << M.Out;
  // A tiny model's weights stay in the caches: past 100 % of the DRAM probe, which a note then hedges.
  Result T = lumenJit({"bench", "-m", Model, "-p", "0", "-n", "16", "-t", "1", "-r", "1"});
  ASSERT_EQ(T.Exit, 0) << T.Err;
  std::smatch Pct;
  ASSERT_TRUE(std::regex_search(T.Out, Pct, std::regex("\\| ([0-9]+)% \\("))) << T.Out;
  EXPECT_EQ(std::stoi(Pct[1]) > 100, T.Out.find("the probe (a stream from DRAM") != std::string::npos) << T.Out;
  Result None = lumenJit({"bench", "-m", Model, "-p", "0", "-n", "0"});
  EXPECT_EQ(None.Exit, 1);
  EXPECT_NE(None.Err.find("nothing to run"), std::string::npos);
}

TEST(CommandLineTest, InterruptedSynthLeavesNothingAndKeepsTheMode) {
  const std::string Dir = kTmp + "/synth-interrupted";
  fs::remove_all(Dir);
  fs::create_directories(Dir);
  const std::string Out = Dir + "/model.gguf";
  writeFile(Out, "old");
  fs::permissions(Out, fs::perms::owner_read | fs::perms::owner_write);
  {
    Child C({"synth", "--preset", "qwen2.5-0.5b", "-o", Out});
    usleep(1500000); // Well into writing 500 MB.
    C.signal(SIGINT);
    EXPECT_EQ(C.wait(30), 128 + SIGINT);
  }
  std::vector<std::string> Files;
  for (const auto &E : fs::directory_iterator(Dir))
    Files.push_back(E.path().filename().string());
  EXPECT_EQ(Files, std::vector<std::string>{"model.gguf"}) << "a temporary file was left";
  EXPECT_EQ(readFile(Out), "old");
  ASSERT_EQ(lumenJit({"synth", "--preset", "tiny", "-o", Out}).Exit, 0);
  EXPECT_EQ(fs::status(Out).permissions() & fs::perms::all, fs::perms::owner_read | fs::perms::owner_write);
}

} // namespace
