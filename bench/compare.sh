#!/usr/bin/env bash
# Lumen against llama.cpp on the same GGUF, side by side in one run.
#
#   bench/compare.sh MODEL.gguf [LLAMA_BENCH] [-p 512] [-n 128] [-pg P,N] [-t 1,2] [-r 3]
#
# With a llama-bench path, every repetition is a pair of runs, one of each
# (`-r 1`, each after its own warm-up), back to back at each thread count,
# the order swapped every repetition (ABBA): the host's speed drifts over
# minutes (docs/BENCHMARK.md), so both sides sample the same minutes. Prints
# mean ± sd over the repetitions, the ratio of the means (Lumen / llama.cpp)
# and each pair's own ratio. Without it, one `lumen-jit bench -r R` a thread
# count. LUMEN_JIT overrides the lumen-jit binary; LLAMA_BENCH_ARGS adds
# words to the llama-bench command (e.g. "-rtr 1": ik_llama.cpp's run-time
# repacking), LUMEN_BENCH_ARGS to lumen-jit's (e.g. "--kernel-cache DIR").
# LUMEN_BASELINE_ARGS (e.g. "--no-wisdom": the kernel table against the
# tuned kernels) adds a third run to every pair, lumen-jit with those words
# too, and columns for it and for Lumen's ratio to it.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
lumen="${LUMEN_JIT:-$here/build/tools/lumen-jit/lumen-jit}"
usage="usage: bench/compare.sh MODEL.gguf [LLAMA_BENCH] [-p N] [-n N] [-pg P,N] [-t LIST] [-r N]"
model="${1:?$usage}"
shift
llama=""
if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then llama="$1"; shift; fi
p=512 n=128 pg="" threads=1,2 reps=3
while [ $# -gt 0 ]; do
  [ $# -ge 2 ] || { echo "compare.sh: $1 needs a value; $usage" >&2; exit 2; }
  case "$1" in
    -p) p="$2" ;;
    -n) n="$2" ;;
    -pg) pg="$2" ;;
    -t) threads="$2" ;;
    -r) reps="$2" ;;
    *) echo "compare.sh: unknown argument $1; $usage" >&2; exit 2 ;;
  esac
  shift 2
done
case "$reps" in '' | *[!0-9]* | 0) echo "compare.sh: -r must be a positive integer" >&2; exit 2 ;; esac
[ -f "$model" ] || { echo "compare.sh: no such model file: $model" >&2; exit 1; }
[ -x "$lumen" ] || { echo "compare.sh: build lumen-jit first ($lumen)" >&2; exit 1; }
[ -z "$llama" ] || [ -x "$llama" ] || { echo "compare.sh: not an executable: $llama" >&2; exit 1; }
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
pgargs=()
[ -n "$pg" ] && pgargs=(-pg "$pg")

# Appends "rep,threads,test,tps,sd,weight_gbs,probe_gbs" lines for each row.
run_lumen() { # rep threads reps [extra words] [output]
  # shellcheck disable=SC2086 # The ARGS variables are words.
  "$lumen" bench -m "$model" -p "$p" -n "$n" "${pgargs[@]}" -t "$2" -r "$3" -o csv ${LUMEN_BENCH_ARGS:-} ${4:-} > "$tmp/out.csv"
  # model,threads,test,tps_mean,tps_sd,weight_gbs,read_probe_gbs,gops
  awk -F, -v rep="$1" 'NR > 1 { print rep "," $2 "," $3 "," $4 "," $5 "," $6 "," $7 }' "$tmp/out.csv" >> "$tmp/${5:-lumen}.csv"
}
run_baseline() { # rep threads
  [ -z "${LUMEN_BASELINE_ARGS:-}" ] || run_lumen "$1" "$2" 1 "$LUMEN_BASELINE_ARGS" baseline
}
# Appends "rep,threads,test,tps" lines, llama-bench's columns found by name.
run_llama() { # rep threads
  local before
  before=$(wc -l < "$tmp/llama.csv")
  # shellcheck disable=SC2086 # LLAMA_BENCH_ARGS is words.
  "$llama" -m "$model" -p "$p" -n "$n" "${pgargs[@]}" -t "$2" -r 1 -o csv ${LLAMA_BENCH_ARGS:-} 2>/dev/null > "$tmp/out.csv" ||
    { echo "compare.sh: $llama failed" >&2; exit 1; }
  # Fields may be quoted and hold commas (ik_llama.cpp's "-1,0"): split by hand.
  awk -v rep="$1" '
    function split_csv(line, f,    n, i, c, q, cur) {
      n = 0; q = 0; cur = ""
      for (i = 1; i <= length(line); i++) {
        c = substr(line, i, 1)
        if (c == "\"") q = !q
        else if (c == "," && !q) { f[++n] = cur; cur = "" }
        else cur = cur c }
      f[++n] = cur
      return n }
    NR == 1 { n = split_csv($0, h); for (i = 1; i <= n; i++) col[h[i]] = i
              if (!("n_prompt" in col && "n_gen" in col && "n_threads" in col && "avg_ts" in col)) exit 1
              next }
    { split_csv($0, f); np = f[col["n_prompt"]]; ng = f[col["n_gen"]]
      name = (np > 0 && ng > 0 ? "pp" np "+tg" ng : np > 0 ? "pp" np : "tg" ng)
      print rep "," f[col["n_threads"]] "," name "," f[col["avg_ts"]] }' "$tmp/out.csv" >> "$tmp/llama.csv" ||
    { echo "compare.sh: unexpected llama-bench csv (no n_prompt/n_gen/n_threads/avg_ts columns)" >&2; exit 1; }
  [ "$(wc -l < "$tmp/llama.csv")" -gt "$before" ] || { echo "compare.sh: $llama printed no results" >&2; exit 1; }
}

