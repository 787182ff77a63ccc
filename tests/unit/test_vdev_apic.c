/*
 * Unit tests of the local APIC (vmm/dev/vlapic.c), the I/O APIC
 * (vmm/dev/vioapic.c) and the MP table (vmm/mptable.c), on a fake clock
 * and TSC. Expected values: Intel SDM Vol. 3A ch. 10, the 82093AA
 * datasheet, MP spec 1.4 ch. 4. What the test guest apic.c cannot compare
 * with QEMU and Bochs (timer rates, TSC-deadline, backlog, Remote IRR,
 * hostile register accesses) is checked here.
 */
#include "tests/unit/test_vdev_common.h"
#include "vmm/dev/vlapic.h"
#include "vmm/dev/vioapic.h"
#include "vmm/mptable.h"

#define TSC_HZ 1000000000ull /* 1 GHz: 1 tick = 1 ns */

static struct vlapic a;
static struct vioapic io;
static uint64_t fake_tsc;
static unsigned eois, last_eoi;

static uint64_t tsc_fn(void *o) { return fake_tsc; }
static void eoi_fn(void *o, uint8_t v) { eois++; last_eoi = v; vioapic_eoi(&io, v); }
static void deliver_fn(void *o, uint8_t v, bool level, uint8_t dest, bool logical)
{
    if (vlapic_dest_match(&a, dest, logical))
        vlapic_accept(&a, v, level);
}

static uint32_t rd(uint32_t off) { return vlapic_read(&a, off, 4); }
static void wr(uint32_t off, uint32_t v) { vlapic_write(&a, off, 4, v); }
static void at(uint64_t ns) { fake_now_ns = ns; fake_tsc = ns; vlapic_update(&a); }
/* The vector the CPU takes now (-1: none). */
static int take(void) { return vlapic_pending(&a) < 0 ? -1 : vlapic_ack(&a); }

static int setup(void **state)
{
    fake_now_ns = fake_tsc = 0;
    eois = 0;
    vlapic_init(&a, fake_clock, tsc_fn, TSC_HZ, eoi_fn, NULL);
    vioapic_init(&io, deliver_fn, NULL);
    wr(APIC_SVR, APIC_SVR_ENABLE | 0xFF);
    return 0;
}

static void test_reset_state(void **state)
{
    vlapic_reset(&a);
    assert_int_equal(a.base_msr, 0xFEE00900u);
    assert_int_equal(rd(APIC_VER), 0x00050014u);
    assert_int_equal(rd(APIC_SVR), 0xFF);
    assert_int_equal(rd(APIC_LVT_TIMER), APIC_LVT_MASKED);
    assert_int_equal(rd(APIC_LVT_LINT0), 0x700u); /* ExtINT, as a BIOS leaves it */
    assert_true(vlapic_extint_open(&a));
    assert_int_equal(rd(APIC_DFR), 0xFFFFFFFFu);
}

static void test_priority_and_eoi(void **state)
{
    vlapic_accept(&a, 0x41, false);
    vlapic_accept(&a, 0x61, true);
    wr(APIC_TPR, 0x70);
    assert_int_equal(rd(APIC_PPR), 0x70);
    assert_int_equal(take(), -1);            /* both below the TPR */
    wr(APIC_TPR, 0);
    assert_int_equal(take(), 0x61);          /* highest first */
    assert_int_equal(rd(APIC_PPR), 0x60);
    assert_int_equal(take(), -1);            /* 0x41: class 4 < in service 6 */
    assert_int_equal(rd(APIC_TMR + 0x30) >> 1 & 1, 1); /* 0x61 level: TMR bit 97 */
    wr(APIC_EOI, 0);
    assert_int_equal(eois, 1);               /* level: EOI broadcast */
    assert_int_equal(last_eoi, 0x61);
    assert_int_equal(take(), 0x41);
    wr(APIC_EOI, 0);
    assert_int_equal(eois, 1);               /* edge: none */
    assert_int_equal(vlapic_ack(&a), 0xFF);  /* nothing left: the spurious vector, no ISR */
    assert_int_equal(rd(APIC_ISR + 0x70), 0);
}

