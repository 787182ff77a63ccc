/*
 * hv86 linear-address layout. The full story is docs/memory-layout.md; this
 * header is the single source of the numbers.
 *
 * The monitor (hypervisor code, data, heap, stacks, page tables) lives in
 * [MONITOR_BASE, MONITOR_END) of EVERY linear address space: the host's own
 * page directory and every guest's shadow page directory share the same 13
 * page-directory entries there, except the VMWIN_PDES of the per-VM window,
 * which each VM's directories fill with its own page tables. Guest segments are truncated to end below
 * MONITOR_BASE (Intel SDM Vol. 3A §3.4.5 segment limit), so translated guest
 * code cannot reach it: every guest access at or above MONITOR_BASE faults
 * and is emulated against the guest's own page tables.
 *
 * The top 12 MiB, [MONITOR_END, 4 GiB), hold nothing of the monitor and are
 * shadowed like the rest of the guest's space. On a CPU that enforces segment
 * limits (hardware, Bochs) guest accesses there are emulated all the same;
 * on one that does not (QEMU TCG ignores data-segment limits) they still reach
 * the guest's own pages -- Linux keeps its fixmap and cpu_entry_area (GDT,
 * text_poke slots) there -- instead of the monitor's memory.
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

#define MONITOR_BASE     U32(0xFC000000)  /* first linear address of the monitor; guest segments end below */
#define MONITOR_END      U32(0xFF400000)  /* first linear address above the monitor's mappings */
#define MONITOR_PDE_FIRST (MONITOR_BASE >> 22)  /* = 1008 */
#define MONITOR_PDE_END  (MONITOR_END >> 22)    /* = 1021 */
#define MONITOR_PDES     (MONITOR_PDE_END - MONITOR_PDE_FIRST) /* 13 */

/* Direct map: linear MONITOR_BASE + pa for host physical pa < DIRECTMAP_SIZE. */
#define DIRECTMAP_BASE   MONITOR_BASE
#define DIRECTMAP_SIZE   U32(0x02400000)  /* 36 MiB */

/*
 * Per-VM monitor window (kernel/vmwin.h): PDEs whose contents differ per VM.
 * A VM's shadow page directories (and its monitor page directory) map its
 * own window there -- its translation cache and shadow page tables, in
 * ZONE_HIGH frames -- and the host's page directory maps nothing. Its PTEs
 * are not global, so the CR3 load of every switch between two VMs' threads
 * drops the previous VM's window from the TLB (Intel SDM Vol. 3A §4.10.4.1).
 */
#define VMWIN_BASE       (DIRECTMAP_BASE + DIRECTMAP_SIZE) /* 0xFE400000 */
#define VMWIN_SIZE       U32(0x00C00000)  /* 12 MiB */
#define VMWIN_PDE_FIRST  (VMWIN_BASE >> 22)  /* = 1017 */
#define VMWIN_PDES       (VMWIN_SIZE >> 22)  /* = 3 */
#define VMWIN_PAGES      (VMWIN_SIZE >> PAGE_SHIFT) /* 3072 */

/* Temporary per-slot mappings of arbitrary host frames (guest RAM, high frames). */
#define KMAP_BASE        U32(0xFF000000)  /* = VMWIN_BASE + VMWIN_SIZE */
#define KMAP_SLOTS       U32(1024)        /* one page table of 4 KiB slots */

/* Physical load address of the hypervisor image (GRUB puts it here). */
#define KERNEL_PHYS_BASE U32(0x00100000)
#define KERNEL_VIRT_BASE (MONITOR_BASE + KERNEL_PHYS_BASE)

#ifndef __ASSEMBLER__
#include <stdint.h>
/* Host physical <-> direct-map linear. Only valid for pa < DIRECTMAP_SIZE. */
static inline void *phys_to_virt(uint32_t pa) { return (void *)(uintptr_t)(pa + DIRECTMAP_BASE); }
static inline uint32_t virt_to_phys(const void *va) { return (uint32_t)(uintptr_t)va - DIRECTMAP_BASE; }
/* Page-directory index pdx holds the monitor's mappings in every address space. */
static inline int monitor_pde(uint32_t pdx) { return pdx >= MONITOR_PDE_FIRST && pdx < MONITOR_PDE_END; }
/* Linear address lin lies in the per-VM window. */
static inline int in_vmwin(uint32_t lin) { return lin >= VMWIN_BASE && lin < VMWIN_BASE + VMWIN_SIZE; }
/* Linear address lin is one of the monitor's own. */
static inline int in_monitor(uint32_t lin) { return lin >= MONITOR_BASE && lin < MONITOR_END; }
_Static_assert(VMWIN_BASE + VMWIN_SIZE == KMAP_BASE, "the window ends where kmap starts");
_Static_assert(DIRECTMAP_SIZE % LARGE_PAGE_SIZE == 0 && VMWIN_SIZE % LARGE_PAGE_SIZE == 0, "whole PDEs");
#endif

#endif
