/*
 * Redo logs: the writes a guest made to a nonpersistent or undoable disk,
 * kept in host RAM instead of on the partition (docs/storage.md, "Guest
 * disks"; VMware's disk modes). The unit is a chunk of REDO_CHUNK_SECTORS
 * 512-byte sectors (one 4 KiB host frame from high memory), found by chunk
 * number in an open-addressing hash table. A log holds at most its cap of
 * chunks: a write that needs one more fails (E_NOSPC), and the guest sees
 * an I/O error; the host loses nothing.
 *
 * Trust: chunk numbers come from sectors the disk layer already checked
 * against the disk's size (vmm/vdisk.c); the frames are the monitor's.
 */
#ifndef HV86_VMM_REDO_H
#define HV86_VMM_REDO_H
#include <stdbool.h>
#include <stdint.h>

#define REDO_CHUNK_SECTORS 8u                     /* 4 KiB: one frame */
#define REDO_CHUNK_BYTES   (REDO_CHUNK_SECTORS * 512u)

/* KiB in chunks chunks of a redo log (what the console shows). */
static inline uint32_t redo_kib(uint32_t chunks) { return chunks * (REDO_CHUNK_BYTES / 1024); }

struct redo_slot {
    uint32_t chunk;
    uint32_t hpa;      /* 0: empty (high-memory frames are never at 0) */
};

struct redo {
    uint32_t cap;      /* chunks it may hold */
    uint32_t used;     /* chunks it holds */
    uint32_t nslots;   /* a power of two, at least 2 * cap */
    struct redo_slot *slot;
    uint8_t buf[REDO_CHUNK_BYTES]; /* one chunk on its way between a frame and the disk */
};

/* A log of at most cap_bytes (rounded down to chunks, at least one).
 * Returns the log (kzalloc'd; redo_free frees it) or NULL (E_NOMEM). */
struct redo *redo_create(uint64_t cap_bytes);
/* Every frame and the log itself. NULL is allowed. */
void redo_free(struct redo *r);
/* Forget every chunk (frames freed): the disk reads as the partition again. */
void redo_discard(struct redo *r);

/* The frame holding chunk, or 0 if the log has none. */
uint32_t redo_find(const struct redo *r, uint32_t chunk);
/* A fresh zeroed frame for chunk (its bytes through kmap_copy) (not held yet). Returns 0 with *hpa, or
 * E_NOSPC (the log is at its cap) or E_NOMEM (no host frame). */
int redo_add(struct redo *r, uint32_t chunk, uint32_t *hpa);

/* Call fn(chunk, hpa, ctx) for every chunk held, in table order; stops at
 * the first nonzero return and returns it. */
int redo_each(const struct redo *r, int (*fn)(uint32_t chunk, uint32_t hpa, void *ctx), void *ctx);

#endif
