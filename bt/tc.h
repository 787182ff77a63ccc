/*
 * Translation cache (TC): where translated blocks live, how they are found
 * by guest address, chained to each other, invalidated when their guest code
 * is written, evicted when the cache is full, and mapped back from a TC
 * address to a guest EIP when translated code faults.
 *
 * Memory is given by the caller (no allocation here): a code arena that must
 * be executable by the translated code's CS, and a metadata arena (blocks,
 * exit descriptors, per-instruction maps) that only the monitor reads.
 * Both are bump-allocated; blocks are therefore sorted by tca, which is what
 * tc_lookup_guest_eip()'s binary search relies on.
 *
 * Eviction policy: flush-all. When a new block might not fit (code or
 * metadata), everything is dropped (tc_flush) and translation restarts from
 * an empty cache; the generation counter tells holders of old pointers.
 */
#ifndef HV86_BT_TC_H
#define HV86_BT_TC_H
#include <stdbool.h>
#include <stdint.h>
#include "bt/vcpu_state.h"

#define TC_HASH_BUCKETS 4096u  /* guest-EIP -> block hash buckets (power of two) */
#define TC_PAGE_BUCKETS 1024u  /* page -> blocks hash buckets (power of two) */
#define TC_BLOCK_MAX_CODE 4096u  /* bytes of TC one block may use, stubs included */
#define TC_BLOCK_MAX_INSNS 64u   /* guest instructions per block */
#define TC_BLOCK_MAX_EXITS (TC_BLOCK_MAX_INSNS + 4u)
#define TC_META_AVG_BLOCK 60u    /* exit and map bytes of an average block (sizing only) */

/* One guest instruction's place in a block: fault at tca in
 * [block->tca + tca_off, next entry's tca_off) is a fault of guest eip
 * block->guest_eip + eip_off. */
struct tc_imap {
    uint16_t tca_off;      /* bytes from block->tca */
    uint16_t eip_off : 15; /* bytes from block->guest_eip (< a page plus one instruction) */
    uint16_t flags : 1;    /* TC_IMAP_* */
};
#define TC_IMAP_IRQ_SHADOW 0x01 /* follows STI: no interrupt may be taken before it (SDM Vol. 3A §6.8.3) */

/* Metadata is what limits how many blocks the TC holds (a Linux boot
 * translates some 60,000), so the fields are as narrow as their ranges. */
struct tc_block {
    uint32_t guest_eip;     /* gva of the first guest instruction */
    uint32_t page[2];       /* pages covered (gva, or bt_set_page_fn's identity) */
    uint8_t *tca;           /* first byte of the translation (entry point) */
    struct tc_imap *imap;   /* ninsns entries, ascending tca_off */
    struct tc_block *hash_next;
    struct tc_block *page_next[2]; /* next block in the page bucket of page[i] */
    struct bt_exit *in_links; /* exits of other blocks chained to this one */
    struct bt_exit *exits;  /* this block's exit descriptors (consecutive) */
    uint16_t guest_len;     /* bytes of guest code translated */
    uint16_t body_len;      /* bytes of the translation in the code arena, exit stubs included */
    uint8_t ninsns;         /* <= TC_BLOCK_MAX_INSNS */
    uint8_t nexits;         /* <= TC_BLOCK_MAX_EXITS */
    bool dead;              /* invalidated: unreachable, space reclaimed at flush */
    uint8_t *ibl_entry;     /* its IBL entry code (TC_IBL_ENTRY_BYTES, tc_alloc_ibl_entry), or NULL */
};
_Static_assert(TC_BLOCK_MAX_INSNS <= 255 && TC_BLOCK_MAX_EXITS <= 255, "tc_block counts are 8-bit");
_Static_assert(TC_BLOCK_MAX_CODE <= 0xFFFF, "tc_block.body_len is 16-bit");

struct tc_stats {
    uint32_t blocks;        /* blocks committed since init */
    uint32_t flushes;       /* full flushes (eviction) */
    uint32_t invalidated;   /* blocks killed by tc_invalidate_page */
    uint32_t chains;        /* exit stubs patched */
    uint32_t unchains;      /* exit stubs restored */
    uint32_t guest_bytes;   /* guest code bytes translated */
    uint32_t tc_bytes;      /* TC bytes emitted */
};

