/*
 * hv86 linear-address layout. The full story is docs/memory-layout.md; this
 * header is the single source of the numbers.
 *
 * The monitor (hypervisor code, data, heap, stacks, page tables) lives in the
 * top 64 MiB of EVERY linear address space: the host's own page directory and
 * every guest's shadow page directory share the same 16 page-directory entries
 * for [MONITOR_BASE, 4 GiB). Guest segments are truncated to end below
 * MONITOR_BASE (Intel SDM Vol. 3A §3.4.5 segment limit), so translated guest
 * code cannot reach it.
 */
#ifndef HV86_KERNEL_LAYOUT_H
#define HV86_KERNEL_LAYOUT_H

/* Unsigned constants that the assembler can read too. */
#ifdef __ASSEMBLER__
#define U32(x) x
#else
#define U32(x) x##u
#endif

#define PAGE_SIZE        U32(0x1000)      /* bytes in a 4 KiB page */
#define PAGE_SHIFT       12
#define PAGE_MASK        (~(PAGE_SIZE - 1))
#define LARGE_PAGE_SIZE  U32(0x400000)    /* bytes in a 4 MiB PSE page */

#define MONITOR_BASE     U32(0xFC000000)  /* first linear address of the monitor */
#define MONITOR_PDE_FIRST (MONITOR_BASE >> 22)  /* = 1008 */
#define MONITOR_PDES     U32(16)          /* PDEs 1008..1023 */

/* Direct map: linear MONITOR_BASE + pa for host physical pa < DIRECTMAP_SIZE. */
#define DIRECTMAP_BASE   MONITOR_BASE
#define DIRECTMAP_SIZE   U32(0x03800000)  /* 56 MiB */

/* Temporary per-slot mappings of arbitrary host frames (guest RAM, high frames). */
#define KMAP_BASE        U32(0xFF800000)
#define KMAP_SLOTS       U32(1024)        /* one page table of 4 KiB slots */

/* Reserved for the per-VM monitor area (shadow GDT/IDT/TSS of the running vCPU). */
#define VMAREA_BASE      U32(0xFFC00000)

/* Physical load address of the hypervisor image (GRUB puts it here). */
#define KERNEL_PHYS_BASE U32(0x00100000)
#define KERNEL_VIRT_BASE (MONITOR_BASE + KERNEL_PHYS_BASE)

#ifndef __ASSEMBLER__
#include <stdint.h>
/* Host physical <-> direct-map linear. Only valid for pa < DIRECTMAP_SIZE. */
static inline void *phys_to_virt(uint32_t pa) { return (void *)(uintptr_t)(pa + DIRECTMAP_BASE); }
static inline uint32_t virt_to_phys(const void *va) { return (uint32_t)(uintptr_t)va - DIRECTMAP_BASE; }
#endif

#endif
