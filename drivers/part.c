/*
 * Partition-table parser (policy and sources: drivers/part.h).
 *
 * Map of this file:
 *   scan state     - struct scan: one sector buffer, candidate partitions,
 *                    first error; scan_error() logs and keeps the first one.
 *   MBR            - mbr_scan() reads sector 0, mbr_add_primaries(), then
 *                    ebr_walk() follows each extended container's EBR chain
 *                    (loop and length limits).
 *   GPT            - gpt_read_header() applies every header check,
 *                    gpt_read_entries() streams the entry array sector by
 *                    sector (CRC over the whole array, no big allocation),
 *                    gpt_scan() chooses primary or backup.
 *   validation     - scan_check_ranges() and scan_drop_overlaps() drop bad
 *                    candidates; scan_commit() copies the survivors to d->parts.
 *
 * Invariants: s->n <= DISK_MAX_PARTS; every LBA sum is done in 64 bits from
 * 32-bit (MBR) or range-checked 64-bit (GPT) fields, so nothing overflows.
 */
#include "drivers/part.h"
#include "drivers/crc32.h"
#include "kernel/heap.h"
#include "kernel/kernel.h"

#ifdef HV86_HOSTED
/* The unit test supplies these (kernel/heap.h declares them freestanding only). */
void *kzalloc(size_t bytes);
void kfree(void *p);
#endif

#define SECTOR_MIN 512u
#define SECTOR_MAX 4096u

/* GPT header fields, byte offsets (UEFI 2.10 §5.3.2 table 5-5) */
#define GPT_SIG           "EFI PART"
#define GPT_SIG_LEN       8
#define GPT_OFF_REVISION  8
#define GPT_OFF_HDR_SIZE  12
#define GPT_OFF_HDR_CRC   16
#define GPT_OFF_MY_LBA    24
#define GPT_OFF_ALT_LBA   32
#define GPT_OFF_FIRST_USE 40
#define GPT_OFF_LAST_USE  48
#define GPT_OFF_ENT_LBA   72
#define GPT_OFF_ENT_COUNT 80
#define GPT_OFF_ENT_SIZE  84
#define GPT_OFF_ENT_CRC   88
#define GPT_REVISION_MAJOR 1u /* Revision 1.0 = 0x00010000; minor may grow */

/* GPT partition entry fields (UEFI 2.10 §5.3.3 table 5-6) */
#define GPE_OFF_TYPE  0
#define GPE_OFF_UNIQ  16
#define GPE_OFF_FIRST 32
#define GPE_OFF_LAST  40
#define GPE_OFF_NAME  56

/* MBR partition entry fields */
#define MBRE_OFF_STATUS 0
#define MBRE_OFF_TYPE   4
#define MBRE_OFF_START  8
#define MBRE_OFF_SIZE   12

/* UTF-16 low surrogates: second halves of pairs (one non-ASCII character). */
#define UTF16_LOW_SURROGATE_MIN 0xDC00u
#define UTF16_LOW_SURROGATE_MAX 0xDFFFu
#define ASCII_PRINT_MIN 0x20
#define ASCII_PRINT_MAX 0x7E

struct mbr_entry {
    uint8_t status, type;
    uint32_t start, sectors;
};

struct gpt_header {
    uint64_t my_lba, alt_lba, first_usable, last_usable, entries_lba;
    uint32_t nentries, entry_size, entries_crc;
};

struct scan {
    struct disk *d;
    uint8_t *sec;                             /* one sector */
    const char *error;                        /* first problem, static string */
    uint32_t n;                               /* candidates in parts[] */
    uint32_t overflow;                        /* used entries beyond DISK_MAX_PARTS */
    struct partition parts[DISK_MAX_PARTS];
    uint8_t parent[DISK_MAX_PARTS];           /* MBR: container index of a logical, else 0 */
    uint8_t drop[DISK_MAX_PARTS];
    uint64_t ebr_seen[MBR_MAX_LOGICALS];      /* EBR LBAs visited, for loop detection */
    uint32_t next_logical;
};

static uint16_t get_le16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t get_le32(const uint8_t *p) { return (uint32_t)get_le16(p) | (uint32_t)get_le16(p + 2) << 16; }
static uint64_t get_le64(const uint8_t *p) { return (uint64_t)get_le32(p) | (uint64_t)get_le32(p + 4) << 32; }

