/*
 * fpukeep — the FPU registers are this VM's alone while VMs take turns on
 * the host CPU.
 *
 * Loads the eight MMX registers (the x87 register file, SDM Vol. 1 §9.2)
 * with values made from seed=N (command line), then does rounds=N rounds
 * of integer work with the PIT interrupting at 36 Hz, checking after each
 * round that every register still holds its value: first at CPL 0 (hv86
 * runs it translated, at ring 1), then at CPL 3 (run directly). Run two or
 * more at once with different seeds: a host interrupt that preempts one
 * vCPU thread inside the guest and later returns to the guest without a
 * world exit must bring back this VM's view of the FPU (hv86's lazy FPU:
 * CR0.TS set unless this vCPU owns the registers). If it did not, a guest
 * would read and overwrite another VM's FPU and SSE state.
 *
 * Hazard: the host's CR0.TS, LDTR and SYSENTER MSRs are per CPU, not per
 * thread (vmm/vcpu.c cpu_state_for_guest). Prints only deterministic lines.
 */
#include "guest.h"

#define NREGS 8
/* 36.4 Hz (1193182 Hz / 32768, 27.5 ms): most host interrupts (1 ms) find
 * no guest event due and return to the guest at once, and a period that is
 * no multiple of the host's 10 ms slice keeps the slice ends from all
 * falling on the guest's ticks, whose exit would hide a missing restore. */
#define PIT_DIV_SLOW 32768

static uint32_t seed, rounds;
static volatile uint32_t ticks, bad_round, bad_reg;
static volatile bool kept;

static void on_tick(struct trapframe *tf)
{
    ticks++;
    pic_eoi(IRQ_TIMER);
}

static uint64_t want(unsigned i)
{
    return ((uint64_t)(seed * 0x9E3779B9u + i) << 32) | (seed ^ (0x01010101u * (i + 1)));
}

static void load_mmx(void)
{
    static uint64_t v[NREGS];
    for (unsigned i = 0; i < NREGS; i++)
        v[i] = want(i);
    asm volatile("movq 0(%0), %%mm0\n\tmovq 8(%0), %%mm1\n\tmovq 16(%0), %%mm2\n\tmovq 24(%0), %%mm3\n\t"
                 "movq 32(%0), %%mm4\n\tmovq 40(%0), %%mm5\n\tmovq 48(%0), %%mm6\n\tmovq 56(%0), %%mm7"
                 : : "r"(v) : "memory");
}

/* Index of the first register not holding its value, or -1. */
static int check_mmx(void)
{
    static uint64_t v[NREGS];
    asm volatile("movq %%mm0, 0(%0)\n\tmovq %%mm1, 8(%0)\n\tmovq %%mm2, 16(%0)\n\tmovq %%mm3, 24(%0)\n\t"
                 "movq %%mm4, 32(%0)\n\tmovq %%mm5, 40(%0)\n\tmovq %%mm6, 48(%0)\n\tmovq %%mm7, 56(%0)"
                 : : "r"(v) : "memory");
    for (unsigned i = 0; i < NREGS; i++)
        if (v[i] != want(i))
            return (int)i;
    return -1;
}

/* rounds rounds of work, the registers checked after each; kept says. */
static void keep_loop(void)
{
    uint32_t x = seed | 1;
    load_mmx();
    kept = true;
    for (uint32_t r = 0; r < rounds && kept; r++) {
        for (unsigned i = 0; i < 20000; i++) {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
        }
        int bad = check_mmx();
        if (bad >= 0) {
            kept = false;
            bad_round = r;
            bad_reg = (uint32_t)bad;
        }
    }
    asm volatile("" : : "r"(x));
}

static void user_body(void) { keep_loop(); }

void guest_main(void)
{
    seed = boot_arg("seed", 1);
    rounds = boot_arg("rounds", 200);
    write_cr0(read_cr0() & ~(CR0_EM | CR0_TS)); /* MMX without #NM or #UD (SDM Vol. 3A §2.5) */
    trap_set_handler(T_IRQ0, on_tick);
    pit_periodic(PIT_DIV_SLOW);
    pic_unmask(IRQ_TIMER);
    sti();
    keep_loop();
    check("fpukeep-cpl0", kept, "mm%u changed in round %u", bad_reg, bad_round);
    user_run(user_body, FL_RSVD1 | FL_IF);
    check("fpukeep-cpl3", kept, "mm%u changed in round %u", bad_reg, bad_round);
    cli();
    asm volatile("emms");
    check("fpukeep-ticks", ticks > 0, "no timer interrupt in %u rounds", rounds);
    irq0_quiet();
}
