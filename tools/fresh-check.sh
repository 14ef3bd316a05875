#!/bin/sh
# fresh-check.sh [--keep] [DIR] - runs README's two set-up commands on a fresh Debian 12, as a
# new user's machine would: a minimal tree made by `debootstrap --variant=minbase bookworm` in DIR
# (default /var/tmp/vkgpt2-fresh, removed first), this repository's committed HEAD cloned into it,
# then `sh tools/demo.sh` and `sh tools/test.sh` run inside with chroot (/proc mounted, /dev and
# /sys bound). Prints how long each step took and exits non-zero on the first failure. Needs root
# and the network to the Debian mirror (it installs debootstrap on the host if missing). The tree
# takes about 2 GiB; --keep leaves it (and its mounts undone) for a look afterwards.
#
# The tree gets the host's apt sources and Acquire settings (a mirror or proxy this network needs),
# its resolv.conf and trusted certificates; nothing else of the host's packages reaches it.
set -eu
keep=0
if [ "${1:-}" = "--keep" ]; then keep=1; shift; fi
root=${1:-/var/tmp/vkgpt2-fresh}
repo=$(cd "$(dirname "$0")/.." && pwd)
[ "$(id -u)" -eq 0 ] || { echo "fresh-check: needs root (debootstrap, chroot, mount)" >&2; exit 1; }
case "$root" in /|/usr|/etc|/var|/tmp|/root|/home) echo "fresh-check: refusing DIR $root" >&2; exit 1;; esac

# ---- timing ----
report=""
step() { # step NAME COMMAND... : runs it, records the seconds, stops on failure
    name=$1; shift
    echo "fresh-check: $name ..." >&2
    t0=$(date +%s)
    if "$@"; then s=ok; else s=FAILED; fi
    t=$(( $(date +%s) - t0 ))
    report="$report$(printf '%-44s %6d s  %s' "$name" "$t" "$s")
"
    if [ "$s" != ok ]; then summary; exit 1; fi
}
summary() { printf '\nfresh-check: Debian 12 minbase tree in %s\n%s' "$root" "$report" >&2; }

# ---- mounts: undone on any exit ----
undo_mounts() {
    for m in "$root/sys" "$root/dev/pts" "$root/dev" "$root/proc"; do
        mountpoint -q "$m" 2>/dev/null && umount -l "$m" || true
    done
}
cleanup() { undo_mounts; [ "$keep" -eq 1 ] || rm -rf "$root"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- the tree ----
if ! command -v debootstrap >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
fi
# The host's Debian mirror (first URIs line of deb822 sources, else first deb line).
mirror=$(sed -n 's/^URIs:[[:space:]]*\([^[:space:]]*\).*/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null |
         grep -v security | head -n 1 || true)
[ -n "$mirror" ] || mirror=$(awk '$1 == "deb" && $0 !~ /security/ { print $2; exit }' /etc/apt/sources.list 2>/dev/null || true)
[ -n "$mirror" ] || { echo "fresh-check: no Debian mirror found in the host's apt sources" >&2; exit 1; }

undo_mounts
rm -rf "$root"
mkdir -p "$root"
bootstrap() { # quiet unless it fails
    log=$(mktemp)
    if debootstrap --variant=minbase bookworm "$root" "$mirror" >"$log" 2>&1; then rm -f "$log"; return 0; fi
    tail -n 20 "$log" >&2; rm -f "$log"; return 1
}
step "debootstrap --variant=minbase bookworm" bootstrap
rm -f "$root/etc/apt/sources.list"
for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list; do
    if [ -f "$f" ]; then cp "$f" "$root$f"; fi
done
for f in /etc/apt/apt.conf.d/*; do
    if [ -f "$f" ] && grep -q "^[[:space:]]*Acquire" "$f"; then cp "$f" "$root/etc/apt/apt.conf.d/"; fi
done
cp /etc/resolv.conf "$root/etc/resolv.conf"
# The host's trusted certificates (a network that inspects TLS signs with its own CA): installed
# into the tree's bundle when deps.sh installs ca-certificates.
mkdir -p "$root/usr/local/share/ca-certificates"
if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
    cp /etc/ssl/certs/ca-certificates.crt "$root/usr/local/share/ca-certificates/host-bundle.crt"
fi
mount -t proc proc "$root/proc"
mount --bind /dev "$root/dev"
mount --bind /dev/pts "$root/dev/pts"
mount --bind /sys "$root/sys"

# ---- the repository, as a clone of the committed HEAD ----
git clone -q --no-local "$repo" "$root/root/vkgpt2"

# ---- README's two commands ----
in_tree() { chroot "$root" /usr/bin/env -i HOME=/root PATH=/usr/sbin:/usr/bin:/sbin:/bin TERM=dumb \
    LANG=C.UTF-8 /bin/sh -c "cd /root/vkgpt2 && $1"; }
step "sh tools/demo.sh (deps, build, model, generate)" in_tree "sh tools/demo.sh"
step "sh tools/test.sh (test deps, build, suite)" in_tree "sh tools/test.sh"
summary
echo "fresh-check: both README commands passed" >&2
