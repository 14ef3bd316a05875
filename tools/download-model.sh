#!/bin/sh
# download-model.sh NAME [DIR] - fetches real GPT-2 weights from Hugging Face into DIR (default
# models/NAME). NAME: gpt2, gpt2-medium, gpt2-large, gpt2-xl. Needs network access to huggingface.co.
set -eu
name=${1:-}
case "$name" in
    gpt2|gpt2-medium|gpt2-large|gpt2-xl) ;;
    *) echo "usage: tools/download-model.sh gpt2|gpt2-medium|gpt2-large|gpt2-xl [DIR]" >&2; exit 2 ;;
esac
dir=${2:-models/$name}
mkdir -p "$dir"
base="https://huggingface.co/openai-community/$name/resolve/main"
for f in config.json vocab.json merges.txt model.safetensors; do
    [ -s "$dir/$f" ] && continue
    echo "download-model: $f" >&2
    if ! curl -fL --retry 3 --progress-bar -o "$dir/$f.part" "$base/$f"; then
        rm -f "$dir/$f.part"
        echo "download-model: cannot download $base/$f (no network access to huggingface.co?)" >&2
        exit 1
    fi
    mv "$dir/$f.part" "$dir/$f"
done
echo "download-model: $name is in $dir; run: build/tools/vkgpt2 -m $dir -p \"Hello\"" >&2
