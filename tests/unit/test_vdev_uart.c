/*
 * Unit tests of the 16550A (vmm/dev/vuart.c): Linux 8250 autoconfig and
 * startup sequences, FIFOs, interrupts. Expected values: TI PC16550D datasheet.
 */
#include "tests/unit/test_vdev_common.h"
#include "vmm/dev/vuart.h"

#define BASE 0x3F8
#define RBR (BASE + 0)
#define THR (BASE + 0)
#define IER (BASE + 1)
#define IIR (BASE + 2)
#define FCR (BASE + 2)
#define LCR (BASE + 3)
#define MCR (BASE + 4)
#define LSR (BASE + 5)
#define MSR (BASE + 6)
#define SCR (BASE + 7)

static struct vuart uart;
static uint8_t txbuf[512];
static unsigned txlen;

static void on_tx(void *opaque, uint8_t b)
{
    if (txlen < sizeof(txbuf))
        txbuf[txlen++] = b;
}

static int setup(void **state)
{
    iobus_init(&test_bus);
    reset_recorder();
    txlen = 0;
    vuart_init(&uart, BASE, VUART_COM1_IRQ, on_tx, NULL, recorder());
    assert_int_equal(vuart_attach(&uart, &test_bus), 0);
    return 0;
}

static void test_reset_values(void **state)
{
    assert_int_equal(inb(IER), 0x00);
    assert_int_equal(inb(IIR), 0x01);
    assert_int_equal(inb(LCR), 0x00);
    assert_int_equal(inb(MCR), 0x00);
    assert_int_equal(inb(LSR), 0x60);
    assert_int_equal(inb(MSR), 0xB0);  /* CTS, DSR, DCD of the attached terminal */
}

/* autoconfig(): scratch/IER test, loopback test, FIFO detection. */
static void test_linux_autoconfig(void **state)
{
    outb(0xA5, SCR);
    assert_int_equal(inb(SCR), 0xA5);
    uint8_t scratch = inb(IER);
    outb(0, IER);
    assert_int_equal(inb(IER) & 0x0F, 0x00);
    outb(0x0F, IER);
    assert_int_equal(inb(IER) & 0x0F, 0x0F);
    outb(scratch, IER);

    uint8_t save_mcr = inb(MCR), save_lcr = inb(LCR);
    outb(0x10 | 0x0A, MCR);                  /* loop, RTS, OUT2 */
    assert_int_equal(inb(MSR) & 0xF0, 0x90); /* DCD (from OUT2) and CTS (from RTS) */
    outb(save_mcr, MCR);

    outb(0xBF, LCR);                         /* UART_LCR_CONF_MODE_B */
    outb(0, IIR);                            /* EFR on a 16650; FCR here */
    outb(0, LCR);
    outb(0x01, FCR);
    assert_int_equal(inb(IIR) >> 6, 3);      /* 16550A: both FIFO bits */

    /* autoconfig_16550a: no EFR behind DLAB (IIR reads non-zero). */
    outb(0x80, LCR);
    assert_int_not_equal(inb(IIR), 0);
    outb(0xBF, LCR);
    assert_int_not_equal(inb(IIR), 0);
    /* Not a TI16750: IIR bit 5 stays clear with FCR bit 5 set. */
    outb(0, LCR);
    outb(0x21, FCR);
    assert_int_equal(inb(IIR) & 0xE0, 0xC0);
    outb(0x80, LCR);
    outb(0x21, FCR);
    assert_int_equal(inb(IIR) & 0xE0, 0xC0);
    outb(0x01, FCR);
    outb(0, LCR);
    /* Not an XScale: IER bit 6 (UUE) does not stick. */
    outb(0x40, IER);
    assert_int_equal(inb(IER), 0x00);
    outb(save_lcr, LCR);
}

