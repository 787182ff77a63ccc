/*
 * Translation cache: arenas, block hash, chaining, invalidation, eviction,
 * TC-address -> guest-EIP map. See bt/tc.h for the contracts.
 *
 * Map of this file:
 *   arenas     tc_init, tc_flush, tc_reserve_code, tc_begin_block,
 *              tc_alloc_exit, tc_commit_block
 *   lookup     tc_lookup (hash of guest eip), tc_ibl_insert
 *   links      tc_chain, unchain_inputs, tc_unchain_all (stub patching)
 *   SMC        tc_invalidate_page (page-bucket lists), kill_block
 *   fault map  tc_lookup_guest_eip (binary search over blocks, then imap)
 *
 * Invariants:
 *   - blocks[0..nblocks) are in ascending tca order (bump allocation);
 *   - every block since the last flush is on the page-bucket list of each
 *     of its pages (one to three: its own two, its inlined callees'), once
 *     per bucket (page_link), dead or alive;
 *   - a live block is in exactly one hash chain; a dead block in none, has
 *     no IBL entry and no chained exit pointing at it;
 *   - an exit stub is either pristine (tc->stub_head bytes) or "jmp rel32" to
 *     e->to->tca, and then e is on e->to->in_links; the Jcc of a stub with
 *     jcc_rel jumps to the stub, or to e->to->tca while it is chained.
 */
#include "bt/tc.h"
#include "kernel/kernel.h"

#define X86_JMP_REL32 0xE9   /* JMP rel32 (SDM Vol. 2A JMP) */
#define JMP_REL32_LEN 5

static uint32_t hash_eip(const struct tc *tc, uint32_t eip)
{
    return (eip ^ (eip >> 12)) & tc->hash_mask;
}

static uint32_t hash_page(uint32_t page)
{
    return (page >> 12) & (TC_PAGE_BUCKETS - 1);
}

/* Which of b's page links (page_next[i]) chains it in page bucket ph: the
 * first of its pages that hashes there. A block is in a bucket once, however
 * many of its pages hash to it (its own two and its callees' may). */
static uint32_t page_link(const struct tc_block *b, uint32_t ph)
{
    uint32_t i = 0;
    while (i + 1 < TC_BLOCK_PAGES && hash_page(b->page[i]) != ph)
        i++;
    return i;
}

/* Whether page is one of b's pages. */
static bool block_on_page(const struct tc_block *b, uint32_t page)
{
    for (uint32_t i = 0; i < TC_BLOCK_PAGES; i++)
        if (b->page[i] == page)
            return true;
    return false;
}

/* Key first, then target: a lookup racing with this (an interrupt handler's
 * bt_request_exit) sees either the old pair or a miss. */
void tc_ibl_reset(struct tc *tc)
{
    struct bt_vcpu *v = tc->vcpu;
    for (uint32_t i = 0; i < BT_IBL_ENTRIES; i++) {
        v->ibl[i][0] = bt_ibl_key(BT_IBL_EMPTY);
        v->ibl[i][1] = tc->ibl_miss_tca;
    }
}

void tc_set_ibl_miss(struct tc *tc, uint32_t tca)
{
    tc->ibl_miss_tca = tca - tc->cs_base;
    tc_ibl_reset(tc);
}

void tc_set_ibl_stop(struct tc *tc, uint8_t *stub, uint32_t len, uint32_t stop_off)
{
    tc->ibl_stub = stub;
    tc->ibl_len = len;
    tc->ibl_stop_off = stop_off;
}

/* Arena page index of linear TC address a (the arena need not be page aligned). */
static uint32_t code_page(const struct tc *tc, uintptr_t a) { return (uint32_t)((a >> 12) - ((uintptr_t)tc->code >> 12)); }

uint8_t *tc_ibl_stub_at(const struct tc *tc, uint32_t tca)
{
    if (!tc->ibl_stub)
        return NULL;
    if (tca - (uint32_t)(uintptr_t)tc->ibl_stub < tc->ibl_len)
        return tc->ibl_stub;
    uint32_t pg = code_page(tc, tca);
    if (tca < (uint32_t)(uintptr_t)tc->code || pg >= TC_MAX_CODE_PAGES || !tc->ibl_copy[pg])
        return NULL;
    uint8_t *copy = (uint8_t *)((uintptr_t)(tca & ~0xFFFu) + tc->ibl_copy[pg] - 1);
    return tca - (uint32_t)(uintptr_t)copy < tc->ibl_len ? copy : NULL;
}

