/*
 * Kernel heap: size classes (16 .. 2048 bytes) carved from 4 KiB slabs, and
 * whole-page runs for larger requests. Every object carries a header (magic,
 * size class, state) and a trailing canary, so that double frees, frees of
 * foreign pointers and writes past the end are detected at kfree() and by
 * heap_check().
 *
 * Freed slab objects are filled with HEAP_POISON and checked when handed out
 * again, so that writes through a stale pointer are caught too.
 *
 * The core (struct heap) gets its pages from callbacks so that the unit tests
 * run it on the Linux host; the kernel instance gets direct-mapped frames
 * from frame_alloc(ZONE_DIRECT).
 *
 * Layout (bytes), the story in kernel/heap.c:
 *   slab page:  [slab descriptor, HEAP_SLAB_FIRST][slot][slot]...
 *   slot:       [object header 16][payload: class size][trailer 16]
 *   large run:  [descriptor, HEAP_SLAB_FIRST][object header 16][payload][canary 16]...
 * The canary is the HEAP_CANARY_BYTES bytes right after the requested size.
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
    size_t poison_faults;  /* freed objects found written to (use after free) */
};

#define HEAP_MIN_CLASS    16u   /* bytes in the smallest size class */
#define HEAP_MAX_CLASS    2048u /* bytes in the largest; bigger requests get pages */
#define HEAP_ALIGN        16u   /* every returned pointer is aligned to this */
#define HEAP_CANARY_BYTES 16u   /* guard bytes checked after each object */
#define HEAP_SLAB_FIRST   48u   /* bytes of descriptor at the start of a heap page */
#define HEAP_LARGE_OFFSET 64u   /* payload offset of a large object in its first page */
#define HEAP_POISON       0x6b  /* fill byte of freed slab objects */
#define HEAP_MAX_BYTES    0x40000000u /* larger requests fail (1 GiB) */

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
    struct heap_slab *full[HEAP_NCLASSES];    /* slabs without, for heap_check */
    struct heap_slab *spare; /* one empty slab page kept back from ops.page_free */
    struct heap_stats stats;
    struct heap_slab *large; /* list of large (page-run) allocations, for heap_check */
};

/* heap_init - empty heap over ops (copied); takes no pages yet. */
void heap_init(struct heap *h, const struct heap_ops *ops);
/*
 * heap_alloc - returns a 16-byte aligned block of at least bytes bytes, not
 * zeroed (slab objects hold HEAP_POISON), or NULL (bytes 0, bytes above
 * HEAP_MAX_BYTES, or ops.page_alloc failed); NULL counts in stats.failed_allocs.
 * Requests up to HEAP_MAX_CLASS come from the smallest class that holds them,
 * larger ones from a fresh run of whole pages. A freed object found written
 * to is quarantined (never handed out again, counted in stats.poison_faults,
 * reported by heap_check) and another one is used.
 */
void *heap_alloc(struct heap *h, size_t bytes);
/*
 * heap_free - release p. Returns 0; E_INVAL for a pointer the heap never
 * returned (foreign, unaligned, into the middle of an object); E_CORRUPT for a
 * double free or a damaged header/canary (nothing is freed then). NULL is 0.
 * p must point into mapped memory: the heap reads the start of p's page to
 * decide whether the page is one of its own. Empty slabs go back to
 * ops.page_free except one kept as h->spare; large runs go back at once.
 */
int heap_free(struct heap *h, void *p);
/* heap_check - walk every slab, slot and large object; returns 0 or E_CORRUPT
 * at the first damaged one (header, canary, poison, descriptor, counters). */
int heap_check(struct heap *h);
/* Copy the counters. */
void heap_get_stats(const struct heap *h, struct heap_stats *out);

#ifndef HV86_HOSTED
/* The kernel heap, over frame_alloc(ZONE_DIRECT) pages addressed through the
 * direct map, under one interrupt-disabling lock. kmalloc returns NULL when
 * memory is exhausted and panics on a use-after-free write; kzalloc also
 * zeroes; kfree panics on corruption or double free (a hypervisor bug, never
 * guest input). */
void kheap_init(void);
void *kmalloc(size_t bytes);
void *kzalloc(size_t bytes);
void kfree(void *p);
void kheap_stats(struct heap_stats *out);
#endif

#endif
