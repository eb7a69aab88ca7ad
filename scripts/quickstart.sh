#!/usr/bin/env bash
# Quick start: install what is missing, build lumen-jit, synthesize a
# Qwen2.5-0.5B-shaped model (RANDOM weights: the text is noise, the speed is
# real) and generate from it with the JIT runtime.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
lumen_install_deps
lumen_build build -DLUMEN_BUILD_TESTS=OFF -DLUMEN_BUILD_BENCH=OFF
model=models/qwen2.5-0.5b-synthetic-q8_0.gguf
mkdir -p models
if [ ! -f "$model" ]; then
  ./build/tools/lumen-jit/lumen-jit synth --preset qwen2.5-0.5b --seed 1 -o "$model"
fi
./build/tools/lumen-jit/lumen-jit inspect "$model"
echo
echo "== lumen-jit run on $model (random weights: expect gibberish, real timings) =="
./build/tools/lumen-jit/lumen-jit run -m "$model" -p "Hello" -n 32 --temp 0 --ignore-eos
