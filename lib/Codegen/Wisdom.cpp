//===- Wisdom.cpp - Measured kernel choices --------------------------------===//
#include "lumen/Codegen/Wisdom.h"
#include "lumen/Codegen/KernelABI.h"

#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

#include "llvm/Config/llvm-config.h"

#include <cpuid.h>
#include <cstring>

namespace lumen::codegen {

namespace {

/// The CPU's brand string from CPUID (leaves 0x80000002..4), trimmed.
std::string cpuBrand() {
  unsigned Max = 0, B, C, D;
  if (!__get_cpuid(0x80000000, &Max, &B, &C, &D) || Max < 0x80000004)
    return "unknown";
  char Brand[49] = {};
  for (unsigned Leaf = 0; Leaf < 3; ++Leaf) {
    unsigned Regs[4];
    __get_cpuid(0x80000002 + Leaf, &Regs[0], &Regs[1], &Regs[2], &Regs[3]);
    std::memcpy(Brand + 16 * Leaf, Regs, 16);
  }
  std::string S(absl::StripAsciiWhitespace(Brand));
  // Quotes delimit the value in the file; none appear in real brand strings.
  for (char &Ch : S)
    if (Ch == '"' || Ch < ' ')
      Ch = ' ';
  return S.empty() ? "unknown" : S;
}

const char *tokenClassName(TokenClass T) { return T == TokenClass::Decode ? "decode" : "prefill"; }

const char *patternName(PrefetchPattern P) {
  switch (P) {
  case PrefetchPattern::PageStart:
    return "pagestart";
  case PrefetchPattern::Spread:
    return "spread";
  case PrefetchPattern::LinesAndPage:
    return "linesandpage";
  case PrefetchPattern::Lines:
    break;
  }
  return "lines";
}

std::optional<WeightLayout> layoutFromName(std::string_view Name) {
  for (WeightLayout L : {WeightLayout::Rows, WeightLayout::Interleaved8, WeightLayout::Interleaved16})
    if (Name == weightLayoutName(L))
      return L;
  return std::nullopt;
}

/// Text from a file as an error message shows it: at most 40 characters,
/// control and non-ASCII bytes escaped.
std::string shown(std::string_view Text) {
  std::string Out;
  for (char C : Text.substr(0, 40))
    Out += C >= ' ' && C < 127 ? std::string(1, C) : absl::StrFormat("\\x%02x", static_cast<uint8_t>(C));
  return Text.size() > 40 ? Out + "..." : Out;
}

/// One line's key=value fields (a value may be "quoted", with no quote inside).
class Fields {
public:
  static absl::StatusOr<Fields> split(std::string_view Line) {
    Fields F;
    size_t I = 0;
    while (I < Line.size()) {
      if (Line[I] == ' ' || Line[I] == '\t') {
        ++I;
        continue;
      }
      size_t Eq = Line.find('=', I);
      size_t Space = Line.find_first_of(" \t", I);
      if (Eq == std::string_view::npos || Eq > Space)
        return absl::InvalidArgumentError(absl::StrFormat("'%s' is not key=value", shown(Line.substr(I, Space - I))));
      std::string Key(Line.substr(I, Eq - I));
      I = Eq + 1;
      std::string Value;
      if (I < Line.size() && Line[I] == '"') {
        size_t Close = Line.find('"', I + 1);
        if (Close == std::string_view::npos)
          return absl::InvalidArgumentError(absl::StrFormat("unterminated quote after %s=", shown(Key)));
        Value = std::string(Line.substr(I + 1, Close - I - 1));
        I = Close + 1;
      } else {
        size_t End = std::min(Line.find_first_of(" \t", I), Line.size());
        Value = std::string(Line.substr(I, End - I));
        I = End;
      }
      if (Key.empty() || !F.Map.emplace(Key, std::move(Value)).second)
        return absl::InvalidArgumentError(Key.empty() ? "empty key" : absl::StrFormat("%s given twice", shown(Key)));
    }
    return F;
  }

