#!/bin/sh
# compare-ggml.sh - vkgpt2's CPU backend against ggml's gpt-2-backend on the same ggml files,
# alternating runs in one invocation, and the ratio of their medians.
#
#   sh tools/compare-ggml.sh -g PATH/TO/gpt-2-backend [-v PATH/TO/vkgpt2] [-t THREADS] [-n TOKENS]
#                            [-r REPEATS] [--prompt-len N] MODEL.bin...
#
# Decode (default): a one-token prompt ("Hello"), -n tokens greedy (top_k 1), ms/token as each
# engine reports it (ggml: predict time / positions evaluated; vkgpt2: decode ms/token).
# --prompt-len N: a prompt of N tokens instead (" the" N times, which GPT-2's tokenizer keeps as N
# tokens) evaluated in one batch, one token generated; the column is the prompt's ms.
# Each repeat runs ggml then vkgpt2 (odd repeats the other way round), so both see the same
# machine state. The ratio is ggml / vkgpt2: above 1 means vkgpt2 is faster.
# This script neither fetches nor builds ggml: build its examples/gpt-2 yourself (docs/PERFORMANCE.md).
set -eu

usage() {
    sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'
    exit "${1:-2}"
}

ggml=""
vk=""
threads=2
ntok=64
reps=3
plen=0
while [ $# -gt 0 ]; do
    case "$1" in
    -g) ggml=${2:?-g needs a path}; shift 2 ;;
    -v) vk=${2:?-v needs a path}; shift 2 ;;
    -t) threads=${2:?-t needs a count}; shift 2 ;;
    -n) ntok=${2:?-n needs a count}; shift 2 ;;
    -r) reps=${2:?-r needs a count}; shift 2 ;;
    --prompt-len) plen=${2:?--prompt-len needs a count}; shift 2 ;;
    -h | --help) usage 0 ;;
    -*) echo "compare-ggml: unknown option $1" >&2; usage ;;
    *) break ;;
    esac
done
[ $# -gt 0 ] || { echo "compare-ggml: no model given" >&2; usage; }
[ -n "$ggml" ] || { echo "compare-ggml: -g PATH/TO/gpt-2-backend is required" >&2; usage; }
[ -x "$ggml" ] || { echo "compare-ggml: $ggml is not an executable" >&2; exit 1; }
if [ -z "$vk" ]; then vk=$(dirname "$0")/../build/tools/vkgpt2; fi
[ -x "$vk" ] || { echo "compare-ggml: $vk is not an executable (build first, or pass -v)" >&2; exit 1; }
for n in "$threads" "$ntok" "$reps" "$plen"; do
    case "$n" in '' | *[!0-9]*) echo "compare-ggml: '$n' is not a count" >&2; exit 2 ;; esac
done

prompt="Hello"
batch=64
if [ "$plen" -gt 0 ]; then
    prompt=$(i=0; while [ $i -lt "$plen" ]; do printf ' the'; i=$((i + 1)); done)
    ntok=1
    batch=$plen
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# run_ggml MODEL -> ms (per token in decode mode, the prompt's in prompt mode)
run_ggml() {
    "$ggml" -m "$1" -p "$prompt" -n "$ntok" -t "$threads" -b "$batch" --top_k 1 --ignore-eos \
        > "$tmp/g.out" 2>&1 || { echo "compare-ggml: $ggml failed on $1:" >&2; tail -5 "$tmp/g.out" >&2; exit 1; }
    if [ "$plen" -gt 0 ]; then
        sed -n 's/.*predict time = *\([0-9.]*\) ms.*/\1/p' "$tmp/g.out"
    else
        sed -n 's/.*predict time = .* \([0-9.]*\) ms per token.*/\1/p' "$tmp/g.out"
    fi
}

run_vk() {
    "$vk" -m "$1" -p "$prompt" -n "$ntok" -t "$threads" -b "$batch" --top_k 1 --ignore-eos \
        --backend cpu -s 1 --json > "$tmp/v.out" 2> "$tmp/v.err" ||
        { echo "compare-ggml: $vk failed on $1:" >&2; tail -5 "$tmp/v.err" >&2; exit 1; }
    if [ "$plen" -gt 0 ]; then
        sed -n 's/.*"prompt_ms": *\([0-9.]*\).*/\1/p' "$tmp/v.out"
    else
        sed -n 's/.*"decode_ms_per_token": *\([0-9.]*\).*/\1/p' "$tmp/v.out"
    fi
}

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

what="ms/token"
[ "$plen" -gt 0 ] && what="ms for a $plen-token prompt"
echo "threads $threads, $reps alternating repeats, $what (median), $(date -u +%Y-%m-%dT%H:%MZ)"
echo "| model | ggml | vkgpt2 | vkgpt2 speed vs ggml |"
echo "| --- | ---: | ---: | ---: |"
for m in "$@"; do
    [ -r "$m" ] || { echo "compare-ggml: cannot read $m" >&2; exit 1; }
    : > "$tmp/g.ms"
    : > "$tmp/v.ms"
    r=0
    while [ $r -lt "$reps" ]; do
        if [ $((r % 2)) -eq 0 ]; then
            run_ggml "$m" >> "$tmp/g.ms"
            run_vk "$m" >> "$tmp/v.ms"
        else
            run_vk "$m" >> "$tmp/v.ms"
            run_ggml "$m" >> "$tmp/g.ms"
        fi
        r=$((r + 1))
    done
    g=$(median < "$tmp/g.ms")
    v=$(median < "$tmp/v.ms")
    [ -n "$g" ] && [ -n "$v" ] || { echo "compare-ggml: could not read the timings for $m" >&2; exit 1; }
    awk -v m="$(basename "$m")" -v g="$g" -v v="$v" \
        'BEGIN { printf "| %s | %.2f | %.2f | %.2fx |\n", m, g, v, (v > 0 ? g / v : 0) }'
done
