/*
 * 16550A UART driver for COM1.
 *
 * Receive: the RX-data interrupt drains the FIFO into rx_ring and wakes
 * readers; bytes arriving with the ring full are counted and dropped.
 * Transmit: serial_write() fills tx_ring and primes the UART; the THR-empty
 * interrupt refills the 16-byte FIFO. With interrupts disabled (early boot,
 * panics, fault dumps) output is polled instead so that it is never lost.
 * Source: TI PC16550D datasheet (registers, IIR priorities, FIFO).
 *
 * The THRE interrupt comes only when the transmitter empties: a UART that
 * was never given a byte, or that drained its FIFO while tx_ring was empty,
 * stays silent however full tx_ring gets. So a writer that finds tx_ring
 * full primes the transmitter (tx_kick) before it sleeps on tx_wait; it
 * used to sleep unprimed when one call queued more than TX_SIZE bytes (a
 * guest's scrollback without a newline), and nothing ever woke it.
 */
#include "drivers/serial.h"
#include "kernel/irq.h"
#include "kernel/kernel.h"
#include "kernel/sched.h"
#include "kernel/spinlock.h"
#include "kernel/x86.h"

#define UART_RBR 0 /* receive buffer (read) */
#define UART_THR 0 /* transmit holding (write) */
#define UART_DLL 0 /* divisor latch low (DLAB=1) */
#define UART_IER 1 /* interrupt enable */
#define UART_DLM 1 /* divisor latch high (DLAB=1) */
#define UART_IIR 2 /* interrupt identification (read) */
#define UART_FCR 2 /* FIFO control (write) */
#define UART_LCR 3 /* line control */
#define UART_MCR 4 /* modem control */
#define UART_LSR 5 /* line status */

#define IER_RDA   0x01 /* received data available */
#define IER_THRE  0x02 /* transmit holding register empty */
#define IIR_NO_INT 0x01
#define IIR_ID_MASK 0x0E
#define IIR_RLS   0x06 /* receiver line status */
#define IIR_RDA   0x04
#define IIR_CTI   0x0C /* character timeout */
#define IIR_THRE  0x02
#define FCR_ENABLE 0x01
#define FCR_CLEAR  0x06
#define FCR_TRIG14 0xC0
#define LCR_8N1   0x03
#define LCR_DLAB  0x80
#define MCR_DTR_RTS_OUT2 0x0B /* OUT2 gates the IRQ line on PCs */
#define LSR_DR    0x01
#define LSR_THRE  0x20
#define UART_FIFO 16
#define BAUD_DIVISOR 1 /* 115200 baud */

#define RX_SIZE 1024
#define TX_SIZE 8192

static uint8_t rx_ring[RX_SIZE], tx_ring[TX_SIZE];
static volatile uint32_t rx_head, rx_tail, tx_head, tx_tail; /* head: write, tail: read */
static uint32_t rx_count, rx_dropped, tx_count;
static bool irq_mode, tx_busy;
static spinlock_t tx_lock = SPINLOCK_INIT("serial-tx");
static struct wait_queue rx_wait = WAIT_QUEUE_INIT, tx_wait = WAIT_QUEUE_INIT;

static void reg_write(int r, uint8_t v) { outb(COM1_PORT + r, v); }
static uint8_t reg_read(int r) { return inb(COM1_PORT + r); }

void serial_early_init(void)
{
    reg_write(UART_IER, 0);
    reg_write(UART_LCR, LCR_DLAB);
    reg_write(UART_DLL, BAUD_DIVISOR & 0xFF);
    reg_write(UART_DLM, BAUD_DIVISOR >> 8);
    reg_write(UART_LCR, LCR_8N1);
    reg_write(UART_FCR, FCR_ENABLE | FCR_CLEAR | FCR_TRIG14);
    reg_write(UART_MCR, MCR_DTR_RTS_OUT2);
}

void serial_write_polled(const char *buf, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (buf[i] == '\n') {
            while (!(reg_read(UART_LSR) & LSR_THRE))
                cpu_pause();
            reg_write(UART_THR, '\r');
        }
        while (!(reg_read(UART_LSR) & LSR_THRE))
            cpu_pause();
        reg_write(UART_THR, (uint8_t)buf[i]);
    }
}

