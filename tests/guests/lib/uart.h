/* uart.h — 16550 UART registers (offsets from the base port). Source: TI PC16550D data sheet. */
#ifndef GUEST_UART_H
#define GUEST_UART_H

#define COM1 0x3F8

#define UART_RBR 0      /* receive buffer (read, DLAB=0) */
#define UART_THR 0      /* transmit holding (write, DLAB=0) */
#define UART_DLL 0      /* divisor latch low (DLAB=1) */
#define UART_IER 1      /* interrupt enable (DLAB=0) */
#define UART_DLM 1      /* divisor latch high (DLAB=1) */
#define UART_IIR 2      /* interrupt identification (read) */
#define UART_FCR 2      /* FIFO control (write) */
#define UART_LCR 3      /* line control */
#define UART_MCR 4      /* modem control */
#define UART_LSR 5      /* line status */
#define UART_MSR 6      /* modem status */
#define UART_SCR 7      /* scratch */

#define IER_THRI  0x02  /* interrupt when the transmit holding register empties */
#define IIR_NO_INT 0x01 /* no interrupt pending */
#define IIR_ID_MASK 0x0E
#define IIR_THRI  0x02  /* source: transmit holding register empty */
#define IIR_FIFO  0xC0  /* FIFOs enabled (16550A) */
#define FCR_ENABLE 0x01
#define FCR_CLR_RX 0x02
#define FCR_CLR_TX 0x04
#define LCR_8N1   0x03
#define LCR_DLAB  0x80  /* divisor latch access */
#define MCR_DTR   0x01
#define MCR_RTS   0x02
#define MCR_OUT1  0x04
#define MCR_OUT2  0x08
#define MCR_LOOP  0x10  /* loopback: TX feeds RX, MCR[3:0] feed MSR[7:4] */
#define LSR_DR    0x01  /* data ready */
#define LSR_THRE  0x20  /* transmit holding register empty */
#define LSR_TEMT  0x40  /* transmitter empty */
#define MSR_CTS   0x10
#define MSR_DSR   0x20
#define MSR_RI    0x40
#define MSR_DCD   0x80

#define UART_DIV_115200 1   /* divisor for 115200 baud from the 1.8432 MHz clock */

#endif
