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

#define VENDOR_INTEL      0x8086
#define DEVICE_440FX      0x1237
#define REVISION_440FX    0x02
#define CLASS_BRIDGE      0x06
#define SUBCLASS_HOST     0x00
#define CMD_IO_MEM_MASTER 0x0007     /* command bits a guest may toggle */
#define CMD_RESET         0x0006     /* memory space and bus master on */
#define STATUS_RESET      0x0280     /* fast back-to-back capable, medium DEVSEL */
#define LATENCY_RESET     0x00
/* 82441FX PAM0-PAM6 (config 59h-5Fh): read/write enables of the BIOS area
 * (PAM0 bits 5:4, F0000h-FFFFFh) and of 16 KiB pieces of C0000h-EFFFFh
 * (two nibbles each, bits 1:0 and 5:4). hv86 keeps the guest's BIOS in
 * its RAM (vmm/vm.c load_bios), so the area is RAM whatever these say;
 * PAM0 reads "F segment reads from DRAM" from reset, which tells SeaBIOS
 * its code is already in RAM and keeps it from running its shadowing
 * code from the top-of-4-GiB alias (SeaBIOS src/fw/shadow.c). */
#define PAM0              0x59
#define PAMS              7
#define PAM0_WMASK        0x30
#define PAM_WMASK         0x33
#define PAM0_RESET        0x10        /* F0000h-FFFFFh reads go to DRAM */

uint32_t vpci_get(const struct vpci_func *f, unsigned off, unsigned size)
{
    uint32_t v = 0;
    for (unsigned i = 0; i < size; i++)
        v |= (uint32_t)f->cfg[(off + i) % VPCI_CONFIG_BYTES] << (8 * i);
    return v;
}

void vpci_put(struct vpci_func *f, unsigned off, unsigned size, uint32_t v)
{
    for (unsigned i = 0; i < size; i++)
        f->cfg[(off + i) % VPCI_CONFIG_BYTES] = (uint8_t)(v >> (8 * i));
}

void vpci_header(struct vpci_func *f, uint16_t vendor, uint16_t device, uint8_t class_code, uint8_t subclass,
                 uint8_t prog_if, uint16_t command, uint16_t status)
{
    memset(f->cfg, 0, sizeof(f->cfg));
    memset(f->wmask, 0, sizeof(f->wmask));
    vpci_put(f, VPCI_VENDOR, 2, vendor);
    vpci_put(f, VPCI_DEVICE, 2, device);
    vpci_put(f, VPCI_COMMAND, 2, command);
    vpci_put(f, VPCI_STATUS, 2, status);
    f->cfg[VPCI_CLASS] = class_code;
    f->cfg[VPCI_SUBCLASS] = subclass;
    f->cfg[VPCI_PROG_IF] = prog_if;
}

void vpci_io_bar(struct vpci_func *f, unsigned bar, uint16_t base, uint32_t size)
{
    unsigned off = VPCI_BAR0 + 4 * bar;
    uint32_t mask = ~(size - 1) & ~3u;
    vpci_put(f, off, 4, (base & mask) | VPCI_BAR_IO);
    for (unsigned i = 0; i < 4; i++)
        f->wmask[off + i] = (uint8_t)(mask >> (8 * i));
}

void vpci_reset(struct vpci *pci)
{
    struct vpci_func *b = &pci->bridge;
    memset(b, 0, sizeof(*b));
    vpci_header(b, VENDOR_INTEL, DEVICE_440FX, CLASS_BRIDGE, SUBCLASS_HOST, 0, CMD_RESET, STATUS_RESET);
    b->cfg[VPCI_REVISION] = REVISION_440FX;
    b->cfg[VPCI_LATENCY] = LATENCY_RESET;
    b->wmask[VPCI_COMMAND] = CMD_IO_MEM_MASTER;
    b->wmask[VPCI_LATENCY] = 0xF8;          /* latency timer, 8-clock granular */
    b->wmask[VPCI_INTERRUPT_LINE] = 0xFF;
    for (unsigned i = 0; i < PAMS; i++)
        b->wmask[PAM0 + i] = i ? PAM_WMASK : PAM0_WMASK;
    b->cfg[PAM0] = PAM0_RESET;
    pci->address = 0;
}

void vpci_init(struct vpci *pci)
{
    pci->nfuncs = 0;
    pci->reset_cpu = NULL;
    vpci_reset(pci);
}

