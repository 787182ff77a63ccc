/*
 * Unit tests of the i8042 (vmm/dev/vkbc.c), PCI mechanism #1 host bridge
 * (vmm/dev/vpci.c), debug ports (vmm/dev/vdbg.c) and fw_cfg
 * (vmm/dev/vfwcfg.c), following Linux's drivers/input/serio/i8042.c and
 * arch/x86/pci/direct.c probes and SeaBIOS's src/fw/paravirt.c.
 */
#include "tests/unit/test_vdev_common.h"
#include "vmm/dev/vdbg.h"
#include "vmm/dev/vfwcfg.h"
#include "vmm/dev/vkbc.h"
#include "vmm/dev/vpci.h"

#define KBD_DATA 0x60
#define KBD_CMD  0x64
#define STR_OBF     0x01
#define STR_AUXDATA 0x20
#define STR_TIMEOUT 0x40

static struct vkbc kbc;
static struct vpci pci;
static struct vdbg dbg;
static struct vfwcfg fwcfg;
static int resets;
static char console[64];
static unsigned console_len;
static uint32_t exit_code;
static int exits;

static void on_reset(void *opaque) { resets++; }
static void on_console(void *opaque, uint8_t b)
{
    if (console_len < sizeof(console) - 1)
        console[console_len++] = (char)b;
}
static void on_exit_req(void *opaque, uint32_t code) { exit_code = code; exits++; }

static int setup(void **state)
{
    iobus_init(&test_bus);
    reset_recorder();
    resets = exits = 0;
    exit_code = 0;
    console_len = 0;
    memset(console, 0, sizeof(console));
    vkbc_init(&kbc, on_reset, NULL, recorder());
    vpci_init(&pci);
    vdbg_init(&dbg, on_console, on_exit_req, NULL);
    assert_int_equal(vkbc_attach(&kbc, &test_bus), 0);
    assert_int_equal(vpci_attach(&pci, &test_bus), 0);
    assert_int_equal(vdbg_attach(&dbg, &test_bus), 0);
    vfwcfg_reset(&fwcfg);
    assert_int_equal(vfwcfg_attach(&fwcfg, &test_bus), 0);
    return 0;
}

/* __i8042_command: command, parameters to 0x60, answers from 0x60. */
static int i8042_command(uint8_t cmd, int nparam, const uint8_t *param, int nret, uint8_t *ret)
{
    outb(cmd, KBD_CMD);
    for (int i = 0; i < nparam; i++)
        outb(param[i], KBD_DATA);
    for (int i = 0; i < nret; i++) {
        if (!(inb(KBD_CMD) & STR_OBF))
            return -1;
        ret[i] = inb(KBD_DATA);
    }
    return 0;
}