static void test_illegal_vector_and_register(void **state)
{
    wr(APIC_LVT_ERROR, 0xFE);
    vlapic_accept(&a, 7, false);
    wr(APIC_ESR, 0);
    assert_int_equal(rd(APIC_ESR), APIC_ESR_RECV_ILLEGAL);
    assert_int_equal(take(), 0xFE);          /* the error LVT */
    wr(APIC_EOI, 0);
    wr(APIC_ICR_LO, (1u << 18) | 3);         /* self-IPI, vector 3 */
    wr(0xFF0, 1);                            /* reserved offset */
    wr(APIC_ESR, 0);
    assert_int_equal(rd(APIC_ESR), APIC_ESR_SEND_ILLEGAL | APIC_ESR_ILLEGAL_REG);
    /* An error LVT with an illegal vector does not recurse forever. */
    wr(APIC_LVT_ERROR, 5);
    vlapic_accept(&a, 1, false);
    wr(APIC_ESR, 0);
    assert_int_equal(rd(APIC_ESR), APIC_ESR_RECV_ILLEGAL);
}

static void test_odd_accesses(void **state)
{
    wr(APIC_TPR, 0x35);
    assert_int_equal(vlapic_read(&a, APIC_TPR, 1), 0x35);
    assert_int_equal(vlapic_read(&a, APIC_TPR + 1, 2), 0);
    assert_int_equal(vlapic_read(&a, APIC_TPR + 4, 4), 0);
    assert_int_equal(vlapic_read(&a, 0xFFE, 4), 0); /* wraps inside the page */
    vlapic_write(&a, APIC_TPR, 1, 0x99);     /* not a 32-bit store: dropped */
    vlapic_write(&a, APIC_TPR + 2, 4, 0x99);
    vlapic_write(&a, 0x5000, 4, 0x99);
    assert_int_equal(rd(APIC_TPR), 0x35);
    assert_true(a.bad_accesses >= 5);
    for (uint32_t off = 0; off < 0x1000; off += 4) /* every offset, junk: no crash, state sane */
        vlapic_write(&a, off, 4, 0xFFFFFFFFu);
    assert_true(rd(APIC_TPR) <= 0xFF);
}

static void test_software_disable(void **state)
{
    wr(APIC_LVT_TIMER, 0x40);
    wr(APIC_SVR, 0xFF);
    assert_int_equal(rd(APIC_LVT_TIMER) & APIC_LVT_MASKED, APIC_LVT_MASKED);
    wr(APIC_LVT_TIMER, 0x40);
    assert_int_equal(rd(APIC_LVT_TIMER) & APIC_LVT_MASKED, APIC_LVT_MASKED);
    assert_false(vlapic_extint_open(&a));   /* LINT0 masked too */
    assert_int_equal(vlapic_set_base(&a, 0xFEE00100u), 0); /* global disable: reset, PIC direct */
    assert_true(vlapic_extint_open(&a));
    assert_int_equal(vlapic_pending(&a), -1);
    assert_int_equal(vlapic_set_base(&a, 0xFEE00D00u), -1); /* x2APIC bit: reserved */
    assert_int_equal(vlapic_set_base(&a, 0x1FEE00900ull), -1);
    assert_int_equal(vlapic_set_base(&a, 0xFEE00900u), 0);
    assert_int_equal(vlapic_page(&a), 0xFEE00000u);
}

static void test_timer_oneshot(void **state)
{
    wr(APIC_TDCR, 0x3);                      /* divide by 16: 16 us per count at 1 MHz */
    wr(APIC_LVT_TIMER, 0x50);
    wr(APIC_TMICT, 1000);                    /* 16 ms */
    at(8000000);
    assert_int_equal(rd(APIC_TMCCT), 500);
    assert_int_equal(take(), -1);
    at(16000000);
    assert_int_equal(take(), 0x50);
    wr(APIC_EOI, 0);
    assert_int_equal(rd(APIC_TMCCT), 0);
    at(100000000);
    assert_int_equal(take(), -1);            /* once */
    assert_int_equal(vlapic_next_event_ns(&a), VDEV_NEVER);
}

