/*
 * The kernel services kernel/heap.h and kernel/pmm.h declare only for the
 * hypervisor build (#ifndef HV86_HOSTED), declared for a unit test that
 * links monitor code using them against its own stubs (test_vdisk, test_gmem).
 * Included with -include before everything else.
 */
#ifndef HV86_TESTS_HOSTED_KERNEL_H
#define HV86_TESTS_HOSTED_KERNEL_H
#include <stddef.h>
#include <stdint.h>
#include "kernel/pmm.h"
void *kzalloc(size_t bytes);
void kfree(void *p);
int frame_alloc(enum pmm_zone z, uint32_t nframes, uint32_t *pa);
int frame_alloc_exact(enum pmm_zone z, uint32_t nframes, uint32_t *pa);
void frame_free(uint32_t pa, uint32_t nframes);
#endif
