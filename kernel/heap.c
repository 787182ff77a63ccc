/*
 * Kernel heap (contract in kernel/heap.h).
 *
 * Map of this file:
 *   1. layout: descriptors, object headers, size-class geometry
 *   2. objects: header checksum, canary, poison
 *   3. slabs: create (or reuse the spare page), claim a slot, put a slot back,
 *      release an empty slab
 *   4. large objects: one run of pages per object
 *   5. heap_alloc / heap_free / heap_check
 *   6. the kernel instance (kmalloc, kfree, ...)
 *
 * Every page run the heap owns starts with a struct heap_slab descriptor, so
 * heap_free finds an object's descriptor by rounding the pointer down to its
 * page -- no lookup table -- and rejects pages whose descriptor does not carry
 * a heap magic and this heap's address.
 *
 * A slab page holds slots of one class, each [header][payload][trailer]: the
 * trailer leaves room for the 16-byte canary after a full-size payload, so a
 * one-byte overflow of any object lands on its own canary, never on the next
 * header. Slots are 16 + class + 16 bytes, which keeps payloads 16-aligned.
 *
 * Invariants:
 *   - a live slab is on partial[cls] iff nfree > 0, else on full[cls];
 *     a slab with every slot free is not on any list (released or spare);
 *   - freemap bit i set <=> slot i is free <=> its header says OBJ_FREE and
 *     its payload and trailer are all HEAP_POISON;
 *   - every allocated object has an OBJ_ALLOC header whose checksum matches
 *     and the canary right after its requested bytes;
 *   - released pages keep their descriptor with magic PAGE_DEAD, so a late
 *     free through a stale pointer reads as a double free, not as foreign.
 */
#include "kernel/heap.h"
#include "kernel/kernel.h"
#include "kernel/layout.h"

/* ---------------------------------------------------------------- layout */

#define SLAB_LIVE  0x534c4142u /* "SLAB": slab page in use */
#define LARGE_LIVE 0x4c524745u /* "LRGE": first page of a live large object */
#define PAGE_DEAD  0x44454144u /* "DEAD": spare or released page */
#define OBJ_MAGIC  0x4f424a31u /* "OBJ1": object header */

enum obj_state {
    OBJ_FREE = 0x46524545u,  /* slot free and poisoned */
    OBJ_ALLOC = 0x414c4c4fu, /* handed out */
    OBJ_BAD = 0x42414421u,   /* quarantined: written to while free */
};

#define CLASS_LARGE    0xffffu /* heap_slab.cls of a large object */
#define SLAB_MAP_WORDS 3       /* freemap words: up to 96 slots per slab */

struct heap_slab {
    uint32_t magic; /* SLAB_LIVE, LARGE_LIVE or PAGE_DEAD */
    struct heap *owner;
    struct heap_slab *next, *prev; /* partial/full list or the large list */
    uint16_t cls;    /* size class index, or CLASS_LARGE */
    uint16_t nslots; /* slots in this slab */
    uint16_t nfree;  /* free slots */
    uint16_t pad;
    uint32_t npages; /* pages in this run (1 for a slab) */
    uint32_t freemap[SLAB_MAP_WORDS]; /* bit set = slot free */
};

struct obj_hdr {
    uint32_t magic; /* OBJ_MAGIC */
    uint32_t state; /* enum obj_state */
    uint32_t bytes; /* requested size; 0 unless OBJ_ALLOC */
    uint32_t check; /* hdr_sum(): catches stray writes into the header */
};

_Static_assert(sizeof(struct heap_slab) <= HEAP_SLAB_FIRST, "descriptor overlaps slot 0");
_Static_assert(HEAP_SLAB_FIRST % HEAP_ALIGN == 0, "slot 0 misaligned");
_Static_assert(sizeof(struct obj_hdr) == HEAP_ALIGN, "header must keep payloads aligned");
_Static_assert(HEAP_SLAB_FIRST + sizeof(struct obj_hdr) == HEAP_LARGE_OFFSET, "large layout");
_Static_assert((PAGE_SIZE - HEAP_SLAB_FIRST) / (HEAP_MIN_CLASS + 2 * HEAP_ALIGN) <=
                   32 * SLAB_MAP_WORDS, "freemap too small for the smallest class");

