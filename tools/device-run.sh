#!/bin/sh
# device-run.sh - one prepared run on a GPU machine that has only a driver (docs/PROFILING.md,
# "A remote GPU"): built and packed here, carried there, run in one go.
#
#   sh tools/device-run.sh --pack                 here: .devrun/pack.tar.gz from build/ (binaries,
#                                                 the Vulkan tests, their shared libraries, the
#                                                 Vulkan loader and validation layer, the vocabulary)
#   sh tools/device-run.sh [--quick] [--device D] [--sizes LIST] [--out DIR]
#                                                 there (or here, --device naming lavapipe): devices,
#                                                 selftest, the Vulkan tests, benchmarks, perfdoc
#
# Results go to --out (default $OUT, else ./device-run-out): summary.txt (one line per step: name,
# exit status, seconds), run.log (every command and its stderr), results.tar.gz (every JSON and log
# file) and PERFORMANCE-device.md (vkgpt2-perfdoc's tables of the bench and profile JSON). At most
# those four files, so that a machine returning 8 files at most returns them all.
set -u

usage() {
    cat <<'EOF'
usage: sh tools/device-run.sh --pack [--build DIR]
       sh tools/device-run.sh [--quick] [--device D] [--sizes 124M,355M,774M,1558M] [--out DIR]
                              [--build DIR] [-n TOKENS]
  --pack         make .devrun/pack.tar.gz from the build directory (default build/) and say its
                 size; the device tool carries it (carry: [".devrun"]; the tree travels by itself)
  --quick        selftest --quick, four Vulkan tests, 124M f16 and q8_0 only (under 2 minutes on
                 an H200); default: the full run (under 5 minutes there)
  --device D     the Vulkan device for selftest, generate and bench (an index, a deviceUUID prefix
                 or a name substring: `--device llvmpipe` runs the same script on lavapipe); the
                 tests take the best device
  --sizes LIST   the f16 models to bench (default 124M,355M,774M,1558M; --quick: 124M)
  -n TOKENS      decode tokens per bench repeat (default 64, --quick 32)
  --prompt-lens L  prompt lengths of the benches (default 128,512; the first for every model, the
                 others for the first model, or every model in a full run)
  --out DIR      where results go (default $OUT, else ./device-run-out)
  --build DIR    the binaries (default: .devrun/pack.tar.gz unpacked when it exists, else build)
Exit status: 0 when every step passed, 1 when one failed (summary.txt says which), 2 on bad
arguments.
EOF
}

pack=0 quick=0 device="" sizes="" ntok="" out="${OUT:-}" bdir="" plens="128 512"
while [ $# -gt 0 ]; do
    case "$1" in
    --pack) pack=1 ;;
    --quick) quick=1 ;;
    --device) [ $# -ge 2 ] || { echo "device-run.sh: --device needs a value" >&2; exit 2; }; device="$2"; shift ;;
    --sizes) [ $# -ge 2 ] || { echo "device-run.sh: --sizes needs a value" >&2; exit 2; }; sizes="$2"; shift ;;
    --prompt-lens) [ $# -ge 2 ] || { echo "device-run.sh: --prompt-lens needs a value" >&2; exit 2; }; plens=$(echo "$2" | tr ',' ' '); shift ;;
    -n) [ $# -ge 2 ] || { echo "device-run.sh: -n needs a value" >&2; exit 2; }; ntok="$2"; shift ;;
    --out) [ $# -ge 2 ] || { echo "device-run.sh: --out needs a value" >&2; exit 2; }; out="$2"; shift ;;
    --build) [ $# -ge 2 ] || { echo "device-run.sh: --build needs a value" >&2; exit 2; }; bdir="$2"; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "device-run.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
    shift
done
case "$ntok" in ''|*[!0-9]*) [ -z "$ntok" ] || { echo "device-run.sh: -n: '$ntok' is not a number" >&2; exit 2; } ;; esac
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root" || exit 2