/* Log a table problem on d and keep the first one as d's table error. */
static void scan_error(struct scan *s, const char *error, const char *detail)
{
    log_warn("%s: partition table: %s%s%s", s->d->name, error, detail ? ": " : "", detail ? detail : "");
    if (!s->error)
        s->error = error;
}

static int scan_read(struct scan *s, uint64_t lba)
{
    if (lba >= s->d->sectors)
        return E_RANGE;
    return s->d->read(s->d, lba, 1, s->sec);
}

/* Append a candidate; returns it, or NULL (counted in overflow) if full. */
static struct partition *scan_add(struct scan *s, uint32_t index, uint64_t start, uint64_t sectors)
{
    struct partition *p;

    if (s->n >= DISK_MAX_PARTS) {
        s->overflow++;
        return NULL;
    }
    p = &s->parts[s->n];
    memset(p, 0, sizeof(*p));
    p->index = index;
    p->start_lba = start;
    p->sectors = sectors;
    s->parent[s->n] = 0;
    s->drop[s->n] = 0;
    s->n++;
    return p;
}

/* ---------------------------------------------------------------- validation */

/* Drop candidates not inside [lo, hi] (inclusive LBAs). */
static void scan_check_ranges(struct scan *s, uint64_t lo, uint64_t hi, const char *error)
{
    char detail[64];

    for (uint32_t i = 0; i < s->n; i++) {
        const struct partition *p = &s->parts[i];
        if (p->start_lba >= lo && p->start_lba <= hi && p->sectors - 1 <= hi - p->start_lba)
            continue;
        snprintf(detail, sizeof(detail), "#%u start %llu sectors %llu", (unsigned)p->index,
                 (unsigned long long)p->start_lba, (unsigned long long)p->sectors);
        scan_error(s, error, detail);
        s->drop[i] = 1;
    }
}

static int scan_related(const struct scan *s, uint32_t i, uint32_t j)
{
    return s->parent[i] == s->parts[j].index || s->parent[j] == s->parts[i].index;
}

/* Drop both members of every overlapping pair (not a logical in its container). */
static void scan_drop_overlaps(struct scan *s, const char *error)
{
    char detail[48];

    for (uint32_t i = 0; i < s->n; i++) {
        for (uint32_t j = i + 1; j < s->n; j++) {
            const struct partition *a = &s->parts[i], *b = &s->parts[j];
            if (s->drop[i] == 1 || s->drop[j] == 1 || scan_related(s, i, j))
                continue;
            if (a->start_lba >= b->start_lba + b->sectors || b->start_lba >= a->start_lba + a->sectors)
                continue;
            snprintf(detail, sizeof(detail), "#%u and #%u", (unsigned)a->index, (unsigned)b->index);
            scan_error(s, error, detail);
            s->drop[i] = s->drop[j] = 2; /* 2: still compared with the others */
        }
    }
}

/* Copy the surviving candidates to d->parts. Returns 0 or E_NOMEM. */
static int scan_commit(struct scan *s)
{
    struct disk *d = s->d;
    uint32_t keep = 0;

    if (s->overflow)
        scan_error(s, "too many partitions (first 128 kept)", NULL);
    for (uint32_t i = 0; i < s->n; i++)
        keep += !s->drop[i];
    d->table_error = s->error;
    if (keep == 0)
        return 0;
    d->parts = kzalloc(keep * sizeof(*d->parts));
    if (!d->parts)
        return E_NOMEM;
    for (uint32_t i = 0; i < s->n; i++)
        if (!s->drop[i])
            d->parts[d->nparts++] = s->parts[i];
    return 0;
}

/* ---------------------------------------------------------------- MBR */

int part_mbr_is_extended(uint8_t type)
{
    return type == MBR_TYPE_EXT_CHS || type == MBR_TYPE_EXT_LBA || type == MBR_TYPE_EXT_LINUX;
}

static void mbr_parse_entries(const uint8_t *sec, struct mbr_entry e[MBR_NENTRIES])
{
    for (int i = 0; i < MBR_NENTRIES; i++) {
        const uint8_t *p = sec + MBR_ENTRIES_OFF + i * MBR_ENTRY_SIZE;
        e[i].status = p[MBRE_OFF_STATUS];
        e[i].type = p[MBRE_OFF_TYPE];
        e[i].start = get_le32(p + MBRE_OFF_START);
        e[i].sectors = get_le32(p + MBRE_OFF_SIZE);
    }
}