/* The APIC timer's periods follow the PIT's lost-tick policy
 * (vmm/dev/vtick.h): a gap of up to 50 ms (12 periods of 4 ms) is kept in
 * full, a longer one keeps four; short gaps never taken fill the backlog
 * to one second's worth. */
static void test_timer_periodic_long_gap(void **state)
{
    wr(APIC_TDCR, 0xB);                      /* divide by 1: 1 us per count */
    wr(APIC_LVT_TIMER, APIC_TIMER_PERIODIC | 0x51);
    wr(APIC_TMICT, 4000);                    /* 4 ms, Linux's HZ=250 tick */
    at(52000000);                            /* 13 periods: 1 now, 12 kept */
    assert_int_equal(a.tick.backlog, 12);
    assert_int_equal(a.tick.gave_up, 0);
    at(112000000);                           /* 15 more: 1 now, 4 of 14 kept */
    assert_int_equal(a.tick.backlog, 12 + VTICK_GAP_KEEP);
    assert_int_equal(a.tick.dropped, 14 - VTICK_GAP_KEEP);
    assert_int_equal(a.tick.gave_up, 1);
    for (uint64_t t = 112000000 + 40000000; t < 112000000 + 40000000ull * 60; t += 40000000)
        at(t);                               /* gaps of 9 missed, never taken */
    assert_int_equal(a.tick.backlog, 250);
    assert_int_equal(a.tick.gave_up, 1);
}

static void test_timer_periodic_backlog(void **state)
{
    wr(APIC_TDCR, 0xB);                      /* divide by 1: 1 us per count */
    wr(APIC_LVT_TIMER, APIC_TIMER_PERIODIC | 0x51);
    wr(APIC_TMICT, 4000);                    /* 4 ms, Linux's HZ=250 tick */
    at(4000000);
    assert_int_equal(take(), 0x51);
    wr(APIC_EOI, 0);
    at(6000000);
    assert_int_equal(rd(APIC_TMCCT), 2000);
    at(24000000);                            /* 5 periods late: 1 now, 4 kept */
    assert_int_equal(take(), 0x51);
    assert_int_equal(a.tick.backlog, 4);
    vlapic_reinject(&a);                     /* vector in service: nothing */
    assert_int_equal(a.tick.backlog, 4);
    wr(APIC_EOI, 0);
    assert_int_equal(vlapic_next_event_ns(&a), 0);
    for (int i = 0; i < 4; i++) {
        vlapic_reinject(&a);
        assert_int_equal(take(), 0x51);
        wr(APIC_EOI, 0);
    }
    assert_int_equal(a.tick.reinjected, 4);
    assert_int_equal(vlapic_next_event_ns(&a), 28000000); /* still on the grid */
    at(10000000000ull);                      /* 10 s away: too long to catch up, four kept */
    assert_int_equal(a.tick.backlog, VTICK_GAP_KEEP);
    assert_true(a.tick.dropped > 2000);
    assert_int_equal(a.tick.gave_up, 1);
    wr(APIC_TMICT, 0);
    assert_int_equal(a.tick.backlog, 0);
    assert_int_equal(rd(APIC_TMCCT), 0);
}

static void test_timer_divide_change(void **state)
{
    wr(APIC_TDCR, 0xB);
    wr(APIC_LVT_TIMER, 0x52);
    wr(APIC_TMICT, 1000);
    at(400000);                              /* 600 counts left */
    wr(APIC_TDCR, 0x0);                      /* divide by 2: 2 us each */
    assert_int_equal(rd(APIC_TMCCT), 600);
    at(1500000);
    assert_int_equal(take(), -1);
    at(1600000);
    assert_int_equal(take(), 0x52);
}

