#!/usr/bin/env bash
# Model speed in one run: corral-models and candle-transformers (`cargo bench -p
# corral-models --bench generation`, which also measures batched decode), then llama.cpp
# through llama-cpp-python on the same GGUF, prompt ids and thread count (2 unless
# RAYON_NUM_THREADS says otherwise). llama-cpp-python is built into target/bench-venv on
# first use, as in scripts/bench-serve.sh.
#
# Usage: bash scripts/bench-models.sh [--runs N] [--formats]
# With --formats, the same comparison also runs on Q8_0, Q4_0 and Q4_K versions of SmolLM2
# (written next to it by the `requantize` example, with candle's quantizer; Q4_K only where
# the shapes allow — SmolLM2's 576-wide matrices keep Q4_1, its FFN down projection is Q4_K).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
runs=5 formats=no
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) runs=$2; shift 2 ;;
    --formats) formats=yes; shift ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
threads=${RAYON_NUM_THREADS:-$(nproc)}
bash scripts/fetch-model.sh
base="$root/models/SmolLM2-135M-Instruct"
models=("$base.Q4_1.gguf")
if [ "$formats" = yes ]; then
  for t in Q8_0 Q4_0 Q4_K; do
    if [ ! -f "$base.$t.gguf" ]; then
      cargo run --release -q -p corral-models --example requantize -- \
        "$base.Q4_1.gguf" "$base.$t.gguf.tmp" "$t" && mv "$base.$t.gguf.tmp" "$base.$t.gguf"
    fi
    models+=("$base.$t.gguf")
  done
fi
venv="${LLAMACPP_VENV:-$root/target/bench-venv}"
if ! "$venv/bin/python" -c "import llama_cpp" 2>/dev/null; then
  echo "building llama-cpp-python: run scripts/bench-serve.sh once, or see it for the flags" >&2
  bash scripts/bench-serve.sh --reps 1 --rounds 1 >/dev/null
fi
bench=$(cargo bench -p corral-models --bench generation --no-run 2>&1 \
  | grep -o 'target/release/deps/generation-[0-9a-f]*' | head -1)
simd=$(grep -q avx512_vnni /proc/cpuinfo && echo "AVX-512 VNNI" || echo "AVX2 or less")
echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs) ($simd); corral kernel: ${CORRAL_KERNEL:-detected}"
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for model in "${models[@]}"; do
  echo
  RAYON_NUM_THREADS=$threads "$bench" --model "$model" --runs "$runs" --prompt 128 --decode 128 \
    >"$out"
  sed -n '1,4p' "$out"
  "$venv/bin/python" scripts/bench_llamacpp.py --model "$model" --threads "$threads" \
    --runs "$runs" --prompt 128 --decode 128
  sed -n '5,$p' "$out"
done
