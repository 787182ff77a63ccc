/*
 * A VM's disks (vmm/vdisk.h): `disk=` parsing, who holds which sectors,
 * and the backend a guest disk device uses.
 */
#include "vmm/vdisk.h"
#include "kernel/kernel.h"
#include "vmm/vm.h"

/* Bytes of s up to the next ',' or its end. */
static size_t field_len(const char *s)
{
    size_t n = 0;
    while (s[n] && s[n] != ',')
        n++;
    return n;
}

const char *vdisk_mode_name(enum vdisk_mode m) { return m == VDISK_RO ? "ro" : "persistent"; }

/* One `key=value` field of a disk= value: mode or type. */
static int parse_field(const char *f, size_t n, struct vdisk *d, char *err, size_t errlen)
{
    static const struct { const char *text; int mode, type; } vals[] = {
        { "mode=persistent", VDISK_PERSISTENT, -1 }, { "mode=ro", VDISK_RO, -1 }, { "type=virtio", -1, VDISK_VIRTIO },
    };
    for (unsigned i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
        if (strlen(vals[i].text) == n && !strncmp(f, vals[i].text, n)) {
            if (vals[i].mode >= 0)
                d->mode = (enum vdisk_mode)vals[i].mode;
            if (vals[i].type >= 0)
                d->type = (enum vdisk_type)vals[i].type;
            return 0;
        }
    }
    if ((n == 18 && !strncmp(f, "mode=nonpersistent", n)) || (n == 13 && !strncmp(f, "mode=undoable", n)) ||
        (n == 8 && !strncmp(f, "type=ide", n)))
        snprintf(err, errlen, "disk option '%.*s' is not supported yet (mode=persistent|ro, type=virtio)", (int)n, f);
    else
        snprintf(err, errlen, "unknown disk option '%.*s' (mode=persistent|ro, type=virtio)", (int)n, f);
    return E_INVAL;
}

int vdisk_parse(const char *value, struct vdisk *d, char *err, size_t errlen)
{
    memset(d, 0, sizeof(*d));
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
    return overlap && (a->mode != VDISK_RO || b->mode != VDISK_RO);
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

int vdisk_read(void *opaque, uint64_t sector, uint32_t count, void *buf)
{
    struct vdisk *d = opaque;
    return disk_part_read(d->disk, d->part, sector, count, buf);
}

int vdisk_write(void *opaque, uint64_t sector, uint32_t count, const void *buf)
{
    struct vdisk *d = opaque;
    if (d->mode == VDISK_RO)
        return E_INVAL;
    return disk_part_write(d->disk, d->part, sector, count, buf);
}

/* Every write already ended with the disk's FLUSH CACHE (drivers/ata.c
 * ata_rw): what a guest was told is written is on the platter, so a
 * guest's FLUSH has nothing left to wait for. */
int vdisk_flush(void *opaque) { return 0; }

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
