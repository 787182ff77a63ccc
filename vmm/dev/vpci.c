/*
 * PCI configuration mechanism #1 with one host bridge. Source: PCI Local
 * Bus Spec 3.0 §3.2.2.3.2 and §6.1; Intel 82441FX datasheet (device 1237,
 * revision 02).
 */
#include "kernel/kernel.h"
#include "vmm/dev/vpci.h"

#define ADDR_ENABLE    0x80000000u  /* CONFIG_ADDRESS bit 31 */
#define ADDR_KEPT      0x80FFFFFCu  /* reserved 30-24 and 1-0 read as 0 */
#define ADDR_BUS(a)    ((a) >> 16 & 0xFF)
#define ADDR_DEVFN(a)  ((a) >> 8 & 0xFF)
#define ADDR_REG(a)    ((a) & 0xFC)
#define BRIDGE_BUS     0
#define BRIDGE_DEVFN   0            /* device 0, function 0 */

/* Type 0 header offsets (§6.1). */
enum {
    CFG_VENDOR = 0x00, CFG_DEVICE = 0x02, CFG_COMMAND = 0x04, CFG_STATUS = 0x06,
    CFG_REVISION = 0x08, CFG_PROG_IF = 0x09, CFG_SUBCLASS = 0x0A, CFG_CLASS = 0x0B,
    CFG_LATENCY = 0x0D, CFG_HEADER_TYPE = 0x0E, CFG_INTERRUPT_LINE = 0x3C,
};

#define VENDOR_INTEL      0x8086
#define DEVICE_440FX      0x1237
#define REVISION_440FX    0x02
#define CLASS_BRIDGE      0x06
#define SUBCLASS_HOST     0x00
#define CMD_IO_MEM_MASTER 0x0007     /* command bits a guest may toggle */
#define CMD_RESET         0x0006     /* memory space and bus master on */
#define STATUS_RESET      0x0280     /* fast back-to-back capable, medium DEVSEL */
#define LATENCY_RESET     0x00

/* Writable bits per config byte, zero elsewhere. */
static uint8_t writable(unsigned off)
{
    switch (off) {
    case CFG_COMMAND:        return CMD_IO_MEM_MASTER;
    case CFG_LATENCY:        return 0xF8;   /* latency timer, 8-clock granular */
    case CFG_INTERRUPT_LINE: return 0xFF;
    default:                 return 0;
    }
}

static void put16(uint8_t *cfg, unsigned off, uint16_t v)
{
    cfg[off] = (uint8_t)v;
    cfg[off + 1] = (uint8_t)(v >> 8);
}

void vpci_reset(struct vpci *pci)
{
    uint8_t *c = pci->host_bridge;
    memset(c, 0, VPCI_CONFIG_BYTES);
    put16(c, CFG_VENDOR, VENDOR_INTEL);
    put16(c, CFG_DEVICE, DEVICE_440FX);
    put16(c, CFG_COMMAND, CMD_RESET);
    put16(c, CFG_STATUS, STATUS_RESET);
    c[CFG_REVISION] = REVISION_440FX;
    c[CFG_SUBCLASS] = SUBCLASS_HOST;
    c[CFG_CLASS] = CLASS_BRIDGE;
    c[CFG_LATENCY] = LATENCY_RESET;
    pci->address = 0;
}

void vpci_init(struct vpci *pci)
{
    vpci_reset(pci);
}

/* The selected function's config space, or NULL (nothing answers). */
static uint8_t *selected(struct vpci *pci)
{
    uint32_t a = pci->address;
    if (!(a & ADDR_ENABLE) || ADDR_BUS(a) != BRIDGE_BUS || ADDR_DEVFN(a) != BRIDGE_DEVFN)
        return NULL;
    return pci->host_bridge;
}

static uint32_t addr_in(void *opaque, uint16_t port, unsigned size)
{
    return ((struct vpci *)opaque)->address;
}

static void addr_out(void *opaque, uint16_t port, unsigned size, uint32_t val)
{
    ((struct vpci *)opaque)->address = val & ADDR_KEPT;
}

/* CONFIG_DATA: byte i of the access is config byte REG + (port - 0xCFC) + i. */
static uint32_t data_in(void *opaque, uint16_t port, unsigned size)
{
    struct vpci *pci = opaque;
    uint8_t *cfg = selected(pci);
    unsigned off = ADDR_REG(pci->address) + (port - VPCI_CONFIG_DATA);
    uint32_t val = 0;

    if (!cfg)
        return 0xFFFFFFFFu;
    for (unsigned i = 0; i < size; i++)
        val |= (uint32_t)cfg[(off + i) % VPCI_CONFIG_BYTES] << (8 * i);
    return val;
}

static void data_out(void *opaque, uint16_t port, unsigned size, uint32_t val)
{
    struct vpci *pci = opaque;
    uint8_t *cfg = selected(pci);
    unsigned off = ADDR_REG(pci->address) + (port - VPCI_CONFIG_DATA);

    if (!cfg)
        return;
    for (unsigned i = 0; i < size; i++) {
        unsigned o = (off + i) % VPCI_CONFIG_BYTES;
        uint8_t w = writable(o), b = (uint8_t)(val >> (8 * i));
        cfg[o] = (uint8_t)((cfg[o] & ~w) | (b & w));
    }
}

int vpci_attach(struct vpci *pci, struct iobus *bus)
{
    int err = iobus_register(bus, VPCI_CONFIG_ADDRESS, 4, IOBUS_SZ_4, addr_in, addr_out, pci, "pci-addr");
    if (!err)
        err = iobus_register(bus, VPCI_CONFIG_DATA, 4, IOBUS_SZ_ALL, data_in, data_out, pci, "pci-data");
    return err;
}