/* Point the rel32 at `at` (an instruction that ends at end, in the final
 * code) at dest. */
static void set_rel32(uint8_t *at, const uint8_t *end, const uint8_t *dest)
{
    int32_t rel = (int32_t)((uintptr_t)dest - (uintptr_t)end);
    memcpy(at, &rel, sizeof(rel));
}

/* Point b's jmp to the lookup stub at to. */
static void ibl_jmp_set(struct tc_block *b, const uint8_t *to)
{
    uint8_t *rel = b->tca + b->ibl_jmp;
    set_rel32(rel, rel + sizeof(int32_t), to);
}

/* Where b's jmp to the lookup stub goes now. */
uint8_t *tc_ibl_jmp_target(const struct tc_block *b)
{
    uint32_t disp;
    memcpy(&disp, b->tca + b->ibl_jmp, 4);
    return b->tca + b->ibl_jmp + 4 + disp;
}

/* Is b's jump at the miss path of a stub (tc_stop_block_at)? */
static bool ibl_jmp_stopped(const struct tc *tc, const struct tc_block *b)
{
    if (!b->ibl_jmp)
        return false;
    uint8_t *base = tc_ibl_jmp_target(b) - tc->ibl_stop_off;
    return tc_ibl_stub_at(tc, (uint32_t)(uintptr_t)base) == base;
}

void tc_restore_stopped(struct tc *tc)
{
    for (uint32_t i = 0; i < (tc->nstopped > TC_STOPPED_MAX ? tc->nblocks : tc->nstopped); i++) {
        struct tc_block *b = tc->nstopped > TC_STOPPED_MAX ? &tc->blocks[i] : tc->stopped[i];
        if (ibl_jmp_stopped(tc, b))
            ibl_jmp_set(b, tc_ibl_jmp_target(b) - tc->ibl_stop_off);
    }
    tc->nstopped = 0;
}

void tc_ibl_place(struct tc *tc, struct tc_block *b)
{
    uint8_t *jmp = b->tca + b->ibl_jmp - 1, *page_end = (uint8_t *)(((uintptr_t)jmp & ~(uintptr_t)0xFFF) + 0x1000);
    uint32_t pg = code_page(tc, (uintptr_t)jmp);
    if (!b->ibl_jmp || !tc->ibl_len || pg >= TC_MAX_CODE_PAGES)
        return;
    if (!tc->ibl_copy[pg]) {
        uint8_t *at = tc->code + tc->code_used; /* right after b, 16-byte aligned */
        if (at + tc->ibl_len > page_end || tc->code_used + tc->ibl_len > tc->code_size)
            return;
        memcpy(at, tc->ibl_stub, tc->ibl_len);
        tc->code_used += ALIGN_UP(tc->ibl_len, 16u);
        tc->ibl_copy[pg] = (uint16_t)(((uintptr_t)at & 0xFFF) + 1);
        tc->stats.ibl_copies++;
        tc->ibl_copies_live++;
    }
    ibl_jmp_set(b, (uint8_t *)((uintptr_t)page_end - 0x1000 + tc->ibl_copy[pg] - 1));
}

int tc_init(struct tc *tc, uint8_t *code, uint32_t code_size, void *meta, uint32_t meta_size,
            struct bt_vcpu *vcpu)
{
    uint32_t per_block = sizeof(struct tc_block) + TC_BLOCK_MAX_INSNS * sizeof(struct tc_imap) +
                         TC_BLOCK_MAX_EXITS * sizeof(struct bt_exit);
    uint32_t buckets = TC_HASH_MAX;
    while (buckets > TC_HASH_MIN && buckets * sizeof(struct tc_block *) * 64 > meta_size)
        buckets /= 2;
    uint32_t tables = (buckets + TC_PAGE_BUCKETS) * sizeof(struct tc_block *);
    if (code_size < 2 * TC_BLOCK_MAX_CODE || meta_size < tables + 4 * per_block)
        return E_INVAL;
    memset(tc, 0, sizeof(*tc));
    tc->code = code;
    tc->code_size = code_size;
    /* The two hash tables first (tc_flush clears them), then the blocks. */
    tc->hash = meta;
    tc->hash_mask = buckets - 1;
    tc->page_hash = tc->hash + buckets;
    memset(meta, 0, tables);
    meta = (uint8_t *)meta + tables;
    meta_size -= tables;
    /* Room in the block array for blocks of average metadata (about six
     * instructions and two exits); the worst case is checked per block. */
    tc->max_blocks = meta_size / (sizeof(struct tc_block) + TC_META_AVG_BLOCK);
    tc->blocks = meta;
    tc->meta = (uint8_t *)meta + tc->max_blocks * sizeof(struct tc_block);
    tc->meta_size = meta_size - tc->max_blocks * sizeof(struct tc_block);
    tc->vcpu = vcpu;
    tc_ibl_reset(tc);
    return 0;
}

