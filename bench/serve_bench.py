#!/usr/bin/env python3
"""Aggregate generation speed and time to first token of an OpenAI-compatible
server under 1, 2, 4, 8 concurrent streams (python3's standard library only).

    bench/serve_bench.py URL [--streams 1,2,4,8] [--tokens 64] [--rounds 3] [--json]

Each round starts N clients at once; each streams one chat completion of
--tokens tokens (greedy, ignore_eos, a prompt of its own) and records when its
first content arrives and when it ends; its tokens are the usage the server
reports (stream_options.include_usage), else its content chunks. Aggregate tokens/s = all tokens of the
round / the round's wall time; TTFT p50/p99 over every request of every round.
The median round is reported. Works against lumen-jit serve and llama-server
alike (bench/serve_compare.sh runs both on one file).
"""
import argparse
import http.client
import json
import statistics
import threading
import time
import urllib.parse


def stream_one(url, tokens, prompt, out):
    u = urllib.parse.urlparse(url)
    body = json.dumps({
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": tokens, "temperature": 0, "ignore_eos": True, "stream": True,
        "stream_options": {"include_usage": True},
    })
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=600)
    start = time.perf_counter()
    conn.request("POST", "/v1/chat/completions", body, {"Content-Type": "application/json"})
    resp = conn.getresponse()
    if resp.status != 200:
        raise RuntimeError(f"HTTP {resp.status}: {resp.read()[:200]!r}")
    first, count, usage, buf = None, 0, None, b""
    while True:
        chunk = resp.read1(65536)
        if not chunk:
            break
        buf += chunk
        while b"\n\n" in buf:
            event, buf = buf.split(b"\n\n", 1)
            if not event.startswith(b"data: ") or event == b"data: [DONE]":
                continue
            data = json.loads(event[6:])
            if data.get("usage"):
                usage = data["usage"].get("completion_tokens")
            for choice in data.get("choices", []):
                if choice.get("delta", {}).get("content"):
                    count += 1  # One content chunk a token (both servers stream token by token).
                    if first is None:
                        first = time.perf_counter()
    end = time.perf_counter()
    conn.close()
    # The server's own count where it gives one: a token whose text is empty
    # (part of a UTF-8 character, a control token) sends no content chunk.
    out.append({"ttft": (first or end) - start, "tokens": usage if usage is not None else count,
                "start": start, "end": end})


def round_of(url, streams, tokens, seed):
    results, errors, threads = [], [], []

    def client(prompt):
        try:
            stream_one(url, tokens, prompt, results)
        except (OSError, RuntimeError) as e:
            errors.append(e)

    for i in range(streams):
        prompt = f"Request {seed}-{i}: write a long story about the number {i * 7919 + seed}."
        threads.append(threading.Thread(target=client, args=(prompt,)))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors or len(results) != streams:
        raise RuntimeError(f"a request to {url} failed: {errors[0] if errors else 'no answer'}")
    wall = max(r["end"] for r in results) - min(r["start"] for r in results)
    return sum(r["tokens"] for r in results) / wall, [r["ttft"] for r in results], \
        sum(r["tokens"] for r in results) / streams


def percentile(values, p):
    v = sorted(values)
    return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("--streams", default="1,2,4,8")
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    rows = []
    round_of(a.url, 1, 8, 999)  # Warm-up.
    for n in [int(x) for x in a.streams.split(",")]:
        aggs, ttfts, per = [], [], []
        for r in range(a.rounds):
            agg, t, tok = round_of(a.url, n, a.tokens, r)
            aggs.append(agg)
            ttfts += t
            per.append(tok)
        rows.append({"streams": n, "aggregate_tps": statistics.median(aggs),
                     "ttft_p50_ms": 1000 * percentile(ttfts, 50), "ttft_p99_ms": 1000 * percentile(ttfts, 99),
                     "tokens_per_request": statistics.median(per)})
    if a.json:
        print(json.dumps(rows))
        return
    print("| streams | aggregate tok/s | TTFT p50 ms | TTFT p99 ms | tokens/request |")
    print("|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['streams']} | {r['aggregate_tps']:.1f} | {r['ttft_p50_ms']:.0f} | {r['ttft_p99_ms']:.0f} | "
              f"{r['tokens_per_request']:.0f} |")


if __name__ == "__main__":
    try:
        main()
    except (OSError, RuntimeError) as e:  # No server there, or a request it refused.
        raise SystemExit(f"serve_bench.py: {e}")
