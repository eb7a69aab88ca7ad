//===- JitSession.cpp - The JIT forward pass -------------------------------===//
//
// The same computation as ReferenceSession, with every matmul through a
// generated kernel on the thread pool. Activations are quantized to Q8 once
// per matmul input and shared (q/k/v read one buffer, gate/up another);
// the kernels of F16, BF16 and F32 matrices read the f32 rows instead.
// q/k/v run in one dispatch with their bias, RoPE and cache store after
// them, gate and up in one with SiLU(gate) * up and its quantization.
// The KV cache is fp16, as llama.cpp's default. Prompts run as batches of
// up to PrefillBatch tokens through GEMM kernels specialised for the batch
// size rounded up to 8 (padding rows are zeros and are never read).
// One forward pass (JitForward) runs tokens of several sequences, each row
// with its own KV cache and position: a Session is one sequence, a
// BatchedSession several.
//
//===----------------------------------------------------------------------===//
#include "lumen/Model/BatchedSession.h"
#include "lumen/Model/Session.h"

#include "KVCache.h"
#include "LogitsCheck.h"
#include "VectorOps.h"

#include "lumen/Codegen/KernelABI.h"
#include "lumen/GGUF/GGUFTypes.h"
#include "lumen/Runtime/KernelCache.h"
#include "lumen/Runtime/ThreadPool.h"

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_format.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>

namespace lumen::model {

namespace {

using codegen::MatmulFn;
using codegen::QuantizeBlocksFn;
using codegen::QuantizeFn;

int64_t roundUp(int64_t X, int64_t M) { return (X + M - 1) / M * M; }
constexpr int64_t kQ8Block = gguf::kQ8BlockSize; // Values per Q8 activation block.

/// A matmul kernel and the activation format its spec takes: Q8 for Q8_0
/// matrices, f32 for F16, BF16 and F32 ones (chooseSpec). Every matmul
/// input is passed both ways, quantized and as floats, and each kernel gets
/// the one it reads.
struct Matmul {
  MatmulFn Fn = nullptr;
  codegen::ActivationFormat In = codegen::ActivationFormat::Q8;

