/*
 * Host paging. boot/entry.S left boot_pd with an identity map of 0-8 MiB and
 * the 56 MiB direct map at MONITOR_BASE in global 4 MiB pages. Here we drop
 * the identity map (nothing below MONITOR_BASE belongs to the hypervisor: it
 * is the guests' half) and hang the kmap page table at KMAP_BASE.
 * Source: Intel SDM Vol. 3A §4.3, §4.10.4 (TLB invalidation).
 */
#include "kernel/paging.h"
#include "kernel/kernel.h"
#include "kernel/layout.h"
#include "kernel/spinlock.h"
#include "kernel/x86.h"

extern uint32_t boot_pd[1024]; /* boot/entry.S; linked low, reached via the direct map */
static uint32_t kmap_pt[KMAP_SLOTS] __attribute__((aligned(PAGE_SIZE)));
static uint32_t kmap_used[KMAP_SLOTS / 32];
static uint32_t kmap_count;
static spinlock_t kmap_lock = SPINLOCK_INIT("kmap");

static uint32_t *host_pd(void) { return phys_to_virt((uint32_t)(uintptr_t)boot_pd); }

/* The last KMAP_CACHE_SLOTS slots are kmap_cached()'s, never kmap()'s. */
#define KMAP_CACHE_SLOTS 256u
#define KMAP_CACHE_FIRST (KMAP_SLOTS - KMAP_CACHE_SLOTS)

void paging_init(void)
{
    uint32_t *pd = host_pd();
    for (uint32_t s = KMAP_CACHE_FIRST; s < KMAP_SLOTS; s++)
        kmap_used[s / 32] |= 1u << (s % 32);
    pd[0] = pd[1] = 0;
    pd[KMAP_BASE >> 22] = virt_to_phys(kmap_pt) | PTE_P | PTE_RW | PTE_G;
    write_cr3(read_cr3()); /* flush the identity translations (non-global) */
}

uint32_t paging_host_pd(void) { return (uint32_t)(uintptr_t)boot_pd; }

const uint32_t *paging_monitor_pdes(void) { return host_pd() + MONITOR_PDE_FIRST; }

void *kmap(uint32_t pa)
{
    uint32_t fl = spin_lock_irqsave(&kmap_lock);
    for (uint32_t w = 0; w < ARRAY_SIZE(kmap_used); w++) {
        if (kmap_used[w] == 0xFFFFFFFFu)
            continue;
        uint32_t bit = (uint32_t)__builtin_ctz(~kmap_used[w]);
        uint32_t slot = w * 32 + bit;
        kmap_used[w] |= 1u << bit;
        kmap_count++;
        kmap_pt[slot] = (pa & PTE_FRAME) | PTE_P | PTE_RW | PTE_G;
        spin_unlock_irqrestore(&kmap_lock, fl);
        return (void *)(uintptr_t)(KMAP_BASE + slot * PAGE_SIZE);
    }
    spin_unlock_irqrestore(&kmap_lock, fl);
    return NULL;
}

void kunmap(void *va)
{
    uint32_t slot = ((uint32_t)(uintptr_t)va - KMAP_BASE) / PAGE_SIZE;
    KASSERT(slot < KMAP_SLOTS && (kmap_used[slot / 32] & (1u << (slot % 32))));
    uint32_t fl = spin_lock_irqsave(&kmap_lock);
    kmap_pt[slot] = 0;
    invlpg((uint32_t)(uintptr_t)va);
    kmap_used[slot / 32] &= ~(1u << (slot % 32));
    kmap_count--;
    spin_unlock_irqrestore(&kmap_lock, fl);
}

uint32_t kmap_in_use(void) { return kmap_count; }

void *kmap_cached(uint32_t pa)
{
    uint32_t frame = pa & PTE_FRAME;
    uint32_t slot = KMAP_CACHE_FIRST + ((frame >> PAGE_SHIFT) & (KMAP_CACHE_SLOTS - 1));
    uint32_t va = KMAP_BASE + slot * PAGE_SIZE;
    if ((kmap_pt[slot] & (PTE_FRAME | PTE_P)) != (frame | PTE_P)) {
        kmap_pt[slot] = frame | PTE_P | PTE_RW | PTE_G;
        invlpg(va);
    }
    return (void *)(uintptr_t)va;
}

/* kmap_cached's window is one per CPU and only good with interrupts off:
 * the flags to restore. The monitor's trap paths already run with them
 * off: then no CLI, and no POPF after (it ends a translated block under
 * QEMU TCG). */
static uint32_t window_irqs_off(void)
{
    uint32_t fl = read_eflags();
    if (fl & EFLAGS_IF)
        cpu_cli();
    return fl;
}

static void window_irqs_restore(uint32_t fl)
{
    if (fl & EFLAGS_IF)
        write_eflags(fl);
}

uint32_t kmap_read32(uint32_t pa, uint32_t off)
{
    uint32_t fl = window_irqs_off();
    uint32_t v = *(const volatile u32_any *)((const uint8_t *)kmap_cached(pa) + off);
    window_irqs_restore(fl);
    return v;
}

uint64_t kmap_read64(uint32_t pa, uint32_t off)
{
    uint32_t fl = window_irqs_off();
    const volatile u32_any *p = (const volatile u32_any *)((const uint8_t *)kmap_cached(pa) + off);
    uint64_t v = p[0] | (uint64_t)p[1] << 32;
    window_irqs_restore(fl);
    return v;
}

void kmap_write_words(uint32_t pa, uint32_t off, const void *buf, uint32_t n)
{
    uint32_t fl = window_irqs_off();
    volatile u32_any *p = (volatile u32_any *)((uint8_t *)kmap_cached(pa) + off);
    const u32_any *s = buf;
    for (uint32_t i = 0; i < n; i++)
        p[i] = s[i];
    window_irqs_restore(fl);
}

void kmap_copy(uint32_t pa, uint32_t off, void *buf, uint32_t len, enum kmap_dir dir)
{
    uint32_t fl = window_irqs_off();
    uint8_t *win = kmap_cached(pa);
    if ((len == 4 || len == 8) && dir == KMAP_READ) { /* a guest PDE or PTE, a descriptor: most calls */
        ((u32_any *)buf)[0] = *(const volatile u32_any *)(win + off);
        if (len == 8)
            ((u32_any *)buf)[1] = *(const volatile u32_any *)(win + off + 4);
    } else if (dir == KMAP_WRITE)
        memcpy(win + off, buf, len);
    else if (dir == KMAP_READ)
        memcpy(buf, win + off, len);
    else
        memset(win + off, 0, len);
    window_irqs_restore(fl);
}
