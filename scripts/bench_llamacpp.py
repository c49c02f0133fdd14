"""llama.cpp (through llama-cpp-python) on the same GGUF, the same prompt ids and the same
thread count as `cargo bench -p corral-models --bench generation`: prefill tok/s of a
`--prompt`-token prompt, then greedy decode tok/s over `--decode` steps, median of `--runs`.
Run by scripts/bench-models.sh."""
import argparse
import statistics

from llamacpp_runs import greedy_runs, open_model

p = argparse.ArgumentParser()
p.add_argument("--model", required=True)
p.add_argument("--threads", type=int, default=2)
p.add_argument("--runs", type=int, default=5)
p.add_argument("--prompt", type=int, default=128)
p.add_argument("--decode", type=int, default=64)
args = p.parse_args()

llm = open_model(args.model, args.threads, args.prompt + args.decode + 8)
# The same deterministic prompt as the Rust bench.
prompt = [100 + (i * 7919) % 48000 for i in range(args.prompt)]
runs = greedy_runs(llm, prompt, args.decode, args.runs)
print(
    f"{'llama.cpp (python 0.3.36)':<28} {statistics.median(r[0] for r in runs):>14.1f} "
    f"{statistics.median(r[1] for r in runs):>14.1f}"
)
