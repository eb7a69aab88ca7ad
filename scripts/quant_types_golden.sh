#!/usr/bin/env bash
# The tensor types llama-quantize chooses for every preset, on Qwen2.5-0.5B-
# and 1.5B-shaped F16 files: the data unittests/Quantize/QuantPresetTest.cpp
# checks Lumen's choices against.
#
#   scripts/quant_types_golden.sh LLAMA_CPP_DIR F16_05B.gguf F16_15B.gguf > unittests/Quantize/data/llama-quantize-types.txt
#
# The F16 files: `lumen-jit synth --preset qwen2.5-0.5b --type F16 -o F` (and 1.5b).
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
llama="$(cd "$1" && pwd)"
lumen="$here/build/tools/lumen-jit/lumen-jit"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
echo "# llama-quantize ($(git -C "$llama" rev-parse --short HEAD 2>/dev/null || echo unknown)): PRESET SHAPE TENSOR TYPE"
for shape in "qwen2.5-0.5b $2" "qwen2.5-1.5b $3"; do
  set -- $shape
  for preset in Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 Q2_K Q3_K_S Q3_K_M Q3_K_L Q4_K_S Q4_K_M Q5_K_S Q5_K_M Q6_K; do
    LD_LIBRARY_PATH="$llama/build/bin" "$llama/build/bin/llama-quantize" "$2" "$tmp/q.gguf" "$preset" 2 > /dev/null 2>&1
    "$lumen" inspect --tensors "$tmp/q.gguf" |
      awk -v p="$preset" -v s="$1" '$2 ~ /^(blk\.[0-9]+\.|token_embd|output\.)/ && $2 ~ /weight$/ && $2 !~ /_norm/ { print p, s, $2, $3 }'
  done
done
