/*
 * QEMU's firmware configuration interface (fw_cfg), the traditional I/O
 * port form only, as much of it as SeaBIOS's QEMU build reads. Source:
 * QEMU docs/specs/fw_cfg.rst ("Firmware Configuration (fw_cfg) Device");
 * the arch-local keys from QEMU hw/i386/fw_cfg.h.
 *
 *   0x510  selector (16-bit write): picks an item and rewinds its offset
 *   0x511  data (8-bit read): the item's next byte; 0 past its end, and
 *          for a selector that names no item
 * No DMA interface (FW_CFG_ID bit 1 clear) and no writable items: data
 * port writes are ignored, as QEMU has done since 2.4.
 *
 * Trust: the selector and the offset are the guest's; a read is always
 * bounded by the selected item's size (items are constant tables of this
 * file), so no selector or number of reads reaches beyond them.
 */
#ifndef HV86_VMM_DEV_VFWCFG_H
#define HV86_VMM_DEV_VFWCFG_H
#include <stdint.h>
#include "vmm/dev/iobus.h"

#define VFWCFG_PORT_SEL   0x510
#define VFWCFG_PORT_DATA  0x511
#define VFWCFG_PORTS      2

/* Selector keys (fw_cfg.rst "Selector Register"; hw/i386/fw_cfg.h). */
#define FW_CFG_SIGNATURE     0x0000  /* "QEMU" */
#define FW_CFG_ID            0x0001  /* bit 0: traditional interface, bit 1: DMA */
#define FW_CFG_NB_CPUS       0x0005  /* u16 LE: CPUs present */
#define FW_CFG_MAX_CPUS      0x000F  /* u16 LE */
#define FW_CFG_FILE_DIR      0x0019  /* BE32 count, then struct fw_cfg_file each */
#define FW_CFG_FILE_FIRST    0x0020  /* first key of a named file */
#define FW_CFG_WRITE_CHANNEL 0x4000  /* selector flag: the item is to be written */
#define FW_CFG_ARCH_LOCAL    0x8000
#define FW_CFG_IRQ0_OVERRIDE (FW_CFG_ARCH_LOCAL + 2) /* u8: ISA IRQ 0 is I/O APIC input 2 */
#define FW_CFG_ID_TRADITIONAL 0x01

struct vfwcfg_item {
    uint16_t key;
    uint16_t len;              /* bytes */
    const uint8_t *data;
};

struct vfwcfg {
    const struct vfwcfg_item *sel;   /* NULL: no item selected (reads 0) */
    uint32_t offset;                 /* next byte of *sel, <= sel->len */
    uint16_t selector;               /* last value written, for `vm info` */
    uint64_t bad_selects;            /* selectors that named no item */
};

/* Power-on state: nothing selected. */
void vfwcfg_reset(struct vfwcfg *fw);

/* Claim ports 0x510-0x511. Returns 0 or an iobus error (E_EXIST). */
int vfwcfg_attach(struct vfwcfg *fw, struct iobus *bus);

#endif