/* Varied bytes, so that neither a zero fill nor a poison fill looks intact. */
static const uint8_t canary[HEAP_CANARY_BYTES] = {
    0xc5, 0x3a, 0x96, 0x0f, 0xe1, 0x5c, 0x27, 0xb8,
    0x4d, 0x72, 0xaa, 0x19, 0xd6, 0x81, 0x3e, 0x60,
};

static size_t class_size(unsigned c) { return (size_t)HEAP_MIN_CLASS << c; }

static size_t class_stride(unsigned c)
{
    return sizeof(struct obj_hdr) + class_size(c) + HEAP_CANARY_BYTES;
}

static unsigned class_slots(unsigned c) { return (PAGE_SIZE - HEAP_SLAB_FIRST) / class_stride(c); }

/* Smallest class holding bytes (1 .. HEAP_MAX_CLASS). */
static unsigned class_of(size_t bytes)
{
    unsigned c = 0;

    while (class_size(c) < bytes)
        c++;
    return c;
}

static size_t large_pages(size_t bytes)
{
    return (HEAP_LARGE_OFFSET + bytes + HEAP_CANARY_BYTES + PAGE_SIZE - 1) / PAGE_SIZE;
}

static struct heap_slab *page_of(const void *p)
{
    return (struct heap_slab *)((uintptr_t)p & ~(uintptr_t)(PAGE_SIZE - 1));
}

static struct obj_hdr *slot_hdr(struct heap_slab *s, unsigned i)
{
    return (struct obj_hdr *)((char *)s + HEAP_SLAB_FIRST + i * class_stride(s->cls));
}

static unsigned slot_index(struct heap_slab *s, struct obj_hdr *o)
{
    return ((char *)o - ((char *)s + HEAP_SLAB_FIRST)) / class_stride(s->cls);
}

static bool map_test(const uint32_t *map, unsigned i) { return (map[i / 32] >> (i % 32)) & 1; }

/* ---------------------------------------------------------------- objects */

/* The header's address is mixed in so that a header copied elsewhere fails. */
static uint32_t hdr_sum(const struct obj_hdr *o)
{
    return o->magic ^ o->state ^ (o->bytes * 0x9e3779b1u) ^ (uint32_t)(uintptr_t)o;
}

static void hdr_set(struct obj_hdr *o, enum obj_state state, size_t bytes)
{
    o->magic = OBJ_MAGIC;
    o->state = state;
    o->bytes = bytes;
    o->check = hdr_sum(o);
}

static bool hdr_ok(const struct obj_hdr *o, enum obj_state state)
{
    return o->magic == OBJ_MAGIC && o->state == state && o->check == hdr_sum(o);
}

static bool bytes_all(const uint8_t *b, size_t n, uint8_t v)
{
    for (size_t i = 0; i < n; i++)
        if (b[i] != v)
            return false;
    return true;
}

/* Hand o out for bytes bytes: header, then the canary right after them. */
static void *obj_arm(struct obj_hdr *o, size_t bytes)
{
    hdr_set(o, OBJ_ALLOC, bytes);
    memcpy((char *)(o + 1) + bytes, canary, HEAP_CANARY_BYTES);
    return o + 1;
}

/* Largest request object o of page s can have held. */
static size_t obj_capacity(const struct heap_slab *s)
{
    if (s->cls == CLASS_LARGE)
        return (size_t)s->npages * PAGE_SIZE - HEAP_LARGE_OFFSET - HEAP_CANARY_BYTES;
    return class_size(s->cls);
}

/* True if o, in page s, is an intact allocated object. */
static bool obj_live(const struct heap_slab *s, const struct obj_hdr *o)
{
    if (!hdr_ok(o, OBJ_ALLOC) || o->bytes == 0 || o->bytes > obj_capacity(s))
        return false;
    if (s->cls == CLASS_LARGE && s->npages != large_pages(o->bytes))
        return false;
    return memcmp((const char *)(o + 1) + o->bytes, canary, HEAP_CANARY_BYTES) == 0;
}

/* True if the free slot o of slab s was not written since it was freed. */
static bool slot_untouched(const struct heap_slab *s, const struct obj_hdr *o)
{
    return hdr_ok(o, OBJ_FREE) &&
           bytes_all((const uint8_t *)(o + 1), class_size(s->cls) + HEAP_CANARY_BYTES, HEAP_POISON);
}

/* ---------------------------------------------------------------- lists */

static void list_push(struct heap_slab **head, struct heap_slab *s)
{
    s->prev = NULL;
    s->next = *head;
    if (*head)
        (*head)->prev = s;
    *head = s;
}

