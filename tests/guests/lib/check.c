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

/* QEMU TCG's CPUs carry "QEMU" in their brand string (hv86 passes the brand
 * through to its guests). */
bool cpu_is_qemu(void)
{
    uint32_t r[4], brand[12];
    cpuid(0x80000000u, r);
    if (r[0] < 0x80000004u)
        return false;
    for (uint32_t i = 0; i < 3; i++)
        cpuid(0x80000002u + i, brand + 4 * i);
    const char *b = (const char *)brand;
    for (int i = 0; i + 4 <= 48; i++)
        if (b[i] == 'Q' && b[i + 1] == 'E' && b[i + 2] == 'M' && b[i + 3] == 'U')
            return true;
    return false;
}
