/*
 * Legacy ATA (IDE) disk driver: the two ISA-compatible channels, master and
 * slave on each, PIO transfers with status polling, LBA28 and LBA48.
 *
 * Boot order (who calls what):
 *   kernel main, after kheap_init() and sched_init() (the PIT must be ticking:
 *   timeouts are measured with timer_ticks()), calls ata_init() once, from a
 *   thread context, before the console starts. ata_init() probes the four
 *   drive positions with IDENTIFY DEVICE, skips ATAPI devices (QEMU's boot
 *   CD-ROM is the secondary master), and hands every ATA disk to
 *   disk_register() (drivers/disk.c), which parses its partition table
 *   (drivers/part.c). Disks are named ata0..ata3 = channel * 2 + drive.
 *   Afterwards struct disk's read()/write() may be called from any thread
 *   (never from an interrupt handler), and a sleeping per-channel lock
 *   serialises requests. After the probe, a channel with disks gets its
 *   IRQ (14, 15) and nIEN cleared: a thread waiting for a DMA transfer or a
 *   slow command halts (or lends the CPU to another thread) until the
 *   drive's interrupt instead of polling its registers; the registers
 *   still say what happened, and the deadline still holds if an interrupt
 *   is lost. During the probe, and on a channel whose IRQ is taken, the
 *   driver polls with nIEN set.
 *
 * Sources: ATA/ATAPI-6 (T13/1410D rev 3b): §7 register set, §8.15 IDENTIFY
 * DEVICE, §8.23-8.24 READ SECTOR(S) (EXT), §8.59-8.60 WRITE SECTOR(S) (EXT),
 * §8.9-8.10 FLUSH CACHE (EXT), §9.2 software reset, §9.12 signatures;
 * legacy port assignments from the PC/AT (0x1F0/0x3F6, 0x170/0x376).
 */
#ifndef HV86_DRIVERS_ATA_H
#define HV86_DRIVERS_ATA_H
#include <stdint.h>

/* Legacy channel ports */
#define ATA_PRIMARY_IO     0x1F0
#define ATA_PRIMARY_CTL    0x3F6
#define ATA_SECONDARY_IO   0x170
#define ATA_SECONDARY_CTL  0x376
#define ATA_CHANNELS       2
#define ATA_DRIVES_PER_CHANNEL 2

/* Command block registers: offsets from the channel's I/O base (ATA/ATAPI-6 §7) */
#define ATA_REG_DATA     0
#define ATA_REG_ERROR    1 /* read */
#define ATA_REG_FEATURES 1 /* write */
#define ATA_REG_SECCOUNT 2
#define ATA_REG_LBA_LO   3
#define ATA_REG_LBA_MID  4
#define ATA_REG_LBA_HI   5
#define ATA_REG_DEVICE   6
#define ATA_REG_STATUS   7 /* read: clears a pending interrupt */
#define ATA_REG_COMMAND  7 /* write */
/* The control block register at the CTL port: alternate status on read,
 * device control on write. */

/* Status register bits (§7.15) */
#define ATA_SR_ERR  0x01 /* error: see the error register */
#define ATA_SR_DRQ  0x08 /* data request: a sector may be transferred */
#define ATA_SR_DF   0x20 /* device fault */
#define ATA_SR_DRDY 0x40 /* device ready */
#define ATA_SR_BSY  0x80 /* busy: no other bit is valid */
#define ATA_FLOATING_BUS 0xFF /* no device drives the bus (pull-ups read as ones) */

/* Device control register bits (§7.9) */
#define ATA_DC_NIEN 0x02 /* disable INTRQ */
#define ATA_DC_SRST 0x04 /* software reset of both drives */

/* Device register (§7.10) */
#define ATA_DEV_OBS   0xA0 /* bits 7 and 5: obsolete, set by convention */
#define ATA_DEV_LBA   0x40 /* LBA addressing */
#define ATA_DEV_SLAVE 0x10 /* DEV bit: drive 1 */

/* Commands */
#define ATA_CMD_READ_SECTORS      0x20
#define ATA_CMD_READ_SECTORS_EXT  0x24
#define ATA_CMD_WRITE_SECTORS     0x30
#define ATA_CMD_WRITE_SECTORS_EXT 0x34
#define ATA_CMD_FLUSH_CACHE       0xE7
#define ATA_CMD_FLUSH_CACHE_EXT   0xEA
#define ATA_CMD_IDENTIFY          0xEC
#define ATA_CMD_READ_DMA          0xC8
#define ATA_CMD_READ_DMA_EXT      0x25
#define ATA_CMD_WRITE_DMA         0xCA
#define ATA_CMD_WRITE_DMA_EXT     0x35