/* size_fifo(): loopback at divisor 1, 256 bytes sent, count what comes back. */
static void test_size_fifo_and_dlab(void **state)
{
    outb(0, LCR);
    outb(0x07, FCR);
    outb(0x10, MCR);
    outb(0x80, LCR);
    assert_int_equal(inw(BASE), 12);          /* reset divisor, DLL then DLM */
    outb(0x01, BASE);
    outb(0x00, BASE + 1);
    assert_int_equal(inb(BASE), 0x01);
    assert_int_equal(inb(BASE + 1), 0x00);
    outb(0x03, LCR);
    for (int i = 0; i < 256; i++)
        outb((uint8_t)i, THR);
    int count = 0;
    while ((inb(LSR) & 0x01) && count < 256) {
        assert_int_equal(inb(RBR), count);
        count++;
    }
    assert_int_equal(count, VUART_FIFO_SIZE);
    assert_int_equal(txlen, 0);               /* loopback: nothing left the UART */
    assert_int_equal(uart.rx_overruns, 256 - VUART_FIFO_SIZE);
}

/* serial8250_do_startup's THRE tests and the TX interrupt cycle. */
static void test_thre_interrupt(void **state)
{
    outb(0x03, LCR);
    outb(0x08, MCR);                          /* OUT2: IRQ reaches the PIC */
    outb(0x02, IER);                          /* THRI with THR empty */
    assert_int_equal(inb(LSR) & 0x60, 0x60);
    assert_int_equal(irq_level[4], 1);
    assert_int_equal(inb(IIR), 0x02);         /* THRE source; the read clears it */
    assert_int_equal(inb(IIR), 0x01);
    assert_int_equal(irq_level[4], 0);
    outb(0, IER);
    outb(0x02, IER);                          /* re-enabling re-asserts THRE */
    assert_int_equal(inb(IIR), 0x02);
    /* Writing THR clears THRE; the byte leaves at once and THRE returns. */
    outb('h', THR);
    outb('i', THR);
    assert_int_equal(txlen, 2);
    assert_memory_equal(txbuf, "hi", 2);
    assert_int_equal(irq_rises[4], 3);
    assert_int_equal(inb(IIR), 0x02);
    /* Without OUT2 the line stays low whatever is pending. */
    outb(0x00, MCR);
    outb('x', THR);
    assert_int_equal(irq_level[4], 0);
    assert_int_equal(inb(IIR), 0x02);
}

static void test_rx_fifo_levels(void **state)
{
    const uint8_t keys[] = "abcdefgh";
    outb(0x08, MCR);
    outb(0x81, FCR);                          /* FIFO on, trigger 8 */
    outb(0x01, IER);                          /* RDI */
    assert_int_equal(vuart_receive(&uart, keys, 3), 3);
    assert_int_equal(inb(IIR), 0xCC);         /* below trigger: character timeout */
    assert_int_equal(irq_level[4], 1);
    assert_int_equal(vuart_receive(&uart, keys + 3, 5), 5);
    assert_int_equal(inb(IIR), 0xC4);         /* trigger reached: RDA */
    assert_int_equal(vuart_rx_space(&uart), 8);
    for (int i = 0; i < 8; i++)
        assert_int_equal(inb(RBR), keys[i]);
    assert_int_equal(inb(LSR), 0x60);
    assert_int_equal(inb(IIR), 0xC1);
    assert_int_equal(irq_level[4], 0);
    /* Clear RX FIFO. */
    vuart_receive(&uart, keys, 4);
    outb(0x83, FCR);
    assert_int_equal(inb(LSR) & 0x01, 0);
    /* FIFO off: one-byte RBR, overrun overwrites and is reported. */
    outb(0x00, FCR);
    assert_int_equal(inb(IIR), 0x01);
    assert_int_equal(vuart_receive(&uart, keys, 2), 2);
    assert_int_equal(inb(IIR), 0x04);
    assert_int_equal(inb(RBR), 'b');
    assert_int_equal(uart.rx_overruns, 1);
}

