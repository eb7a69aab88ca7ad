#!/usr/bin/env bash
# ctest: `lumen-jit serve` on a free loopback port with an API key, then
#  - clients: the official openai npm client (openai_client_test.mjs) and
#    curl (the raw SSE framing), then SIGTERM mid-stream: the stream ends,
#    the server exits 0;
#  - page: the chat page in headless Chromium (chat_page_test.mjs).
#
#   serve_clients_test.sh LUMEN_JIT MODEL CLIENTS_DIR clients|page
#
# Skips (77) without the model, the installed clients or Chromium, except in CI.
set -uo pipefail
jit="$1" model="$2" clients="$3" mode="$4"
skip() { echo "$1"; if [ "${CI:-}" = true ]; then exit 1; fi; exit 77; }
[ -f "$model" ] || skip "no $model (../shared/fixtures next to the checkout)"
[ -d "$clients/node_modules/openai" ] || skip "the openai npm package is not in $clients (scripts/test.sh installs it)"
command -v node >/dev/null || skip "no node"
if [ "$mode" = page ]; then
  chromium="$(command -v chromium || true)"
  [ -n "$chromium" ] || skip "no chromium (scripts/test.sh installs Debian's)"
  [ -d "$clients/node_modules/puppeteer-core" ] || skip "puppeteer-core is not in $clients"
fi

log="$(mktemp)"
"$jit" serve -m "$model" --port 0 --parallel 2 -c 1024 -t 2 --api-key sk-lumen-test --alias tiny 2>"$log" &
pid=$!
trap 'kill -9 $pid 2>/dev/null; rm -f "$log"' EXIT
port=""
for _ in $(seq 1 600); do
  port="$(grep -o 'http://127.0.0.1:[0-9]*' "$log" | head -1 | sed 's/.*://')"
  [ -n "$port" ] && curl -sf "http://127.0.0.1:$port/health" >/dev/null && break
  kill -0 $pid 2>/dev/null || { cat "$log"; echo "the server exited"; exit 1; }
  sleep 0.1
done
url="http://127.0.0.1:$port"
fail() { echo "FAIL: $*"; cat "$log"; exit 1; }

if [ "$mode" = page ]; then
  node "$clients/chat_page_test.mjs" "$url" sk-lumen-test "$chromium" || fail "the chat page"
  exit 0
fi

node "$clients/openai_client_test.mjs" "$url" sk-lumen-test || fail "the openai client checks"

# Raw SSE: every event one 'data: ' line and a blank line, the last [DONE].
auth=(-H "Authorization: Bearer sk-lumen-test")
body='{"messages":[{"role":"user","content":"Hi"}],"max_tokens":5,"temperature":0,"stream":true,"stream_options":{"include_usage":true}}'
headers="$(mktemp)"
sse="$(mktemp)"
curl -sN -D "$headers" "${auth[@]}" "$url/v1/chat/completions" -d "$body" > "$sse"
grep -qi '^content-type: text/event-stream' "$headers" || fail "SSE content type: $(cat "$headers")"
rm -f "$headers"
python3 - "$sse" <<'PY' || fail "SSE framing"
import json, sys
text = open(sys.argv[1], encoding="utf-8").read()
assert text.endswith("\n\n"), "events end with a blank line"
events = text[:-2].split("\n\n")
assert all(e.startswith("data: ") and "\n" not in e for e in events), events
assert events[-1] == "data: [DONE]", events[-1]
chunks = [json.loads(e[6:]) for e in events[:-1]]
assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] >= 1
assert chunks[-2]["choices"][0]["finish_reason"] in ("stop", "length")
assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
print("ok SSE framing:", len(events), "events")
PY
rm -f "$sse"
[ "$(curl -s -o /dev/null -w '%{http_code}' "$url/v1/models")" = 401 ] || fail "no key: 401"
[ "$(curl -s -o /dev/null -w '%{http_code}' "$url/health")" = 200 ] || fail "/health needs no key"
[ "$(curl -s -o /dev/null -w '%{http_code}' "${auth[@]}" "$url/v1/chat/completions" -d '{"messages":')" = 400 ] || fail "malformed JSON: 400"

# A stream in flight when SIGTERM comes ends with an error event and [DONE]; exit 0.
long='{"messages":[{"role":"user","content":"Hi"}],"max_tokens":100000,"ignore_eos":true,"stream":true}'
out="$(mktemp)"
curl -sN "${auth[@]}" "$url/v1/chat/completions" -d "$long" > "$out" &
curlpid=$!
sleep 1
kill -TERM $pid
wait $pid
rc=$?
wait $curlpid
tail -c 200 "$out" | grep -q 'data: \[DONE\]' || fail "the stream did not end with [DONE] at SIGTERM: $(tail -c 300 "$out")"
rm -f "$out"
[ $rc -eq 0 ] || fail "exit status $rc after SIGTERM"
grep -q "served" "$log" || fail "no summary at exit"
echo "ok SIGTERM: streams ended, exit 0"
