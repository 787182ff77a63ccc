/*
 * The hypervisor's own address space (docs/memory-layout.md): the 16 monitor
 * PDEs shared by every page directory, and kmap windows for host frames
 * outside the direct map. Source: Intel SDM Vol. 3A §4.3 (32-bit paging).
 */
#ifndef HV86_KERNEL_PAGING_H
#define HV86_KERNEL_PAGING_H
#include <stdint.h>

#define PTE_P   0x001u /* present */
#define PTE_RW  0x002u /* writable */
#define PTE_US  0x004u /* user */
#define PTE_PWT 0x008u
#define PTE_PCD 0x010u
#define PTE_A   0x020u /* accessed */
#define PTE_D   0x040u /* dirty */
#define PDE_PS  0x080u /* 4 MiB page (CR4.PSE) */
#define PTE_G   0x100u /* global: survives CR3 loads (CR4.PGE) */
#define PTE_FRAME 0xFFFFF000u

/* Drop the boot identity map, install the kmap page table. Call once, early. */
void paging_init(void);
/* Host physical address of the hypervisor's page directory. */
uint32_t paging_host_pd(void);
/* The MONITOR_PDES entries every page directory must carry at MONITOR_PDE_FIRST. */
const uint32_t *paging_monitor_pdes(void);
/*
 * kmap - map host frame pa (4 KiB aligned) at a free kmap slot; returns its
 * linear address, or NULL if all KMAP_SLOTS slots are in use. Interrupt-safe.
 */
void *kmap(uint32_t pa);
/* Release a slot returned by kmap and flush its TLB entry. */
void kunmap(void *va);
/* Slots currently in use. */
uint32_t kmap_in_use(void);

/*
 * kmap_cached - a window onto host frame pa (4 KiB aligned) from a small
 * direct-mapped cache of windows that stay mapped: no PTE write and no TLB
 * flush when the frame is the one its slot already shows. The window is
 * only good while nothing else calls kmap_cached: call with interrupts off
 * (no preemption) and keep no two windows at once. Never fails.
 */
void *kmap_cached(uint32_t pa);

/*
 * kmap_copy - len bytes at offset off of host frame pa (off + len <= 4 KiB)
 * copied to buf (KMAP_READ), from buf (KMAP_WRITE) or set to zero
 * (KMAP_ZERO, buf unused), through kmap_cached with interrupts off. Any
 * thread.
 */
enum kmap_dir { KMAP_READ, KMAP_WRITE, KMAP_ZERO };
void kmap_copy(uint32_t pa, uint32_t off, void *buf, uint32_t len, enum kmap_dir dir);

/*
 * kmap_read32, kmap_read64 - the 4 or 8 bytes at offset off of host frame
 * pa (4 KiB aligned; off + 4 or 8 <= 4 KiB, any alignment) as kmap_copy
 * would read them, without its dispatch on len and dir: the monitor's
 * most frequent reads (a guest PTE of a walk, a descriptor, an IDT gate),
 * several per guest page fault. Any thread.
 */
uint32_t kmap_read32(uint32_t pa, uint32_t off);
uint64_t kmap_read64(uint32_t pa, uint32_t off);
/* kmap_write_words - kmap_copy's KMAP_WRITE of n 4-byte words from buf to
 * offset off of host frame pa (off + 4 * n <= 4 KiB), a word at a time
 * rather than through memcpy: an interrupt frame given to a guest. */
void kmap_write_words(uint32_t pa, uint32_t off, const void *buf, uint32_t n);

#endif
