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
