#!/usr/bin/env bash
# Builds the libFuzzer harnesses with ASan+UBSan (clang-19) and runs each for
# SECONDS (default 60), from seed corpora made here.
#
#   fuzz/run.sh [SECONDS] [BUILD_DIR]
#
# Corpora grow in BUILD_DIR/corpus/<fuzzer>; crashes land in BUILD_DIR/crashes
# and fail the run. Totals (executions, corpus size) are printed per fuzzer.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
build="${2:-build-fuzz}"
shared="$(cd .. && pwd)/shared"
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=clang-19 \
  -DCMAKE_CXX_COMPILER=clang++-19 -DLUMEN_BUILD_FUZZERS=ON -DLUMEN_SANITIZE=address,undefined \
  -DLUMEN_BUILD_TESTS=OFF -DLUMEN_BUILD_BENCH=OFF >/dev/null
cmake --build "$build" -j "$(nproc)" --target gguf_fuzzer tokenizer_fuzzer shape_fuzzer wisdom_fuzzer request_fuzzer make_seeds
mkdir -p "$build/crashes" "$build/corpus"/{gguf_fuzzer,tokenizer_fuzzer,shape_fuzzer,wisdom_fuzzer,request_fuzzer}
"$build/fuzz/make_seeds" "$build/corpus/gguf_fuzzer"
if [ -f "$shared/fixtures/tiny-qwen2.gguf" ]; then
  head -c 65536 "$shared/fixtures/tiny-qwen2.gguf" > "$build/corpus/gguf_fuzzer/fixture-head.gguf"
fi
if [ -f "$shared/fixtures/qwen-tokenizer-cases.json" ] && command -v python3 >/dev/null; then
  python3 - "$shared/fixtures/qwen-tokenizer-cases.json" "$build/corpus/tokenizer_fuzzer" <<'PY'
import json, sys
cases = json.load(open(sys.argv[1]))["cases"]
for i, c in enumerate(cases[:80]):
    open(f"{sys.argv[2]}/case{i}", "wb").write(bytes([i % 3]) + c["text"].encode())
PY
fi
for s in 896x4864 4864x896 32x1 x 0x0 1x; do printf %s "$s" > "$build/corpus/shape_fuzzer/$s"; done
# Wisdom seeds: what the tuner writes (this host's section and another's).
cat > "$build/corpus/wisdom_fuzzer/tuned.txt" <<'W'
# Lumen kernel wisdom
lumen-wisdom 1
host model="Fuzz CPU" cpu=znver5 isa=avx512-vnni llvm=19 lumen=0.1.0
layout type=q8_0 m=4864 k=896 choice=interleaved16 gain=1.000
kernel type=q8_0 layout=interleaved16 m=4864 k=896 n=decode threads=2 bits=512 acc=1 vnni=1 tile=16x1 prefetch=8192 pattern=pagestart paced=0 gain=1.000
kernel type=q4_k layout=interleaved16 m=8960 k=1536 n=prefill threads=1 bits=512 acc=1 vnni=1 tile=32x3 prefetch=73728 pattern=spread paced=0 gain=1.080
host model="Other" cpu=znver1 isa=avx2 llvm=19 lumen=0.1.0
kernel type=q8_0 layout=interleaved8 m=896 k=896 n=decode threads=2 bits=256 acc=2 vnni=0 tile=8x1 prefetch=4096 pattern=lines paced=0 gain=1.100
W
printf 'lumen-wisdom 1\nhost model="x" cpu=y isa=z llvm=1 lumen=2\nkernel type=f16 layout=rows m=33 k=64 n=prefill threads=3 bits=256 acc=4 vnni=0 tile=4x2 prefetch=0 pattern=lines paced=0 gain=2\n' > "$build/corpus/wisdom_fuzzer/rows.txt"
# Request seeds: the endpoint's byte, then a body (chat, completion, tokenize, detokenize).
printf '\x00{"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":[{"type":"text","text":"Hi"}]}],"stream":true,"stream_options":{"include_usage":true},"temperature":0.7,"max_tokens":16,"stop":["\\n\\n"],"seed":42,"logprobs":true,"top_logprobs":2}' > "$build/corpus/request_fuzzer/chat"
printf '\x01{"prompt":[1,2,3],"max_tokens":4,"logprobs":1,"top_k":5,"min_p":0.1,"frequency_penalty":0.5}' > "$build/corpus/request_fuzzer/completion"
printf '\x02{"content":"hello","with_pieces":true}' > "$build/corpus/request_fuzzer/tokenize"
printf '\x03{"tokens":[1,2,999]}' > "$build/corpus/request_fuzzer/detokenize"
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
status=0
for f in gguf_fuzzer tokenizer_fuzzer shape_fuzzer wisdom_fuzzer request_fuzzer; do
  log="$build/$f.log"
  if ! "$build/fuzz/$f" -max_total_time="$seconds" -max_len=65536 -rss_limit_mb=4096 -timeout=20 \
       -artifact_prefix="$build/crashes/$f-" "$build/corpus/$f" > "$log" 2>&1; then
    echo "$f: FOUND A PROBLEM (see $log and $build/crashes)"; tail -30 "$log"; status=1
  fi
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || true)
  [ -n "$execs" ] || execs=$(grep -oE '^#[0-9]+' "$log" | tail -1 | tr -d '#')
  echo "$f: $seconds s, ${execs:-?} executions, corpus $(ls "$build/corpus/$f" | wc -l) files"
done
exit $status
