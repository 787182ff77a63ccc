/* printf.c — printf-lite: %s %c %d %u %x %X %p %%, width and '0' flag. */
#include "guest.h"

static void put_num(uint32_t v, unsigned base, bool neg, int width, char pad, bool upper)
{
    const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
    char buf[12];
    int n = 0;
    do {
        buf[n++] = digits[v % base];
        v /= base;
    } while (v);
    if (neg)
        buf[n++] = '-';
    while (n < width--)
        serial_putc(pad);
    while (n)
        serial_putc(buf[--n]);
}

void vprintf(const char *fmt, va_list ap)
{
    for (; *fmt; fmt++) {
        if (*fmt != '%') {
            serial_putc(*fmt);
            continue;
        }
        char pad = ' ';
        int width = 0;
        if (*++fmt == '0')
            pad = '0', fmt++;
        while (*fmt >= '0' && *fmt <= '9')
            width = width * 10 + (*fmt++ - '0');
        switch (*fmt) {
        case 's': {
            const char *s = va_arg(ap, const char *);
            while (*s)
                serial_putc(*s++);
            break;
        }
        case 'c': serial_putc((char)va_arg(ap, int)); break;
        case 'd': {
            int v = va_arg(ap, int);
            put_num(v < 0 ? -(uint32_t)v : (uint32_t)v, 10, v < 0, width, pad, false);
            break;
        }
        case 'u': put_num(va_arg(ap, uint32_t), 10, false, width, pad, false); break;
        case 'x': put_num(va_arg(ap, uint32_t), 16, false, width, pad, false); break;
        case 'X': put_num(va_arg(ap, uint32_t), 16, false, width, pad, true); break;
        case 'p': put_num(va_arg(ap, uint32_t), 16, false, 8, '0', false); break;
        case '%': serial_putc('%'); break;
        default: serial_putc('?'); break;
        }
    }
}

void printf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
}