# The Vulkan tests the run takes (every test that creates a Vulkan device).
VK_TESTS="test_vk_engine test_vk_select test_vk_matmul test_vk_attention test_vk_ops test_vk_sample test_vk_quant test_variant_guard test_forward test_batch test_faults test_profile"
# --quick: four of them, test_forward only its Vulkan-against-reference cases (NAME:FILTER).
VK_TESTS_QUICK="test_vk_matmul test_variant_guard test_forward:forward/vulkan_* test_faults"

# ---- --pack (here) ----
if [ "$pack" = 1 ]; then
    b="${bdir:-build}"
    [ -x "$b/tools/vkgpt2" ] || { echo "device-run.sh: $b/tools/vkgpt2 not built (meson setup $b --buildtype=release && ninja -C $b)" >&2; exit 1; }
    st=$(mktemp -d "${TMPDIR:-/tmp}/vkgpt2-pack-XXXXXX") || exit 1
    mkdir -p "$st/tools" "$st/tests" "$st/lib" "$st/layers" "$st/data" || exit 1
    cp "$b/tools/vkgpt2" "$b/tools/vkgpt2-perfdoc" "$st/tools/" || exit 1
    for t in $VK_TESTS; do
        cp "$b/tests/$t" "$st/tests/" || { echo "device-run.sh: $b/tests/$t missing" >&2; exit 1; }
    done
    # Shared libraries the binaries need, but not glibc's own (the machine has its C library).
    for f in "$b/tools/vkgpt2" "$b/tools/vkgpt2-perfdoc"; do ldd "$f"; done 2>/dev/null >"$st/ldd.txt"
    for t in $VK_TESTS; do ldd "$b/tests/$t"; done 2>/dev/null >>"$st/ldd.txt"
    awk '$2 == "=>" && $3 ~ /^\// { print $3 }' "$st/ldd.txt" | sort -u |
        grep -Ev '/(libc|libm|libdl|libpthread|librt|libresolv|ld-linux[^/]*)\.so' |
        while read -r l; do cp -L "$l" "$st/lib/"; done
    rm -f "$st/ldd.txt"
    loader=$(ldconfig -p | awk '/libvulkan\.so\.1 .*x86-64/ { print $NF; exit }')
    [ -n "$loader" ] && cp -L "$loader" "$st/lib/libvulkan.so.1"
    layer=/usr/share/vulkan/explicit_layer.d/VkLayer_khronos_validation.json
    if [ -f "$layer" ]; then
        lib=$(ldconfig -p | awk '/libVkLayer_khronos_validation\.so/ { print $NF; exit }')
        [ -n "$lib" ] || lib=/usr/lib/x86_64-linux-gnu/libVkLayer_khronos_validation.so
        cp -L "$lib" "$st/lib/" &&
            sed 's|"library_path": *"[^"]*"|"library_path": "../lib/libVkLayer_khronos_validation.so"|' "$layer" \
                >"$st/layers/VkLayer_khronos_validation.json"
    fi
    [ -d data/gpt2-vocab ] && cp -r data/gpt2-vocab "$st/data/"
    # One compressed file travels (the carry limit counts bytes).
    rm -rf .devrun
    mkdir -p .devrun || exit 1
    ex=$(git rev-parse --git-path info/exclude 2>/dev/null)
    [ -n "$ex" ] && { grep -qx '/.devrun/' "$ex" 2>/dev/null || echo '/.devrun/' >>"$ex"; }
    tar -C "$st" -czf .devrun/pack.tar.gz . || exit 1
    rm -rf "$st"
    mib=$(( ($(wc -c <.devrun/pack.tar.gz) + 1048575) / 1048576 ))
    tree=$(git ls-files -z | xargs -0 cat 2>/dev/null | wc -c)
    tree=$(( (tree + 1048575) / 1048576 ))
    echo "device-run.sh: .devrun/pack.tar.gz is $mib MiB, the tracked tree $tree MiB (64 MiB travel in all)"
    [ $((mib + tree)) -lt 64 ] || { echo "device-run.sh: too big to travel" >&2; exit 1; }
    exit 0
