//===- lumen/Codegen/Wisdom.h - Measured kernel choices ----------*- C++ -*-===//
//
// Wisdom, as FFTW calls it: the kernel choices the tuner (runtime::Tuner)
// measured on one host, kept so later runs use them instead of the table.
// It is a readable text file of sections, one per host:
//
//   # Lumen kernel wisdom ...
//   host model="AMD EPYC 9R45" cpu=znver5 isa=avx512-vnni llvm=19.1.7 lumen=0.2.0
//   kernel type=q8_0 layout=interleaved16 m=4864 k=896 n=decode threads=2 bits=512 acc=1 vnni=1 tile=16x1 prefetch=8192 pattern=pagestart paced=0 gain=1.04
//   layout type=q8_0 m=4864 k=896 choice=interleaved16 gain=1.00
//
// Only the section whose host line matches this process exactly (CPU model,
// LLVM CPU name, ISA level, LLVM and Lumen versions) is used; the others are
// kept verbatim when the file is rewritten, so hosts sharing a home
// directory do not erase each other's measurements. Entries are choices,
// not code: chooseSpec() validates each before using it and falls back to
// the table if the spec is not valid for this CPU.
//
//===----------------------------------------------------------------------===//
#ifndef LUMEN_CODEGEN_WISDOM_H
#define LUMEN_CODEGEN_WISDOM_H

#include "lumen/Export.h"

#include "lumen/Codegen/CpuFeatures.h"
#include "lumen/Codegen/KernelSpec.h"

#include "absl/status/statusor.h"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace lumen::codegen {

/// What wisdom is valid for: measurements from any other host are ignored.
struct LUMEN_API WisdomHost {
  std::string Model; // The CPU's brand string ("AMD EPYC 9R45").
  std::string Cpu;   // LLVM's CPU name the kernels are compiled for ("znver5").
  std::string Isa;   // CpuFeatures::isaName().
  std::string Llvm;  // LLVM version the kernels are compiled with.
  std::string Lumen; // Lumen version (the generator that built them).

  /// This process's key when compiling for Target.
  static WisdomHost current(const CpuFeatures &Target);
  /// The "host ..." line.
  std::string line() const;
  bool operator==(const WisdomHost &O) const = default;
};

/// Which calls of a kernel an entry is for: one token (decode), or a batch
/// of more than kMaxSmallBatch (prefill; the runtime's prompt batches).
/// Small batches (a server's decode steps, 2..kMaxSmallBatch tokens) keep
/// the table's rows: their best kernels are not those of long prompts.
enum class TokenClass { Decode, Prefill };
inline constexpr int64_t kMaxSmallBatch = 8;
LUMEN_API std::optional<TokenClass> tokenClassOf(int64_t N);

/// A tuned kernel: the code-shape choices of a KernelSpec for one matrix
/// shape, token class and thread count.
struct LUMEN_API WisdomKernel {
  WeightType Type = WeightType::Q8_0;
  WeightLayout Layout = WeightLayout::Rows;
  int64_t M = 0, K = 0;
  TokenClass Tokens = TokenClass::Decode;
  unsigned Threads = 1;
  unsigned VectorBits = 512, Accumulators = 1, TileRows = 1, TileTokens = 1, PrefetchBytes = 0;
  bool VNNI = false, Paced = false;
  PrefetchPattern Prefetch = PrefetchPattern::Lines;
  double Gain = 1; // Measured speed-up over the table's choice.

  /// The entry's choices applied to Shape (its type, layout, M, K; any N).
  KernelSpec spec(const MatmulShape &Shape) const;
  /// The entry for Spec's choices, tuned for Threads.
  static WisdomKernel of(const KernelSpec &Spec, unsigned Threads, double Gain);
};

/// A tuned weight layout for the matrices of one type and shape.
struct LUMEN_API WisdomLayout {
  WeightType Type = WeightType::Q8_0;
  int64_t M = 0, K = 0;
  WeightLayout Choice = WeightLayout::Rows;
  double Gain = 1;
};

class LUMEN_API Wisdom {
public:
  explicit Wisdom(WisdomHost Host) : Host(std::move(Host)) {}

  /// Reads a wisdom file's text, keeping Host's section (an absent one is
  /// empty wisdom). Any malformed line, in any section, is an error naming
  /// it: a file that is not what the tuner wrote is not trusted at all.
  static absl::StatusOr<Wisdom> parse(std::string_view Text, WisdomHost Host);
  /// The whole file: this host's section, then the other hosts' as read.
  std::string print() const;

  /// The kernel entry for Shape's type, layout, M, K and token class,
  /// tuned at Threads, if any.
  const WisdomKernel *kernel(const MatmulShape &Shape, unsigned Threads) const;
  const WisdomLayout *layout(WeightType Type, int64_t M, int64_t K) const;
  /// Adds an entry, replacing the one with the same key.
  void set(const WisdomKernel &E);
  void set(const WisdomLayout &E);

  const WisdomHost &host() const { return Host; }
  const std::vector<WisdomKernel> &kernels() const { return Kernels; }
  const std::vector<WisdomLayout> &layouts() const { return Layouts; }
  /// Sections of other hosts (kept for print()).
  size_t otherHosts() const { return Others.size(); }

private:
  WisdomHost Host;
  std::vector<WisdomKernel> Kernels;
  std::vector<WisdomLayout> Layouts;
  std::vector<std::string> Others; // Other hosts' sections, verbatim.
};

} // namespace lumen::codegen

#endif
