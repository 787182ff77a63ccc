/* mmu.h — 32-bit (non-PAE) paging structures. Source: Intel SDM Vol. 3A 4.3. */
#ifndef GUEST_MMU_H
#define GUEST_MMU_H

#include <stdint.h>

#define PAGE_SIZE   0x1000u
#define LARGE_SIZE  0x400000u           /* a 4 MiB page (CR4.PSE) */
#define PAGE_MASK   (~(PAGE_SIZE - 1))
#define LARGE_MASK  (~(LARGE_SIZE - 1))
#define PDX(va)     ((uint32_t)(va) >> 22)
#define PTX(va)     (((uint32_t)(va) >> 12) & 0x3FF)

#define PTE_P   (1u << 0)   /* present */
#define PTE_W   (1u << 1)   /* writable */
#define PTE_U   (1u << 2)   /* user accessible */
#define PTE_PWT (1u << 3)
#define PTE_PCD (1u << 4)
#define PTE_A   (1u << 5)   /* accessed: set by the CPU on any access */
#define PTE_D   (1u << 6)   /* dirty: set by the CPU on a write (PTE, 4 MiB PDE) */
#define PTE_PS  (1u << 7)   /* in a PDE: maps a 4 MiB page */
#define PTE_G   (1u << 8)   /* global (CR4.PGE) */

/* #PF error code (SDM 3A 4.7) */
#define PFE_P  (1u << 0)    /* 1: protection violation, 0: not present */
#define PFE_W  (1u << 1)    /* the access was a write */
#define PFE_U  (1u << 2)    /* the access was made at CPL 3 */

typedef uint32_t pte_t;

#endif
