/*
 * seglimit — data segments whose limits end at or past hv86's monitor range
 * (0xFC000000 up), and the kinds the monitor must emulate: a page-unaligned
 * base with a 4 GiB G=1 limit, expand-down segments (B=0 and B=1), a limit
 * ending just past 0xFC000000 and one ending just below it, and string
 * instructions with the 0x67 prefix (16-bit SI, DI, CX) running into the
 * monitor range. On hardware all of it is ordinary: accesses land in the
 * guest's own pages mapped there, and accesses past a limit raise #GP(0)
 * (SDM Vol. 3A §5.3). Under hv86 the same must happen.
 *
 * QEMU TCG does not check data-segment limits. The guest expects #GP past
 * a limit only on a CPU whose brand string does not say QEMU, so its lines
 * are the same under QEMU and Bochs; only Bochs proves the limit checks.
 */
#include "guest.h"

#define MON_LO     0xFC000000u
#define SEL_ODD    (SEL_SPARE + 0x00) /* base 0x100, G=1, 4 GiB */
#define SEL_DOWN32 (SEL_SPARE + 0x08) /* expand-down, B=1: offsets [buf, 4 GiB) */
#define SEL_DOWN16 (SEL_SPARE + 0x10) /* expand-down, B=0: offsets [0x8000, 0xFFFF] */
#define SEL_PAST   (SEL_SPARE + 0x18) /* base 0, G=1: ends at 0xFC000FFF */
#define SEL_BELOW  (SEL_SPARE + 0x20) /* base 0x1000, G=1: ends at linear 0xFBFFFFFF */
#define SEL_STR16  (SEL_SPARE + 0x28) /* base 0xFBFFF000, limit 0xFFFF: 16-bit strings */
#define SEL_SMALL  (SEL_SPARE + 0x30) /* base 0, limit 0xFFF: are limits enforced? */

static uint8_t frames[3][PAGE_SIZE] ALIGNED(4096); /* at 0xFBFFF000, MON_LO, MON_LO + 4 KiB */
static uint8_t buf[0x8000] ALIGNED(4096);
static volatile uint32_t probe_off, probe_val;
static bool enforced;

static uint32_t *word(uint8_t *p) { return (uint32_t *)p; }

/* One read or write of a dword at sel:off with the trap recorder armed;
 * returns the vector taken (-1: none). */
static int seg_access(uint16_t sel, uint32_t off, bool write, uint32_t *start, uint32_t *next)
{
    probe_arg = sel;
    probe_off = off;
    if (write)
        PROBE(*start, *next, "movl probe_arg, %%eax\n\tmovw %%ax, %%es\n\tmovl probe_off, %%edx\n\tmovl probe_val, %%eax",
              "movl %%eax, %%es:(%%edx)", "eax", "edx");
    else
        PROBE(*start, *next, "movl probe_arg, %%eax\n\tmovw %%ax, %%es\n\tmovl probe_off, %%edx",
              "movl %%es:(%%edx), %%eax\n\tmovl %%eax, probe_val", "eax", "edx");
    asm volatile("movw %w0, %%es" : : "r"(SEL_KDATA));
    return last_trap.vector;
}

static void expect_ok_read(const char *name, uint16_t sel, uint32_t off, uint32_t want)
{
    uint32_t s, n;
    int vec = seg_access(sel, off, false, &s, &n);
    if (vec != -1)
        check(name, false, "vector %d", vec);
    else
        check_eq(name, probe_val, want);
}

static void expect_ok_write(const char *name, uint16_t sel, uint32_t off, uint32_t v, const uint8_t *lands)
{
    uint32_t s, n;
    probe_val = v;
    int vec = seg_access(sel, off, true, &s, &n);
    if (vec != -1)
        check(name, false, "vector %d", vec);
    else
        check_eq(name, *(volatile uint32_t *)lands, v);
}

/* Past the limit: #GP(0) at the access where the CPU checks limits. */
static void expect_gp(const char *name, uint16_t sel, uint32_t off, bool write)
{
    uint32_t s, n;
    probe_val = 0x0BADBAD0;
    int vec = seg_access(sel, off, write, &s, &n);
    if (enforced)
        check_fault(name, s, n, (struct fault_want){ T_GP, 0, false });
    else
        check(name, vec == -1, "vector %d", vec);
}

/* Decided by the CPU model, not by a limit probe: under hv86 a probe would
 * measure the monitor's own limit check, the thing under test. */
static void limits_enforced(void)
{
    enforced = !cpu_is_qemu();
    gdt[SEL_SMALL >> 3] = seg_make(0, 0xFFF, DA_P | DA_S | DA_W, DF_DB);
    expect_gp("small-segment-beyond-limit-gp", SEL_SMALL, 0x2000, false);
}

