/*
 * flood — a guest that prints kib=N KiB (command line; 0: forever, default
 * 2048) on COM1 without a single newline, as a memory tester redrawing its
 * status line with carriage returns does. With junk=1 (the default) every
 * status line is followed by 32 pseudo-random bytes of any value but '\n'
 * (escape sequences, ^], NUL, bytes above 0x7F): a guest's serial line is
 * binary. Then "FLOOD-END" on a line of its own and the usual DONE.
 *
 * Hazard: the monitor's own console shares the host UART with the guest's
 * output; however much a guest prints, and however fast, neither the
 * management console nor the other VMs may stall, and the guest itself must
 * not be held up by a slow host line (docs/vmm.md, "Console output").
 */
#include "guest.h"
#include "uart.h"

#define STATUS_FMT "\rflood pass 00000000 addr 00000000 ok " /* digits filled in below */
#define PASS_AT 12                                             /* offset of the pass digits */
#define ADDR_AT 26                                             /* offset of the addr digits */
#define JUNK_BYTES 32

static uint32_t seed = 1;

/* Transmit one byte: with the FIFO on, THRE set means 16 bytes fit
 * (PC16550D "FIFO interrupt mode"); bounded like the runtime's own output. */
static void tx(uint8_t b)
{
    static unsigned room;
    for (int spins = 0; !room && spins < 1000000; spins++)
        if (inb(COM1 + UART_LSR) & LSR_THRE)
            room = 16;
    if (room)
        room--;
    outb(COM1 + UART_THR, b);
}

static void hex8(char *at, uint32_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 4)
        at[i] = "0123456789abcdef"[v & 0xF];
}

/* One status line and the junk after it; returns the bytes sent. */
static uint32_t burst(uint32_t pass, bool junk)
{
    char line[] = STATUS_FMT;
    uint32_t n = 0;
    hex8(line + PASS_AT, pass);
    hex8(line + ADDR_AT, pass * 64);
    for (const char *p = line; *p; p++, n++)
        tx((uint8_t)*p);
    for (int i = 0; junk && i < JUNK_BYTES; i++, n++) {
        seed = seed * 1103515245u + 12345u;
        uint8_t b = (uint8_t)(seed >> 16);
        tx(b == '\n' ? 0 : b);
    }
    return n;
}

void guest_main(void)
{
    uint32_t kib = boot_arg("kib", 2048);
    bool junk = boot_arg("junk", 1) != 0;
    printf("INFO flood kib=%u junk=%u\n", kib, junk);
    uint64_t sent = 0, want = (uint64_t)kib << 10;
    for (uint32_t pass = 0; !kib || sent < want; pass++)
        sent += burst(pass, junk);
    printf("\nFLOOD-END\n");
    check("flood-sent", sent >= want, "sent %u of %u KiB", (uint32_t)(sent >> 10), kib);
}
