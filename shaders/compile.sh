#!/bin/sh
# compile.sh GLSLANG SPIRV_VAL INPUT.comp OUTPUT.spv DEPFILE [extra glslangValidator args...]
# Compiles one compute shader to SPIR-V for Vulkan 1.2 (or the target environment named by
# VKG_SPV_ENV, e.g. vulkan1.3 for GL_KHR_cooperative_matrix) and validates the result with spirv-val;
# any failure of either step fails the build. Shaders may #include files next to them
# (GL_GOOGLE_include_directive); the depfile lets the build recompile when an include changes.
set -e
glslang="$1"; spirv_val="$2"; input="$3"; output="$4"; depfile="$5"
shift 5
env="${VKG_SPV_ENV:-vulkan1.2}"
srcdir=$(dirname "$input")
"$glslang" -V --target-env "$env" --quiet -I"$srcdir" --depfile "$depfile" \
    -o "$output.tmp" "$@" "$input"
# Scalar block layout: the engine enables scalarBlockLayout on every device that has it, and the
# shaders are allowed to use GL_EXT_scalar_block_layout for tightly packed buffer references.
if ! "$spirv_val" --target-env "$env" --scalar-block-layout "$output.tmp"; then
    echo "compile.sh: spirv-val rejected the SPIR-V compiled from $input" >&2
    rm -f "$output.tmp"
    exit 1
fi
mv -f "$output.tmp" "$output"
