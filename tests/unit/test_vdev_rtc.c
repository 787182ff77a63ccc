/*
 * Unit tests of the MC146818A + CMOS (vmm/dev/vrtc.c) with fake clocks.
 * Expected values: MC146818A datasheet (register A/B/C/D bits, BCD and
 * 12-hour formats, UIP), IBM PC/AT CMOS map.
 */
#include "tests/unit/test_vdev_common.h"
#include "vmm/dev/vrtc.h"

#define RTC_INDEX 0x70
#define RTC_DATA  0x71
#define WALL_2026_11_21_195359 1795290839ull  /* a Saturday */
#define MIB (1024ull * 1024)

static struct vrtc rtc;
static uint64_t t0;

static uint64_t fake_wall(void *opaque)
{
    return WALL_2026_11_21_195359;
}

static uint8_t cmos_read(uint8_t i)
{
    outb(i, RTC_INDEX);
    return inb(RTC_DATA);
}

static void cmos_write(uint8_t i, uint8_t v)
{
    outb(i, RTC_INDEX);
    outb(v, RTC_DATA);
}

static int setup_ram(uint64_t ram)
{
    iobus_init(&test_bus);
    reset_recorder();
    fake_now_ns = t0 = 7 * NS_PER_SEC + 123;
    vrtc_init(&rtc, fake_clock, fake_wall, NULL, recorder(), ram);
    assert_int_equal(vrtc_attach(&rtc, &test_bus), 0);
    return 0;
}

static int setup(void **state)
{
    return setup_ram(512 * MIB);
}

static void test_reset_registers(void **state)
{
    assert_int_equal(cmos_read(0x0A), 0x26);
    assert_int_equal(cmos_read(0x0B), 0x02);
    assert_int_equal(cmos_read(0x0C), 0x00);
    assert_int_equal(cmos_read(0x0D), 0x80);
    cmos_write(0x0C, 0xFF);                    /* C and D are read-only */
    cmos_write(0x0D, 0x00);
    assert_int_equal(cmos_read(0x0C), 0x00);
    assert_int_equal(cmos_read(0x0D), 0x80);
    cmos_write(0x0A, 0xA6);                    /* UIP is read-only */
    assert_int_equal(rtc.cmos[0x0A], 0x26);
    outb(0x8F, RTC_INDEX);                     /* NMI disable + index 0x0F */
    assert_true(rtc.nmi_disabled);
    assert_int_equal(rtc.index, 0x0F);
    assert_int_equal(inb(RTC_INDEX), 0xFF);    /* index is write-only */
    cmos_write(0x40, 0x5A);                    /* plain CMOS RAM */
    assert_int_equal(cmos_read(0x40), 0x5A);
}

static void test_bcd_binary_12h(void **state)
{
    assert_int_equal(cmos_read(0x00), 0x59);
    assert_int_equal(cmos_read(0x02), 0x53);
    assert_int_equal(cmos_read(0x04), 0x19);
    assert_int_equal(cmos_read(0x06), 0x07);   /* Saturday, Sunday = 1 */
    assert_int_equal(cmos_read(0x07), 0x21);
    assert_int_equal(cmos_read(0x08), 0x11);
    assert_int_equal(cmos_read(0x09), 0x26);
    assert_int_equal(cmos_read(0x32), 0x20);
    cmos_write(0x0B, 0x06);                    /* binary, 24 h */
    assert_int_equal(cmos_read(0x00), 59);
    assert_int_equal(cmos_read(0x04), 19);
    assert_int_equal(cmos_read(0x09), 26);
    assert_int_equal(cmos_read(0x32), 20);
    cmos_write(0x0B, 0x00);                    /* BCD, 12 h */
    assert_int_equal(cmos_read(0x04), 0x87);   /* 7 PM */
    cmos_write(0x0B, 0x04);                    /* binary, 12 h */
    assert_int_equal(cmos_read(0x04), 0x87);
}

/* mc146818_get_time: wait for UIP to drop, read, check nothing moved. */
static void test_read_across_update(void **state)
{
    fake_now_ns = t0 + NS_PER_SEC - 245000;
    assert_int_equal(cmos_read(0x0A) & 0x80, 0);
    fake_now_ns = t0 + NS_PER_SEC - 244000;    /* UIP window: 244 us */
    assert_int_equal(cmos_read(0x0A) & 0x80, 0x80);
    assert_int_equal(cmos_read(0x00), 0x59);   /* still the old, valid time */
    fake_now_ns = t0 + NS_PER_SEC;
    assert_int_equal(cmos_read(0x0A) & 0x80, 0);
    assert_int_equal(cmos_read(0x00), 0x00);
    assert_int_equal(cmos_read(0x02), 0x54);
    /* UF, and PF at the reset 1024 Hz rate, set even with UIE/PIE off. */
    assert_int_equal(cmos_read(0x0C), 0x50);
    assert_int_equal(cmos_read(0x0C), 0x00);
    assert_int_equal(irq_rises[8], 0);
}