static void list_del(struct heap_slab **head, struct heap_slab *s)
{
    if (s->prev)
        s->prev->next = s->next;
    else
        *head = s->next;
    if (s->next)
        s->next->prev = s->prev;
}

/* ---------------------------------------------------------------- pages */

static void pages_put(struct heap *h, void *p, size_t npages)
{
    h->stats.bytes_reserved -= npages * PAGE_SIZE;
    h->ops.page_free(h->ops.ctx, p, npages);
}

/* npages from ops.page_alloc; when the source is dry, the spare slab page is
 * handed back first, since it may be exactly what a large request lacks. */
static void *pages_get(struct heap *h, size_t npages)
{
    void *p = h->ops.page_alloc(h->ops.ctx, npages);

    if (!p && h->spare) {
        pages_put(h, h->spare, 1);
        h->spare = NULL;
        p = h->ops.page_alloc(h->ops.ctx, npages);
    }
    if (p)
        h->stats.bytes_reserved += npages * PAGE_SIZE;
    return p;
}

/* ---------------------------------------------------------------- slabs */

/* A slab of class c with every slot free and poisoned, on partial[c]; NULL if
 * there is no spare page and ops.page_alloc fails. */
static struct heap_slab *slab_new(struct heap *h, unsigned c)
{
    struct heap_slab *s = h->spare;

    if (s)
        h->spare = NULL;
    else if (!(s = pages_get(h, 1)))
        return NULL;
    memset(s, HEAP_POISON, PAGE_SIZE);
    *s = (struct heap_slab){ .magic = SLAB_LIVE, .owner = h, .cls = c, .npages = 1 };
    s->nslots = s->nfree = class_slots(c);
    for (unsigned i = 0; i < s->nslots; i++) {
        s->freemap[i / 32] |= 1u << (i % 32);
        hdr_set(slot_hdr(s, i), OBJ_FREE, 0);
    }
    list_push(&h->partial[c], s);
    return s;
}

/* Take the lowest free slot of s off the freemap; s->nfree must be > 0. */
static struct obj_hdr *slot_claim(struct heap_slab *s)
{
    unsigned w = 0;

    while (!s->freemap[w])
        w++;
    unsigned i = w * 32 + __builtin_ctz(s->freemap[w]);
    s->freemap[w] &= ~(1u << (i % 32));
    s->nfree--;
    return slot_hdr(s, i);
}

/*
 * Allocate bytes from slab s (on partial[cls]). Slots written to while free
 * are quarantined as OBJ_BAD and skipped; NULL only if that used them all up.
 */
static void *slab_take(struct heap *h, struct heap_slab *s, size_t bytes)
{
    void *p = NULL;

    while (!p && s->nfree) {
        struct obj_hdr *o = slot_claim(s);

        if (slot_untouched(s, o)) {
            p = obj_arm(o, bytes);
        } else {
            hdr_set(o, OBJ_BAD, 0);
            h->stats.poison_faults++;
        }
    }
    if (!s->nfree) {
        list_del(&h->partial[s->cls], s);
        list_push(&h->full[s->cls], s);
    }
    return p;
}

static void *slab_alloc(struct heap *h, size_t bytes)
{
    unsigned c = class_of(bytes);
    void *p = NULL;

    while (!p) {
        struct heap_slab *s = h->partial[c] ? h->partial[c] : slab_new(h, c);

        if (!s)
            return NULL;
        p = slab_take(h, s, bytes);
    }
    return p;
}

/* An empty slab leaves its list; one is kept as the spare (a free/alloc
 * cycle at a slab boundary must not cost a page round trip each time). */
static void slab_release(struct heap *h, struct heap_slab *s)
{
    list_del(&h->partial[s->cls], s);
    s->magic = PAGE_DEAD;
    if (!h->spare) {
        h->spare = s;
        return;
    }
    pages_put(h, s, 1);
}

/* Return the intact allocated object o to its slab s. */
static void slab_put(struct heap *h, struct heap_slab *s, struct obj_hdr *o)
{
    unsigned i = slot_index(s, o);

    memset(o + 1, HEAP_POISON, class_size(s->cls) + HEAP_CANARY_BYTES);
    hdr_set(o, OBJ_FREE, 0);
    s->freemap[i / 32] |= 1u << (i % 32);
    if (s->nfree++ == 0) {
        list_del(&h->full[s->cls], s);
        list_push(&h->partial[s->cls], s);
    }
    if (s->nfree == s->nslots)
        slab_release(h, s);
}

