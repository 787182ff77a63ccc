/*
 * fw_cfg for firmware=bios VMs (contract in vfwcfg.h). The items say what
 * QEMU's i440FX machine says to SeaBIOS for a one-CPU PC: one CPU, ISA
 * IRQ 0 on I/O APIC input 2 (as vmm/vmdev.c wires the PIT), and no named
 * files, so SeaBIOS takes the RAM size from CMOS, builds its MP table
 * itself and shows no boot menu (its "etc/show-boot-menu", legacy key
 * 0x0E, reads 0).
 */
#include "kernel/kernel.h"
#include "vmm/dev/vfwcfg.h"

static const uint8_t sig[] = { 'Q', 'E', 'M', 'U' };
static const uint8_t id[] = { FW_CFG_ID_TRADITIONAL, 0, 0, 0 };
static const uint8_t one_cpu[] = { 1, 0 };
static const uint8_t irq0_override[] = { 1 };
static const uint8_t no_files[] = { 0, 0, 0, 0 }; /* BE32 count */

static const struct vfwcfg_item items[] = {
    { FW_CFG_SIGNATURE, sizeof(sig), sig },
    { FW_CFG_ID, sizeof(id), id },
    { FW_CFG_NB_CPUS, sizeof(one_cpu), one_cpu },
    { FW_CFG_MAX_CPUS, sizeof(one_cpu), one_cpu },
    { FW_CFG_FILE_DIR, sizeof(no_files), no_files },
    { FW_CFG_IRQ0_OVERRIDE, sizeof(irq0_override), irq0_override },
};

void vfwcfg_reset(struct vfwcfg *fw)
{
    fw->sel = NULL;
    fw->offset = 0;
    fw->selector = 0;
}

/* A selector write (16-bit, at 0x510): the item it names (the write flag
 * is ignored: nothing here is writable), offset back to 0. */
static void select_key(struct vfwcfg *fw, uint16_t val)
{
    uint16_t key = val & ~FW_CFG_WRITE_CHANNEL;
    fw->selector = val;
    fw->sel = NULL;
    fw->offset = 0;
    for (unsigned i = 0; i < ARRAY_SIZE(items); i++)
        if (items[i].key == key)
            fw->sel = &items[i];
    if (!fw->sel)
        fw->bad_selects++;
}

/* One range for both registers: a word write at 0x510 covers 0x511 too. */
static void port_out(void *opaque, uint16_t port, unsigned size, uint32_t val)
{
    if (port == VFWCFG_PORT_SEL && size == 2)
        select_key(opaque, (uint16_t)val);
    /* byte writes to the selector and data port writes: ignored, as in QEMU */
}

/* The data register, a byte at a time: 0 past the item's end. */
static uint32_t port_in(void *opaque, uint16_t port, unsigned size)
{
    struct vfwcfg *fw = opaque;
    if (port != VFWCFG_PORT_DATA || size != 1)
        return 0;
    if (!fw->sel || fw->offset >= fw->sel->len)
        return 0;
    return fw->sel->data[fw->offset++];
}

int vfwcfg_attach(struct vfwcfg *fw, struct iobus *bus)
{
    return iobus_register(bus, VFWCFG_PORT_SEL, VFWCFG_PORTS, IOBUS_SZ_1 | IOBUS_SZ_2, port_in, port_out, fw,
                          "fw_cfg");
}
