/* variant_guard.h - no unverified kernel variant is used for real.
 *
 * The lavapipe test suite covers the plain kernels and lavapipe's own subgroup size; a GPU runs
 * variants the suite cannot have run as they will run there: the subgroup-arithmetic shaders at
 * subgroup sizes of 32 or 64 ("subgroup": matvec, layernorm, softmax, attention decode) and the
 * cooperative-matrix matmuls ("coopmat_nv", "coopmat_khr"). Before a session first uses one, the
 * guard runs it once on a small problem against the plain path (subgroup off, or the tiled
 * matmul) on fresh random inputs; a variant whose result is out of tolerance is turned off for
 * the device with a one-line notice. Verdicts are kept in a file beside the pipeline cache
 * (vk_pipeline_cache_path's directory, variants-<deviceUUID>-<driverVersion>.txt), so each
 * device and driver is checked once.
 *
 * VKGPT2_VARIANTS (comma list) overrides, for tests and for users working around a driver bug:
 *   -NAME  forbidden (never used, no check)     +NAME  forced on where the device runs it (no check)
 *   NAME may be subgroup, coopmat_nv, coopmat_khr or all.
 */
#ifndef VKG_VARIANT_GUARD_H
#define VKG_VARIANT_GUARD_H

#include <stdbool.h>
#include <stddef.h>

#include "vk_ops.h"

#define VKOPS_GUARD_N 3

/* The guarded variants, in a fixed order: "subgroup", "coopmat_nv", "coopmat_khr". */
const char *vk_guard_variant(int i);

/* What the guard decided for one variant. */
typedef struct vk_guard_state {
    const char *variant; /* its name */
    bool runs;           /* the device (and build) can run it */
    bool on;             /* in use after the guard */
    const char *how;     /* "checked", "cached", "forced", "forbidden", "unavailable", "unchecked"
                             (the check could not run: off, not cached) */
    double ratio;        /* the check's worst error over its tolerance (<= 1 passes); -1 if none */
} vk_guard_state;

/* Parses VKGPT2_VARIANTS (s may be NULL): force[i] = +1 forced, -1 forbidden, 0 guarded, for
 * vk_guard_variant(i). Returns 0, or -1 with a one-line reason naming the bad entry. */
int vk_guard_parse(const char *s, int force[VKOPS_GUARD_N], char *err, size_t errlen);

/* Applies VKGPT2_VARIANTS, the cached verdicts and the checks to o (vk_ops_variant_enable) and
 * fills st (may be NULL). The check's own allocations and submissions are not counted by
 * VKGPT2_FAULT's alloc:N / submit:N (vk_fault_pause). Returns 0, or -1 with err for a bad
 * VKGPT2_VARIANTS. */
int vk_guard_apply(vk_engine *e, vk_ops *o, vk_guard_state st[VKOPS_GUARD_N], char *err, size_t errlen);

/* The check of one variant alone (selftest): runs it against the plain path and returns 0 with
 * *ratio (worst error over tolerance), or -1 with err when the check could not run. o's variant
 * settings are restored. */
int vk_guard_check(vk_engine *e, vk_ops *o, const char *variant, double *ratio, char *err, size_t errlen);

/* The verdict file of e's device ("" when there is no cache directory). */
void vk_guard_cache_path(const vk_engine *e, char *path, size_t len);

#endif