static void test_tsc_deadline(void **state)
{
    wr(APIC_LVT_TIMER, APIC_TIMER_DEADLINE | 0x53); /* not offered: bit 18 reserved */
    assert_int_equal(rd(APIC_LVT_TIMER) & APIC_TIMER_MODE, 0);
    a.has_deadline = true;
    wr(APIC_LVT_TIMER, APIC_TIMER_DEADLINE | 0x53);
    wr(APIC_TMICT, 5);                       /* ignored in this mode */
    assert_int_equal(rd(APIC_TMICT), 0);
    vlapic_set_deadline(&a, 3000);
    assert_int_equal(vlapic_get_deadline(&a), 3000);
    at(2999);
    assert_int_equal(take(), -1);
    at(3000);
    assert_int_equal(take(), 0x53);
    assert_int_equal(vlapic_get_deadline(&a), 0);   /* disarmed once it fired */
    vlapic_set_deadline(&a, UINT64_MAX);     /* far away: no overflow, an hour's wake-up */
    assert_true(vlapic_next_event_ns(&a) <= fake_now_ns + 3600ull * NS_PER_SEC);
    wr(APIC_LVT_TIMER, 0x53);                /* mode change disarms */
    assert_int_equal(vlapic_get_deadline(&a), 0);
}

/* The rules of §10.5.4.1 that Bochs 2.7 does not keep, so that the apic
 * test guest cannot compare them natively: in other modes the MSR reads 0
 * and ignores writes; the change to TSC-deadline mode clears the initial
 * count; writing 0 disarms; a masked deadline disarms silently; a deadline
 * already past fires at once. */
static void test_tsc_deadline_rules(void **state)
{
    a.has_deadline = true;
    wr(APIC_LVT_TIMER, 0x53);                /* one-shot */
    wr(APIC_TMICT, 5000);
    vlapic_set_deadline(&a, 100);            /* not this mode: ignored */
    assert_int_equal(vlapic_get_deadline(&a), 0);
    wr(APIC_LVT_TIMER, APIC_TIMER_DEADLINE | 0x53);
    assert_int_equal(rd(APIC_TMICT), 0);     /* the count went with the mode */
    assert_int_equal(vlapic_get_deadline(&a), 0);
    at(6000);
    assert_int_equal(take(), -1);            /* neither the count nor the ignored write fired */
    vlapic_set_deadline(&a, 7000);
    vlapic_set_deadline(&a, 0);              /* disarm */
    at(8000);
    assert_int_equal(take(), -1);
    wr(APIC_LVT_TIMER, APIC_TIMER_DEADLINE | APIC_LVT_MASKED | 0x53);
    vlapic_set_deadline(&a, 9000);
    at(9000);
    assert_int_equal(take(), -1);            /* masked: no interrupt ... */
    assert_int_equal(vlapic_get_deadline(&a), 0); /* ... but disarmed */
    wr(APIC_LVT_TIMER, APIC_TIMER_DEADLINE | 0x53);
    vlapic_set_deadline(&a, 1);              /* in the past */
    at(fake_now_ns);
    assert_int_equal(take(), 0x53);
    assert_int_equal(vlapic_get_deadline(&a), 0);
}

static void test_ipi_destinations(void **state)
{
    wr(APIC_ICR_HI, 0);                      /* physical 0: this CPU */
    wr(APIC_ICR_LO, 0x44);
    assert_int_equal(take(), 0x44);
    wr(APIC_EOI, 0);
    wr(APIC_ICR_HI, 3u << 24);               /* physical 3: nobody */
    wr(APIC_ICR_LO, 0x45);
    assert_int_equal(take(), -1);
    wr(APIC_LDR, 1u << 24);
    wr(APIC_ICR_HI, 1u << 24);               /* logical flat, bit 0 */
    wr(APIC_ICR_LO, (1u << 11) | 0x46);
    assert_int_equal(take(), 0x46);
    wr(APIC_EOI, 0);
    wr(APIC_ICR_LO, (3u << 18) | 0x47);      /* all but self */
    wr(APIC_ICR_LO, (3u << 18) | (5u << 8)); /* INIT to the others */
    wr(APIC_ICR_LO, (2u << 18) | (6u << 8) | 0x10); /* SIPI to all */
    assert_int_equal(take(), -1);
    assert_int_equal(rd(APIC_ICR_LO) & APIC_LVT_PENDING, 0);
}