/* Base 0x100, G=1, limit 4 GiB: offsets near 0xFBFFFF00 reach linear
 * 0xFBFFFFxx and 0xFC0000xx, the guest's own pages mapped there. */
static void odd_base(void)
{
    gdt[SEL_ODD >> 3] = seg_make(0x100, 0xFFFFF, DA_P | DA_S | DA_W, DF_G | DF_DB);
    *word(frames[1] + 0x10) = 0x600DF00D;
    *word(frames[0] + 0xFF8) = 0x0B1E0FF8;
    expect_ok_read("odd-base-read-below-monitor", SEL_ODD, 0xFBFFFEF8, 0x0B1E0FF8);
    expect_ok_read("odd-base-read-past-monitor", SEL_ODD, 0xFBFFFF10, 0x600DF00D);
    expect_ok_write("odd-base-write-below-monitor", SEL_ODD, 0xFBFFFEFC, 0x11112222, frames[0] + 0xFFC);
    expect_ok_write("odd-base-write-past-monitor", SEL_ODD, 0xFBFFFF20, 0x5EB0A5E0, frames[1] + 0x20);
    expect_ok_write("odd-base-write-low-page", SEL_ODD, 0xFBFFF000 - 0x100 + 0x40, 0x7E57AB1E, frames[0] + 0x40);
}

static void expand_down(void)
{
    uint32_t b = (uint32_t)buf;
    /* G=1: the limit is (field << 12) | 0xFFF = b - 1, so offsets [b, 4 GiB) are valid. */
    gdt[SEL_DOWN32 >> 3] = seg_make(0, (b >> 12) - 1, DA_P | DA_S | DA_W | DA_E, DF_G | DF_DB);
    *word(buf + 12) = 0xD0D0D0D0;
    expect_ok_read("down32-read", SEL_DOWN32, b + 12, 0xD0D0D0D0);
    expect_ok_write("down32-write", SEL_DOWN32, b + 8, 0xD0E0D0E0, buf + 8);
    expect_gp("down32-below-limit-gp", SEL_DOWN32, b - 4, false);
    expect_gp("down32-straddle-limit-gp", SEL_DOWN32, b - 2, true);
    /* B=0: offsets (0x7FFF, 0xFFFF], i.e. buf[0..0x7FFF]. */
    gdt[SEL_DOWN16 >> 3] = seg_make(b - 0x8000, 0x7FFF, DA_P | DA_S | DA_W | DA_E, 0);
    *word(buf + 0x7FFC) = 0x16161616;
    expect_ok_read("down16-read-top", SEL_DOWN16, 0xFFFC, 0x16161616);
    expect_ok_write("down16-write-bottom", SEL_DOWN16, 0x8000, 0x16008000, buf);
    expect_gp("down16-below-limit-gp", SEL_DOWN16, 0x7FFC, false);
    expect_gp("down16-past-ffff-gp", SEL_DOWN16, 0xFFFE, true);
}

static void limit_near_monitor(void)
{
    /* Limit field 0xFC000, G=1: the last valid offset is 0xFC000FFF. */
    gdt[SEL_PAST >> 3] = seg_make(0, 0xFC000, DA_P | DA_S | DA_W, DF_G | DF_DB);
    expect_ok_write("past-monitor-last-dword", SEL_PAST, 0xFC000FFC, 0x1A571A57, frames[1] + 0xFFC);
    expect_gp("past-monitor-beyond-limit-gp", SEL_PAST, 0xFC001000, true);
    expect_gp("past-monitor-straddle-gp", SEL_PAST, 0xFC000FFE, false);
    /* Base 0x1000, limit field 0xFBFFE: the last valid linear byte is 0xFBFFFFFF. */
    gdt[SEL_BELOW >> 3] = seg_make(0x1000, 0xFBFFE, DA_P | DA_S | DA_W, DF_G | DF_DB);
    expect_ok_write("below-monitor-last-dword", SEL_BELOW, 0xFBFFEFFC, 0x5AFE5AFE, frames[0] + 0xFFC);
    expect_gp("below-monitor-beyond-limit-gp", SEL_BELOW, 0xFBFFF000, false);
    expect_gp("below-monitor-beyond-limit-write-gp", SEL_BELOW, 0xFBFFF010, true);
}

/* REP STOSB/MOVSB/LODSB with 0x67: SI, DI and CX are 16 bits; the upper
 * halves of ESI, EDI and ECX stay as they were (SDM Vol. 2B REP, MOVS). */
