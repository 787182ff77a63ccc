/*
 * Content-based page sharing: the host-wide table of shared frames.
 *
 * After Waldspurger, "Memory Resource Management in VMware ESX Server"
 * (OSDI 2002, §4): a page's contents are hashed; a hash that matches a
 * shared frame, or a "hint" (a page of some VM hashed earlier and not
 * shared), leads to a full comparison, and equal pages are backed by one
 * read-only host frame with a reference count; the first write to it gets
 * the writer a private copy. The story in hv86 (who scans, when a VM's
 * mappings change, how every writer unshares) is docs/memory-layout.md
 * "Page sharing"; the per-VM half (gpa -> hpa table, queue) is vmm/gmem.c.
 *
 * Trust: page contents are the guest's; a hash collision costs one
 * comparison, never a wrong share (every share compares all 4096 bytes).
 * The table holds host frames only; no guest value is used as an index
 * beyond the hash. All calls are interrupt-safe (one spinlock, IRQs off).
 */
#ifndef HV86_VMM_PSHARE_H
#define HV86_VMM_PSHARE_H
#include <stdbool.h>
#include <stdint.h>

#define PSHARE_MAX_FRAMES 16384u /* shared frames at a time (64 MiB of distinct content) */
#define PSHARE_HINTS      16384u /* hint slots, direct-mapped by hash */
#define PSHARE_BUCKETS    4096u  /* hash chains, by content hash and by frame */

/* Scanner defaults (mem share rate / period): 128 pages every 100 ticks. */
#define PSHARE_PERIOD_TICKS 100u
#define PSHARE_RATE_DEFAULT 1280u /* pages hashed per second, all VMs together */

struct pshare_stats {
    uint32_t frames;       /* shared frames now (ESX: "shared common") */
    uint32_t refs;         /* guest pages backed by them (ESX: "shared") */
    uint32_t scanned;      /* pages hashed by the scanner, ever */
    uint32_t merges;       /* pages that joined a shared frame */
    uint32_t promotions;   /* private frames that became shared (first copy of a content) */
    uint32_t unshares;     /* private copies made on a write */
    uint32_t reclaimed;    /* unshares of the last reference: the frame went back to private */
    uint32_t false_matches;/* equal hashes, different bytes (or the page changed since its hash) */
    uint32_t table_full;   /* promotions refused: PSHARE_MAX_FRAMES in use */
};

/* A page the scanner hashed and did not share (ESX's hint frame). */
struct pshare_hint {
    uint32_t hash;
    uint32_t hpa;   /* its frame when hashed; 0 = empty slot */
    uint32_t pfn;   /* guest page number */
    uint16_t vm;    /* VM slot + 1 */
};

/* pshare_init - allocate the table (heap: 608 KiB). 0 or E_NOMEM. */
int pshare_init(void);
/* Sharing on (the default) or off: off stops the scanner; pages already
 * shared stay shared until written (as ESX). */
void pshare_set_enabled(bool on);
bool pshare_enabled(void);
/* Scanner rate: pages hashed per second over all VMs (0 stops it). */
void pshare_set_rate(uint32_t pages_per_second);
uint32_t pshare_rate(void);

/* pshare_hash - 32-bit hash of a 4 KiB page: four interleaved FNV-1a lanes
 * over its 32-bit words, folded and finalized. Only equal within one boot
 * matters: shares are decided by comparing the bytes (pshare_share). */
uint32_t pshare_hash(const void *page);

/*
 * pshare_share - back a page of content hash `hash`, now in private frame
 * hpa, with a shared frame: the first shared frame whose 4096 bytes equal
 * hpa's gets one more reference (*shared = it, hpa is the caller's to free
 * once nothing maps it); if there is none and promote, hpa itself becomes
 * a shared frame with one reference (*shared = hpa). Returns 0, E_NOENT
 * (no equal frame, !promote), or E_NOSPC (table full). hpa must not change
 * during the call (it is the caller's VM's own page, on its own thread).
 */
int pshare_share(uint32_t hash, uint32_t hpa, bool promote, uint32_t *shared);
/*
 * pshare_unshare - a guest page backed by shared frame hpa is about to be
 * written: *priv = a frame with the same bytes that the caller owns. The
 * last reference keeps hpa itself (no copy, the entry goes); otherwise a
 * ZONE_HIGH frame is taken and filled, and hpa loses a reference. 0, or
 * E_NOMEM (no frame: the reference is kept). panic if hpa is not shared.
 */
int pshare_unshare(uint32_t hpa, uint32_t *priv);
/* pshare_put - drop one reference (a VM freeing its RAM); the last frees the frame. */
void pshare_put(uint32_t hpa);
/* True if some shared frame has content hash `hash` (the scanner's test). */
bool pshare_has_hash(uint32_t hash);
/*
 * pshare_hint - the scanner hashed page pfn of VM slot vm (frame hpa):
 * returns true if the hint slot of `hash` held a different page with that
 * hash (a likely duplicate: the caller asks its VM to promote the page),
 * and leaves this page there as the hint.
 */
bool pshare_hint(uint32_t hash, unsigned vm, uint32_t pfn, uint32_t hpa);
/* pshare_scanned - count n pages hashed (statistics). */
void pshare_scanned(uint32_t n);
void pshare_get_stats(struct pshare_stats *st);

/* vmm/pshare_scan.c: the scanner thread and the console's half. */
struct cmd_out;
/* pshare_start - pshare_init, then the scanner thread. 0 or E_NOMEM. */
int pshare_start(void);
/* The `mem` lines: on/off, rate, pages shared and saved, counters. */
void pshare_print(struct cmd_out *out);
/* `mem share on|off`, `mem share rate N`: argv after "mem". 0 or E_INVAL (printed). */
int pshare_command(int argc, char **argv, struct cmd_out *out);

#endif
