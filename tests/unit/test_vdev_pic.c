/*
 * Unit tests of the 8259A pair (vmm/dev/vpic.c), driven the way Linux's
 * arch/x86/kernel/i8259.c drives it. Expected values: Intel 8259A datasheet.
 */
#include "tests/unit/test_vdev_common.h"
#include "vmm/dev/vpic.h"

#define M_CMD 0x20
#define M_IMR 0x21
#define S_CMD 0xA0
#define S_IMR 0xA1
#define OCW3_READ_IRR 0x0A
#define OCW3_READ_ISR 0x0B
#define OCW3_POLL     0x0C
#define OCW3_SET_SMM  0x68
#define EOI_NONSPEC   0x20
#define EOI_SPECIFIC  0x60
#define VEC0 0x30  /* ISA_IRQ_VECTOR(0) on i386 Linux */

static struct vpic pic;
static int intr_changes;
static bool intr_level;

static void on_intr(void *opaque, bool asserted)
{
    intr_changes++;
    intr_level = asserted;
}

/* init_8259A(auto_eoi) from Linux, then all masked but the cascade. */
static void linux_init(bool auto_eoi)
{
    outb(0xFF, M_IMR);
    outb(0x11, M_CMD);                 /* ICW1: edge, cascade, ICW4 */
    outb(VEC0, M_IMR);                 /* ICW2 */
    outb(1u << 2, M_IMR);              /* ICW3: slave on IR2 */
    outb(auto_eoi ? 0x03 : 0x01, M_IMR);  /* ICW4: 8086 (+AEOI) */
    outb(0x11, S_CMD);
    outb(VEC0 + 8, S_IMR);
    outb(2, S_IMR);                    /* ICW3: slave identity */
    outb(0x01, S_IMR);
    outb(0xFB, M_IMR);
    outb(0xFF, S_IMR);
}

static int setup(void **state)
{
    iobus_init(&test_bus);
    vpic_init(&pic, on_intr, NULL);
    assert_int_equal(vpic_attach(&pic, &test_bus), 0);
    intr_changes = 0;
    intr_level = false;
    linux_init(false);
    return 0;
}

static void pulse(int irq)
{
    vpic_set_irq(&pic, irq, 1);
    vpic_set_irq(&pic, irq, 0);
}

static uint8_t read_isr(uint16_t cmd)
{
    outb(OCW3_READ_ISR, cmd);
    uint8_t v = inb(cmd);
    outb(OCW3_READ_IRR, cmd);
    return v;
}

static void test_probe_and_masks(void **state)
{
    /* probe_8259A: write 0xff to the slave, 0xfb to the master, read back. */
    outb(0xFF, S_IMR);
    outb(0xFB, M_IMR);
    assert_int_equal(inb(M_IMR), 0xFB);
    assert_int_equal(inb(S_IMR), 0xFF);
    assert_int_equal(inb(M_CMD), 0x00);  /* IRR after init */
    assert_int_equal(pic.chip[0].vector_base, VEC0);
    assert_int_equal(pic.chip[1].vector_base, VEC0 + 8);
    /* A masked request waits in IRR and does not reach the CPU. */
    pulse(0);
    assert_int_equal(inb(M_CMD), 0x01);
    assert_int_equal(vpic_pending(&pic), -1);
    outb(0xFA, M_IMR);
    assert_int_equal(vpic_pending(&pic), VEC0);
    assert_true(intr_level);
}

static void test_edge_ack_eoi(void **state)
{
    outb(0xFA, M_IMR);  /* timer on */
    pulse(0);
    assert_int_equal(vpic_ack(&pic), VEC0);
    assert_false(intr_level);
    assert_int_equal(read_isr(M_CMD), 0x01);
    assert_int_equal(inb(M_CMD), 0x00);  /* IRR: edge latch consumed */
    /* The next tick latches in IRR but waits for the EOI. */
    pulse(0);
    assert_int_equal(inb(M_CMD), 0x01);
    assert_int_equal(vpic_pending(&pic), -1);
    outb(EOI_SPECIFIC + 0, M_CMD);       /* mask_and_ack_8259A */
    assert_int_equal(read_isr(M_CMD), 0x00);
    assert_int_equal(vpic_pending(&pic), VEC0);
    assert_int_equal(intr_changes, 3);   /* up, down at INTA, up after EOI */
}

