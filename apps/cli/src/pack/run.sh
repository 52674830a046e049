# ---- body (apps/cli/src/pack/run.sh; the lines above are written by `chess pack`) ----
# Entry point of a device bundle: POSIX sh, nothing beyond the bundle, the C library and the
# usual shell tools (sed, sha256sum, mktemp). Errors print `error[CODE]: ...` and exit 1;
# bad usage exits 2.
#
#   ./run check                 the files' sha256 against the manifest, the CPU against the build
#   ./run bench [options]       dense vs sparse through llama-bench, interleaved; JSON for `chess report`
#       --tokens N (16) --prompt-tokens N (0: no prefill runs) --rounds N (2) --threads N (all cores)
#       --out FILE (default: standard output)
#   ./run serve [llama-server options]   OpenAI-compatible server on the sparse model
#       (default --host 127.0.0.1 --port 8080)
#   ./run exec PROGRAM [args]   any bundled program (llama-completion, llama-perplexity, ...)
#
# CHESS_BUNDLE_EMULATOR: a qemu-user command line (e.g. "qemu-aarch64 -L /usr/aarch64-linux-gnu
# -cpu max") to run the programs of a bundle built for another architecture.
set -eu

B=$(cd "$(dirname "$0")" && pwd)
EMU=${CHESS_BUNDLE_EMULATOR:-}

die() { code=$1; shift; printf 'error[%s]: %s\n' "$code" "$*" >&2; exit 1; }
usage() { printf 'error[BUNDLE_USAGE]: %s\nusage: ./run check | bench [--tokens N] [--prompt-tokens N] [--rounds N] [--threads N] [--out FILE] | serve [llama-server options] | exec PROGRAM [args]\n' "$*" >&2; exit 2; }
note() { printf '%s\n' "$*" >&2; }

# the library path of the programs: the dot-product libraries first on a CPU that has SDOT
LIBPATH="$B/bin"

# run a bundled program (under the emulator when one is set)
run_prog() {
    prog=$1; shift
    if [ -n "$EMU" ]; then
        # qemu-user: the guest's environment is given with -E (the host's dynamic loader must not see it)
        # shellcheck disable=SC2086
        $EMU -E "LD_LIBRARY_PATH=$LIBPATH" "$B/bin/$prog" "$@"
    else
        LD_LIBRARY_PATH="$LIBPATH" "$B/bin/$prog" "$@"
    fi
}

cpu_features() {
    [ -x "$B/bin/chess-cpu" ] || die BUNDLE_FILE_MISSING "bin/chess-cpu: missing or not executable (unpack the whole bundle, keeping permissions)"
    run_prog chess-cpu 2>/dev/null | sed -n 's/^features //p' || true
}

check_arch() {
    machine=$(uname -m)
    if [ -z "$EMU" ] && [ "$machine" != "$BUNDLE_ARCH" ]; then
        die BUNDLE_WRONG_ARCH "this bundle is for $BUNDLE_TARGET ($BUNDLE_ARCH CPUs); this machine is $machine: pack one with --target linux-$machine"
    fi
}

# has_all FEATURE...: every one is in $FEATURES
has_all() {
    for f in "$@"; do
        case "$FEATURES" in *" $f "*) ;; *) return 1 ;; esac
    done
}

# CPU check; sets FEATURES and, on AArch64 with SDOT, LIBPATH
check_cpu() {
    check_arch
    FEATURES=" $(cpu_features) "
    missing=""
    for f in $BUNDLE_REQUIRES; do
        case "$FEATURES" in *" $f "*) ;; *) missing="$missing $f" ;; esac
    done
    if [ -n "$missing" ]; then
        die BUNDLE_CPU_UNSUPPORTED "this CPU lacks${missing}: the programs of this $BUNDLE_TARGET bundle need$(printf ' %s' $BUNDLE_REQUIRES) (CPU features:$FEATURES)"
    fi
    if [ "$BUNDLE_ARCH" = aarch64 ]; then
        if has_all asimddp; then
            LIBPATH="$B/bin/dotprod:$B/bin"; VARIANT="dotprod (ARMv8.2-A SDOT: ggml and the sparse kernels)"
        else
            VARIANT="armv8.0 (NEON without SDOT)"
        fi
    elif has_all avx512f avx512bw avx512vl avx512dq avx512cd avx512vbmi avx512_vnni avx512_bf16; then
        VARIANT="ggml CPU backend avx512, sparse kernels avx512"
    elif has_all avx_vnni; then
        VARIANT="ggml CPU backend avx2vnni, sparse kernels avx2vnni"
    else
        VARIANT="ggml CPU backend avx2, sparse kernels avx2 or better"
    fi
}

