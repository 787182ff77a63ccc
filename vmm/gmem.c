/* Guest-physical memory (contract in vmm/gmem.h). */
#include "vmm/gmem.h"
#include "kernel/heap.h"
#include "kernel/kernel.h"
#include "kernel/layout.h"
#include "kernel/paging.h"
#include "kernel/pmm.h"
#include "kernel/x86.h"

static void zero_frame(uint32_t hpa)
{
    void *p = kmap(hpa);
    KASSERT(p);
    memset(p, 0, PAGE_SIZE);
    kunmap(p);
}

int gmem_init(struct gmem *m, uint32_t bytes)
{
    uint32_t npages = ALIGN_UP(bytes, PAGE_SIZE) / PAGE_SIZE;
    *m = (struct gmem){ 0 };
    m->hpa = kzalloc(npages * sizeof(uint32_t));
    if (!m->hpa)
        return E_NOMEM;
    for (m->npages = 0; m->npages < npages; m->npages++) {
        uint32_t hpa;
        if (frame_alloc_exact(ZONE_HIGH, 1, &hpa)) { /* the direct map is for monitor state */
            gmem_free(m);
            return E_NOMEM;
        }
        zero_frame(hpa);
        m->hpa[m->npages] = hpa;
    }
    return 0;
}

void gmem_free(struct gmem *m)
{
    for (uint32_t i = 0; i < m->npages; i++)
        frame_free(m->hpa[i], 1);
    kfree(m->hpa);
    *m = (struct gmem){ 0 };
}

int gmem_gpa_to_hpa(const struct gmem *m, uint32_t gpa, uint32_t *hpa)
{
    if ((gpa >> PAGE_SHIFT) >= m->npages)
        return E_RANGE;
    *hpa = m->hpa[gpa >> PAGE_SHIFT] | (gpa & (PAGE_SIZE - 1));
    return 0;
}

/* Walk [gpa, gpa+len) page by page through kmap windows (KMAP_WRITE: to
 * the guest, KMAP_READ: from it, KMAP_ZERO). */
static int copy(const struct gmem *m, uint32_t gpa, void *buf, uint32_t len, enum kmap_dir dir)
{
    if ((uint64_t)gpa + len > (uint64_t)m->npages * PAGE_SIZE)
        return E_RANGE;
    uint8_t *p = buf;
    while (len) {
        uint32_t off = gpa & (PAGE_SIZE - 1), n = MIN(len, PAGE_SIZE - off);
        kmap_copy(m->hpa[gpa >> PAGE_SHIFT], off, p, n, dir);
        gpa += n;
        len -= n;
        if (p)
            p += n;
    }
    return 0;
}

int gmem_read(const struct gmem *m, uint32_t gpa, void *buf, uint32_t len) { return copy(m, gpa, buf, len, KMAP_READ); }
int gmem_write(const struct gmem *m, uint32_t gpa, const void *buf, uint32_t len) { return copy(m, gpa, (void *)buf, len, KMAP_WRITE); }
int gmem_zero(const struct gmem *m, uint32_t gpa, uint32_t len) { return copy(m, gpa, NULL, len, KMAP_ZERO); }