  void operator()(const uint8_t *W, const uint8_t *Xq, const float *X, float *Y, int64_t RowBegin,
                  int64_t RowEnd) const {
    Fn(W, In == codegen::ActivationFormat::Q8 ? static_cast<const void *>(Xq) : X, Y, RowBegin, RowEnd);
  }
};

/// The matmul kernels of one layer: layers differ where a quantization
/// preset gives some of them more bits (Q4_K_M's attn_v and ffn_down).
struct LayerKernels {
  Matmul Q, K, V, O, Gate, Up, Down;
};

/// The kernels of one batch size.
struct Kernels {
  std::vector<LayerKernels> Layers;
  QuantizeFn QuantizeDim;
  QuantizeFn QuantizeAtt; // attn_output's input: heads x head dim (the embedding width for Qwen2).
  QuantizeBlocksFn QuantizeFFNBlocks; // SiLU(gate) * up, by the thread that made each block.
};

/// Op classes the profile reports.
enum class Phase { Embed, Norms, QKV, Attention, O, GateUp, Down, LmHead, Sync, Count };
constexpr const char *kPhaseNames[] = {"embedding, RoPE angles, KV cache pages",
                                       "residual add, RMS norm, activation quantization",
                                       "matmul q/k/v + bias, RoPE, KV store",
                                       "attention",
                                       "matmul attn_output",
                                       "matmul gate/up + SiLU + quantization",
                                       "matmul ffn_down",
                                       "lm_head (final norm + matmul)",
                                       "thread sync (waiting for the slowest thread)"};
static_assert(sizeof(kPhaseNames) / sizeof(kPhaseNames[0]) == size_t(Phase::Count));

/// Wall time per phase, measured in the calling thread; the time it spent
/// waiting for the pool's workers is taken out of each phase and reported
/// as thread sync.
class Profiler {
public:
  Profiler(bool On, runtime::ThreadPool &Pool) : On(On), Pool(Pool) { Pool.measureWaits(On); }
  void start() {
    if (!On) return;
    Last = std::chrono::steady_clock::now();
    LastWait = Pool.waitSeconds();
  }
  /// Charges the time since the last mark to P, less the waits in it.
  void mark(Phase P) {
    if (!On) return;
    auto Now = std::chrono::steady_clock::now();
    const double Wait = Pool.waitSeconds() - LastWait;
    Seconds[size_t(P)] += std::chrono::duration<double>(Now - Last).count() - Wait;
    Seconds[size_t(Phase::Sync)] += Wait;
    Last = Now;
    LastWait += Wait;
  }
  std::vector<std::pair<std::string, double>> report() const {
    std::vector<std::pair<std::string, double>> Out;
    if (On)
      for (size_t I = 0; I < size_t(Phase::Count); ++I)
        Out.emplace_back(kPhaseNames[I], Seconds[I]);
    return Out;
  }

private:
  bool On;
  runtime::ThreadPool &Pool;
  std::chrono::steady_clock::time_point Last;
  double LastWait = 0;
  double Seconds[size_t(Phase::Count)] = {};
};

/// One matrix's share of a fused dispatch.
struct MatmulPart {
  Matmul Kernel;
  const Matrix *W;
  float *Y;
};

/// Which of a piece's tokens' logits a forward pass computes.
enum class Want { None, Last, All };

/// One sequence's tokens in a forward pass.
struct Piece {
  int32_t Sequence;
  std::span<const int32_t> Tokens;
  Want Rows;
};

/// The forward pass over several sequences' tokens, each sequence with its
/// own KV cache and position; the model, kernels, pool and activation
/// buffers are shared.
class JitForward {
public:
  JitForward(const TransformerModel &M, runtime::KernelCache &Cache, int64_t Ctx, int32_t Sequences, unsigned Threads,
             int64_t Batch, bool Profile, bool HugePages, std::shared_ptr<const codegen::Wisdom> Wis);
  std::vector<std::pair<std::string, double>> profile() const { return Prof.report(); }
  int64_t batchSize() const { return Batch; }
  bool allocated() const {
    return std::all_of(Caches.begin(), Caches.end(), [](const std::unique_ptr<KVCache> &C) { return C->valid(); });
  }
  int64_t &position(int32_t Sequence) { return Positions[Sequence]; }
  int64_t position(int32_t Sequence) const { return Positions[Sequence]; }
  int32_t sequences() const { return int32_t(Positions.size()); }
  /// The batch size of the kernels that run N tokens: N itself below 8
  /// (a server's decode steps of a few streams: padded to 8 they cost a
  /// whole 8-token GEMM), else N rounded up to 8 (fewer kernels to compile).
  int64_t kernelTokens(int64_t N) const { return N < 8 ? N : std::min(Batch, roundUp(N, 8)); }
  absl::StatusOr<const Kernels *> kernels(int64_t N);
  absl::StatusOr<Matmul> outputKernel(int64_t N);
  /// One pass over Pieces (at most Batch tokens in all, each sequence once)
  /// at their sequences' positions, which it advances; writes the logits
  /// wanted, piece after piece, to Logits (Vocab floats a row). Rows not
  /// finite go to Failed (row, error) if given, else are the error.
  absl::Status forward(std::span<const Piece> Pieces, float *Logits,
                       std::vector<BatchedSession::NonFinite> *Failed = nullptr);

private:
  absl::StatusOr<Matmul> matmul(const Matrix &W, int64_t N);
  /// q, k and v of the N tokens in one dispatch of whole heads; the thread
  /// that computed a head adds its bias, rotates it (q, k) and stores it in
  /// the cache (k, v) while its rows are in that core's cache.
  void qkv(uint32_t Layer, const Kernels &Ks, int64_t N);
  /// Every token's attention over the cache, which holds them all.
  void attention(uint32_t Layer, int64_t N);
  /// Rows [Begin, End) of all Parts as one index space, on the activations
  /// X and their quantization Xq.
  static void matmulRows(std::initializer_list<MatmulPart> Parts, const uint8_t *Xq, const float *X,
                         int64_t Begin, int64_t End);
  /// Rows of all Parts as one index space split across the pool.
  void runMatmuls(std::initializer_list<MatmulPart> Parts, const uint8_t *Xq, const float *X);
  /// Calls F on chunks of [0, Rows) (multiples of Granule and of every
  /// layout's row group) across the pool, to split a matmul's output rows.
  template <typename Fn> void rowsParallel(int64_t Rows, int64_t Granule, Fn &&F);
  /// N rows of activations into Xq; a batch's rows are split across the pool.
  void quantize(QuantizeFn Fn, const float *Rows, int64_t N);
  /// Adds the N rows of Residual (if given: the previous block's output)
  /// into X, RMS-normalises them into XN with Weight, then quantizes NK rows
  /// of XN (padding rows stay zero) into Xq, in one dispatch by tokens.
  void normQuantize(const float *Residual, const float *Weight, QuantizeFn Fn, int64_t N, int64_t NK);
  /// Per token of a batch on the pool (serially below a few rows): a
  /// dispatch costs more than a few rows, and keeps the workers awake.
  template <typename Fn> void perToken(int64_t N, Fn &&F);

