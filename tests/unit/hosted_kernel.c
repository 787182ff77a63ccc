/*
 * Stubs of kernel services shared by the unit tests that link monitor code
 * using them (test_vdisk, test_gmem, test_shadow): a broken invariant
 * fails the running test, and a host frame's "physical address" is its
 * address in the test (a 32-bit program), so kmap_copy is a plain copy.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "kernel/kernel.h"
#include "kernel/paging.h"

/* A broken invariant fails the running test (kernel: halts the machine). */
void panic(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vprint_error(fmt, ap);
    va_end(ap);
    fail();
    abort();
}

void kmap_copy(uint32_t pa, uint32_t off, void *buf, uint32_t len, enum kmap_dir dir)
{
    uint8_t *p = (uint8_t *)(uintptr_t)pa + off;
    assert_true(off + len <= 4096);
    if (dir == KMAP_READ)
        memcpy(buf, p, len);
    else if (dir == KMAP_WRITE)
        memcpy(p, buf, len);
    else
        memset(p, 0, len);
}

uint32_t kmap_read32(uint32_t pa, uint32_t off)
{
    uint32_t v;
    kmap_copy(pa, off, &v, 4, KMAP_READ);
    return v;
}

void kmap_write_words(uint32_t pa, uint32_t off, const void *buf, uint32_t n)
{
    kmap_copy(pa, off, (void *)buf, 4 * n, KMAP_WRITE);
}

uint64_t kmap_read64(uint32_t pa, uint32_t off)
{
    uint64_t v;
    kmap_copy(pa, off, &v, 8, KMAP_READ);
    return v;
}
