/*
 * Shadow paging core. Design and the reasons behind it: docs/vmm.md ("Shadow paging").
 *
 * Map of this file
 *   1. guest walk      gwalk(), gset_ad(): the guest's 32-bit tables as the
 *                      CPU reads them (SDM Vol. 3A §4.3, §4.6, §4.8), guest
 *                      CR0.WP and CR4.PSE; results are guest error codes.
 *   2. tracing index   which guest pages are page tables we derived a shadow
 *                      from: shadow PTs by guest PT page (hash), shadow PDs
 *                      by guest directory page (linear, <= SHADOW_MAX_PDS).
 *   3. shadow tables   spte_write() and the reverse map of writable sptes
 *                      (by host frame, bounded, clock reclaim),
 *                      pt_alloc/pt_free (clock eviction),
 *                      pd_alloc/pd_free (LRU cache keyed by guest CR3 page).
 *   4. fill            shadow_handle_fault(): hidden fault -> spte, and
 *                      prefetch of neighbours that need no A/D update.
 *   5. sync            shadow_pt_write(), shadow_gpa_changed(), flood.
 *   5b. out of sync    page tables the guest writes often run unsynced
 *                      until the next TLB flush (KVM's unsync pages).
 *   6. control regs    CR0/CR3/CR4 writes, INVLPG, flushes, init/destroy.
 *
 * Invariants
 *   I1 A shadow PDE is present iff it points to a shadow PT (pd->child) whose
 *      parents mask holds that directory; a PT is linked at the same PDE
 *      index in all its parents, which all have the same guest PDE (A/D
 *      aside; for 4 MiB pages D set in all). Shadow PDEs are P|RW|US|A: all
 *      rights live in the shadow PTEs. PDEs MONITOR_PDE_FIRST..MONITOR_PDE_END-1
 *      are the monitor's, copied; the ones above are the guest's as any other.
 *   I2 Every present spte equals what spte_make() gives for the guest entries
 *      as they are now in guest memory (traced writes zap the rest), except
 *      that it may be less permissive (D set later; CR0.WP went 1->0), and
 *      except in an out-of-sync shadow PT (U1), which may hold what the
 *      guest PTE was at some point since the last resync: what a TLB may
 *      hold until the flush (SDM Vol. 3A §4.10.4). Either way an spte only
 *      ever holds a frame gpa_to_hpa gave for this guest's RAM; a frame
 *      that stops being the guest's own is dropped by frame (I8, rmap), not
 *      by guest PTE, so staleness never reaches another guest's frame, the
 *      monitor (I5) or a shared frame writable.
 *   I3 No present spte maps a traced guest page writable (an out-of-sync
 *      page is not traced: it is write-protected again when resynced).
 *   U1 All SPT_4K shadows of one guest page are in sync or all out of sync;
 *      an out-of-sync page has no shadow directory and is not translated
 *      code. nunsync counts the out-of-sync shadow PTs, unsync_map has
 *      their bits.
 *   U2 While no shadow PT is out of sync (shadow_unsync_active() false)
 *      the VMM lets the translator drop guest INVLPGs; otherwise it sends
 *      each to shadow_invlpg. Every CR3, CR0 or CR4 write resyncs them all
 *      (docs/vmm.md: a resync per loaded directory, KVM's, was tried).
 *   I4 A present spte implies A set in the guest PDE and PTE; a writable one
 *      implies D set in the guest's last-level entry.
 *   I5 No spte is global; no shadow maps a gva in_monitor() from the guest.
 *   I6 The reverse map holds exactly the writable sptes and the sptes onto
 *      shared frames (SPTE_SHARED, read-only), at most max_writable.
 *   I8 No present spte maps a shared frame (the VMM's gpa_to_hpa said
 *      SHADOW_FRAME_SHARED) writable, or without SPTE_SHARED: the VMM calls
 *      shadow_zap_frames before it shares a frame, shadow_zap_frame after it
 *      unshares one (docs/memory-layout.md "Page sharing").
 *   I7 The active directory is the one the CPU uses (the VMM loads
 *      shadow_scr3() after every call that may change it): it is never
 *      freed (only emptied) before shadow_destroy, even when a switch fails.
 */
#include "kernel/kernel.h"
#include "kernel/layout.h"
#include "kernel/paging.h"
#include "kernel/x86.h"
#include "vmm/shadow.h"

#define PDX(va) ((va) >> 22)
#define PTX(va) (((va) >> 12) & 0x3FFu)
#define LARGE_FRAME   0xFFC00000u /* frame bits of a 4 MiB PDE */
/* Bits 21:13 of a 4 MiB PDE are reserved with MAXPHYADDR 32 and no PSE-36,
 * which is the CPU hv86 presents (SDM Vol. 3A §4.3, Table 4-4). */
#define PDE_PS_RSVD   0x003FE000u
#define SPDE_FLAGS    (PTE_P | PTE_RW | PTE_US | PTE_A)
/* Software bit of an spte (bits 11:9 are ignored by the CPU, SDM Vol. 3A
 * §4.3, Table 4-6): it maps a frame shared copy-on-write (I8). */
#define SPTE_SHARED   0x200u

_Static_assert(SHADOW_MAX_PDS <= 32, "shadow_pt.parents is a 32-bit mask of directories");
_Static_assert(SHADOW_MAX_PTS < 0xFFFF && SHADOW_MAX_WRITABLE < 0xFFFF, "16-bit indexes + 1");

enum spt_kind {
    SPT_FREE,
    SPT_4K,   /* shadows a guest page table at gsrc (traced) */
    SPT_4M,   /* shadows a guest 4 MiB page at gsrc, 4 KiB at a time */
    SPT_PHYS, /* paging off: identity for the 4 MiB at gsrc */
};

static bool paging_on(const struct shadow *s) { return s->gcr0 & CR0_PG; }

static int fail(struct shadow *s, int err, const char *why)
{
    s->why = why;
    return err;
}

/* ---------------------------------------------------------------- 1. guest walk */

/* One guest translation, as gwalk() found it. */
struct gwalk {
    uint32_t gpa;            /* translated address */
    uint32_t pde_gpa, pde;   /* guest PDE and where it lives */
    uint32_t pte_gpa, pte;   /* guest PTE (4 KiB pages only) */
    bool large;              /* 4 MiB page (PDE.PS with CR4.PSE) */
    bool rw, us;             /* rights of both levels combined (§4.6) */
};

/*
 * Rights check of SDM Vol. 3A §4.6 for 32-bit paging without SMEP/SMAP:
 * user accesses need U/S (and R/W for writes) at both levels; supervisor
 * reads always pass; supervisor writes need R/W only when CR0.WP=1.
 * Instruction fetches are reads (no XD in 32-bit paging).
 */
static bool gaccess_ok(const struct shadow *s, const struct gwalk *w, uint32_t acc)
{
    if (acc & PF_U)
        return w->us && (!(acc & PF_W) || w->rw);
    return !(acc & PF_W) || w->rw || !(s->gcr0 & CR0_WP);
}

/*
 * gwalk - translate gva through the guest tables for an access acc (PF_W,
 * PF_U). Returns 0 with *w, 1 with *err = the guest #PF error code (§4.7:
 * P for present-entry violations, RSVD, W and U from the access; I/D is 0
 * without XD or SMEP), or E_CORRUPT if a table lies outside guest RAM.
 */
static int gwalk(struct shadow *s, uint32_t gva, uint32_t acc, struct gwalk *w, uint32_t *err)
{
    uint32_t ecode = acc & (PF_W | PF_U);

    w->pde_gpa = (s->gcr3 & PTE_FRAME) + PDX(gva) * 4;
    if (s->ops.read_gpa32(s->ops.ctx, w->pde_gpa, &w->pde) < 0)
        return fail(s, E_CORRUPT, "guest page directory outside guest RAM");
    w->pte_gpa = w->pte = 0;
    if (!(w->pde & PTE_P))
        goto not_present;
    w->large = (w->pde & PDE_PS) && (s->gcr4 & CR4_PSE);
    if (w->large) {
        if (w->pde & PDE_PS_RSVD) {
            *err = ecode | PF_P | PF_RSVD;
            return 1;
        }
        w->gpa = (w->pde & LARGE_FRAME) | (gva & ~LARGE_FRAME);
        w->rw = w->pde & PTE_RW;
        w->us = w->pde & PTE_US;
    } else {
        w->pte_gpa = (w->pde & PTE_FRAME) + PTX(gva) * 4;
        if (s->ops.read_gpa32(s->ops.ctx, w->pte_gpa, &w->pte) < 0)
            return fail(s, E_CORRUPT, "guest page table outside guest RAM");
        if (!(w->pte & PTE_P))
            goto not_present;
        w->gpa = (w->pte & PTE_FRAME) | (gva & ~PTE_FRAME);
        w->rw = w->pde & w->pte & PTE_RW;
        w->us = w->pde & w->pte & PTE_US;
    }
    if (gaccess_ok(s, w, acc))
        return 0;
    *err = ecode | PF_P;
    return 1;
not_present:
    *err = ecode;
    return 1;
}