  const TransformerModel &M;
  runtime::KernelCache &Cache;
  std::shared_ptr<const codegen::Wisdom> Wis; // Measured kernel choices, or null.
  runtime::ThreadPool Pool;
  const int64_t Batch;
  const vec::Width Wide; // The vector ops' 512-bit loops where the Jit's CPU has AVX-512.
  Profiler Prof;
  absl::flat_hash_map<int64_t, Kernels> KernelsByN;
  absl::flat_hash_map<int64_t, Matmul> OutputByN;

  // Activations, Batch rows each (token-major).
  std::vector<float> X, XN, Q, K, V, Att, O, Gate, Up, Down, Logits; // Gate: then SiLU(gate) * up.
  std::vector<uint8_t> Xq;    // Quantized XN (q/k/v, gate/up, lm_head) or Att (attn_output).
  std::vector<uint8_t> XqFFN; // Quantized Gate (ffn_down).
  // Each sequence's fp16 keys and values of every layer and KV head
  // (KVCache.h), and its position.
  std::vector<std::unique_ptr<KVCache>> Caches;
  std::vector<int64_t> Positions;
  // The batch's rows: each token's id, cache and position.
  std::vector<int32_t> RowTokens;
  std::vector<KVCache *> RowCache;
  std::vector<int64_t> RowPos;
  std::vector<int64_t> OutRows;         // Rows whose logits are wanted.
  void (*Rotate)(float *, const float *, const float *, int64_t); // RoPE of the architecture's style.
  std::vector<float> Cos, Sin;          // Per token x frequency.
};

JitForward::JitForward(const TransformerModel &M, runtime::KernelCache &Cache, int64_t Ctx, int32_t Sequences,
                       unsigned Threads, int64_t Batch, bool Profile, bool HugePages,
                       std::shared_ptr<const codegen::Wisdom> Wis)
    : M(M), Cache(Cache), Wis(std::move(Wis)), Pool(Threads), Batch(Batch),
      Wide(Cache.jit().cpu().AVX512 ? vec::Width::Native512 : vec::Width::Avx2), Prof(Profile, Pool),
      Positions(Sequences, 0) {
  const ModelConfig &C = M.config();
  for (int32_t S = 0; S < Sequences; ++S)
    Caches.push_back(std::make_unique<KVCache>(C.Layers, C.KVHeads, C.HeadDim, Ctx, KVCache::kSegmentPositions,
                                               HugePages));
  RowCache.assign(Batch, nullptr);
  RowPos.assign(Batch, 0);
  const int64_t D = C.Dim, KV = C.kvDim(), QD = C.qDim(), FF = C.FFN;
  for (std::vector<float> *B : {&X, &XN, &O, &Down})
    B->assign(Batch * D, 0.0f);
  for (std::vector<float> *B : {&Q, &Att})
    B->assign(Batch * QD, 0.0f);
  K.assign(Batch * KV, 0.0f);
  V.assign(Batch * KV, 0.0f);
  for (std::vector<float> *B : {&Gate, &Up})
    B->assign(Batch * FF, 0.0f);
  Xq.assign(Batch * codegen::q8RowBytes(std::max(D, QD)), 0);
  XqFFN.assign(Batch * codegen::q8RowBytes(FF), 0);
  Rotate = C.Arch->Rope == RopeStyle::Neox ? vec::rope : vec::ropePairs;
  Cos.assign(Batch * C.HeadDim / 2, 0.0f);
  Sin.assign(Cos.size(), 0.0f);
}

absl::StatusOr<Matmul> JitForward::matmul(const Matrix &W, int64_t N) {
  const codegen::KernelSpec Spec = codegen::chooseSpec(W.shape(N), Cache.jit().cpu(), nullptr, Wis.get(), Pool.size());
  absl::StatusOr<MatmulFn> F = Cache.getMatmul(Spec);
  if (!F.ok())
    return F.status();
  return Matmul{*F, Spec.Activations};
}

absl::StatusOr<const Kernels *> JitForward::kernels(int64_t N) {
  if (auto It = KernelsByN.find(N); It != KernelsByN.end())
    return &It->second;
  Kernels Ks;
  for (const LayerWeights &L : M.Layers) {
    LayerKernels &LK = Ks.Layers.emplace_back();
    for (auto [Out, W] : {std::pair{&LK.Q, &L.Q}, {&LK.K, &L.K}, {&LK.V, &L.V}, {&LK.O, &L.O},
                          {&LK.Gate, &L.Gate}, {&LK.Up, &L.Up}, {&LK.Down, &L.Down}}) {
      absl::StatusOr<Matmul> F = matmul(*W, N);
      if (!F.ok())
        return F.status();
      *Out = *F;
    }
  }
  absl::StatusOr<QuantizeFn> Quantize = Cache.getQuantize(M.config().Dim);
  if (!Quantize.ok())
    return Quantize.status();
  Ks.QuantizeDim = *Quantize;
  absl::StatusOr<QuantizeFn> QuantizeAtt = Cache.getQuantize(M.config().qDim());
  if (!QuantizeAtt.ok())
    return QuantizeAtt.status();
  Ks.QuantizeAtt = *QuantizeAtt;
  absl::StatusOr<QuantizeBlocksFn> QuantizeBlocks = Cache.getQuantizeBlocks(M.config().FFN);
  if (!QuantizeBlocks.ok())
    return QuantizeBlocks.status();
  Ks.QuantizeFFNBlocks = *QuantizeBlocks;
  return &KernelsByN.emplace(N, Ks).first->second;
}

absl::StatusOr<Matmul> JitForward::outputKernel(int64_t N) {
  if (auto It = OutputByN.find(N); It != OutputByN.end())
    return It->second;
  absl::StatusOr<Matmul> F = matmul(M.Output, N);
  if (F.ok())
    OutputByN.emplace(N, *F);
  return F;
}

template <typename Fn> void JitForward::rowsParallel(int64_t Rows, int64_t Granule, Fn &&F) {
  // Each thread streams its own contiguous share of the rows and then helps
  // with what is left of the others', in halving chunks, so a thread the
  // host slows down is not waited for. Decode: one sequential stream a
  // thread (~4 % a token on two threads against one slice a thread).
  // Prefill: the chunks shrink to one row group where the threads meet
  // (+5-10 % on two threads against four equal chunks a thread, whose last
  // one left a core idle; docs/BENCHMARK.md).
  Pool.parallelForShares(Rows, roundUp(codegen::kMaxRowGroup, Granule), F);
}

void JitForward::matmulRows(std::initializer_list<MatmulPart> Parts, const uint8_t *Xq, const float *X,
                            int64_t Begin, int64_t End) {
  int64_t Base = 0;
  for (const MatmulPart &P : Parts) {
    int64_t B = std::max(Begin, Base), E = std::min(End, Base + P.W->Rows);
    if (B < E)
      P.Kernel(P.W->Data, Xq, X, P.Y, B - Base, E - Base);
    Base += P.W->Rows;
  }
}

void JitForward::runMatmuls(std::initializer_list<MatmulPart> Parts, const uint8_t *Xq, const float *X) {
  int64_t Total = 0;
  for (const MatmulPart &P : Parts)
    Total += P.W->Rows;
  rowsParallel(Total, codegen::kMaxRowGroup,
               [&](int64_t Begin, int64_t End) { matmulRows(Parts, Xq, X, Begin, End); });
}

template <typename Fn> void JitForward::perToken(int64_t N, Fn &&F) {
  if (N < 16) {
    F(0, N);
    return;
  }
  Pool.parallelFor(N, 8, F);
}

void JitForward::quantize(QuantizeFn Fn, const float *Rows, int64_t N) {
  perToken(N, [&](int64_t B, int64_t E) { Fn(Rows, Xq.data(), B, E); });
}

void JitForward::normQuantize(const float *Residual, const float *Weight, QuantizeFn Fn, int64_t N, int64_t NK) {
  const int64_t D = M.config().Dim;
  perToken(NK, [&](int64_t B, int64_t E) {
    for (int64_t T = B; T < std::min(E, N); ++T) {
      if (Residual)
        vec::add(&X[T * D], &Residual[T * D], D);
      vec::rmsNorm(&X[T * D], Weight, &XN[T * D], D, M.config().RmsEps);
    }
    Fn(XN.data(), Xq.data(), B, E);
  });
}

void JitForward::qkv(uint32_t Layer, const Kernels &Ks, int64_t N) {
  const ModelConfig &C = M.config();
  const LayerWeights &W = M.Layers[Layer];
  const int64_t QD = C.qDim(), KV = C.kvDim(), HD = C.HeadDim, Heads = C.Heads, KVHeads = C.KVHeads;
  // Heads [0, Heads) are q's, then KVHeads of k and of v. (Bias, RoPE and
  // the store in a dispatch of their own read each head's rows from the
  // core that computed them: 4-11 ms of a two-thread pp512, against ~4 ms
  // on one thread; docs/BENCHMARK.md.) The architecture's optional parts
  // (Qwen2's biases, Qwen3's per-head q/k norms) are there or null.
  rowsParallel(QD + 2 * KV, std::lcm(codegen::kMaxRowGroup, HD), [&](int64_t Begin, int64_t End) {
    const LayerKernels &LK = Ks.Layers[Layer];
    matmulRows({{LK.Q, &W.Q, Q.data()}, {LK.K, &W.K, K.data()}, {LK.V, &W.V, V.data()}}, Xq.data(),
               XN.data(), Begin, End);
    for (int64_t H = Begin / HD; H < End / HD; ++H)
      for (int64_t T = 0; T < N; ++T) {
        const float *Cs = &Cos[T * HD / 2], *Sn = &Sin[T * HD / 2];
        if (H < Heads) {
          float *Qh = &Q[T * QD + H * HD];
          if (W.QBias)
            vec::add(Qh, W.QBias + H * HD, HD);
          if (W.QNorm)
            vec::rmsNorm(Qh, W.QNorm, Qh, HD, C.RmsEps);
          Rotate(Qh, Cs, Sn, HD);
        } else if (const int64_t G = H - Heads; G < KVHeads) {
          float *Kh = &K[T * KV + G * HD];
          if (W.KBias)
            vec::add(Kh, W.KBias + G * HD, HD);
          if (W.KNorm)
            vec::rmsNorm(Kh, W.KNorm, Kh, HD, C.RmsEps);
          Rotate(Kh, Cs, Sn, HD);
          RowCache[T]->storeKey(Layer, G, RowPos[T], Kh);
        } else {
          float *Vh = &V[T * KV + (G - KVHeads) * HD];
          if (W.VBias)
            vec::add(Vh, W.VBias + (G - KVHeads) * HD, HD);
          RowCache[T]->storeValue(Layer, G - KVHeads, RowPos[T], Vh);
        }
      }
  });
}

void JitForward::attention(uint32_t Layer, int64_t N) {
  const ModelConfig &C = M.config();
  const int64_t QD = C.qDim(), HD = C.HeadDim, KVHeads = C.KVHeads, Group = C.Heads / C.KVHeads;
  const float Scale = 1.0f / std::sqrt(float(HD));
  // One item per (token, KV head): the token's Group query heads read each
  // cached K and V row once, in place, converted in registers. (Blocks of 16
  // tokens sharing fp32 copies of the K/V blocks were no faster at 256 bits
  // and could not keep 512-bit accumulators in registers.) As llama.cpp's
  // attention over an fp16 cache, q and the probabilities enter their
  // products rounded to fp16. The latest (longest) tokens are handed out first.
  Pool.parallelFor(N * KVHeads, 1, [&](int64_t Begin, int64_t End) {
    thread_local std::vector<float> Qs, Scores;
    for (int64_t Item = Begin; Item < End; ++Item) {
      const int64_t G = Item % KVHeads, T = N - 1 - Item / KVHeads;
      const int64_t Seen = RowPos[T] + 1, Stride = roundUp(Seen, vec::kKeyBlock);
      Qs.resize(Group * HD);
      Scores.resize(Group * Stride);
      for (int64_t J = 0; J < Group; ++J)
        vec::roundToHalf(&Q[T * QD + (G * Group + J) * HD], &Qs[J * HD], HD);
      vec::attendToken(Qs.data(), Group, RowCache[T]->head(Layer, G), Seen, Scale, Scores.data(), Stride,
                       &Att[T * QD + G * Group * HD], HD, Wide);
    }
  });
}

absl::Status JitForward::forward(std::span<const Piece> Pieces, float *LogitsOut,
                                 std::vector<BatchedSession::NonFinite> *Failed) {
  const ModelConfig &C = M.config();
  // The batch's rows: every piece's tokens, each with its sequence's cache
  // and its position; and the rows whose logits are wanted.
  std::vector<int32_t> &Tokens = RowTokens;
  Tokens.clear();
  OutRows.clear();
  for (const Piece &P : Pieces) {
    KVCache *KV = Caches[P.Sequence].get();
    const int64_t Start = Positions[P.Sequence], First = int64_t(Tokens.size()), Count = P.Tokens.size();
    for (int64_t I = 0; I < Count; ++I) {
      RowCache[First + I] = KV;
      RowPos[First + I] = Start + I;
      if (P.Rows == Want::All || (P.Rows == Want::Last && I == Count - 1))
        OutRows.push_back(First + I);
    }
    Tokens.insert(Tokens.end(), P.Tokens.begin(), P.Tokens.end());
    KV->reserve(Start + Count);
  }
  const int64_t N = Tokens.size(), D = C.Dim, QD = C.qDim(), FF = C.FFN, HD = C.HeadDim;
  const int64_t NK = kernelTokens(N);
  absl::StatusOr<const Kernels *> KsOr = kernels(NK);
  if (!KsOr.ok())
    return KsOr.status();
  const Kernels &Ks = **KsOr;
  // Padding rows stay zero through every matmul input.
  std::fill(XN.begin() + N * D, XN.begin() + NK * D, 0.0f);
  std::fill(Att.begin() + N * QD, Att.begin() + NK * QD, 0.0f);

  Prof.start();
  for (int64_t T = 0; T < N; ++T) {
    M.Embedding.dequantizeRow(Tokens[T], &X[T * D]);
    M.ropeAngles(RowPos[T], &Cos[T * HD / 2], &Sin[T * HD / 2]);
  }
  Prof.mark(Phase::Embed);

  for (uint32_t L = 0; L < C.Layers; ++L) {
    const LayerWeights &W = M.Layers[L];
    const LayerKernels &LK = Ks.Layers[L];
    // Attention block: the last block's residual and norm, q/k/v in one
    // dispatch with their bias, RoPE and cache store, attend.
    normQuantize(L ? Down.data() : nullptr, W.AttnNorm, Ks.QuantizeDim, N, NK);
    Prof.mark(Phase::Norms);
    qkv(L, Ks, N);
    Prof.mark(Phase::QKV);
    attention(L, N);
    Prof.mark(Phase::Attention);
    quantize(Ks.QuantizeAtt, Att.data(), NK);
    Prof.mark(Phase::Norms);
    runMatmuls({{LK.O, &W.O, O.data()}}, Xq.data(), Att.data());
    Prof.mark(Phase::O);

    // Feed-forward block: the attention's residual and norm, gate and up
    // together, SiLU(gate) * up fused, and its quantization: each thread
    // quantizes the 32-blocks of the rows it computed, where they are
    // (quantizing by tokens made every core read what the other had
    // written: ~55 ms of a two-thread pp512).
    normQuantize(O.data(), W.FfnNorm, Ks.QuantizeDim, N, NK);
    Prof.mark(Phase::Norms);
    rowsParallel(FF, kQ8Block, [&](int64_t B, int64_t E) {
      LK.Gate(W.Gate.Data, Xq.data(), XN.data(), Gate.data(), B, E);
      LK.Up(W.Up.Data, Xq.data(), XN.data(), Up.data(), B, E);
      // SiLU(gate) * up in place: written to a third Batch x FFN buffer
      // (10 MB at 512 tokens) it took ~10 % longer (docs/BENCHMARK.md).
      for (int64_t T = 0; T < NK; ++T)
        vec::siluMul(&Gate[T * FF + B], &Up[T * FF + B], &Gate[T * FF + B], E - B, Wide);
      Ks.QuantizeFFNBlocks(Gate.data(), XqFFN.data(), NK, B / kQ8Block, E / kQ8Block);
    });
    Prof.mark(Phase::GateUp);
    runMatmuls({{LK.Down, &W.Down, Down.data()}}, XqFFN.data(), Gate.data());
    Prof.mark(Phase::Down);
  }

  for (const Piece &P : Pieces)
    Positions[P.Sequence] += P.Tokens.size();
  if (OutRows.empty())
    return absl::OkStatus();
  // The last block's residual, final norm and lm_head for the rows wanted.
  const int64_t Rows = OutRows.size(), NO = kernelTokens(Rows);
  std::fill(XN.begin(), XN.begin() + NO * D, 0.0f);
  for (int64_t I = 0; I < Rows; ++I) {
    const int64_t T = OutRows[I];
    vec::add(&X[T * D], &Down[T * D], D);
    vec::rmsNorm(&X[T * D], M.OutputNorm, &XN[I * D], D, C.RmsEps);
  }
  quantize(Ks.QuantizeDim, XN.data(), NO);
  absl::StatusOr<Matmul> Out = outputKernel(NO);
  if (!Out.ok())
    return Out.status();
  const int64_t Vocab = C.Vocab;
  float *Y = LogitsOut;
  if (NO != Rows) { // The kernel writes NO rows; keep the real ones.
    Logits.resize(NO * Vocab);
    Y = Logits.data();
  }
  runMatmuls({{*Out, &M.Output, Y}}, Xq.data(), XN.data());
  if (Y != LogitsOut)
    std::copy_n(Y, Rows * Vocab, LogitsOut);
  Prof.mark(Phase::LmHead);
  for (int64_t I = 0; I < Rows; ++I)
    if (absl::Status S = checkLogits(&LogitsOut[I * Vocab], Vocab, RowPos[OutRows[I]], /*HalfPrecision=*/true);
        !S.ok()) {
      if (!Failed)
        return S;
      Failed->push_back({static_cast<size_t>(I), std::move(S)});
    }
  return absl::OkStatus();
}

/// One sequence: the Session interface over a JitForward.
class JitSession final : public Session {
public:
  JitSession(const TransformerModel &M, int64_t Ctx, std::unique_ptr<JitForward> F)
      : Session(M, Ctx), F(std::move(F)) {}
  std::vector<std::pair<std::string, double>> profile() const override { return F->profile(); }
  int64_t batchSize() const override { return F->batchSize(); }

