/* Unit tests of the per-VM I/O port bus (vmm/dev/iobus.c). */
#include "tests/unit/test_vdev_common.h"

/* A fake device: reads return 0x10 + offset per byte, writes are logged. */
struct fake_dev {
    uint16_t base;
    int calls;
    uint16_t last_port;
    unsigned last_size;
    uint32_t last_val;
};

static uint32_t fake_in(void *opaque, uint16_t port, unsigned size)
{
    struct fake_dev *d = opaque;
    uint32_t v = 0;
    d->calls++;
    d->last_port = port;
    d->last_size = size;
    for (unsigned i = 0; i < size; i++)
        v |= (uint32_t)(0x10 + port - d->base + i) << (8 * i);
    return v | 0xAB000000u * (size < 4);  /* junk above size must be masked */
}

static void fake_out(void *opaque, uint16_t port, unsigned size, uint32_t val)
{
    struct fake_dev *d = opaque;
    d->calls++;
    d->last_port = port;
    d->last_size = size;
    d->last_val = val;
}

static void test_unclaimed(void **state)
{
    iobus_init(&test_bus);
    assert_int_equal(inb(0x1234), 0xFF);
    assert_int_equal(inw(0x1234), 0xFFFF);
    assert_int_equal(inl(0x1233), 0xFFFFFFFFu);
    outl(0, 0x1234);
    assert_int_equal(test_bus.unclaimed_reads, 3);
    assert_int_equal(test_bus.unclaimed_writes, 1);
    assert_null(iobus_find(&test_bus, 0x1234));
}

static void test_byte_device_split(void **state)
{
    struct fake_dev d = { .base = 0x100 };
    iobus_init(&test_bus);
    assert_int_equal(iobus_register(&test_bus, 0x100, 4, IOBUS_SZ_1, fake_in, fake_out, &d, "fake"), 0);

    assert_int_equal(inb(0x101), 0x11);
    assert_int_equal(d.last_size, 1);
    /* A word on an 8-bit device: two byte cycles, low byte first. */
    d.calls = 0;
    assert_int_equal(inw(0x100), 0x1110);
    assert_int_equal(d.calls, 2);
    /* A dword straddling the end: two bytes from the device, two floating. */
    assert_int_equal(inl(0x102), 0xFFFF1312u);
    d.calls = 0;
    outw(0xBEEF, 0x103);  /* 0x103 claimed, 0x104 not */
    assert_int_equal(d.calls, 1);
    assert_int_equal(d.last_port, 0x103);
    assert_int_equal(d.last_val, 0xEF);
    /* Statistics count guest accesses, not the split cycles. */
    const struct iobus_range *r = iobus_find(&test_bus, 0x102);
    assert_non_null(r);
    assert_string_equal(r->name, "fake");
    assert_int_equal(r->reads, 3);
    assert_int_equal(r->writes, 1);
}

static void test_native_sizes(void **state)
{
    struct fake_dev d = { .base = 0xCFC };
    iobus_init(&test_bus);
    assert_int_equal(iobus_register(&test_bus, 0xCFC, 4, IOBUS_SZ_ALL, fake_in, fake_out, &d, "data"), 0);
    assert_int_equal(inl(0xCFC), 0x13121110u);
    assert_int_equal(d.last_size, 4);
    assert_int_equal(inw(0xCFD), 0x1211);  /* unaligned but inside: native */
    assert_int_equal(d.last_size, 2);
    assert_int_equal(d.last_port, 0xCFD);
    assert_int_equal(inb(0xCFF), 0x13);     /* junk above 8 bits masked */
}

static void test_dword_only_range(void **state)
{
    struct fake_dev d = { .base = 0xCF8 };
    iobus_init(&test_bus);
    assert_int_equal(iobus_register(&test_bus, 0xCF8, 4, IOBUS_SZ_4, fake_in, fake_out, &d, "addr"), 0);
    assert_int_equal(inb(0xCF8), 0xFF);     /* bytes float: mechanism #2 probe fails */
    assert_int_equal(inw(0xCFA), 0xFFFF);
    outb(0x01, 0xCFB);
    assert_int_equal(d.calls, 0);
    outl(0x80000000u, 0xCF8);
    assert_int_equal(d.calls, 1);
    assert_int_equal(d.last_val, 0x80000000u);
    assert_int_equal(inl(0xCF9), 0xFFFFFFFFu);  /* misaligned dword: split, all float */
    assert_int_equal(d.calls, 1);
}