void tc_flush(struct tc *tc)
{
    memset(tc->hash, 0, (tc->hash_mask + 1) * sizeof(*tc->hash));
    memset(tc->page_hash, 0, TC_PAGE_BUCKETS * sizeof(*tc->page_hash));
    tc->nblocks = 0;
    tc->code_used = tc->reserved;
    tc->meta_used = 0;
    tc->generation++;
    tc->stats.flushes++;
    tc->nstopped = 0; /* the stopped blocks' code is gone, and the stub's copies */
    memset(tc->ibl_copy, 0, sizeof(tc->ibl_copy));
    tc->ibl_copies_live = 0;
    tc_ibl_reset(tc);
}

uint8_t *tc_reserve_code(struct tc *tc, uint32_t bytes)
{
    if (tc->nblocks != 0 || tc->code_used + bytes + TC_BLOCK_MAX_CODE > tc->code_size)
        return NULL;
    uint8_t *p = tc->code + tc->code_used;
    tc->code_used += bytes;
    tc->reserved = tc->code_used;
    return p;
}

static void *meta_alloc(struct tc *tc, uint32_t bytes)
{
    bytes = ALIGN_UP(bytes, 4u);
    KASSERT(tc->meta_used + bytes <= tc->meta_size);
    void *p = tc->meta + tc->meta_used;
    tc->meta_used += bytes;
    memset(p, 0, bytes);
    return p;
}

bool tc_block_fits(const struct tc *tc)
{
    uint32_t meta_need = TC_BLOCK_MAX_INSNS * sizeof(struct tc_imap) +
                         TC_BLOCK_MAX_EXITS * ALIGN_UP(sizeof(struct bt_exit), 4u);
    return tc->nblocks < tc->max_blocks && tc->code_used + TC_BLOCK_MAX_CODE <= tc->code_size &&
           tc->meta_used + meta_need <= tc->meta_size;
}

struct tc_block *tc_begin_block(struct tc *tc, uint32_t guest_eip)
{
    if (!tc_block_fits(tc))
        tc_flush(tc);
    struct tc_block *b = &tc->blocks[tc->nblocks];
    memset(b, 0, sizeof(*b));
    b->guest_eip = guest_eip;
    b->tca = tc->code + tc->code_used;
    b->imap = tc->imap_build; /* copied to its exact size by tc_commit_block */
    return b;
}

void tc_set_stub_head(struct tc *tc, const uint8_t head[5])
{
    memcpy(tc->stub_head, head, sizeof(tc->stub_head));
}

struct bt_exit *tc_alloc_exit(struct tc *tc)
{
    struct bt_exit *e = meta_alloc(tc, sizeof(struct bt_exit));
    struct tc_block *b = &tc->blocks[tc->nblocks]; /* the block being built */
    if (!b->nexits++)
        b->exits = e;
    return e;
}

bool tc_exit_valid(const struct tc *tc, const struct bt_exit *e)
{
    uintptr_t p = (uintptr_t)e, lo = (uintptr_t)tc->meta;
    /* Bounds and alignment first: only then is *e ours to read. */
    if (p < lo || p - lo > tc->meta_used || tc->meta_used - (p - lo) < sizeof(*e) || (p - lo) % 4)
        return false;
    const struct tc_block *b = e->from;
    uintptr_t bi = (uintptr_t)b - (uintptr_t)tc->blocks;
    if ((uintptr_t)b < (uintptr_t)tc->blocks || bi % sizeof(*b) || bi / sizeof(*b) >= tc->nblocks)
        return false;
    /* The block's exits are consecutive: e must be exactly one of them. */
    for (uint8_t i = 0; i < b->nexits; i++)
        if (&b->exits[i] == e)
            return true;
    return false;
}