/* Write back one guest entry with A (and D) set, counting what was set. */
static int gset_bits(struct shadow *s, uint32_t gpa, uint32_t *entry, uint32_t bits)
{
    uint32_t v = *entry | bits;

    if (v == *entry)
        return 0;
    s->stats.a_sets += (bits & PTE_A) && !(*entry & PTE_A);
    s->stats.d_sets += (bits & PTE_D) && !(*entry & PTE_D);
    *entry = v;
    if (s->ops.write_gpa32(s->ops.ctx, gpa, v) < 0)
        return fail(s, E_CORRUPT, "guest paging entry not writable");
    return 0;
}

/*
 * gset_ad - set the accessed flags of a successful translation, and the dirty
 * flag of its last level for a write (SDM §4.8). The model (also the tests'
 * reference): flags are set only when the whole translation succeeds.
 */
static int gset_ad(struct shadow *s, struct gwalk *w, bool write)
{
    uint32_t d = write ? PTE_D : 0;

    if (w->large)
        return gset_bits(s, w->pde_gpa, &w->pde, PTE_A | d);
    if (gset_bits(s, w->pde_gpa, &w->pde, PTE_A) < 0)
        return E_CORRUPT;
    return gset_bits(s, w->pte_gpa, &w->pte, PTE_A | d);
}

/* ---------------------------------------------------------------- 2. tracing index */

/* The page number folded with its 4 MiB number: every SPT_4M shadow's gsrc
 * is 4 MiB-aligned, and by page number alone all of them shared bucket 0
 * (pt_share walked that chain, 270 instructions a call). */
static unsigned hash_of(uint32_t gpa) { return ((gpa >> PAGE_SHIFT) ^ (gpa >> 22)) % SHADOW_HASH; }

static void hash_insert(struct shadow *s, uint16_t id)
{
    unsigned b = hash_of(s->pts[id].gsrc);

    s->pts[id].hnext = s->hash[b];
    s->hash[b] = id + 1;
}

static void hash_remove(struct shadow *s, uint16_t id)
{
    uint16_t *link = &s->hash[hash_of(s->pts[id].gsrc)];

    while (*link && *link != id + 1)
        link = &s->pts[*link - 1].hnext;
    if (*link)
        *link = s->pts[id].hnext;
}

/* Set pd_filter's bits from the directories in pds[] (after one is made or freed). */
static void pd_filter_update(struct shadow *s)
{
    memset(s->pd_filter, 0, sizeof(s->pd_filter));
    for (int i = 0; i < SHADOW_MAX_PDS; i++)
        if (s->pds[i].hpa) {
            unsigned h = hash_of(s->pds[i].gcr3);
            s->pd_filter[h / 32] |= 1u << (h % 32);
        }
}

/* The index in pds[] of the directory shadowing guest directory page key
 * (or SHADOW_GCR3_PHYS), or -1. traced() asks for every
 * fill and prefetched entry: the filter answers most of them without the
 * scan of all SHADOW_MAX_PDS slots. */
static int pd_find(const struct shadow *s, uint32_t key)
{
    unsigned h = hash_of(key);
    if (!(s->pd_filter[h / 32] & (1u << (h % 32))))
        return -1;
    for (int i = 0; i < SHADOW_MAX_PDS; i++)
        if (s->pds[i].hpa && s->pds[i].gcr3 == key)
            return i;
    return -1;
}

/* true if page gpa (aligned) is a guest table some shadow was built from. */
static bool traced(const struct shadow *s, uint32_t gpa)
{
    for (uint16_t id = s->hash[hash_of(gpa)]; id; id = s->pts[id - 1].hnext)
        if (s->pts[id - 1].gsrc == gpa && s->pts[id - 1].kind == SPT_4K && !s->pts[id - 1].unsync)
            return true;
    return pd_find(s, gpa) >= 0;
}

bool shadow_is_pt_gpa(struct shadow *s, uint32_t gpa) { return traced(s, gpa & PTE_FRAME); }

/* true if the page of gpa holds code the VMM translated (self-modifying code). */
static bool code_page(const struct shadow *s, uint32_t gpa)
{
    return s->ops.is_code && s->ops.is_code(s->ops.ctx, gpa & PTE_FRAME);
}

/* ---------------------------------------------------------------- 3. shadow tables */

/* true if the directory the CPU uses links shadow PT pt. */
static bool pt_in_active(const struct shadow *s, const struct shadow_pt *pt)
{
    return s->active >= 0 && (pt->parents & (1u << s->active));
}

static bool spte_writable(uint32_t spte) { return (spte & (PTE_P | PTE_RW)) == (PTE_P | PTE_RW); }
static bool spte_shared(uint32_t spte) { return (spte & (PTE_P | SPTE_SHARED)) == (PTE_P | SPTE_SHARED); }
/* In the reverse map (I6): what write protection or an unshare must find. */
static bool spte_rmapped(uint32_t spte) { return spte_writable(spte) || spte_shared(spte); }

static uint16_t *rmap_bucket(struct shadow *s, uint32_t spte)
{
    return &s->rmap_hash[(spte >> PAGE_SHIFT) % SHADOW_RMAP_HASH];
}

/* Forget the reverse-map entry of spte (pt, idx) = value spte. */
static void rmap_remove(struct shadow *s, uint32_t spte, uint16_t pt, uint16_t idx)
{
    uint16_t *link = rmap_bucket(s, spte);

    while (*link && (s->rmap[*link - 1].pt != pt || s->rmap[*link - 1].idx != idx))
        link = &s->rmap[*link - 1].next;
    if (!*link)
        panic("shadow: spte %u/%u missing from the reverse map", pt, idx);
    uint16_t e = *link - 1;
    *link = s->rmap[e].next;
    s->rmap[e] = (struct shadow_rmap){ .next = s->rmap_free };
    s->rmap_free = e + 1;
    if (spte_writable(spte))
        s->stats.writable--;
    else
        s->stats.shared_maps--;
}

static void spte_write(struct shadow *s, struct shadow_pt *pt, unsigned i, uint32_t v);
static bool page_unsynced(const struct shadow *s, uint32_t page);
static void page_sync(struct shadow *s, uint32_t page);
static void try_unsync(struct shadow *s, uint32_t gpa);

/* Mark shadow PT id out of sync (on) or in sync: its flag, nunsync and its bit in unsync_map (U1). */
static void unsync_mark(struct shadow *s, uint16_t id, bool on)
{
    if (s->pts[id].unsync == on)
        return;
    s->pts[id].unsync = on;
    if (on) {
        s->nunsync++;
        s->unsync_map[id / 32] |= 1u << (id % 32);
    } else {
        s->nunsync--;
        s->unsync_map[id / 32] &= ~(1u << (id % 32));
    }
}

/*
 * rmap_reclaim - all max_writable entries are in use: make one writable spte
 * read-only, or drop one onto a shared frame (clock over the entries).
 * Always safe: a later access faults and fills it again.
 */
static void rmap_reclaim(struct shadow *s)
{
    struct shadow_rmap *e = &s->rmap[s->rmap_hand];
    struct shadow_pt *pt = &s->pts[e->pt];

    s->rmap_hand = (s->rmap_hand + 1) % s->max_writable;
    uint32_t v = pt->tbl[e->idx];
    spte_write(s, pt, e->idx, spte_shared(v) ? 0 : v & ~(PTE_RW | PTE_D));
    s->stats.wr_reclaims++;
}

static void rmap_add(struct shadow *s, uint32_t spte, uint16_t pt, uint16_t idx)
{
    if (!s->rmap_free)
        rmap_reclaim(s);
    uint16_t e = s->rmap_free - 1, *bucket = rmap_bucket(s, spte);

    s->rmap_free = s->rmap[e].next;
    s->rmap[e] = (struct shadow_rmap){ .pt = pt, .idx = idx, .next = *bucket, .used = 1 };
    *bucket = e + 1;
    if (spte_writable(spte))
        s->stats.writable++;
    else
        s->stats.shared_maps++;
}

/*
 * spte_write - store one spte: the only way sptes change. Keeps the reverse
 * map of writable sptes (I3 relies on it), nwritable, and the real TLB.
 */