int vpci_add(struct vpci *pci, struct vpci_func *f)
{
    if (f->devfn == BRIDGE_DEVFN)
        return E_INVAL;
    for (unsigned i = 0; i < pci->nfuncs; i++)
        if (pci->func[i]->devfn == f->devfn)
            return E_EXIST;
    if (pci->nfuncs >= VPCI_MAX_FUNCS)
        return E_NOMEM;
    pci->func[pci->nfuncs++] = f;
    return 0;
}

/* The selected function, or NULL (nothing answers). */
static struct vpci_func *selected(struct vpci *pci)
{
    uint32_t a = pci->address;
    if (!(a & ADDR_ENABLE) || ADDR_BUS(a) != BRIDGE_BUS)
        return NULL;
    if (ADDR_DEVFN(a) == BRIDGE_DEVFN)
        return &pci->bridge;
    for (unsigned i = 0; i < pci->nfuncs; i++)
        if (pci->func[i]->devfn == ADDR_DEVFN(a))
            return pci->func[i];
    return NULL;
}

/* CONFIG_ADDRESS takes dword accesses only (PCI 3.0 §3.2.2.3.2); the
 * other sizes go to ISA devices, of which 0xCF9 is the reset control. */
static uint32_t addr_in(void *opaque, uint16_t port, unsigned size)
{
    if (size != 4)
        return port == VPCI_RESET_CONTROL && size == 1 ? 0 : 0xFFFFFFFFu;
    return ((struct vpci *)opaque)->address;
}

static void addr_out(void *opaque, uint16_t port, unsigned size, uint32_t val)
{
    struct vpci *pci = opaque;
    if (size == 4)
        pci->address = val & ADDR_KEPT;
    else if (port == VPCI_RESET_CONTROL && size == 1 && (val & VPCI_RC_RCPU) && pci->reset_cpu)
        pci->reset_cpu(pci->reset_opaque);
}

/* CONFIG_DATA: byte i of the access is config byte REG + (port - 0xCFC) + i. */
static uint32_t data_in(void *opaque, uint16_t port, unsigned size)
{
    struct vpci *pci = opaque;
    struct vpci_func *f = selected(pci);
    if (!f)
        return 0xFFFFFFFFu;
    return vpci_get(f, ADDR_REG(pci->address) + (port - VPCI_CONFIG_DATA), size);
}

static void data_out(void *opaque, uint16_t port, unsigned size, uint32_t val)
{
    struct vpci *pci = opaque;
    struct vpci_func *f = selected(pci);
    unsigned off = ADDR_REG(pci->address) + (port - VPCI_CONFIG_DATA);

    if (!f)
        return;
    for (unsigned i = 0; i < size; i++) {
        unsigned o = (off + i) % VPCI_CONFIG_BYTES;
        uint8_t w = f->wmask[o], b = (uint8_t)(val >> (8 * i));
        f->cfg[o] = (uint8_t)((f->cfg[o] & ~w) | (b & w));
    }
    if (f->written)
        f->written(f->opaque);
}

int vpci_attach(struct vpci *pci, struct iobus *bus)
{
    int err = iobus_register(bus, VPCI_CONFIG_ADDRESS, 4, IOBUS_SZ_ALL, addr_in, addr_out, pci, "pci-addr");
    if (!err)
        err = iobus_register(bus, VPCI_CONFIG_DATA, 4, IOBUS_SZ_ALL, data_in, data_out, pci, "pci-data");
    return err;
}

void vpci_decode_follow(struct vpci_io_decode *d, const struct vpci_func *f)
{
    uint32_t bar = vpci_get(f, VPCI_BAR0 + 4 * d->bar, 4) & ~3u;
    bool decode = (vpci_get(f, VPCI_COMMAND, 2) & VPCI_CMD_IO) && bar && bar + d->size <= 0x10000;
    if (decode == d->on && (!decode || bar == d->base))
        return;
    d->on = iobus_move(d->bus, d->opaque, (uint16_t)bar, decode) == 0 && decode;
    if (d->on)
        d->base = (uint16_t)bar;
}

void vpci_decode_at(struct vpci_io_decode *d, uint16_t base)
{
    d->on = !d->bus || iobus_move(d->bus, d->opaque, base, true) == 0;
    d->base = base;
}
