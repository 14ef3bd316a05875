/* test_isa.h - isa_list(out): every CPU ISA this machine runs, scalar first, for the kernel tests
 * that check each one. Returns how many it wrote (out needs room for CPU_ISA_NEON + 1). */
#ifndef VKGPT2_TEST_ISA_H
#define VKGPT2_TEST_ISA_H

#include "cpu/cpu_ops.h"

static inline int isa_list(cpu_isa *out)
{
    int k = 0;
    for (int i = CPU_ISA_SCALAR; i <= CPU_ISA_NEON; i++)
        if (cpu_isa_supported((cpu_isa)i)) out[k++] = (cpu_isa)i;
    return k;
}

#endif
