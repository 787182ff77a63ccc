/*
 * Content-based page sharing: the host-wide table (contract in vmm/pshare.h,
 * story in docs/memory-layout.md "Page sharing").
 *
 * Map: a fixed pool of entries {hash, frame, references}, chained twice
 * (by content hash, to find a frame to share with; by frame, to unshare
 * and free), a free list, and a direct-mapped table of hints. Every entry
 * point takes the one lock: the scanner thread, the vCPU threads sharing
 * and unsharing their own pages, and `vm destroy` all meet here.
 */
#include "vmm/pshare.h"
#include "kernel/heap.h"
#include "kernel/kernel.h"
#include "kernel/layout.h"
#include "kernel/paging.h"
#include "kernel/pmm.h"
#include "kernel/spinlock.h"

struct entry {
    uint32_t hash;
    uint32_t hpa;       /* 0 = free */
    uint32_t refs;      /* guest pages backed by this frame */
    uint32_t next_hash; /* index + 1 in the chain of its hash bucket; free list */
    uint32_t next_hpa;  /* index + 1 in the chain of its frame bucket */
};

static spinlock_t lock = SPINLOCK_INIT("pshare");
static struct entry *pool;
static uint32_t *by_hash, *by_hpa; /* PSHARE_BUCKETS heads, index + 1 */
static uint32_t free_head;
static struct pshare_hint *hints;
static struct pshare_stats stats;
static volatile bool enabled = true;
static volatile uint32_t rate = PSHARE_RATE_DEFAULT;

int pshare_init(void)
{
    pool = kzalloc(PSHARE_MAX_FRAMES * sizeof(*pool));
    by_hash = kzalloc(PSHARE_BUCKETS * sizeof(*by_hash));
    by_hpa = kzalloc(PSHARE_BUCKETS * sizeof(*by_hpa));
    hints = kzalloc(PSHARE_HINTS * sizeof(*hints));
    if (!pool || !by_hash || !by_hpa || !hints) {
        kfree(pool), kfree(by_hash), kfree(by_hpa), kfree(hints);
        pool = NULL, hints = NULL, by_hash = by_hpa = NULL;
        enabled = false;
        return E_NOMEM;
    }
    for (uint32_t i = 0; i < PSHARE_MAX_FRAMES; i++)
        pool[i].next_hash = i + 1 < PSHARE_MAX_FRAMES ? i + 2 : 0;
    free_head = 1;
    stats = (struct pshare_stats){ 0 };
    enabled = true;
    return 0;
}

void pshare_set_enabled(bool on) { enabled = on && pool; }
bool pshare_enabled(void) { return enabled; }
void pshare_set_rate(uint32_t pages_per_second) { rate = pages_per_second; }
uint32_t pshare_rate(void) { return rate; }

/* Four FNV-1a lanes, one word each per step: the loop's own increment,
 * compare and branch once per four words (the scanner hashes hundreds of
 * pages a second, and under QEMU TCG every instruction counts), then the
 * lanes folded together and the bits spread (a 32-bit finalizer), so that
 * bucket() and the hints' top bits see all of them. */
uint32_t pshare_hash(const void *page)
{
    const uint32_t *w = page;
    uint32_t a = 0x811C9DC5u, b = 0x050C5D1Fu, c = 0x2B6A7F4Du, d = 0x5BD1E995u;
    for (unsigned i = 0; i < PAGE_SIZE / 4; i += 4) {
        a = (a ^ w[i]) * 0x01000193u;
        b = (b ^ w[i + 1]) * 0x01000193u;
        c = (c ^ w[i + 2]) * 0x01000193u;
        d = (d ^ w[i + 3]) * 0x01000193u;
    }
    uint32_t h = (((a ^ b) * 0x01000193u ^ c) * 0x01000193u ^ d) * 0x01000193u;
    h ^= h >> 16;
    h *= 0x7FEB352Du;
    h ^= h >> 15;
    return h;
}

static uint32_t bucket(uint32_t key) { return (key ^ (key >> 12) ^ (key >> 24)) % PSHARE_BUCKETS; }
static uint32_t hpa_bucket(uint32_t hpa) { return (hpa >> PAGE_SHIFT) % PSHARE_BUCKETS; }

/* Entry index + 1 of shared frame hpa, 0 if none. Under the lock. */
static uint32_t find_hpa(uint32_t hpa)
{
    uint32_t e = by_hpa ? by_hpa[hpa_bucket(hpa)] : 0;
    while (e && pool[e - 1].hpa != hpa)
        e = pool[e - 1].next_hpa;
    return e;
}

/* Do two host frames hold the same 4096 bytes? Under the lock (kmap slots). */
static bool same_bytes(uint32_t a, uint32_t b)
{
    void *pa = kmap(a), *pb = kmap(b);
    KASSERT(pa && pb);
    bool same = !memcmp(pa, pb, PAGE_SIZE);
    kunmap(pb);
    kunmap(pa);
    return same;
}

