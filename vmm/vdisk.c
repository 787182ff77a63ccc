/*
 * A VM's disks (vmm/vdisk.h): `disk=` parsing, who holds which sectors,
 * and the backend a guest disk device uses.
 */
#include "vmm/vdisk.h"
#include "kernel/kernel.h"
#include "vmm/vm.h"
#include "vmm/redo.h"
#include "vmm/vdiskio.h"
#include "kernel/paging.h"
#include "mgmt/cmd.h"

/* Bytes of s up to the next ',' or its end. */
static size_t field_len(const char *s)
{
    size_t n = 0;
    while (s[n] && s[n] != ',')
        n++;
    return n;
}

const char *vdisk_mode_name(enum vdisk_mode m)
{
    static const char *const names[] = { "persistent", "ro", "nonpersistent", "undoable" };
    return names[m];
}

/* Whether a VM holding d may change the partition's sectors. */
static bool writes_partition(const struct vdisk *d) { return d->mode == VDISK_PERSISTENT || d->mode == VDISK_UNDOABLE; }

/* One `key=value` field of a disk= value: mode or type. */
static int parse_field(const char *f, size_t n, struct vdisk *d, char *err, size_t errlen)
{
    static const struct { const char *text; int mode, type; } vals[] = {
        { "mode=persistent", VDISK_PERSISTENT, -1 }, { "mode=ro", VDISK_RO, -1 },
        { "mode=nonpersistent", VDISK_NONPERSISTENT, -1 }, { "mode=undoable", VDISK_UNDOABLE, -1 },
        { "type=virtio", -1, VDISK_VIRTIO }, { "type=ide", -1, VDISK_IDE },
    };
    if ((n == 12 && !strncmp(f, "readahead=on", n)) || (n == 13 && !strncmp(f, "readahead=off", n))) {
        d->readahead = n == 12;
        return 0;
    }
    if (n > 5 && !strncmp(f, "redo=", 5)) {
        char size[24];
        uint64_t bytes;
        snprintf(size, sizeof(size), "%.*s", (int)(n - 5), f + 5);
        if (n - 5 >= sizeof(size) || cmd_parse_size(size, &bytes) || bytes < REDO_CHUNK_BYTES) {
            snprintf(err, errlen, "disk option '%.*s' is not a size of at least 4K (e.g. redo=64M)", (int)n, f);
            return E_INVAL;
        }
        d->redo_cap = bytes;
        return 0;
    }
    for (unsigned i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
        if (strlen(vals[i].text) == n && !strncmp(f, vals[i].text, n)) {
            if (vals[i].mode >= 0)
                d->mode = (enum vdisk_mode)vals[i].mode;
            if (vals[i].type >= 0)
                d->type = (enum vdisk_type)vals[i].type;
            return 0;
        }
    }
    snprintf(err, errlen, "unknown disk option '%.*s' (mode=persistent|ro|nonpersistent|undoable, "
             "redo=SIZE, type=virtio|ide, readahead=on|off)", (int)n, f);
    return E_INVAL;
}

int vdisk_parse(const char *value, struct vdisk *d, char *err, size_t errlen)
{
    memset(d, 0, sizeof(*d));
    d->redo_cap = VDISK_REDO_DEFAULT;
    size_t n = field_len(value);
    if (n == 0 || n >= VDISK_SPEC_MAX) {
        snprintf(err, errlen, "disk= needs a disk or partition as `disks` names it (ata0, ata0p2)");
        return E_INVAL;
    }
    memcpy(d->spec, value, n);
    for (const char *f = value + n; *f == ',';) {
        size_t len = field_len(f + 1);
        int rc = parse_field(f + 1, len, d, err, errlen);
        if (rc)
            return rc;
        f += 1 + len;
    }
    int rc = disk_lookup(d->spec, &d->disk, &d->part);
    if (rc) {
        snprintf(err, errlen, "no disk or partition '%s' (see `disks`)", d->spec);
        return rc;
    }
    d->first = d->part ? d->part->start_lba : 0;
    d->sectors = d->part ? d->part->sectors : d->disk->sectors;
    if (d->disk->sector_size != 512) {
        snprintf(err, errlen, "%s has %u-byte sectors; guest disks need 512", d->spec, d->disk->sector_size);
        return E_INVAL;
    }
    return 0;
}

/* Two holds that cannot coexist: the same sectors, and one of them writes. */
static bool clash(const struct vdisk *a, const struct vdisk *b)
{
    bool overlap = a->disk == b->disk && a->first < b->first + b->sectors && b->first < a->first + a->sectors;
    return overlap && (writes_partition(a) || writes_partition(b));
}

const char *vdisk_conflict(const struct vm *vm, const struct vdisk *d, unsigned index)
{
    for (unsigned j = 0; j < index; j++)
        if (clash(&vm->disks[j], d))
            return vm->name;
    for (int i = 0; i < VM_MAX; i++) {
        const struct vm *o = vms[i];
        for (unsigned j = 0; o && o != vm && j < o->ndisks; j++)
            if (clash(&o->disks[j], d))
                return o->name;
    }
    return NULL;
}

/* The sectors of chunk c that lie inside the disk. */
static uint32_t chunk_sectors(const struct vdisk *d, uint32_t c)
{
    uint64_t first = (uint64_t)c * REDO_CHUNK_SECTORS;
    return (uint32_t)MIN((uint64_t)REDO_CHUNK_SECTORS, d->sectors - first);
}

