/* volk_impl.c - the one translation unit that compiles volk (the run-time Vulkan loader). Debian's
 * libvulkan-volk-dev ships volk.c as a header-side source; its warnings are not ours to fix. */
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpedantic"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wcast-function-type"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wsign-compare"
#endif

#include <volk.c>

#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif
