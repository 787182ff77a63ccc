/*
 * Unit tests of the 8254 and port 0x61 (vmm/dev/vpit.c) with a fake clock,
 * using the sequences of Linux's i8253 clockevent and TSC calibration.
 * Expected values: Intel 8254 datasheet; ns figures are ceil(ticks * 1e9 /
 * 1193182) and ticks are floor(ns * 1193182 / 1e9).
 */
#include "tests/unit/test_vdev_common.h"
#include "vmm/dev/vpit.h"

#define PIT_CH0  0x40
#define PIT_CH2  0x42
#define PIT_MODE 0x43
#define PORT_B   0x61
#define PORTB_OUT2 0x20
#define LATCH_100HZ 11932  /* (1193182 + 50) / 100 */

static struct vpit pit;

static int setup(void **state)
{
    iobus_init(&test_bus);
    fake_now_ns = 1000000000ull;  /* not zero: the clock's origin is arbitrary */
    reset_recorder();
    vpit_init(&pit, fake_clock, NULL, recorder());
    assert_int_equal(vpit_attach(&pit, &test_bus), 0);
    return 0;
}

static void at(uint64_t rel_ns, uint64_t base)
{
    fake_now_ns = base + rel_ns;
}

static uint16_t read16(uint16_t port)
{
    uint8_t lo = inb(port);
    return (uint16_t)(lo | inb(port) << 8);
}

static void test_periodic_mode2(void **state)
{
    uint64_t t0 = fake_now_ns;
    assert_int_equal(vpit_next_event_ns(&pit), VDEV_NEVER);  /* unprogrammed */
    /* pit_set_periodic */
    outb(0x34, PIT_MODE);
    outb(LATCH_100HZ & 0xFF, PIT_CH0);
    outb(LATCH_100HZ >> 8, PIT_CH0);
    assert_int_equal(vpit_next_event_ns(&pit), t0 + 10000151);

    /* Counter latch command at 5 ms: 5965 ticks counted. */
    at(5000000, t0);
    outb(0x00, PIT_MODE);
    at(6000000, t0);                       /* the latch holds while time passes */
    assert_int_equal(read16(PIT_CH0), LATCH_100HZ - 5965);

    at(10000150, t0);
    vpit_update(&pit, fake_now_ns);
    assert_int_equal(irq_rises[0], 0);
    at(10000151, t0);
    vpit_update(&pit, fake_now_ns);
    assert_int_equal(irq_rises[0], 1);
    assert_int_equal(irq_level[0], 0);     /* a pulse: the PIC latched the edge */
    assert_int_equal(vpit_next_event_ns(&pit), t0 + 20000302);  /* ceil(2N ticks) */

    /* A guest that was not run for 35 ms: one pulse, two edges coalesced. */
    at(45000000, t0);
    vpit_update(&pit, fake_now_ns);
    assert_int_equal(irq_rises[0], 2);
    assert_int_equal(pit.lost_ticks, 2);
    assert_true(vpit_next_event_ns(&pit) > fake_now_ns);
}

static void test_readback_and_status(void **state)
{
    outb(0x34, PIT_MODE);
    /* Status before a count: OUT high (mode 2), null count, RW=3, mode 2. */
    outb(0xE2, PIT_MODE);                  /* read-back: status only, counter 0 */
    assert_int_equal(inb(PIT_CH0), 0xF4);
    outb(0x00, PIT_CH0);
    outb(0x10, PIT_CH0);                   /* 0x1000 */
    fake_now_ns += 838 * 1000 + 200;        /* 1000 ticks (838.1 us) */
    outb(0xC2, PIT_MODE);                  /* read-back: count and status */
    assert_int_equal(inb(PIT_CH0), 0xB4);  /* status first, count loaded */
    assert_int_equal(read16(PIT_CH0), 0x1000 - 1000);
    /* Without a latch the count is live and read LSB then MSB. */
    fake_now_ns += 838 * 1000 + 200;
    assert_int_equal(read16(PIT_CH0), 0x1000 - 2000);
    /* A second latch before reading is ignored: the first value stays. */
    outb(0x00, PIT_MODE);
    fake_now_ns += 838 * 1000 + 200;
    outb(0x00, PIT_MODE);
    assert_int_equal(read16(PIT_CH0), 0x1000 - 2000);
    assert_int_equal(read16(PIT_CH0), 0x1000 - 3000);
    /* The control port itself is write-only. */
    assert_int_equal(inb(PIT_MODE), 0xFF);
}

