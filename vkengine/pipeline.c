/* pipeline.c - embedded SPIR-V lookup, compute pipelines (cached per name and specialization
 * constants), and the on-disk VkPipelineCache. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/outfile.h"
#include "vk_internal.h"
#include "vk_spirv.h"
#include "core/notice.h"

int vk_spirv_find(const char *name, const uint32_t **code, size_t *bytes)
{
    if (!name) return -1;
    for (size_t i = 0; i < vk_spirv_count; i++) {
        if (strcmp(vk_spirv_table[i].name, name) == 0) {
            if (code) *code = vk_spirv_table[i].code;
            if (bytes) *bytes = vk_spirv_table[i].bytes;
            return 0;
        }
    }
    return -1;
}

/* ---- pipeline cache on disk ---- */

/* $XDG_CACHE_HOME/vkgpt2 (absolute paths only, per the XDG spec), else $HOME/.cache/vkgpt2. */
static int cache_dir(char *buf, size_t len)
{
    const char *xdg = getenv("XDG_CACHE_HOME");
    const char *home = getenv("HOME");
    int n;
    if (xdg && xdg[0] == '/')
        n = snprintf(buf, len, "%s/vkgpt2", xdg);
    else if (home && home[0])
        n = snprintf(buf, len, "%s/.cache/vkgpt2", home);
    else
        return -1;
    return n > 0 && (size_t)n < len ? 0 : -1;
}

/* mkdir -p */
static int make_dirs(const char *path)
{
    char tmp[1024];
    if (snprintf(tmp, sizeof tmp, "%s", path) >= (int)sizeof tmp) return -1;
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(tmp, 0755) != 0 && errno != EEXIST) return -1;
        *p = '/';
    }
    if (mkdir(tmp, 0755) != 0 && errno != EEXIST) return -1;
    return 0;
}

/* Reads the cache file if it exists and its header is for this device and driver. */
static void *load_cache(const vk_engine *e, size_t *size)
{
    *size = 0;
    FILE *f = fopen(e->cache_path, "rb");
    if (!f) return NULL;
    void *data = NULL;
    long n = -1;
    if (fseek(f, 0, SEEK_END) == 0) n = ftell(f);
    if (n >= 32 && n < (1L << 30) && fseek(f, 0, SEEK_SET) == 0) {
        data = malloc((size_t)n);
        if (data && fread(data, 1, (size_t)n, f) != (size_t)n) {
            free(data);
            data = NULL;
        }
    }
    fclose(f);
    if (!data) return NULL;
    /* VkPipelineCacheHeaderVersionOne: headerSize, headerVersion, vendorID, deviceID, UUID */
    uint32_t h[4];
    memcpy(h, data, sizeof h);
    if (h[0] < 32 || h[0] > (uint32_t)n || h[1] != VK_PIPELINE_CACHE_HEADER_VERSION_ONE ||
        h[2] != e->caps.vendor_id || h[3] != e->device_id ||
        memcmp((char *)data + 16, e->caps.uuid, VK_UUID_SIZE) != 0) {
        free(data);
        return NULL;
    }
    *size = (size_t)n;
    return data;
}

/* Writes the cache next to its final name and renames it into place; failures are ignored (the
 * cache only saves compile time). */
static void save_cache(vk_engine *e)
{
    if (!e->pipeline_cache || !e->cache_path[0]) return;
    size_t n = 0;
    if (vkGetPipelineCacheData(e->device, e->pipeline_cache, &n, NULL) != VK_SUCCESS || n == 0) return;
    void *data = malloc(n);
    if (!data) return;
    if (vkGetPipelineCacheData(e->device, e->pipeline_cache, &n, data) != VK_SUCCESS) {
        free(data);
        return;
    }
    char dir[1024];
    if (cache_dir(dir, sizeof dir) == 0 && make_dirs(dir) == 0) {
        gpt2_out o; /* replaced whole or not at all (core/outfile.h) */
        if (gpt2_out_open(&o, e->cache_path, 0, NULL, 0) == 0) {
            gpt2_out_write(&o, data, n);
            gpt2_out_close(&o, NULL, 0);
        }
    }
    free(data);
}