static void spte_write(struct shadow *s, struct shadow_pt *pt, unsigned i, uint32_t v)
{
    uint16_t id = pt - s->pts;
    uint32_t old = pt->tbl[i];

    if (spte_rmapped(old)) {
        rmap_remove(s, old, id, i);
        pt->nwritable--;
    }
    if (spte_rmapped(v)) {
        rmap_add(s, v, id, i);
        pt->nwritable++;
    }
    pt->tbl[i] = v;
    if ((old & PTE_P) && pt_in_active(s, pt))
        s->ops.flush_gva(s->ops.ctx, ((uint32_t)pt->pde << 22) | (i << 12));
}

/*
 * write_protect - page gpa just became traced: make every writable spte that
 * maps it read-only (I3), found through the reverse map.
 */
static void write_protect(struct shadow *s, uint32_t gpa)
{
    uint32_t hpa;

    if (s->ops.gpa_to_hpa(s->ops.ctx, gpa, false, &hpa) < 0)
        return;
    for (uint16_t e = *rmap_bucket(s, hpa); e;) {
        struct shadow_rmap *r = &s->rmap[e - 1];
        struct shadow_pt *pt = &s->pts[r->pt];
        uint16_t next = r->next;

        if ((pt->tbl[r->idx] & PTE_FRAME) == hpa)
            spte_write(s, pt, r->idx, pt->tbl[r->idx] & ~(PTE_RW | PTE_D));
        e = next;
    }
}

void shadow_write_protect_gpa(struct shadow *s, uint32_t gpa)
{
    write_protect(s, gpa & PTE_FRAME);
}

/* Unlink shadow PT id from every directory and free it; flush if active and asked. */
static void pt_free(struct shadow *s, uint16_t id, bool flush)
{
    struct shadow_pt *pt = &s->pts[id];

    for (unsigned i = 0; pt->nwritable && i < 1024; i++)
        if (spte_rmapped(pt->tbl[i])) {
            rmap_remove(s, pt->tbl[i], id, i);
            pt->nwritable--;
        }
    for (unsigned pd = 0; pd < SHADOW_MAX_PDS; pd++)
        if (pt->parents & (1u << pd)) {
            s->pds[pd].tbl[pt->pde] = 0;
            s->pds[pd].child[pt->pde] = 0;
        }
    if (flush && pt_in_active(s, pt))
        s->ops.flush_all(s->ops.ctx);
    hash_remove(s, id);
    unsync_mark(s, id, false);
    s->ops.table_free(s->ops.ctx, pt->tbl, pt->hpa);
    *pt = (struct shadow_pt){ .hnext = s->pt_free };
    s->pt_free = id + 1;
    s->stats.pts_in_use--;
    s->stats.pages_in_use--;
}

/* Unlink shadow PT id from directory pd only; free it when no parent is left. */
static void pt_unlink(struct shadow *s, uint16_t id, int pd, bool flush)
{
    struct shadow_pt *pt = &s->pts[id];

    if (pt->parents == (1u << pd)) {
        pt_free(s, id, flush);
        return;
    }
    s->pds[pd].tbl[pt->pde] = 0;
    s->pds[pd].child[pt->pde] = 0;
    if (flush && pd == s->active)
        s->ops.flush_all(s->ops.ctx);
    pt->parents &= ~(1u << pd);
}

/* Clock: drop the first shadow PT not filled since the hand last passed. */
static void pt_evict(struct shadow *s)
{
    for (unsigned n = 0; n < 2 * s->cfg.max_pts; n++) {
        uint16_t id = s->clock_hand;
        struct shadow_pt *pt = &s->pts[id];

        s->clock_hand = (s->clock_hand + 1) % s->cfg.max_pts;
        if (pt->kind == SPT_FREE)
            continue;
        if (pt->ref) {
            pt->ref = 0;
            continue;
        }
        pt_free(s, id, true);
        s->stats.pt_evictions++;
        return;
    }
}

static void pd_free(struct shadow *s, int i);

/* Evict the least recently activated directory other than the active one. */
static bool pd_evict(struct shadow *s)
{
    int victim = -1;

    for (int i = 0; i < SHADOW_MAX_PDS; i++)
        if (s->pds[i].hpa && i != s->active &&
            (victim < 0 || s->pds[i].lru < s->pds[victim].lru))
            victim = i;
    if (victim < 0)
        return false;
    pd_free(s, victim);
    s->stats.pd_evictions++;
    return true;
}

/* A table frame; on exhaustion evict a shadow PT (or a directory) and retry. */
static void *table_get(struct shadow *s, uint32_t *hpa)
{
    void *va = s->ops.table_alloc(s->ops.ctx, hpa);

    if (!va && s->stats.pts_in_use) {
        pt_evict(s);
        va = s->ops.table_alloc(s->ops.ctx, hpa);
    }
    if (!va && pd_evict(s))
        va = s->ops.table_alloc(s->ops.ctx, hpa);
    return va;
}

/*
 * pt_alloc - new empty shadow PT for PDE pde of directory pd, built from
 * guest entry gpde; a SPT_4K one starts tracing gsrc (I3). Evicts by clock
 * when the pool is full. Returns the index or E_NOMEM.
 */
static int pt_alloc(struct shadow *s, uint16_t pd, unsigned pde, uint8_t kind, uint32_t gsrc,
                    uint32_t gpde)
{
    struct shadow_pt *pt;
    uint32_t hpa;
    uint16_t id;
    void *tbl;

    if (!s->pt_free)
        pt_evict(s);
    if (!s->pt_free)
        return fail(s, E_NOMEM, "no shadow page table descriptor");
    id = s->pt_free - 1;
    pt = &s->pts[id];
    s->pt_free = pt->hnext;
    tbl = table_get(s, &hpa);
    if (!tbl) {
        pt->hnext = s->pt_free;
        s->pt_free = id + 1;
        return fail(s, E_NOMEM, "no frame for a shadow page table");
    }
    bool was_traced = kind == SPT_4K && traced(s, gsrc);
    /* U1: a new shadow of an out-of-sync page starts out of sync (empty,
     * so in sync with anything), and the page stays writable. */
    bool unsync = kind == SPT_4K && page_unsynced(s, gsrc);
    *pt = (struct shadow_pt){ .tbl = tbl, .hpa = hpa, .gsrc = gsrc, .gpde = gpde, .parents = 1u << pd,
                              .pde = pde, .kind = kind, .ref = 1, .unsync_idx = SPT_NO_IDX };
    unsync_mark(s, id, unsync);
    hash_insert(s, id); /* every kind: the index of tables to share, by gsrc */
    s->pds[pd].tbl[pde] = pt->hpa | SPDE_FLAGS;
    s->pds[pd].child[pde] = id + 1;
    s->pde_used[pde / 32] |= 1u << (pde % 32);
    s->stats.pts_in_use++;
    s->stats.pages_in_use++;
    if (kind == SPT_4K && !was_traced && !unsync)
        write_protect(s, gsrc);
    return id;
}

/* Guest PDEs present in the monitor range (recorded, never shadowed). */
static uint16_t monitor_gpdes_of(struct shadow *s, uint32_t gpd)
{
    uint16_t mask = 0;
    uint32_t v;

    for (unsigned i = 0; gpd != SHADOW_GCR3_PHYS && i < MONITOR_PDES; i++)
        if (s->ops.read_gpa32(s->ops.ctx, gpd + (MONITOR_PDE_FIRST + i) * 4, &v) == 0 && (v & PTE_P))
            mask |= 1u << i;
    return mask;
}

static int pt_share(struct shadow *s, unsigned pdx, uint8_t kind, uint32_t gsrc, uint32_t gpde);

/* Link existing shadow PT id into directory pd at its index pdx (I1): one
 * more parent, a table shared (pt_share's find). */
static void pt_link(struct shadow *s, uint16_t id, int pd, unsigned pdx)
{
    s->pts[id].parents |= 1u << pd;
    s->pds[pd].tbl[pdx] = s->pts[id].hpa | SPDE_FLAGS;
    s->pds[pd].child[pdx] = id + 1;
    s->stats.pt_shares++;
}

/*
 * pd_prelink - link into new directory i, for guest directory page key,
 * every shadow PT another directory built from the same guest PDE
 * (pt_share's rule), where that PDE has A set (I4: the CPU sets A in no
 * PDE the linked entries translate through). The kernel half of a new
 * Linux process is every other process's: each of its 4 MiB regions cost
 * a hidden fault, the first touch under each new directory, fork's and
 * exec's alike.
 */