check_files() {
    [ -f "$B/SHA256SUMS" ] || die BUNDLE_FILE_MISSING "SHA256SUMS: missing (unpack the whole bundle)"
    bad=0
    n=0
    while read -r sum path; do
        [ -n "$path" ] || continue
        n=$((n + 1))
        if [ ! -f "$B/$path" ]; then
            printf 'error[BUNDLE_FILE_MISSING]: %s: missing (the manifest lists it)\n' "$path" >&2
            bad=1
            continue
        fi
        actual=$(sha256sum "$B/$path" | sed 's/ .*//')
        if [ "$actual" != "$sum" ]; then
            printf 'error[BUNDLE_FILE_ALTERED]: %s: sha256 %s, the manifest says %s\n' "$path" "$actual" "$sum" >&2
            bad=1
        fi
    done < "$B/SHA256SUMS"
    [ "$bad" = 0 ] || die BUNDLE_CHECK_FAILED "files differ from the manifest (above): copy the bundle again"
    note "files: $n verified (sha256)"
}

cmd_check() {
    [ $# -eq 0 ] || usage "check takes no arguments"
    check_files
    check_cpu
    note "cpu: $BUNDLE_TARGET needs$(printf ' %s' $BUNDLE_REQUIRES): present; will run $VARIANT"
    if ! out=$(run_prog llama-completion --version 2>&1); then
        printf '%s\n' "$out" >&2
        die BUNDLE_PROGRAM_FAILED "bin/llama-completion does not start on this machine (output above)"
    fi
    note "programs: start ($(printf '%s\n' "$out" | sed -n 's/^version: //p' | head -n 1))"
    echo "ok $BUNDLE_TARGET $BUNDLE_ID"
}

json_str() { printf '"%s"' "$(printf '%s' "$1" | sed 's/\\/\\\\/g; s/"/\\"/g' | tr -d '\000-\037')"; }

cpu_name() {
    name=$(sed -n 's/^model name[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo 2>/dev/null | head -n 1)
    if [ -z "$name" ] && [ -r /sys/firmware/devicetree/base/model ]; then name=$(tr -d '\000' < /sys/firmware/devicetree/base/model); fi
    if [ -z "$name" ]; then name=$(sed -n 's/^CPU part[[:space:]]*:[[:space:]]*/CPU part /p' /proc/cpuinfo 2>/dev/null | head -n 1); fi
    [ -n "$EMU" ] && name="$(printf '%s' "$EMU" | sed 's/ .*//') on ${name:-unknown}"
    printf '%s' "${name:-unknown}"
}

cmd_bench() {
    tokens=16; pp=0; rounds=2; threads=""; out=""
    while [ $# -gt 0 ]; do
        case "$1" in
            --tokens|--prompt-tokens|--rounds|--threads|--out)
                [ $# -ge 2 ] || usage "$1 needs a value"
                case "$1" in
                    --out) out=$2 ;;
                    *) case "$2" in ''|*[!0-9]*) usage "$1 $2: expected a whole number" ;; esac
                       case "$1" in --tokens) tokens=$2 ;; --prompt-tokens) pp=$2 ;; --rounds) rounds=$2 ;; --threads) threads=$2 ;; esac ;;
                esac
                shift 2 ;;
            *) usage "bench: unknown option $1" ;;
        esac
    done
    [ "$tokens" -ge 1 ] || usage "--tokens must be at least 1"
    [ "$rounds" -ge 1 ] || usage "--rounds must be at least 1"
    cores=$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 1)
    [ -n "$threads" ] || threads=$cores
    [ "$threads" -ge 1 ] || usage "--threads must be at least 1"
    check_cpu
    for m in $BUNDLE_MODELS; do [ -f "$B/$m" ] || die BUNDLE_FILE_MISSING "$m: missing (unpack the whole bundle)"; done
    scratch=$(mktemp -d "${TMPDIR:-/tmp}/chess-bench.XXXXXX")
    trap 'rm -rf "$scratch"' EXIT INT TERM
    body="$scratch/body.json"
    : > "$body"
    set -- $BUNDLE_MODELS
    nmodels=$#
    tests="tg"; [ "$pp" -gt 0 ] && tests="tg pp"
    total=$((rounds * nmodels))
    done_runs=0
    round=0
    sep=""
    while [ "$round" -lt "$rounds" ]; do
        k=0
        while [ "$k" -lt "$nmodels" ]; do
            index=$(( (k + round) % nmodels ))   # rotated order per round
            eval "model=\${$((index + 1))}"
            for test in $tests; do
                report="$scratch/sparsity-$index-$round-$test.json"
                rm -f "$report"
                if [ "$test" = tg ]; then args="-p 0 -n $tokens"; else args="-p $pp -n 0"; fi
                done_runs=$((done_runs + 1))
                note "bench: round $((round + 1))/$rounds $model $test"
                # shellcheck disable=SC2086
                if ! CHESS_SPARSITY_REPORT="$report" run_prog llama-bench -m "$B/$model" -t "$threads" -r 1 -o json $args > "$scratch/out.json" 2> "$scratch/err.txt"; then
                    tail -n 20 "$scratch/err.txt" >&2
                    die BUNDLE_BENCH_FAILED "bin/llama-bench on $model ($test) failed (output above)"
                fi
                sparsity=null
                [ -s "$report" ] && sparsity=$(cat "$report")
                printf '%s{"model":%d,"round":%d,"test":"%s","llamaBench":%s,"sparsityReport":%s}\n' "$sep" "$index" "$round" "$test" "$(cat "$scratch/out.json")" "$sparsity" >> "$body"
                sep=","
            done
            k=$((k + 1))
        done
        round=$((round + 1))
    done
    mem=$(sed -n 's/^MemTotal:[[:space:]]*\([0-9]*\) kB/\1/p' /proc/meminfo 2>/dev/null | head -n 1)
    result="$scratch/result.json"
    {
        printf '{"kind":"chess-device-bench","version":1,"createdAt":"%s",' "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
        printf '"bundle":{"id":"%s","target":"%s"},' "$BUNDLE_ID" "$BUNDLE_TARGET"
        printf '"device":{"cpu":%s,"machine":%s,"cores":%d,"memoryBytes":%d,"features":%s,"variant":%s},' \
            "$(json_str "$(cpu_name)")" "$(json_str "$(uname -m)")" "$cores" "$(( ${mem:-0} * 1024 ))" "$(json_str "$(echo $FEATURES)")" "$(json_str "$VARIANT")"
        printf '"settings":{"threads":%d,"tg":%d,"pp":%d,"rounds":%d},' "$threads" "$tokens" "$pp" "$rounds"
        printf '"models":'
        cat "$B/bench-models.json"
        printf ',"runs":[\n'
        cat "$body"
        printf ']}\n'
    } > "$result"
    if [ -n "$out" ]; then
        tmp="$out.tmp.$$"
        cp "$result" "$tmp" && mv "$tmp" "$out" || { rm -f "$tmp"; die BUNDLE_OUTPUT_FAILED "cannot write $out"; }
        note "bench: $done_runs runs; result in $out (read it with: chess report $out)"
        echo "$out"
    else
        cat "$result"
    fi
}