void tc_commit_block(struct tc *tc, struct tc_block *b)
{
    KASSERT(b == &tc->blocks[tc->nblocks] && b->body_len <= TC_BLOCK_MAX_CODE);
    uint32_t h = hash_eip(tc, b->guest_eip);
    b->imap = meta_alloc(tc, b->ninsns * (uint32_t)sizeof(struct tc_imap));
    memcpy(b->imap, tc->imap_build, b->ninsns * sizeof(struct tc_imap));
    b->hash_next = tc->hash[h];
    tc->hash[h] = b;
    for (uint32_t i = 0; i < TC_BLOCK_PAGES; i++) {
        uint32_t ph = hash_page(b->page[i]);
        if (page_link(b, ph) != i)
            continue; /* in this bucket already, by an earlier page */
        b->page_next[i] = tc->page_hash[ph];
        tc->page_hash[ph] = b;
    }
    tc->nblocks++;
    tc->code_used += ALIGN_UP((uint32_t)b->body_len, 16u);
    tc->stats.blocks++;
    tc->stats.guest_bytes += b->guest_len;
    tc->stats.tc_bytes += b->body_len;
}

/* A block found behind others in its bucket moves to the front: the
 * blocks looked up by EIP are the few that world switches enter (a system
 * call's entry, the code after an emulated instruction), and each step
 * along a chain reads another block's metadata (under TCG, often a TLB
 * refill of its page). */
struct tc_block *tc_lookup(struct tc *tc, uint32_t guest_eip)
{
    struct tc_block **head = &tc->hash[hash_eip(tc, guest_eip)];
    for (struct tc_block **pp = head, *b; (b = *pp); pp = &b->hash_next) {
        if (b->guest_eip != guest_eip)
            continue;
        if (pp != head) {
            *pp = b->hash_next;
            b->hash_next = *head;
            *head = b;
        }
        return b;
    }
    return NULL;
}

uint32_t *tc_ibl_find(struct tc *tc, uint32_t guest_eip)
{
    uint32_t *s1 = tc->vcpu->ibl[tc_ibl_slot(guest_eip)], *s2 = tc->vcpu->ibl[tc_ibl_slot2(guest_eip)];
    return s1[0] == bt_ibl_key(guest_eip) ? s1 : s2[0] == bt_ibl_key(guest_eip) ? s2 : NULL;
}

/* Key first, then target (see tc_ibl_reset). */
static void ibl_set(uint32_t *slot, uint32_t key, uint32_t tca)
{
    slot[0] = key;
    slot[1] = tca;
}

void tc_ibl_insert(struct tc *tc, struct tc_block *b)
{
    uint32_t key = bt_ibl_key(b->guest_eip), tca = (uint32_t)(uintptr_t)b->tca - tc->cs_base;
    uint32_t *s1 = tc->vcpu->ibl[tc_ibl_slot(b->guest_eip)], *s2 = tc->vcpu->ibl[tc_ibl_slot2(b->guest_eip)];
    uint32_t empty = bt_ibl_key(BT_IBL_EMPTY), *to = s1;
    /* An eip is never in both of its slots: kill_block clears one. */
    if (s1[0] != key && (s2[0] == key || (s1[0] != empty && s2[0] == empty))) {
        to = s2;
    } else if (s1[0] != key && s1[0] != empty) {
        /* Both taken by others: the one in the first slot moves to its
         * other slot (one step, no chain of moves), replacing what is there. */
        uint32_t other = 0u - s1[0], *alt = tc->vcpu->ibl[tc_ibl_slot(other)];
        if (alt == s1)
            alt = tc->vcpu->ibl[tc_ibl_slot2(other)];
        if (alt != s1)
            ibl_set(alt, s1[0], s1[1]);
    }
    ibl_set(to, key, tca);
}

/* ---------------------------------------------------------------- links */

void tc_chain(struct tc *tc, struct bt_exit *e, struct tc_block *to)
{
    tc_chain_into(tc, e, to, e->stub_tca);
}