static int mbr_has_signature(const uint8_t *sec)
{
    return sec[MBR_SIG_OFF] == MBR_SIG0 && sec[MBR_SIG_OFF + 1] == MBR_SIG1;
}

static int mbr_is_empty_entry(const struct mbr_entry *e)
{
    return e->type == MBR_TYPE_EMPTY || e->sectors == 0;
}

static int ebr_seen_before(struct scan *s, uint32_t depth, uint64_t lba)
{
    for (uint32_t i = 0; i < depth; i++)
        if (s->ebr_seen[i] == lba)
            return 1;
    s->ebr_seen[depth] = lba;
    return 0;
}

/* Add the logical partition described by EBR entry e (relative to ebr). */
static void ebr_add_logical(struct scan *s, const struct mbr_entry *e, uint64_t ebr, uint32_t ext_index,
                            uint64_t ext_start, uint64_t ext_end)
{
    uint64_t start = ebr + e->start;
    uint32_t index = s->next_logical++;
    struct partition *p;
    char detail[64];

    if (start <= ebr || start + e->sectors > ext_end) {
        snprintf(detail, sizeof(detail), "#%u start %llu sectors %u", (unsigned)index,
                 (unsigned long long)start, (unsigned)e->sectors);
        scan_error(s, "logical partition outside its extended partition", detail);
        return;
    }
    p = scan_add(s, index, start, e->sectors);
    if (p) {
        p->mbr_type = e->type;
        s->parent[s->n - 1] = (uint8_t)ext_index;
    }
}

/*
 * Follow the EBR chain of the extended partition ext (a primary entry). Each
 * EBR's entry 0 is a logical partition relative to the EBR; entry 1 links to
 * the next EBR relative to the start of the extended partition.
 */
static void ebr_walk(struct scan *s, uint32_t ext_index, uint64_t ext_start, uint64_t ext_sectors)
{
    uint64_t ebr = ext_start, ext_end = ext_start + ext_sectors;
    struct mbr_entry e[MBR_NENTRIES];

    for (uint32_t depth = 0;; depth++) {
        if (depth >= MBR_MAX_LOGICALS) {
            scan_error(s, "EBR chain too long", NULL);
            return;
        }
        if (ebr_seen_before(s, depth, ebr)) {
            scan_error(s, "EBR chain loops", NULL);
            return;
        }
        if (scan_read(s, ebr) < 0) {
            scan_error(s, "EBR unreadable", NULL);
            return;
        }
        if (!mbr_has_signature(s->sec)) {
            scan_error(s, "EBR has no 0x55AA signature", NULL);
            return;
        }
        mbr_parse_entries(s->sec, e);
        if (!mbr_is_empty_entry(&e[0]))
            ebr_add_logical(s, &e[0], ebr, ext_index, ext_start, ext_end);
        if (mbr_is_empty_entry(&e[1]) || !part_mbr_is_extended(e[1].type))
            return;
        ebr = ext_start + e[1].start;
        if (ebr >= ext_end) {
            scan_error(s, "EBR link outside the extended partition", NULL);
            return;
        }
    }
}

static int mbr_boot_flags_valid(const struct mbr_entry e[MBR_NENTRIES])
{
    for (int i = 0; i < MBR_NENTRIES; i++)
        if (e[i].status != MBR_BOOT_ACTIVE && e[i].status != MBR_BOOT_INACTIVE)
            return 0;
    return 1;
}

static int sector_is_zero(const uint8_t *sec, uint32_t len)
{
    for (uint32_t i = 0; i < len; i++)
        if (sec[i])
            return 0;
    return 1;
}

static int gpt_scan(struct scan *s);

/* Primary entries, then each extended container's logicals, then checks. */
static int mbr_scan_entries(struct scan *s, const struct mbr_entry e[MBR_NENTRIES])
{
    struct partition *p;

    s->d->scheme = PART_MBR;
    for (int i = 0; i < MBR_NENTRIES; i++) {
        if (mbr_is_empty_entry(&e[i]))
            continue;
        p = scan_add(s, (uint32_t)i + 1, e[i].start, e[i].sectors);
        if (p)
            p->mbr_type = e[i].type;
    }
    /* The disk's last LBA bounds everything; LBA 0 is the MBR itself. */
    scan_check_ranges(s, 1, s->d->sectors - 1, "partition outside the disk");
    s->next_logical = MBR_FIRST_LOGICAL;
    for (uint32_t i = 0, nprimary = s->n; i < nprimary; i++)
        if (!s->drop[i] && part_mbr_is_extended(s->parts[i].mbr_type))
            ebr_walk(s, s->parts[i].index, s->parts[i].start_lba, s->parts[i].sectors);
    scan_drop_overlaps(s, "overlapping partitions");
    return scan_commit(s);
}