cmd_serve() {
    check_cpu
    [ -f "$B/$BUNDLE_SERVE_MODEL" ] || die BUNDLE_FILE_MISSING "$BUNDLE_SERVE_MODEL: missing (unpack the whole bundle)"
    host=127.0.0.1; port=8080
    for a in "$@"; do case "$a" in --host|--host=*) host="";; --port|--port=*) port="";; esac; done
    set -- -m "$B/$BUNDLE_SERVE_MODEL" ${host:+--host "$host"} ${port:+--port "$port"} "$@"
    note "serve: $BUNDLE_SERVE_MODEL ($VARIANT)"
    if [ -n "$EMU" ]; then
        # shellcheck disable=SC2086
        exec $EMU -E "LD_LIBRARY_PATH=$LIBPATH" "$B/bin/llama-server" "$@"
    fi
    LD_LIBRARY_PATH="$LIBPATH" exec "$B/bin/llama-server" "$@"
}

cmd_exec() {
    [ $# -ge 1 ] || usage "exec needs a program name"
    prog=$1; shift
    case "$prog" in */*|'') usage "exec $prog: give a program name from bin/" ;; esac
    [ -f "$B/bin/$prog" ] && [ "$prog" != "${prog%.so*}" ] && usage "exec $prog: a library, not a program"
    [ -x "$B/bin/$prog" ] || die BUNDLE_FILE_MISSING "bin/$prog: no such program in this bundle"
    check_cpu
    if [ -n "$EMU" ]; then
        # shellcheck disable=SC2086
        exec $EMU -E "LD_LIBRARY_PATH=$LIBPATH" "$B/bin/$prog" "$@"
    fi
    LD_LIBRARY_PATH="$LIBPATH" exec "$B/bin/$prog" "$@"
}

[ $# -ge 1 ] || usage "give a command"
command=$1; shift
case "$command" in
    check) cmd_check "$@" ;;
    bench) cmd_bench "$@" ;;
    serve) cmd_serve "$@" ;;
    exec) cmd_exec "$@" ;;
    -h|--help|help) sed -n '/^# Entry point/,/^set -eu/p' "$0" | sed '$d; s/^# \{0,1\}//' ;;
    *) usage "unknown command $command" ;;
esac