static void test_ioapic_level_remote_irr(void **state)
{
    vlapic_write(&a, APIC_TPR, 4, 0);
    vioapic_write(&io, IOAPIC_REGSEL, 4, IOAPIC_REG_RTE + 2 * 11);
    vioapic_write(&io, IOAPIC_WIN, 4, IOAPIC_RTE_LEVEL | 0x6B);
    vioapic_set_irq(&io, 11, 1);
    assert_int_equal(take(), 0x6B);
    assert_int_equal(vioapic_read(&io, IOAPIC_WIN, 4) & IOAPIC_RTE_RIRR, IOAPIC_RTE_RIRR);
    vioapic_set_irq(&io, 11, 0);
    vioapic_set_irq(&io, 11, 1);             /* Remote IRR: no second message */
    assert_int_equal(io.messages, 1);
    wr(APIC_EOI, 0);                         /* EOI broadcast: line still up, sent again */
    assert_int_equal(io.messages, 2);
    assert_int_equal(take(), 0x6B);
    vioapic_set_irq(&io, 11, 0);
    wr(APIC_EOI, 0);
    assert_int_equal(vioapic_read(&io, IOAPIC_WIN, 4) & IOAPIC_RTE_RIRR, 0);
    assert_int_equal(io.messages, 2);
}

static void test_ioapic_edge_mask_polarity(void **state)
{
    vioapic_write(&io, IOAPIC_REGSEL, 4, IOAPIC_REG_RTE + 2 * 4);
    vioapic_write(&io, IOAPIC_WIN, 4, IOAPIC_RTE_MASKED | 0x64);
    vioapic_set_irq(&io, 4, 1);
    vioapic_set_irq(&io, 4, 0);
    assert_int_equal(io.messages, 0);        /* masked */
    vioapic_write(&io, IOAPIC_WIN, 4, 0x64);
    vioapic_set_irq(&io, 4, 1);
    vioapic_set_irq(&io, 4, 1);              /* no new edge */
    assert_int_equal(io.messages, 1);
    assert_int_equal(take(), 0x64);
    wr(APIC_EOI, 0);
    vioapic_set_irq(&io, 4, 0);
    vioapic_write(&io, IOAPIC_WIN, 4, IOAPIC_RTE_LOW | 0x64); /* active low: low line is asserted */
    vioapic_set_irq(&io, 4, 1);
    vioapic_set_irq(&io, 4, 0);
    assert_int_equal(io.messages, 2);
    /* Registers: version, read-only bits, out-of-range indexes. */
    vioapic_write(&io, IOAPIC_REGSEL, 4, IOAPIC_REG_VER);
    assert_int_equal(vioapic_read(&io, IOAPIC_WIN, 4), 0x00170011u);
    vioapic_write(&io, IOAPIC_REGSEL, 4, 0xFF);
    vioapic_write(&io, IOAPIC_WIN, 4, 0xFFFFFFFFu);
    assert_int_equal(vioapic_read(&io, IOAPIC_WIN, 4), 0);
    vioapic_write(&io, IOAPIC_REGSEL, 4, IOAPIC_REG_RTE);
    vioapic_write(&io, IOAPIC_WIN, 4, 0xFFFFFFFFu);
    assert_int_equal(vioapic_read(&io, IOAPIC_WIN, 4), 0x0001AFFFu); /* status, Remote IRR, 31:17 not writable */
    vioapic_write(&io, IOAPIC_WIN, 2, 0);    /* not 32 bits: dropped */
    assert_int_equal(vioapic_read(&io, IOAPIC_WIN, 4), 0x0001AFFFu);
    vioapic_set_irq(&io, 99, 1);             /* no such pin */
    vioapic_set_irq(&io, -1, 1);
}