static void unlink_entry(uint32_t e)
{
    struct entry *x = &pool[e - 1];
    uint32_t *l = &by_hash[bucket(x->hash)];
    while (*l != e)
        l = &pool[*l - 1].next_hash;
    *l = x->next_hash;
    l = &by_hpa[hpa_bucket(x->hpa)];
    while (*l != e)
        l = &pool[*l - 1].next_hpa;
    *l = x->next_hpa;
    *x = (struct entry){ .next_hash = free_head };
    free_head = e;
    stats.frames--;
}

/* Make hpa a shared frame with one reference: index + 1, or 0 if full. */
static uint32_t insert(uint32_t hash, uint32_t hpa)
{
    uint32_t e = free_head;
    if (!e)
        return 0;
    struct entry *x = &pool[e - 1];
    free_head = x->next_hash;
    *x = (struct entry){ hash, hpa, 1, by_hash[bucket(hash)], by_hpa[hpa_bucket(hpa)] };
    by_hash[bucket(hash)] = e;
    by_hpa[hpa_bucket(hpa)] = e;
    stats.frames++;
    return e;
}

int pshare_share(uint32_t hash, uint32_t hpa, bool promote, uint32_t *shared)
{
    if (!pool)
        return E_NOENT;
    uint32_t fl = spin_lock_irqsave(&lock), e;
    int rc = 0;
    for (e = by_hash[bucket(hash)]; e; e = pool[e - 1].next_hash) {
        struct entry *x = &pool[e - 1];
        if (x->hash != hash)
            continue;
        KASSERT(x->hpa != hpa); /* the caller's page is private */
        if (same_bytes(x->hpa, hpa))
            break;
        stats.false_matches++;
    }
    if (e) {
        pool[e - 1].refs++;
        *shared = pool[e - 1].hpa;
        stats.merges++;
    } else if (!promote) {
        rc = E_NOENT;
    } else if (!insert(hash, hpa)) {
        stats.table_full++;
        rc = E_NOSPC;
    } else {
        *shared = hpa;
        stats.promotions++;
    }
    stats.refs += rc == 0;
    spin_unlock_irqrestore(&lock, fl);
    return rc;
}

int pshare_unshare(uint32_t hpa, uint32_t *priv)
{
    uint32_t fl = spin_lock_irqsave(&lock), e = find_hpa(hpa), copy;
    if (!e)
        panic("pshare: unshare of frame %08x, which is not shared", hpa);
    int rc = 0;
    if (pool[e - 1].refs == 1) {
        unlink_entry(e); /* the last user keeps the frame itself */
        *priv = hpa;
        stats.reclaimed++;
    } else if (frame_alloc_exact(ZONE_HIGH, 1, &copy)) {
        rc = E_NOMEM;
    } else {
        void *dst = kmap(copy), *src = kmap(hpa);
        KASSERT(dst && src);
        memcpy(dst, src, PAGE_SIZE);
        kunmap(src);
        kunmap(dst);
        pool[e - 1].refs--;
        *priv = copy;
        stats.unshares++;
    }
    stats.refs -= rc == 0;
    spin_unlock_irqrestore(&lock, fl);
    return rc;
}

void pshare_put(uint32_t hpa)
{
    uint32_t fl = spin_lock_irqsave(&lock), e = find_hpa(hpa);
    if (!e)
        panic("pshare: put of frame %08x, which is not shared", hpa);
    stats.refs--;
    bool last = --pool[e - 1].refs == 0;
    if (last)
        unlink_entry(e);
    spin_unlock_irqrestore(&lock, fl);
    if (last)
        frame_free(hpa, 1);
}

bool pshare_has_hash(uint32_t hash)
{
    if (!pool)
        return false;
    uint32_t fl = spin_lock_irqsave(&lock), e = by_hash[bucket(hash)];
    while (e && pool[e - 1].hash != hash)
        e = pool[e - 1].next_hash;
    spin_unlock_irqrestore(&lock, fl);
    return e != 0;
}

bool pshare_hint(uint32_t hash, unsigned vm, uint32_t pfn, uint32_t hpa)
{
    if (!hints)
        return false;
    uint32_t fl = spin_lock_irqsave(&lock);
    struct pshare_hint *h = &hints[bucket(hash) * (PSHARE_HINTS / PSHARE_BUCKETS) + (hash >> 28) % (PSHARE_HINTS / PSHARE_BUCKETS)];
    bool dup = h->hpa && h->hash == hash && !(h->vm == vm + 1 && h->pfn == pfn) && h->hpa != hpa;
    *h = (struct pshare_hint){ hash, hpa, pfn, (uint16_t)(vm + 1) };
    spin_unlock_irqrestore(&lock, fl);
    return dup;
}

void pshare_scanned(uint32_t n)
{
    uint32_t fl = spin_lock_irqsave(&lock);
    stats.scanned += n;
    spin_unlock_irqrestore(&lock, fl);
}

void pshare_get_stats(struct pshare_stats *st)
{
    uint32_t fl = spin_lock_irqsave(&lock);
    *st = stats;
    spin_unlock_irqrestore(&lock, fl);
}
