/*
 * Emulated PCI configuration mechanism #1 (CONFIG_ADDRESS 0xCF8 dword,
 * CONFIG_DATA 0xCFC-0xCFF any size) on bus 0: an Intel 440FX host bridge
 * (8086:1237, class 06/00/00) at 00:00.0 and the functions device models
 * add (vpci_add: virtio disks). Every other bus/device/function reads all
 * ones (master abort). Mechanism #2 is absent:
 * byte accesses to 0xCF8/0xCFA are not claimed, so they float.
 * Source: PCI Local Bus Spec 3.0 §3.2.2.3.2 (configuration mechanism #1),
 * §6.1 (configuration header); Intel 82441FX (PMC) datasheet for the IDs.
 *
 * The bridge's header is read-only except the harmless bits a guest may
 * program: command register I/O/memory/master enables, latency timer,
 * interrupt line. An added function's writable bits are its own (wmask).
 */
#ifndef HV86_VMM_DEV_VPCI_H
#define HV86_VMM_DEV_VPCI_H
#include <stdbool.h>
#include <stdint.h>
#include "vmm/dev/iobus.h"

#define VPCI_CONFIG_ADDRESS 0xCF8
#define VPCI_CONFIG_DATA    0xCFC
/* The PIIX3's Reset Control Register, a byte port inside CONFIG_ADDRESS's
 * dword (PIIX3 datasheet §4.1.6 RC: bit 1 SRST hard reset, bit 2 RCPU
 * reset the CPU): a byte write with RCPU set resets the machine, as Linux's
 * reboot=pci and SeaBIOS's pci_reboot do. */
#define VPCI_RESET_CONTROL  0xCF9
#define VPCI_RC_RCPU        0x04
#define VPCI_CONFIG_BYTES   256   /* type 0 configuration space, bytes */
#define VPCI_MAX_FUNCS      8     /* functions besides the host bridge */

/* Type 0 header offsets (PCI 3.0 §6.1). */
enum {
    VPCI_VENDOR = 0x00, VPCI_DEVICE = 0x02, VPCI_COMMAND = 0x04, VPCI_STATUS = 0x06,
    VPCI_REVISION = 0x08, VPCI_PROG_IF = 0x09, VPCI_SUBCLASS = 0x0A, VPCI_CLASS = 0x0B,
    VPCI_LATENCY = 0x0D, VPCI_HEADER_TYPE = 0x0E, VPCI_BAR0 = 0x10, VPCI_SUBSYS_VENDOR = 0x2C,
    VPCI_SUBSYS_ID = 0x2E, VPCI_INTERRUPT_LINE = 0x3C, VPCI_INTERRUPT_PIN = 0x3D,
};
#define VPCI_CMD_IO     0x0001 /* I/O space decode enable */
#define VPCI_CMD_MASTER 0x0004 /* bus master (DMA) enable */
#define VPCI_BAR_IO     0x1    /* BAR bit 0: I/O space */

/* One PCI function a device model owns: its configuration space as the
 * guest reads it, the bits the guest may write, and a callback after every
 * guest write (the device re-reads command and BARs there). */
struct vpci_func {
    uint8_t devfn;                    /* device << 3 | function; 0 is the host bridge's */
    uint8_t cfg[VPCI_CONFIG_BYTES];
    uint8_t wmask[VPCI_CONFIG_BYTES];
    void (*written)(void *opaque);
    void *opaque;
};

struct vpci {
    uint32_t address;                   /* CONFIG_ADDRESS as the guest reads it */
    struct vpci_func bridge;            /* 00:00.0 */
    struct vpci_func *func[VPCI_MAX_FUNCS];
    unsigned nfuncs;
    void (*reset_cpu)(void *opaque);    /* a write to VPCI_RESET_CONTROL with RCPU; NULL: ignored */
    void *reset_opaque;
};

void vpci_init(struct vpci *pci);
/* The host bridge and CONFIG_ADDRESS as at power-on; added functions are
 * their devices' to reset. */
void vpci_reset(struct vpci *pci);

/* Claim 0xCF8-0xCFB (CONFIG_ADDRESS dword accesses; byte 0xCF9, the reset
 * control register) and 0xCFC-0xCFF. Returns 0 or an iobus error. */
int vpci_attach(struct vpci *pci, struct iobus *bus);

/*
 * vpci_add - put function f (owned by the caller, alive as long as pci) on
 * bus 0 at f->devfn. Returns 0, E_INVAL (devfn 0), E_EXIST (devfn taken) or
 * E_NOMEM (VPCI_MAX_FUNCS already).
 */
int vpci_add(struct vpci *pci, struct vpci_func *f);

/* Little-endian fields of a function's configuration space. */
uint32_t vpci_get(const struct vpci_func *f, unsigned off, unsigned size);
void vpci_put(struct vpci_func *f, unsigned off, unsigned size, uint32_t v);

/*
 * vpci_header - f's configuration space as at power-on: all zero and
 * read-only, then the IDs, class code (class, subclass, programming
 * interface), command and status registers (PCI 3.0 §6.2.1-§6.2.3). The
 * caller then sets what else reads non-zero and the writable bits.
 */
void vpci_header(struct vpci_func *f, uint16_t vendor, uint16_t device, uint8_t class_code, uint8_t subclass,
                 uint8_t prog_if, uint16_t command, uint16_t status);
/*
 * vpci_io_bar - BAR bar (0-5) of f becomes an I/O BAR of size bytes (a power
 * of two, 4-256) at base, as firmware leaves it: its address bits are the
 * guest's to write, so sizing (all ones, then the old value back) reads
 * ~(size - 1) | 1 (PCI 3.0 §6.2.5.1).
 */
void vpci_io_bar(struct vpci_func *f, unsigned bar, uint16_t base, uint32_t size);


/*
 * An I/O BAR as the bus decodes it: the iobus range registered with opaque
 * (its first), moved whenever the guest reprograms the BAR or the command
 * register's I/O enable (PCI 3.0 §6.2.2, §6.2.5.1). A BAR that would run
 * past port 0xFFFF or overlap another device's ports decodes nothing.
 */
struct vpci_io_decode {
    struct iobus *bus;   /* NULL until the device is attached */
    void *opaque;        /* the range's opaque, for iobus_move */
    uint8_t bar;         /* 0-5 */
    uint32_t size;       /* bytes */
    uint16_t base;       /* where it decodes, while on */
    bool on;
};
/* vpci_decode_follow - after a configuration write to f: decode where f's
 * BAR now points, or nothing if I/O decoding is off. */
void vpci_decode_follow(struct vpci_io_decode *d, const struct vpci_func *f);
/* vpci_decode_at - decode at base (attach, power-on: firmware's place). */
void vpci_decode_at(struct vpci_io_decode *d, uint16_t base);
#endif
