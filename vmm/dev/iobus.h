/*
 * Per-VM I/O port bus: routes a guest's IN/OUT to the emulated device that
 * claims the port, as the ISA/PCI bus of a PC does.
 *
 * A device claims a range of ports [base, base+len) with the access sizes it
 * handles natively (IOBUS_SZ_*). An access of a size the range does not take,
 * or one that straddles the end of the range, is split into byte accesses,
 * each routed on its own - the way an 8-bit ISA device sees a 16-bit IN as
 * two cycles at port and port+1. A byte access to a range that does not take
 * bytes (PCI CONFIG_ADDRESS at 0xCF8 is dword-only) counts as unclaimed.
 * Unclaimed ports read as all ones and drop writes (floating ISA data bus).
 *
 * Lookup is one load from a 64 KiB table of range indices, so the cost of an
 * I/O exit does not grow with the number of devices.
 */
#ifndef HV86_VMM_DEV_IOBUS_H
#define HV86_VMM_DEV_IOBUS_H
#include <stdbool.h>
#include <stdint.h>

#define IOBUS_PORTS      0x10000 /* x86 I/O address space, ports */
#define IOBUS_MAX_RANGES 32      /* claimed ranges per bus */
#define IOBUS_NAME_MAX   12      /* range name, bytes including NUL */

/* Access sizes, as a mask of the sizes in bytes. */
#define IOBUS_SZ_1   (1u << 1)
#define IOBUS_SZ_2   (1u << 2)
#define IOBUS_SZ_4   (1u << 4)
#define IOBUS_SZ_ALL (IOBUS_SZ_1 | IOBUS_SZ_2 | IOBUS_SZ_4)

/* Handlers. size is 1, 2 or 4 and [port, port+size) lies in the range.
 * in returns the value in the low size*8 bits (higher bits are ignored). */
typedef uint32_t (*iobus_in_fn)(void *opaque, uint16_t port, unsigned size);
typedef void (*iobus_out_fn)(void *opaque, uint16_t port, unsigned size, uint32_t val);

struct iobus_range {
    uint16_t base;
    uint32_t len;            /* ports, 1..0x10000 */
    unsigned sizes;          /* IOBUS_SZ_* mask */
    iobus_in_fn in;          /* NULL: reads float (all ones) */
    iobus_out_fn out;        /* NULL: writes dropped */
    void *opaque;
    char name[IOBUS_NAME_MAX];
    uint64_t reads, writes;  /* guest accesses starting in this range */
};

struct iobus {
    uint8_t map[IOBUS_PORTS];  /* port -> range index + 1; 0 = unclaimed */
    struct iobus_range range[IOBUS_MAX_RANGES];
    unsigned nranges;
    uint64_t unclaimed_reads, unclaimed_writes; /* accesses starting on no range */
};

/* Empty the bus: every port unclaimed, statistics zero. */
void iobus_init(struct iobus *bus);

/*
 * iobus_register - claim ports [base, base+len) for a device. name (cut to
 * IOBUS_NAME_MAX-1 bytes) labels the statistics. Returns 0, E_INVAL (len 0,
 * range past port 0xFFFF, no size), E_EXIST (overlaps a claimed port) or
 * E_NOMEM (IOBUS_MAX_RANGES already claimed).
 */
int iobus_register(struct iobus *bus, uint16_t base, uint32_t len, unsigned sizes,
                   iobus_in_fn in, iobus_out_fn out, void *opaque, const char *name);

/*
 * iobus_move - the range registered with opaque (its first, e.g. a PCI
 * I/O BAR) now decodes [base, base+len) if decode is set, nothing if not:
 * a guest reprogramming a BAR or its command register. Returns 0, E_NOENT
 * (no range has opaque), E_INVAL (past port 0xFFFF) or E_EXIST (overlaps
 * another claimed port: the range then decodes nothing, as two devices
 * answering one port is a guest's mistake hardware does not resolve either).
 */
int iobus_move(struct iobus *bus, void *opaque, uint16_t base, bool decode);

/*
 * iobus_in / iobus_out - one guest IN or OUT of size bytes (1, 2 or 4) at port.
 * Any other size is refused: iobus_in stores all ones and returns E_INVAL.
 * Ports above 0xFFFF in a multi-byte access wrap to 0 (16-bit port address).
 * Return 0 on a well-formed access, claimed or not.
 */
int iobus_in(struct iobus *bus, uint16_t port, unsigned size, uint32_t *val);
int iobus_out(struct iobus *bus, uint16_t port, unsigned size, uint32_t val);

/* The range that claims port, or NULL. For statistics display (`vm info`). */
const struct iobus_range *iobus_find(const struct iobus *bus, uint16_t port);

/*
 * iobus_format_lines - port I/O exits by device for `vm info`, one line per
 * claimed range in registration order, then the unclaimed accesses, e.g.
 *   io 03f8-03ff uart        in 1204 out 88231
 *   io unclaimed             in 3 out 0
 * via emit(line, ctx) without a newline. Returns the number of lines.
 */
#define IOBUS_LINE_MAX 64
int iobus_format_lines(const struct iobus *bus, void (*emit)(const char *line, void *ctx), void *ctx);

#endif