void tc_chain_into(struct tc *tc, struct bt_exit *e, struct tc_block *to, uint8_t *at)
{
    if (e->to || e->from->dead || to->dead)
        return;
    at[0] = X86_JMP_REL32;
    set_rel32(at + 1, e->stub_tca + JMP_REL32_LEN, to->tca);
    if (e->jcc_rel) /* the Jcc too, in the same copy of the block as the stub */
        set_rel32(at + (e->jcc_rel - e->stub_tca), e->jcc_rel + sizeof(int32_t), to->tca);
    e->to = to;
    e->next_in = to->in_links;
    to->in_links = e;
    tc->stats.chains++;
}

/* e's stub as translated (it leaves to the dispatcher), and its Jcc, if
 * any, jumping to it again. */
static void stub_restore(struct tc *tc, struct bt_exit *e)
{
    memcpy(e->stub_tca, tc->stub_head, JMP_REL32_LEN);
    if (e->jcc_rel)
        set_rel32(e->jcc_rel, e->jcc_rel + sizeof(int32_t), e->stub_tca);
}

/* Restore every stub chained into b, so those exits reach the dispatcher. */
static void unchain_inputs(struct tc *tc, struct tc_block *b)
{
    struct bt_exit *e = b->in_links;
    while (e) {
        struct bt_exit *next = e->next_in;
        stub_restore(tc, e);
        e->to = NULL;
        e->next_in = NULL;
        tc->stats.unchains++;
        e = next;
    }
    b->in_links = NULL;
}

/* Undo one chained exit: its stub leaves again; off its target's in-list. */
static void unchain_exit(struct tc *tc, struct bt_exit *e)
{
    struct bt_exit **pp = &e->to->in_links;
    while (*pp && *pp != e)
        pp = &(*pp)->next_in;
    if (*pp)
        *pp = e->next_in;
    stub_restore(tc, e);
    e->to = NULL;
    e->next_in = NULL;
    tc->stats.unchains++;
}


void tc_unchain_all(struct tc *tc)
{
    for (uint32_t i = 0; i < tc->nblocks; i++)
        unchain_inputs(tc, &tc->blocks[i]);
    for (uint32_t i = 0; i < BT_IBL_ENTRIES; i++)
        tc->vcpu->ibl[i][0] = bt_ibl_key(BT_IBL_EMPTY);
}

/* ---------------------------------------------------------------- SMC */

static void hash_remove(struct tc *tc, struct tc_block *b)
{
    struct tc_block **pp = &tc->hash[hash_eip(tc, b->guest_eip)];
    while (*pp && *pp != b)
        pp = &(*pp)->hash_next;
    if (*pp)
        *pp = b->hash_next;
}

static void kill_block(struct tc *tc, struct tc_block *b)
{
    uint32_t *slot = tc_ibl_find(tc, b->guest_eip);
    if (slot && slot[1] == (uint32_t)(uintptr_t)b->tca - tc->cs_base)
        ibl_set(slot, bt_ibl_key(BT_IBL_EMPTY), tc->ibl_miss_tca);
    hash_remove(tc, b);
    unchain_inputs(tc, b);
    b->dead = true;
    tc->stats.invalidated++;
}


/*
 * Whether block b's guest code, or the bytes its last instruction's decode
 * may have read past it (TC_DECODE_SLACK), meets [off, off + len) of page
 * (one of b's pages). base: the CS base its guest_eip was translated under.
 */
#define TC_DECODE_SLACK 15u /* an instruction is at most 15 bytes (SDM Vol. 2A §2.3.11) */
#define TC_PAGE 0x1000u
static bool block_meets(const struct tc_block *b, uint32_t page, uint32_t off, uint32_t len, uint32_t base)
{
    uint32_t start = (b->guest_eip + base) & 0xFFFu, end = start + b->guest_len + TC_DECODE_SLACK;
    /* In its first page from start; what runs past the page is the second's from 0. */
    if (b->page[0] == page && off < MIN(end, TC_PAGE) && off + len > start)
        return true;
    if (b->page[1] == page && end > TC_PAGE && off < end - TC_PAGE)
        return true;
    /* Inlined callees: within their one page (translate.c inline_scan). */
    uint32_t inl = (b->inl_gva + base) & 0xFFFu;
    return b->inl_hi && b->page[TC_PAGE_INLINE] == page && off < MIN(inl + b->inl_hi + TC_DECODE_SLACK, TC_PAGE) &&
           off + len > inl + b->inl_lo;
}