static void test_update_interrupt(void **state)
{
    assert_int_equal(vrtc_next_event_ns(&rtc), VDEV_NEVER);
    cmos_write(0x0B, 0x12);                    /* UIE */
    assert_int_equal(vrtc_next_event_ns(&rtc), t0 + NS_PER_SEC);
    vrtc_update(&rtc, t0 + NS_PER_SEC - 1);
    assert_int_equal(irq_rises[8], 0);
    fake_now_ns = t0 + NS_PER_SEC;
    vrtc_update(&rtc, fake_now_ns);
    assert_int_equal(irq_level[8], 1);
    assert_int_equal(vrtc_next_event_ns(&rtc), VDEV_NEVER);  /* until C is read */
    assert_int_equal(cmos_read(0x0C), 0xD0);   /* IRQF | PF (1024 Hz, not enabled) | UF */
    assert_int_equal(irq_level[8], 0);
    assert_int_equal(vrtc_next_event_ns(&rtc), t0 + 2 * NS_PER_SEC);
    /* Three seconds unread: one flag, one interrupt. */
    fake_now_ns = t0 + 5 * NS_PER_SEC;
    vrtc_update(&rtc, fake_now_ns);
    assert_int_equal(irq_rises[8], 2);
    assert_int_equal(cmos_read(0x0C), 0xD0);
}

static void test_periodic_and_alarm(void **state)
{
    cmos_write(0x0B, 0x42);                    /* PIE, 1024 Hz from reset A */
    assert_int_equal(vrtc_next_event_ns(&rtc), t0 + 976563);
    vrtc_update(&rtc, t0 + 976563);
    assert_int_equal(irq_level[8], 1);
    assert_int_equal(cmos_read(0x0C), 0xC0);   /* IRQF | PF */
    cmos_write(0x0A, 0x2F);                    /* 2 Hz */
    assert_int_equal(vrtc_next_event_ns(&rtc), t0 + NS_PER_SEC / 2);
    cmos_write(0x0A, 0x20);                    /* rate 0: periodic off */
    assert_int_equal(vrtc_next_event_ns(&rtc), VDEV_NEVER);
    /* Alarm at hh:mm:01 with hour and minute "don't care". */
    cmos_write(0x01, 0x01);
    cmos_write(0x03, 0xC0);
    cmos_write(0x05, 0xFF);
    cmos_write(0x0B, 0x22);                    /* AIE */
    fake_now_ns = t0 + NS_PER_SEC;             /* :00 */
    vrtc_update(&rtc, fake_now_ns);
    assert_int_equal(irq_level[8], 0);
    assert_int_equal(cmos_read(0x0C), 0x10);   /* UF only */
    fake_now_ns = t0 + 2 * NS_PER_SEC;         /* :01 */
    vrtc_update(&rtc, fake_now_ns);
    assert_int_equal(irq_level[8], 1);
    assert_int_equal(cmos_read(0x0C), 0xB0);   /* IRQF | AF | UF */
}

static void set_time_bcd(uint8_t cent, uint8_t yy, uint8_t mo, uint8_t dd, uint8_t hh, uint8_t mi, uint8_t ss)
{
    cmos_write(0x0B, 0x82);                    /* SET */
    cmos_write(0x32, cent);
    cmos_write(0x09, yy);
    cmos_write(0x08, mo);
    cmos_write(0x07, dd);
    cmos_write(0x04, hh);
    cmos_write(0x02, mi);
    cmos_write(0x00, ss);
    cmos_write(0x0B, 0x02);
}

static void test_set_time_and_calendar(void **state)
{
    /* The day written before the month must survive (31 in a 30-day month). */
    cmos_write(0x0B, 0x82);
    cmos_write(0x07, 0x31);
    cmos_write(0x08, 0x12);
    assert_int_equal(cmos_read(0x0B), 0x82);
    fake_now_ns += 5 * NS_PER_SEC;             /* halted: no updates */
    assert_int_equal(cmos_read(0x00), 0x59);
    assert_int_equal(cmos_read(0x0A) & 0x80, 0);
    cmos_write(0x0B, 0x02);
    assert_int_equal(cmos_read(0x07), 0x31);
    assert_int_equal(cmos_read(0x08), 0x12);

    set_time_bcd(0x20, 0x24, 0x02, 0x28, 0x23, 0x59, 0x59);
    fake_now_ns += NS_PER_SEC;
    assert_int_equal(cmos_read(0x07), 0x29);   /* 2024 is a leap year */
    assert_int_equal(cmos_read(0x06), 0x05);   /* Thursday */
    fake_now_ns += NS_PER_SEC * 86400;
    assert_int_equal(cmos_read(0x08), 0x03);
    assert_int_equal(cmos_read(0x07), 0x01);

    set_time_bcd(0x20, 0x99, 0x12, 0x31, 0x23, 0x59, 0x59);
    fake_now_ns += NS_PER_SEC;
    assert_int_equal(cmos_read(0x32), 0x21);
    assert_int_equal(cmos_read(0x09), 0x00);
    assert_int_equal(cmos_read(0x08), 0x01);
    struct vrtc_tm t = vrtc_time(&rtc, fake_now_ns);
    assert_int_equal(t.year, 2100);

    /* A direct write while running moves the time but keeps the phase. */
    cmos_write(0x02, 0x30);
    assert_int_equal(cmos_read(0x02), 0x30);
    assert_int_equal(cmos_read(0x04), 0x00);
    /* Nonsense BCD while SET: clamped on resume, never a crash. */
    set_time_bcd(0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF);
    t = vrtc_time(&rtc, fake_now_ns);
    assert_in_range(t.mon, 1, 12);
    assert_in_range(t.mday, 1, 31);
    assert_in_range(t.hour, 0, 23);
}

