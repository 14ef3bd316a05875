/* isa.c - which SIMD instruction set the CPU kernels use: detected once, overridable.
 *
 * The choice lives in one atomic int so the dispatchers can read it on every call for nothing.
 * VKGPT2_CPU_ISA=scalar|avx2|avx512|neon in the environment caps the choice at first use.
 */
#include "cpu_ops.h"

#include <stdlib.h>
#include <string.h>

static int g_active = -1; /* -1: not chosen yet; accessed with __atomic builtins */

cpu_isa cpu_isa_detect(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    int avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    /* F16C has no __builtin_cpu_supports name in older compilers; every AVX2 CPU has it. */
    if (avx2 && __builtin_cpu_supports("avx512f")) return CPU_ISA_AVX512;
    if (avx2) return CPU_ISA_AVX2;
    return CPU_ISA_SCALAR;
#elif defined(__aarch64__)
    return CPU_ISA_NEON;
#else
    return CPU_ISA_SCALAR;
#endif
}

int cpu_isa_supported(cpu_isa isa)
{
    cpu_isa best = cpu_isa_detect();
    switch (isa) {
    case CPU_ISA_SCALAR: return 1;
#if defined(__x86_64__)
    case CPU_ISA_AVX2: return best == CPU_ISA_AVX2 || best == CPU_ISA_AVX512;
    case CPU_ISA_AVX512: return best == CPU_ISA_AVX512;
#endif
#if defined(__aarch64__)
    case CPU_ISA_NEON: return best == CPU_ISA_NEON;
#endif
    default: return 0;
    }
}

static cpu_isa initial_choice(void)
{
    cpu_isa best = cpu_isa_detect();
#if !defined(__x86_64__) && !defined(__aarch64__)
    best = CPU_ISA_SCALAR;
#endif
    const char *env = getenv("VKGPT2_CPU_ISA");
    if (env && *env) {
        for (int i = CPU_ISA_SCALAR; i <= CPU_ISA_NEON; i++)
            if (strcmp(env, cpu_isa_name((cpu_isa)i)) == 0 && cpu_isa_supported((cpu_isa)i))
                return (cpu_isa)i;
    }
    return best;
}

cpu_isa cpu_isa_active(void)
{
    int a = __atomic_load_n(&g_active, __ATOMIC_RELAXED);
    if (a < 0) {
        a = (int)initial_choice();
        int expected = -1;
        if (!__atomic_compare_exchange_n(&g_active, &expected, a, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
            a = expected;
    }
    return (cpu_isa)a;
}

void cpu_isa_force(cpu_isa isa)
{
    if (!cpu_isa_supported(isa)) isa = initial_choice();
    __atomic_store_n(&g_active, (int)isa, __ATOMIC_RELAXED);
}

const char *cpu_isa_name(cpu_isa isa)
{
    switch (isa) {
    case CPU_ISA_SCALAR: return "scalar";
    case CPU_ISA_AVX2: return "avx2";
    case CPU_ISA_AVX512: return "avx512";
    case CPU_ISA_NEON: return "neon";
    }
    return "?";
}