static void test_calibrate_tsc_mode0(void **state)
{
    uint64_t t0;
    /* pit_calibrate_tsc: gate high, speaker off, counter 2 mode 0, 10 ms. */
    outb((inb(PORT_B) & ~0x02) | 0x01, PORT_B);
    outb(0xB0, PIT_MODE);
    outb(11931 & 0xFF, PIT_CH2);
    t0 = fake_now_ns;
    outb(11931 >> 8, PIT_CH2);
    assert_int_equal(inb(PORT_B) & PORTB_OUT2, 0);
    at(9999312, t0);
    assert_int_equal(inb(PORT_B) & PORTB_OUT2, 0);
    at(9999313, t0);
    assert_int_equal(inb(PORT_B) & PORTB_OUT2, PORTB_OUT2);
    assert_int_equal(inb(PORT_B) & 0x03, 0x01);
    /* After terminal count mode 0 wraps and keeps counting; OUT stays high. */
    at(20000000, t0);
    outb(0x80, PIT_MODE);
    assert_int_equal(read16(PIT_CH2), (11931 - 23863 + 65536) & 0xFFFF);
    assert_int_equal(inb(PORT_B) & PORTB_OUT2, PORTB_OUT2);
    assert_int_equal(irq_rises[0], 0);     /* counter 2 has no IRQ */
}

static void test_quick_calibrate_msb(void **state)
{
    uint64_t t0;
    outb((inb(PORT_B) & ~0x02) | 0x01, PORT_B);
    outb(0xB0, PIT_MODE);
    outb(0xFF, PIT_CH2);
    t0 = fake_now_ns;
    outb(0xFF, PIT_CH2);
    /* pit_verify_msb: read LSB, then compare MSB. */
    inb(PIT_CH2);
    assert_int_equal(inb(PIT_CH2), 0xFF);
    at(1000000, t0);                       /* 1193 ticks */
    assert_int_equal(inb(PIT_CH2), 0x56);
    assert_int_equal(inb(PIT_CH2), 0xFB);
    /* The gate held low pauses mode 0; raising it resumes. */
    outb(0x00, PORT_B);
    at(5000000, t0);
    assert_int_equal(read16(PIT_CH2), 0xFB56);
    outb(0x01, PORT_B);
    at(6000000, t0);                       /* 1 ms more: 1193 more ticks */
    uint16_t v = read16(PIT_CH2);
    assert_true(v == 0xFB56 - 1193 || v == 0xFB56 - 1192);
}

static void test_bcd_and_lsb_only(void **state)
{
    uint64_t t0;
    outb(0x01, PORT_B);
    outb(0xB1, PIT_MODE);                  /* counter 2, mode 0, BCD */
    outb(0x00, PIT_CH2);
    t0 = fake_now_ns;
    outb(0x10, PIT_CH2);                   /* 1000 decimal */
    at(83810, t0);                         /* 100 ticks */
    assert_int_equal(read16(PIT_CH2), 0x0900);
    outb(0x90, PIT_MODE);                  /* counter 2, LSB only, mode 0 */
    t0 = fake_now_ns;
    outb(0x80, PIT_CH2);                   /* count 128 */
    at(41905, t0);                         /* 50 ticks */
    assert_int_equal(inb(PIT_CH2), 78);
    assert_int_equal(inb(PIT_CH2), 78);    /* no MSB toggle in LSB-only mode */
    outb(0xA0, PIT_MODE);                  /* MSB only */
    t0 = fake_now_ns;
    outb(0x01, PIT_CH2);                   /* count 256 */
    at(41905, t0);
    assert_int_equal(inb(PIT_CH2), 0x00);  /* (256 - 50) >> 8 */
}

