#!/usr/bin/env bash
# The tensor types llama-quantize chooses for every preset: the data
# unittests/Quantize/QuantPresetTest.cpp checks Lumen's choices against.
#
#   scripts/quant_types_golden.sh LLAMA_CPP_DIR SHAPE=F16.gguf ... > unittests/Quantize/data/llama-quantize-types.txt
#
# The shapes the test knows (QuantPresetTest.cpp's kShapes):
#   qwen2.5-0.5b  lumen-jit synth --preset qwen2.5-0.5b --type F16 -o F
#   l28-untied    ../shared/tools/mkqwen.py F --preset tiny --layers 28 --dim 768 --ffn 1536 --heads 12
#                 --kv-heads 2 --untied --weight-type f16 --seed 3
#                 (Qwen2.5-1.5B's layer count, grouping and untied output; rows of multiples of 256)
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
llama="$(cd "$1" && pwd)"; shift
lumen="$here/build/tools/lumen-jit/lumen-jit"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
echo "# llama-quantize ($(git -C "$llama" rev-parse --short HEAD 2>/dev/null || echo unknown)): PRESET SHAPE TENSOR TYPE"
for arg in "$@"; do
  shape="${arg%%=*}" file="${arg#*=}"
  for preset in Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 Q2_K Q3_K_S Q3_K_M Q3_K_L Q4_K_S Q4_K_M Q5_K_S Q5_K_M Q6_K; do
    LD_LIBRARY_PATH="$llama/build/bin" "$llama/build/bin/llama-quantize" "$file" "$tmp/q.gguf" "$preset" 2 > /dev/null 2>&1
    "$lumen" inspect --tensors "$tmp/q.gguf" |
      awk -v p="$preset" -v s="$shape" '$2 ~ /^(blk\.[0-9]+\.|token_embd|output\.)/ && $2 ~ /weight$/ && $2 !~ /_norm/ { print p, s, $2, $3 }'
  done
done
