#!/bin/sh
# test.sh - installs what the tests need, builds, runs the whole suite (Vulkan tests on lavapipe
# with Khronos validation on). Extra arguments go to `meson setup` (e.g. -Db_sanitize=address,undefined).
set -eu
cd "$(dirname "$0")/.."
tools/deps.sh
tools/fetch-vocab.sh data/gpt2-vocab
dir=${VKGPT2_TEST_BUILD:-build-test}
[ -f "$dir/build.ninja" ] || meson setup "$dir" "$@"
meson compile -C "$dir"
meson test -C "$dir" --print-errorlogs --num-processes 2
