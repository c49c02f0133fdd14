"""llama.cpp (through llama-cpp-python) on the same GGUF, the same prompt ids and the same
thread count as `cargo bench -p corral-models --bench generation`: prefill tok/s of a
`--prompt`-token prompt, then greedy decode tok/s over `--decode` steps, median of `--runs`.
Run by scripts/bench-models.sh."""
import argparse
import statistics
import time

import numpy as np
from llama_cpp import Llama

p = argparse.ArgumentParser()
p.add_argument("--model", required=True)
p.add_argument("--threads", type=int, default=2)
p.add_argument("--runs", type=int, default=5)
p.add_argument("--prompt", type=int, default=128)
p.add_argument("--decode", type=int, default=64)
args = p.parse_args()

llm = Llama(
    model_path=args.model,
    n_threads=args.threads,
    n_threads_batch=args.threads,
    n_ctx=args.prompt + args.decode + 8,
    n_batch=512,
    verbose=False,
)
# The same deterministic prompt as the Rust bench.
prompt = [100 + (i * 7919) % 48000 for i in range(args.prompt)]
prefill, decode = [], []
for run in range(args.runs + 1):
    llm.reset()
    t = time.perf_counter()
    llm.eval(prompt)
    p_s = time.perf_counter() - t
    t = time.perf_counter()
    for _ in range(args.decode):
        nxt = int(np.argmax(llm.scores[llm.n_tokens - 1]))
        llm.eval([nxt])
    d_s = time.perf_counter() - t
    if run > 0:  # the first run warms up
        prefill.append(args.prompt / p_s)
        decode.append(args.decode / d_s)
print(
    f"{'llama.cpp (python 0.3.36)':<28} {statistics.median(prefill):>14.1f} "
    f"{statistics.median(decode):>14.1f}"
)
