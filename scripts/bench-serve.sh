#!/usr/bin/env bash
# Serving benchmark: corral serve under 1/4/16 concurrent JSON-mode requests, and corral vs
# llama.cpp's OpenAI-compatible server (llama-cpp-python[server] 0.3.36, built natively,
# 2 threads, the same SmolLM2 GGUF) on the 8-property JSON request and plain chat, streamed
# through the `openai` client. Installs llama-cpp-python into target/bench-venv on first use
# (a native build for this CPU's AVX2/AVX-512 features: about 10 minutes on 2 cores). AMX is
# left out: llama.cpp built with -march=native on these Xeons (which report AMX) segfaults
# in its first decode.
# Usage: bash scripts/bench-serve.sh [--reps N] [--rounds N]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
reps=5
rounds=2
while [ $# -gt 0 ]; do
  case "$1" in
    --reps) reps=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
bash scripts/fetch-model.sh
model="$root/models/SmolLM2-135M-Instruct.Q4_1.gguf"
venv="${LLAMACPP_VENV:-$root/target/bench-venv}"
if ! "$venv/bin/python" -c "import llama_cpp, openai" 2>/dev/null; then
  python3 -m venv "$venv"
  flags="-DGGML_NATIVE=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF"
  for f in avx avx2 fma f16c bmi2 avx_vnni; do
    grep -qw "$f" /proc/cpuinfo && flags="$flags -DGGML_${f^^}=ON"
  done
  if grep -qw avx512f /proc/cpuinfo; then
    flags="$flags -DGGML_AVX512=ON"
    for f in avx512_vbmi avx512_vnni avx512_bf16; do
      grep -qw "$f" /proc/cpuinfo && flags="$flags -DGGML_${f^^}=ON"
    done
  fi
  CMAKE_BUILD_PARALLEL_LEVEL=2 CMAKE_ARGS="$flags" "$venv/bin/pip" install --quiet --no-cache-dir \
    "llama-cpp-python[server]==0.3.36" openai
fi
cargo build --release -p corral-server --bin corral

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
./target/release/corral serve --model "$model" --port 8181 --served-name smollm2 --seed 0 \
  >target/bench-corral.log 2>&1 &
pids+=($!)
"$venv/bin/python" -m llama_cpp.server --model "$model" --n_threads 2 --n_threads_batch 2 \
  --n_ctx 2048 --port 8182 --model_alias smollm2 >target/bench-llamacpp.log 2>&1 &
pids+=($!)
for url in http://127.0.0.1:8181/health http://127.0.0.1:8182/v1/models; do
  for _ in $(seq 1 120); do curl -sf "$url" >/dev/null && break; sleep 1; done
done

echo "## $(lscpu | grep 'Model name' | sed 's/ \+/ /g'), $(nproc) cores"
echo
echo "### corral vs llama.cpp, one request at a time (medians of $reps)"
"$venv/bin/python" scripts/bench_serve.py compare --reps "$reps" \
  --server "corral=http://127.0.0.1:8181/v1=smollm2" \
  --server "llama.cpp=http://127.0.0.1:8182/v1=smollm2"
echo
echo "### corral under concurrency (JSON mode, 8-property schema, temperature 0)"
"$venv/bin/python" scripts/bench_serve.py concurrency --base http://127.0.0.1:8181/v1 \
  --model smollm2 --rounds "$rounds"
