#!/usr/bin/env bash
# One-command kernel benchmark: builds bench_kernels (our chess_sparse library +
# ggml from the pristine llama.cpp tree, GGML_NATIVE=ON) into a cache directory
# keyed by the hash of the sources, runs it, writes benchmarks/results/kernels.json.
#
#   benchmarks/kernels/run.sh                      full decode sweep (types q4_0,q4_1,q8_0,f16; 1 and 2 threads)
#   benchmarks/kernels/run.sh --types q4_0 --reps 5   any bench_kernels option is passed through
#   run.sh --out path ...  (or CHESS_BENCH_OUT=path)  write elsewhere
#   run.sh --x86 avx2 ...  what an AVX2-only CPU gets: ggml built without AVX-512 and our
#                          avx2 kernels (default --x86 native; writes kernels-avx2.json)
#   run.sh --x86 avx2vnni  the same with AVX-VNNI (Alder Lake and later Intel client CPUs):
#                          ggml with GGML_AVX_VNNI, our avx2vnni kernels (kernels-avx2vnni.json)
#   run.sh --cb ...        the column-block kernels (bench_cb: chess_spmv_cb vs ggml's dense GEMV
#                          and the read ceiling; its own options, e.g. --types q4_0 --threads 2
#                          --sparsities 0,0.3,0.5,0.7); writes kernels-cb[-avx2|-avx2vnni].json
#
# The machine is shared and noisy: compare the dense and sparse numbers of ONE run (ratios).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
native="$root/packages/backend-llamacpp/native"
cache="${CHESS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/chess-toolchain}"

src="$cache/llama.cpp/src-80fb11ac73e6"
if [[ ! -f "$src/.chess-complete" ]]; then
  src="$(cd "$root" && pnpm exec tsx "$here/llama-source.ts")"
fi

# --out and --x86 are ours (the result is written to a temporary file and renamed); the rest goes through.
out="${CHESS_BENCH_OUT:-}"
x86=native
bench=bench_kernels
args=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --out) [[ $# -ge 2 ]] || { echo "run.sh: --out needs a path" >&2; exit 2; }; out="$2"; shift 2 ;;
    --out=*) out="${1#--out=}"; shift ;;
    --x86) [[ $# -ge 2 ]] || { echo "run.sh: --x86 needs native, avx2 or avx2vnni" >&2; exit 2; }; x86="$2"; shift 2 ;;
    --x86=*) x86="${1#--x86=}"; shift ;;
    --cb) bench=bench_cb; shift ;;
    *) args+=("$1"); shift ;;
  esac
done
name=kernels
[[ $bench == bench_cb ]] && name=kernels-cb
case "$x86" in
  native) out="${out:-$root/benchmarks/results/$name.json}" ;;
  avx2|avx2vnni) out="${out:-$root/benchmarks/results/$name-$x86.json}"; export CHESS_KERNEL_ISA=$x86 ;;
  *) echo "run.sh: --x86 must be native, avx2 or avx2vnni, got '$x86'" >&2; exit 2 ;;
esac

hash="$( (cd "$root" && find packages/backend-llamacpp/native benchmarks/kernels -type f \
  \( -name '*.c' -o -name '*.h' -o -name 'CMakeLists.txt' \) -print0 | sort -z | xargs -0 sha256sum; echo "$src"; echo "$here"; echo "$x86") \
  | sha256sum | cut -c1-16)"
build="$cache/build/kernel-bench-$hash"
if [[ ! -x "$build/$bench" ]]; then
  echo "building $bench in $build" >&2
  cmake -S "$here" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCHESS_GGML_SOURCE="$src" -DCHESS_BENCH_X86="$x86" >"$build.configure.log" 2>&1 \
    || { cat "$build.configure.log" >&2; exit 1; }
  cmake --build "$build" --target "$bench" >"$build.build.log" 2>&1 || { tail -50 "$build.build.log" >&2; exit 1; }
fi

mkdir -p "$(dirname "$out")"
tmp="$out.tmp.$$"
trap 'rm -f "$tmp"' EXIT
"$build/$bench" --out "$tmp" ${args[@]+"${args[@]}"}
mv "$tmp" "$out"
echo "wrote $out" >&2