  absl::Status prepare(int64_t PromptTokens) override {
    // The batch sizes the prompt will run in, and decode.
    const int64_t Batch = F->batchSize();
    std::vector<int64_t> Sizes = {1};
    if (PromptTokens > 1) {
      if (PromptTokens >= Batch)
        Sizes.push_back(Batch);
      if (PromptTokens % Batch)
        Sizes.push_back(F->kernelTokens(PromptTokens % Batch));
    }
    for (int64_t N : Sizes)
      if (absl::StatusOr<const Kernels *> K = F->kernels(N); !K.ok())
        return K.status();
    return F->outputKernel(1).status();
  }

  absl::Status eval(std::span<const int32_t> Tokens, bool AllLogits, std::vector<float> &LogitsOut) override {
    if (absl::Status S = checkTokens(Tokens); !S.ok())
      return S;
    const int64_t Vocab = M.config().Vocab, N = Tokens.size(), Batch = F->batchSize();
    LogitsOut.resize((AllLogits ? N : 1) * Vocab);
    F->position(0) = Pos; // Rewinds are the Session's.
    for (int64_t Begin = 0; Begin < N; Begin += Batch) {
      int64_t Count = std::min(Batch, N - Begin);
      bool Last = Begin + Count == N;
      // Earlier batches only fill the KV cache unless every row is wanted.
      const Piece P{0, Tokens.subspan(Begin, Count), AllLogits ? Want::All : Last ? Want::Last : Want::None};
      float *Dest = AllLogits ? &LogitsOut[Begin * Vocab] : LogitsOut.data();
      absl::Status S = F->forward({&P, 1}, Dest);
      Pos = F->position(0);
      if (!S.ok())
        return S;
    }
    return absl::OkStatus();
  }

private:
  std::unique_ptr<JitForward> F;
};

/// Several sequences: steps of their tokens through one JitForward.
class JitBatchedSession final : public BatchedSession {
public:
  JitBatchedSession(const TransformerModel &M, int64_t Ctx, std::unique_ptr<JitForward> F)
      : M(M), Ctx(Ctx), F(std::move(F)) {}