static void pd_prelink(struct shadow *s, int i, uint32_t key)
{
    /* Only where some shadow PT was ever made (pde_used): a process uses
     * a few dozen of the 1,024 PDEs. */
    for (unsigned w = 0; w < 1024 / 32; w++)
        for (uint32_t m = s->pde_used[w]; m; m &= m - 1) {
            unsigned pdx = w * 32 + __builtin_ctz(m);
            uint32_t gpde;
            if (monitor_pde(pdx) || s->ops.read_gpa32(s->ops.ctx, key + pdx * 4, &gpde) < 0 ||
                (gpde & (PTE_P | PTE_A)) != (PTE_P | PTE_A))
                continue;
            bool large = (gpde & PDE_PS) && (s->gcr4 & CR4_PSE);
            int id = pt_share(s, pdx, large ? SPT_4M : SPT_4K, gpde & (large ? LARGE_FRAME : PTE_FRAME), gpde);
            if (id < 0)
                continue;
            pt_link(s, (uint16_t)id, i, pdx);
            s->stats.prelinks++;
        }
}

static void pd_free(struct shadow *s, int i)
{
    struct shadow_pd *pd = &s->pds[i];

    for (unsigned pde = 0; pde < 1024; pde++)
        if (pd->child[pde])
            pt_unlink(s, pd->child[pde] - 1, i, false);
    s->ops.table_free(s->ops.ctx, pd->child, pd->child_hpa);
    s->ops.table_free(s->ops.ctx, pd->tbl, pd->hpa);
    *pd = (struct shadow_pd){ 0 };
    pd_filter_update(s);
    if (s->active == i)
        s->active = -1;
    s->stats.pds_in_use--;
    s->stats.pages_in_use -= 2;
}

/*
 * pd_alloc - empty shadow directory for guest directory page key (or
 * SHADOW_GCR3_PHYS) with the monitor PDEs, evicting the LRU one beyond
 * cfg.max_pds; starts tracing key. Returns the index or E_NOMEM.
 */
static int pd_alloc(struct shadow *s, uint32_t key)
{
    struct shadow_pd *pd;
    uint32_t hpa, child_hpa;
    void *tbl, *child;
    int i;

    if (s->stats.pds_in_use >= s->cfg.max_pds && !pd_evict(s))
        return fail(s, E_NOMEM, "no shadow directory to evict");
    tbl = table_get(s, &hpa);
    if (!tbl)
        return fail(s, E_NOMEM, "no frame for a shadow directory");
    child = table_get(s, &child_hpa);
    if (!child)
        goto err_free_dir;
    /* Only now pick the slot: table_get may have evicted directories. */
    for (i = 0; s->pds[i].hpa; i++)
        ;
    pd = &s->pds[i];
    *pd = (struct shadow_pd){ .tbl = tbl, .child = child, .hpa = hpa, .child_hpa = child_hpa };
    memcpy(&pd->tbl[MONITOR_PDE_FIRST], s->ops.monitor_pdes, MONITOR_PDES * 4);
    if (key != SHADOW_GCR3_PHYS)
        page_sync(s, key); /* U1: a directory's writes are always traced */
    bool was_traced = key != SHADOW_GCR3_PHYS && traced(s, key);
    pd->gcr3 = key;
    pd_filter_update(s);
    pd->monitor_gpdes = monitor_gpdes_of(s, key);
    s->stats.pds_in_use++;
    s->stats.pages_in_use += 2;
    if (key != SHADOW_GCR3_PHYS && !was_traced)
        write_protect(s, key);
    if (key != SHADOW_GCR3_PHYS)
        pd_prelink(s, i, key);
    return i;

err_free_dir:
    s->ops.table_free(s->ops.ctx, tbl, hpa);
    return fail(s, E_NOMEM, "no frame for a shadow directory index");
}

/* Make the shadow of key (guest directory page or SHADOW_GCR3_PHYS) active. */
static int activate(struct shadow *s, uint32_t key)
{
    int i = pd_find(s, key);

    if (key != SHADOW_GCR3_PHYS) {
        s->stats.cr3_hits += i >= 0;
        s->stats.cr3_misses += i < 0;
    }
    /* On failure the old directory stays active: it is the one the CPU may
     * still be using, so it must stay allocated (I7). */
    if (i < 0)
        i = pd_alloc(s, key);
    if (i < 0)
        return i;
    s->active = i;
    s->pds[i].lru = ++s->lru_clock;
    s->pds[i].writes = 0;
    return 0;
}

/* The key of the directory the current guest mode needs. */
static uint32_t mode_key(const struct shadow *s)
{
    return paging_on(s) ? (s->gcr3 & PTE_FRAME) : SHADOW_GCR3_PHYS;
}

/*
 * Make the active directory the one of the current mode (after E_NOMEM it
 * may not be), and have the VMM load it before anything can free the old one.
 */
static int ensure_mode(struct shadow *s)
{
    if (s->active >= 0 && s->pds[s->active].gcr3 == mode_key(s))
        return 0;
    int r = activate(s, mode_key(s));
    if (r == 0)
        s->ops.flush_all(s->ops.ctx);
    return r;
}

/* ---------------------------------------------------------------- 4. fill */

/*
 * spte_make - the shadow PTE for a guest translation w to host frame hpa,
 * after an access acc the guest allowed (docs/vmm.md, "Rights"):
 *  - U/S and R/W follow the guest's combined rights;
 *  - writable only once the guest's D is set (dirty emulation, §4.8);
 *  - never writable onto a traced guest page table (I3), translated code
 *    or a shared frame (I8, which also marks it SPTE_SHARED);
 *  - guest CR0.WP=0: a supervisor-only page is writable (ring 1 is
 *    supervisor); a read-only user page is either user read-only or, after a
 *    supervisor write, supervisor-only writable; each access of the other kind
 *    faults and flips it back (KVM's scheme).
 */
static uint32_t spte_make(const struct shadow *s, const struct gwalk *w, uint32_t hpa,
                          uint32_t acc, bool is_traced, bool shared)
{
    uint32_t last = w->large ? w->pde : w->pte;
    uint32_t spte = hpa | PTE_P | PTE_A | (last & (PTE_PWT | PTE_PCD));
    bool rw = w->rw, us = w->us;

    if (!rw && !(s->gcr0 & CR0_WP)) {
        if (!us)
            rw = true;
        else if ((acc & (PF_W | PF_U)) == PF_W)
            rw = true, us = false;
    }
    if (us)
        spte |= PTE_US;
    if (shared)
        spte |= SPTE_SHARED;
    else if (rw && (last & PTE_D) && !is_traced)
        spte |= PTE_RW | PTE_D;
    return spte;
}

/* Same guest PDE apart from A/D: the shadow PT built from one serves the other. */
static bool same_gpde(uint32_t a, uint32_t b) { return !((a ^ b) & ~(PTE_A | PTE_D)); }

/*
 * pt_share - a shadow PT some other directory built at PDE pdx from the same
 * guest PDE, to link here too (the Linux kernel half is the same in every
 * process). A 4 MiB page's D lives in each directory's PDE, so its table is
 * shared only between PDEs with D set: no write through it needs a D update.
 */
static int pt_share(struct shadow *s, unsigned pdx, uint8_t kind, uint32_t gsrc, uint32_t gpde)
{
    if (kind == SPT_PHYS || (kind == SPT_4M && !(gpde & PTE_D)))
        return -1;
    for (uint16_t id = s->hash[hash_of(gsrc)]; id; id = s->pts[id - 1].hnext) {
        struct shadow_pt *pt = &s->pts[id - 1];

        if (pt->gsrc == gsrc && pt->kind == kind && pt->pde == pdx && same_gpde(pt->gpde, gpde) &&
            (kind == SPT_4K || (pt->gpde & PTE_D)))
            return id - 1;
    }
    return -1;
}

/*
 * spt_for - the shadow PT under PDE pdx of the active directory for the
 * given source: the linked one if it was built from this guest PDE, else
 * a shared one, else a new one.
 */
static int spt_for(struct shadow *s, unsigned pdx, uint8_t kind, uint32_t gsrc, uint32_t gpde)
{
    struct shadow_pd *pd = &s->pds[s->active];
    uint16_t id = pd->child[pdx];
    int shared;

    if (id) {
        struct shadow_pt *pt = &s->pts[id - 1];

        if (pt->kind == kind && pt->gsrc == gsrc && same_gpde(pt->gpde, gpde) &&
            (kind != SPT_4M || !(pt->parents & ~(1u << s->active)) || (gpde & PTE_D)))
            return id - 1;
        pt_unlink(s, id - 1, s->active, true);
    }
    shared = pt_share(s, pdx, kind, gsrc, gpde);
    if (shared < 0)
        return pt_alloc(s, s->active, pdx, kind, gsrc, gpde);
    pt_link(s, (uint16_t)shared, s->active, pdx);
    return shared;
}

/* The guest PTE at gpa: *given if the caller read it already, else read
 * now (read_gpa32's result). */