static void strings16(void)
{
    gdt[SEL_STR16 >> 3] = seg_make(0xFBFFF000, 0xFFFF, DA_P | DA_S | DA_W, DF_DB);
    uint32_t edi = 0xABCD0FF8, ecx = 0x77770010, esi;
    asm volatile("push %%ds\n\tpush %%es\n\tmovw %w3, %%es\n\t"
                 ".byte 0x67, 0xF3, 0xAA\n\t" /* addr16 rep stosb */
                 "pop %%es\n\tpop %%ds"
                 : "+D"(edi), "+c"(ecx) : "a"(0x5A), "r"(SEL_STR16) : "memory");
    check_eq("addr16-rep-stosb-edi", edi, 0xABCD1008);
    check_eq("addr16-rep-stosb-ecx", ecx, 0x77770000);
    check_eq("addr16-rep-stosb-below", *word(frames[0] + 0xFFC), 0x5A5A5A5A);
    check_eq("addr16-rep-stosb-past", *word(frames[1] + 4), 0x5A5A5A5A);
    check_eq("addr16-rep-stosb-end", frames[1][8], 0);
    *word(frames[0] + 0xFFC) = 0x44332211;
    *word(frames[1]) = 0x88776655;
    esi = 0x12340FFC, edi = 0x56782000, ecx = 0x9ABC0008;
    asm volatile("push %%ds\n\tpush %%es\n\tmovw %w3, %%es\n\tmovw %w3, %%ds\n\t"
                 ".byte 0x67, 0xF3, 0xA4\n\t" /* addr16 rep movsb */
                 "pop %%es\n\tpop %%ds"
                 : "+S"(esi), "+D"(edi), "+c"(ecx) : "r"(SEL_STR16) : "memory");
    check_eq("addr16-rep-movsb-esi", esi, 0x12341004);
    check_eq("addr16-rep-movsb-edi", edi, 0x56782008);
    check_eq("addr16-rep-movsb-ecx", ecx, 0x9ABC0000);
    check_eq("addr16-rep-movsb-lo", *word(frames[2]), 0x44332211);
    check_eq("addr16-rep-movsb-hi", *word(frames[2] + 4), 0x88776655);
    uint32_t eax = 0xEEEEEE00;
    esi = 0xFEDC1000, ecx = 0x11110003;
    asm volatile("push %%ds\n\tmovw %w3, %%ds\n\t"
                 ".byte 0x67, 0xF3, 0xAC\n\t" /* addr16 rep lodsb */
                 "pop %%ds"
                 : "+S"(esi), "+c"(ecx), "+a"(eax) : "r"(SEL_STR16) : "memory");
    check_eq("addr16-rep-lodsb-eax", eax, 0xEEEEEE77);
    check_eq("addr16-rep-lodsb-esi", esi, 0xFEDC1003);
    check_eq("addr16-rep-lodsb-ecx", ecx, 0x11110000);
}

/*
 * INC of a dword at linear MON_LO + 0x100 through the flat DS, EBP_ROUNDS
 * times, with EBP holding 0xFF200000 meanwhile: an address in hv86's
 * monitor range that no page of hv86 maps (a kmap slot it does not reach).
 * Under hv86 each INC is emulated by host execution, which runs the
 * instruction at ring 0 with the guest's registers, EBP included. A host
 * timer tick during that once had hv86's profiler take EBP for a frame
 * pointer and read [EBP+4]: a page fault in the monitor, and the host
 * halted. The rounds make a tick land there (about one in 20,000 here).
 * The count must come out exact, as on hardware. (Natively, under QEMU
 * TCG as under Bochs, these are plain INCs of the guest's own page; hv86
 * runs this guest under Bochs only, like the rest of it.)
 */
#define EBP_ROUNDS 60000u
static void ebp_in_monitor(void)
{
    *word(frames[1] + 0x100) = 0;
    for (uint32_t i = 0; i < EBP_ROUNDS; i++)
        asm volatile("push %%ebp\n\tmovl $0xFF200000, %%ebp\n\tincl (%0)\n\tpop %%ebp"
                     : : "r"(MON_LO + 0x100) : "memory", "cc");
    check_eq("ebp-in-monitor-incs", *word(frames[1] + 0x100), EBP_ROUNDS);
}

void guest_main(void)
{
    uint32_t pd = paging_identity();
    paging_map(0xFBFFF000u, (uint32_t)frames[0], PTE_P | PTE_W);
    paging_map(MON_LO, (uint32_t)frames[1], PTE_P | PTE_W);
    paging_map(MON_LO + PAGE_SIZE, (uint32_t)frames[2], PTE_P | PTE_W);
    paging_enable(pd);
    limits_enforced();
    odd_base();
    expand_down();
    limit_near_monitor();
    strings16();
    ebp_in_monitor();
}