static void test_kbc_linux_probe(void **state)
{
    uint8_t v, ctr;
    /* i8042_flush: nothing in the buffer. */
    assert_int_equal(inb(KBD_CMD), 0x14);          /* key lock off, system flag */
    /* i8042_controller_selftest */
    assert_int_equal(i8042_command(0xAA, 0, NULL, 1, &v), 0);
    assert_int_equal(v, 0x55);
    assert_int_equal(inb(KBD_CMD) & STR_OBF, 0);
    /* i8042_controller_init: read CTR, turn off interrupts, write it back. */
    assert_int_equal(i8042_command(0x20, 0, NULL, 1, &ctr), 0);
    assert_int_equal(ctr, 0x65);
    ctr = (uint8_t)((ctr | 0x10 | 0x20) & ~(0x01 | 0x02));  /* KBDDIS, AUXDIS */
    assert_int_equal(i8042_command(0x60, 1, &ctr, 0, NULL), 0);
    assert_int_equal(i8042_command(0x20, 0, NULL, 1, &v), 0);
    assert_int_equal(v, 0x74);
    /* i8042_check_aux: AUX loop echoes with the AUX status bit. */
    uint8_t p = 0x5A;
    outb(0xD3, KBD_CMD);
    outb(p, KBD_DATA);
    assert_int_equal(inb(KBD_CMD) & (STR_OBF | STR_AUXDATA), STR_OBF | STR_AUXDATA);
    assert_int_equal(inb(KBD_DATA), 0x5A);
    assert_int_equal(i8042_command(0xA9, 0, NULL, 1, &v), 0);
    assert_int_equal(v, 0x00);
    assert_int_equal(i8042_command(0xAB, 0, NULL, 1, &v), 0);
    assert_int_equal(v, 0x00);
    /* AUX IRQ delivery test: enable AUXINT, loop a byte, IRQ12 fires. */
    ctr = 0x47 & ~0x20;
    i8042_command(0x60, 1, &ctr, 0, NULL);
    outb(0xD3, KBD_CMD);
    outb(0xA5, KBD_DATA);
    assert_int_equal(irq_level[12], 1);
    assert_int_equal(inb(KBD_DATA), 0xA5);
    assert_int_equal(irq_level[12], 0);
    /* With the POST CTR (KBDINT on) the self-test and first CTR answers
     * raised IRQ1, as on real hardware; none after the CTR write. */
    assert_int_equal(irq_rises[1], 2);
}

static void test_kbc_no_devices(void **state)
{
    /* atkbd_probe: GETID to the keyboard gets "no device" at once. */
    outb(0xF2, KBD_DATA);
    assert_int_equal(inb(KBD_CMD) & (STR_OBF | STR_TIMEOUT | STR_AUXDATA), STR_OBF | STR_TIMEOUT);
    assert_int_equal(irq_level[1], 1);             /* CTR KBDINT is on after reset */
    assert_int_equal(inb(KBD_DATA), 0xFE);
    assert_int_equal(irq_level[1], 0);
    /* psmouse: a byte for the mouse through 0xD4. */
    outb(0xA8, KBD_CMD);
    outb(0xD4, KBD_CMD);
    outb(0xF2, KBD_DATA);
    assert_int_equal(inb(KBD_CMD) & (STR_OBF | STR_TIMEOUT | STR_AUXDATA), STR_OBF | STR_TIMEOUT | STR_AUXDATA);
    assert_int_equal(inb(KBD_DATA), 0xFE);
    assert_int_equal(irq_rises[12], 0);            /* AUXINT off */
    /* D2 puts a byte in the buffer as if from the keyboard. */
    outb(0xD2, KBD_CMD);
    outb(0x1C, KBD_DATA);
    assert_int_equal(inb(KBD_DATA), 0x1C);
    /* A flood of answers is bounded; reading an empty buffer is harmless. */
    for (int i = 0; i < 100; i++)
        outb(0xAA, KBD_CMD);
    assert_int_equal(kbc.qcount, VKBC_QUEUE);
    for (int i = 0; i < 100; i++)
        inb(KBD_DATA);
    assert_int_equal(inb(KBD_CMD) & STR_OBF, 0);
}

static void test_kbc_reset_lines(void **state)
{
    outb(0xFE, KBD_CMD);                           /* Linux BOOT_KBD */
    assert_int_equal(resets, 1);
    outb(0xFF, KBD_CMD);                           /* pulse nothing */
    assert_int_equal(resets, 1);
    outb(0xF0, KBD_CMD);                           /* pulse all four, incl. reset */
    assert_int_equal(resets, 2);
    uint8_t v = 0xDF;                               /* A20 on, reset inactive */
    i8042_command(0xD1, 1, &v, 0, NULL);
    assert_int_equal(resets, 2);
    assert_int_equal(i8042_command(0xD0, 0, NULL, 1, &v), 0);
    assert_int_equal(v, 0xDF);
    v = 0xDE;
    i8042_command(0xD1, 1, &v, 0, NULL);
    assert_int_equal(resets, 3);
    assert_int_equal(kbc.resets, 3);
    assert_int_equal(inb(KBD_CMD) & 0x08, 0x00);   /* last write was data */
    outb(0xAD, KBD_CMD);
    assert_int_equal(inb(KBD_CMD) & 0x08, 0x08);
    assert_int_equal(kbc.ctr & 0x10, 0x10);
}

