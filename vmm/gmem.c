/* Guest-physical memory (contract in vmm/gmem.h; page sharing: vmm/pshare.h). */
#include "vmm/gmem.h"
#include "kernel/heap.h"
#include "kernel/kernel.h"
#include "kernel/layout.h"
#include "kernel/paging.h"
#include "kernel/pmm.h"
#include "kernel/spinlock.h"
#include "vmm/pshare.h"

/* Interrupts off around the request queue (the scanner thread adds, the
 * VM's thread takes) and around kmap_cached. */
static spinlock_t req_lock = SPINLOCK_INIT("gmem share queue");

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
    for (uint32_t i = 0; i < m->npages; i++) {
        if (m->hpa[i] & GMEM_SHARED)
            pshare_put(m->hpa[i] & PAGE_MASK);
        else
            frame_free(m->hpa[i], 1);
    }
    kfree(m->hpa);
    *m = (struct gmem){ 0 };
}

int gmem_gpa_to_hpa(const struct gmem *m, uint32_t gpa, uint32_t *hpa)
{
    if ((gpa >> PAGE_SHIFT) >= m->npages)
        return E_RANGE;
    uint32_t e = m->hpa[gpa >> PAGE_SHIFT];
    *hpa = (e & PAGE_MASK) | (gpa & (PAGE_SIZE - 1));
    return (int)(e & GMEM_SHARED);
}

/* Give page pfn a private frame (copy-on-write): 0 or E_NOMEM. */
static int unshare(struct gmem *m, uint32_t pfn)
{
    uint32_t e = m->hpa[pfn], priv;
    if (!(e & GMEM_SHARED))
        return 0;
    if (pshare_unshare(e & PAGE_MASK, &priv))
        return E_NOMEM;
    m->hpa[pfn] = priv;
    m->nshared--;
    if (m->unshared)
        m->unshared(m->ctx, pfn << PAGE_SHIFT, e & PAGE_MASK);
    return 0;
}

int gmem_gpa_to_hpa_w(struct gmem *m, uint32_t gpa, uint32_t *hpa)
{
    if ((gpa >> PAGE_SHIFT) >= m->npages)
        return E_RANGE;
    if (unshare(m, gpa >> PAGE_SHIFT))
        return E_NOMEM;
    *hpa = m->hpa[gpa >> PAGE_SHIFT] | (gpa & (PAGE_SIZE - 1));
    return 0;
}

/* Walk [gpa, gpa+len) page by page through kmap windows (KMAP_WRITE: to
 * the guest, KMAP_READ: from it, KMAP_ZERO); writes unshare each page. */
static int copy(struct gmem *m, uint32_t gpa, void *buf, uint32_t len, enum kmap_dir dir)
{
    if ((uint64_t)gpa + len > (uint64_t)m->npages * PAGE_SIZE)
        return E_RANGE;
    uint8_t *p = buf;
    while (len) {
        uint32_t off = gpa & (PAGE_SIZE - 1), n = MIN(len, PAGE_SIZE - off);
        if (dir != KMAP_READ && unshare(m, gpa >> PAGE_SHIFT))
            return E_NOMEM;
        kmap_copy(m->hpa[gpa >> PAGE_SHIFT] & PAGE_MASK, off, p, n, dir);
        gpa += n;
        len -= n;
        if (p)
            p += n;
    }
    return 0;
}

int gmem_read(const struct gmem *m, uint32_t gpa, void *buf, uint32_t len)
{
    return copy((struct gmem *)m, gpa, buf, len, KMAP_READ); /* KMAP_READ never changes m */
}
int gmem_read32(const struct gmem *m, uint32_t gpa, uint32_t *val)
{
    uint32_t pfn = gpa >> PAGE_SHIFT;
    if (pfn >= m->npages || (gpa & 3))
        return gmem_read(m, gpa, val, 4); /* E_RANGE; unaligned: never from a walk */
    *val = kmap_read32(m->hpa[pfn] & PAGE_MASK, gpa & (PAGE_SIZE - 1));
    return 0;
}

