/*
 * PCI configuration space through configuration mechanism #1 (ports 0xCF8
 * address / 0xCFC data), and the list of functions found at boot.
 *
 * Boot order: kernel main calls pci_init() once (before ata_init()); it only
 * reads configuration space and changes nothing. The console's `pci` command
 * calls pci_format_lines(). Buses are scanned brute force (all 256): simple,
 * finds functions behind any bridge, and costs ~8k config reads once.
 *
 * Sources: PCI Local Bus Specification 3.0 §3.2.2.3.2 (mechanism #1),
 * §6.1-6.2 (configuration header); PCI Code and ID Assignment Spec 1.11
 * (class codes).
 */
#ifndef HV86_DRIVERS_PCI_H
#define HV86_DRIVERS_PCI_H
#include <stdint.h>

#define PCI_CONFIG_ADDRESS 0xCF8
#define PCI_CONFIG_DATA    0xCFC
#define PCI_CONFIG_ENABLE  0x80000000u /* address bit 31: configuration cycle */

#define PCI_BUSES     256
#define PCI_DEVICES   32  /* per bus */
#define PCI_FUNCTIONS 8   /* per device */
#define PCI_MAX_FUNCS 64  /* functions hv86 records */

/* Configuration header offsets (type 0 and 1 share these) */
#define PCI_CFG_VENDOR_ID   0x00 /* 16 bits; 0xFFFF: no function */
#define PCI_CFG_DEVICE_ID   0x02
#define PCI_CFG_COMMAND     0x04
#define PCI_CFG_REVISION    0x08
#define PCI_CFG_PROG_IF     0x09
#define PCI_CFG_SUBCLASS    0x0A
#define PCI_CFG_CLASS       0x0B
#define PCI_CFG_HEADER_TYPE 0x0E /* bit 7: multi-function device */
#define PCI_CFG_BAR0        0x10
#define PCI_CFG_IRQ_LINE    0x3C
#define PCI_VENDOR_NONE     0xFFFF
#define PCI_HEADER_MULTIFN  0x80
#define PCI_HEADER_TYPE_MASK 0x7F

struct pci_func {
    uint8_t bus, dev, fn;
    uint16_t vendor, device;
    uint8_t class_code, subclass, prog_if, revision;
    uint8_t header_type; /* without the multi-function bit */
    uint8_t irq_line;    /* as left by the firmware; 0xFF: none */
};

/* Read / write a 32-bit configuration register (off: byte offset, 4-aligned). */
uint32_t pci_config_read32(uint8_t bus, uint8_t dev, uint8_t fn, uint8_t off);
void pci_config_write32(uint8_t bus, uint8_t dev, uint8_t fn, uint8_t off, uint32_t v);
/* 8/16-bit reads of any aligned field (off need not be 4-aligned). */
uint16_t pci_config_read16(uint8_t bus, uint8_t dev, uint8_t fn, uint8_t off);
uint8_t pci_config_read8(uint8_t bus, uint8_t dev, uint8_t fn, uint8_t off);

/*
 * pci_init - enumerate every bus/device/function; record up to PCI_MAX_FUNCS
 * (more are counted and logged). Logs one line per function. If mechanism #1
 * is absent (the address register does not read back), logs and finds none.
 */
void pci_init(void);
/* Number of functions recorded; function i (0-based, bus/dev/fn order) or NULL. */
int pci_count(void);
const struct pci_func *pci_get(int i);
/* Human name of a class/subclass ("IDE controller", "host bridge", ...); never NULL. */
const char *pci_class_name(uint8_t class_code, uint8_t subclass);
/*
 * pci_format_lines - the `pci` listing: one line per function, e.g.
 *   00:01.1 8086:7010 class 01.01.80 rev 00 irq 255 IDE controller
 * (bus:dev.fn, vendor:device, class.subclass.prog-if, all hex), via
 * emit(line, ctx) without a newline. Returns the number of lines.
 */
#define PCI_LINE_MAX 96
int pci_format_lines(void (*emit)(const char *line, void *ctx), void *ctx);

#endif
