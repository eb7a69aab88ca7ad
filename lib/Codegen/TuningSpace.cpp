//===- TuningSpace.cpp - Candidate kernels to measure ----------------------===//
#include "lumen/Codegen/TuningSpace.h"
#include "lumen/Codegen/KernelABI.h"

#include <algorithm>

namespace lumen::codegen {

const std::vector<TuningAxis> &tuningAxes(int64_t N) {
  static const std::vector<TuningAxis> Decode = {TuningAxis::Prefetch, TuningAxis::Tile, TuningAxis::Accumulators,
                                                 TuningAxis::Pacing, TuningAxis::Isa};
  // A batch kernel's accumulators and instructions are the one-token
  // kernel's (chooseSpec's batch invariance): prefill tunes what it owns.
  static const std::vector<TuningAxis> Prefill = {TuningAxis::Tile, TuningAxis::Prefetch};
  return N == 1 ? Decode : Prefill;
}

const char *tuningAxisName(TuningAxis A) {
  switch (A) {
  case TuningAxis::Prefetch:
    return "prefetch";
  case TuningAxis::Tile:
    return "tile";
  case TuningAxis::Accumulators:
    return "accumulators";
  case TuningAxis::Pacing:
    return "pacing";
  case TuningAxis::Isa:
    break;
  }
  return "isa";
}

namespace {

/// Every variant of From along A, valid or not.
std::vector<KernelSpec> variants(const KernelSpec &From, TuningAxis A) {
  const MatmulShape &Sh = From.Shape;
  const bool Decode = Sh.N == 1, Interleaved = Sh.Layout != WeightLayout::Rows;
  std::vector<KernelSpec> Out;
  auto Add = [&](auto &&Change) {
    KernelSpec S = From;
    Change(S);
    Out.push_back(S);
  };
  switch (A) {
  case TuningAxis::Prefetch:
    if (Decode) {
      // Decode streams: how far ahead, and every line or the page start.
      for (unsigned Bytes : {0u, 1024u, 2048u, 4096u, 8192u, 16384u})
        for (PrefetchPattern P : {PrefetchPattern::Lines, PrefetchPattern::PageStart, PrefetchPattern::LinesAndPage})
          if (Bytes || P == PrefetchPattern::Lines)
            Add([&](KernelSpec &S) {
              S.PrefetchBytes = Bytes;
              S.Prefetch = P;
            });
    } else {
      // Prefill: none, or the next row tile (or two) ahead, in one burst or
      // spread over the tile's token steps.
      const unsigned Tile = nextTilePrefetchBytes(Sh, From.TileRows);
      Add([](KernelSpec &S) {
        S.PrefetchBytes = 0;
        S.Prefetch = PrefetchPattern::Lines;
      });
      for (unsigned Bytes : {Tile, 2 * Tile})
        for (PrefetchPattern P : {PrefetchPattern::Lines, PrefetchPattern::Spread})
          Add([&](KernelSpec &S) {
            S.PrefetchBytes = std::min(Bytes, 1u << 20) / 64 * 64;
            S.Prefetch = P;
          });
    }
    break;
  case TuningAxis::Tile: {
    // The prefetch distance of a next-tile prefetch follows the tile.
    const bool NextTile = !Decode && From.PrefetchBytes && From.PrefetchBytes == nextTilePrefetchBytes(Sh, From.TileRows);
    auto Tile = [&](unsigned Rows, unsigned Tokens) {
      Add([&](KernelSpec &S) {
        S.TileRows = Rows;
        S.TileTokens = Tokens;
        if (NextTile)
          S.PrefetchBytes = std::min(1u << 20, nextTilePrefetchBytes(Sh, Rows));
      });
    };
    const unsigned G = Interleaved ? layoutRowGroup(Sh.Layout) : 1;
    const std::vector<unsigned> Rows = Interleaved ? std::vector<unsigned>{G, 2 * G} : std::vector<unsigned>{1, 2, 4};
    const std::vector<unsigned> Tokens =
        Decode ? std::vector<unsigned>{1} : std::vector<unsigned>{2, 3, 4, 5, 6, 8};
    for (unsigned R : Rows)
      for (unsigned T : Tokens)
        Tile(R, T);
    break;
  }
  case TuningAxis::Accumulators:
    for (unsigned Acc : {1u, 2u, 4u})
      Add([&](KernelSpec &S) { S.Accumulators = Acc; });
    break;
  case TuningAxis::Pacing:
    Add([](KernelSpec &S) { S.Paced = !S.Paced; });
    break;
  case TuningAxis::Isa:
    for (unsigned Bits : {256u, 512u})
      for (bool Vnni : {false, true})
        Add([&](KernelSpec &S) {
          S.VectorBits = Bits;
          S.VNNI = Vnni && S.Activations == ActivationFormat::Q8;
        });
    break;
  }
  return Out;
}

} // namespace

std::vector<KernelSpec> candidatesAlong(const KernelSpec &From, TuningAxis A, const CpuFeatures &Cpu) {
  std::vector<KernelSpec> Out;
  for (const KernelSpec &S : variants(From, A))
    if (!(S == From) && S.validate(Cpu).ok() &&
        std::find(Out.begin(), Out.end(), S) == Out.end())
      Out.push_back(S);
  return Out;
}

} // namespace lumen::codegen