echo "# Lumen vs llama.cpp: $(basename "$model"), pp$p / tg$n${pg:+ / pg $pg}, threads $threads, $reps reps, $(date -u '+%F %H:%M') UTC"
echo
: > "$tmp/lumen.csv"
: > "$tmp/llama.csv"
: > "$tmp/baseline.csv"
if [ -z "$llama" ]; then
  for t in ${threads//,/ }; do run_lumen 1 "$t" "$reps"; done
else
  for ((r = 1; r <= reps; r++)); do
    for t in ${threads//,/ }; do
      if ((r % 2)); then run_lumen "$r" "$t" 1; run_baseline "$r" "$t"; run_llama "$r" "$t"
      else run_llama "$r" "$t"; run_baseline "$r" "$t"; run_lumen "$r" "$t" 1; fi
    done
  done
fi

if [ -n "${LUMEN_BASELINE_ARGS:-}" ] && [ -n "$llama" ]; then
  echo "Baseline: lumen-jit with '$LUMEN_BASELINE_ARGS'."
  echo
  echo "| threads | test | Lumen t/s | baseline t/s | Lumen / baseline | llama.cpp t/s | ratio | ratio by pair | Lumen weight GB/s | read probe GB/s | of probe |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|"
else
  echo "| threads | test | Lumen t/s | llama.cpp t/s | ratio | ratio by pair | Lumen weight GB/s | read probe GB/s | of probe |"
  echo "|---|---|---|---|---|---|---|---|---|"
fi
awk -F, '
  function msd(sum, sq, cnt,    mean, var) {
    mean = sum / cnt; var = cnt > 1 ? (sq - cnt * mean * mean) / (cnt - 1) : 0
    return sprintf("%.2f ± %.2f", mean, sqrt(var > 0 ? var : 0)) }
  FILENAME == ARGV[1] { key = $2 SUBSEP $3; ref[key, $1] = $4; next }
  FILENAME == ARGV[2] { key = $2 SUBSEP $3; bk[key]++; bs[key] += $4; bq[key] += $4 * $4; next }
  { key = $2 SUBSEP $3
    if (!(key in k)) { order[++rows] = key; th[key] = $2; test[key] = $3 }
    k[key]++; s[key] += $4; q[key] += $4 * $4; sd[key] = $5; w[key] += $6; pr[key] += $7
    if ((key, $1) in ref) { rk[key]++; rs[key] += ref[key, $1]; rq[key] += ref[key, $1] ^ 2
                            pairs[key] = pairs[key] sprintf("%s%.2f", rk[key] > 1 ? " " : "", $4 / ref[key, $1]) } }
  END { for (i = 1; i <= rows; i++) { key = order[i]
          lumen = k[key] > 1 ? msd(s[key], q[key], k[key]) : sprintf("%.2f ± %.2f", s[key], sd[key])
          llama = "-"; ratio = "-"; byp = "-"
          if (rk[key]) { llama = msd(rs[key], rq[key], rk[key])
                         ratio = sprintf("%.2fx", (s[key] / k[key]) / (rs[key] / rk[key])); byp = pairs[key] }
          base = ""
          if (bk[key]) base = sprintf(" %s | %.2fx |", msd(bs[key], bq[key], bk[key]), (s[key] / k[key]) / (bs[key] / bk[key]))
          printf "| %s | %s | %s |%s %s | %s | %s | %.1f | %.1f | %.0f%% |\n", th[key], test[key], lumen, base, llama, ratio,
                 byp, w[key] / k[key], pr[key] / k[key], (pr[key] > 0 ? 100 * w[key] / pr[key] : 0) } }' \
  "$tmp/llama.csv" "$tmp/baseline.csv" "$tmp/lumen.csv"