/* i8042_check_aux and i8042_toggle_aux (drivers/input/serio/i8042.c, 6.1):
 * LOOP echo, AUX disable/enable seen in the CTR, then the AUX IRQ delivery
 * test, whose LOOP command (0x10d3) reads nothing back: the IRQ12 handler
 * (i8042_aux_test_irq) must find OBF and AUXDATA with the byte. */
static void test_kbc_linux_check_aux(void **state)
{
    uint8_t v = 0x5A, ctr;
    assert_int_equal(i8042_command(0xD3, 1, &v, 1, &v), 0);
    assert_int_equal(v, 0x5A);
    for (int on = 1; on >= 0; on--) {              /* POST left AUXDIS set: on, off, on */
        assert_int_equal(i8042_command(on ? 0xA8 : 0xA7, 0, NULL, 0, NULL), 0);
        assert_int_equal(i8042_command(0x20, 0, NULL, 1, &ctr), 0);
        assert_int_equal(ctr & 0x20, on ? 0 : 0x20);
    }
    assert_int_equal(i8042_command(0xA8, 0, NULL, 0, NULL), 0);
    assert_int_equal(i8042_command(0x20, 0, NULL, 1, &ctr), 0);
    assert_int_equal(ctr & 0x20, 0);
    /* i8042_enable_aux_port: AUXINT on, AUXDIS off. */
    ctr = (uint8_t)((ctr & ~0x20) | 0x02);
    assert_int_equal(i8042_command(0x60, 1, &ctr, 0, NULL), 0);
    int rises = irq_rises[12];
    v = 0xA5;
    assert_int_equal(i8042_command(0xD3, 1, &v, 0, NULL), 0);
    assert_int_equal(irq_rises[12], rises + 1);
    uint8_t str = inb(KBD_CMD);
    assert_int_equal(str & (STR_OBF | STR_AUXDATA), STR_OBF | STR_AUXDATA);
    assert_int_equal(inb(KBD_DATA), 0xA5);
    assert_int_equal(irq_level[12], 0);
    assert_int_equal(inb(KBD_CMD) & STR_OBF, 0);   /* i8042_flush finds nothing */
}

/* native_machine_emergency_restart, BOOT_KBD: ten times kb_wait() (status
 * bit 1, input buffer full, clear) then 0xFE to 0x64. Each pulse calls the
 * hook once and nothing else: the owner resets the machine afterwards. */
static void test_kbc_reboot_request(void **state)
{
    uint8_t ctr = 0x47;
    i8042_command(0x60, 1, &ctr, 0, NULL);
    outb(0xD2, KBD_CMD);
    outb(0x1C, KBD_DATA);                          /* a byte waiting in OBF */
    for (int i = 0; i < 10; i++) {
        assert_int_equal(inb(KBD_CMD) & 0x02, 0);  /* kb_wait never spins */
        outb(0xFE, KBD_CMD);
        assert_int_equal(resets, i + 1);
    }
    assert_int_equal(kbc.ctr, 0x47);               /* the controller carries on */
    assert_int_equal(kbc.outport & 0x01, 0x01);    /* reset is a pulse */
    assert_int_equal(inb(KBD_CMD) & STR_OBF, STR_OBF);
    assert_int_equal(inb(KBD_DATA), 0x1C);
    outb(0xD1, KBD_CMD);                           /* a pending command byte */
    assert_int_equal(inb(KBD_CMD) & 0x02, 0);
    outb(0xDF, KBD_DATA);
    /* No hook: pulses are counted and dropped. */
    vkbc_init(&kbc, NULL, NULL, recorder());
    outb(0xFE, KBD_CMD);
    assert_int_equal(kbc.resets, 1);
    assert_int_equal(resets, 10);
}

