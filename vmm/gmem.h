/*
 * Guest-physical memory: a VM's RAM is a set of host frames in no particular
 * order, found through a gpa -> hpa table (one entry per 4 KiB guest page).
 * The monitor reaches guest RAM through kmap windows, never through a
 * mapping the guest controls. Guest-physical addresses outside RAM are not
 * memory: they belong to device emulation or fault.
 *
 * Page sharing (vmm/pshare.h, docs/memory-layout.md "Page sharing"): a
 * page may be backed by a frame shared copy-on-write with other pages of
 * this or other VMs (GMEM_SHARED in its table entry). Every path that
 * writes guest RAM -- gmem_write, gmem_zero, gmem_gpa_to_hpa_w (a mapping
 * or a device that may write) -- gives the page a private frame first;
 * reads and read-only lookups do not. The table changes only on the VM's
 * own vCPU thread (or while the VM does not run), the scanner only reads it.
 */
#ifndef HV86_VMM_GMEM_H
#define HV86_VMM_GMEM_H
#include <stdbool.h>
#include <stdint.h>

#define GMEM_SHARED      1u  /* in hpa[]: the frame is shared (read-only for everyone) */
/* Share requests queued per VM between two applies (gmem_share_due). A
 * bigger batch (256) spread each apply's sweep over more pages, but the
 * queue lives in struct vm, in the direct map, which 64 VMs share. */
#define GMEM_SHARE_BATCH 64u
/* Ticks a queued request may wait for more to join it (gmem_share_due). */
#define GMEM_SHARE_WAIT_TICKS 500u

/* A page the scanner found worth sharing (vmm/pshare.c), for the VM's thread. */
struct gmem_share_req {
    uint32_t pfn;     /* guest page number */
    uint32_t hpa;     /* its private frame when hashed: stale if hpa[pfn] differs now */
    bool promote;     /* no shared frame had its hash, a hint did: may become one */
};

struct gmem {
    uint32_t npages;  /* guest RAM in 4 KiB pages */
    uint32_t *hpa;    /* hpa[gpa >> 12]: host physical frame | GMEM_SHARED, kmalloc'd table */
    uint32_t nshared; /* pages backed by a shared frame */
    uint32_t scan_next; /* the scanner's next page */
    /* Called after page gpa left shared frame old for a private one
     * (unshare), and before the frames hpas[0..n) are shared (the array
     * may be reordered): every mapping the VM's shadow has of them must go.
     * NULL: nothing maps guest RAM (tests, a VM that never ran). */
    void (*unshared)(void *ctx, uint32_t gpa, uint32_t old);
    void (*sharing)(void *ctx, uint32_t *hpas, unsigned n);
    void *ctx;
    volatile uint32_t nreq; /* queued share requests (scanner -> vCPU thread) */
    uint64_t req_seen;      /* tick the VM's thread first saw requests queued, 0: none seen */
    struct gmem_share_req req[GMEM_SHARE_BATCH];
};

/*
 * gmem_init - allocate bytes (rounded up to 4 KiB) of guest RAM from
 * ZONE_HIGH frames (falling back to ZONE_DIRECT), zeroed. Returns 0 or
 * E_NOMEM (nothing stays allocated then).
 */
int gmem_init(struct gmem *m, uint32_t bytes);
/* Return every frame to the allocator (a shared one loses a reference).
 * Safe on a zeroed or freed gmem. */
void gmem_free(struct gmem *m);
/*
 * gmem_gpa_to_hpa - host address behind gpa for reading only: 0 (a private
 * frame), GMEM_SHARED (a shared frame: never write it, nor map it
 * writable), or E_RANGE if gpa is outside guest RAM.
 */
int gmem_gpa_to_hpa(const struct gmem *m, uint32_t gpa, uint32_t *hpa);
/*
 * gmem_gpa_to_hpa_w - host address behind gpa for a writer (a writable
 * mapping, device DMA): unshares the page first. 0, E_RANGE, or E_NOMEM
 * (no frame for the private copy; nothing changed).
 */
int gmem_gpa_to_hpa_w(struct gmem *m, uint32_t gpa, uint32_t *hpa);
/*
 * gmem_scan_page - the scanner's step (vmm/pshare.c): hash the next page
 * of m (VM slot vm) and queue it for gmem_share_apply if a shared frame or
 * a hint has its hash. Call with interrupts off, with m alive; reads only.
 * Returns 1 if a request was queued, 0 otherwise.
 */
int gmem_scan_page(struct gmem *m, unsigned vm);
/*
 * gmem_share_apply - on the VM's own thread: share the queued pages that
 * are still what was hashed and equal, byte for byte, to a shared frame (or
 * become one). Calls m->sharing once for the batch, then installs. Returns
 * the pages newly shared.
 */
uint32_t gmem_share_apply(struct gmem *m);
/*
 * gmem_share_due - on the VM's own thread, at tick now: is it time for
 * gmem_share_apply? Yes once the batch is full, or GMEM_SHARE_WAIT_TICKS
 * after this thread first saw requests queued. Each apply sweeps every
 * shadow PT of the VM once (m->sharing: about a million instructions with
 * a few hundred tables), so requests are gathered instead of applied one
 * scanner pass (100 ms) at a time: the sweep then serves up to a batch.
 */
bool gmem_share_due(struct gmem *m, uint64_t now);
/*
 * gmem_share_ready - gmem_share_due's answer from what it recorded, read
 * only (interrupt handlers on the VM's thread ask it: does the run loop
 * have shares to apply?). Requests the thread has not yet seen wait for
 * the run loop's next turn unless the batch is full: until then the
 * in-world paths (system calls, faults given to the guest) go on. With
 * sharing turned off, queued requests are due at once: gmem_share_apply
 * drops them (`mem share off`: no merge after it).
 */
bool gmem_share_ready(const struct gmem *m, uint64_t now);
/* Copy between guest RAM and host memory; E_RANGE if any byte is outside
 * (nothing copied), E_NOMEM if a page could not be unshared (the pages
 * before it are written). */
int gmem_read(const struct gmem *m, uint32_t gpa, void *buf, uint32_t len);
/* gmem_read of the 4 bytes at gpa (4-byte aligned: a guest PDE or PTE),
 * without the page loop: 0, or E_RANGE (nothing read). */
int gmem_read32(const struct gmem *m, uint32_t gpa, uint32_t *val);
int gmem_write(struct gmem *m, uint32_t gpa, const void *buf, uint32_t len);
int gmem_zero(struct gmem *m, uint32_t gpa, uint32_t len);

#endif
