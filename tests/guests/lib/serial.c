/* serial.c — polled COM1 output: the only channel a guest reports on. */
#include "guest.h"
#include "uart.h"

/* Contract: leaves COM1 at 115200 8N1, FIFOs on, interrupts off. The UART
 * guest changes these registers and calls this again to restore them. */
void serial_init(void)
{
    outb(COM1 + UART_IER, 0);
    outb(COM1 + UART_LCR, LCR_DLAB);
    outb(COM1 + UART_DLL, UART_DIV_115200);
    outb(COM1 + UART_DLM, 0);
    outb(COM1 + UART_LCR, LCR_8N1);
    outb(COM1 + UART_FCR, FCR_ENABLE | FCR_CLR_RX | FCR_CLR_TX);
    outb(COM1 + UART_MCR, MCR_DTR | MCR_RTS | MCR_OUT2);
}

void serial_putc(char c)
{
    if (c == '\n')
        serial_putc('\r');
    /* Bounded: an emulator with a dead UART must not hang the guest. */
    for (int spins = 0; spins < 1000000; spins++)
        if (inb(COM1 + UART_LSR) & LSR_THRE)
            break;
    outb(COM1 + UART_THR, (uint8_t)c);
}