/* What a machine reset does to the controller (vmdev_reset): POST state,
 * buffer emptied, a raised IRQ1 lowered, the hook and its count kept. */
static void test_kbc_machine_reset(void **state)
{
    outb(0xFE, KBD_CMD);
    outb(0xAA, KBD_CMD);                           /* answer queued, IRQ1 up */
    uint8_t ctr = 0x30;
    outb(0x60, KBD_CMD);                           /* CTR write pending... */
    assert_int_equal(irq_level[1], 1);
    vkbc_reset(&kbc);
    assert_int_equal(irq_level[1], 0);
    assert_int_equal(inb(KBD_CMD), 0x14);          /* empty, key lock off, system flag */
    outb(ctr, KBD_DATA);                           /* ...dropped: this byte goes to the keyboard */
    assert_int_equal(inb(KBD_CMD) & STR_TIMEOUT, STR_TIMEOUT);
    assert_int_equal(inb(KBD_DATA), 0xFE);
    assert_int_equal(i8042_command(0x20, 0, NULL, 1, &ctr), 0);
    assert_int_equal(ctr, 0x65);
    assert_int_equal(i8042_command(0xD0, 0, NULL, 1, &ctr), 0);
    assert_int_equal(ctr, 0x03);
    assert_int_equal(kbc.resets, 1);
    outb(0xFE, KBD_CMD);
    assert_int_equal(resets, 2);
}

/* The A20 gate: open after reset; the last write to the output port
 * (0xD1 data, 0xDD/0xDF) or to port 0x92 decides it; port 0x92 bit 0
 * pulses reset on its 0 -> 1 edge only; port 0x92 reads the gate. */
static void test_kbc_a20(void **state)
{
    assert_true(vkbc_a20(&kbc));
    assert_int_equal(inb(0x92), 0x02);
    outb(0xD1, KBD_CMD);
    outb(0x01, KBD_DATA);                          /* reset inactive, A20 off */
    assert_false(vkbc_a20(&kbc));
    assert_int_equal(inb(0x92), 0x00);
    assert_int_equal(resets, 0);
    outb(0x02, 0x92);                              /* fast A20 on */
    assert_true(vkbc_a20(&kbc));
    assert_int_equal(inb(0x92), 0x02);
    outb(0x00, 0x92);                              /* off, whatever the output port says */
    assert_false(vkbc_a20(&kbc));
    outb(0xDF, KBD_CMD);                           /* on through the controller */
    assert_true(vkbc_a20(&kbc));
    outb(0xDD, KBD_CMD);
    assert_false(vkbc_a20(&kbc));
    uint8_t op = 0;
    assert_int_equal(i8042_command(0xD0, 0, NULL, 1, &op), 0);
    assert_int_equal(op & 0x02, 0);
    outb(0x03, 0x92);                              /* 0 -> 1 on bit 0: one pulse */
    assert_int_equal(resets, 1);
    outb(0x03, 0x92);                              /* still 1: no edge */
    assert_int_equal(resets, 1);
    assert_true(vkbc_a20(&kbc));
    outb(0x00, 0x92);
    vkbc_reset(&kbc);
    assert_int_equal(inb(0x92), 0x02);
    assert_true(vkbc_a20(&kbc));
}

#define CFG(bus, dev, fn, reg) (0x80000000u | (bus) << 16 | (dev) << 11 | (fn) << 8 | (reg))

static uint32_t cfg_read(uint32_t addr)
{
    outl(addr, 0xCF8);
    return inl(0xCFC);
}

