#!/usr/bin/env bash
# Lumen against llama.cpp on every quantization preset: synthetic F16 models
# (a row length that is a multiple of 256 and one that is not, so that the
# K-quants' fallbacks appear) quantized by llama.cpp's own llama-quantize,
# then teacher-forced logits from llama.cpp and from lumen-jit eval, compared
# by the fixture rule (scripts/compare_logits.py).
#
#   scripts/quant_fidelity.sh LLAMA_CPP_DIR [OUT_DIR] [-- EVAL_FLAGS...]
#
# LLAMA_CPP_DIR: a llama.cpp checkout beside the repo, built with
# `cmake -B build -DGGML_NATIVE=ON && cmake --build build --target llama-quantize llama`.
# EVAL_FLAGS default to --reference (the scalar path); "--" with nothing
# after it checks the JIT, "-- --isa avx2" its AVX2 kernels. With
# QUANTIZER=lumen the models are written by `lumen-jit quantize` instead, and
# llama.cpp runs Lumen's files. Needs ../shared/tools/mkqwen.py and numpy.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
llama="$(cd "$1" && pwd)"; shift
out="${1:-$here/build/quant-fidelity}"; [ $# -gt 0 ] && shift
# Flags after "--" replace --reference (nothing after it: the JIT).
eval_flags=(--reference)
if [ "${1:-}" = -- ]; then shift; eval_flags=("$@"); fi
lumen="$here/build/tools/lumen-jit/lumen-jit"
mkqwen="$here/../shared/tools/mkqwen.py"
mkdir -p "$out"
g++ -O2 -std=c++17 -I"$llama/include" -I"$llama/ggml/include" "$here/scripts/llama-reference/dump_logits.cpp" \
  -L"$llama/build/bin" -lllama -lggml -lggml-base -Wl,-rpath,"$llama/build/bin" -o "$out/dump_logits"
prompt="The quick brown fox jumps over the lazy dog. In 1969, Apollo 11 landed on the Moon; code: def f(x): return x*2"
status=0
for shape in "512 8 1536 41" "384 6 1024 42"; do
  set -- $shape
  f16="$out/f16-$1.gguf"
  [ -f "$f16" ] || /usr/bin/python3 "$mkqwen" "$f16" --preset tiny --layers 2 --dim "$1" --heads "$2" --kv-heads 2 \
    --ffn "$3" --untied --weight-type f16 --seed "$4" > /dev/null
  ids=$("$lumen" tokenize -m "$f16" -p "$prompt" | tr ' ' ,)
  for preset in Q4_0 Q4_1 Q5_0 Q5_1 Q2_K Q3_K_S Q3_K_M Q3_K_L Q4_K_S Q4_K_M Q5_K_S Q5_K_M Q6_K Q8_0; do
    if [ "${QUANTIZER:-llama}" = lumen ]; then
      model="$out/$preset-$1.lumen-quantized.gguf"
      [ -f "$model" ] || "$lumen" quantize "$f16" "$model" "$preset" 2> /dev/null
    else
      model="$out/$preset-$1.gguf"
      [ -f "$model" ] || "$llama/build/bin/llama-quantize" "$f16" "$model" "$preset" 1 > /dev/null 2>&1
    fi
    "$out/dump_logits" "$model" "$ids" 2>/dev/null > "$out/$preset-$1.llama.json"
    "$lumen" eval -m "$model" "${eval_flags[@]}" --top 100 --from 0 --tokens "$ids" -t 2 > "$out/$preset-$1.lumen.json"
    printf '%-8s row %s: ' "$preset" "$1"
    python3 "$here/scripts/compare_logits.py" "$out/$preset-$1.llama.json" "$out/$preset-$1.lumen.json" || status=1
  done
done
exit $status
