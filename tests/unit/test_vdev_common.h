/*
 * Helpers shared by the vmm/dev/ unit tests: a bus with byte-sized
 * inb/outb wrappers, a fake monotonic clock, and an IRQ line recorder.
 */
#ifndef HV86_TEST_VDEV_COMMON_H
#define HV86_TEST_VDEV_COMMON_H
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "kernel/kernel.h"
#include "vmm/dev/iobus.h"
#include "vmm/dev/vdev.h"

static struct iobus test_bus;

static inline uint8_t inb(uint16_t port)
{
    uint32_t v;
    assert_int_equal(iobus_in(&test_bus, port, 1, &v), 0);
    return (uint8_t)v;
}

static inline uint16_t inw(uint16_t port)
{
    uint32_t v;
    assert_int_equal(iobus_in(&test_bus, port, 2, &v), 0);
    return (uint16_t)v;
}

static inline uint32_t inl(uint16_t port)
{
    uint32_t v;
    assert_int_equal(iobus_in(&test_bus, port, 4, &v), 0);
    return v;
}

/* Linux argument order: value, then port. */
static inline void outb(uint8_t v, uint16_t port)
{
    assert_int_equal(iobus_out(&test_bus, port, 1, v), 0);
}

static inline void outw(uint16_t v, uint16_t port)
{
    assert_int_equal(iobus_out(&test_bus, port, 2, v), 0);
}

static inline void outl(uint32_t v, uint16_t port)
{
    assert_int_equal(iobus_out(&test_bus, port, 4, v), 0);
}

/* Fake clock: tests move it by hand. */
static uint64_t fake_now_ns;

static inline uint64_t fake_clock(void *opaque)
{
    (void)opaque;
    return fake_now_ns;
}

/* Guest RAM for a device that does DMA: size bytes at bytes. As with
 * hv86's owner (vmm/dev/vdev.h), an access with any byte outside is
 * E_RANGE and copies nothing. fake_ram_mem() is what the device gets. */
struct fake_ram {
    uint8_t *bytes;
    uint32_t size;
};

static inline int fake_ram_read(void *opaque, uint32_t gpa, void *buf, uint32_t len)
{
    const struct fake_ram *r = opaque;
    if ((uint64_t)gpa + len > r->size)
        return E_RANGE;
    memcpy(buf, r->bytes + gpa, len);
    return 0;
}

static inline int fake_ram_write(void *opaque, uint32_t gpa, const void *buf, uint32_t len)
{
    const struct fake_ram *r = opaque;
    if ((uint64_t)gpa + len > r->size)
        return E_RANGE;
    memcpy(r->bytes + gpa, buf, len);
    return 0;
}

static inline struct vdev_mem fake_ram_mem(struct fake_ram *r)
{
    return (struct vdev_mem){ fake_ram_read, fake_ram_write, r, NULL, NULL };
}

/* IRQ recorder: current levels and rising-edge counts per line. */
static int irq_level[16];
static int irq_rises[16];

static inline void record_irq(void *opaque, int irq, int level)
{
    (void)opaque;
    if (irq < 0 || irq >= 16)
        return;
    if (level && !irq_level[irq])
        irq_rises[irq]++;
    irq_level[irq] = level;
}

static inline struct vdev_irq recorder(void)
{
    return (struct vdev_irq){ record_irq, NULL };
}

static inline void reset_recorder(void)
{
    memset(irq_level, 0, sizeof(irq_level));
    memset(irq_rises, 0, sizeof(irq_rises));
}

#endif