/* Kill the live blocks with code on page: all of them (whole), or those
 * whose bytes meet [off, off + len) under CS base base (block_meets). */
static uint32_t kill_on_page(struct tc *tc, uint32_t page, bool whole, uint32_t off, uint32_t len, uint32_t base)
{
    uint32_t killed = 0;
    struct tc_block *b = tc->page_hash[hash_page(page)];
    while (b) {
        /* A bucket mixes pages: follow b's link for this bucket. */
        struct tc_block *next = b->page_next[page_link(b, hash_page(page))];
        if (!b->dead && block_on_page(b, page) &&
            (whole || block_meets(b, page, off, len, base))) {
            kill_block(tc, b);
            killed++;
        }
        b = next;
    }
    return killed;
}

uint32_t tc_invalidate_page(struct tc *tc, uint32_t page_gva)
{
    return kill_on_page(tc, page_gva & ~0xFFFu, true, 0, 0, 0);
}

uint32_t tc_invalidate_range(struct tc *tc, uint32_t page_gva, uint32_t off, uint32_t len, uint32_t base)
{
    return len ? kill_on_page(tc, page_gva & ~0xFFFu, false, off, len, base) : 0;
}

/* ---------------------------------------------------------------- fault map */

/* The last block starting at or below tca (blocks are sorted by tca), or NULL. */
static struct tc_block *block_before(const struct tc *tc, uint32_t tca)
{
    uint32_t lo = 0, hi = tc->nblocks;
    while (lo < hi) { /* first block with tca > wanted */
        uint32_t mid = (lo + hi) / 2;
        if ((uint32_t)(uintptr_t)tc->blocks[mid].tca <= tca)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo == 0 ? NULL : &tc->blocks[lo - 1];
}

/* The block whose translated instructions (not its stubs) hold tca, or NULL. */
static const struct tc_block *block_at(const struct tc *tc, uint32_t tca)
{
    const struct tc_block *b = block_before(tc, tca);
    return b && tca - (uint32_t)(uintptr_t)b->tca < b->body_len ? b : NULL;
}

int tc_stop_block_at(struct tc *tc, uint32_t tca)
{
    struct tc_block *b = block_before(tc, tca);
    if (!b || tca - (uint32_t)(uintptr_t)b->tca >= b->body_len)
        return E_NOENT;
    for (uint16_t i = 0; i < b->nexits; i++)
        if (b->exits[i].to)
            unchain_exit(tc, &b->exits[i]);
    if (b->ibl_jmp && tc->ibl_len && !ibl_jmp_stopped(tc, b)) {
        ibl_jmp_set(b, tc_ibl_jmp_target(b) + tc->ibl_stop_off);
        if (tc->nstopped < TC_STOPPED_MAX)
            tc->stopped[tc->nstopped] = b;
        if (tc->nstopped <= TC_STOPPED_MAX)
            tc->nstopped++;
    }
    return 0;
}

int tc_insn_boundary(const struct tc *tc, uint32_t tca, uint32_t *guest_eip)
{
    const struct tc_block *b = block_at(tc, tca);
    if (!b)
        return E_NOENT;
    uint32_t off = tca - (uint32_t)(uintptr_t)b->tca;
    uint32_t lo = 0, hi = b->ninsns;
    while (lo < hi) { /* imap is sorted by tca_off */
        uint32_t mid = (lo + hi) / 2;
        if (b->imap[mid].tca_off < off)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == b->ninsns || b->imap[lo].tca_off != off || (b->imap[lo].flags & TC_IMAP_IRQ_SHADOW))
        return E_NOENT;
    *guest_eip = tc_imap_eip(b, &b->imap[lo]);
    return 0;
}

int tc_lookup_guest_eip(const struct tc *tc, uint32_t tca, uint32_t *guest_eip)
{
    const struct tc_block *b = block_at(tc, tca);
    if (!b || b->ninsns == 0)
        return E_NOENT;
    uint32_t off = tca - (uint32_t)(uintptr_t)b->tca;
    uint32_t i = 0;
    while (i + 1 < b->ninsns && b->imap[i + 1].tca_off <= off)
        i++;
    *guest_eip = tc_imap_eip(b, &b->imap[i]);
    return 0;
}