static int gpte_at(struct shadow *s, uint32_t gpa, const uint32_t *given, uint32_t *pte)
{
    if (given) {
        *pte = *given;
        return 0;
    }
    return s->ops.read_gpa32(s->ops.ctx, gpa, pte);
}

/* n guest PTEs from gpa (within one table) into buf in one ops.read_gpa
 * call: buf, or NULL when there is no such op or it failed (then each is
 * read on its own, gpte_at). */
static const uint32_t *gptes_block(struct shadow *s, uint32_t gpa, uint32_t *buf, unsigned n)
{
    return s->ops.read_gpa && s->ops.read_gpa(s->ops.ctx, gpa, buf, n * 4) == 0 ? buf : NULL;
}

/* May a neighbour with guest PTE pte be prefetched? Present, and its A
 * already set (a prefetch sets no guest bit), and the bits of need
 * (prefetch's rule after a write: PTE_RW | PTE_D). */
static bool gpte_prefetchable(uint32_t pte, uint32_t need)
{
    need |= PTE_P | PTE_A;
    return (pte & need) == need;
}

/*
 * neighbour_walk - the guest translation of entry j of shadow PT pt, from the
 * faulting walk w under the same guest PDE and the guest PTE there (*gpte,
 * or read here when gpte is NULL). false unless it needs no A/D update and
 * is present (and has the bits of need: gpte_prefetchable): then the spte is the one a fault would install for a
 * supervisor read (KVM's PTE prefetch).
 */
/* *n = *w field by field: the hypervisor is built to call memcpy for a
 * structure assignment (-mstringop-strategy=libcall), some 70 instructions
 * for these 24 bytes, once per neighbour of every fill. */
static void gwalk_copy(struct gwalk *n, const struct gwalk *w)
{
    n->gpa = w->gpa;
    n->pde_gpa = w->pde_gpa, n->pde = w->pde;
    n->pte_gpa = w->pte_gpa, n->pte = w->pte;
    n->large = w->large, n->rw = w->rw, n->us = w->us;
}

static bool neighbour_walk(struct shadow *s, const struct shadow_pt *pt, const struct gwalk *w,
                           unsigned j, const uint32_t *gpte, uint32_t need, struct gwalk *n)
{
    uint32_t pte;
    if (pt->kind != SPT_4K) {  /* identity or a 4 MiB page: the PDE's A/D cover all */
        gwalk_copy(n, w);
        n->gpa = pt->gsrc | (j << 12);
        if (pt->kind == SPT_PHYS)
            n->gpa &= s->a20_mask; /* A20 off: 1 MiB up aliases 0 up */
        return true;
    }
    if (gpte_at(s, (w->pde & PTE_FRAME) + j * 4, gpte, &pte) < 0 || !gpte_prefetchable(pte, need))
        return false;
    gwalk_copy(n, w);
    n->pte = pte;
    n->gpa = n->pte & PTE_FRAME;
    n->rw = w->pde & n->pte & PTE_RW;
    n->us = w->pde & n->pte & PTE_US;
    return true;
}

/*
 * prefill - fill empty entry j of pt (under guest PDE w->pde) with the
 * spte a supervisor read would install, if the guest PTE (*gpte, or read
 * when NULL) needs no A/D update and has the bits of need. Writable only while the reverse map has
 * room (never reclaims). Returns 1 if it filled the entry, else 0.
 */
static unsigned prefill(struct shadow *s, struct shadow_pt *pt, const struct gwalk *w, unsigned j,
                        const uint32_t *gpte, uint32_t need)
{
    struct gwalk n;
    uint32_t hpa, spte;
    int r;

    if ((pt->tbl[j] & PTE_P) || !neighbour_walk(s, pt, w, j, gpte, need, &n) ||
        (r = s->ops.gpa_to_hpa(s->ops.ctx, n.gpa, false, &hpa)) < 0)
        return 0;
    spte = spte_make(s, &n, hpa, 0, traced(s, n.gpa) || code_page(s, n.gpa), r == SHADOW_FRAME_SHARED);
    if (!s->rmap_free && spte_shared(spte))
        return 0;
    if (!s->rmap_free)
        spte &= ~(PTE_RW | PTE_D);
    spte_write(s, pt, j, spte);
    return 1;
}

/*
 * prefetch - after a fill at ptx for an access acc, fill the empty entries
 * of its aligned block of s->prefetch that need no guest A/D update
 * (prefill). The guest PTEs of a 4 KiB table are read in one ops.read_gpa
 * call when there is one and the block holds an empty entry: one frame map
 * instead of seven (under QEMU TCG each is a few dozen monitor
 * instructions, and a guest that demand-faults page after page finds all
 * seven empty every time). After a write, only neighbours the guest has
 * writable and dirty, whose spte is writable: a read-only one would be
 * dropped again unused where the writes go on, as over memory populated
 * with the zero page and broken page by page on write (copy on write).
 * The `vm` stressor's 256-page mappings made 59,000 such prefetches and
 * as many drops a run, 500 monitor instructions a fault; 260 hidden faults
 * were saved (docs/performance.md, session 22).
 */
static void prefetch(struct shadow *s, struct shadow_pt *pt, const struct gwalk *w, unsigned ptx, uint32_t acc)
{
    unsigned first = ptx & ~(s->prefetch - 1), empty = 0;
    uint32_t gptes[SHADOW_PREFETCH_MAX];
    const uint32_t *block = NULL;
    uint32_t need = acc & PF_W ? PTE_RW | PTE_D : 0; /* under a 4 MiB page or paging off the PDE's rights cover all */

    for (unsigned j = first; j < first + s->prefetch; j++)
        empty += j != ptx && !(pt->tbl[j] & PTE_P);
    if (!empty)
        return;
    if (pt->kind == SPT_4K)
        block = gptes_block(s, (w->pde & PTE_FRAME) + first * 4, gptes, s->prefetch);
    for (unsigned j = first; j < first + s->prefetch; j++) {
        /* neighbour_walk's first test, without the call: a demand-faulting
         * guest's neighbours are not present yet. */
        if (j == ptx || (block && !gpte_prefetchable(block[j - first], need)))
            continue;
        s->stats.prefetched += prefill(s, pt, w, j, block ? &block[j - first] : NULL, need);
    }
}

/* Install the spte for gva -> w (hpa), and prefetch its neighbours if
 * neighbours; *is_traced tells if the page is a guest table. */
static int fill(struct shadow *s, uint32_t gva, const struct gwalk *w, uint32_t hpa, uint32_t acc,
                bool shared, bool neighbours, bool *is_traced)
{
    uint8_t kind = !paging_on(s) ? SPT_PHYS : w->large ? SPT_4M : SPT_4K;
    uint32_t gsrc = kind == SPT_PHYS ? (gva & LARGE_FRAME)
                    : kind == SPT_4M ? (w->pde & LARGE_FRAME) : (w->pde & PTE_FRAME);
    int id = spt_for(s, PDX(gva), kind, gsrc, w->pde);

    if (id < 0)
        return id;
    struct shadow_pt *pt = &s->pts[id];
    pt->ref = 1;
    pt->writes = 0;
    pt->gpde = w->pde;
    s->pds[s->active].writes = 0;
    /* After spt_for: the table just made traced may be this very page. */
    *is_traced = traced(s, w->gpa & PTE_FRAME);
    spte_write(s, pt, PTX(gva), spte_make(s, w, hpa, acc, *is_traced || code_page(s, w->gpa), shared));
    if (s->prefetch && neighbours)
        prefetch(s, pt, w, PTX(gva), acc);
    return 0;
}

/* Paging off: gva is the gpa, and every RAM page is user-writable (§4.1.1). */
static void gwalk_phys(const struct shadow *s, uint32_t gva, struct gwalk *w)
{
    *w = (struct gwalk){ .gpa = gva & s->a20_mask, .pte = PTE_P | PTE_RW | PTE_US | PTE_D, .rw = true, .us = true };
}

static int emulate(struct shadow *s, int kind, uint32_t gpa, struct shadow_fault *out)
{
    out->gpa = gpa;
    s->stats.emulated++;
    return kind;
}

int shadow_handle_fault(struct shadow *s, uint32_t gva, uint32_t hw_err, unsigned cpl,
                        struct shadow_fault *out)
{
    uint32_t acc = (hw_err & PF_W) | (cpl == 3 ? PF_U : 0);
    struct gwalk w;
    uint32_t hpa;
    bool is_traced;
    int r;