int gmem_write(struct gmem *m, uint32_t gpa, const void *buf, uint32_t len) { return copy(m, gpa, (void *)buf, len, KMAP_WRITE); }
int gmem_zero(struct gmem *m, uint32_t gpa, uint32_t len) { return copy(m, gpa, NULL, len, KMAP_ZERO); }

/* ---------------------------------------------------------------- page sharing */

/* Content hash of host frame hpa. Interrupts off (kmap_cached). */
static uint32_t frame_hash(uint32_t hpa)
{
    return pshare_hash(kmap_cached(hpa));
}

int gmem_scan_page(struct gmem *m, unsigned vm)
{
    if (!m->npages)
        return 0;
    uint32_t pfn = m->scan_next++ % m->npages, e = m->hpa[pfn];
    if (m->scan_next >= m->npages)
        m->scan_next = 0;
    if ((e & GMEM_SHARED) || m->nreq >= GMEM_SHARE_BATCH)
        return 0;
    uint32_t hash = frame_hash(e);
    bool promote;
    if (pshare_has_hash(hash))
        promote = false;
    else if (pshare_hint(hash, vm, pfn, e))
        promote = true;
    else
        return 0;
    m->req[m->nreq] = (struct gmem_share_req){ pfn, e, promote };
    m->nreq++;
    return 1;
}

/* The queued requests, taken out with interrupts off (the scanner adds). */
static uint32_t take_requests(struct gmem *m, struct gmem_share_req *out)
{
    uint32_t fl = spin_lock_irqsave(&req_lock);
    uint32_t n = m->nreq;
    memcpy(out, m->req, n * sizeof(*out));
    m->nreq = 0;
    spin_unlock_irqrestore(&req_lock, fl);
    return n;
}

static bool queued_twice(const uint32_t *pfns, uint32_t k, uint32_t pfn)
{
    for (uint32_t i = 0; i < k; i++)
        if (pfns[i] == pfn)
            return true;
    return false;
}

bool gmem_share_ready(const struct gmem *m, uint64_t now)
{
    return m->nreq && (m->nreq >= GMEM_SHARE_BATCH || !pshare_enabled() ||
                       (m->req_seen && now - m->req_seen >= GMEM_SHARE_WAIT_TICKS));
}

bool gmem_share_due(struct gmem *m, uint64_t now)
{
    if (!m->nreq)
        return false;
    if (!m->req_seen)
        m->req_seen = now ? now : 1;
    return gmem_share_ready(m, now);
}

uint32_t gmem_share_apply(struct gmem *m)
{
    struct gmem_share_req r[GMEM_SHARE_BATCH];
    uint32_t n = take_requests(m, r), k = 0;
    m->req_seen = 0;
    if (!pshare_enabled())
        return 0; /* queued before `mem share off`: dropped, nothing merges after it */
    uint32_t old[GMEM_SHARE_BATCH], shared[GMEM_SHARE_BATCH], pfn[GMEM_SHARE_BATCH], zap[GMEM_SHARE_BATCH];
    for (uint32_t i = 0; i < n; i++) {
        if (r[i].pfn >= m->npages || m->hpa[r[i].pfn] != r[i].hpa || queued_twice(pfn, k, r[i].pfn))
            continue; /* written (unshared, remapped) since it was hashed */
        uint32_t fl = spin_lock_irqsave(&req_lock);
        uint32_t hash = frame_hash(r[i].hpa); /* its bytes now, which the table keeps */
        spin_unlock_irqrestore(&req_lock, fl);
        if (pshare_share(hash, r[i].hpa, r[i].promote, &shared[k]))
            continue;
        old[k] = zap[k] = r[i].hpa;
        pfn[k++] = r[i].pfn;
    }
    if (k && m->sharing)
        m->sharing(m->ctx, zap, k); /* no mapping of the old frames is left */
    for (uint32_t i = 0; i < k; i++) {
        m->hpa[pfn[i]] = shared[i] | GMEM_SHARED;
        m->nshared++;
        if (shared[i] != old[i])
            frame_free(old[i], 1);
    }
    return k;
}