int vk_pipelines_init(vk_engine *e, char *err, size_t errlen)
{
    VkPushConstantRange range = {
        .stageFlags = VK_SHADER_STAGE_COMPUTE_BIT,
        .offset = 0,
        .size = VKE_PUSH_BYTES,
    };
    VkPipelineLayoutCreateInfo lci = {
        .sType = VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO,
        .pushConstantRangeCount = 1,
        .pPushConstantRanges = &range,
    };
    VkResult r = vkCreatePipelineLayout(e->device, &lci, NULL, &e->layout);
    if (r != VK_SUCCESS) {
        e->layout = VK_NULL_HANDLE;
        vk_set_err(err, errlen, "Vulkan: vkCreatePipelineLayout failed", r);
        return -1;
    }

    char dir[1024];
    e->cache_path[0] = '\0';
    if (cache_dir(dir, sizeof dir) == 0) {
        char uuid[2 * VK_UUID_SIZE + 1];
        for (unsigned i = 0; i < VK_UUID_SIZE; i++) snprintf(uuid + 2 * i, 3, "%02x", e->caps.uuid[i]);
        int n = snprintf(e->cache_path, sizeof e->cache_path, "%s/%s-%08x.bin", dir, uuid,
                         e->caps.driver_version);
        if (n < 0 || (size_t)n >= sizeof e->cache_path) e->cache_path[0] = '\0';
    }
    size_t size = 0;
    void *data = e->cache_path[0] ? load_cache(e, &size) : NULL;
    VkPipelineCacheCreateInfo cci = {
        .sType = VK_STRUCTURE_TYPE_PIPELINE_CACHE_CREATE_INFO,
        .initialDataSize = size,
        .pInitialData = data,
    };
    r = vkCreatePipelineCache(e->device, &cci, NULL, &e->pipeline_cache);
    if (r != VK_SUCCESS && data) { /* a cache the driver rejects: start empty */
        cci.initialDataSize = 0;
        cci.pInitialData = NULL;
        r = vkCreatePipelineCache(e->device, &cci, NULL, &e->pipeline_cache);
    }
    free(data);
    if (r != VK_SUCCESS) /* no cache at all is harmless: pipelines are built from scratch */
        e->pipeline_cache = VK_NULL_HANDLE;
    return 0;
}

void vk_pipelines_destroy(vk_engine *e)
{
    save_cache(e);
    for (vk_pipeline *p = e->pipelines, *next; p; p = next) {
        next = p->next;
        vkDestroyPipeline(e->device, p->pipeline, NULL);
        free(p);
    }
    e->pipelines = NULL;
    if (e->pipeline_cache) vkDestroyPipelineCache(e->device, e->pipeline_cache, NULL);
    e->pipeline_cache = VK_NULL_HANDLE;
    if (e->layout) vkDestroyPipelineLayout(e->device, e->layout, NULL);
    e->layout = VK_NULL_HANDLE;
}

vk_pipeline *vk_pipeline_get(vk_engine *e, const char *name, const uint32_t *spec, int n_spec)
{
    return vk_pipeline_get_opts(e, name, spec, n_spec, NULL);
}

vk_pipeline *vk_pipeline_get_opts(vk_engine *e, const char *name, const uint32_t *spec, int n_spec,
                                  const vk_pipeline_opts *opts_in)
{
    vk_pipeline_opts opts = opts_in ? *opts_in : (vk_pipeline_opts){0};
    if (!e || !name) {
        gpt2_notice(VKG_NOTICE_ERROR, "vk_pipeline_get: no engine or no name");
        return NULL;
    }
    if (n_spec < 0 || n_spec > VKE_MAX_SPEC || (n_spec > 0 && !spec)) {
        gpt2_notice(VKG_NOTICE_ERROR,
                    "vk_pipeline_get(%s): bad specialization constant count %d "
                    "(at most %d)",
                    name, n_spec, VKE_MAX_SPEC);
        return NULL;
    }
    if (strlen(name) >= sizeof((vk_pipeline *)0)->name) {
        gpt2_notice(VKG_NOTICE_ERROR, "vk_pipeline_get: shader name too long: %s", name);
        return NULL;
    }
    const vk_caps *c = &e->caps;
    if (opts.required_subgroup_size &&
        (!c->subgroup_size_control || opts.required_subgroup_size < c->subgroup_min ||
         opts.required_subgroup_size > c->subgroup_max)) {
        gpt2_notice(VKG_NOTICE_ERROR,
                    "vk_pipeline_get(%s): the device cannot require subgroups of %u "
                    "(range %u..%u%s)",
                    name, opts.required_subgroup_size, c->subgroup_min, c->subgroup_max,
                    c->subgroup_size_control ? "" : ", no size control");
        return NULL;
    }
    if (opts.full_subgroups && !c->full_subgroups) {
        gpt2_notice(VKG_NOTICE_ERROR, "vk_pipeline_get(%s): the device has no computeFullSubgroups", name);
        return NULL;
    }
    for (vk_pipeline *p = e->pipelines; p; p = p->next)
        if (p->n_spec == n_spec && strcmp(p->name, name) == 0 &&
            p->opts.required_subgroup_size == opts.required_subgroup_size &&
            p->opts.full_subgroups == opts.full_subgroups &&
            (n_spec == 0 || memcmp(p->spec, spec, (size_t)n_spec * sizeof *spec) == 0))
            return p;

    const uint32_t *code;
    size_t bytes;
    if (vk_spirv_find(name, &code, &bytes)) {
        gpt2_notice(VKG_NOTICE_ERROR, "vk_pipeline_get: no shader named '%s' is embedded", name);
        return NULL;
    }
    vk_pipeline *p = calloc(1, sizeof *p);
    if (!p) {
        gpt2_notice(VKG_NOTICE_ERROR, "vk_pipeline_get(%s): out of host memory", name);
        return NULL;
    }
    snprintf(p->name, sizeof p->name, "%s", name);
    p->n_spec = n_spec;
    p->opts = opts;
    if (n_spec) memcpy(p->spec, spec, (size_t)n_spec * sizeof *spec);
    p->layout = e->layout;

    VkShaderModuleCreateInfo mci = {
        .sType = VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO,
        .codeSize = bytes,
        .pCode = code,
    };
    VkShaderModule module;
    VkResult r = vkCreateShaderModule(e->device, &mci, NULL, &module);
    if (r != VK_SUCCESS) {
        gpt2_notice(VKG_NOTICE_ERROR, "vkCreateShaderModule(%s): %s", name, vk_result_str(r));
        free(p);
        return NULL;
    }
    VkSpecializationMapEntry entries[VKE_MAX_SPEC];
    for (int i = 0; i < n_spec; i++)
        entries[i] = (VkSpecializationMapEntry){
            .constantID = (uint32_t)i,
            .offset = (uint32_t)(i * sizeof(uint32_t)),
            .size = sizeof(uint32_t),
        };
    VkSpecializationInfo si = {
        .mapEntryCount = (uint32_t)n_spec,
        .pMapEntries = entries,
        .dataSize = (size_t)n_spec * sizeof(uint32_t),
        .pData = p->spec,
    };
    /* A kernel that assumes a subgroup width (the coopmat ones: 4 subgroups of 32) gets it
     * required, with full subgroups, instead of trusting the default size. */
    VkPipelineShaderStageRequiredSubgroupSizeCreateInfo rss = {
        .sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_REQUIRED_SUBGROUP_SIZE_CREATE_INFO,
        .requiredSubgroupSize = opts.required_subgroup_size,
    };
    VkComputePipelineCreateInfo pci = {
        .sType = VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO,
        .stage =
            {
                .sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO,
                .pNext = opts.required_subgroup_size ? &rss : NULL,
                .flags = opts.full_subgroups ? VK_PIPELINE_SHADER_STAGE_CREATE_REQUIRE_FULL_SUBGROUPS_BIT : 0,
                .stage = VK_SHADER_STAGE_COMPUTE_BIT,
                .module = module,
                .pName = "main",
                .pSpecializationInfo = n_spec ? &si : NULL,
            },
        .layout = e->layout,
    };
    r = vkCreateComputePipelines(e->device, e->pipeline_cache, 1, &pci, NULL, &p->pipeline);
    vkDestroyShaderModule(e->device, module, NULL);
    if (r != VK_SUCCESS) {
        gpt2_notice(VKG_NOTICE_ERROR, "vkCreateComputePipelines(%s): %s", name, vk_result_str(r));
        free(p);
        return NULL;
    }
    p->next = e->pipelines;
    e->pipelines = p;
    return p;
}