static int mbr_scan(struct scan *s)
{
    struct mbr_entry e[MBR_NENTRIES];

    if (scan_read(s, 0) < 0) {
        scan_error(s, "sector 0 unreadable", NULL);
        return scan_commit(s);
    }
    if (!mbr_has_signature(s->sec)) {
        if (!sector_is_zero(s->sec, s->d->sector_size))
            scan_error(s, "no 0x55AA signature in sector 0", NULL);
        return scan_commit(s);
    }
    mbr_parse_entries(s->sec, e);
    if (!mbr_boot_flags_valid(e)) {
        scan_error(s, "MBR boot flag not 0x00/0x80 (not a partition table)", NULL);
        return scan_commit(s);
    }
    for (int i = 0; i < MBR_NENTRIES; i++)
        if (e[i].type == MBR_TYPE_GPT_PROT)
            return gpt_scan(s);
    return mbr_scan_entries(s, e);
}

/* ---------------------------------------------------------------- GPT */

static int gpt_entry_size_valid(uint32_t size)
{
    uint32_t units = size / GPT_ENTRY_MIN_SIZE;

    return size % GPT_ENTRY_MIN_SIZE == 0 && units && (units & (units - 1)) == 0 && size <= GPT_ENTRY_MAX_SIZE;
}

static uint32_t gpt_header_crc(const uint8_t *sec, uint32_t hdr_size)
{
    static const uint8_t zero_crc[4];
    uint32_t crc = crc32_update(CRC32_INIT, sec, GPT_OFF_HDR_CRC);

    crc = crc32_update(crc, zero_crc, sizeof(zero_crc));
    return crc32_update(crc, sec + GPT_OFF_HDR_CRC + 4, hdr_size - GPT_OFF_HDR_CRC - 4);
}

static void gpt_decode_header(const uint8_t *sec, struct gpt_header *h)
{
    h->my_lba = get_le64(sec + GPT_OFF_MY_LBA);
    h->alt_lba = get_le64(sec + GPT_OFF_ALT_LBA);
    h->first_usable = get_le64(sec + GPT_OFF_FIRST_USE);
    h->last_usable = get_le64(sec + GPT_OFF_LAST_USE);
    h->entries_lba = get_le64(sec + GPT_OFF_ENT_LBA);
    h->nentries = get_le32(sec + GPT_OFF_ENT_COUNT);
    h->entry_size = get_le32(sec + GPT_OFF_ENT_SIZE);
    h->entries_crc = get_le32(sec + GPT_OFF_ENT_CRC);
}

static uint64_t gpt_array_sectors(const struct scan *s, const struct gpt_header *h)
{
    uint64_t bytes = (uint64_t)h->nentries * h->entry_size;

    return (bytes + s->d->sector_size - 1) / s->d->sector_size;
}

/* Geometry checks of a decoded header read at lba; NULL or why it is bad. */
static const char *gpt_check_geometry(const struct scan *s, const struct gpt_header *h, uint64_t lba)
{
    uint64_t nsec = s->d->sectors, arr;

    if (h->my_lba != lba)
        return "MyLBA is not where the header was read";
    if (h->first_usable > h->last_usable || h->last_usable >= nsec || h->first_usable <= GPT_HEADER_LBA)
        return "usable LBA range outside the disk";
    if (lba >= h->first_usable && lba <= h->last_usable)
        return "header inside the usable LBA range";
    if (!gpt_entry_size_valid(h->entry_size))
        return "SizeOfPartitionEntry not 128*2^n (max 4096)";
    if ((uint64_t)h->nentries * h->entry_size > GPT_ARRAY_MAX_BYTES)
        return "partition entry array larger than 1 MiB";
    arr = gpt_array_sectors(s, h);
    if (h->entries_lba <= GPT_HEADER_LBA || h->entries_lba >= nsec || arr > nsec - h->entries_lba)
        return "partition entry array outside the disk";
    if (arr && h->entries_lba <= h->last_usable && h->entries_lba + arr > h->first_usable)
        return "partition entry array overlaps the usable LBAs";
    if (lba >= h->entries_lba && lba < h->entries_lba + arr)
        return "partition entry array overlaps the header";
    return NULL;
}

