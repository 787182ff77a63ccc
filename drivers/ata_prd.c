/*
 * PRD tables from scatter-gather lists (drivers/ata_prd.h).
 * Source: SFF-8038i rev 1.0 §3.2 (Physical Region Descriptor table).
 */
#include "drivers/ata_prd.h"

/* Bytes of PRD entry e (a count of 0 means 64 KiB). */
static uint32_t entry_len(const uint32_t *prd, unsigned e)
{
    uint32_t k = prd[2 * e + 1] & 0xFFFFu;
    return k ? k : ATA_PRD_MAX_LEN;
}

uint32_t ata_prd_fill(uint32_t *prd, unsigned max_entries, const struct dma_seg *sg, unsigned n, uint64_t pos,
                      uint32_t max_bytes, uint32_t unit)
{
    unsigned i = 0, e = 0;
    uint32_t total = 0;

    while (i < n && pos >= sg[i].len)
        pos -= sg[i].len, i++;
    uint32_t off = (uint32_t)pos;
    while (i < n && total < max_bytes && e < max_entries) {
        uint32_t pa = sg[i].hpa + off;
        uint32_t k = sg[i].len - off;
        if (k > ATA_PRD_MAX_LEN - (pa & 0xFFFFu))
            k = ATA_PRD_MAX_LEN - (pa & 0xFFFFu);
        if (k > max_bytes - total)
            k = max_bytes - total;
        prd[2 * e] = pa;
        prd[2 * e + 1] = k & 0xFFFFu;
        e++, total += k, off += k;
        if (off == sg[i].len)
            i++, off = 0;
    }
    /* Whole units only: give back the tail past the last unit boundary. */
    for (uint32_t cut = total % unit; cut;) {
        uint32_t k = entry_len(prd, e - 1);
        if (k > cut) {
            prd[2 * (e - 1) + 1] = (k - cut) & 0xFFFFu;
            total -= cut;
            cut = 0;
        } else {
            e--, total -= k, cut -= k;
        }
    }
    if (e)
        prd[2 * (e - 1) + 1] |= ATA_PRD_EOT;
    return total;
}