int vdisk_read(void *opaque, uint64_t sector, uint32_t count, void *buf)
{
    struct vdisk *d = opaque;
    int rc = disk_part_read(d->disk, d->part, sector, count, buf);
    if (rc || !d->redo || !d->redo->used)
        return rc;
    /* What the log holds replaces what the partition says. */
    for (uint64_t s = sector; s < sector + count;) {
        uint32_t c = (uint32_t)(s / REDO_CHUNK_SECTORS), hpa = redo_find(d->redo, c);
        uint64_t end = MIN(sector + count, ((uint64_t)c + 1) * REDO_CHUNK_SECTORS);
        if (hpa)
            kmap_copy(hpa, (uint32_t)(s % REDO_CHUNK_SECTORS) * 512, (uint8_t *)buf + (s - sector) * 512,
                      (uint32_t)(end - s) * 512, KMAP_READ);
        s = end;
    }
    return 0;
}

/* Write count sectors at sector into the redo log, chunk by chunk; a chunk
 * the log does not hold yet starts as the partition's (read first unless
 * the write covers it whole). E_NOSPC when the log is full. */
static int redo_write(struct vdisk *d, uint64_t sector, uint32_t count, const uint8_t *buf)
{
    if (sector > d->sectors || count > d->sectors - sector)
        return E_RANGE;
    for (uint64_t s = sector; s < sector + count;) {
        uint32_t c = (uint32_t)(s / REDO_CHUNK_SECTORS), hpa = redo_find(d->redo, c);
        uint64_t end = MIN(sector + count, ((uint64_t)c + 1) * REDO_CHUNK_SECTORS);
        if (!hpa) {
            int rc = redo_add(d->redo, c, &hpa);
            if (rc)
                return rc;
            uint32_t n = chunk_sectors(d, c);
            if (end - s < n) {
                rc = disk_part_read(d->disk, d->part, (uint64_t)c * REDO_CHUNK_SECTORS, n, d->redo->buf);
                if (rc)
                    return rc;
                kmap_copy(hpa, 0, d->redo->buf, n * 512, KMAP_WRITE);
            }
        }
        kmap_copy(hpa, (uint32_t)(s % REDO_CHUNK_SECTORS) * 512, (void *)(buf + (s - sector) * 512),
                  (uint32_t)(end - s) * 512, KMAP_WRITE);
        s = end;
    }
    return 0;
}

int vdisk_write(void *opaque, uint64_t sector, uint32_t count, const void *buf, bool cached)
{
    struct vdisk *d = opaque;
    if (d->mode == VDISK_RO)
        return E_INVAL;
    if (d->redo)
        return redo_write(d, sector, count, buf);
    int rc = cached ? disk_part_write_cached(d->disk, d->part, sector, count, buf) /* the guest flushes */
                    : disk_part_write(d->disk, d->part, sector, count, buf);
    vdiskio_wrote(d, sector, count); /* even after an error: some of it may be on the drive */
    return rc;
}

int vdisk_rw_sg(void *opaque, uint64_t sector, uint32_t count, const struct dma_seg *sg, unsigned n, bool write,
                bool cached)
{
    struct vdisk *d = opaque;
    if (d->redo || (write && d->mode == VDISK_RO))
        return E_NOTSUP;
    int rc = disk_part_rw_sg(d->disk, d->part, sector, count, sg, n, write, !cached);
    if (write)
        vdiskio_wrote(d, sector, count); /* before the guest hears of it (vmm/diskra.h, Coherence) */
    return rc;
}

/* A guest's FLUSH: a persistent disk's writes to the medium (the host
 * disk's FLUSH CACHE) before the guest hears of it. A redo log needs none:
 * power-off loses it by design, and `vm commit` writes through. */
int vdisk_flush(void *opaque)
{
    struct vdisk *d = opaque;
    return d->mode == VDISK_PERSISTENT ? disk_flush(d->disk) : 0;
}

int vdisk_open(struct vdisk *d)
{
    if (d->mode != VDISK_NONPERSISTENT && d->mode != VDISK_UNDOABLE)
        return 0;
    d->redo = redo_create(d->redo_cap);
    return d->redo ? 0 : E_NOMEM;
}

void vdisk_close(struct vdisk *d)
{
    redo_free(d->redo);
    d->redo = NULL;
}

void vdisk_power_on(struct vdisk *d)
{
    if (d->mode == VDISK_NONPERSISTENT)
        redo_discard(d->redo);
}

/* One chunk of the log to the partition (commit). */
static int commit_chunk(uint32_t c, uint32_t hpa, void *ctx)
{
    struct vdisk *d = ctx;
    uint32_t n = chunk_sectors(d, c);
    kmap_copy(hpa, 0, d->redo->buf, n * 512, KMAP_READ);
    return disk_part_write(d->disk, d->part, (uint64_t)c * REDO_CHUNK_SECTORS, n, d->redo->buf);
}

int vdisk_commit(struct vdisk *d)
{
    if (d->mode != VDISK_UNDOABLE)
        return E_INVAL;
    int rc = redo_each(d->redo, commit_chunk, d);
    if (!rc)
        redo_discard(d->redo);
    return rc;
}

int vdisk_discard(struct vdisk *d)
{
    if (d->mode != VDISK_UNDOABLE)
        return E_INVAL;
    redo_discard(d->redo);
    return 0;
}

void vdisk_holders(const struct disk *d, const struct partition *part, char *buf, size_t len)
{
    size_t n = 0;
    buf[0] = 0;
    for (int i = 0; i < VM_MAX; i++) {
        const struct vm *vm = vms[i];
        for (unsigned j = 0; vm && j < vm->ndisks && n + 1 < len; j++) {
            const struct vdisk *v = &vm->disks[j];
            if (v->disk == d && v->part == part)
                n += (size_t)snprintf(buf + n, len - n, "%s%s (%s)", n ? ", " : "held by ", vm->name,
                                      vdisk_mode_name(v->mode));
        }
    }
}
