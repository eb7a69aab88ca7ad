#!/usr/bin/env bash
# lumen-jit serve against llama-server on the same GGUF and settings, one
# after the other in one run: bench/serve_bench.py's table for each, then
# Lumen's aggregate over llama-server's at each stream count.
#
#   bench/serve_compare.sh MODEL.gguf LLAMA_SERVER [-t 2] [--streams 1,2,4,8] [--tokens 64] [--rounds 3]
#
# Both get -t threads and 8 slots (llama-server: -np 8 -c 8192, 1024 a
# slot; lumen: --parallel 8 -c 1024). LUMEN_JIT overrides the binary;
# LUMEN_SERVE_ARGS and LLAMA_SERVER_ARGS add words to either command.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
lumen="${LUMEN_JIT:-$here/build/tools/lumen-jit/lumen-jit}"
model="${1:?usage: bench/serve_compare.sh MODEL.gguf LLAMA_SERVER [-t N] [bench args]}"
llama="${2:?usage: bench/serve_compare.sh MODEL.gguf LLAMA_SERVER [-t N] [bench args]}"
shift 2
threads=2
if [ "${1:-}" = -t ]; then threads="$2"; shift 2; fi
port=18299
wait_ready() {
  for _ in $(seq 1 1200); do
    curl -sf "http://127.0.0.1:$port/health" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "serve_compare.sh: the server did not become ready" >&2
  return 1
}
bench_args=("$@")
# shellcheck disable=SC2086
"$lumen" serve -m "$model" --port $port --parallel 8 -c 1024 -t "$threads" ${LUMEN_SERVE_ARGS:-} \
  >/tmp/serve_compare_lumen.log 2>&1 &
pid=$!; wait_ready
python3 "$here/bench/serve_bench.py" "http://127.0.0.1:$port" --json "${bench_args[@]}" > /tmp/serve_compare_lumen.json
kill -INT $pid; wait $pid || true
# shellcheck disable=SC2086
"$llama" -m "$model" --port $port -np 8 -c 8192 -t "$threads" ${LLAMA_SERVER_ARGS:-} \
  >/tmp/serve_compare_llama.log 2>&1 &
pid=$!; wait_ready
python3 "$here/bench/serve_bench.py" "http://127.0.0.1:$port" --json "${bench_args[@]}" > /tmp/serve_compare_llama.json
kill -INT $pid; wait $pid || true
python3 - /tmp/serve_compare_lumen.json /tmp/serve_compare_llama.json "$threads" <<'PY'
import json, sys
lumen, llama = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
print(f"| streams (-t {sys.argv[3]}) | Lumen tok/s | llama-server tok/s | ratio | Lumen TTFT p50/p99 ms | llama-server TTFT p50/p99 ms |")
print("|---:|---:|---:|---:|---:|---:|")
for a, b in zip(lumen, llama):
    print(f"| {a['streams']} | {a['aggregate_tps']:.1f} | {b['aggregate_tps']:.1f} | {a['aggregate_tps'] / b['aggregate_tps']:.2f}x "
          f"| {a['ttft_p50_ms']:.0f} / {a['ttft_p99_ms']:.0f} | {b['ttft_p50_ms']:.0f} / {b['ttft_p99_ms']:.0f} |")
one = lumen[0]["aggregate_tps"]
print(f"\nLumen: {lumen[-1]['streams']} streams' aggregate is {lumen[-1]['aggregate_tps'] / one:.2f}x one stream's")
PY
