/* Sequential read-ahead bookkeeping (vmm/diskra.h). */
#include "vmm/diskra.h"

void diskra_init(struct diskra *ra, uint64_t disk_sectors)
{
    *ra = (struct diskra){ .disk_sectors = disk_sectors };
}

/* Whether [a, a + an) and [b, b + bn) share a sector. */
static bool overlap(uint64_t a, uint64_t an, uint64_t b, uint64_t bn) { return a < b + bn && b < a + an; }

/* Whether the valid window holds all of [sector, sector + count). */
static bool holds(const struct diskra *ra, uint64_t sector, uint64_t count)
{
    return ra->valid && sector >= ra->start && sector + count <= ra->start + ra->count;
}

bool diskra_lookup(struct diskra *ra, uint64_t sector, uint32_t count, uint32_t *off)
{
    if (!count || !holds(ra, sector, count))
        return false;
    *off = (uint32_t)(sector - ra->start);
    ra->st.hits++;
    ra->st.sectors_hit += count;
    return true;
}

bool diskra_plan(struct diskra *ra, uint64_t sector, uint32_t count, uint64_t *start, uint32_t *n)
{
    bool sequential = ra->have_next && sector == ra->next;
    uint64_t end = sector + count;
    ra->next = end;
    ra->have_next = true;
    if (!sequential || ra->filling || end >= ra->disk_sectors)
        return false;
    uint64_t ahead = ra->disk_sectors - end;
    if (ahead > DISKRA_SECTORS / 2)
        ahead = DISKRA_SECTORS / 2;
    if (holds(ra, end, ahead))
        return false;
    *start = end;
    *n = (uint32_t)(ra->disk_sectors - end < DISKRA_SECTORS ? ra->disk_sectors - end : DISKRA_SECTORS);
    return true;
}

void diskra_fill_begin(struct diskra *ra, uint64_t start, uint32_t n)
{
    ra->valid = false;
    ra->filling = true;
    ra->fill_stale = false;
    ra->fill_start = start;
    ra->fill_count = n;
    ra->st.fills++;
    ra->st.sectors_filled += n;
}

bool diskra_fill_end(struct diskra *ra, int rc)
{
    ra->filling = false;
    if (rc || ra->fill_stale)
        return false;
    ra->start = ra->fill_start;
    ra->count = ra->fill_count;
    ra->valid = true;
    return true;
}

void diskra_write(struct diskra *ra, uint64_t sector, uint32_t count)
{
    if (ra->valid && overlap(sector, count, ra->start, ra->count)) {
        ra->valid = false;
        ra->st.stale++;
    }
    if (ra->filling && !ra->fill_stale && overlap(sector, count, ra->fill_start, ra->fill_count)) {
        ra->fill_stale = true;
        ra->st.stale++;
    }
}