static void test_priority_and_nesting(void **state)
{
    outb(0x00, M_IMR);
    pulse(4);
    pulse(1);
    assert_int_equal(vpic_ack(&pic), VEC0 + 1);   /* IR1 beats IR4 */
    assert_int_equal(vpic_pending(&pic), -1);     /* IR4 below IR1 in service */
    pulse(0);
    assert_int_equal(vpic_ack(&pic), VEC0 + 0);   /* IR0 nests above IR1 */
    assert_int_equal(read_isr(M_CMD), 0x03);
    outb(EOI_NONSPEC, M_CMD);                     /* clears the highest: IR0 */
    assert_int_equal(read_isr(M_CMD), 0x02);
    outb(EOI_NONSPEC, M_CMD);
    assert_int_equal(vpic_ack(&pic), VEC0 + 4);
}

static void test_slave_cascade(void **state)
{
    outb(0xFE, S_IMR);  /* RTC IRQ8 on */
    vpic_set_irq(&pic, 8, 1);
    assert_int_equal(inb(M_CMD) & 0x04, 0x04);    /* cascade request in master IRR */
    assert_int_equal(vpic_pending(&pic), VEC0 + 8);
    assert_int_equal(vpic_ack(&pic), VEC0 + 8);
    assert_int_equal(read_isr(M_CMD), 0x04);
    assert_int_equal(read_isr(S_CMD), 0x01);
    vpic_set_irq(&pic, 8, 0);
    outb(EOI_SPECIFIC + 0, S_CMD);
    outb(EOI_SPECIFIC + 2, M_CMD);
    assert_int_equal(read_isr(M_CMD), 0x00);
    assert_int_equal(read_isr(S_CMD), 0x00);
    /* Masking the cascade on the master blocks every slave input. */
    pulse(8);
    outb(0xFF, M_IMR);
    assert_int_equal(vpic_pending(&pic), -1);
    outb(0xFB, M_IMR);
    assert_int_equal(vpic_pending(&pic), VEC0 + 8);
}

static void test_elcr_level_and_spurious(void **state)
{
    outb(0xFF, VPIC_ELCR_BASE);
    outb(0xFF, VPIC_ELCR_BASE + 1);
    assert_int_equal(inb(VPIC_ELCR_BASE), 0xF8);      /* IRQ0-2 edge only */
    assert_int_equal(inb(VPIC_ELCR_BASE + 1), 0xDE);  /* IRQ8, IRQ13 edge only */
    outb(0x00, M_IMR);
    /* A level request that vanishes before INTA: spurious IR7, no ISR bit. */
    vpic_set_irq(&pic, 3, 1);
    assert_int_equal(vpic_pending(&pic), VEC0 + 3);
    vpic_set_irq(&pic, 3, 0);
    assert_int_equal(vpic_pending(&pic), -1);
    assert_int_equal(vpic_ack(&pic), VEC0 + 7);
    assert_int_equal(read_isr(M_CMD), 0x00);
    assert_int_equal(pic.spurious, 1);
    /* A level request still high after EOI comes back. */
    vpic_set_irq(&pic, 5, 1);
    assert_int_equal(vpic_ack(&pic), VEC0 + 5);
    assert_int_equal(inb(M_CMD) & 0x20, 0x20);   /* IRR follows the line */
    outb(EOI_SPECIFIC + 5, M_CMD);
    assert_int_equal(vpic_pending(&pic), VEC0 + 5);
    vpic_set_irq(&pic, 5, 0);
    assert_int_equal(vpic_pending(&pic), -1);
}