static void test_pci_mechanisms(void **state)
{
    /* pci_check_type1 */
    outb(0x01, 0xCFB);
    uint32_t tmp = inl(0xCF8);
    outl(0x80000000u, 0xCF8);
    assert_int_equal(inl(0xCF8), 0x80000000u);
    outl(tmp, 0xCF8);
    assert_int_equal(inl(0xCF8), tmp);
    /* pci_check_type2 must fail: the byte registers float. */
    outb(0x00, 0xCFB);
    outb(0x00, 0xCF8);
    outb(0x00, 0xCFA);
    assert_int_equal(inb(0xCF8), 0xFF);
    assert_int_equal(inb(0xCFA), 0xFF);
    outl(0xFFFFFFFFu, 0xCF8);
    assert_int_equal(inl(0xCF8), 0x80FFFFFCu);     /* reserved bits read 0 */
}

static void test_pci_host_bridge(void **state)
{
    assert_int_equal(cfg_read(CFG(0, 0, 0, 0x00)), 0x12378086u);
    assert_int_equal(cfg_read(CFG(0, 0, 0, 0x04)), 0x02800006u);
    assert_int_equal(cfg_read(CFG(0, 0, 0, 0x08)), 0x06000002u);
    assert_int_equal(cfg_read(CFG(0, 0, 0, 0x0C)), 0x00000000u);
    assert_int_equal(cfg_read(CFG(0, 0, 0, 0x2C)), 0x00000000u);
    /* Byte and word accesses at data-port offsets. */
    outl(CFG(0, 0, 0, 0x00), 0xCF8);
    assert_int_equal(inb(0xCFE), 0x37);
    assert_int_equal(inw(0xCFE), 0x1237);
    assert_int_equal(inw(0xCFD), 0x3780);
    outl(CFG(0, 0, 0, 0x08), 0xCF8);
    assert_int_equal(inb(0xCFF), 0x06);            /* base class, config byte 0x0B */
    /* Read-only header; BAR sizing finds no BAR. */
    outl(CFG(0, 0, 0, 0x10), 0xCF8);
    outl(0xFFFFFFFFu, 0xCFC);
    assert_int_equal(inl(0xCFC), 0);
    outl(CFG(0, 0, 0, 0x00), 0xCF8);
    outl(0, 0xCFC);
    assert_int_equal(inl(0xCFC), 0x12378086u);
    /* The harmless writable bits. */
    outl(CFG(0, 0, 0, 0x04), 0xCF8);
    outw(0xFFFF, 0xCFC);
    assert_int_equal(inl(0xCFC), 0x02800007u);
    outl(CFG(0, 0, 0, 0x0C), 0xCF8);
    outb(0xFF, 0xCFD);
    assert_int_equal(inl(0xCFC), 0x0000F800u);
    outl(CFG(0, 0, 0, 0x3C), 0xCF8);
    outl(0xFFFFFF0Bu, 0xCFC);
    assert_int_equal(inl(0xCFC), 0x0000000Bu);
}

static void test_pci_absent(void **state)
{
    assert_int_equal(cfg_read(CFG(0, 1, 0, 0x00)), 0xFFFFFFFFu);
    assert_int_equal(cfg_read(CFG(0, 0, 1, 0x00)), 0xFFFFFFFFu);
    assert_int_equal(cfg_read(CFG(0, 31, 7, 0xFC)), 0xFFFFFFFFu);
    assert_int_equal(cfg_read(CFG(1, 0, 0, 0x00)), 0xFFFFFFFFu);
    outl(0x00000000u, 0xCF8);                      /* enable bit clear */
    assert_int_equal(inl(0xCFC), 0xFFFFFFFFu);
    assert_int_equal(inw(0xCFE), 0xFFFF);
    outl(0x12345678u, 0xCFC);                      /* dropped */
    assert_int_equal(cfg_read(CFG(0, 0, 0, 0x00)), 0x12378086u);
}

