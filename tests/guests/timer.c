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

/* The RTC's periodic interrupt comes through the slave 8259 (IRQ 8), so it
 * exercises the cascade: vector T_IRQ8, in service on the slave and (as
 * IRQ 2) on the master, EOI to both. MC146818 data sheet; regs A-C. */
#define CMOS_INDEX 0x70
#define CMOS_DATA  0x71
#define CMOS_NMI_OFF 0x80           /* index bit 7: keep NMI masked while we talk */
#define RTC_REG_A  0x0A
#define RTC_REG_B  0x0B
#define RTC_REG_C  0x0C
#define RTC_A_1024HZ 0x26           /* 32.768 kHz divider, rate 6 */
#define RTC_B_PIE  0x40             /* periodic interrupt enable */
#define RTC_C_PF   0x40             /* periodic interrupt flag */
#define RTC_C_IRQF 0x80             /* an enabled flag is set */
#define IRQ_RTC    8

static uint8_t cmos_read(uint8_t reg) { outb(CMOS_INDEX, CMOS_NMI_OFF | reg); return inb(CMOS_DATA); }
static void cmos_write(uint8_t reg, uint8_t v) { outb(CMOS_INDEX, CMOS_NMI_OFF | reg); outb(CMOS_DATA, v); }

static volatile uint32_t rtc_count, rtc_vector, rtc_regc, rtc_slave_isr, rtc_master_isr;

static void on_rtc(struct trapframe *tf)
{
    rtc_count++;
    rtc_vector = tf->vector;
    rtc_regc = cmos_read(RTC_REG_C);    /* reading C re-arms the RTC */
    rtc_slave_isr = pic_slave_isr();
    rtc_master_isr = pic_isr();
    pic_eoi(IRQ_RTC);
}

static void rtc_checks(void)
{
    trap_set_handler(T_IRQ8, on_rtc);
    uint8_t a = cmos_read(RTC_REG_A), b = cmos_read(RTC_REG_B);
    cmos_write(RTC_REG_A, RTC_A_1024HZ);
    cmos_read(RTC_REG_C);
    cmos_write(RTC_REG_B, b | RTC_B_PIE);
    pic_unmask(IRQ_RTC);
    sti();
    bool got = wait_change(&rtc_count, 0, SPINS);
    cli();
    pic_mask(IRQ_RTC);
    cmos_write(RTC_REG_B, b);
    cmos_write(RTC_REG_A, a);
    cmos_read(RTC_REG_C);
    check("rtc-irq8-arrives", got, "no RTC interrupt");
    check_eq("rtc-irq8-vector", rtc_vector, T_IRQ8);
    check_eq("rtc-regc-pf-irqf", rtc_regc & (RTC_C_PF | RTC_C_IRQF), RTC_C_PF | RTC_C_IRQF);
    check_eq("rtc-slave-in-service", rtc_slave_isr & 1, 1);
    check_eq("rtc-master-cascade-in-service", rtc_master_isr & (1u << 2), 1u << 2);
    check_eq("rtc-eoi-both", (pic_slave_isr() & 1) | (pic_isr() & (1u << 2)), 0);
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
    rtc_checks();
}