  absl::StatusOr<std::string> text(const char *Key) {
    auto It = Map.find(Key);
    if (It == Map.end())
      return absl::InvalidArgumentError(absl::StrFormat("no %s=", Key));
    std::string V = It->second;
    Map.erase(It);
    return V;
  }
  absl::StatusOr<int64_t> number(const char *Key, int64_t Min, int64_t Max) {
    absl::StatusOr<std::string> T = text(Key);
    if (!T.ok())
      return T.status();
    int64_t V;
    if (!absl::SimpleAtoi(*T, &V) || V < Min || V > Max)
      return absl::InvalidArgumentError(
          absl::StrFormat("%s=%s: expected an integer in [%d, %d]", Key, shown(*T), Min, Max));
    return V;
  }
  absl::StatusOr<double> gain() {
    absl::StatusOr<std::string> T = text("gain");
    if (!T.ok())
      return T.status();
    double V;
    // Gains are printed to 3 decimals: a smaller one would not read back.
    if (!absl::SimpleAtod(*T, &V) || !(V >= 0.001 && V < 1000))
      return absl::InvalidArgumentError(
          absl::StrFormat("gain=%s: expected a speed-up from 0.001 to 1000", shown(*T)));
    return V;
  }
  absl::StatusOr<WeightType> type() {
    absl::StatusOr<std::string> T = text("type");
    if (!T.ok())
      return T.status();
    std::optional<WeightType> W = weightTypeFromName(*T);
    if (!W)
      return absl::InvalidArgumentError(absl::StrFormat("type=%s: not a weight type", shown(*T)));
    return *W;
  }
  absl::StatusOr<WeightLayout> layout(const char *Key) {
    absl::StatusOr<std::string> T = text(Key);
    if (!T.ok())
      return T.status();
    std::optional<WeightLayout> L = layoutFromName(*T);
    if (!L)
      return absl::InvalidArgumentError(
          absl::StrFormat("%s=%s: expected rows, interleaved8 or interleaved16", Key, shown(*T)));
    return *L;
  }
  /// Every field was used: an unknown one is an error, not ignored.
  absl::Status done() const {
    if (!Map.empty())
      return absl::InvalidArgumentError(absl::StrFormat("unknown field %s=", shown(Map.begin()->first)));
    return absl::OkStatus();
  }

private:
  absl::flat_hash_map<std::string, std::string> Map;
};

// Ranges wide enough for any model and spec (validate() checks the rest).
constexpr int64_t kMaxDim = int64_t(1) << 31;

absl::StatusOr<WisdomHost> parseHost(std::string_view Rest) {
  absl::StatusOr<Fields> F = Fields::split(Rest);
  if (!F.ok())
    return F.status();
  WisdomHost H;
  for (auto [Key, Out] : {std::pair{"model", &H.Model}, {"cpu", &H.Cpu}, {"isa", &H.Isa}, {"llvm", &H.Llvm},
                          {"lumen", &H.Lumen}}) {
    absl::StatusOr<std::string> V = F->text(Key);
    if (!V.ok())
      return V.status();
    *Out = std::move(*V);
  }
  if (absl::Status S = F->done(); !S.ok())
    return S;
  return H;
}

#define LUMEN_TRY_ASSIGN(Var, Expr)                                                                                    \
  {                                                                                                                    \
    auto V_ = (Expr);                                                                                                  \
    if (!V_.ok())                                                                                                      \
      return V_.status();                                                                                              \
    Var = *V_;                                                                                                         \
  }

absl::StatusOr<WisdomKernel> parseKernel(std::string_view Rest) {
  absl::StatusOr<Fields> FS = Fields::split(Rest);
  if (!FS.ok())
    return FS.status();
  Fields &F = *FS;
  WisdomKernel E;
  LUMEN_TRY_ASSIGN(E.Type, F.type());
  LUMEN_TRY_ASSIGN(E.Layout, F.layout("layout"));
  LUMEN_TRY_ASSIGN(E.M, F.number("m", 1, kMaxDim));
  LUMEN_TRY_ASSIGN(E.K, F.number("k", 1, kMaxDim));
  std::string N;
  LUMEN_TRY_ASSIGN(N, F.text("n"));
  if (N != "decode" && N != "prefill")
    return absl::InvalidArgumentError(absl::StrFormat("n=%s: expected decode or prefill", shown(N)));
  E.Tokens = N == "decode" ? TokenClass::Decode : TokenClass::Prefill;
  LUMEN_TRY_ASSIGN(E.Threads, F.number("threads", 1, 4096));
  LUMEN_TRY_ASSIGN(E.VectorBits, F.number("bits", 256, 512));
  if (E.VectorBits != 256 && E.VectorBits != 512)
    return absl::InvalidArgumentError("bits= must be 256 or 512");
  LUMEN_TRY_ASSIGN(E.Accumulators, F.number("acc", 1, 16));
  LUMEN_TRY_ASSIGN(E.VNNI, F.number("vnni", 0, 1));
  std::string Tile;
  LUMEN_TRY_ASSIGN(Tile, F.text("tile"));
  std::vector<std::string> RT = absl::StrSplit(Tile, 'x');
  int64_t Rows, Tokens;
  if (RT.size() != 2 || !absl::SimpleAtoi(RT[0], &Rows) || !absl::SimpleAtoi(RT[1], &Tokens) || Rows < 1 ||
      Rows > 64 || Tokens < 1 || Tokens > 64)
    return absl::InvalidArgumentError(absl::StrFormat("tile=%s: expected ROWSxTOKENS", shown(Tile)));
  E.TileRows = Rows;
  E.TileTokens = Tokens;
  LUMEN_TRY_ASSIGN(E.PrefetchBytes, F.number("prefetch", 0, 1 << 20));
  std::string Pattern;
  LUMEN_TRY_ASSIGN(Pattern, F.text("pattern"));
  bool Known = false;
  for (PrefetchPattern P : {PrefetchPattern::Lines, PrefetchPattern::PageStart, PrefetchPattern::Spread,
                            PrefetchPattern::LinesAndPage})
    if (Pattern == patternName(P)) {
      E.Prefetch = P;
      Known = true;
    }
  if (!Known)
    return absl::InvalidArgumentError(
        absl::StrFormat("pattern=%s: expected lines, pagestart, spread or linesandpage", shown(Pattern)));
  LUMEN_TRY_ASSIGN(E.Paced, F.number("paced", 0, 1));
  LUMEN_TRY_ASSIGN(E.Gain, F.gain());
  if (absl::Status S = F.done(); !S.ok())
    return S;
  return E;
}

absl::StatusOr<WisdomLayout> parseLayout(std::string_view Rest) {
  absl::StatusOr<Fields> FS = Fields::split(Rest);
  if (!FS.ok())
    return FS.status();
  Fields &F = *FS;
  WisdomLayout E;
  LUMEN_TRY_ASSIGN(E.Type, F.type());
  LUMEN_TRY_ASSIGN(E.M, F.number("m", 1, kMaxDim));
  LUMEN_TRY_ASSIGN(E.K, F.number("k", 1, kMaxDim));
  LUMEN_TRY_ASSIGN(E.Choice, F.layout("choice"));
  LUMEN_TRY_ASSIGN(E.Gain, F.gain());
  if (absl::Status S = F.done(); !S.ok())
    return S;
  return E;
}

#undef LUMEN_TRY_ASSIGN

std::string kernelLine(const WisdomKernel &E) {
  return absl::StrFormat("kernel type=%s layout=%s m=%d k=%d n=%s threads=%d bits=%d acc=%d vnni=%d tile=%dx%d "
                         "prefetch=%d pattern=%s paced=%d gain=%.3f",
                         weightTypeName(E.Type), weightLayoutName(E.Layout), E.M, E.K, tokenClassName(E.Tokens),
                         E.Threads, E.VectorBits, E.Accumulators, E.VNNI, E.TileRows, E.TileTokens,
                         E.PrefetchBytes, patternName(E.Prefetch), E.Paced, E.Gain);
}

std::string layoutLine(const WisdomLayout &E) {
  return absl::StrFormat("layout type=%s m=%d k=%d choice=%s gain=%.3f", weightTypeName(E.Type), E.M, E.K,
                         weightLayoutName(E.Choice), E.Gain);
}

bool sameKey(const WisdomKernel &A, const WisdomKernel &B) {
  return A.Type == B.Type && A.Layout == B.Layout && A.M == B.M && A.K == B.K && A.Tokens == B.Tokens &&
         A.Threads == B.Threads;
}

} // namespace

WisdomHost WisdomHost::current(const CpuFeatures &Target) {
  return {cpuBrand(), Target.CpuName, Target.isaName(), LLVM_VERSION_STRING, LUMEN_VERSION_STRING};
}

std::string WisdomHost::line() const {
  return absl::StrFormat("host model=\"%s\" cpu=%s isa=%s llvm=%s lumen=%s", Model, Cpu, Isa, Llvm, Lumen);
}

std::optional<TokenClass> tokenClassOf(int64_t N) {
  if (N == 1)
    return TokenClass::Decode;
  if (N > kMaxSmallBatch)
    return TokenClass::Prefill;
  return std::nullopt;
}

KernelSpec WisdomKernel::spec(const MatmulShape &Shape) const {
  KernelSpec S;
  S.Shape = Shape;
  S.Activations = isFloatType(Shape.Weights) ? ActivationFormat::F32 : ActivationFormat::Q8;
  S.VectorBits = VectorBits;
  S.Accumulators = Accumulators;
  S.VNNI = VNNI;
  S.TileRows = TileRows;
  S.TileTokens = TileTokens;
  S.PrefetchBytes = PrefetchBytes;
  S.Prefetch = Prefetch;
  S.Paced = Paced;
  return S;
}

WisdomKernel WisdomKernel::of(const KernelSpec &S, unsigned Threads, double Gain) {
  WisdomKernel E;
  E.Type = S.Shape.Weights;
  E.Layout = S.Shape.Layout;
  E.M = S.Shape.M;
  E.K = S.Shape.K;
  E.Tokens = tokenClassOf(S.Shape.N).value_or(TokenClass::Prefill);
  E.Threads = Threads;
  E.VectorBits = S.VectorBits;
  E.Accumulators = S.Accumulators;
  E.TileRows = S.TileRows;
  E.TileTokens = S.TileTokens;
  E.PrefetchBytes = S.PrefetchBytes;
  E.VNNI = S.VNNI;
  E.Paced = S.Paced;
  E.Prefetch = S.Prefetch;
  E.Gain = Gain;
  return E;
}

absl::StatusOr<Wisdom> Wisdom::parse(std::string_view Text, WisdomHost Host) {
  Wisdom W(std::move(Host));
  bool Mine = false;      // In this host's section.
  std::string *Other = nullptr; // The other host's section being read.
  int LineNo = 0;
  bool SawHeader = false;
  for (absl::string_view Line : absl::StrSplit(absl::string_view(Text.data(), Text.size()), '\n')) {
    ++LineNo;
    auto Bad = [&](const absl::Status &S) {
      return absl::InvalidArgumentError(absl::StrFormat("line %d: %s", LineNo, S.message()));
    };
    const absl::string_view Stripped = absl::StripAsciiWhitespace(Line);
    const std::string_view Content(Stripped.data(), Stripped.size());
    if (Content.empty() || Content[0] == '#')
      continue;
    size_t Space = std::min(Content.find(' '), Content.size());
    std::string_view Word = Content.substr(0, Space), Rest = Content.substr(Space);
    if (Word == "lumen-wisdom") {
      if (SawHeader || W.Kernels.size() || W.Layouts.size() || Other || Mine)
        return Bad(absl::InvalidArgumentError("'lumen-wisdom' must come first, once"));
      const std::string Version(absl::StripAsciiWhitespace(absl::string_view(Rest.data(), Rest.size())));
      if (Version != "1")
        return Bad(absl::InvalidArgumentError(
            absl::StrFormat("format version '%s' (this Lumen reads version 1)", shown(Version))));
      SawHeader = true;
      continue;
    }
    if (!SawHeader)
      return Bad(absl::InvalidArgumentError("not a wisdom file: it must start with 'lumen-wisdom 1'"));
    if (Word == "host") {
      absl::StatusOr<WisdomHost> H = parseHost(Rest);
      if (!H.ok())
        return Bad(H.status());
      Mine = *H == W.Host;
      Other = nullptr;
      if (!Mine) {
        W.Others.push_back(std::string(Content) + "\n");
        Other = &W.Others.back();
      }
      continue;
    }
    absl::Status Parsed;
    if (Word == "kernel") {
      absl::StatusOr<WisdomKernel> E = parseKernel(Rest);
      Parsed = E.status();
      if (E.ok() && Mine)
        W.set(*E);
    } else if (Word == "layout") {
      absl::StatusOr<WisdomLayout> E = parseLayout(Rest);
      Parsed = E.status();
      if (E.ok() && Mine)
        W.set(*E);
    } else {
      Parsed = absl::InvalidArgumentError(absl::StrFormat("unknown entry '%s'", shown(Word)));
    }
    if (!Parsed.ok())
      return Bad(Parsed);
    if (!Mine && !Other)
      return Bad(absl::InvalidArgumentError("an entry before any host line"));
    if (Other)
      absl::StrAppend(Other, Stripped, "\n");
  }
  return W;
}

std::string Wisdom::print() const {
  std::string Out = "# Lumen kernel wisdom: kernel choices measured on a host by 'lumen-jit tune'.\n"
                    "# Each host line starts the entries measured there; runs use only the section\n"
                    "# of their own host (CPU, ISA, LLVM and Lumen version). gain: speed-up measured\n"
                    "# over the kernel table's choice.\n"
                    "lumen-wisdom 1\n";
  if (!Kernels.empty() || !Layouts.empty()) {
    absl::StrAppend(&Out, Host.line(), "\n");
    for (const WisdomLayout &E : Layouts)
      absl::StrAppend(&Out, layoutLine(E), "\n");
    for (const WisdomKernel &E : Kernels)
      absl::StrAppend(&Out, kernelLine(E), "\n");
  }
  for (const std::string &S : Others)
    Out += S;
  return Out;
}

const WisdomKernel *Wisdom::kernel(const MatmulShape &S, unsigned Threads) const {
  std::optional<TokenClass> Class = tokenClassOf(S.N);
  if (!Class)
    return nullptr;
  for (const WisdomKernel &E : Kernels)
    if (E.Type == S.Weights && E.Layout == S.Layout && E.M == S.M && E.K == S.K && E.Tokens == *Class &&
        E.Threads == Threads)
      return &E;
  return nullptr;
}

const WisdomLayout *Wisdom::layout(WeightType Type, int64_t M, int64_t K) const {
  for (const WisdomLayout &E : Layouts)
    if (E.Type == Type && E.M == M && E.K == K)
      return &E;
  return nullptr;
}

void Wisdom::set(const WisdomKernel &E) {
  for (WisdomKernel &Old : Kernels)
    if (sameKey(Old, E)) {
      Old = E;
      return;
    }
  Kernels.push_back(E);
}

void Wisdom::set(const WisdomLayout &E) {
  for (WisdomLayout &Old : Layouts)
    if (Old.Type == E.Type && Old.M == E.M && Old.K == E.K) {
      Old = E;
      return;
    }
  Layouts.push_back(E);
}

} // namespace lumen::codegen
