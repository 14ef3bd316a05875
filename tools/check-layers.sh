#!/bin/sh
# check-layers.sh - every #include "..." in the library and the command points down the layers:
#   core < cpu < vkengine < vulkan < api < devtools < tools
# A file may include a header of its own layer or of a lower one; include/ (the public header)
# holds declarations every layer may see. A bare name is looked up in the file's own folder, then
# in include/, then in the layer folders. Prints each include that points up (file:line: what)
# and exits 1 when there is one. Usage: check-layers.sh [SOURCE_ROOT] (default: this script's ..).
root=${1:-$(dirname "$0")/..}
cd "$root" || { echo "check-layers.sh: cannot enter $root" >&2; exit 2; }
layers="core cpu vkengine vulkan api devtools tools"

rank() {
    r=0
    for l in $layers; do
        [ "$l" = "$1" ] && { echo $r; return; }
        r=$((r + 1))
    done
    echo -1
}

bad=0
for dir in $layers; do
    [ -d "$dir" ] || { echo "check-layers.sh: no folder $dir/" >&2; exit 2; }
    mine=$(rank "$dir")
    for f in "$dir"/*.c "$dir"/*.h; do
        [ -f "$f" ] || continue
        # "file:line:name" for each quoted include
        grep -n '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$f" |
            sed 's/^\([0-9]*\):[^"]*"\([^"]*\)".*/\1 \2/' > "${TMPDIR:-/tmp}/check-layers.$$"
        while read -r line name; do
            case "$name" in
            */*) top=${name%%/*} ;;
            *)
                if [ -f "$dir/$name" ] || [ -f "include/$name" ] || [ "$name" = vkgpt2_version.h ]; then
                    top=$dir
                else
                    top=
                    for l in $layers; do [ -f "$l/$name" ] && { top=$l; break; }; done
                    [ -n "$top" ] || top=$dir # a generated header (shaders' SPIR-V table)
                fi
                ;;
            esac
            [ "$top" = include ] && continue
            theirs=$(rank "$top")
            [ "$theirs" -lt 0 ] && continue # shaders/, build outputs
            if [ "$theirs" -gt "$mine" ]; then
                echo "$f:$line: includes \"$name\" from $top/, a layer above $dir/"
                bad=1
            fi
        done < "${TMPDIR:-/tmp}/check-layers.$$"
    done
done
rm -f "${TMPDIR:-/tmp}/check-layers.$$"
[ $bad = 0 ] && echo "check-layers.sh: every include points down ($layers)"
exit $bad
