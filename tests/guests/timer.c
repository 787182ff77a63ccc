/*
 * timer — PIT channel 0 through the remapped 8259: ticks arrive on the
 * remapped vector, in-service until EOI, blocked while unacknowledged or
 * masked, and still pending afterwards.
 *
 * Hazard: the monitor emulates the PIC and PIT and injects virtual IRQs; it
 * must keep the guest's vector base, IMR, IRR and ISR semantics. Only facts
 * are printed, never counts that depend on speed.
 */
#include "guest.h"
#include "pic.h"

#define TICKS 10
#define SPINS 50000000u

static volatile uint32_t ticks, isr_in_handler;
static volatile bool eoi_in_handler = true;

static void on_tick(struct trapframe *tf)
{
    ticks++;
    isr_in_handler = pic_isr();
    if (eoi_in_handler)
        pic_eoi(IRQ_TIMER);
}

static bool wait_ticks(uint32_t n)
{
    for (uint32_t s = 0; s < SPINS && ticks < n; s++)
        ;
    return ticks >= n;
}

static void pit_checks(void)
{
    outb(PIT_CMD, PIT_READBACK_STATUS_CH0);
    check_eq("pit-readback-status", inb(PIT_CH0) & PIT_STATUS_PROGRAM, PIT_CH0_LOHI_MODE2 & PIT_STATUS_PROGRAM);
    outb(PIT_CMD, PIT_LATCH_CH0);
    uint32_t c = inb(PIT_CH0);
    c |= (uint32_t)inb(PIT_CH0) << 8;
    check("pit-latch-in-range", c >= 1 && c <= PIT_DIV_1KHZ, "count %u", c);
}

void guest_main(void)
{
    outb(PIC1_DATA, 0xA5);
    check_eq("imr-readback", inb(PIC1_DATA), 0xA5);
    pic_init();

    trap_set_handler(T_IRQ0, on_tick);
    pit_periodic(PIT_DIV_1KHZ);
    pit_checks();
    pic_unmask(IRQ_TIMER);
    sti();
    check("ticks-arrive", wait_ticks(TICKS), "%u of %u ticks", ticks, TICKS);
    check_eq("isr-in-handler", isr_in_handler & 1, 1);
    cli();
    check_eq("isr-clear-after-eoi", pic_isr() & 1, 0);

    /* No EOI: IRQ 0 stays in service and blocks the next tick. */
    eoi_in_handler = false;
    uint32_t base = ticks;
    sti();
    check("no-eoi-first", wait_ticks(base + 1), "no tick");
    cli();
    check("no-eoi-irr-again", wait_irr(IRQ_TIMER, SPINS), "IRR 0 never set again");
    sti();
    for (volatile int i = 0; i < 10000; i++)
        ;
    cli();
    check_eq("no-eoi-blocks", ticks - base, 1);
    check_eq("no-eoi-still-in-service", pic_isr() & 1, 1);
    eoi_in_handler = true;
    pic_eoi(IRQ_TIMER);
    sti();
    check("eoi-releases", wait_ticks(base + 2), "no tick after EOI");
    cli();

    /* Masked: the request is latched in IRR but not delivered. */
    pic_mask(IRQ_TIMER);
    base = ticks;
    sti();
    check("masked-irr-set", wait_irr(IRQ_TIMER, SPINS), "IRR 0 never set");
    check_eq("masked-no-tick", ticks - base, 0);
    cli();
    pic_unmask(IRQ_TIMER);
    sti();
    check("unmask-delivers", wait_ticks(base + 1), "no tick after unmask");
    irq0_quiet();
}
