/*
 * apichammer — a guest kernel that goes after hv86's emulated APICs: the
 * local APIC and I/O APIC pages through the monitor's own linear range
 * (0xFEE00000 and 0xFEC00000 with paging off: a flat segment reaches them
 * there, so every access is emulated) and through a low mapping; accesses
 * of every size at every offset, misaligned and across the page end,
 * string instructions over whole pages, junk in every register, the APIC
 * base moved onto the I/O APIC, into RAM and off the top, reserved base
 * bits, redirection entries with illegal and odd vectors, level inputs
 * left asserted, illegal self-IPIs and a one-microsecond periodic timer.
 *
 * No native reference (hv86 only, under Bochs: through segments it would
 * reach host memory under QEMU TCG, which ignores segment limits). What it
 * checks is that it survives and the APIC still works afterwards; the
 * isolation test checks that the monitor and the guests beside it do.
 */
#include "guest.h"

#define LAPIC_PA  0xFEE00000u
#define IOAPIC_PA 0xFEC00000u
#define LAPIC_VA  0x00400000u
#define MSR_APIC_BASE 0x1Bu
#define SVR 0xF0
#define EOI 0xB0
#define ICR 0x300
#define LVT_TIMER 0x320
#define TMICT 0x380
#define TDCR 0x3E0
#define V_TICK 0x80
#define SPINS 20000000u
#define STORM_TICKS 2000

static volatile uint32_t ticks, others;

/* The handler stops the timer itself: a period shorter than the handler
 * leaves an interrupt pending at every IRET, and the interrupted loop would
 * never run another instruction (on hardware too). */
static void on_tick(struct trapframe *tf)
{
    if (++ticks >= STORM_TICKS)
        *(volatile uint32_t *)(LAPIC_VA + TMICT) = 0;
    *(volatile uint32_t *)(LAPIC_VA + EOI) = 0;
}

static void on_other(struct trapframe *tf)
{
    others++;
    *(volatile uint32_t *)(LAPIC_VA + EOI) = 0;
}

#define JUNK 0xFFFFFF40u /* every bit set but the vector's low bits: vector 0x40 */

/* Every size at every offset of a page: reads, and byte and word writes
 * (which an APIC drops); then a 32-bit junk write to every register. */
static void hammer_page(uint32_t base)
{
    for (uint32_t off = 0; off < PAGE_SIZE; off++) {
        volatile uint8_t *b = (volatile uint8_t *)(base + off);
        (void)*b;
        *b = 0xA5;
        if (off + 2 <= PAGE_SIZE) {
            (void)*(volatile uint16_t *)b;
            *(volatile uint16_t *)b = 0x5AA5;
        }
        if (off + 4 <= PAGE_SIZE)
            (void)*(volatile uint32_t *)b;
    }
    for (uint32_t off = 0x20; off < 0x400; off += 0x10)
        *(volatile uint32_t *)(base + off) = JUNK;
}

static void string_ops(uint32_t base)
{
    static uint8_t buf[PAGE_SIZE];
    uint32_t src = base, dst = (uint32_t)buf, n = PAGE_SIZE / 4;
    asm volatile("cld\n\trep movsl" : "+S"(src), "+D"(dst), "+c"(n) : : "memory");
    src = (uint32_t)buf;
    dst = base + 0x400; /* the ISR/TMR/IRR half and the rest: read-only or reserved */
    n = (PAGE_SIZE - 0x400) / 4;
    asm volatile("cld\n\trep movsl" : "+S"(src), "+D"(dst), "+c"(n) : : "memory");
}

static void ioapic_junk(uint32_t base)
{
    volatile uint32_t *sel = (volatile uint32_t *)base, *win = (volatile uint32_t *)(base + 0x10);
    for (uint32_t r = 0; r < 256; r++) {
        *sel = r;
        (void)*win;
        *win = r & 1 ? 0xFFFFFFFFu : (r * 0x01010101u) | 0x10000; /* masked, odd vectors */
    }
    for (uint32_t pin = 0; pin < 24; pin++) {
        *sel = 0x10 + 2 * pin;
        *win = 0xA000 | (pin & 1 ? 0x05 : 0xFF); /* level, active low (asserted: the line is low), unmasked */
    }
    *(volatile uint8_t *)(base + 3) = 0x11;      /* IOREGSEL's upper bytes */
    *(volatile uint16_t *)(base + 0x12) = 0x1234; /* half of IOWIN */
    *(volatile uint32_t *)(base + 0xFFE) = 1;     /* across the end of the page */
}