/* ---------------------------------------------------------------- large */

static void *large_alloc(struct heap *h, size_t bytes)
{
    size_t npages = large_pages(bytes);
    struct heap_slab *s = pages_get(h, npages);

    if (!s)
        return NULL;
    *s = (struct heap_slab){ .magic = LARGE_LIVE, .owner = h, .cls = CLASS_LARGE, .npages = npages };
    list_push(&h->large, s);
    return obj_arm((struct obj_hdr *)((char *)s + HEAP_SLAB_FIRST), bytes);
}

static void large_release(struct heap *h, struct heap_slab *s)
{
    list_del(&h->large, s);
    s->magic = PAGE_DEAD;
    pages_put(h, s, s->npages);
}

/* ---------------------------------------------------------------- heap_* */

void heap_init(struct heap *h, const struct heap_ops *ops)
{
    *h = (struct heap){ .ops = *ops };
}

void *heap_alloc(struct heap *h, size_t bytes)
{
    void *p = NULL;

    if (bytes && bytes <= HEAP_MAX_BYTES)
        p = bytes <= HEAP_MAX_CLASS ? slab_alloc(h, bytes) : large_alloc(h, bytes);
    if (!p) {
        h->stats.failed_allocs++;
        return NULL;
    }
    h->stats.bytes_in_use += bytes;
    h->stats.allocs++;
    h->stats.total_allocs++;
    return p;
}

/* The descriptor of p's page if it is one of h's pages (live or dead). */
static int page_lookup(struct heap *h, const void *p, struct heap_slab **out)
{
    struct heap_slab *s = page_of(p);

    if ((uintptr_t)p % HEAP_ALIGN)
        return E_INVAL;
    if (s->magic != SLAB_LIVE && s->magic != LARGE_LIVE && s->magic != PAGE_DEAD)
        return E_INVAL;
    if (s->owner != h)
        return E_INVAL;
    if (s->cls == CLASS_LARGE ? s->npages == 0
                              : s->cls >= HEAP_NCLASSES || s->nslots != class_slots(s->cls))
        return E_CORRUPT;
    *out = s;
    return 0;
}

/* Header of the object p starts, if p is exactly where one of h's payloads
 * begins: E_INVAL if not, E_CORRUPT if its page was already released. */
static int obj_locate(struct heap *h, void *p, struct heap_slab **sp, struct obj_hdr **op)
{
    struct heap_slab *s;
    char *first;
    int err = page_lookup(h, p, &s);

    if (err)
        return err;
    first = (char *)s + HEAP_SLAB_FIRST + sizeof(struct obj_hdr);
    if (s->cls == CLASS_LARGE) {
        if ((char *)p != first)
            return E_INVAL;
    } else if ((char *)p < first || ((char *)p - first) % class_stride(s->cls) ||
               ((char *)p - first) / class_stride(s->cls) >= s->nslots) {
        return E_INVAL;
    }
    if (s->magic == PAGE_DEAD)
        return E_CORRUPT;
    *sp = s;
    *op = (struct obj_hdr *)p - 1;
    return 0;
}

int heap_free(struct heap *h, void *p)
{
    struct heap_slab *s;
    struct obj_hdr *o;
    int err;

    if (!p)
        return 0;
    err = obj_locate(h, p, &s, &o);
    if (err)
        return err;
    if (!obj_live(s, o))
        return E_CORRUPT; /* double free (OBJ_FREE), quarantined, or damaged */
    h->stats.bytes_in_use -= o->bytes;
    h->stats.allocs--;
    if (s->cls == CLASS_LARGE)
        large_release(h, s);
    else
        slab_put(h, s, o);
    return 0;
}

/* Check one slab of class c against the invariants; counts its live objects
 * and their bytes into *live and *bytes. */
