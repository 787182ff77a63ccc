/* Freestanding subset of the C library used by the hypervisor. */
#include "kernel/kernel.h"
#include "kernel/x86.h"

#undef memset
#undef memcpy

/* Plain loops of 32-bit moves, not REP MOVS/STOS: under QEMU TCG every
 * iteration of a REP string instruction is a trip through its translated
 * block, which made memcpy the monitor's hottest function. Four moves per
 * iteration: every loop branch ends a translated block too, and the
 * monitor's copies are mostly whole structures (a decoded instruction,
 * 116 bytes; a trap frame, 76) at every exit. */
void *memset(void *d, int c, size_t n)
{
    uint8_t *p = d;
    uint32_t w = 0x01010101u * (uint8_t)c;
    for (; n >= 16; n -= 16, p += 16) {
        ((u32_any *)p)[0] = w;
        ((u32_any *)p)[1] = w;
        ((u32_any *)p)[2] = w;
        ((u32_any *)p)[3] = w;
    }
    for (; n >= 4; n -= 4, p += 4)
        *(u32_any *)p = w;
    while (n--)
        *p++ = (uint8_t)c;
    return d;
}

void *memcpy(void *d, const void *s, size_t n)
{
    uint8_t *dp = d;
    const uint8_t *sp = s;
    for (; n >= 16; n -= 16, dp += 16, sp += 16) {
        uint32_t a = ((const u32_any *)sp)[0], b = ((const u32_any *)sp)[1];
        uint32_t e = ((const u32_any *)sp)[2], f = ((const u32_any *)sp)[3];
        ((u32_any *)dp)[0] = a;
        ((u32_any *)dp)[1] = b;
        ((u32_any *)dp)[2] = e;
        ((u32_any *)dp)[3] = f;
    }
    for (; n >= 4; n -= 4, dp += 4, sp += 4)
        *(u32_any *)dp = *(const u32_any *)sp;
    while (n--)
        *dp++ = *sp++;
    return d;
}

void *memmove(void *d, const void *s, size_t n)
{
    uint8_t *dp = d;
    const uint8_t *sp = s;
    if (dp < sp) {
        while (n--)
            *dp++ = *sp++;
    } else {
        while (n--)
            dp[n] = sp[n];
    }
    return d;
}

/* Words while they are equal, then the bytes of the first differing word
 * (or the tail) decide: page sharing compares whole pages with it. */
int memcmp(const void *a, const void *b, size_t n)
{
    const uint8_t *x = a, *y = b;
    for (; n >= 4 && *(const u32_any *)x == *(const u32_any *)y; n -= 4, x += 4, y += 4)
        ;
    for (; n; n--, x++, y++)
        if (*x != *y)
            return *x - *y;
    return 0;
}

size_t strlen(const char *s)
{
    size_t n = 0;
    while (s[n])
        n++;
    return n;
}

size_t strnlen(const char *s, size_t max)
{
    size_t n = 0;
    while (n < max && s[n])
        n++;
    return n;
}

int strcmp(const char *a, const char *b)
{
    while (*a && *a == *b)
        a++, b++;
    return (uint8_t)*a - (uint8_t)*b;
}

int strncmp(const char *a, const char *b, size_t n)
{
    for (; n; n--, a++, b++) {
        if (*a != *b)
            return (uint8_t)*a - (uint8_t)*b;
        if (!*a)
            return 0;
    }
    return 0;
}

char *strchr(const char *s, int c)
{
    for (;; s++) {
        if (*s == (char)c)
            return (char *)s;
        if (!*s)
            return NULL;
    }
}

const char *err_name(int err)
{
    static const char *const names[] = {
        [0] = "OK",         [1] = "E_NOMEM",   [2] = "E_INVAL",  [3] = "E_IO",
        [4] = "E_NODEV",    [5] = "E_TIMEOUT", [6] = "E_RANGE",  [7] = "E_EXIST",
        [8] = "E_NOENT",    [9] = "E_CORRUPT", [10] = "E_BUSY",  [11] = "E_TOOBIG",
        [12] = "E_NOSPC",   [13] = "E_NOTSUP",
    };
    unsigned i = (unsigned)-err;
    return (err <= 0 && i < ARRAY_SIZE(names) && names[i]) ? names[i] : "E_UNKNOWN";
}