static void test_debug_ports(void **state)
{
    outb(0x42, 0x80);
    assert_int_equal(dbg.post_code, 0x42);
    assert_int_equal(inb(0x80), 0x42);
    assert_int_equal(inb(0xE9), 0xE9);
    outb('o', 0xE9);
    outb('k', 0xE9);
    assert_string_equal(console, "ok");
    outb(0x31, 0xF5);                               /* not the exit register */
    assert_int_equal(exits, 0);
    outb(0x31, 0xF4);
    assert_int_equal(exits, 1);
    assert_int_equal(exit_code, 0x31);
    outl(0x10, 0xF4);
    assert_int_equal(exit_code, 0x10);
    assert_int_equal(inl(0xF4), 0xFFFFFFFFu);       /* write-only */
}

/* 82441FX PAM0-PAM6: PAM0 reads "F segment in DRAM" from reset (what
 * keeps SeaBIOS from running its shadowing code at the top-of-4-GiB
 * alias), the enable bits are writable, the rest of each byte is not. */
static void test_pci_pam(void **state)
{
    outl(CFG(0, 0, 0, 0x58), 0xCF8);
    assert_int_equal(inl(0xCFC), 0x00001000u);     /* PAM0 (0x59) = 0x10 */
    outl(0xFFFFFFFFu, 0xCFC);
    assert_int_equal(inl(0xCFC), 0x33333000u);     /* 0x58 is not a PAM; PAM0 takes 5:4 only */
    outl(CFG(0, 0, 0, 0x5C), 0xCF8);
    outl(0xFFFFFFFFu, 0xCFC);
    assert_int_equal(inl(0xCFC), 0x33333333u);     /* PAM3-PAM6 */
    outl(CFG(0, 0, 0, 0x60), 0xCF8);
    outl(0xFFFFFFFFu, 0xCFC);
    assert_int_equal(inl(0xCFC), 0);               /* past PAM6: read-only */
    vpci_reset(&pci);
    assert_int_equal(cfg_read(CFG(0, 0, 0, 0x58)), 0x00001000u);
}

static int pci_resets;
static void on_pci_reset(void *opaque) { pci_resets++; }

/* 0xCF9, the PIIX3 reset control register, shares CONFIG_ADDRESS's dword:
 * SeaBIOS's pci_reboot writes 0x02 then 0x06; only RCPU resets; dword
 * accesses are still CONFIG_ADDRESS. */
static void test_pci_reset_control(void **state)
{
    pci_resets = 0;
    pci.reset_cpu = on_pci_reset;
    outl(0x80000000u, 0xCF8);
    outb(0x02, 0xCF9);
    assert_int_equal(pci_resets, 0);
    outb(0x06, 0xCF9);
    assert_int_equal(pci_resets, 1);
    assert_int_equal(inl(0xCF8), 0x80000000u);     /* the address is untouched */
    outw(0x0606, 0xCF8);                            /* a word access: neither */
    assert_int_equal(pci_resets, 1);
    assert_int_equal(inl(0xCF8), 0x80000000u);
}

/* SeaBIOS's debug output port (CONFIG_DEBUG_IO): present when it reads 0xE9. */
static void test_qemu_debugcon(void **state)
{
    assert_int_equal(inb(0x402), 0xE9);
    outb('s', 0x402);
    outb('b', 0x402);
    assert_string_equal(console, "sb");
}

/* Read n bytes of fw_cfg item key as SeaBIOS's qemu_cfg_read does. */
static void fwcfg_read(uint16_t key, uint8_t *buf, unsigned n)
{
    outw(key, VFWCFG_PORT_SEL);
    for (unsigned i = 0; i < n; i++)
        buf[i] = inb(VFWCFG_PORT_DATA);
}

/* fw_cfg.rst: signature, ID, the legacy items SeaBIOS reads, an empty file
 * directory; past an item's end and for unknown selectors, zeros. */
