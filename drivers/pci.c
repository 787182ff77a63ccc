/*
 * PCI enumeration through configuration mechanism #1 (see drivers/pci.h).
 * Configuration accesses are two port accesses (address, then data), so each
 * is done with interrupts off: an interrupt handler touching PCI between the
 * two would otherwise redirect our data access.
 */
#include "drivers/pci.h"
#include "kernel/kernel.h"
#include "kernel/x86.h"

#define PCI_ADDR_BUS_SHIFT 16
#define PCI_ADDR_DEV_SHIFT 11
#define PCI_ADDR_FN_SHIFT  8
#define PCI_ADDR_REG_MASK  0xFC
#define PCI_IRQ_NONE       0xFF

static struct pci_func pci_funcs[PCI_MAX_FUNCS];
static int pci_nfuncs;

/* Class names (PCI Code and ID Assignment Spec §1): (class << 8 | subclass), or
 * class << 8 | 0xFF for "any other subclass of this class". */
#define PCI_ANY_SUB 0xFF
static const struct {
    uint16_t code;
    const char *name;
} pci_class_table[] = {
    {0x0100, "SCSI controller"},     {0x0101, "IDE controller"},
    {0x0105, "ATA controller"},      {0x0106, "SATA controller"},
    {0x0108, "NVMe controller"},     {0x01FF, "storage controller"},
    {0x0200, "Ethernet controller"}, {0x02FF, "network controller"},
    {0x0300, "VGA controller"},      {0x03FF, "display controller"},
    {0x0401, "audio device"},        {0x0403, "HD audio"},
    {0x04FF, "multimedia device"},   {0x05FF, "memory controller"},
    {0x0600, "host bridge"},         {0x0601, "ISA bridge"},
    {0x0604, "PCI-PCI bridge"},      {0x0680, "other bridge"},
    {0x06FF, "bridge"},              {0x07FF, "communication controller"},
    {0x08FF, "system peripheral"},   {0x0C03, "USB controller"},
    {0x0C05, "SMBus controller"},    {0x0CFF, "serial bus controller"},
};

static uint32_t pci_address(uint8_t bus, uint8_t dev, uint8_t fn, uint8_t off)
{
    return PCI_CONFIG_ENABLE | (uint32_t)bus << PCI_ADDR_BUS_SHIFT | (uint32_t)(dev & 0x1F) << PCI_ADDR_DEV_SHIFT |
           (uint32_t)(fn & 0x7) << PCI_ADDR_FN_SHIFT | (off & PCI_ADDR_REG_MASK);
}

uint32_t pci_config_read32(uint8_t bus, uint8_t dev, uint8_t fn, uint8_t off)
{
    uint32_t fl = read_eflags(), v;

    cpu_cli();
    outl(PCI_CONFIG_ADDRESS, pci_address(bus, dev, fn, off));
    v = inl(PCI_CONFIG_DATA);
    write_eflags(fl);
    return v;
}

void pci_config_write32(uint8_t bus, uint8_t dev, uint8_t fn, uint8_t off, uint32_t v)
{
    uint32_t fl = read_eflags();

    cpu_cli();
    outl(PCI_CONFIG_ADDRESS, pci_address(bus, dev, fn, off));
    outl(PCI_CONFIG_DATA, v);
    write_eflags(fl);
}

uint16_t pci_config_read16(uint8_t bus, uint8_t dev, uint8_t fn, uint8_t off)
{
    return (uint16_t)(pci_config_read32(bus, dev, fn, off) >> ((off & 2) * 8));
}

uint8_t pci_config_read8(uint8_t bus, uint8_t dev, uint8_t fn, uint8_t off)
{
    return (uint8_t)(pci_config_read32(bus, dev, fn, off) >> ((off & 3) * 8));
}

/* Mechanism #1 present: bit 31 of the address register reads back. */
static int pci_mechanism1_present(void)
{
    uint32_t fl = read_eflags(), saved, probe;

    cpu_cli();
    saved = inl(PCI_CONFIG_ADDRESS);
    outl(PCI_CONFIG_ADDRESS, PCI_CONFIG_ENABLE);
    probe = inl(PCI_CONFIG_ADDRESS);
    outl(PCI_CONFIG_ADDRESS, saved);
    write_eflags(fl);
    return probe == PCI_CONFIG_ENABLE;
}