static uint8_t sum(const uint8_t *p, size_t n)
{
    uint8_t s = 0;
    while (n--)
        s += *p++;
    return s;
}

static void test_mptable(void **state)
{
    struct mp_config cfg = { .apic_version = 0x14, .lapic_addr = 0xFEE00000u, .ioapic_version = 0x11,
                             .ioapic_addr = 0xFEC00000u, .isa_irqs = 0xFFFB, .npci = 2 };
    for (int i = 0; i < 16; i++)
        cfg.isa_pin[i] = (uint8_t)(i == 0 ? 2 : i);
    cfg.pci[0].slot = 3; cfg.pci[0].pin = 11;
    cfg.pci[1].slot = 7; cfg.pci[1].pin = 7;
    uint8_t buf[MPTABLE_MAX];
    size_t n = mptable_build(&cfg, MPTABLE_GPA, buf, sizeof(buf));
    assert_true(n > 16 && n % 16 == 0);
    assert_memory_equal(buf, "_MP_", 4);
    assert_int_equal(sum(buf, 16), 0);
    uint32_t cfg_pa;
    memcpy(&cfg_pa, buf + 4, 4);
    assert_int_equal(cfg_pa, MPTABLE_GPA + 16);
    const uint8_t *t = buf + 16;
    uint16_t len, count;
    memcpy(&len, t + 4, 2);
    memcpy(&count, t + 34, 2);
    assert_memory_equal(t, "PCMP", 4);
    assert_int_equal(sum(t, len), 0);
    /* 1 CPU, 2 buses, 1 I/O APIC, 15 ISA IRQs, 2 PCI, 2 local: walk them. */
    assert_int_equal(count, 1 + 2 + 1 + 15 + 2 + 2);
    static const unsigned size[] = { 20, 8, 8, 8, 8 };
    unsigned pos = 44, kinds[5] = { 0 }, irq0_pin = 99, pci_pin = 0;
    for (unsigned i = 0; i < count; i++) {
        assert_true(t[pos] < 5);
        if (t[pos] == 3 && t[pos + 4] == MP_BUS_ISA && t[pos + 5] == 0)
            irq0_pin = t[pos + 7];
        if (t[pos] == 3 && t[pos + 4] == MP_BUS_PCI && t[pos + 5] == (3 << 2)) {
            pci_pin = t[pos + 7];
            assert_int_equal(t[pos + 2], 0xD); /* level, active high */
        }
        kinds[t[pos]]++;
        pos += size[t[pos]];
    }
    assert_int_equal(pos, len);
    assert_int_equal(kinds[0], 1);
    assert_int_equal(kinds[3], 17);
    assert_int_equal(irq0_pin, 2);
    assert_int_equal(pci_pin, 11);
    assert_int_equal(mptable_build(&cfg, MPTABLE_GPA, buf, 64), 0); /* too small: refused */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_reset_state, setup),
        cmocka_unit_test_setup(test_priority_and_eoi, setup),
        cmocka_unit_test_setup(test_illegal_vector_and_register, setup),
        cmocka_unit_test_setup(test_odd_accesses, setup),
        cmocka_unit_test_setup(test_software_disable, setup),
        cmocka_unit_test_setup(test_timer_oneshot, setup),
        cmocka_unit_test_setup(test_timer_periodic_backlog, setup),
        cmocka_unit_test_setup(test_timer_periodic_long_gap, setup),
        cmocka_unit_test_setup(test_timer_divide_change, setup),
        cmocka_unit_test_setup(test_tsc_deadline, setup),
        cmocka_unit_test_setup(test_tsc_deadline_rules, setup),
        cmocka_unit_test_setup(test_ipi_destinations, setup),
        cmocka_unit_test_setup(test_ioapic_level_remote_irr, setup),
        cmocka_unit_test_setup(test_ioapic_edge_mask_polarity, setup),
        cmocka_unit_test_setup(test_mptable, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
