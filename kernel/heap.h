/*
 * Kernel heap: size classes (16 .. 2048 bytes) carved from 4 KiB slabs, and
 * whole-page runs for larger requests. Every object carries a header (magic,
 * size class, state) and a trailing canary, so that double frees, frees of
 * foreign pointers and writes past the end are detected at kfree() and by
 * heap_check().
 *
 * The core (struct heap) gets its pages from callbacks so that the unit tests
 * run it on the Linux host; the kernel instance gets direct-mapped frames
 * from frame_alloc(ZONE_DIRECT).
 */
#ifndef HV86_KERNEL_HEAP_H
#define HV86_KERNEL_HEAP_H
#include <stddef.h>
#include <stdint.h>

struct heap_stats {
    size_t bytes_in_use;   /* bytes handed out (requested sizes) */
    size_t bytes_reserved; /* bytes of pages held by the heap */
    size_t allocs;         /* live allocations */
    size_t total_allocs;   /* allocations since init */
    size_t failed_allocs;  /* requests that returned NULL */
};

struct heap_ops {
    /* Return npages contiguous 4 KiB-aligned pages, or NULL. */
    void *(*page_alloc)(void *ctx, size_t npages);
    void (*page_free)(void *ctx, void *pages, size_t npages);
    void *ctx;
};

#define HEAP_NCLASSES 8 /* 16 32 64 128 256 512 1024 2048 */
struct heap_slab;
struct heap {
    struct heap_ops ops;
    struct heap_slab *partial[HEAP_NCLASSES]; /* slabs with free slots */
    struct heap_stats stats;
    void *large; /* list of large (page-run) allocations, for heap_check */
};

void heap_init(struct heap *h, const struct heap_ops *ops);
/* Returns a 16-byte aligned block of at least bytes bytes, or NULL (bytes 0 or
 * out of pages). */
void *heap_alloc(struct heap *h, size_t bytes);
/* Returns 0; E_INVAL for a pointer the heap never returned; E_CORRUPT for a
 * double free or a damaged header/canary (nothing is freed then). NULL is 0. */
int heap_free(struct heap *h, void *p);
/* Walk every live object; returns 0 or E_CORRUPT at the first damaged one. */
int heap_check(struct heap *h);
void heap_get_stats(const struct heap *h, struct heap_stats *out);

#ifndef HV86_HOSTED
/* The kernel heap. kmalloc returns NULL when memory is exhausted; kfree panics
 * on corruption or double free (a hypervisor bug, never guest input). */
void kheap_init(void);
void *kmalloc(size_t bytes);
void *kzalloc(size_t bytes);
void kfree(void *p);
void kheap_stats(struct heap_stats *out);
#endif

#endif