    *out = (struct shadow_fault){ .cr2 = gva };
    if (ensure_mode(s) < 0)
        return E_NOMEM;
    if (!paging_on(s)) {
        gwalk_phys(s, gva, &w);
    } else {
        r = gwalk(s, gva, acc, &w, &out->guest_err);
        if (r == 1) {
            s->stats.reflected_faults++;
            out->gpde = w.pde;
            out->gpde_read = true;
        }
        if (r != 0)
            return r == 1 ? SHADOW_REFLECT : r;
        if (gset_ad(s, &w, acc & PF_W) < 0)
            return E_CORRUPT;
        if ((acc & PF_W) && !in_monitor(gva))
            try_unsync(s, w.gpa);
    }
    if (in_monitor(gva))
        return emulate(s, SHADOW_EMULATE_MONITOR, w.gpa, out);
    /* A write unshares the page (copy-on-write) before the fill maps it. */
    r = s->ops.gpa_to_hpa(s->ops.ctx, w.gpa & PTE_FRAME, acc & PF_W, &hpa);
    if (r == E_NOMEM && (acc & PF_W))
        return fail(s, E_NOMEM, "out of host memory for a private copy of a shared page");
    if (r < 0)
        return emulate(s, SHADOW_MMIO, w.gpa, out);
    r = fill(s, gva, &w, hpa, acc, r == SHADOW_FRAME_SHARED, true, &is_traced);
    if (r < 0)
        return r;
    if (is_traced && (acc & PF_W))
        return emulate(s, SHADOW_EMULATE_PT, w.gpa, out);
    if ((acc & PF_W) && code_page(s, w.gpa))
        return emulate(s, SHADOW_CODE_WRITE, w.gpa, out);
    s->stats.hidden_faults++;
    return SHADOW_FIXED;
}

int shadow_prefault(struct shadow *s, uint32_t gva, uint32_t acc)
{
    struct gwalk w;
    uint32_t hpa, err, d = (acc & PF_W) ? PTE_D : 0;
    bool is_traced;

    if (ensure_mode(s) < 0)
        return E_NOMEM;
    if (!paging_on(s) || in_monitor(gva) || gwalk(s, gva, acc, &w, &err) != 0)
        return 0;
    /* Nothing the access would set may be missing: a fill that is not a
     * guest-visible change. */
    if (!(w.pde & PTE_A) || (w.large ? (w.pde & d) != d : (w.pte & (PTE_A | d)) != (PTE_A | d)))
        return 0;
    int r = s->ops.gpa_to_hpa(s->ops.ctx, w.gpa & PTE_FRAME, false, &hpa);
    if (r < 0 || ((acc & PF_W) && r == SHADOW_FRAME_SHARED))
        return 0; /* not RAM, or the write unshares at its own fault */
    if ((acc & PF_W) && (traced(s, w.gpa & PTE_FRAME) || code_page(s, w.gpa)))
        return 0; /* that write is emulated anyway */
    /* No neighbours after a write: Linux's handler maps one page for it
     * (an anonymous page, a copy-on-write break), so the block is read
     * for nothing, where a read's may have been mapped around it
     * (a file's fault-around). */
    r = fill(s, gva, &w, hpa, acc, r == SHADOW_FRAME_SHARED, !(acc & PF_W), &is_traced);
    if (r < 0)
        return r;
    s->stats.prefaulted++;
    return 1;
}

int shadow_guest_translate(struct shadow *s, uint32_t gva, uint32_t acc, bool set_ad,
                           uint32_t *gpa, uint32_t *err)
{
    struct gwalk w;
    int r;

    if (!paging_on(s)) {
        *gpa = gva & s->a20_mask;
        return 0;
    }
    r = gwalk(s, gva, acc, &w, err);
    if (r != 0)
        return r;
    if (set_ad && gset_ad(s, &w, acc & PF_W) < 0)
        return E_CORRUPT;
    *gpa = w.gpa;
    return 0;
}

int shadow_guest_pt_page(struct shadow *s, uint32_t gva, uint32_t *pt_page)
{
    struct gwalk w;
    uint32_t err;
    int r;

    if (!paging_on(s))
        return 1;
    r = gwalk(s, gva, 0, &w, &err);
    if (r != 0)
        return r;
    if (w.large)
        return 1;
    *pt_page = w.pte_gpa & PTE_FRAME;
    return 0;
}

int shadow_mapped(const struct shadow *s, uint32_t gva, uint32_t acc, uint32_t *hpa)
{
    uint32_t need = PTE_P | ((acc & PF_W) ? PTE_RW : 0) | ((acc & PF_U) ? PTE_US : 0);

    if (s->active < 0 || in_monitor(gva) || s->pds[s->active].gcr3 != mode_key(s))
        return 1;
    uint16_t id = s->pds[s->active].child[PDX(gva)];
    if (!id)
        return 1;
    uint32_t spte = s->pts[id - 1].tbl[PTX(gva)];
    if ((spte & need) != need)
        return 1;
    *hpa = (spte & PTE_FRAME) | (gva & ~PTE_FRAME);
    return 0;
}

bool shadow_guest_global(struct shadow *s, uint32_t gva)
{
    struct gwalk w;
    uint32_t err;

    if (!paging_on(s))
        return true;
    if (!(s->gcr4 & CR4_PGE) || gwalk(s, gva, 0, &w, &err) != 0)
        return false;
    return ((w.large ? w.pde : w.pte) & PTE_G) != 0;
}

/* ---------------------------------------------------------------- 5. sync */

/*
 * zap_entry - guest entry at gpa (4-byte aligned) changed: drop what was
 * built from it. As a directory entry: the whole shadow PT under it. As a
 * page-table entry: the spte in every shadow PT built from that page.
 */
static void zap_entry(struct shadow *s, uint32_t gpa)
{
    uint32_t page = gpa & PTE_FRAME, idx = (gpa & ~PTE_FRAME) / 4;
    int i = pd_find(s, page);

    if (i >= 0 && monitor_pde(idx)) {
        s->pds[i].monitor_gpdes = monitor_gpdes_of(s, page);
    } else if (i >= 0 && s->pds[i].child[idx]) {
        pt_unlink(s, s->pds[i].child[idx] - 1, i, true);
        s->stats.zaps++;
    }
    for (uint16_t id = s->hash[hash_of(page)]; id; id = s->pts[id - 1].hnext) {
        struct shadow_pt *pt = &s->pts[id - 1];

        if (pt->gsrc == page && pt->kind == SPT_4K && (pt->tbl[idx] & PTE_P)) {
            spte_write(s, pt, idx, 0);
            s->stats.zaps++;
        }
    }
}

/*
 * note_write - one traced store hit page: count it against every shadow
 * built from the page, and unshadow the ones written SHADOW_FLOOD times with
 * no fill through them in between (the page is likely no longer, or not yet,
 * used as a table; the active directory is never dropped). Returns true if
 * the page was traced.
 */
static bool note_write(struct shadow *s, uint32_t page)
{
    bool hit = false;
    uint16_t id = s->hash[hash_of(page)];
    int i = pd_find(s, page);

    while (id) {
        struct shadow_pt *pt = &s->pts[id - 1];
        uint16_t next = pt->hnext;

        if (pt->gsrc == page && pt->kind == SPT_4K) {
            hit = true;
            if (++pt->writes >= SHADOW_FLOOD) {
                pt_free(s, id - 1, true);
                s->stats.floods++;
            }
        }
        id = next;
    }
    if (i >= 0) {
        hit = true;
        if (++s->pds[i].writes >= SHADOW_FLOOD && i != s->active) {
            pd_free(s, i);
            s->stats.floods++;
        }
    }
    return hit;
}

int shadow_pt_write(struct shadow *s, uint32_t gpa, const void *bytes, uint32_t len)
{
    const uint8_t *src = bytes;
    uint32_t first = gpa & ~3u, end = gpa + len;

    s->tlb_gen++;
    if (len == 0 || len > PAGE_SIZE || end < gpa)
        return fail(s, E_INVAL, "page-table store size");
    for (uint32_t dw = first; dw < end; dw += 4) {
        uint32_t old, new;

        if (s->ops.read_gpa32(s->ops.ctx, dw, &old) < 0)
            return fail(s, E_INVAL, "page-table store outside guest RAM");
        new = old;
        for (uint32_t b = MAX(dw, gpa); b < MIN(dw + 4, end); b++) {
            new &= ~(0xFFu << (8 * (b - dw)));
            new |= (uint32_t)src[b - gpa] << (8 * (b - dw));
        }
        if (s->ops.write_gpa32(s->ops.ctx, dw, new) < 0)
            return fail(s, E_INVAL, "page-table store outside guest RAM");
        if (new != old)
            zap_entry(s, dw);
    }
    bool hit = note_write(s, gpa & PTE_FRAME);
    if (((end - 1) & PTE_FRAME) != (gpa & PTE_FRAME))
        hit |= note_write(s, (end - 1) & PTE_FRAME);
    s->stats.pt_writes += hit;
    return 0;
}

