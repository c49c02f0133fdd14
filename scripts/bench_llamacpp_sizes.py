"""llama.cpp (through llama-cpp-python) on a large GGUF file, as `cargo bench -p corral-models
--bench sizes` measures corral: load time (memory-mapped, as llama.cpp does by default),
resident memory after loading, and greedy decode tok/s over `--decode` steps after a
`--prompt`-token prompt (median of `--runs`, after one warm-up run). Run by
scripts/bench-sizes.sh."""
import argparse
import statistics
import time

from llamacpp_runs import greedy_runs, open_model


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
llm = open_model(args.model, args.threads, args.prompt + args.decode + 8)
load = time.perf_counter() - t
rss, peak = resident_gib()
vocab = llm.n_vocab()
prompt = [300 + (i * 7919) % (vocab - 300) for i in range(args.prompt)]
runs = greedy_runs(llm, prompt, args.decode, args.runs)
print(
    f"llama.cpp       load {load:.2f} s   resident {rss:.2f} GiB (peak {peak:.2f})   "
    f"decode {statistics.median(r[1] for r in runs):.2f} tok/s"
)
