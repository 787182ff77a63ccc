/* check.c — PASS/FAIL/SKIP lines, the DONE line and the exit ports. */
#include "guest.h"

#define QEMU_DEBUG_EXIT 0xF4    /* isa-debug-exit: QEMU exits with (value << 1) | 1 */
#define BOCHS_SHUTDOWN  0x8900  /* writing "Shutdown" here ends Bochs */

static unsigned passed, failed;

bool check(const char *name, bool ok, const char *fmt, ...)
{
    if (ok) {
        printf("PASS %s\n", name);
        passed++;
        return true;
    }
    va_list ap;
    va_start(ap, fmt);
    printf("FAIL %s: ", name);
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    failed++;
    return false;
}

bool check_eq(const char *name, uint32_t got, uint32_t want)
{
    return check(name, got == want, "got 0x%x want 0x%x", got, want);
}

void skip(const char *name, const char *why)
{
    printf("SKIP %s: %s\n", name, why);
}

void guest_exit(void)
{
    cli();
    printf("DONE pass=%u fail=%u\n", passed, failed);
    outb(QEMU_DEBUG_EXIT, failed ? 1 : 0);
    for (const char *s = "Shutdown"; *s; s++)
        outb(BOCHS_SHUTDOWN, (uint8_t)*s);
    for (;;)
        asm volatile("cli; hlt");
}
