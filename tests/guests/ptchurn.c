/*
 * ptchurn — a guest kernel that churns through page tables: rounds=N
 * (default 4) passes over 320 regions of 4 MiB, each mapped by a page
 * table of its own, read one after the other; then swaps=M (default
 * 20000) times one directory entry pointed at the next of 8 page tables,
 * flushed with INVLPG as the SDM requires (INVLPG invalidates the
 * paging-structure caches for that address, Vol. 3A §4.10.4.1), and read
 * through.
 *
 * Hazard: 320 page tables are more than hv86's shadow pool per VM holds
 * (SH_MAX_PTS, 256): once it is full, every first access to a region is a
 * hidden fault whose fill evicts a shadow table of the loaded directory,
 * which flushes the whole shadow from inside the guest's trap (vmm/vcpu.c
 * sh_flush_all), thousands of times a second. With another VM running, a
 * host timer interrupt may switch to it between one such trap and the
 * next. Until December 2026 (docs/security.md F9) such a flush left the
 * thread's TSS.esp0 unset, and this guest's next trap could land on the
 * other VM's thread stack: the monitor then ran with that thread's
 * registers, and guest kernel code at ring 0. vms-isolation runs it beside
 * other VMs. Natively (QEMU, Bochs) and under hv86 alike, every read
 * returns its own mark, and the output is the same.
 */
#include "guest.h"

#define VA       0x40000000u /* the regions: 4 MiB each from here */
#define NREGIONS 320
#define NDATA    8
#define SWAP_VA  (VA + NREGIONS * 0x400000u)
#define MARK     0x7AB10000u

static volatile uint32_t tables[NREGIONS][1024] ALIGNED(PAGE_SIZE);
static volatile uint32_t data[NDATA][1024] ALIGNED(PAGE_SIZE);

static uint32_t region_va(uint32_t i) { return VA + i * 0x400000u + (i % 1024) * PAGE_SIZE; }

static bool reads_mark(uint32_t va, uint32_t k)
{
    volatile uint32_t *p = (volatile uint32_t *)va;
    return p[0] == MARK + k && p[1] == ~(MARK + k);
}

/* Every region once a pass: each reads the data page its own table maps. */
static void regions(uint32_t rounds)
{
    uint32_t bad = 0;
    for (uint32_t i = 0; i < NREGIONS; i++) {
        tables[i][(region_va(i) >> 12) & 1023] = (uint32_t)data[i % NDATA] | PTE_P | PTE_W;
        kernel_pd[PDX(region_va(i))] = (uint32_t)tables[i] | PTE_P | PTE_W;
    }
    for (uint32_t r = 0; r < rounds; r++)
        for (uint32_t i = 0; i < NREGIONS; i++)
            bad += !reads_mark(region_va(i), i % NDATA);
    check("ptchurn-regions-each-read-through-its-own-table", bad == 0, "%u of %u reads wrong", bad,
          rounds * NREGIONS);
    for (uint32_t i = 0; i < NREGIONS; i++)
        kernel_pd[PDX(region_va(i))] = 0;
}

/* One directory entry moved from table to table, INVLPG after each move. */
static void swaps(uint32_t n)
{
    uint32_t bad = 0;
    for (uint32_t i = 0; i < NDATA; i++)
        tables[i][0] = (uint32_t)data[i] | PTE_P | PTE_W;
    for (uint32_t r = 0; r < n; r++) {
        uint32_t i = r % NDATA;
        kernel_pd[PDX(SWAP_VA)] = (uint32_t)tables[i] | PTE_P | PTE_W;
        invlpg(SWAP_VA);
        bad += !reads_mark(SWAP_VA, i);
    }
    check("ptchurn-swapped-entry-reads-through-its-table", bad == 0, "%u of %u reads wrong", bad, n);
    kernel_pd[PDX(SWAP_VA)] = 0;
    invlpg(SWAP_VA);
}

void guest_main(void)
{
    for (uint32_t k = 0; k < NDATA; k++) {
        data[k][0] = MARK + k;
        data[k][1] = ~(MARK + k);
    }
    paging_enable(paging_identity());
    regions(boot_arg("rounds", 4));
    for (uint32_t i = 0; i < NREGIONS; i++)
        tables[i][(region_va(i) >> 12) & 1023] = 0;
    swaps(boot_arg("swaps", 20000));
    paging_disable();
}
