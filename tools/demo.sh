#!/bin/sh
# demo.sh - the main job from a fresh Debian machine: install, build, make the default model, generate.
# Extra arguments go to `vkgpt2 generate` (e.g. -p "text" -n 100 --backend cpu).
set -eu
cd "$(dirname "$0")/.."
tools/deps.sh
tools/fetch-vocab.sh data/gpt2-vocab
[ -f build/build.ninja ] || meson setup build >/dev/null
meson compile -C build >/dev/null
model=models/synth-124M-f16
mkdir -p models
if [ ! -f "$model/model.safetensors" ]; then
    build/tools/vkgpt2 synth -o "$model" --size 124M --type f16 --vocab data/gpt2-vocab
fi
echo "demo: $model is a synthetic GPT-2 124M with random weights: its text is noise." >&2
echo "demo: for real text, fetch weights with tools/download-model.sh gpt2 and pass -m models/gpt2" >&2
set -- -p "The meaning of life is" -n 64 -s 42 "$@"   # later flags override these
exec build/tools/vkgpt2 generate -m "$model" "$@"