/* Move up to one FIFO's worth from tx_ring to the UART. Interrupts off. */
static void tx_fill(void)
{
    int n = 0;
    while (tx_tail != tx_head && n < UART_FIFO) {
        reg_write(UART_THR, tx_ring[tx_tail % TX_SIZE]);
        tx_tail++;
        n++;
    }
    tx_busy = n > 0;
    tx_count += (uint32_t)n;
    if (n)
        wait_queue_wake_all(&tx_wait);
}

static void rx_drain(void)
{
    while (reg_read(UART_LSR) & LSR_DR) {
        uint8_t c = reg_read(UART_RBR);
        if (rx_head - rx_tail >= RX_SIZE) {
            rx_dropped++;
            continue;
        }
        rx_ring[rx_head % RX_SIZE] = c;
        rx_head++;
        rx_count++;
    }
    wait_queue_wake_all(&rx_wait);
}

static void serial_irq(int irq, void *ctx)
{
    for (int guard = 0; guard < 64; guard++) {
        uint8_t iir = reg_read(UART_IIR);
        if (iir & IIR_NO_INT)
            return;
        switch (iir & IIR_ID_MASK) {
        case IIR_RLS: (void)reg_read(UART_LSR); break;
        case IIR_RDA:
        case IIR_CTI: rx_drain(); break;
        case IIR_THRE: tx_fill(); break;
        default: (void)reg_read(UART_MCR + 2); break; /* modem status: read MSR to clear */
        }
    }
}

void serial_irq_init(void)
{
    int err = irq_register(IRQ_COM1, serial_irq, NULL);
    if (err) {
        log_err("serial: cannot register IRQ %d: %s", IRQ_COM1, err_name(err));
        return;
    }
    irq_mode = true;
    reg_write(UART_IER, IER_RDA | IER_THRE);
}

/* Start the transmitter if it is idle, so that a THRE interrupt will come:
 * the FIFO empty (LSR.THRE) with bytes queued. tx_lock held, interrupts off. */
static void tx_kick(void)
{
    if (!tx_busy || (reg_read(UART_LSR) & LSR_THRE))
        tx_fill();
}

static void put_byte_locked(uint8_t c, uint32_t *fl)
{
    while (tx_head - tx_tail >= TX_SIZE) {
        tx_kick(); /* the interrupt we are about to wait for */
        if (tx_head - tx_tail < TX_SIZE)
            break;
        if (!(*fl & EFLAGS_IF) || !sched_can_kill_current()) {
            /* Cannot sleep here: push one byte out by hand. */
            while (!(reg_read(UART_LSR) & LSR_THRE))
                cpu_pause();
            reg_write(UART_THR, tx_ring[tx_tail % TX_SIZE]);
            tx_tail++;
            continue;
        }
        wait_queue_sleep(&tx_wait, &tx_lock, fl);
    }
    tx_ring[tx_head % TX_SIZE] = c;
    tx_head++;
}

void serial_write(const char *buf, size_t len)
{
    if (!irq_mode) {
        serial_write_polled(buf, len);
        return;
    }
    uint32_t fl = spin_lock_irqsave(&tx_lock);
    for (size_t i = 0; i < len; i++) {
        if (buf[i] == '\n')
            put_byte_locked('\r', &fl);
        put_byte_locked((uint8_t)buf[i], &fl);
    }
    tx_kick();
    spin_unlock_irqrestore(&tx_lock, fl);
}

int serial_trygetc(void)
{
    uint32_t fl = read_eflags();
    cpu_cli();
    int c = -1;
    if (!irq_mode && (reg_read(UART_LSR) & LSR_DR))
        c = reg_read(UART_RBR);
    else if (rx_tail != rx_head)
        c = rx_ring[rx_tail++ % RX_SIZE];
    write_eflags(fl);
    return c;
}

int serial_getc(void)
{
    for (;;) {
        int c = serial_trygetc();
        if (c >= 0)
            return c;
        if (!irq_mode) {
            thread_yield();
            continue;
        }
        uint32_t fl = read_eflags();
        cpu_cli();
        if (rx_tail == rx_head)
            wait_queue_sleep(&rx_wait, NULL, NULL);
        write_eflags(fl);
    }
}

void serial_counters(uint32_t *rx, uint32_t *dropped, uint32_t *tx)
{
    *rx = rx_count;
    *dropped = rx_dropped;
    *tx = tx_count;
}
