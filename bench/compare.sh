#!/usr/bin/env bash
# Lumen against llama.cpp on the same GGUF, side by side in one run.
#
#   bench/compare.sh MODEL.gguf [LLAMA_BENCH] [-p 512] [-n 128] [-pg P,N] [-t 1,2] [-r 3]
#
# Runs `lumen-jit bench` and, when a llama-bench path is given, llama-bench
# with the same settings, alternating per thread count so both see the same
# machine conditions, then prints the ratio table (Lumen / llama.cpp).
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
lumen="${LUMEN_JIT:-$here/build/tools/lumen-jit/lumen-jit}"
model="${1:?usage: bench/compare.sh MODEL.gguf [LLAMA_BENCH] [-p N] [-n N] [-pg P,N] [-t LIST] [-r N]}"
shift
llama=""
if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then llama="$1"; shift; fi
p=512 n=128 pg="" threads=1,2 reps=3
while [ $# -gt 0 ]; do
  case "$1" in
    -p) p="$2"; shift 2 ;;
    -n) n="$2"; shift 2 ;;
    -pg) pg="$2"; shift 2 ;;
    -t) threads="$2"; shift 2 ;;
    -r) reps="$2"; shift 2 ;;
    *) echo "compare.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
[ -x "$lumen" ] || { echo "compare.sh: build lumen-jit first ($lumen)" >&2; exit 1; }
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
pgargs=()
[ -n "$pg" ] && pgargs=(-pg "$pg")
echo "# Lumen vs llama.cpp: $(basename "$model"), pp$p / tg$n${pg:+ / pg $pg}, threads $threads, $reps reps, $(date -u +%F)"
echo
for t in ${threads//,/ }; do
  "$lumen" bench -m "$model" -p "$p" -n "$n" "${pgargs[@]}" -t "$t" -r "$reps" -o csv | tail -n +2 >> "$tmp/lumen.csv"
  if [ -n "$llama" ]; then
    # Keep llama-bench's csv header once: its columns are found by name.
    "$llama" -m "$model" -p "$p" -n "$n" "${pgargs[@]}" -t "$t" -r "$reps" -o csv 2>/dev/null |
      if [ -s "$tmp/llama.csv" ]; then tail -n +2; else cat; fi >> "$tmp/llama.csv"
  fi
done
echo "| threads | test | Lumen t/s | llama.cpp t/s | ratio | Lumen weight GB/s | read probe GB/s |"
echo "|---|---|---|---|---|---|---|"
# Lumen csv: model,threads,test,tps_mean,tps_sd,weight_gbs,read_probe_gbs,gops
while IFS=, read -r _ th test mean sd wgbs probe _; do
  ref="-"; ratio="-"
  if [ -s "$tmp/llama.csv" ]; then
    # llama-bench csv: n_prompt, n_gen, n_threads and avg_ts columns, by header name.
    ref=$(awk -F, -v th="$th" -v test="$test" '
      NR == 1 { for (i = 1; i <= NF; i++) { gsub(/"/, "", $i); col[$i] = i }; next }
      { gsub(/"/, ""); np = $col["n_prompt"]; ng = $col["n_gen"]
        name = (np > 0 && ng > 0 ? "pp" np "+tg" ng : np > 0 ? "pp" np : "tg" ng)
        if ($col["n_threads"] == th && name == test) print $col["avg_ts"] }' "$tmp/llama.csv" | head -1)
    [ -n "$ref" ] && ratio=$(awk -v a="$mean" -v b="$ref" 'BEGIN { printf "%.2fx", a / b }')
  fi
  echo "| $th | $test | $mean ± $sd | ${ref:--} | $ratio | $wgbs | $probe |"
done < "$tmp/lumen.csv"
