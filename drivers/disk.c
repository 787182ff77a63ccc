/*
 * Disk registry: a fixed table of the host disks found at boot, and the text
 * listing behind the console's `disks` command. Disks are only added (at boot,
 * by one thread), never removed, so readers need no lock: a slot is filled
 * before the count that publishes it is raised.
 */
#include "drivers/disk.h"
#include "drivers/part.h"
#include "kernel/kernel.h"

static struct disk *disk_table[DISK_MAX_DISKS];
static int disk_table_count;

static const char *const scheme_names[] = {
    [PART_NONE] = "no partition table",
    [PART_MBR] = "MBR",
    [PART_GPT] = "GPT",
};

int disk_register(struct disk *d)
{
    int r;

    if (disk_table_count >= DISK_MAX_DISKS) {
        log_warn("%s: not registered, already %d disks", d->name, DISK_MAX_DISKS);
        return E_RANGE;
    }
    r = part_scan(d);
    disk_table[disk_table_count] = d;
    disk_table_count++;
    log_info("%s: %llu sectors, %s, %u partitions%s%s", d->name, (unsigned long long)d->sectors,
             scheme_names[d->scheme], (unsigned)d->nparts, d->table_error ? ", table error: " : "",
             d->table_error ? d->table_error : "");
    return r == E_NOMEM ? E_NOMEM : 0;
}

int disk_count(void)
{
    return disk_table_count;
}

struct disk *disk_get(int i)
{
    if (i < 0 || i >= disk_table_count)
        return NULL;
    return disk_table[i];
}

/* "8.0 MiB" or "512 KiB": a human size for sectors of ss bytes, rounded down. */
static void disk_format_size(char *buf, size_t len, uint64_t sectors, uint32_t ss)
{
    uint64_t bytes = sectors * ss;

    if (bytes < DISK_MIB)
        snprintf(buf, len, "%llu KiB", (unsigned long long)(bytes / DISK_KIB));
    else
        snprintf(buf, len, "%llu.%llu MiB", (unsigned long long)(bytes / DISK_MIB),
                 (unsigned long long)(bytes % DISK_MIB * 10 / DISK_MIB));
}

static void disk_format_part(char *line, size_t len, int di, const struct disk *d, const struct partition *p)
{
    char size[24], type[PART_GUID_STR_LEN];

    disk_format_size(size, sizeof(size), p->sectors, d->sector_size);
    if (d->scheme == PART_GPT)
        part_guid_format(p->type_guid, type);
    else
        snprintf(type, sizeof(type), "0x%02x", p->mbr_type);
    snprintf(line, len, "  part %d %u start %llu sectors %llu (%s) type %s name \"%s\"", di,
             (unsigned)p->index, (unsigned long long)p->start_lba, (unsigned long long)p->sectors, size,
             type, p->name);
}

static void disk_format_head(char *line, size_t len, int di, const struct disk *d)
{
    char size[24];

    disk_format_size(size, sizeof(size), d->sectors, d->sector_size);
    snprintf(line, len, "disk %d %s \"%s\" %llu sectors of %u bytes (%s) %s, %u partitions", di, d->name,
             d->model, (unsigned long long)d->sectors, (unsigned)d->sector_size, size,
             scheme_names[d->scheme], (unsigned)d->nparts);
}

static disk_holder_fn holder_fn;

void disk_set_holder_fn(disk_holder_fn fn) { holder_fn = fn; }

/* Append "  WHO" to line if the holder function names a user of d/part. */
static void disk_append_holder(char *line, size_t len, const struct disk *d, const struct partition *part)
{
    char who[64] = "";
    size_t n = strlen(line);
    if (holder_fn)
        holder_fn(d, part, who, sizeof(who));
    if (who[0] && n + 2 < len)
        snprintf(line + n, len - n, "  %s", who);
}