static void test_fwcfg_items(void **state)
{
    uint8_t b[8];
    fwcfg_read(FW_CFG_SIGNATURE, b, 6);
    assert_memory_equal(b, "QEMU\0\0", 6);     /* 4 bytes, then zeros */
    fwcfg_read(FW_CFG_ID, b, 4);
    assert_memory_equal(b, "\1\0\0\0", 4);      /* traditional interface, no DMA */
    fwcfg_read(FW_CFG_NB_CPUS, b, 2);
    assert_int_equal(b[0] | b[1] << 8, 1);
    fwcfg_read(FW_CFG_FILE_DIR, b, 4);
    assert_memory_equal(b, "\0\0\0\0", 4);      /* BE32 count 0 */
    fwcfg_read(FW_CFG_IRQ0_OVERRIDE, b, 1);
    assert_int_equal(b[0], 1);
    fwcfg_read(0x000E, b, 2);                       /* boot menu (legacy): none */
    assert_int_equal(b[0] | b[1], 0);
    assert_int_equal(fwcfg.bad_selects, 1);
    /* Reselecting rewinds; the write flag still selects the item. */
    fwcfg_read(FW_CFG_SIGNATURE | FW_CFG_WRITE_CHANNEL, b, 2);
    assert_memory_equal(b, "QE", 2);
}

/* A hostile guest: every selector, reads far past the end, byte writes to
 * the selector and writes to the data port change nothing and read 0. */
static void test_fwcfg_hostile(void **state)
{
    for (uint32_t key = 0; key <= 0xFFFF; key++) {
        outw((uint16_t)key, VFWCFG_PORT_SEL);
        for (int i = 0; i < 8; i++)
            (void)inb(VFWCFG_PORT_DATA);
        assert_true(fwcfg.offset <= (fwcfg.sel ? fwcfg.sel->len : 0));
    }
    outw(FW_CFG_SIGNATURE, VFWCFG_PORT_SEL);
    for (int i = 0; i < 100000; i++)
        (void)inb(VFWCFG_PORT_DATA);
    assert_int_equal(inb(VFWCFG_PORT_DATA), 0);
    assert_int_equal(fwcfg.offset, 4);
    outb('X', VFWCFG_PORT_DATA);                    /* ignored */
    outb(FW_CFG_ID, VFWCFG_PORT_SEL);               /* byte write: not the selector's size */
    assert_int_equal(fwcfg.selector, FW_CFG_SIGNATURE);
    outw(FW_CFG_SIGNATURE, VFWCFG_PORT_SEL);
    assert_int_equal(inb(VFWCFG_PORT_DATA), 'Q');
    assert_int_equal(inw(VFWCFG_PORT_DATA), 0xFF00 | 'E'); /* a word read: the data byte, then 0x512 (unclaimed) */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_kbc_linux_probe, setup),
        cmocka_unit_test_setup(test_kbc_no_devices, setup),
        cmocka_unit_test_setup(test_kbc_reset_lines, setup),
        cmocka_unit_test_setup(test_kbc_linux_check_aux, setup),
        cmocka_unit_test_setup(test_kbc_reboot_request, setup),
        cmocka_unit_test_setup(test_kbc_a20, setup),
        cmocka_unit_test_setup(test_kbc_machine_reset, setup),
        cmocka_unit_test_setup(test_pci_mechanisms, setup),
        cmocka_unit_test_setup(test_pci_host_bridge, setup),
        cmocka_unit_test_setup(test_pci_absent, setup),
        cmocka_unit_test_setup(test_debug_ports, setup),
        cmocka_unit_test_setup(test_pci_pam, setup),
        cmocka_unit_test_setup(test_pci_reset_control, setup),
        cmocka_unit_test_setup(test_qemu_debugcon, setup),
        cmocka_unit_test_setup(test_fwcfg_items, setup),
        cmocka_unit_test_setup(test_fwcfg_hostile, setup),
    };
    return cmocka_run_group_tests_name("vdev_misc", tests, NULL, NULL);
}