/* ---------------------------------------------------------------- 5b. out of sync */

/*
 * Linux writes a page table's entries in runs: a demand fault's new PTE,
 * fork's copy-on-write protection of every PTE of the parent, exit's
 * teardown. Traced, each store is an exit and an emulation. Out of sync,
 * the first store makes the page writable (one hidden fault) and the rest
 * run natively; the shadow PTs built from the page may then hold entries
 * the guest has since changed, exactly as a TLB may (SDM Vol. 3A
 * §4.10.4.2: software must flush after changing an entry), until the
 * guest flushes: INVLPG drops its one entry (shadow_invlpg), a CR3, CR0 or
 * CR4 write resyncs them all (every entry checked against the guest PTE,
 * the page write-protected again). A fill always reads the guest PTE as it
 * is now, so a new or upgraded entry is seen at its first fault, as on
 * hardware. KVM does the same (mmu "unsync" shadow pages).
 */

/* true if page has an out-of-sync shadow PT (then all of its are, U1). */
static bool page_unsynced(const struct shadow *s, uint32_t page)
{
    for (uint16_t id = s->hash[hash_of(page)]; id; id = s->pts[id - 1].hnext)
        if (s->pts[id - 1].gsrc == page && s->pts[id - 1].kind == SPT_4K && s->pts[id - 1].unsync)
            return true;
    return false;
}

/*
 * try_unsync - a write the guest allowed hit traced page at gpa; let the
 * page go out of sync if it is shadowed as page tables only (U1) and not
 * written SHADOW_FLOOD times without a fill (then it is unshadowed,
 * note_write). Afterwards the fill maps the page writable, since it is no
 * longer traced. The entry written is kept: the resync refills it.
 */
static void try_unsync(struct shadow *s, uint32_t gpa)
{
    uint32_t page = gpa & PTE_FRAME;

    if (!s->unsync_on || !traced(s, page) || pd_find(s, page) >= 0 || code_page(s, page))
        return;
    note_write(s, page);
    for (uint16_t id = s->hash[hash_of(page)]; id; id = s->pts[id - 1].hnext) {
        struct shadow_pt *pt = &s->pts[id - 1];

        if (pt->gsrc == page && pt->kind == SPT_4K && !pt->unsync) {
            unsync_mark(s, id - 1, true);
            pt->unsync_idx = (uint16_t)((gpa & ~PTE_FRAME) / 4);
        }
    }
    s->stats.unsyncs++;
}

/*
 * spte_current - may present spte v at entry j of out-of-sync shadow PT pt
 * stay? Only if the guest PTE still gives at least its rights to the same
 * frame, with A (and D for a writable one) set: the PDE is traced, so the
 * PTE alone can have changed. Anything else (and any doubt) drops it.
 * gpte: the guest PTE if the caller read it, else NULL (read here).
 */
static bool spte_current(struct shadow *s, const struct shadow_pt *pt, unsigned j, uint32_t v, const uint32_t *gpte)
{
    uint32_t g, hpa;
    int r;

    if (gpte_at(s, pt->gsrc + j * 4, gpte, &g) < 0 || (g & (PTE_P | PTE_A)) != (PTE_P | PTE_A))
        return false;
    if (((v & PTE_RW) && (g & (PTE_RW | PTE_D)) != (PTE_RW | PTE_D)) || ((v & PTE_US) && !(g & PTE_US)) ||
        ((v ^ g) & (PTE_PWT | PTE_PCD)))
        return false;
    r = s->ops.gpa_to_hpa(s->ops.ctx, g & PTE_FRAME, false, &hpa);
    return r >= 0 && (hpa & PTE_FRAME) == (v & PTE_FRAME) && (r == SHADOW_FRAME_SHARED) == !!(v & SPTE_SHARED);
}

/*
 * Bring out-of-sync shadow PT id back in sync: drop every stale spte. Then
 * fill the entry whose store made the table go out of sync, if the guest
 * PTE there needs no A/D update (prefetch's rule, prefill): a PTE the guest
 * just wrote is one it is about to use. Linux's text_poke() writes the PTE
 * of its temporary mapping, loads CR3 (this resync) and stores through it,
 * some 8,000 times in a boot; without this, every one of those stores was
 * a hidden fault.
 */
#define RESYNC_CHUNK 16u /* guest PTEs read at once by pt_resync (64 bytes) */

static void pt_resync(struct shadow *s, uint16_t id)
{
    struct shadow_pt *pt = &s->pts[id];
    uint32_t g[RESYNC_CHUNK];

    /* The guest PTEs a chunk at a time where two or more entries of it are
     * present (one frame map instead of one each: a process's stack or
     * heap table resyncs at every switch to it), else one by one. */
    for (unsigned j0 = 0; j0 < 1024; j0 += RESYNC_CHUNK) {
        unsigned present = 0;
        for (unsigned j = j0; j < j0 + RESYNC_CHUNK; j++)
            present += (pt->tbl[j] & PTE_P) != 0;
        if (!present)
            continue;
        const uint32_t *block = present >= 2 ? gptes_block(s, pt->gsrc + j0 * 4, g, RESYNC_CHUNK) : NULL;
        for (unsigned j = j0; j < j0 + RESYNC_CHUNK; j++)
            if ((pt->tbl[j] & PTE_P) && !spte_current(s, pt, j, pt->tbl[j], block ? &block[j - j0] : NULL)) {
                spte_write(s, pt, j, 0);
                s->stats.resync_zaps++;
            }
    }
    if (pt->unsync_idx != SPT_NO_IDX && !(pt->tbl[pt->unsync_idx] & PTE_P)) {
        struct gwalk w = { .pde = pt->gpde };
        s->stats.resync_fills += prefill(s, pt, &w, pt->unsync_idx, NULL, 0);
    }
    pt->unsync_idx = SPT_NO_IDX;
    unsync_mark(s, id, false);
    s->stats.resyncs++;
}

/* page_sync - resync every shadow PT of page and trace the page again (I3). */
static void page_sync(struct shadow *s, uint32_t page)
{
    bool any = false;

    for (uint16_t id = s->hash[hash_of(page)]; id; id = s->pts[id - 1].hnext)
        if (s->pts[id - 1].gsrc == page && s->pts[id - 1].kind == SPT_4K && s->pts[id - 1].unsync) {
            pt_resync(s, id - 1);
            any = true;
        }
    if (any)
        write_protect(s, page);
}

/* A TLB flush of the guest's: resync every out-of-sync page table, found
 * in unsync_map. page_sync clears the bits of every shadow of the page,
 * later ones of this word included: each bit is looked up again. */
static void resync_all(struct shadow *s)
{
    for (unsigned w = 0; s->nunsync && w < SHADOW_MAX_PTS / 32; w++)
        for (uint32_t m = s->unsync_map[w]; m; m &= m - 1) {
            struct shadow_pt *pt = &s->pts[w * 32 + __builtin_ctz(m)];
            if (pt->unsync)
                page_sync(s, pt->gsrc);
        }
}

int shadow_set_unsync(struct shadow *s, bool on)
{
    resync_all(s);
    s->unsync_on = on;
    return 0;
}


void shadow_gpa_changed(struct shadow *s, uint32_t gpa, uint32_t len)
{
    uint64_t end = (uint64_t)gpa + len;

    s->tlb_gen++;
    for (uint64_t page = gpa & PTE_FRAME; page < end; page += PAGE_SIZE) {
        if (!traced(s, (uint32_t)page))
            continue;
        for (uint64_t dw = MAX(page, gpa & ~3u); dw < MIN(page + PAGE_SIZE, end); dw += 4)
            zap_entry(s, (uint32_t)dw);
    }
}

void shadow_zap_frame(struct shadow *s, uint32_t hpa)
{
    for (uint16_t e = *rmap_bucket(s, hpa); e;) {
        struct shadow_rmap *r = &s->rmap[e - 1];
        struct shadow_pt *pt = &s->pts[r->pt];
        uint16_t next = r->next;

        if ((pt->tbl[r->idx] & PTE_FRAME) == hpa) {
            spte_write(s, pt, r->idx, 0);
            s->stats.frame_zaps++;
        }
        e = next;
    }
}

/* Insertion sort: n is a batch of at most a few hundred frames. */
static void sort_u32(uint32_t *v, unsigned n)
{
    for (unsigned i = 1; i < n; i++) {
        uint32_t x = v[i];
        unsigned j = i;
        for (; j > 0 && v[j - 1] > x; j--)
            v[j] = v[j - 1];
        v[j] = x;
    }
}

static bool in_sorted(const uint32_t *v, unsigned n, uint32_t x)
{
    unsigned lo = 0, hi = n;

    while (lo < hi) {
        unsigned mid = (lo + hi) / 2;
        if (v[mid] == x)
            return true;
        if (v[mid] < x)
            lo = mid + 1;
        else
            hi = mid;
    }
    return false;
}

