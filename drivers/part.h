/*
 * Partition-table parser: MBR (with extended/logical partitions) and GPT.
 *
 * Pure code: no port I/O and no kernel service but klog(), kzalloc() and
 * kfree(), so it builds freestanding (linked into hv86.elf) and hosted
 * (-DHV86_HOSTED, tests/unit/test_part.c supplies those three). Sectors are
 * read only through d->read().
 *
 * Who calls what: disk_register() (drivers/disk.c) calls part_scan() once per
 * disk; the ATA driver (drivers/ata.c) calls disk_register() from ata_init().
 *
 * Policy for bad tables (the boot always continues):
 *  - Every problem is logged with klog(LOG_WARN, "<disk>: ..."); the first one
 *    is kept in d->table_error (a static string, never freed).
 *  - A partition outside the disk (MBR) or outside the GPT usable LBAs, a
 *    logical partition outside its extended partition, and BOTH members of
 *    any overlapping pair are dropped: a hypervisor must never hand out two
 *    views of the same sectors, and it cannot tell which of the pair is the
 *    intended one. Every other valid partition is still listed.
 *  - Entries with type 0 (MBR) / zero type GUID (GPT) or zero size are empty
 *    slots and silently skipped.
 *  - A sector 0 with 0x55AA and any 0xEE entry is a protective MBR: the GPT
 *    is used (no fallback to the MBR entries). A primary GPT whose header or
 *    entry array fails a check is replaced by the backup header (at the
 *    primary's AlternateLBA if the primary header was valid, then at the
 *    disk's last LBA) and the table error says so. If the primary is good,
 *    the backup header is still checked, and a bad one is reported.
 *  - An all-zero sector 0 is a blank disk: PART_NONE, no error.
 *  - The MBR extended container (type 0x05/0x0F/0x85) is itself listed, as
 *    sfdisk and Linux do; logical partitions are numbered from 5.
 *
 * Sources: UEFI 2.10 §5.2 (legacy and protective MBR), §5.3 (GPT header,
 * partition entry array, validation rules); the IBM PC MBR/EBR layout.
 */
#ifndef HV86_DRIVERS_PART_H
#define HV86_DRIVERS_PART_H
#include <stdint.h>
#include "drivers/disk.h"

/* MBR layout (sector 0 and every EBR) */
#define MBR_ENTRIES_OFF   446    /* byte offset of the 4 partition entries */
#define MBR_ENTRY_SIZE    16     /* bytes per entry */
#define MBR_NENTRIES      4
#define MBR_SIG_OFF       510    /* 0x55, 0xAA */
#define MBR_SIG0          0x55
#define MBR_SIG1          0xAA
#define MBR_BOOT_ACTIVE   0x80   /* status byte: bootable */
#define MBR_BOOT_INACTIVE 0x00
#define MBR_TYPE_EMPTY    0x00
#define MBR_TYPE_EXT_CHS  0x05   /* extended partition (CHS) */
#define MBR_TYPE_EXT_LBA  0x0F   /* extended partition (LBA) */
#define MBR_TYPE_EXT_LINUX 0x85  /* Linux extended partition */
#define MBR_TYPE_GPT_PROT 0xEE   /* protective MBR: a GPT follows */
#define MBR_FIRST_LOGICAL 5      /* logical partitions are numbered 5, 6, ... */
#define MBR_MAX_LOGICALS  (DISK_MAX_PARTS - MBR_NENTRIES) /* EBR chain length limit */

/* GPT limits hv86 accepts (UEFI 2.10 §5.3.2 leaves them open) */
#define GPT_HEADER_LBA      1
#define GPT_HEADER_MIN_SIZE 92          /* bytes defined by UEFI 2.10 */
#define GPT_ENTRY_MIN_SIZE  128         /* SizeOfPartitionEntry: 128 * 2^n */
#define GPT_ENTRY_MAX_SIZE  4096
#define GPT_ARRAY_MAX_BYTES (1u << 20)  /* 1 MiB: 8192 entries of 128 bytes */
#define GPT_NAME_UNITS      36          /* UTF-16LE code units in PartitionName */

#define PART_GUID_STR_LEN 37 /* "XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX" + NUL */

/*
 * part_scan - read and check d's partition table (MBR, EBR chain, GPT).
 * Needs d->name, d->sectors, d->sector_size (512..4096, power of two),
 * d->read, and d->parts NULL or left by an earlier part_scan(). Fills d->scheme, d->parts (kzalloc'd, nparts entries, NULL if none;
 * freed by part_release) and d->table_error (NULL or a static string).
 * Returns 0 whatever the table looks like, E_NOMEM if a buffer could not be
 * allocated (d is then left with no partitions), E_INVAL for a bad sector size.
 * Reads at most: 1 + MBR_MAX_LOGICALS sectors (MBR), or 3 headers plus
 * 2 * GPT_ARRAY_MAX_BYTES of entries (GPT).
 */
int part_scan(struct disk *d);

/* part_release - free d->parts and reset scheme, nparts and table_error. */
void part_release(struct disk *d);

/*
 * part_guid_format - write guid (16 bytes, GPT on-disk order: first three
 * fields little-endian, last two big-endian; UEFI 2.10 Appendix A) as the
 * standard upper-case text "C12A7328-F81F-11D2-BA4B-00A0C93EC93B" into out
 * (PART_GUID_STR_LEN bytes). Returns out.
 */
char *part_guid_format(const uint8_t guid[16], char *out);

/* part_mbr_is_extended - 1 if an MBR system id names an extended container. */
int part_mbr_is_extended(uint8_t type);

#endif
