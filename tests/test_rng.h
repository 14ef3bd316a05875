/* test_rng.h - the seeded xorshift generator of the CPU kernel tests: rng_seed(s) then rng_unif()
 * in [0, 1) or rnd(lo, hi). Each test file that includes it gets its own state. */
#ifndef VKGPT2_TEST_RNG_H
#define VKGPT2_TEST_RNG_H

#include <stdint.h>

static uint64_t rng_s;

static inline void rng_seed(uint64_t s) { rng_s = s * 0x9E3779B97F4A7C15ull + 12345; }

static inline double rng_unif(void) /* [0, 1) */
{
    rng_s ^= rng_s << 13;
    rng_s ^= rng_s >> 7;
    rng_s ^= rng_s << 17;
    return (double)(rng_s >> 11) * (1.0 / 9007199254740992.0);
}

static inline float rnd(float lo, float hi) { return lo + (hi - lo) * (float)rng_unif(); }

#endif