int disk_format_lines(void (*emit)(const char *line, void *ctx), void *ctx)
{
    char line[DISK_LINE_MAX];
    int lines = 0;

    for (int di = 0; di < disk_count(); di++) {
        const struct disk *d = disk_get(di);
        disk_format_head(line, sizeof(line), di, d);
        disk_append_holder(line, sizeof(line), d, NULL);
        emit(line, ctx), lines++;
        for (uint32_t pi = 0; pi < d->nparts; pi++) {
            disk_format_part(line, sizeof(line), di, d, &d->parts[pi]);
            disk_append_holder(line, sizeof(line), d, &d->parts[pi]);
            emit(line, ctx), lines++;
        }
        if (d->table_error) {
            snprintf(line, sizeof(line), "  table error %d: %s", di, d->table_error);
            emit(line, ctx), lines++;
        }
    }
    return lines;
}

/* Translate a partition-relative range to the disk; E_RANGE if it leaves p. */
static int disk_part_range(const struct disk *d, const struct partition *p, uint64_t *lba, uint32_t count)
{
    uint64_t start = p ? p->start_lba : 0, size = p ? p->sectors : d->sectors;

    if (*lba > size || count > size - *lba)
        return E_RANGE;
    *lba += start;
    return 0;
}

int disk_part_read(struct disk *d, const struct partition *p, uint64_t lba, uint32_t count, void *buf)
{
    int r = disk_part_range(d, p, &lba, count);

    return r < 0 ? r : d->read(d, lba, count, buf);
}

static int part_write(struct disk *d, const struct partition *p, uint64_t lba, uint32_t count, const void *buf,
                      bool flush)
{
    int r = disk_part_range(d, p, &lba, count);

    if (r < 0)
        return r;
    return d->write ? d->write(d, lba, count, buf, flush) : E_INVAL;
}

int disk_part_write(struct disk *d, const struct partition *p, uint64_t lba, uint32_t count, const void *buf)
{
    return part_write(d, p, lba, count, buf, true);
}

int disk_part_write_cached(struct disk *d, const struct partition *p, uint64_t lba, uint32_t count,
                           const void *buf)
{
    return part_write(d, p, lba, count, buf, false);
}

int disk_part_rw_sg(struct disk *d, const struct partition *p, uint64_t lba, uint32_t count,
                    const struct dma_seg *sg, unsigned n, bool write, bool flush)
{
    int r = disk_part_range(d, p, &lba, count);

    if (r < 0)
        return r;
    return d->rw_sg ? d->rw_sg(d, lba, count, sg, n, write, flush) : E_NOTSUP;
}

int disk_flush(struct disk *d)
{
    return d->flush ? d->flush(d) : E_INVAL;
}

/* Parse a decimal partition number after 'p'; 0 if malformed. */
static uint32_t disk_parse_index(const char *s)
{
    uint32_t v = 0;

    if (!*s)
        return 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9' || v > DISK_MAX_PARTS * 1000u)
            return 0;
        v = v * 10 + (uint32_t)(*s - '0');
    }
    return v;
}

static const struct partition *disk_find_part(const struct disk *d, uint32_t index)
{
    for (uint32_t i = 0; i < d->nparts; i++)
        if (d->parts[i].index == index)
            return &d->parts[i];
    return NULL;
}

int disk_lookup(const char *spec, struct disk **disk, const struct partition **part)
{
    for (int i = 0; i < disk_table_count; i++) {
        struct disk *d = disk_table[i];
        size_t n = strlen(d->name);
        uint32_t index;
        if (strncmp(spec, d->name, n) != 0 || (spec[n] != '\0' && spec[n] != 'p'))
            continue;
        *disk = d;
        if (part)
            *part = NULL;
        if (spec[n] == '\0')
            return 0;
        index = disk_parse_index(spec + n + 1);
        if (!index || !part)
            return E_INVAL;
        *part = disk_find_part(d, index);
        return *part ? 0 : E_NOENT;
    }
    return E_NOENT;
}