struct tc {
    uint8_t *code;          /* code arena */
    uint32_t code_size, code_used;     /* bytes */
    uint8_t *meta;          /* metadata bump arena (after the block array) */
    uint32_t meta_size, meta_used;     /* bytes */
    struct tc_block *blocks;
    uint32_t max_blocks, nblocks;
    uint32_t generation;    /* incremented by every tc_flush */
    struct bt_vcpu *vcpu;   /* owner of the IBL table kept in step with the TC */
    uint32_t reserved;      /* bytes of shared stubs at the start of the code arena */
    uint32_t ibl_empty[2];  /* what an empty slot of each IBL way holds (tc_set_ibl_empty), CS-relative */
    uint32_t tramp_low;     /* bytes from code: the IBL entries allocated so far occupy
                               [tramp_low, code_size) (tc_alloc_ibl_entry); code_size: none */
    uint32_t cs_base;       /* base of the CS ring-1 code runs with: the TC addresses it jumps
                               through (IBL slots, exit_entry) are stored relative to
                               it; 0 = a flat CS (bt_config.cs_base) */
    uint8_t stub_head[5];   /* first bytes of every pristine exit stub (tc_set_stub_head) */
    struct tc_block *hash[TC_HASH_BUCKETS];
    struct tc_block *page_hash[TC_PAGE_BUCKETS]; /* by page, dead blocks included */
    struct tc_imap imap_build[TC_BLOCK_MAX_INSNS]; /* map of the block being built */
    struct tc_stats stats;
};

/*
 * tc_set_ibl_empty - what an empty slot of way 0 and of way 1 of the IBL
 * table holds (tcas: way 0's goes on to way 1's slot, way 1's to the miss
 * exit), and clear the table. A slot is one word, so a lookup racing with
 * an interrupt handler that empties the table (bt_request_exit) reads
 * either the old entry or the empty one, never half of each.
 */
void tc_set_ibl_empty(struct tc *tc, uint32_t way0_tca, uint32_t way1_tca);

/*
 * tc_init - set up an empty TC over caller memory.
 *   code/code_size: code arena (bytes, >= 2 * TC_BLOCK_MAX_CODE);
 *   meta/meta_size: metadata arena (bytes, 4-byte aligned); max_blocks is
 *   derived from it. vcpu: whose IBL table follows the TC.
 * Returns 0, or E_INVAL if an arena is too small. Nothing is allocated.
 */
int tc_init(struct tc *tc, uint8_t *code, uint32_t code_size, void *meta, uint32_t meta_size,
            struct bt_vcpu *vcpu);

/* tc_flush - drop every block, reset the arenas and the IBL table, bump
 * tc->generation. Code bytes reserved with tc_reserve_code() before the
 * first block (the shared stubs) survive. */
void tc_flush(struct tc *tc);

/*
 * tc_reserve_code - permanently reserve bytes at the start of the code arena
 * (shared stubs). Only valid on an empty TC. Returns the tca or NULL.
 */
uint8_t *tc_reserve_code(struct tc *tc, uint32_t bytes);

/*
 * tc_begin_block - make room for one new block: at most TC_BLOCK_MAX_CODE
 * code bytes, TC_BLOCK_MAX_INSNS map entries and TC_BLOCK_MAX_EXITS exits,
 * and with ibl_entry, TC_IBL_PRE bytes before them for its IBL entry (the
 * caller writes it at b->ibl_entry; b->tca follows it). Flushes the whole
 * TC first if they might not fit (eviction). Returns the block being built
 * (tca set, imap pointing at a build area) — finish with tc_commit_block.
 */
struct tc_block *tc_begin_block(struct tc *tc, uint32_t guest_eip, bool ibl_entry);

/*
 * tc_set_stub_head - the first 5 bytes that every exit stub starts with
 * while unchained (the translator's stubs all begin with the same
 * instruction); unchaining writes them back over the "jmp rel32". Set it
 * before the first tc_chain.
 */
