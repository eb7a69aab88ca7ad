//===- dump_logits.cpp - llama.cpp's logits, as lumen-jit eval prints them -===//
//
//   dump_logits MODEL.gguf ID,ID,...
//
// Evaluates the ids in one batch with llama.cpp (one thread, its default F16
// KV cache) and prints, for every position, the argmax and the top 20
// logits: {"positions":[{"pos","argmax","top":[[id,logit],...]}]}, the shape
// of `lumen-jit eval --from 0 --top 20`. Built against a llama.cpp checkout
// beside the repo by scripts/quant_fidelity.sh; not part of Lumen's build.
//
//===----------------------------------------------------------------------===//
#include "llama.h"
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <numeric>
#include <sstream>
#include <string>
#include <vector>
int main(int argc, char **argv) {
  if (argc < 3) return 2;
  std::vector<llama_token> Ids;
  std::stringstream S(argv[2]);
  for (std::string T; std::getline(S, T, ',');) Ids.push_back(std::atoi(T.c_str()));
  llama_backend_init();
  llama_model_params MP = llama_model_default_params();
  llama_model *M = llama_model_load_from_file(argv[1], MP);
  if (!M) return 1;
  llama_context_params CP = llama_context_default_params();
  CP.n_ctx = 512; CP.n_batch = 512; CP.n_ubatch = 512; CP.n_threads = 1; CP.n_threads_batch = 1;
  llama_context *C = llama_init_from_model(M, CP);
  llama_batch B = llama_batch_init(Ids.size(), 0, 1);
  for (size_t I = 0; I < Ids.size(); ++I) {
    B.token[I] = Ids[I]; B.pos[I] = I; B.n_seq_id[I] = 1; B.seq_id[I][0] = 0; B.logits[I] = 1;
  }
  B.n_tokens = Ids.size();
  if (llama_decode(C, B)) return 1;
  int V = llama_vocab_n_tokens(llama_model_get_vocab(M));
  printf("{\"positions\":[");
  std::vector<int> Order(V);
  for (size_t P = 0; P < Ids.size(); ++P) {
    float *L = llama_get_logits_ith(C, P);
    std::iota(Order.begin(), Order.end(), 0);
    std::partial_sort(Order.begin(), Order.begin() + 20, Order.end(), [&](int A, int Bb) { return L[A] > L[Bb]; });
    printf("%s{\"pos\":%zu,\"argmax\":%d,\"top\":[", P ? "," : "", P, Order[0]);
    for (int I = 0; I < 20; ++I) printf("%s[%d,%.6f]", I ? "," : "", Order[I], L[Order[I]]);
    printf("]}");
  }
  printf("]}\n");
  return 0;
}