  absl::Status step(std::span<const SequenceInput> Inputs, std::vector<float> &Logits,
                    std::vector<NonFinite> *Failed) override {
    if (Failed)
      Failed->clear();
    const int32_t Vocab = static_cast<int32_t>(M.config().Vocab);
    std::vector<Piece> &Pieces = StepPieces;
    Pieces.clear();
    std::vector<bool> Seen(F->sequences(), false);
    int64_t Total = 0, Wanted = 0;
    for (const SequenceInput &In : Inputs) {
      if (In.Sequence < 0 || In.Sequence >= F->sequences())
        return absl::InvalidArgumentError(
            absl::StrFormat("sequence %d does not exist (0..%d)", In.Sequence, F->sequences() - 1));
      if (Seen[In.Sequence])
        return absl::InvalidArgumentError(absl::StrFormat("sequence %d appears twice in one step", In.Sequence));
      Seen[In.Sequence] = true;
      if (In.Tokens.empty())
        return absl::InvalidArgumentError(absl::StrFormat("no tokens for sequence %d", In.Sequence));
      const int64_t Pos = F->position(In.Sequence);
      if (static_cast<int64_t>(In.Tokens.size()) > Ctx - Pos)
        return absl::OutOfRangeError(absl::StrFormat(
            "%d tokens do not fit: sequence %d is at position %d of a %d-token context", In.Tokens.size(),
            In.Sequence, Pos, Ctx));
      for (int32_t T : In.Tokens)
        if (T < 0 || T >= Vocab)
          return absl::InvalidArgumentError(
              absl::StrFormat("token id %d is outside the vocabulary [0, %d)", T, Vocab));
      Total += In.Tokens.size();
      Wanted += In.Logits;
      Pieces.push_back({In.Sequence, In.Tokens, In.Logits ? Want::Last : Want::None});
    }
    if (Total > F->batchSize())
      return absl::InvalidArgumentError(
          absl::StrFormat("%d tokens in one step: at most %d", Total, F->batchSize()));
    Logits.resize(Wanted * Vocab);
    if (Pieces.empty())
      return absl::OkStatus();
    if (absl::Status S = F->forward(Pieces, Logits.data(), Failed); !S.ok() || !Failed)
      return S;
    // Logits rows to inputs: row R is the R-th input that wants logits.
    std::vector<size_t> Wanting;
    for (size_t I = 0; I < Inputs.size(); ++I)
      if (Inputs[I].Logits)
        Wanting.push_back(I);
    for (NonFinite &NF : *Failed)
      NF.Input = Wanting[NF.Input];
    return absl::OkStatus();
  }