static void test_auto_eoi(void **state)
{
    linux_init(true);
    outb(0xFA, M_IMR);
    pulse(0);
    assert_int_equal(vpic_ack(&pic), VEC0);
    assert_int_equal(read_isr(M_CMD), 0x00);
    pulse(0);
    assert_int_equal(vpic_pending(&pic), VEC0);  /* no EOI needed */
}

static void test_rotation(void **state)
{
    outb(0x00, M_IMR);
    outb(0xC4, M_CMD);         /* set priority: IR4 lowest, IR5 highest */
    pulse(3);
    pulse(6);
    assert_int_equal(vpic_ack(&pic), VEC0 + 6);
    outb(0xA0, M_CMD);         /* rotate on non-specific EOI: IR6 now lowest */
    assert_int_equal(pic.chip[0].lowest, 6);
    pulse(6);
    assert_int_equal(vpic_ack(&pic), VEC0 + 3);  /* 7,0,1,2,3 come before 6 */
    outb(0xE3, M_CMD);         /* rotate on specific EOI 3 */
    assert_int_equal(pic.chip[0].lowest, 3);
    assert_int_equal(read_isr(M_CMD), 0x00);
}

static void test_poll_and_special_mask(void **state)
{
    outb(0x00, M_IMR);
    outb(OCW3_POLL, M_CMD);
    assert_int_equal(inb(M_CMD), 0x00);          /* poll: nothing pending */
    pulse(6);
    outb(OCW3_POLL, M_CMD);
    assert_int_equal(inb(M_CMD), 0x86);          /* poll word: I=1, level 6 */
    assert_int_equal(read_isr(M_CMD), 0x40);     /* the poll read acknowledged */
    /* Special mask mode: mask the in-service IR6 and IR7 gets through. */
    pulse(7);
    assert_int_equal(vpic_pending(&pic), -1);
    outb(0x40, M_IMR);
    outb(OCW3_SET_SMM, M_CMD);
    assert_int_equal(vpic_pending(&pic), VEC0 + 7);
    outb(0x48, M_CMD);                           /* reset special mask */
    assert_int_equal(vpic_pending(&pic), -1);
}

static void test_reinit_and_bad_input(void **state)
{
    outb(0x00, M_IMR);
    pulse(1);
    assert_int_equal(vpic_ack(&pic), VEC0 + 1);
    /* ICW1 clears IMR and ISR; single mode without ICW4 needs only ICW2. */
    outb(0x13 & ~0x01, M_CMD);
    outb(0x08, M_IMR);
    assert_int_equal(pic.chip[0].init_step, 0);
    assert_int_equal(inb(M_IMR), 0x00);
    assert_int_equal(read_isr(M_CMD), 0x00);
    /* Out-of-range lines and junk commands are ignored. */
    vpic_set_irq(&pic, -1, 1);
    vpic_set_irq(&pic, 16, 1);
    vpic_set_irq(&pic, 1000, 1);
    outb(0x40, M_CMD);        /* OCW2 no-op */
    outb(0x60 | 7, M_CMD);    /* EOI of a level not in service */
    assert_int_equal(vpic_pending(&pic), -1);
    assert_int_equal(vpic_ack(&pic), 0x08 + 7);  /* spurious with the new base */
    assert_int_equal(inw(M_CMD), 0x0000);        /* word read: IRR then IMR */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_probe_and_masks, setup),
        cmocka_unit_test_setup(test_edge_ack_eoi, setup),
        cmocka_unit_test_setup(test_priority_and_nesting, setup),
        cmocka_unit_test_setup(test_slave_cascade, setup),
        cmocka_unit_test_setup(test_elcr_level_and_spurious, setup),
        cmocka_unit_test_setup(test_auto_eoi, setup),
        cmocka_unit_test_setup(test_rotation, setup),
        cmocka_unit_test_setup(test_poll_and_special_mask, setup),
        cmocka_unit_test_setup(test_reinit_and_bad_input, setup),
    };
    return cmocka_run_group_tests_name("vdev_pic", tests, NULL, NULL);
}