static int slab_check(struct heap *h, struct heap_slab *s, unsigned c, bool on_partial,
                      size_t *live, size_t *bytes)
{
    unsigned nfree = 0;

    if (s->magic != SLAB_LIVE || s->owner != h || s->cls != c || s->nslots != class_slots(c) ||
        (s->nfree > 0) != on_partial)
        return E_CORRUPT;
    for (unsigned i = 0; i < 32 * SLAB_MAP_WORDS; i++) {
        struct obj_hdr *o = slot_hdr(s, i);

        if (i >= s->nslots) {
            if (map_test(s->freemap, i))
                return E_CORRUPT;
        } else if (map_test(s->freemap, i)) {
            if (!slot_untouched(s, o))
                return E_CORRUPT;
            nfree++;
        } else {
            if (!obj_live(s, o))
                return E_CORRUPT;
            (*live)++;
            *bytes += o->bytes;
        }
    }
    return nfree == s->nfree ? 0 : E_CORRUPT;
}

static int large_check(struct heap *h, struct heap_slab *s, size_t *live, size_t *bytes)
{
    struct obj_hdr *o = (struct obj_hdr *)((char *)s + HEAP_SLAB_FIRST);

    if (s->magic != LARGE_LIVE || s->owner != h || s->cls != CLASS_LARGE || !obj_live(s, o))
        return E_CORRUPT;
    (*live)++;
    *bytes += o->bytes;
    return 0;
}

int heap_check(struct heap *h)
{
    size_t live = 0, bytes = 0;

    for (unsigned c = 0; c < HEAP_NCLASSES; c++) {
        for (struct heap_slab *s = h->partial[c]; s; s = s->next)
            if (slab_check(h, s, c, true, &live, &bytes))
                return E_CORRUPT;
        for (struct heap_slab *s = h->full[c]; s; s = s->next)
            if (slab_check(h, s, c, false, &live, &bytes))
                return E_CORRUPT;
    }
    for (struct heap_slab *s = h->large; s; s = s->next)
        if (large_check(h, s, &live, &bytes))
            return E_CORRUPT;
    /* Catches a live object that fell off every list. */
    return live == h->stats.allocs && bytes == h->stats.bytes_in_use ? 0 : E_CORRUPT;
}

void heap_get_stats(const struct heap *h, struct heap_stats *out)
{
    *out = h->stats;
}

/* ---------------------------------------------------------------- kernel */

#ifndef HV86_HOSTED
#include "kernel/pmm.h"
#include "kernel/spinlock.h"

static struct heap kheap;
static spinlock_t kheap_lock = SPINLOCK_INIT("kheap");

/* Heap pages must be reachable through the direct map: ZONE_DIRECT only. */
static void *kheap_page_alloc(void *ctx, size_t npages)
{
    uint32_t pa;

    if (frame_alloc(ZONE_DIRECT, npages, &pa))
        return NULL;
    return phys_to_virt(pa);
}

static void kheap_page_free(void *ctx, void *pages, size_t npages)
{
    frame_free(virt_to_phys(pages), npages);
}

/* kheap_init - set up the kernel heap; call once, after pmm_boot_init. */
void kheap_init(void)
{
    static const struct heap_ops ops = { kheap_page_alloc, kheap_page_free, NULL };

    heap_init(&kheap, &ops);
}

/* kmalloc - heap_alloc on the kernel heap: bytes bytes, 16-aligned, or NULL.
 * Lock order: kheap_lock, then the pmm lock inside frame_alloc. */
void *kmalloc(size_t bytes)
{
    uint32_t flags = spin_lock_irqsave(&kheap_lock);
    size_t faults = kheap.stats.poison_faults;
    void *p = heap_alloc(&kheap, bytes);
    bool uaf = kheap.stats.poison_faults != faults;

    spin_unlock_irqrestore(&kheap_lock, flags);
    if (uaf)
        panic("kmalloc(%zu): a freed heap object was written to (use after free)", bytes);
    return p;
}

/* kzalloc - kmalloc, zero-filled. */
void *kzalloc(size_t bytes)
{
    void *p = kmalloc(bytes);

    if (p)
        memset(p, 0, bytes);
    return p;
}

/* kfree - heap_free on the kernel heap; panics on E_INVAL or E_CORRUPT. */
void kfree(void *p)
{
    uint32_t flags = spin_lock_irqsave(&kheap_lock);
    int err = heap_free(&kheap, p);

    spin_unlock_irqrestore(&kheap_lock, flags);
    if (err)
        panic("kfree(%p): %s", p, err_name(err));
}

/* kheap_stats - consistent snapshot of the kernel heap's counters. */
void kheap_stats(struct heap_stats *out)
{
    uint32_t flags = spin_lock_irqsave(&kheap_lock);

    heap_get_stats(&kheap, out);
    spin_unlock_irqrestore(&kheap_lock, flags);
}
#endif
