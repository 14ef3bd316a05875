#!/bin/sh
# deps.sh - installs every Debian package vkgpt2 builds, runs and tests with (idempotent; needs
# root or sudo only when something is missing). meson.build names the package of anything it
# cannot find, so this list and the configure checks stay in step.
set -eu
pkgs="build-essential meson ninja-build pkg-config curl ca-certificates glslang-tools glslang-dev
spirv-tools libvulkan-dev libvulkan-volk-dev libpcre2-dev libcriterion-dev mesa-vulkan-drivers
vulkan-validationlayers vulkan-tools"
missing=""
for p in $pkgs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "deps: installing$missing" >&2
sudo=""
[ "$(id -u)" -eq 0 ] || sudo=sudo
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $missing >/dev/null