  absl::Status prepare() override {
    for (int64_t N = 1; N <= F->batchSize(); N = N < 8 ? N + 1 : N + 8) {
      if (absl::StatusOr<const Kernels *> K = F->kernels(N); !K.ok())
        return K.status();
      if (N <= roundUp(F->sequences(), 8)) // A step's logits: one row per sequence at most.
        if (absl::StatusOr<Matmul> O = F->outputKernel(N); !O.ok())
          return O.status();
    }
    return absl::OkStatus();
  }

  int64_t position(int32_t Sequence) const override {
    return Sequence >= 0 && Sequence < F->sequences() ? F->position(Sequence) : -1;
  }
  absl::Status rewind(int32_t Sequence, int64_t P) override {
    if (Sequence < 0 || Sequence >= F->sequences())
      return absl::InvalidArgumentError(absl::StrFormat("sequence %d does not exist", Sequence));
    if (P < 0 || P > F->position(Sequence))
      return absl::OutOfRangeError(
          absl::StrFormat("cannot rewind sequence %d to %d (position is %d)", Sequence, P, F->position(Sequence)));
    F->position(Sequence) = P;
    return absl::OkStatus();
  }
  int32_t sequences() const override { return F->sequences(); }
  int64_t contextSize() const override { return Ctx; }
  int64_t batchSize() const override { return F->batchSize(); }
  int64_t sequenceBytes() const override {
    const ModelConfig &C = M.config();
    return 2 * C.Layers * C.kvDim() * Ctx * int64_t(sizeof(uint16_t));
  }
  const TransformerModel &model() const override { return M; }
  std::vector<std::pair<std::string, double>> profile() const override { return F->profile(); }

private:
  const TransformerModel &M;
  int64_t Ctx;
  std::unique_ptr<JitForward> F;
  std::vector<Piece> StepPieces;
};

/// The context and batch from Options, checked.
absl::Status checkOptions(const TransformerModel &M, const SessionOptions &Options, int64_t &Ctx, int64_t &Batch) {
  Ctx = std::min<int64_t>(Options.ContextSize, M.config().ContextLength);
  if (Ctx <= 0)
    return absl::InvalidArgumentError(absl::StrFormat("context size %d must be positive", Options.ContextSize));
  if (Options.PrefillBatch < 1)
    return absl::InvalidArgumentError("prefill batch must be positive");
  Batch = roundUp(std::min<int64_t>(Options.PrefillBatch, 512), 8);
  return absl::OkStatus();
}

} // namespace

absl::StatusOr<std::unique_ptr<Session>> createJitSession(const TransformerModel &M, runtime::KernelCache &Cache,
                                                          SessionOptions Options) {
  int64_t Ctx = 0, Batch = 0;
  if (absl::Status S = checkOptions(M, Options, Ctx, Batch); !S.ok())
    return S;
  auto F = std::make_unique<JitForward>(M, Cache, Ctx, 1, Options.Threads, Batch, Options.Profile, Options.HugePages,
                                        std::move(Options.Wisdom));
  if (!F->allocated())
    return absl::ResourceExhaustedError(
        absl::StrFormat("cannot allocate the KV cache for a context of %d tokens", Ctx));
  return std::unique_ptr<Session>(std::make_unique<JitSession>(M, Ctx, std::move(F)));
}

absl::StatusOr<std::unique_ptr<BatchedSession>> createJitBatchedSession(const TransformerModel &M,
                                                                        runtime::KernelCache &Cache,
                                                                        SessionOptions Options, int32_t Sequences) {
  int64_t Ctx = 0, Batch = 0;
  if (absl::Status S = checkOptions(M, Options, Ctx, Batch); !S.ok())
    return S;
  if (Sequences < 1 || Sequences > 256)
    return absl::InvalidArgumentError(absl::StrFormat("%d sequences: 1 to 256 are supported", Sequences));
  auto F = std::make_unique<JitForward>(M, Cache, Ctx, Sequences, Options.Threads, Batch, Options.Profile,
                                        Options.HugePages, std::move(Options.Wisdom));
  if (!F->allocated())
    return absl::ResourceExhaustedError(
        absl::StrFormat("cannot allocate the KV caches of %d sequences of %d tokens", Sequences, Ctx));
  return std::unique_ptr<BatchedSession>(std::make_unique<JitBatchedSession>(M, Ctx, std::move(F)));
}

} // namespace lumen::model