int vk_pipeline_from_spirv(vk_engine *e, const uint32_t *code, size_t n_words, const uint32_t *spec_ids,
                           const uint32_t *spec_values, int n_spec, const char *name, vk_pipeline *pl,
                           char *err, size_t errlen)
{
    VkShaderModuleCreateInfo mci = {
        .sType = VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO, .codeSize = n_words * 4, .pCode = code};
    char what[96];
    VkShaderModule mod;
    VkResult r = vkCreateShaderModule(e->device, &mci, NULL, &mod);
    snprintf(what, sizeof what, "%s: vkCreateShaderModule", name);
    if (r != VK_SUCCESS) {
        vk_set_err(err, errlen, what, r);
        return -1;
    }
    VkSpecializationMapEntry ent[VKE_MAX_SPEC];
    uint32_t vals[VKE_MAX_SPEC];
    for (int i = 0; i < n_spec; i++) {
        ent[i] = (VkSpecializationMapEntry){.constantID = spec_ids[i], .offset = (uint32_t)i * 4, .size = 4};
        vals[i] = spec_values[i];
    }
    VkSpecializationInfo si = {
        .mapEntryCount = (uint32_t)n_spec, .pMapEntries = ent, .dataSize = (size_t)n_spec * 4, .pData = vals};
    VkComputePipelineCreateInfo pci = {
        .sType = VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO,
        .stage = {.sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO,
                  .stage = VK_SHADER_STAGE_COMPUTE_BIT,
                  .module = mod,
                  .pName = "main",
                  .pSpecializationInfo = n_spec ? &si : NULL},
        .layout = e->layout,
    };
    memset(pl, 0, sizeof *pl);
    r = vkCreateComputePipelines(e->device, VK_NULL_HANDLE, 1, &pci, NULL, &pl->pipeline);
    vkDestroyShaderModule(e->device, mod, NULL);
    snprintf(what, sizeof what, "%s: vkCreateComputePipelines", name);
    if (r != VK_SUCCESS) {
        vk_set_err(err, errlen, what, r);
        return -1;
    }
    pl->layout = e->layout;
    snprintf(pl->name, sizeof pl->name, "%s", name);
    return 0;
}

void vk_pipeline_release(vk_engine *e, vk_pipeline *pl)
{
    if (pl->pipeline) vkDestroyPipeline(e->device, pl->pipeline, NULL);
    pl->pipeline = VK_NULL_HANDLE;
}

/* Where the pipeline cache is saved ("" when nowhere). */
const char *vk_pipeline_cache_path(const vk_engine *e) { return e->cache_path; }