/* Field checks on the header in s->sec read from lba; NULL or why it is bad. */
static const char *gpt_check_header(const struct scan *s, uint64_t lba, struct gpt_header *h)
{
    uint32_t hdr_size = get_le32(s->sec + GPT_OFF_HDR_SIZE);

    if (memcmp(s->sec, GPT_SIG, GPT_SIG_LEN) != 0)
        return "no \"EFI PART\" signature";
    if (get_le32(s->sec + GPT_OFF_REVISION) >> 16 != GPT_REVISION_MAJOR)
        return "unsupported revision";
    if (hdr_size < GPT_HEADER_MIN_SIZE || hdr_size > s->d->sector_size)
        return "HeaderSize out of range";
    if (gpt_header_crc(s->sec, hdr_size) != get_le32(s->sec + GPT_OFF_HDR_CRC))
        return "header CRC32 mismatch";
    gpt_decode_header(s->sec, h);
    return gpt_check_geometry(s, h, lba);
}

/* Read and check the GPT header at lba. Returns 0, or E_CORRUPT (logged). */
static int gpt_read_header(struct scan *s, uint64_t lba, struct gpt_header *h)
{
    const char *why;

    if (scan_read(s, lba) < 0)
        why = "unreadable";
    else
        why = gpt_check_header(s, lba, h);
    if (!why)
        return 0;
    log_warn("%s: GPT header at LBA %llu: %s", s->d->name, (unsigned long long)lba, why);
    return E_CORRUPT;
}

static int guid_is_zero(const uint8_t *g)
{
    return sector_is_zero(g, 16);
}

/* Convert a PartitionName (UTF-16LE) to ASCII, '?' for anything else. */
static void gpt_name_to_ascii(const uint8_t *utf16, char *out)
{
    int o = 0;

    for (int i = 0; i < GPT_NAME_UNITS; i++) {
        uint16_t c = get_le16(utf16 + 2 * i);
        if (c == 0)
            break;
        if (c >= UTF16_LOW_SURROGATE_MIN && c <= UTF16_LOW_SURROGATE_MAX)
            continue; /* second half of a pair already shown as '?' */
        out[o++] = (c >= ASCII_PRINT_MIN && c <= ASCII_PRINT_MAX) ? (char)c : '?';
    }
    out[o] = '\0';
}

/*
 * Record entry number index (1-based) if it is in use. Nothing is judged
 * here: the array's CRC is not known yet. An entry ending before it starts
 * gets 0 sectors, which scan_check_ranges() rejects.
 */
static void gpt_add_entry(struct scan *s, uint32_t index, const uint8_t *e)
{
    uint64_t first = get_le64(e + GPE_OFF_FIRST), last = get_le64(e + GPE_OFF_LAST);
    struct partition *p;

    if (guid_is_zero(e + GPE_OFF_TYPE))
        return;
    p = scan_add(s, index, first, last >= first ? last - first + 1 : 0);
    if (!p)
        return;
    memcpy(p->type_guid, e + GPE_OFF_TYPE, 16);
    memcpy(p->uniq_guid, e + GPE_OFF_UNIQ, 16);
    gpt_name_to_ascii(e + GPE_OFF_NAME, p->name);
}

/*
 * Stream h's entry array: CRC over nentries * entry_size bytes, candidates
 * for every used entry. Entries start on 128-byte boundaries, so the 128
 * bytes hv86 reads of each lie inside one sector. Returns 0, E_IO, E_CORRUPT.
 */
