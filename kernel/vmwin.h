/*
 * Per-VM monitor window (docs/memory-layout.md, "Per-VM monitor window").
 *
 * [VMWIN_BASE, VMWIN_BASE + VMWIN_SIZE) is part of the monitor region in
 * every address space, but what it maps depends on the VM: each VM has its
 * own VMWIN_PDES page tables there, linked into every shadow page directory
 * of that VM and into its "monitor page directory" (the host's directory
 * plus the window), and into no other directory. The window holds the VM's
 * translation cache and shadow page tables in ZONE_HIGH frames, so that
 * what a VM needs grows with the RAM of the host, not with the shared
 * direct map.
 *
 * Rules that keep it correct:
 *   - window PTEs are not global: the CR3 load of any switch between two
 *     VMs' threads (the scheduler loads CR3 whenever it differs) drops the
 *     previous VM's window from the TLB (Intel SDM Vol. 3A §4.10.4.1);
 *   - a pointer into the window is only good in an address space of its VM:
 *     the VM's vCPU thread (shadow directory or monitor directory), or a host
 *     thread between vmwin_enter and vmwin_leave;
 *   - the guest cannot reach it: the window lies above MONITOR_BASE, where
 *     every guest segment ends (Intel SDM Vol. 3A §3.4.5), and its PTEs are
 *     supervisor-only.
 * Frames are given back only by vmwin_destroy (the VM's lifetime).
 */
#ifndef HV86_KERNEL_VMWIN_H
#define HV86_KERNEL_VMWIN_H
#include <stdint.h>
#include "kernel/layout.h"

struct vmwin {
    uint32_t pd_hpa;               /* the VM's monitor page directory (direct-map frame); 0: none */
    uint32_t *pt[VMWIN_PDES];      /* the window's page tables (direct map) */
    uint32_t pdes[MONITOR_PDES];   /* the monitor PDEs of every directory of this VM */
    uint32_t pages;                /* 4 KiB pages handed out from VMWIN_BASE on */
};

/*
 * vmwin_init - an empty window for a new VM: one directory and VMWIN_PDES
 * page tables (4 direct-map frames). Returns 0 or E_NOMEM (direct map
 * exhausted; nothing is left allocated).
 */
int vmwin_init(struct vmwin *w);

/*
 * vmwin_alloc - the next bytes (rounded up to 4 KiB pages) of the window,
 * each page backed by a zeroed ZONE_HIGH frame (never the direct map).
 * Stores the window address (only good in the VM's address spaces) in *va.
 * Returns 0, E_RANGE (the window has fewer pages left) or E_NOMEM (no high
 * frame); on failure nothing is allocated.
 */
int vmwin_alloc(struct vmwin *w, uint32_t bytes, void **va);

/*
 * vmwin_reserve - the next 4 KiB page of the window with no frame behind
 * it (not present), for vmwin_alias. Stores its window address in *va.
 * Returns 0 or E_RANGE (the window is full).
 */
int vmwin_reserve(struct vmwin *w, void **va);

/*
 * vmwin_alias - map a page vmwin_reserve gave (va) read-only onto frame
 * hpa (a frame of the VM's own RAM: the caller keeps it so, remapping
 * whenever the frame it stands for changes), or unmap it (hpa 0), and drop
 * its TLB entry. Only in the VM's address space (its vCPU thread, or
 * between vmwin_enter and vmwin_leave). vmwin_destroy never frees hpa.
 */
void vmwin_alias(struct vmwin *w, const void *va, uint32_t hpa);

/* Host physical address of window address va (allocated), or 0. */
uint32_t vmwin_hpa(const struct vmwin *w, const void *va);

/* Pages of the window handed out (each one ZONE_HIGH frame). */
static inline uint32_t vmwin_pages(const struct vmwin *w) { return w->pages; }

/*
 * vmwin_enter - the calling host thread works in w's VM's address space
 * (its monitor page directory) until vmwin_leave with the returned value.
 * Window pointers of that VM are good in between. Not for the VM's own vCPU
 * thread, which is there already.
 */
uint32_t vmwin_enter(const struct vmwin *w);
void vmwin_leave(uint32_t token);

/*
 * vmwin_destroy - free every frame of the window, its page tables and
 * directory. No thread may be in the VM's address space any more (the vCPU
 * thread has ended; a CR3 still naming the directory would run on a freed
 * frame).
 */
void vmwin_destroy(struct vmwin *w);

#endif
