/*
 * uart — the 16550 on COM1 as a guest drives it: scratch register, line
 * control, divisor latch behind DLAB, LSR transmitter bits, FIFO enable seen
 * in IIR, the THRE interrupt identification, and loopback of data and of
 * the modem-control lines.
 *
 * Hazard: the monitor emulates the guest's UART while its own console may
 * use the real one; register state must be the guest's, and loopback bytes
 * must come back to the guest, never leak to the line. Results are printed
 * only after COM1 is restored (the checks themselves change its setup).
 */
#include "guest.h"
#include "uart.h"

#define SPINS 10000000u
#define LOOP_BYTES 4
#define DIV_9600 12

struct reg_case { const char *name; uint8_t got, want; };
static struct reg_case res[32];
static unsigned nres;

static void note(const char *name, uint8_t got, uint8_t want)
{
    res[nres++] = (struct reg_case){ name, got, want };
}
static uint8_t rd(int reg) { return inb(COM1 + reg); }
static void wr(int reg, uint8_t v) { outb(COM1 + reg, v); }

static bool wait_lsr(uint8_t bits)
{
    for (uint32_t s = 0; s < SPINS; s++)
        if ((rd(UART_LSR) & bits) == bits)
            return true;
    return false;
}

static void register_checks(void)
{
    wr(UART_SCR, 0x5A);
    note("scratch-5a", rd(UART_SCR), 0x5A);
    wr(UART_SCR, 0xA5);
    note("scratch-a5", rd(UART_SCR), 0xA5);
    wr(UART_LCR, 0x1B);                     /* 8 data bits, even parity, 1 stop */
    note("lcr-readback", rd(UART_LCR), 0x1B);
    wr(UART_LCR, LCR_DLAB | LCR_8N1);
    wr(UART_DLL, DIV_9600);
    wr(UART_DLM, 0x01);
    note("dll-readback", rd(UART_DLL), DIV_9600);
    note("dlm-readback", rd(UART_DLM), 0x01);
    note("lcr-dlab-readback", rd(UART_LCR), LCR_DLAB | LCR_8N1);
    wr(UART_DLM, 0);
    wr(UART_DLL, UART_DIV_115200);
    wr(UART_LCR, LCR_8N1);
    wr(UART_IER, 0);
    note("ier-behind-dlab-untouched", rd(UART_IER), 0);
    note("lsr-idle-thre-temt", (uint8_t)(wait_lsr(LSR_THRE | LSR_TEMT) ? LSR_THRE | LSR_TEMT : rd(UART_LSR)),
         LSR_THRE | LSR_TEMT);
}

static void fifo_checks(void)
{
    wr(UART_FCR, 0);
    note("iir-fifo-off", rd(UART_IIR) & IIR_FIFO, 0);
    wr(UART_FCR, FCR_ENABLE | FCR_CLR_RX | FCR_CLR_TX);
    note("iir-fifo-on", rd(UART_IIR) & IIR_FIFO, IIR_FIFO);
    note("iir-no-interrupt", rd(UART_IIR) & 0x0F, IIR_NO_INT);
    /* THR is empty, so enabling its interrupt makes it pending at once;
     * reading IIR with THRE as the source acknowledges it. */
    wr(UART_IER, IER_THRI);
    note("iir-thre-pending", rd(UART_IIR) & 0x0F, IIR_THRI);
    note("iir-thre-acked", rd(UART_IIR) & 0x0F, IIR_NO_INT);
    wr(UART_IER, 0);
}

static void loopback_checks(void)
{
    wr(UART_MCR, MCR_LOOP | MCR_DTR);
    note("loop-msr-dtr-dsr", rd(UART_MSR) & 0xF0, MSR_DSR);
    wr(UART_MCR, MCR_LOOP | MCR_RTS | MCR_OUT1 | MCR_OUT2);
    note("loop-msr-rts-out1-out2", rd(UART_MSR) & 0xF0, MSR_CTS | MSR_RI | MSR_DCD);
    wr(UART_MCR, MCR_LOOP | MCR_DTR | MCR_RTS | MCR_OUT2);
    note("loop-mcr-readback", rd(UART_MCR), MCR_LOOP | MCR_DTR | MCR_RTS | MCR_OUT2);

    note("loop-rx-empty", rd(UART_LSR) & LSR_DR, 0);
    wr(UART_THR, 0x5A);
    note("loop-dr-set", wait_lsr(LSR_DR) ? LSR_DR : 0, LSR_DR);
    note("loop-byte", rd(UART_RBR), 0x5A);
    note("loop-dr-clear", rd(UART_LSR) & LSR_DR, 0);

    static const uint8_t seq[LOOP_BYTES] = { 0x01, 0x80, 0xFF, 0x33 };
    for (int i = 0; i < LOOP_BYTES; i++) {
        wait_lsr(LSR_THRE);
        wr(UART_THR, seq[i]);
    }
    bool in_order = true;
    for (int i = 0; i < LOOP_BYTES; i++)
        in_order &= wait_lsr(LSR_DR) && rd(UART_RBR) == seq[i];
    note("loop-fifo-in-order", in_order, 1);
    wait_lsr(LSR_THRE | LSR_TEMT);
}

/* The THRE interrupt through IRQ 4 (MCR.OUT2 gates it onto the bus on a
 * PC). The handler acknowledges by reading IIR and turns it off again,
 * so the runtime's own output does not re-raise it. */
#define IRQ_COM1 4
static volatile uint32_t com_count, com_vector, com_iir;

static void on_com1(struct trapframe *tf)
{
    com_count++;
    com_vector = tf->vector;
    com_iir = rd(UART_IIR);
    wr(UART_IER, 0);
    pic_eoi(IRQ_COM1);
}

static void irq_checks(void)
{
    trap_set_handler(T_IRQ0 + IRQ_COM1, on_com1);
    wait_lsr(LSR_THRE | LSR_TEMT);
    wr(UART_MCR, MCR_DTR | MCR_RTS | MCR_OUT2);
    pic_unmask(IRQ_COM1);
    wr(UART_IER, IER_THRI);
    sti();
    bool got = wait_change(&com_count, 0, SPINS);
    cli();
    pic_mask(IRQ_COM1);
    note("irq4-arrives", got, 1);
    note("irq4-vector", (uint8_t)com_vector, T_IRQ0 + IRQ_COM1);
    note("irq4-iir-thre", com_iir & 0x0F, IIR_THRI);
    note("irq4-once", (uint8_t)com_count, 1);
}

void guest_main(void)
{
    register_checks();
    fifo_checks();
    loopback_checks();
    serial_init();
    irq_checks();
    for (unsigned i = 0; i < nres; i++)
        check(res[i].name, res[i].got == res[i].want, "got 0x%x want 0x%x", res[i].got, res[i].want);
    check_eq("scratch-after-init", rd(UART_SCR), 0xA5);
}
