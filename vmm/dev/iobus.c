/*
 * Per-VM I/O port bus. See iobus.h for the routing rules; in short:
 * native-size accesses go to the claiming handler, anything else is split
 * into bytes, and nobody-home reads return all ones.
 */
#include "kernel/kernel.h"
#include "vmm/dev/iobus.h"

#define BYTE_BITS 8u
#define ALL_ONES  0xFFFFFFFFu

static uint32_t size_mask(unsigned size)
{
    return size >= 4 ? ALL_ONES : (1u << (size * BYTE_BITS)) - 1;
}

static bool size_valid(unsigned size)
{
    return size == 1 || size == 2 || size == 4;
}

void iobus_init(struct iobus *bus)
{
    memset(bus, 0, sizeof(*bus));
}

int iobus_register(struct iobus *bus, uint16_t base, uint32_t len, unsigned sizes,
                   iobus_in_fn in, iobus_out_fn out, void *opaque, const char *name)
{
    if (len == 0 || (uint32_t)base + len > IOBUS_PORTS || (sizes & IOBUS_SZ_ALL) == 0)
        return E_INVAL;
    if (bus->nranges >= IOBUS_MAX_RANGES)
        return E_NOMEM;
    for (uint32_t p = base; p < (uint32_t)base + len; p++)
        if (bus->map[p])
            return E_EXIST;

    struct iobus_range *r = &bus->range[bus->nranges];
    memset(r, 0, sizeof(*r));
    r->base = base;
    r->len = len;
    r->sizes = sizes & IOBUS_SZ_ALL;
    r->in = in;
    r->out = out;
    r->opaque = opaque;
    for (unsigned i = 0; name && name[i] && i < IOBUS_NAME_MAX - 1; i++)
        r->name[i] = name[i];
    bus->nranges++;
    for (uint32_t p = base; p < (uint32_t)base + len; p++)
        bus->map[p] = (uint8_t)bus->nranges;
    return 0;
}

int iobus_move(struct iobus *bus, void *opaque, uint16_t base, bool decode)
{
    unsigned i = 0;
    while (i < bus->nranges && bus->range[i].opaque != opaque)
        i++;
    if (i == bus->nranges)
        return E_NOENT;
    struct iobus_range *r = &bus->range[i];
    for (uint32_t p = 0; p < IOBUS_PORTS; p++) /* unmap wherever it was */
        if (bus->map[p] == i + 1)
            bus->map[p] = 0;
    if (!decode)
        return 0;
    if ((uint32_t)base + r->len > IOBUS_PORTS)
        return E_INVAL;
    for (uint32_t p = base; p < (uint32_t)base + r->len; p++)
        if (bus->map[p])
            return E_EXIST;
    r->base = base;
    for (uint32_t p = base; p < (uint32_t)base + r->len; p++)
        bus->map[p] = (uint8_t)(i + 1);
    return 0;
}

static struct iobus_range *range_at(struct iobus *bus, uint16_t port)
{
    uint8_t i = bus->map[port];
    return i ? &bus->range[i - 1] : NULL;
}

const struct iobus_range *iobus_find(const struct iobus *bus, uint16_t port)
{
    return range_at((struct iobus *)bus, port);
}

/* Does range r take a size-byte access at port as one access? */
static bool native(const struct iobus_range *r, uint16_t port, unsigned size)
{
    return (r->sizes & (1u << size)) && (uint32_t)port + size <= (uint32_t)r->base + r->len;
}

static uint32_t read_one(struct iobus *bus, uint16_t port, unsigned size);

/* A non-native access: one byte at a time, little-endian, each routed anew. */
static uint32_t read_split(struct iobus *bus, uint16_t port, unsigned size)
{
    uint32_t val = 0;
    for (unsigned i = 0; i < size; i++)
        val |= (read_one(bus, (uint16_t)(port + i), 1) & 0xFF) << (i * BYTE_BITS);
    return val;
}

static uint32_t read_one(struct iobus *bus, uint16_t port, unsigned size)
{
    struct iobus_range *r = range_at(bus, port);
    if (r && native(r, port, size))
        return r->in ? r->in(r->opaque, port, size) & size_mask(size) : size_mask(size);
    if (size > 1)
        return read_split(bus, port, size);
    return size_mask(size);
}

static void write_one(struct iobus *bus, uint16_t port, unsigned size, uint32_t val)
{
    struct iobus_range *r = range_at(bus, port);
    if (r && native(r, port, size)) {
        if (r->out)
            r->out(r->opaque, port, size, val & size_mask(size));
        return;
    }
    if (size == 1)
        return;
    for (unsigned i = 0; i < size; i++)
        write_one(bus, (uint16_t)(port + i), 1, (val >> (i * BYTE_BITS)) & 0xFF);
}

int iobus_format_lines(const struct iobus *bus, void (*emit)(const char *line, void *ctx), void *ctx)
{
    char line[IOBUS_LINE_MAX];
    for (unsigned i = 0; i < bus->nranges; i++) {
        const struct iobus_range *r = &bus->range[i];
        snprintf(line, sizeof(line), "io %04x-%04x %-11s in %llu out %llu", r->base,
                 (unsigned)(r->base + r->len - 1), r->name, (unsigned long long)r->reads,
                 (unsigned long long)r->writes);
        emit(line, ctx);
    }
    snprintf(line, sizeof(line), "io unclaimed             in %llu out %llu",
             (unsigned long long)bus->unclaimed_reads, (unsigned long long)bus->unclaimed_writes);
    emit(line, ctx);
    return (int)bus->nranges + 1;
}

int iobus_in(struct iobus *bus, uint16_t port, unsigned size, uint32_t *val)
{
    if (!size_valid(size)) {
        *val = ALL_ONES;
        return E_INVAL;
    }
    struct iobus_range *r = range_at(bus, port);
    if (r)
        r->reads++;
    else
        bus->unclaimed_reads++;
    *val = read_one(bus, port, size);
    return 0;
}

int iobus_out(struct iobus *bus, uint16_t port, unsigned size, uint32_t val)
{
    if (!size_valid(size))
        return E_INVAL;
    struct iobus_range *r = range_at(bus, port);
    if (r)
        r->writes++;
    else
        bus->unclaimed_writes++;
    write_one(bus, port, size, val);
    return 0;
}