static void test_mode3_square_and_mode1(void **state)
{
    uint64_t t0;
    outb(0x01, PORT_B);
    outb(0xB6, PIT_MODE);                  /* counter 2, mode 3 */
    outb(100, PIT_CH2);
    t0 = fake_now_ns;
    outb(0, PIT_CH2);
    at(41905 - 1000, t0);                  /* 48-49 ticks: first half, high */
    assert_int_equal(inb(PORT_B) & PORTB_OUT2, PORTB_OUT2);
    at(41905 + 1000, t0);                  /* 51 ticks: second half, low */
    assert_int_equal(inb(PORT_B) & PORTB_OUT2, 0);
    /* Mode 1: OUT high until the gate's rising edge, then low for N ticks. */
    outb(0x00, PORT_B);
    outb(0xB2, PIT_MODE);
    outb(100, PIT_CH2);
    outb(0, PIT_CH2);
    assert_int_equal(inb(PORT_B) & PORTB_OUT2, PORTB_OUT2);
    outb(0x01, PORT_B);
    t0 = fake_now_ns;
    assert_int_equal(inb(PORT_B) & PORTB_OUT2, 0);
    at(83810, t0);
    assert_int_equal(inb(PORT_B) & PORTB_OUT2, PORTB_OUT2);
}

static void test_oneshot_and_shutdown(void **state)
{
    uint64_t t0 = fake_now_ns;
    /* pit_set_oneshot + pit_next_event: mode 4, strobe after N+1 ticks. */
    outb(0x38, PIT_MODE);
    outb(1000 & 0xFF, PIT_CH0);
    outb(1000 >> 8, PIT_CH0);
    assert_int_equal(vpit_next_event_ns(&pit), t0 + 838934);
    at(838934, t0);
    vpit_update(&pit, fake_now_ns);
    assert_int_equal(irq_rises[0], 1);
    assert_int_equal(vpit_next_event_ns(&pit), VDEV_NEVER);
    at(100000000, t0);
    vpit_update(&pit, fake_now_ns);
    assert_int_equal(irq_rises[0], 1);
    /* pit_shutdown: mode 0 with count 0 = 65536 ticks, one late interrupt. */
    t0 = fake_now_ns;
    outb(0x30, PIT_MODE);
    outb(0, PIT_CH0);
    outb(0, PIT_CH0);
    assert_int_equal(vpit_next_event_ns(&pit), t0 + 54925402);
}

/* A guest asking for a 2-tick period gets IRQ0 at VPIT_MIN_PERIOD_NS. */
static void test_periodic_rate_limit(void **state)
{
    uint64_t t0 = fake_now_ns, prev = 0;
    outb(0x34, PIT_MODE);
    outb(2, PIT_CH0);
    outb(0, PIT_CH0);
    for (int i = 0; i < 50; i++) {
        uint64_t next = vpit_next_event_ns(&pit);
        assert_true(next != VDEV_NEVER && next >= fake_now_ns);
        if (i > 0)
            assert_true(next - prev >= VPIT_MIN_PERIOD_NS);
        fake_now_ns = next;
        vpit_update(&pit, fake_now_ns);
        assert_int_equal(irq_rises[0], i + 1);
        prev = next;
    }
    /* Updates in between deliver nothing. */
    vpit_update(&pit, fake_now_ns + VPIT_MIN_PERIOD_NS / 2);
    assert_int_equal(irq_rises[0], 50);
    assert_true(fake_now_ns - t0 < 51 * VPIT_MIN_PERIOD_NS);
    assert_true(pit.lost_ticks > 49 * 50);   /* ~59 edges (119 ticks / 2) per pulse */
    /* The 100 Hz rate of a normal guest is untouched. */
    outb(0x34, PIT_MODE);
    outb(LATCH_100HZ & 0xFF, PIT_CH0);
    t0 = fake_now_ns;
    outb(LATCH_100HZ >> 8, PIT_CH0);
    assert_int_equal(vpit_next_event_ns(&pit), t0 + 10000151);
}