fi

# ---- the run ----
[ -n "$out" ] || out="$root/device-run-out"
mkdir -p "$out" || exit 2
out=$(cd "$out" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/vkgpt2-devrun-XXXXXX") || exit 2
if [ -z "$bdir" ]; then
    if [ -f .devrun/pack.tar.gz ]; then
        mkdir -p "$work/pack" && tar -C "$work/pack" -xzf .devrun/pack.tar.gz || { echo "device-run.sh: cannot unpack .devrun/pack.tar.gz" >&2; exit 2; }
        bdir="$work/pack"
    else
        bdir=build
    fi
fi
bdir=$(cd "$bdir" 2>/dev/null && pwd) || { echo "device-run.sh: no build directory '$bdir' (see --pack)" >&2; exit 2; }
[ -x "$bdir/tools/vkgpt2" ] || { echo "device-run.sh: $bdir/tools/vkgpt2 missing (see --pack)" >&2; exit 2; }
res="$work/results"
mkdir -p "$res/tests" "$work/models" "$work/cache" || exit 2
log="$out/run.log"
sum="$out/summary.txt"
: >"$log"
: >"$sum"
t_start=$(date +%s)
failed=0

# The Vulkan loader: bring it where the machine has none (the device tool's .gl/*.deb, else the
# packed copy), and the validation layer the tests run under.
if ! ldconfig -p 2>/dev/null | grep -q 'libvulkan\.so\.1'; then
    if ls .gl/*.deb >/dev/null 2>&1; then
        for f in .gl/*.deb; do dpkg -x "$f" / >>"$log" 2>&1; done
        ldconfig >>"$log" 2>&1
    fi
fi
[ -d "$bdir/lib" ] && export LD_LIBRARY_PATH="$bdir/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
[ -f "$bdir/layers/VkLayer_khronos_validation.json" ] && export VK_ADD_LAYER_PATH="$bdir/layers"
[ -d data/gpt2-vocab ] || { [ -d "$bdir/data/gpt2-vocab" ] && mkdir -p data && cp -r "$bdir/data/gpt2-vocab" data/; }
export XDG_CACHE_HOME="$work/cache"   # pipeline cache, variant verdicts, measured peaks: fresh
VKGPT2="$bdir/tools/vkgpt2"
PERFDOC="$bdir/tools/vkgpt2-perfdoc"
dev=""
[ -n "$device" ] && dev="--device $device"

# step NAME FILE CMD...: runs CMD with stdout to FILE (under results) and stderr to the log,
# records status and seconds (sh has no locals: the step_ names are its own).
step() {
    step_name="$1" step_file="$2"
    shift 2
    echo "== $step_name: $*" >>"$log"
    step_t0=$(date +%s)
    "$@" >"$res/$step_file" 2>>"$log"
    step_rc=$?
    printf '%-40s rc=%-3d %4ds\n' "$step_name" "$step_rc" "$(( $(date +%s) - step_t0 ))" >>"$sum"
    [ "$step_rc" = 0 ] || failed=1
    return "$step_rc"
}

# 1. devices (a driver: the NVIDIA ICD where the loader finds none)
step devices devices.txt "$VKGPT2" devices
if ! grep -q 'usable by vkgpt2 *yes' "$res/devices.txt" 2>/dev/null; then
    icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
    if [ -f "$icd" ]; then
        export VK_DRIVER_FILES="$icd"
        step "devices (VK_DRIVER_FILES=nvidia)" devices.txt "$VKGPT2" devices
    fi
fi
cat "$res/devices.txt" >>"$log"
# --device as an index for every command (each takes a name too, but $dev is split into words: a
# name with spaces would not survive): a name substring or a UUID prefix is looked up in the listing
if [ -n "$device" ]; then
    case "$device" in
    *[!0-9]*|'')
        idx=$(awk -v d="$device" 'BEGIN { d = tolower(d); gsub("-", "", d) }
            /^device [0-9]+:/ { i = $2; sub(":", "", i); if (index(tolower($0), d)) { print i; exit } }
            /device UUID/ && index(tolower($3), d) == 1 { print i; exit }' "$res/devices.txt")
        [ -n "$idx" ] || { echo "device-run.sh: --device '$device' matches no device" >>"$log"; printf '%-40s no match\n' "--device $device" >>"$sum"; failed=1; }
        dev="--device ${idx:-$device}" ;;
    esac
fi

# 2. selftest
if [ "$quick" = 1 ]; then
    step "selftest --quick" selftest.json "$VKGPT2" selftest $dev --quick --json
else
    step selftest selftest.json "$VKGPT2" selftest $dev --json
fi
grep -v '"pass": true' "$res/selftest.json" >>"$log" 2>/dev/null

# 3. the Vulkan tests of the suite (under the validation layer, as in CI)
tests="$VK_TESTS"
[ "$quick" = 1 ] && tests="$VK_TESTS_QUICK"
for entry in $tests; do
    t="${entry%%:*}" filter=""
    [ "$t" = "$entry" ] || filter="--filter=${entry#*:}"
    [ -x "$bdir/tests/$t" ] || { printf '%-40s missing\n' "$t" >>"$sum"; failed=1; continue; }
    # shellcheck disable=SC2086
    step "$t${filter:+ $filter}" "tests/$t.log" env VKGPT2_VALIDATION=1 VKGPT2_KEEP_DRIVERS_LOADED=1 \
        VKGPT2_SOURCE_ROOT="$root" VKGPT2_BUILD_ROOT="$bdir" timeout 600 "$bdir/tests/$t" --jobs=1 $filter
done

# 4. benchmarks on synthetic models made here
if [ -z "$sizes" ]; then
    if [ "$quick" = 1 ]; then sizes=124M; else sizes=124M,355M,774M,1558M; fi
fi
[ -n "$ntok" ] || { if [ "$quick" = 1 ]; then ntok=32; else ntok=64; fi; }
# Models live in memory where there is room (/dev/shm: no disk write and sync of 3 GB for 1558M),
# with GPT-2's real vocabulary where it travelled (a 50257-row LM head, as the real models have).
m="$work/models"
if [ -d /dev/shm ] && [ -w /dev/shm ] && [ "$(df -Pk /dev/shm | awk 'NR == 2 { print $4 }')" -gt 16000000 ] 2>/dev/null; then
    m=$(mktemp -d /dev/shm/vkgpt2-models-XXXXXX) || m="$work/models"
fi
vocab=""
[ -d data/gpt2-vocab ] && vocab="--vocab data/gpt2-vocab"
synth() { # SIZE TYPE
    # shellcheck disable=SC2086
    step "synth $1 $2" "synth-$1-$2.txt" "$VKGPT2" synth -o "$m/$1-$2.bin" --size "$1" --type "$2" --seed 1 $vocab
}
bench() { # NAME FILE MODEL ARGS...
    bench_name="$1" bench_file="$2" bench_model="$3"
    shift 3
    step "$bench_name" "$bench_file" "$VKGPT2" bench -m "$bench_model" --label "synth-$(basename "$bench_model" .bin)" \
        --backend vulkan $dev -n "$ntok" -r 3 --json "$@"
}
first=""
prompt=$(head -c 300 "$root/README.md" | tr -s "\n#" "  ")   # about 100-150 tokens of text
p1=${plens%% *}
for sz in $(echo "$sizes" | tr ',' ' '); do
    synth "$sz" f16 || continue
    for pl in $plens; do
        [ "$pl" = "$p1" ] || [ -z "$first" ] || [ "$quick" = 0 ] || continue
        bench "bench $sz f16 prompt $pl" "bench-$sz-f16-p$pl.json" "$m/$sz-f16.bin" --prompt-len "$pl"
    done
    [ -n "$first" ] || first="$sz"
done
if [ -n "$first" ]; then
    b="$m/$first-f16.bin"
    bench "bench $first f16 --rerecord" "bench-$first-f16-rerecord.json" "$b" --rerecord
    [ "$quick" = 1 ] || bench "bench $first f16 --ctx-sweep 128" "ctx-$first-f16.json" "$b" --ctx-sweep 128
    step "profile $first f16" "profile-$first-f16.json" "$VKGPT2" -m "$b" $dev --backend vulkan -s 1 \
        -n "$ntok" --ignore-eos --profile --json -p "$prompt"
fi
last=$(echo "$sizes" | tr ',' '\n' | tail -1)
if [ "$quick" = 0 ] && [ -f "$m/$last-f16.bin" ] && [ "$last" != "$first" ]; then
    bench "bench $last f16 --ctx-sweep 256" "ctx-$last-f16.json" "$m/$last-f16.bin" --ctx-sweep 256
    step "profile $last f16" "profile-$last-f16.json" "$VKGPT2" -m "$m/$last-f16.bin" $dev --backend vulkan \
        -s 1 -n "$ntok" --ignore-eos --profile --json -p "$prompt"
fi
# the first size (124M by default) in f32 and block formats
if [ -n "$first" ]; then
    if [ "$quick" = 0 ] && synth "$first" f32; then
        bench "bench $first f32" "bench-$first-f32.json" "$m/$first-f32.bin" --prompt-len "$p1"
    fi
    for q in q8_0 q4_0; do
        [ "$quick" = 1 ] && [ "$q" = q4_0 ] && continue
        src="$m/$first-f32.bin"
        [ -f "$src" ] || src="$m/$first-f16.bin"
        step "quantize $first $q" "quantize-$first-$q.txt" "$VKGPT2" quantize "$src" "$m/$first-$q.bin" "$q" &&
            bench "bench $first $q" "bench-$first-$q.json" "$m/$first-$q.bin" --prompt-len "$p1"
    done
fi
if [ "$quick" = 1 ]; then
    step "bench kernels 124M" kernels.json "$VKGPT2" bench kernels --backend vulkan $dev --sizes 124M -r 3 --json
else
    step "bench kernels" kernels.json "$VKGPT2" bench kernels --backend vulkan $dev --sizes "$sizes" -r 5 --json
fi

# 5. perfdoc: the tables of everything measured
docs=""
for f in "$res"/bench-*.json "$res"/ctx-*.json "$res"/kernels.json "$res"/selftest.json; do
    [ -s "$f" ] && docs="$docs $f"
done
for f in "$res"/profile-*.json; do
    [ -s "$f" ] && docs="$docs --model-name $(basename "$f" .json | sed 's/^profile-/synth-/') $f"
done
printf '# vkgpt2 on %s\n\n' "$(grep -m1 -i 'device 0\|^ *name' "$res/devices.txt" 2>/dev/null | sed 's/^ *//')" \
    >"$out/PERFORMANCE-device.md"
mkdir -p "$res/img"
if [ -n "$docs" ]; then
    # shellcheck disable=SC2086
    step perfdoc perfdoc.txt "$PERFDOC" --doc "$out/PERFORMANCE-device.md" --img "$res/img" --force $docs
fi

t_total=$(( $(date +%s) - t_start ))
printf '%-40s %s %4ds (%s)\n' total "$([ $failed = 0 ] && echo PASS || echo FAIL)" "$t_total" \
    "$([ "$quick" = 1 ] && echo quick || echo full)" >>"$sum"
tar -C "$work" -czf "$out/results.tar.gz" results 2>>"$log"
case "$m" in /dev/shm/*) rm -rf "$m" ;; esac
rm -rf "$work"
cat "$sum"
exit $failed
