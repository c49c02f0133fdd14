#!/usr/bin/env bash
# The seed's model sizes with random weights (nothing to download): writes Mistral-7B-shape
# GGUF files in Q4_0 and Q4_K and a Mixtral-8x7B-shape file (the first --mixtral-layers
# layers, Q4_0) into models/random/ (about 4 + 4 + 3.5 GB, kept between runs), then for each
# file runs corral-models (`cargo bench -p corral-models --bench sizes`: load time, resident
# memory, decode tok/s, measured read bandwidth and the decode limit it implies) and llama.cpp
# (llama-cpp-python, built into target/bench-venv as in scripts/bench-serve.sh) one after the
# other, same file, same prompt ids, same thread count (2 unless RAYON_NUM_THREADS says
# otherwise). Usage: bash scripts/bench-sizes.sh [--runs N] [--decode N] [--mixtral-layers N]
# [--rounds R]. With --rounds R > 1 the two engines take turns R times per file (corral,
# llama.cpp, corral, …) and the script ends each file with the ratio of every round and their
# median: on a shared machine whose speed drifts within minutes, a ratio of two runs made
# one after the other once is mostly the drift.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
runs=3 decode=16 mixtral_layers=4 rounds=1
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) runs=$2; shift 2 ;;
    --decode) decode=$2; shift 2 ;;
    --mixtral-layers) mixtral_layers=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
threads=${RAYON_NUM_THREADS:-$(nproc)}
venv="${LLAMACPP_VENV:-$root/target/bench-venv}"
if ! "$venv/bin/python" -c "import llama_cpp" 2>/dev/null; then
  echo "building llama-cpp-python (once): see scripts/bench-serve.sh for the flags" >&2
  bash scripts/bench-serve.sh --reps 1 --rounds 1 >/dev/null
fi
cargo build --release -q -p corral-models --example random_gguf
mkdir -p models/random
files=()
for spec in "mistral-7b q4_0 mistral-7b.Q4_0.gguf" "mistral-7b q4_k mistral-7b.Q4_K.gguf" \
            "mixtral-8x7b q4_0 mixtral-8x7b-${mixtral_layers}layers.Q4_0.gguf --layers $mixtral_layers"; do
  set -- $spec
  out="models/random/$3"
  if [ ! -f "$out" ]; then
    echo "writing $out" >&2
    target/release/examples/random_gguf "$1" "$2" "$out.tmp" "${@:4}" && mv "$out.tmp" "$out"
  fi
  files+=("$out")
done
bench=$(cargo bench -p corral-models --bench sizes --no-run 2>&1 \
  | grep -o 'target/release/deps/sizes-[0-9a-f]*' | head -1)
simd=$(grep -q avx512_vnni /proc/cpuinfo && echo "AVX-512 VNNI" || echo "AVX2 or less")
echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs) ($simd); corral kernel: ${CORRAL_KERNEL:-detected}"
# Load times are measured with the file in the page cache for both (read once before each),
# so that neither pays the disk for the other.
decode_rate() { grep -o 'decode [0-9.]* tok/s' | head -1 | awk '{print $2}'; }
for f in "${files[@]}"; do
  ratios=()
  for round in $(seq 1 "$rounds"); do
    echo
    [ "$rounds" -gt 1 ] && echo "round $round of $rounds"
    cat "$f" >/dev/null
    ours=$(RAYON_NUM_THREADS=$threads "$bench" --model "$f" --runs "$runs" --decode "$decode")
    echo "$ours"
    cat "$f" >/dev/null
    theirs=$("$venv/bin/python" scripts/bench_llamacpp_sizes.py --model "$f" \
      --threads "$threads" --runs "$runs" --decode "$decode")
    echo "$theirs"
    ratios+=("$(awk -v a="$(decode_rate <<<"$ours")" -v b="$(decode_rate <<<"$theirs")" \
      'BEGIN { printf "%.2f", a / b }')")
  done
  if [ "$rounds" -gt 1 ]; then
    median=$(printf '%s\n' "${ratios[@]}" | sort -n | awk '{v[NR] = $1} END {
      print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }')
    echo "$f: decode corral / llama.cpp per round: ${ratios[*]}; median ${median}x"
  fi
done