/* mc146818_set_time: SET, divider reset, fields, SET off, divider on; the
 * first update comes 500 ms after the divider restarts. */
static void test_divider_reset(void **state)
{
    uint64_t t1;
    cmos_write(0x0B, 0x82);
    cmos_write(0x0A, 0x70);                    /* RTC_DIV_RESET2 */
    cmos_write(0x00, 0x10);
    fake_now_ns += 3 * NS_PER_SEC;
    assert_int_equal(cmos_read(0x00), 0x10);
    cmos_write(0x0B, 0x02);                    /* still halted by the divider */
    fake_now_ns += NS_PER_SEC;
    assert_int_equal(cmos_read(0x00), 0x10);
    t1 = fake_now_ns;
    cmos_write(0x0A, 0x26);
    fake_now_ns = t1 + NS_PER_SEC / 2 - 1;
    assert_int_equal(cmos_read(0x00), 0x10);
    fake_now_ns = t1 + NS_PER_SEC / 2;
    assert_int_equal(cmos_read(0x00), 0x11);
    /* SET alone keeps the update phase: updates stay on t1 + k/2 s. */
    fake_now_ns = t1 + 2 * NS_PER_SEC;         /* 0x12 since t1 + 1.5 s */
    cmos_write(0x0B, 0x82);
    cmos_write(0x00, 0x30);
    fake_now_ns = t1 + 2 * NS_PER_SEC + NS_PER_SEC / 4;
    cmos_write(0x0B, 0x02);
    fake_now_ns = t1 + 2 * NS_PER_SEC + NS_PER_SEC / 2 - 1;
    assert_int_equal(cmos_read(0x00), 0x30);
    fake_now_ns = t1 + 2 * NS_PER_SEC + NS_PER_SEC / 2;
    assert_int_equal(cmos_read(0x00), 0x31);
}

static void test_memory_bytes(void **state)
{
    static const struct { uint64_t ram; uint8_t b15, b16, b17, b18, b34, b35; } rows[] = {
        { 512 * MIB, 0x80, 0x02, 0xFF, 0xFF, 0x00, 0x1F },  /* ext capped at 0xFFFF KiB */
        { 32 * MIB,  0x80, 0x02, 0x00, 0x7C, 0x00, 0x01 },
        { 8 * MIB,   0x80, 0x02, 0x00, 0x1C, 0x00, 0x00 },
        { 4096 * MIB, 0x80, 0x02, 0xFF, 0xFF, 0x00, 0xFF },  /* 0xFF00 64 KiB units */
    };
    for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
        setup_ram(rows[i].ram);
        assert_int_equal(cmos_read(0x15), rows[i].b15);
        assert_int_equal(cmos_read(0x16), rows[i].b16);
        assert_int_equal(cmos_read(0x17), rows[i].b17);
        assert_int_equal(cmos_read(0x18), rows[i].b18);
        assert_int_equal(cmos_read(0x30), rows[i].b17);
        assert_int_equal(cmos_read(0x31), rows[i].b18);
        assert_int_equal(cmos_read(0x34), rows[i].b34);
        assert_int_equal(cmos_read(0x35), rows[i].b35);
    }
    setup_ram(512 * MIB);
    unsigned sum = 0;
    for (uint8_t i = 0x10; i <= 0x2D; i++)
        sum += cmos_read(i);
    assert_int_equal(sum, 0x282);
    assert_int_equal(cmos_read(0x2E) << 8 | cmos_read(0x2F), 0x282);
    assert_int_equal(cmos_read(0x14), 0x02);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_reset_registers, setup),
        cmocka_unit_test_setup(test_bcd_binary_12h, setup),
        cmocka_unit_test_setup(test_read_across_update, setup),
        cmocka_unit_test_setup(test_update_interrupt, setup),
        cmocka_unit_test_setup(test_periodic_and_alarm, setup),
        cmocka_unit_test_setup(test_set_time_and_calendar, setup),
        cmocka_unit_test_setup(test_divider_reset, setup),
        cmocka_unit_test_setup(test_memory_bytes, setup),
    };
    return cmocka_run_group_tests_name("vdev_rtc", tests, NULL, NULL);
}