const char *pci_class_name(uint8_t class_code, uint8_t subclass)
{
    uint16_t exact = (uint16_t)(class_code << 8 | subclass), any = (uint16_t)(class_code << 8 | PCI_ANY_SUB);

    for (size_t i = 0; i < ARRAY_SIZE(pci_class_table); i++)
        if (pci_class_table[i].code == exact)
            return pci_class_table[i].name;
    for (size_t i = 0; i < ARRAY_SIZE(pci_class_table); i++)
        if (pci_class_table[i].code == any)
            return pci_class_table[i].name;
    return "device";
}

static void pci_record(uint8_t bus, uint8_t dev, uint8_t fn, uint32_t id)
{
    uint32_t class_rev = pci_config_read32(bus, dev, fn, PCI_CFG_REVISION);
    struct pci_func *f;

    if (pci_nfuncs >= PCI_MAX_FUNCS) {
        log_warn("pci: %02x:%02x.%x %04x:%04x not recorded (more than %d functions)", bus, dev, fn,
                 (unsigned)(id & 0xFFFF), (unsigned)(id >> 16), PCI_MAX_FUNCS);
        return;
    }
    f = &pci_funcs[pci_nfuncs++];
    f->bus = bus, f->dev = dev, f->fn = fn;
    f->vendor = (uint16_t)id;
    f->device = (uint16_t)(id >> 16);
    f->revision = (uint8_t)class_rev;
    f->prog_if = (uint8_t)(class_rev >> 8);
    f->subclass = (uint8_t)(class_rev >> 16);
    f->class_code = (uint8_t)(class_rev >> 24);
    f->header_type = pci_config_read8(bus, dev, fn, PCI_CFG_HEADER_TYPE) & PCI_HEADER_TYPE_MASK;
    f->irq_line = pci_config_read8(bus, dev, fn, PCI_CFG_IRQ_LINE);
    log_info("pci: %02x:%02x.%x %04x:%04x %s", bus, dev, fn, f->vendor, f->device,
             pci_class_name(f->class_code, f->subclass));
}

/* Functions 1-7 exist only if function 0 says the device is multi-function. */
static void pci_scan_device(uint8_t bus, uint8_t dev)
{
    uint32_t id = pci_config_read32(bus, dev, 0, PCI_CFG_VENDOR_ID);
    int nfn;

    if ((id & 0xFFFF) == PCI_VENDOR_NONE)
        return;
    nfn = (pci_config_read8(bus, dev, 0, PCI_CFG_HEADER_TYPE) & PCI_HEADER_MULTIFN) ? PCI_FUNCTIONS : 1;
    pci_record(bus, dev, 0, id);
    for (uint8_t fn = 1; fn < nfn; fn++) {
        id = pci_config_read32(bus, dev, fn, PCI_CFG_VENDOR_ID);
        if ((id & 0xFFFF) != PCI_VENDOR_NONE)
            pci_record(bus, dev, fn, id);
    }
}

void pci_init(void)
{
    pci_nfuncs = 0;
    if (!pci_mechanism1_present()) {
        log_warn("pci: configuration mechanism #1 not present, no PCI devices");
        return;
    }
    for (int bus = 0; bus < PCI_BUSES; bus++)
        for (uint8_t dev = 0; dev < PCI_DEVICES; dev++)
            pci_scan_device((uint8_t)bus, dev);
    log_info("pci: %d function(s)", pci_nfuncs);
}

int pci_count(void)
{
    return pci_nfuncs;
}

const struct pci_func *pci_get(int i)
{
    return i >= 0 && i < pci_nfuncs ? &pci_funcs[i] : NULL;
}

int pci_format_lines(void (*emit)(const char *line, void *ctx), void *ctx)
{
    char line[PCI_LINE_MAX];

    for (int i = 0; i < pci_nfuncs; i++) {
        const struct pci_func *f = &pci_funcs[i];
        snprintf(line, sizeof(line), "%02x:%02x.%x %04x:%04x class %02x.%02x.%02x rev %02x irq %u %s", f->bus,
                 f->dev, f->fn, f->vendor, f->device, f->class_code, f->subclass, f->prog_if, f->revision,
                 f->irq_line, pci_class_name(f->class_code, f->subclass));
        emit(line, ctx);
    }
    return pci_nfuncs;
}