/* Mode 2: a count written while counting waits for the end of the period. */
static void test_mode2_new_count_at_period_end(void **state)
{
    uint64_t t0 = fake_now_ns;
    outb(0x34, PIT_MODE);
    outb(1000 & 0xFF, PIT_CH0);
    outb(1000 >> 8, PIT_CH0);
    at(251429, t0);                        /* 300 ticks */
    outb(500 & 0xFF, PIT_CH0);
    outb(500 >> 8, PIT_CH0);
    outb(0xE2, PIT_MODE);
    assert_int_equal(inb(PIT_CH0) & 0x40, 0x40);   /* null count: not loaded yet */
    at(502858, t0);                        /* 600 ticks: still the old period */
    assert_int_equal(read16(PIT_CH0), 400);
    assert_int_equal(vpit_next_event_ns(&pit), t0 + 838096);
    at(838096, t0);                        /* the old period ends: edge, reload */
    vpit_update(&pit, fake_now_ns);
    assert_int_equal(irq_rises[0], 1);
    assert_int_equal(pit.lost_ticks, 0);
    assert_int_equal(vpit_next_event_ns(&pit), t0 + 838096 + 419048);  /* ceil(500 ticks) */
    at(838096 + 83810, t0);                /* 100 ticks into the new period */
    assert_int_equal(read16(PIT_CH0), 400);
    outb(0xE2, PIT_MODE);
    assert_int_equal(inb(PIT_CH0) & 0x40, 0);
}

static void test_port_b_and_junk(void **state)
{
    outb(0xFF, PORT_B);
    assert_int_equal(inb(PORT_B) & 0xCF, 0x0F);   /* bits 0-3 kept, 6-7 read 0 */
    fake_now_ns = 15085 * 10;
    uint8_t a = inb(PORT_B) & 0x10;
    fake_now_ns += 15085;
    assert_int_not_equal(inb(PORT_B) & 0x10, a);  /* refresh toggles */
    /* Counter 1 never programmed: writes without a mode are dropped. */
    outb(0x12, 0x41);
    assert_int_equal(pit.ch[1].count, 0);
    /* Modes 6 and 7 are modes 2 and 3; status shows the bits written. */
    outb(0x3C, PIT_MODE);
    assert_int_equal(pit.ch[0].mode, 2);
    outb(0xE2, PIT_MODE);
    assert_int_equal(inb(PIT_CH0) & 0x0E, 0x0C);
    outw(0x1234, PIT_CH0);                        /* word write: two byte cycles */
    assert_true(pit.ch[0].write_msb_next);        /* LSB 0x34 taken, MSB awaited */
    assert_int_equal(pit.ch[1].count, 0);         /* 0x12 went to unprogrammed counter 1 */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_periodic_mode2, setup),
        cmocka_unit_test_setup(test_readback_and_status, setup),
        cmocka_unit_test_setup(test_calibrate_tsc_mode0, setup),
        cmocka_unit_test_setup(test_quick_calibrate_msb, setup),
        cmocka_unit_test_setup(test_bcd_and_lsb_only, setup),
        cmocka_unit_test_setup(test_mode3_square_and_mode1, setup),
        cmocka_unit_test_setup(test_oneshot_and_shutdown, setup),
        cmocka_unit_test_setup(test_periodic_rate_limit, setup),
        cmocka_unit_test_setup(test_mode2_new_count_at_period_end, setup),
        cmocka_unit_test_setup(test_port_b_and_junk, setup),
    };
    return cmocka_run_group_tests_name("vdev_pit", tests, NULL, NULL);
}
