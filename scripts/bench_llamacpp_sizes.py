"""llama.cpp (through llama-cpp-python) on a large GGUF file, as `cargo bench -p corral-models
--bench sizes` measures corral: load time (memory-mapped, as llama.cpp does by default),
resident memory after loading, and greedy decode tok/s over `--decode` steps after a
`--prompt`-token prompt (median of `--runs`, after one warm-up run). Run by
scripts/bench-sizes.sh."""
import argparse
import statistics
import time

import numpy as np
from llama_cpp import Llama


def resident_gib():
    status = open("/proc/self/status").read()
    field = lambda key: int(status.split(key)[1].split()[0]) / (1 << 20)
    return field("VmRSS:"), field("VmHWM:")


p = argparse.ArgumentParser()
p.add_argument("--model", required=True)
p.add_argument("--threads", type=int, default=2)
p.add_argument("--runs", type=int, default=3)
p.add_argument("--prompt", type=int, default=16)
p.add_argument("--decode", type=int, default=16)
args = p.parse_args()

t = time.perf_counter()
llm = Llama(
    model_path=args.model,
    n_threads=args.threads,
    n_threads_batch=args.threads,
    n_ctx=args.prompt + args.decode + 8,
    n_batch=512,
    verbose=False,
)
load = time.perf_counter() - t
rss, peak = resident_gib()
vocab = llm.n_vocab()
prompt = [300 + (i * 7919) % (vocab - 300) for i in range(args.prompt)]
rates = []
for run in range(args.runs + 1):
    llm.reset()
    llm.eval(prompt)
    t = time.perf_counter()
    for _ in range(args.decode):
        nxt = int(np.argmax(llm.scores[llm.n_tokens - 1]))
        llm.eval([nxt])
    if run > 0:
        rates.append(args.decode / (time.perf_counter() - t))
print(
    f"llama.cpp       load {load:.2f} s   resident {rss:.2f} GiB (peak {peak:.2f})   "
    f"decode {statistics.median(rates):.2f} tok/s"
)