void tc_set_stub_head(struct tc *tc, const uint8_t head[5]);

/* tc_alloc_exit - a zeroed exit descriptor for the block being built. Never
 * fails between tc_begin_block and tc_commit_block (space was reserved). */
struct bt_exit *tc_alloc_exit(struct tc *tc);

/* tc_block_fits - whether a block of the largest size fits without a
 * flush (tc_begin_block flushes when it does not). */
bool tc_block_fits(const struct tc *tc);

/* tc_commit_block - publish the block being built (b->body_len code bytes,
 * at most TC_BLOCK_MAX_CODE, already in place at b->tca): reachable by
 * tc_lookup from now on. */
void tc_commit_block(struct tc *tc, struct tc_block *b);

/* tc_lookup - the live block translated from guest_eip, or NULL. O(1);
 * moves the block to the front of its hash bucket. */
struct tc_block *tc_lookup(struct tc *tc, uint32_t guest_eip);

/*
 * tc_chain - patch exit stub e (a BRANCH exit) into "jmp rel32 to->tca" so
 * control passes block to block without the dispatcher. No-op if e is
 * already chained or either block is dead.
 */
void tc_chain(struct tc *tc, struct bt_exit *e, struct tc_block *to);

/* tc_chain_into - tc_chain with the "jmp rel32" (still relative to
 * e->stub_tca) written at `at`, where the stub's bytes are now: the copy a
 * block is built in before it is copied to its place in the arena (one
 * store fewer into the arena per exit; under QEMU TCG each such store
 * into a page holding code takes its self-modifying-code path). */
void tc_chain_into(struct tc *tc, struct bt_exit *e, struct tc_block *to, uint8_t *at);

/*
 * tc_exit_valid - is e one of the exit descriptors the translator made for a
 * block committed since the last tc_flush()? e comes from bt_vcpu.exit_desc,
 * which ring-1 code can write in principle: nothing is read through e before
 * its range (the metadata arena in use) and alignment are checked, then its
 * block (in blocks[0..nblocks)) must list e among its exits. O(exits of one
 * block). Returns false for anything else, including the dispatcher's own
 * descriptors (bt_run checks those by address).
 */
bool tc_exit_valid(const struct tc *tc, const struct bt_exit *e);

/*
 * tc_unchain_all - restore every chained exit stub and empty the IBL table,
 * so that translated code reaches the dispatcher at its next block end.
 * Safe while translated code is interrupted anywhere (a stub is patched
 * only in its first instruction, which is atomic to the interrupted CPU).
 */
void tc_unchain_all(struct tc *tc);

/*
 * The IBL (indirect-branch lookup, docs/bt.md "Indirect branches") is a
 * two-way set-associative table in the vCPU's state: BT_IBL_ENTRIES sets,
 * indexed by tc_ibl_slot(guest eip), of one tca per way. The tca is the
 * block's IBL entry, code that checks the target itself: it compares the
 * guest eip the lookup carries with its own (an immediate), then enters
 * its block; on a mismatch way 0's entry goes on to way 1's slot of the
 * same set and way 1's to the miss exit. TC_IBL_ENTRY_BYTES of code per
 * block that is ever a target, allocated from the top of the code arena
 * down (tc_alloc_ibl_entry); way 1's entry is TC_IBL_WAY1 bytes in, and
 * TC_IBL_PRE bytes in, the entry has left the lookup: either its block's
 * first instruction follows (the entry was made with the block,
 * tc_begin_block), or a JMP rel32 to it (made later, tc_alloc_ibl_entry).
 * The rest of the layout is translate.c's (emit_ibl_entry).
 */
#define TC_IBL_ENTRY_BYTES 128u
#define TC_IBL_WAY1        24u
#define TC_IBL_PRE         112u

/* tc_alloc_ibl_entry - TC_IBL_ENTRY_BYTES of code for the IBL entry of a
 * block made without one, or NULL when they would leave no room for a
 * block (the next block flushes the TC). The caller emits the code (its
 * JMP to the block at TC_IBL_PRE) and sets b->ibl_entry. */