/* Level inputs asserted for good: every EOI brings the interrupt back. The
 * guest storms itself for a while, then masks them. */
static void level_storm(uint32_t lapic, uint32_t ioapic)
{
    volatile uint32_t *l = (volatile uint32_t *)lapic;
    volatile uint32_t *sel = (volatile uint32_t *)ioapic, *win = (volatile uint32_t *)(ioapic + 0x10);
    for (int v = 32; v < 256; v++)
        trap_set_handler(v, on_other);
    l[SVR / 4] = 0x1FF;
    l[0x80 / 4] = 0;     /* TPR */
    l[LVT_TIMER / 4] = 1u << 16;
    for (int i = 0; i < 256; i++)
        l[EOI / 4] = 0;  /* whatever the junk put in service */
    sti();
    for (volatile uint32_t s = 0; s < 20000; s++)
        ;
    cli();
    for (uint32_t pin = 0; pin < 24; pin++) {
        *sel = 0x10 + 2 * pin;
        *win = 0x10000;
    }
    for (int i = 0; i < 256; i++)
        l[EOI / 4] = 0;
    check("level-storm-survived", others > 0, "%u interrupts", others);
}

static void base_moves(void)
{
    uint64_t base = rdmsr(MSR_APIC_BASE);
    static const uint32_t moves[] = { IOAPIC_PA | 0x900, 0x00100900u, 0xFFFFF900u, 0x00000900u };
    for (unsigned i = 0; i < ARRAY_SIZE(moves); i++) {
        wrmsr(MSR_APIC_BASE, moves[i]);
        *(volatile uint32_t *)(moves[i] & ~0xFFFu) ^= 0; /* touches whatever is there now */
    }
    uint32_t start, next;
    probe_arg = 0xFEE00D00u; /* x2APIC enable: reserved here */
    PROBE(start, next, "movl $0x1B, %%ecx\n\tmovl probe_arg, %%eax\n\txorl %%edx, %%edx", "wrmsr",
          "eax", "ecx", "edx");
    check_fault("apic-base-reserved-gp", start, next, (struct fault_want){ T_GP, 0, false });
    wrmsr(MSR_APIC_BASE, 0xFEE00100u); /* global disable: back to power-on state */
    wrmsr(MSR_APIC_BASE, base);
}

static void storm(void)
{
    volatile uint32_t *l = (volatile uint32_t *)LAPIC_VA;
    trap_set_handler(V_TICK, on_tick);
    l[SVR / 4] = 0x1FF;
    for (uint32_t v = 0; v < 16; v++)
        l[ICR / 4] = (1u << 18) | v; /* illegal self-IPIs */
    l[TDCR / 4] = 0xB;
    l[LVT_TIMER / 4] = (1u << 17) | V_TICK; /* periodic */
    l[TMICT / 4] = 1;                       /* every microsecond */
    sti();
    uint32_t s = 0;
    while (ticks < STORM_TICKS && s < SPINS)
        s++;
    cli();
    l[TMICT / 4] = 0;
    check("timer-storm-survived", ticks >= STORM_TICKS, "%u ticks", ticks);
}

void guest_main(void)
{
    /* Paging off: the flat data segment reaches the pages through hv86's
     * own linear range. */
    hammer_page(LAPIC_PA);
    hammer_page(IOAPIC_PA);
    string_ops(LAPIC_PA);
    ioapic_junk(IOAPIC_PA);
    level_storm(LAPIC_PA, IOAPIC_PA);
    base_moves();
    paging_identity();
    paging_map(LAPIC_VA, LAPIC_PA, PTE_P | PTE_W | PTE_PCD);
    paging_enable((uint32_t)kernel_pd);
    hammer_page(LAPIC_VA);
    for (uint32_t i = 0; i < 256; i++)
        *(volatile uint32_t *)(LAPIC_VA + EOI) = 0; /* whatever the junk put in service */
    *(volatile uint32_t *)(LAPIC_VA + 0x80) = 0;
    storm();
    check("apic-still-answers", (*(volatile uint32_t *)(LAPIC_VA + 0x30) & 0xFF) == 0x14, "version %08x",
          *(volatile uint32_t *)(LAPIC_VA + 0x30));
}
