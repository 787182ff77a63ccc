/*
 * panic: a broken hypervisor invariant. Interrupts off, message and backtrace
 * on COM1 (polled), then halt forever -- or, when the hypervisor command line
 * holds "panic=exit", leave the emulator (QEMU isa-debug-exit at port 0xF4,
 * Bochs shutdown port 0x8900) so that tests fail fast instead of hanging.
 */
#include "kernel/kernel.h"
#include "kernel/boot.h"
#include "kernel/traps.h"
#include "kernel/x86.h"

#define QEMU_DEBUG_EXIT_PORT 0xF4
#define BOCHS_SHUTDOWN_PORT  0x8900
#define PANIC_EXIT_CODE      0x7F /* QEMU exits with (code << 1) | 1 = 255 */

static void emulator_exit(void)
{
    outl(QEMU_DEBUG_EXIT_PORT, PANIC_EXIT_CODE);
    for (const char *s = "Shutdown"; *s; s++)
        outb(BOCHS_SHUTDOWN_PORT, (uint8_t)*s);
}

void panic(const char *fmt, ...)
{
    static int nested;
    char buf[256];
    va_list ap;
    cpu_cli();
    if (nested++) {
        kprintf("\n*** nested panic\n");
        for (;;)
            cpu_hlt();
    }
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    kprintf("\n*** hv86 PANIC: %s\n", buf);
    backtrace_print((uint32_t)__builtin_frame_address(0));
    kprintf("*** system halted\n");
    if (boot_option("panic=exit"))
        emulator_exit();
    for (;;)
        cpu_hlt();
}
