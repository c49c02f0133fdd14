#!/usr/bin/env bash
# Model speed in one run: corral-models and candle-transformers (`cargo bench -p
# corral-models --bench generation`, which also measures batched decode), then llama.cpp
# through llama-cpp-python on the same GGUF, prompt ids and thread count (2 unless
# RAYON_NUM_THREADS says otherwise). llama-cpp-python is built into target/bench-venv on
# first use, as in scripts/bench-serve.sh. Usage: bash scripts/bench-models.sh [--runs N]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
runs=5
[ "${1:-}" = "--runs" ] && runs=$2
threads=${RAYON_NUM_THREADS:-$(nproc)}
bash scripts/fetch-model.sh
model="$root/models/SmolLM2-135M-Instruct.Q4_1.gguf"
venv="${LLAMACPP_VENV:-$root/target/bench-venv}"
if ! "$venv/bin/python" -c "import llama_cpp" 2>/dev/null; then
  echo "building llama-cpp-python: run scripts/bench-serve.sh once, or see it for the flags" >&2
  bash scripts/bench-serve.sh --reps 1 --rounds 1 >/dev/null
fi
out=$(mktemp)
trap 'rm -f "$out"' EXIT
RAYON_NUM_THREADS=$threads cargo bench -p corral-models --bench generation -- \
  --runs "$runs" --prompt 128 --decode 128 2>/dev/null >"$out"
sed -n '1,4p' "$out"
"$venv/bin/python" scripts/bench_llamacpp.py --model "$model" --threads "$threads" \
  --runs "$runs" --prompt 128 --decode 128
sed -n '5,$p' "$out"