/* Bus-master IDE (PCI IDE controller BAR4, 8 bytes per channel; SFF-8038i
 * rev 1.0 §3): command, status, PRD table address. */
#define ATA_BM_CMD        0
#define ATA_BM_STATUS     2
#define ATA_BM_PRD        4
#define ATA_BM_CMD_START  0x01 /* start/stop bus master */
#define ATA_BM_CMD_TO_MEM 0x08 /* direction: the device's data to memory (a read) */
#define ATA_BM_ST_ACTIVE  0x01
#define ATA_BM_ST_ERROR   0x02 /* write 1 to clear */
#define ATA_BM_ST_IRQ     0x04 /* write 1 to clear */
#define ATA_BM_ST_DRV_DMA 0x60 /* drive 0/1 DMA capable, read/write */
#define ATA_DMA_BYTES     65536u      /* one DMA command's bounce buffer, per channel */
#define ATA_PRD_ENTRIES   512u        /* entries of a channel's PRD table (one 4 KiB frame) */

/* Signatures left in LBA mid/high by reset or an aborted IDENTIFY (§9.12) */
#define ATA_SIG_ATAPI_MID  0x14
#define ATA_SIG_ATAPI_HI   0xEB
#define ATA_SIG_SATAPI_MID 0x69
#define ATA_SIG_SATAPI_HI  0x96
#define ATA_SIG_SATA_MID   0x3C
#define ATA_SIG_SATA_HI    0xC3

/* IDENTIFY DEVICE words (§8.15.8) */
#define ATA_ID_WORDS           256
#define ATA_ID_CONFIG          0   /* bit 15: 1 = not an ATA device */
#define ATA_ID_MODEL           27  /* 20 words, two ASCII bytes per word, high first */
#define ATA_ID_MODEL_WORDS     20
#define ATA_ID_CAPS            49  /* bit 9: LBA supported; bit 8: DMA supported */
#define ATA_ID_CAPS_DMA        0x0100
#define ATA_ID_LBA28_SECTORS   60  /* 2 words */
#define ATA_ID_CMDSET2         83  /* bit 10: 48-bit address feature set */
#define ATA_ID_LBA48_SECTORS   100 /* 4 words */
#define ATA_ID_SECTOR_SIZE     106 /* bit 14 set, 15 clear: valid; bit 12: logical > 256 words */
#define ATA_ID_LOGICAL_SIZE    117 /* 2 words: logical sector size in words */
#define ATA_ID_CONFIG_NOT_ATA  0x8000
#define ATA_ID_CAPS_LBA        0x0200
#define ATA_ID_CMDSET2_LBA48   0x0400
#define ATA_ID_SS_VALID_MASK   0xC000
#define ATA_ID_SS_VALID        0x4000
#define ATA_ID_SS_LARGE        0x1000

#define ATA_SECTOR_SIZE   512u       /* bytes; other logical sizes are not supported */
#define ATA_LBA28_LIMIT   (1u << 28) /* first LBA a 28-bit command cannot reach */
#define ATA_LBA28_MAX_COUNT 256u     /* sectors per READ/WRITE SECTOR(S); 0 means 256 */
#define ATA_LBA48_MAX_COUNT 65536u   /* sectors per ... EXT command; 0 means 65536 */

/* Timeouts in milliseconds: short enough that an absent or dead drive
 * cannot hold up the boot for long. */
#define ATA_RESET_TIMEOUT_MS    1000 /* BSY after software reset */
#define ATA_IDENTIFY_TIMEOUT_MS 300  /* BSY/DRQ after IDENTIFY */
#define ATA_IO_TIMEOUT_MS       3000 /* BSY/DRQ per sector, and per flush */

/*
 * ata_init - probe both legacy channels, register every ATA disk found.
 * Call once at boot (see the order above). Allocates one struct ata_drive per
 * disk (kzalloc, never freed). Never fails the boot: a floating bus, an absent
 * drive, an ATAPI device, a drive that times out or lacks LBA is logged and
 * skipped; the number of disks found is logged.
 */
void ata_init(void);

#endif
