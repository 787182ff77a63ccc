/*
 * An Intel PIIX3 IDE controller with up to four ATA hard disks, for guests
 * that have no virtio driver (Linux's ata_piix, and every PC operating
 * system's built-in IDE driver).
 *
 * PCI: the PIIX3 is function 0 (PCI-to-ISA bridge 8086:7000, class 06/01,
 * multi-function header) and function 1 (IDE 8086:7010, class 01/01,
 * programming interface 80h: both channels in compatibility mode, bus
 * master capable) of one device. As firmware leaves it (there is no guest
 * BIOS): I/O decode and bus mastering on, the IDE decode enable bit of both
 * IDETIM registers (40h-43h) set, BMIBA (BAR4) at bm_base. The guest may
 * move BAR4 and rewrite the timing registers; clearing a channel's decode
 * enable or the I/O enable makes its ports float.
 *
 * Channels: primary at 1F0h-1F7h and 3F6h, IRQ 14; secondary at 170h-177h
 * and 376h, IRQ 15; drive 0 and drive 1 on each, named by the Device
 * register's DEV bit. Each drive is a struct vdev_disk of 512-byte
 * sectors. Task file writes reach both drives of a channel (one cable);
 * reads name an absent drive 1 return 0 (no device), and a channel with no
 * drive floats (FFh).
 *
 * ATA commands (ATA/ATAPI-6, T13/1410D): IDENTIFY DEVICE; READ/WRITE
 * SECTORS (PIO) and READ/WRITE DMA, 28- and 48-bit (EXT); READ VERIFY;
 * FLUSH CACHE (EXT); SET FEATURES (transfer mode, write cache on/off,
 * look-ahead); INITIALIZE DEVICE PARAMETERS, EXECUTE DEVICE DIAGNOSTIC,
 * RECALIBRATE, SEEK and the power commands as no-ops. Any other command,
 * a write to a read-only disk and a failed backend call end with ERR and
 * ABRT (UNC for a failed read); an address outside the disk with IDNF.
 * Software reset (SRST in Device Control) gives the ATA signature.
 * Everything completes synchronously inside the guest's port access: BSY
 * is never seen, INTRQ rises at the end (and for each PIO data block).
 *
 * Bus master DMA (SFF-8038i rev 1.0, Intel 82371SB datasheet §2.7): per
 * channel a command (start, direction), status (active, error, interrupt,
 * drive DMA capable) and PRD table address. A DMA command moves its data
 * when both it is issued and the start bit is set, through Physical Region
 * Descriptors in guest memory (byte count 0 = 64 KiB, EOT bit 31). A PRD
 * table that runs out before the transfer, a direction that does not match
 * the command, a table crossing a 64 KiB boundary or memory outside guest
 * RAM ends the command with ERR/ABRT and the bus master error bit. With
 * write cache on (the default, SET FEATURES 02h/82h) writes are cached by
 * the backend and FLUSH CACHE flushes it; with it off they are
 * write-through.
 *
 * Trust: every register value comes from the guest. A sector number and
 * count are checked against the disk's size before the backend sees them,
 * a PRD walk is bounded by the 64 KiB table (8192 entries) and every guest
 * memory access goes through vdev_mem.
 */
#ifndef HV86_VMM_DEV_VIDE_H
#define HV86_VMM_DEV_VIDE_H
#include <stdbool.h>
#include <stdint.h>
#include "vmm/dev/iobus.h"
#include "vmm/dev/vdev.h"
#include "vmm/dev/vpci.h"

#define VIDE_CHANNELS    2
#define VIDE_DRIVES      2               /* per channel */
#define VIDE_DEVFN       (1u << 3)       /* PIIX3 at device 1: 00:01.0 ISA bridge, 00:01.1 IDE */
#define VIDE_BM_BYTES    16              /* BAR4: 8 bus master registers per channel */
#define VIDE_BUF_BYTES   65536u          /* DMA bounce buffer */
#define VIDE_PRIMARY_IRQ   14
#define VIDE_SECONDARY_IRQ 15

struct vide;

struct vide_drive {
    bool present;
    struct vdev_disk be;
    struct vdev_disk_stats st;
    bool write_cache;                    /* SET FEATURES 02h (on) / 82h (off) */
    uint8_t xfer_mode;                   /* SET FEATURES 03h value: 0 default PIO, 08h|n, 20h|n, 40h|n */
    uint16_t heads, spt;                 /* current CHS translation (INITIALIZE DEVICE PARAMETERS) */
};

/* A transfer in progress on a channel. */
enum vide_xfer { VIDE_IDLE, VIDE_PIO_IN, VIDE_PIO_OUT, VIDE_DMA_IN, VIDE_DMA_OUT };

struct vide_channel {
    struct vide *ide;
    unsigned index;                      /* 0 primary, 1 secondary */
    struct vide_drive drive[VIDE_DRIVES];
    /* Task file: [0] the last value written, [1] the one before (48-bit
     * commands and HOB reads, ATA-6 §6.2). */
    uint8_t feature[2], count[2], lba_low[2], lba_mid[2], lba_high[2];
    uint8_t device, status, error, control;
    bool intrq;                          /* the selected drive's INTRQ, before nIEN */
    bool line;                           /* the level last driven on the IRQ line */
    enum vide_xfer xfer;
    struct vide_drive *xfer_drive;
    uint64_t xfer_lba;                   /* next sector of the transfer */
    uint32_t xfer_left;                  /* sectors still to move, including the one in pio */
    uint32_t pio_pos, pio_len;           /* bytes of pio already moved, and valid */
    uint8_t pio[VDEV_SECTOR];            /* one PIO data block: a sector or IDENTIFY data */
    uint8_t bm_cmd, bm_status;           /* SFF-8038i registers */
    uint32_t prd_addr;
};

struct vide {
    struct vpci_func isa, fn;            /* 00:01.0 and 00:01.1 */
    struct vide_channel ch[VIDE_CHANNELS];
    uint16_t bm_base;                    /* BAR4 as firmware left it */
    struct vpci_io_decode bm;            /* where BAR4 decodes now */
    struct vdev_irq line;
    struct vdev_mem mem;
    uint64_t bad_prd;                    /* DMA commands ended by a bad PRD table */
    uint8_t buf[VIDE_BUF_BYTES];
};

/*
 * vide_init - a PIIX3 with no drives, bus master registers at bm_base (a
 * multiple of VIDE_BM_BYTES), interrupts through line (ISA IRQ 14, 15),
 * DMA through mem. Then vide_add_drive for each disk, vide_attach, and
 * vide_reset.
 */
void vide_init(struct vide *ide, uint16_t bm_base, struct vdev_irq line, struct vdev_mem mem);
/*
 * vide_add_drive - drive (0-3: primary master, primary slave, secondary
 * master, secondary slave) serves disk (copied). Returns 0, E_INVAL (slot
 * out of range) or E_EXIST (slot taken).
 */
int vide_add_drive(struct vide *ide, unsigned slot, const struct vdev_disk *disk);
/* Put both functions on pci and claim the legacy and bus master ports.
 * Returns 0 or the error of vpci_add / iobus_register. */
int vide_attach(struct vide *ide, struct vpci *pci, struct iobus *bus);
/* Power-on state: configuration space as firmware leaves it, every drive
 * ready with its signature, write cache on, no interrupt. Statistics are
 * kept. */
void vide_reset(struct vide *ide);
/* The drive in slot (0-3), or NULL if absent: for `vm info`. */
const struct vide_drive *vide_drive(const struct vide *ide, unsigned slot);
#endif