static int gpt_read_entries(struct scan *s, const struct gpt_header *h)
{
    uint32_t ss = s->d->sector_size, e = 0;
    uint64_t total = (uint64_t)h->nentries * h->entry_size, nsec = gpt_array_sectors(s, h);
    uint32_t crc = CRC32_INIT;

    s->n = 0;
    s->overflow = 0;
    for (uint64_t k = 0; k < nsec; k++) {
        uint64_t pos = k * ss;
        uint32_t len = (uint32_t)MIN((uint64_t)ss, total - pos);
        if (scan_read(s, h->entries_lba + k) < 0) {
            log_warn("%s: GPT entry array sector %llu unreadable", s->d->name,
                     (unsigned long long)(h->entries_lba + k));
            return E_IO;
        }
        crc = crc32_update(crc, s->sec, len);
        for (; e < h->nentries && (uint64_t)e * h->entry_size < pos + len; e++)
            gpt_add_entry(s, e + 1, s->sec + ((uint64_t)e * h->entry_size - pos));
    }
    if (crc != h->entries_crc) {
        log_warn("%s: GPT entry array at LBA %llu: CRC32 %08x, header says %08x", s->d->name,
                 (unsigned long long)h->entries_lba, (unsigned)crc, (unsigned)h->entries_crc);
        return E_CORRUPT;
    }
    return 0;
}

/* Header at lba and its entries, both good? Returns 0 or E_CORRUPT/E_IO. */
static int gpt_try(struct scan *s, uint64_t lba, struct gpt_header *h)
{
    int r = gpt_read_header(s, lba, h);

    return r < 0 ? r : gpt_read_entries(s, h);
}

/* Checks on the entries of the chosen header; error: why it is suspect. */
static int gpt_finish(struct scan *s, const struct gpt_header *h, const char *error)
{
    if (error)
        scan_error(s, error, NULL);
    scan_check_ranges(s, h->first_usable, h->last_usable, "partition outside the usable LBAs");
    scan_drop_overlaps(s, "overlapping partitions");
    return scan_commit(s);
}

static int gpt_scan(struct scan *s)
{
    struct gpt_header h, b;
    int primary_hdr_ok;

    s->d->scheme = PART_GPT;
    primary_hdr_ok = gpt_read_header(s, GPT_HEADER_LBA, &h) == 0;
    if (primary_hdr_ok && gpt_read_entries(s, &h) == 0) {
        const char *backup_error = NULL;
        if (gpt_read_header(s, h.alt_lba, &b) < 0)
            backup_error = "GPT backup header invalid (primary used)";
        return gpt_finish(s, &h, backup_error);
    }
    /* The backup: where the primary says, else (or if that fails) the last LBA. */
    if ((primary_hdr_ok && gpt_try(s, h.alt_lba, &b) == 0) ||
        ((!primary_hdr_ok || h.alt_lba != s->d->sectors - 1) && gpt_try(s, s->d->sectors - 1, &b) == 0))
        return gpt_finish(s, &b, primary_hdr_ok ? "GPT primary partition entries invalid, backup used"
                                                : "GPT primary header invalid, backup used");
    s->n = 0;
    s->overflow = 0;
    scan_error(s, "GPT primary and backup both invalid", NULL);
    return scan_commit(s);
}

/* ---------------------------------------------------------------- entry points */

static int sector_size_valid(uint32_t ss)
{
    return ss >= SECTOR_MIN && ss <= SECTOR_MAX && (ss & (ss - 1)) == 0;
}

int part_scan(struct disk *d)
{
    struct scan *s;
    int r;

    part_release(d);
    if (!sector_size_valid(d->sector_size) || !d->read) {
        d->table_error = "unsupported sector size";
        return E_INVAL;
    }
    s = kzalloc(sizeof(*s));
    if (!s)
        goto err_nomem;
    s->d = d;
    s->sec = kzalloc(d->sector_size);
    if (!s->sec)
        goto err_free_scan;
    r = mbr_scan(s);
    kfree(s->sec);
    kfree(s);
    if (r < 0)
        goto err_nomem;
    return 0;

err_free_scan:
    kfree(s);
err_nomem:
    part_release(d);
    d->table_error = "out of memory while reading the partition table";
    log_warn("%s: %s", d->name, d->table_error);
    return E_NOMEM;
}

void part_release(struct disk *d)
{
    if (d->parts)
        kfree(d->parts);
    d->parts = NULL;
    d->nparts = 0;
    d->scheme = PART_NONE;
    d->table_error = NULL;
}

char *part_guid_format(const uint8_t g[16], char *out)
{
    snprintf(out, PART_GUID_STR_LEN, "%08X-%04X-%04X-%02X%02X-%02X%02X%02X%02X%02X%02X",
             (unsigned)get_le32(g), (unsigned)get_le16(g + 4), (unsigned)get_le16(g + 6), g[8], g[9],
             g[10], g[11], g[12], g[13], g[14], g[15]);
    return out;
}
