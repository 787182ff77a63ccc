/*
 * 16550A UART driver (COM1 = 0x3F8, IRQ 4). Receive is interrupt driven into a
 * ring buffer; transmit is buffered and drained by the THR-empty interrupt.
 * Source: TI/NS PC16550D datasheet; PC port assignments.
 */
#ifndef HV86_DRIVERS_SERIAL_H
#define HV86_DRIVERS_SERIAL_H
#include <stddef.h>
#include <stdint.h>

#define COM1_PORT 0x3F8

/* Polled init of COM1 at 115200 8N1; usable before interrupts are on. */
void serial_early_init(void);
/* Switch COM1 to interrupt mode (after the PIC and the IDT are ready). */
void serial_irq_init(void);
/* Queue len bytes for output, LF as CRLF. While the 8 KiB transmit ring is
 * full it starts the transmitter if idle (a 16550 raises THRE only when its
 * FIFO empties: PC16550D) and sleeps until the THRE interrupt makes room;
 * called with interrupts disabled or outside a thread, it polls the UART
 * instead. Returns when the last byte is queued, not sent. */
void serial_write(const char *buf, size_t len);
/* Polled, lock-free output for panics and fault dumps. */
void serial_write_polled(const char *buf, size_t len);
/* Read one received byte; blocks the calling thread until one arrives. */
int serial_getc(void);
/* Read one byte if available: returns the byte, or -1 if none. */
int serial_trygetc(void);
/* Counters for `stats`: bytes received, bytes dropped on receive overrun. */
void serial_counters(uint32_t *rx, uint32_t *rx_dropped, uint32_t *tx);

#endif
