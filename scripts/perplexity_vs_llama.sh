#!/usr/bin/env bash
# lumen-jit perplexity against llama.cpp's llama-perplexity on the same file
# and text: both estimates, their times, and whether they agree within 2 %.
#
#   scripts/perplexity_vs_llama.sh LLAMA_CPP_DIR MODEL.gguf TEXT [-c 512] [--chunks K] [-t THREADS]
#
# LLAMA_CPP_DIR: a llama.cpp checkout beside the repo, built with
# `cmake --build build --target llama-perplexity`. Extra flags go to both.
# LUMEN_JIT overrides the lumen-jit binary.
set -euo pipefail
usage="usage: scripts/perplexity_vs_llama.sh LLAMA_CPP_DIR MODEL.gguf TEXT [-c 512] [--chunks K] [-t THREADS]"
[ $# -ge 3 ] || { echo "$usage" >&2; exit 2; }
here="$(cd "$(dirname "$0")/.." && pwd)"
llama_bin="$1/build/bin/llama-perplexity"; model="$2"; text="$3"; shift 3
lumen="${LUMEN_JIT:-$here/build/tools/lumen-jit/lumen-jit}"
[ -x "$lumen" ] || { echo "perplexity_vs_llama.sh: build lumen-jit first ($lumen)" >&2; exit 1; }
[ -x "$llama_bin" ] || { echo "perplexity_vs_llama.sh: no llama-perplexity at $llama_bin (LLAMA_CPP_DIR: a llama.cpp" \
  "checkout built with 'cmake --build build --target llama-perplexity'); $usage" >&2; exit 1; }
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
# Each side's own messages are shown when it fails (the progress bars are not, otherwise).
why() { grep -iE "error|need|fail|invalid" "$log" >&2 || tail -n 5 "$log" >&2; }
start=$(date +%s.%N)
ours=$("$lumen" perplexity -m "$model" -f "$text" "$@" 2>"$log") || {
  echo "perplexity_vs_llama.sh: lumen-jit perplexity failed:" >&2; why; exit 1; }
mid=$(date +%s.%N)
"$llama_bin" -m "$model" -f "$text" "$@" >"$log" 2>&1 || {
  echo "perplexity_vs_llama.sh: llama-perplexity failed:" >&2; why; exit 1; }
theirs=$(grep "Final estimate" "$log") || {
  echo "perplexity_vs_llama.sh: llama-perplexity printed no final estimate:" >&2; why; exit 1; }
end=$(date +%s.%N)
printf 'lumen-jit:        %s  [%.2f s with loading]\n' "$ours" "$(echo "$mid - $start" | bc)"
printf 'llama-perplexity: %s  [%.2f s with loading]\n' "$theirs" "$(echo "$end - $mid" | bc)"
python3 - "$ours" "$theirs" <<'PY'
import re, sys
a, b = (float(re.search(r"PPL = ([0-9.]+)", s).group(1)) for s in sys.argv[1:3])
d = a / b - 1
print(f"difference {100 * d:+.2f} %: {'ok' if abs(d) <= 0.02 else 'FAILS'} (within 2 %)")
sys.exit(0 if abs(d) <= 0.02 else 1)
PY