static void test_line_status_priority(void **state)
{
    uint8_t junk[20];
    memset(junk, 'z', sizeof(junk));
    outb(0x08, MCR);
    outb(0x01, FCR);
    outb(0x0F, IER);
    assert_int_equal(vuart_receive(&uart, junk, sizeof(junk)), VUART_FIFO_SIZE);
    assert_int_equal(inb(IIR), 0xC6);         /* overrun: RLS outranks RDA */
    assert_int_equal(inb(LSR), 0x63);         /* OE, DR, THRE, TEMT; read clears OE */
    assert_int_equal(inb(IIR), 0xC4);         /* then RDA (trigger level 1) */
    outb(0x07, FCR);
    assert_int_equal(inb(IIR), 0xC2);         /* then THRE */
    assert_int_equal(inb(IIR), 0xC1);
    /* Loopback changes the modem inputs: MSR deltas and the MSR interrupt. */
    outb(0x10, MCR);
    assert_int_equal(inb(IIR), 0xC0);
    assert_int_equal(inb(MSR), 0x0B);         /* DCTS, DDSR, DDCD; all lines low */
    assert_int_equal(inb(MSR), 0x00);
    outb(0x14, MCR);                          /* OUT1 -> RI */
    assert_int_equal(inb(MSR), 0x40);
    outb(0x10, MCR);
    assert_int_equal(inb(MSR), 0x04);         /* TERI: RI trailing edge */
    assert_int_equal(irq_level[4], 0);        /* loopback holds OUT2 off */
}

static void test_other_base_and_reset(void **state)
{
    struct vuart com2;
    vuart_init(&com2, 0x2F8, 3, NULL, NULL, recorder());
    assert_int_equal(vuart_attach(&com2, &test_bus), 0);
    assert_int_equal(vuart_attach(&com2, &test_bus), E_EXIST);
    outb(0x08, 0x2FC);
    outb(0x02, 0x2F9);
    assert_int_equal(irq_level[3], 1);
    outb('q', 0x2F8);                         /* no tx callback: dropped */
    assert_int_equal(com2.tx_bytes, 1);
    vuart_reset(&com2);
    assert_int_equal(irq_level[3], 0);
    assert_int_equal(inb(0x2FA), 0x01);
}

/* A paste on the paced console line: all of it arrives, in order, with no
 * overrun, however little the FIFO holds at a time; FIFO mode switched on
 * later takes up to 16 at once; the line queue's bound is reported. */
static void test_console_type_ahead(void **state)
{
    uint8_t paste[300];
    for (unsigned i = 0; i < sizeof(paste); i++)
        paste[i] = (uint8_t)(i * 7);
    assert_int_equal(vuart_feed(&uart, paste, 1), 1);
    assert_int_equal(vuart_rx_space(&uart), 0);   /* FIFO off: one byte in RBR */
    outb(0x07, FCR);                                /* FIFO on: cleared, as the 16550A does */
    assert_int_equal(uart.rx_count, 0);
    assert_int_equal(vuart_feed(&uart, paste, sizeof(paste)), sizeof(paste));
    assert_int_equal(uart.rx_count, VUART_FIFO_SIZE);
    unsigned got = 0;
    while ((inb(LSR) & 0x01) && got < 1000) {
        assert_int_equal(inb(RBR), (uint8_t)(got * 7));
        got++;
    }
    assert_int_equal(got, sizeof(paste));
    assert_int_equal(uart.rx_overruns, 0);
    assert_int_equal(inb(LSR) & 0x02, 0);           /* no OE */
    static uint8_t flood[VUART_LINE_QUEUE + 100];
    size_t took = vuart_feed(&uart, flood, sizeof(flood));
    assert_int_equal(took, VUART_LINE_QUEUE); /* queue full: the rest refused */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_reset_values, setup),
        cmocka_unit_test_setup(test_linux_autoconfig, setup),
        cmocka_unit_test_setup(test_size_fifo_and_dlab, setup),
        cmocka_unit_test_setup(test_thre_interrupt, setup),
        cmocka_unit_test_setup(test_rx_fifo_levels, setup),
        cmocka_unit_test_setup(test_line_status_priority, setup),
        cmocka_unit_test_setup(test_other_base_and_reset, setup),
        cmocka_unit_test_setup(test_console_type_ahead, setup),
    };
    return cmocka_run_group_tests_name("vdev_uart", tests, NULL, NULL);
}