uint8_t *tc_alloc_ibl_entry(struct tc *tc);

/* tc_ibl_entry_at - if tca lies in an IBL entry, before its block's code
 * or its JMP there: 0, *entry its first byte and *b its block (NULL if the
 * JMP goes to none); else E_NOENT. */
int tc_ibl_entry_at(const struct tc *tc, uint32_t tca, uint8_t **entry, struct tc_block **b);

/*
 * tc_ibl_insert - enter b (which has its ibl_entry) into the vCPU's IBL
 * table: nothing if it is there already; else into an empty way of its
 * set, way 0 first; else it takes way 0 and what way 0 held moves to way 1
 * (the least recently inserted of the two leaves). A block without an
 * entry is not entered.
 */
void tc_ibl_insert(struct tc *tc, struct tc_block *b);

/* tc_ibl_way - the way of b's set holding b's entry (0 or 1), or -1. */
int tc_ibl_way(const struct tc *tc, const struct tc_block *b);

/* tc_ibl_slot - the IBL set of a guest eip (shared with emitted code,
 * which computes it without touching the flags: the low 14 bits, as
 * MOVZX r32,r16 of 4 times the eip (LEA), which is also the set's byte
 * offset in a way's table of 4-byte tcas). */
static inline uint32_t tc_ibl_slot(uint32_t guest_eip) { return guest_eip & (BT_IBL_ENTRIES - 1); }

/*
 * tc_invalidate_page - kill every block with guest code on the page
 * containing page_gva (self-modifying code: the monitor calls this when a
 * write hits a write-protected page holding translated code). Pages are
 * gva pages, or whatever identity bt_set_page_fn() chose (gpa pages). Chains into
 * killed blocks are undone and their IBL entries cleared. Returns how many
 * blocks were killed.
 */
uint32_t tc_invalidate_page(struct tc *tc, uint32_t page_gva);

/*
 * tc_lookup_guest_eip - map a TC address inside translated code back to the
 * guest instruction it belongs to (precise fault delivery). Translations
 * are built so that a fault can only happen before any guest-visible state
 * of that instruction changed (docs/bt.md "Precise faults"), so the guest
 * registers at the fault are exactly those before the instruction.
 * Returns 0 and sets *guest_eip, or E_NOENT when tca is not inside the body
 * of a block translated since the last flush (stubs, outside the TC).
 * Invalidated blocks still answer, so the monitor may map a write fault
 * before or after it invalidates the written page.
 */
int tc_lookup_guest_eip(const struct tc *tc, uint32_t tca, uint32_t *guest_eip);

/*
 * tc_insn_boundary - is tca exactly where the translation of a guest
 * instruction starts, so that the real registers and flags are the guest's
 * before that instruction (translate.c invariant 1) and an asynchronous
 * interrupt taken there may leave translated code as if it came between two
 * guest instructions? Returns 0 and sets *guest_eip if so; E_NOENT for any
 * other address (inside an expansion, exit stubs, the shared lookup stub,
 * after STI where the interrupt window is still shut).
 */
int tc_insn_boundary(const struct tc *tc, uint32_t tca, uint32_t *guest_eip);

/*
 * tc_stop_block_at - make the block whose code (body or exit stubs) holds
 * tca leave translated code at its end: its chained exits are unchained (a
 * block ending in RET/JMP r/m goes through the lookup stub to an IBL
 * entry, which bt_stop_at's exit_req makes miss). Cheaper than tc_unchain_all() when an
 * interrupt wants the monitor back and tc_insn_boundary() said no.
 * Returns 0, or E_NOENT when tca is in no block (the shared lookup stub,
 * outside the TC): then only tc_unchain_all() stops the code in time.
 */
int tc_stop_block_at(struct tc *tc, uint32_t tca);

/* tc_ibl_reset - empty the indirect-branch lookup table: every slot of
 * way w holds ibl_empty[w] (tc_set_ibl_empty). Entries already allocated
 * stay, for their blocks' next insertion. */
void tc_ibl_reset(struct tc *tc);

#endif
