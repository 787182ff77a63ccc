/*
 * PRD tables for the PCI IDE bus master (SFF-8038i rev 1.0 §3.2): the
 * table the bus master walks for one DMA command, built from a
 * scatter-gather list of host-physical pieces. Pure (no I/O, no lock), so
 * that it is unit-tested on the Linux host (tests/unit/test_ata_prd.c).
 */
#ifndef HV86_DRIVERS_ATA_PRD_H
#define HV86_DRIVERS_ATA_PRD_H
#include <stdint.h>
#include "kernel/pmm.h"

#define ATA_PRD_EOT     0x80000000u /* last entry of a PRD table */
#define ATA_PRD_MAX_LEN 0x10000u    /* bytes one entry moves at most (written as 0) */

/*
 * ata_prd_fill - fill prd (max_entries entries of two words: physical
 * address, then byte count in bits 0-15 with 0 meaning 64 KiB and EOT in
 * bit 31 of the last) for the bytes of sg[0..n) from byte pos of the list
 * on: at most max_bytes of them, cut down to a multiple of unit bytes (a
 * sector: one command moves whole sectors). No entry crosses a 64 KiB
 * physical boundary (§3.2). max_bytes must be a multiple of unit.
 * Returns the bytes the table covers; 0 when nothing is left from pos on
 * or one unit needs more than max_entries entries (the table is then
 * unusable). The bus master moves words, so every piece must start at an
 * even address and have an even length; the caller checks that.
 */
uint32_t ata_prd_fill(uint32_t *prd, unsigned max_entries, const struct dma_seg *sg, unsigned n, uint64_t pos,
                      uint32_t max_bytes, uint32_t unit);

#endif
