/*
 * vsnprintf for the hypervisor: %d %i %u %x %X %o %c %s %p %%, flags - 0 + space #,
 * width and precision (also *), length modifiers hh h l ll z. No floating point.
 */
#include "kernel/kernel.h"
#include "drivers/serial.h"

struct out {
    char *buf;
    size_t size, len;
};

static void put(struct out *o, char c)
{
    if (o->len + 1 < o->size)
        o->buf[o->len] = c;
    o->len++;
}

static void pad(struct out *o, char c, int n)
{
    while (n-- > 0)
        put(o, c);
}

struct spec {
    bool left, zero, plus, space, alt;
    int width, prec; /* prec < 0: none */
    int lng;         /* -2 hh, -1 h, 0 int, 1 l, 2 ll, 3 z */
};

static void fmt_num(struct out *o, uint64_t v, bool neg, unsigned base, bool upper, const struct spec *sp)
{
    const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
    char tmp[24];
    int n = 0;
    while (v) {
        tmp[n++] = digits[v % base];
        v /= base;
    }
    if (n == 0 && sp->prec != 0)
        tmp[n++] = '0';
    int zeros = sp->prec > n ? sp->prec - n : 0;
    const char *prefix = neg ? "-" : sp->plus ? "+" : sp->space ? " " : "";
    if (sp->alt && base == 16 && n && tmp[0] != '0')
        prefix = upper ? "0X" : "0x";
    if (sp->alt && base == 8 && zeros == 0 && (n == 0 || tmp[n - 1] != '0'))
        zeros = 1;
    int plen = (int)strlen(prefix), total = plen + zeros + n;
    if (!sp->left && !(sp->zero && sp->prec < 0))
        pad(o, ' ', sp->width - total);
    for (int i = 0; i < plen; i++)
        put(o, prefix[i]);
    if (!sp->left && sp->zero && sp->prec < 0)
        pad(o, '0', sp->width - total);
    pad(o, '0', zeros);
    while (n)
        put(o, tmp[--n]);
    if (sp->left)
        pad(o, ' ', sp->width - total);
}

static const char *parse_spec(const char *f, struct spec *sp, va_list *ap)
{
    *sp = (struct spec){ .prec = -1 };
    for (;; f++) {
        if (*f == '-') sp->left = true;
        else if (*f == '0') sp->zero = true;
        else if (*f == '+') sp->plus = true;
        else if (*f == ' ') sp->space = true;
        else if (*f == '#') sp->alt = true;
        else break;
    }
    if (*f == '*') {
        sp->width = va_arg(*ap, int);
        if (sp->width < 0)
            sp->left = true, sp->width = -sp->width;
        f++;
    }
    while (*f >= '0' && *f <= '9')
        sp->width = sp->width * 10 + (*f++ - '0');
    if (*f == '.') {
        f++;
        sp->prec = 0;
        if (*f == '*') {
            sp->prec = va_arg(*ap, int);
            f++;
        }
        while (*f >= '0' && *f <= '9')
            sp->prec = sp->prec * 10 + (*f++ - '0');
    }
    for (;; f++) {
        if (*f == 'h') sp->lng = sp->lng == -1 ? -2 : -1;
        else if (*f == 'l') sp->lng = sp->lng == 1 ? 2 : 1;
        else if (*f == 'z') sp->lng = 3;
        else break;
    }
    return f;
}

static uint64_t arg_unsigned(const struct spec *sp, va_list *ap)
{
    switch (sp->lng) {
    case 2: return va_arg(*ap, unsigned long long);
    case 1: return va_arg(*ap, unsigned long);
    case 3: return va_arg(*ap, size_t);
    case -1: return (unsigned short)va_arg(*ap, unsigned);
    case -2: return (unsigned char)va_arg(*ap, unsigned);
    default: return va_arg(*ap, unsigned);
    }
}

static int64_t arg_signed(const struct spec *sp, va_list *ap)
{
    switch (sp->lng) {
    case 2: return va_arg(*ap, long long);
    case 1: return va_arg(*ap, long);
    case 3: return (int64_t)va_arg(*ap, size_t);
    case -1: return (short)va_arg(*ap, int);
    case -2: return (signed char)va_arg(*ap, int);
    default: return va_arg(*ap, int);
    }
}

static void fmt_str(struct out *o, const char *s, const struct spec *sp)
{
    if (!s)
        s = "(null)";
    int n = (int)strnlen(s, sp->prec >= 0 ? (size_t)sp->prec : (size_t)-1);
    if (!sp->left)
        pad(o, ' ', sp->width - n);
    for (int i = 0; i < n; i++)
        put(o, s[i]);
    if (sp->left)
        pad(o, ' ', sp->width - n);
}

int vsnprintf(char *buf, size_t size, const char *fmt, va_list ap_in)
{
    struct out o = { buf, size, 0 };
    va_list ap;
    va_copy(ap, ap_in);
    for (const char *f = fmt; *f; f++) {
        if (*f != '%') {
            put(&o, *f);
            continue;
        }
        struct spec sp;
        f = parse_spec(f + 1, &sp, &ap);
        switch (*f) {
        case 'd': case 'i': {
            int64_t v = arg_signed(&sp, &ap);
            fmt_num(&o, v < 0 ? -(uint64_t)v : (uint64_t)v, v < 0, 10, false, &sp);
            break;
        }
        case 'u': fmt_num(&o, arg_unsigned(&sp, &ap), false, 10, false, &sp); break;
        case 'x': fmt_num(&o, arg_unsigned(&sp, &ap), false, 16, false, &sp); break;
        case 'X': fmt_num(&o, arg_unsigned(&sp, &ap), false, 16, true, &sp); break;
        case 'o': fmt_num(&o, arg_unsigned(&sp, &ap), false, 8, false, &sp); break;
        case 'p': sp.alt = true; fmt_num(&o, (uintptr_t)va_arg(ap, void *), false, 16, false, &sp); break;
        case 'c': { char c = (char)va_arg(ap, int); sp.prec = 1; fmt_str(&o, &c, &sp); break; }
        case 's': fmt_str(&o, va_arg(ap, const char *), &sp); break;
        case '%': put(&o, '%'); break;
        case '\0': f--; break;
        default: put(&o, '%'); put(&o, *f); break;
        }
    }
    va_end(ap);
    if (size)
        buf[o.len < size ? o.len : size - 1] = '\0';
    return (int)o.len;
}

int snprintf(char *buf, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, size, fmt, ap);
    va_end(ap);
    return n;
}

void kprintf(const char *fmt, ...)
{
    char buf[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    serial_write_polled(buf, n < (int)sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
}
