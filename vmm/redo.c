/*
 * Redo logs in host RAM (vmm/redo.h): an open-addressing hash table of
 * chunk -> frame, linear probing, never more than half full.
 */
#include "vmm/redo.h"
#include "kernel/heap.h"
#include "kernel/kernel.h"
#include "kernel/paging.h"
#include "kernel/pmm.h"

struct redo *redo_create(uint64_t cap_bytes)
{
    uint64_t cap = MAX(cap_bytes / REDO_CHUNK_BYTES, 1ull);
    if (cap > (1u << 24)) /* 64 GiB: more than this host has */
        cap = 1u << 24;
    struct redo *r = kzalloc(sizeof(*r));
    if (!r)
        return NULL;
    r->cap = (uint32_t)cap;
    r->nslots = 2;
    while (r->nslots < 2 * r->cap)
        r->nslots <<= 1;
    r->slot = kzalloc(r->nslots * sizeof(struct redo_slot));
    if (!r->slot) {
        kfree(r);
        return NULL;
    }
    return r;
}

void redo_discard(struct redo *r)
{
    for (uint32_t i = 0; r && i < r->nslots; i++) {
        if (r->slot[i].hpa)
            frame_free(r->slot[i].hpa, 1);
        r->slot[i] = (struct redo_slot){ 0, 0 };
    }
    if (r)
        r->used = 0;
}

void redo_free(struct redo *r)
{
    if (!r)
        return;
    redo_discard(r);
    kfree(r->slot);
    kfree(r);
}

/* Fibonacci hashing of the chunk number onto the table. */
static uint32_t home(const struct redo *r, uint32_t chunk) { return (chunk * 2654435769u) & (r->nslots - 1); }

uint32_t redo_find(const struct redo *r, uint32_t chunk)
{
    for (uint32_t i = home(r, chunk);; i = (i + 1) & (r->nslots - 1)) {
        if (!r->slot[i].hpa)
            return 0;
        if (r->slot[i].chunk == chunk)
            return r->slot[i].hpa;
    }
}

int redo_add(struct redo *r, uint32_t chunk, uint32_t *hpa)
{
    if (r->used >= r->cap)
        return E_NOSPC;
    if (frame_alloc(ZONE_HIGH, 1, hpa) && frame_alloc(ZONE_DIRECT, 1, hpa))
        return E_NOMEM;
    kmap_copy(*hpa, 0, NULL, REDO_CHUNK_BYTES, KMAP_ZERO);
    uint32_t i = home(r, chunk);
    while (r->slot[i].hpa)
        i = (i + 1) & (r->nslots - 1);
    r->slot[i] = (struct redo_slot){ chunk, *hpa };
    r->used++;
    return 0;
}


int redo_each(const struct redo *r, int (*fn)(uint32_t chunk, uint32_t hpa, void *ctx), void *ctx)
{
    for (uint32_t i = 0; i < r->nslots; i++) {
        if (r->slot[i].hpa) {
            int rc = fn(r->slot[i].chunk, r->slot[i].hpa, ctx);
            if (rc)
                return rc;
        }
    }
    return 0;
}