/* A frame's bit in shadow_zap_frames' filter (ZAP_FILTER_BITS). */
#define ZAP_FILTER_BITS 4096u
static uint32_t zap_bit(uint32_t spte) { return (spte >> PAGE_SHIFT) & (ZAP_FILTER_BITS - 1); }

void shadow_zap_frames(struct shadow *s, uint32_t *hpas, unsigned n)
{
    uint32_t filter[ZAP_FILTER_BITS / 32] = { 0 };
    if (!n)
        return;
    sort_u32(hpas, n);
    /* Every present spte is looked at (read-only ones are in no reverse
     * map): a batch's frames set at most n of 4,096 bits (n <= 256), so
     * most entries are passed over by one bit test instead of a binary
     * search. */
    for (unsigned k = 0; k < n; k++)
        filter[zap_bit(hpas[k]) / 32] |= 1u << (zap_bit(hpas[k]) % 32);
    for (unsigned id = 0; id < s->cfg.max_pts; id++) {
        struct shadow_pt *pt = &s->pts[id];

        if (!pt->hpa)
            continue;
        for (unsigned i = 0; i < 1024; i++) {
            uint32_t v = pt->tbl[i];
            if (!(v & PTE_P) || !(filter[zap_bit(v) / 32] & (1u << (zap_bit(v) % 32))))
                continue;
            if (in_sorted(hpas, n, v & PTE_FRAME)) {
                spte_write(s, pt, i, 0);
                s->stats.frame_zaps++;
            }
        }
    }
}

/* ---------------------------------------------------------------- 6. control regs */

/* gva's shadow entry, or its table if the guest PDE changed (*known: that
 * PDE as the caller read it just now, or NULL to read it). */
static void drop_page(struct shadow *s, uint32_t gva, const uint32_t *known)
{
    uint32_t gpde = known ? *known : 0;

    if (s->active < 0 || s->pds[s->active].gcr3 != mode_key(s) || in_monitor(gva))
        return;
    struct shadow_pd *pd = &s->pds[s->active];
    uint16_t id = pd->child[PDX(gva)];
    if (!id)
        return;
    struct shadow_pt *pt = &s->pts[id - 1];
    /* A 4 MiB page is one TLB entry; a changed PDE is a changed
     * paging-structure cache entry (§4.10.4.1): both go whole. */
    if (pt->kind == SPT_4M ||
        (pt->kind == SPT_4K &&
         ((!known && s->ops.read_gpa32(s->ops.ctx, (s->gcr3 & PTE_FRAME) + PDX(gva) * 4, &gpde) < 0) ||
          !same_gpde(gpde, pt->gpde)))) {
        pt_unlink(s, id - 1, s->active, true);
        return;
    }
    if (pt->tbl[PTX(gva)] & PTE_P)
        spte_write(s, pt, PTX(gva), 0);
}

void shadow_invlpg(struct shadow *s, uint32_t gva)
{
    s->tlb_gen++;
    drop_page(s, gva, NULL);
}

void shadow_fault_invalidate(struct shadow *s, uint32_t gva, const uint32_t *gpde) { drop_page(s, gva, gpde); }

/* Drop every shadow; the active directory only loses its tables (I7) unless all. */
static void free_all(struct shadow *s, bool all)
{
    for (int i = 0; i < SHADOW_MAX_PDS; i++) {
        if (!s->pds[i].hpa)
            continue;
        if (all || i != s->active) {
            pd_free(s, i);
            continue;
        }
        for (unsigned pde = 0; pde < 1024; pde++)
            if (s->pds[i].child[pde])
                pt_unlink(s, s->pds[i].child[pde] - 1, i, false);
    }
}

int shadow_flush_all(struct shadow *s)
{
    int old = s->active, r;

    s->tlb_gen++;
    resync_all(s); /* free_all drops them anyway; this keeps the count exact */
    free_all(s, false);
    s->stats.full_flushes++;
    /* The emptied directory is reloaded before its tables' frames are reused. */
    if (old >= 0)
        s->ops.flush_all(s->ops.ctx);
    r = activate(s, mode_key(s));
    if (s->active != old && s->active >= 0)
        s->ops.flush_all(s->ops.ctx);
    return r;
}

/* PAE paging (CR0.PG and CR4.PAE) is not shadowed: hv86 presents a non-PAE CPU. */
static int check_mode(struct shadow *s)
{
    if (paging_on(s) && (s->gcr4 & CR4_PAE))
        return fail(s, E_INVAL, "guest enabled PAE paging");
    return 0;
}

int shadow_set_cr0(struct shadow *s, uint32_t gcr0)
{
    uint32_t old = s->gcr0;

    s->tlb_gen++;
    resync_all(s);
    s->gcr0 = gcr0;
    if (check_mode(s) < 0)
        return E_INVAL;
    /* WP 0->1 takes rights away that shadows built under WP=0 gave; 1->0
     * only gives, and the next fault re-walks. */
    if ((gcr0 & ~old) & CR0_WP)
        return shadow_flush_all(s);
    if ((gcr0 ^ old) & CR0_PG)
        return activate(s, mode_key(s));
    return 0;
}

int shadow_set_cr4(struct shadow *s, uint32_t gcr4)
{
    uint32_t old = s->gcr4;

    s->tlb_gen++;
    resync_all(s);
    s->gcr4 = gcr4;
    if (check_mode(s) < 0)
        return E_INVAL;
    if ((gcr4 ^ old) & CR4_PSE)
        return shadow_flush_all(s);
    return 0;
}

int shadow_set_cr3(struct shadow *s, uint32_t gcr3)
{
    s->tlb_gen++;
    resync_all(s);
    s->gcr3 = gcr3;
    if (!paging_on(s))
        return 0;
    return activate(s, gcr3 & PTE_FRAME);
}

uint32_t shadow_scr3(const struct shadow *s) { return s->active < 0 ? 0 : s->pds[s->active].hpa; }

uint32_t shadow_monitor_gpdes(const struct shadow *s)
{
    return s->active < 0 ? 0 : s->pds[s->active].monitor_gpdes;
}

void shadow_get_stats(const struct shadow *s, struct shadow_stats *st) { *st = s->stats; }

const char *shadow_why(const struct shadow *s) { return s->why ? s->why : ""; }

int shadow_init(struct shadow *s, const struct shadow_ops *ops, const struct shadow_config *cfg)
{
    struct shadow_config c = { SHADOW_MAX_PDS, SHADOW_MAX_PTS };

    if (cfg)
        c = *cfg;
    if (c.max_pds < 2 || c.max_pds > SHADOW_MAX_PDS || c.max_pts < 8 || c.max_pts > SHADOW_MAX_PTS ||
        !ops->monitor_pdes)
        return E_INVAL;
    memset(s, 0, sizeof(*s));
    s->ops = *ops;
    s->cfg = c;
    s->active = -1;
    for (unsigned id = 0; id < c.max_pts; id++)
        s->pts[id].hnext = id + 1 < c.max_pts ? id + 2 : 0;
    s->pt_free = 1;
    shadow_limit_writable(s, MIN(16 * c.max_pts, SHADOW_MAX_WRITABLE));
    s->prefetch = SHADOW_PREFETCH;
    s->unsync_on = true;
    s->a20_mask = 0xFFFFFFFFu;
    return activate(s, SHADOW_GCR3_PHYS);
}

int shadow_set_a20(struct shadow *s, bool enabled)
{
    uint32_t mask = enabled ? 0xFFFFFFFFu : ~SHADOW_A20_BIT;

    s->tlb_gen++;
    if (mask == s->a20_mask)
        return 0;
    s->a20_mask = mask;
    /* Every identity shadow built under the other mask maps 1 MiB up wrongly. */
    return shadow_flush_all(s);
}

int shadow_set_prefetch(struct shadow *s, uint32_t n)
{
    if (n > SHADOW_PREFETCH_MAX || (n & (n - 1)))
        return E_INVAL;
    s->prefetch = n;
    return 0;
}

int shadow_limit_writable(struct shadow *s, uint32_t n)
{
    if (n < 8 || n > SHADOW_MAX_WRITABLE)
        return E_INVAL;
    if (s->stats.writable)
        return E_BUSY;
    s->max_writable = n;
    s->rmap_hand = 0;
    for (unsigned e = 0; e < n; e++)
        s->rmap[e] = (struct shadow_rmap){ .next = e + 1 < n ? e + 2 : 0 };
    s->rmap_free = 1;
    return 0;
}

void shadow_destroy(struct shadow *s)
{
    free_all(s, true);
    s->active = -1;
}
