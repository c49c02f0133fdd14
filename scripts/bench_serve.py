"""Serving benchmark through the real `openai` client (streamed requests).

  concurrency: JSON-mode requests on one server at several concurrency levels: aggregate
               completion tok/s, p50/p99 time to first token, p50 per-token latency.
  compare:     the 8-property JSON request and the same prompt as plain chat, one at a time,
               on each server given (e.g. corral and llama.cpp's server): generation-phase
               tok/s = (tokens after the first) / (time from the first to the last chunk).

Driven by scripts/bench-serve.sh, which starts the servers.
"""
import argparse
import json
import pathlib
import statistics
import threading
import time

import openai

# The 8-property request of benches/json_mode.rs.
SCHEMA = json.loads(
    (pathlib.Path(__file__).parent.parent / "examples/common/bench_schema.json").read_text()
)
SYSTEM = "You are a helpful assistant that answers in JSON."
NAMES = ["Alice", "Bob", "Carol", "Dave", "Erin", "Frank", "Grace", "Heidi"]


STORY = (
    "Write a story of about 100 words about a user named Alice, who lives in 42, "
    "Wonderland Avenue."
)


def messages(name="Alice", with_schema=False, story=False):
    system = SYSTEM
    if with_schema:
        # What corral's JSON mode puts in the prompt, so plain chat sees the same prompt.
        system += "\n\nAnswer in JSON that conforms to this JSON Schema:\n" + json.dumps(
            SCHEMA, separators=(",", ":")
        )
    return [
        {"role": "system", "content": system},
        {
            "role": "user",
            "content": STORY
            if story
            else f"Create a user named {name}, who lives in 42, Wonderland Avenue.",
        },
    ]


def stream_one(client, model, msgs, response_format=None, max_tokens=400):
    """One streamed request: (time to first token, first-to-last seconds, content chunks, text,
    finish reason)."""
    kwargs = {}
    if response_format is not None:
        kwargs["response_format"] = response_format
    start = time.perf_counter()
    first = last = None
    chunks = 0
    text = ""
    finish = None
    for chunk in client.chat.completions.create(
        model=model, messages=msgs, temperature=0, max_tokens=max_tokens, stream=True, **kwargs
    ):
        for choice in chunk.choices:
            if choice.delta.content:
                now = time.perf_counter()
                first = first or now
                last = now
                chunks += 1
                text += choice.delta.content
            finish = choice.finish_reason or finish
    return (first - start, last - first, chunks, text, finish)


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def concurrency(args):
    client = openai.OpenAI(base_url=args.base, api_key="dummy-key", max_retries=0, timeout=600)
    fmt = {"type": "json_object", "schema": SCHEMA}
    stream_one(client, args.model, messages(), fmt)  # compile + warm up
    print("| concurrent | requests | complete | aggregate tok/s | TTFT p50 ms | TTFT p99 ms | per-token p50 ms |")
    print("|---|---|---|---|---|---|---|")
    for level in [int(x) for x in args.levels.split(",")]:
        total = max(level * args.rounds, level)
        results, lock = [], threading.Lock()
        todo = list(range(total))

        def worker():
            while True:
                with lock:
                    if not todo:
                        return
                    i = todo.pop()
                r = stream_one(client, args.model, messages(NAMES[i % len(NAMES)]), fmt)
                with lock:
                    results.append(r)

        start = time.perf_counter()
        threads = [threading.Thread(target=worker) for _ in range(level)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - start
        tokens = sum(r[2] for r in results)
        ttft = [r[0] * 1000 for r in results]
        per_token = [r[1] * 1000 / (r[2] - 1) for r in results if r[2] > 1]
        complete = 0
        for r in results:
            if r[4] == "stop":
                json.loads(r[3])  # a complete answer is a complete JSON document
                complete += 1
        print(
            f"| {level} | {total} | {complete} | {tokens / wall:.1f} | {pct(ttft, 50):.0f} "
            f"| {pct(ttft, 99):.0f} | {statistics.median(per_token):.1f} |"
        )


def compare(args):
    fmt = {"type": "json_object", "schema": SCHEMA}
    modes = [
        ("json", messages(), fmt, 400),
        # Plain chat: the same system prompt (schema included), a request for ~100 words,
        # cut at about the JSON answer's length.
        ("plain", messages(with_schema=True, story=True), None, 110),
    ]
    servers = []
    for spec in args.server:
        label, base, model = spec.split("=", 2)
        client = openai.OpenAI(base_url=base, api_key="dummy-key", max_retries=0, timeout=600)
        for _, msgs, rf, limit in modes:
            stream_one(client, model, msgs, rf, limit)  # warm-up (schema compile, caches)
        servers.append((label, client, model, {m[0]: ([], []) for m in modes}))
    # Interleaved: each repetition runs every server and mode once, so drift in the
    # machine's speed affects all alike.
    for _ in range(args.reps):
        for label, client, model, samples in servers:
            for mode, msgs, rf, limit in modes:
                ttft, span, chunks, text, finish = stream_one(client, model, msgs, rf, limit)
                if mode == "json":
                    json.loads(text)
                samples[mode][0].append((chunks - 1) / span)
                samples[mode][1].append(chunks)
    rows = [
        (label, {m: (statistics.median(r), statistics.median(c)) for m, (r, c) in samples.items()})
        for label, _, _, samples in servers
    ]
    print("| server | JSON mode tok/s | plain chat tok/s | JSON / plain | chunks (json, plain) |")
    print("|---|---|---|---|---|")
    for label, r in rows:
        print(
            f"| {label} | {r['json'][0]:.1f} | {r['plain'][0]:.1f} | {r['json'][0] / r['plain'][0]:.2f} "
            f"| {r['json'][1]:.0f}, {r['plain'][1]:.0f} |"
        )
    if len(rows) == 2:
        (a, ra), (b, rb) = rows
        print(f"\n{a} JSON mode / {b} JSON mode: {ra['json'][0] / rb['json'][0]:.2f}x")
        print(f"{a} plain / {b} plain: {ra['plain'][0] / rb['plain'][0]:.2f}x")


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("concurrency")
    c.add_argument("--base", required=True)
    c.add_argument("--model", required=True)
    c.add_argument("--levels", default="1,4,16")
    c.add_argument("--rounds", type=int, default=2, help="requests per level = level x rounds")
    c.set_defaults(run=concurrency)
    m = sub.add_parser("compare")
    m.add_argument("--server", action="append", required=True, help="LABEL=BASE_URL=MODEL")
    m.add_argument("--reps", type=int, default=5)
    m.set_defaults(run=compare)
    args = p.parse_args()
    args.run(args)


if __name__ == "__main__":
    main()
