/*
 * Hosted stand-ins for the kernel services bt/ code calls (panic), so the
 * translator core links into host unit tests and benches.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include "kernel/kernel.h"

void panic(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "panic: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    abort();
}