static void test_register_errors(void **state)
{
    struct fake_dev d = { 0 };
    iobus_init(&test_bus);
    assert_int_equal(iobus_register(&test_bus, 0x10, 0, IOBUS_SZ_1, fake_in, fake_out, &d, "z"), E_INVAL);
    assert_int_equal(iobus_register(&test_bus, 0xFFFF, 2, IOBUS_SZ_1, fake_in, fake_out, &d, "z"), E_INVAL);
    assert_int_equal(iobus_register(&test_bus, 0x10, 1, 0, fake_in, fake_out, &d, "z"), E_INVAL);
    assert_int_equal(iobus_register(&test_bus, 0x10, 4, IOBUS_SZ_1, fake_in, fake_out, &d, "a"), 0);
    assert_int_equal(iobus_register(&test_bus, 0x13, 2, IOBUS_SZ_1, fake_in, fake_out, &d, "b"), E_EXIST);
    assert_int_equal(iobus_register(&test_bus, 0x14, 1, IOBUS_SZ_1, fake_in, fake_out, &d,
                                    "a-name-longer-than-the-limit"), 0);
    assert_int_equal(strlen(iobus_find(&test_bus, 0x14)->name), IOBUS_NAME_MAX - 1);
    for (unsigned i = 2; i < IOBUS_MAX_RANGES; i++)
        assert_int_equal(iobus_register(&test_bus, (uint16_t)(0x100 + i), 1, IOBUS_SZ_1, NULL, NULL, NULL, "n"), 0);
    assert_int_equal(iobus_register(&test_bus, 0x400, 1, IOBUS_SZ_1, NULL, NULL, NULL, "full"), E_NOMEM);
    /* A range with no handlers floats like an unclaimed port. */
    assert_int_equal(inb(0x102), 0xFF);
    /* The whole space can be one range. */
    iobus_init(&test_bus);
    assert_int_equal(iobus_register(&test_bus, 0, IOBUS_PORTS, IOBUS_SZ_1, fake_in, fake_out, &d, "all"), 0);
}

static void test_bad_size_and_wrap(void **state)
{
    struct fake_dev d = { .base = 0 };
    uint32_t v = 0;
    iobus_init(&test_bus);
    assert_int_equal(iobus_register(&test_bus, 0, 2, IOBUS_SZ_1, fake_in, fake_out, &d, "low"), 0);
    assert_int_equal(iobus_in(&test_bus, 0, 3, &v), E_INVAL);
    assert_int_equal(v, 0xFFFFFFFFu);
    assert_int_equal(iobus_out(&test_bus, 0, 0, 1), E_INVAL);
    assert_int_equal(iobus_in(&test_bus, 0, 8, &v), E_INVAL);
    assert_int_equal(d.calls, 0);
    /* 16-bit port addresses wrap: a dword at 0xFFFE reaches ports 0 and 1. */
    assert_int_equal(inl(0xFFFE), 0x1110FFFFu);
}

static char lines[4][IOBUS_LINE_MAX];
static int nlines;

static void collect(const char *line, void *ctx)
{
    if (nlines < 4)
        snprintf(lines[nlines], IOBUS_LINE_MAX, "%s", line);
    nlines++;
}

static void test_format_lines(void **state)
{
    struct fake_dev d = { .base = 0x3F8 };
    iobus_init(&test_bus);
    assert_int_equal(iobus_register(&test_bus, 0x3F8, 8, IOBUS_SZ_1, fake_in, fake_out, &d, "uart"), 0);
    inb(0x3FD);
    outb(1, 0x3F8);
    outb(1, 0x3F9);
    inw(0x80);
    nlines = 0;
    assert_int_equal(iobus_format_lines(&test_bus, collect, NULL), 2);
    assert_int_equal(nlines, 2);
    assert_string_equal(lines[0], "io 03f8-03ff uart        in 1 out 2");
    assert_string_equal(lines[1], "io unclaimed             in 1 out 0");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unclaimed),
        cmocka_unit_test(test_byte_device_split),
        cmocka_unit_test(test_native_sizes),
        cmocka_unit_test(test_dword_only_range),
        cmocka_unit_test(test_register_errors),
        cmocka_unit_test(test_bad_size_and_wrap),
        cmocka_unit_test(test_format_lines),
    };
    return cmocka_run_group_tests_name("vdev_iobus", tests, NULL, NULL);
}
