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

/* Guest-EIP -> block hash buckets: a power of two, about a 64th of the
 * metadata arena (tc_init), at least TC_HASH_MIN and at most TC_HASH_MAX:
 * 16,384 for hv86's 4 MiB arena, against some 60,000 blocks a Linux boot
 * keeps (4,096 made chains of 15, walked whole at every miss). */
#define TC_HASH_MIN 256u
#define TC_HASH_MAX 16384u
#define TC_PAGE_BUCKETS 1024u  /* page -> blocks hash buckets (power of two) */
#define TC_BLOCK_MAX_CODE 4096u  /* bytes of TC one block may use, stubs included */
#define TC_BLOCK_MAX_INSNS 64u   /* guest instructions per block */
#define TC_BLOCK_MAX_EXITS (TC_BLOCK_MAX_INSNS + 4u)
#define TC_META_AVG_BLOCK 60u    /* exit and map bytes of an average block (sizing only) */

/* One guest instruction's place in a block: fault at tca in
 * [block->tca + tca_off, next entry's tca_off) is a fault of guest eip
 * tc_imap_eip(): block->guest_eip + eip_off, or for an instruction of a
 * callee translated inline (docs/bt.md "Short callees inline"), the
 * callee page's gva block->inl_gva + eip_off. */
struct tc_imap {
    uint16_t tca_off;      /* bytes from block->tca */
    uint16_t eip_off : 14; /* bytes from block->guest_eip (< a page plus one instruction), or
                            * from block->inl_gva when callee */
    uint16_t callee : 1;   /* an instruction of an inlined callee */
    uint16_t flags : 1;    /* TC_IMAP_* */
};
#define TC_IMAP_IRQ_SHADOW 0x01 /* follows STI: no interrupt may be taken before it (SDM Vol. 3A §6.8.3) */

/* Metadata is what limits how many blocks the TC holds (a Linux boot
 * translates some 60,000), so the fields are as narrow as their ranges. */
/* Blocks tc_stop_block_at stops between two dispatches, listed for
 * tc_restore_stopped; beyond it, every block is looked at. */
#define TC_STOPPED_MAX 16u
/* Code arena pages that may hold a copy of the lookup stub (tc_ibl_place);
 * a larger arena's later pages jump to the stub itself. */
#define TC_MAX_CODE_PAGES 2048u

/* Pages a block's guest code may lie on: the two its own code covers, and
 * the page of the short callees translated inline into it (TC_PAGE_INLINE). */
#define TC_BLOCK_PAGES 3u
#define TC_PAGE_INLINE 2u

struct tc_block {
    uint32_t guest_eip;     /* gva of the first guest instruction */
    uint32_t page[TC_BLOCK_PAGES]; /* pages covered (gva, or bt_set_page_fn's identity);
                                    * page[TC_PAGE_INLINE] is page[0] when nothing is inlined */
    uint32_t inl_gva;       /* gva of the page of the inlined callees (page-aligned) */
    uint16_t inl_lo, inl_hi; /* their bytes: [inl_lo, inl_hi) from inl_gva; inl_hi 0: none */
    uint8_t *tca;           /* first byte of the translation (entry point) */
    struct tc_imap *imap;   /* ninsns entries, ascending tca_off */
    struct tc_block *hash_next;
    struct tc_block *page_next[TC_BLOCK_PAGES]; /* next block in the page bucket of page[i]
                                                 * (the first i of each bucket: tc.c page_link) */
    struct bt_exit *in_links; /* exits of other blocks chained to this one */
    struct bt_exit *exits;  /* this block's exit descriptors (consecutive) */
    uint16_t guest_len;     /* bytes of guest code translated from guest_eip (callees apart) */
    uint16_t body_len;      /* bytes of the translation in the code arena, exit stubs included */
    uint16_t ibl_jmp;       /* offset of the rel32 of its jmp to the lookup stub, 0: none */
    uint8_t ninsns;         /* <= TC_BLOCK_MAX_INSNS */
    uint8_t nexits;         /* <= TC_BLOCK_MAX_EXITS */
    bool dead;              /* invalidated: unreachable, space reclaimed at flush */
};
_Static_assert(TC_BLOCK_MAX_INSNS <= 255 && TC_BLOCK_MAX_EXITS <= 255, "tc_block counts are 8-bit");
_Static_assert(TC_BLOCK_MAX_CODE <= 0xFFFF, "tc_block.body_len is 16-bit");

/* tc_imap_eip - the guest eip (gva) of map entry m of block b. */
static inline uint32_t tc_imap_eip(const struct tc_block *b, const struct tc_imap *m)
{
    return (m->callee ? b->inl_gva : b->guest_eip) + m->eip_off;
}

struct tc_stats {
    uint32_t blocks;        /* blocks committed since init */
    uint32_t flushes;       /* full flushes (eviction) */
    uint32_t invalidated;   /* blocks killed by tc_invalidate_page */
    uint32_t chains;        /* exit stubs patched */
    uint32_t unchains;      /* exit stubs restored */
    uint32_t guest_bytes;   /* guest code bytes translated */
    uint32_t tc_bytes;      /* TC bytes emitted */
    uint32_t ibl_copies;    /* copies of the lookup stub placed (tc_ibl_place) */
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
    uint32_t ibl_miss_tca;  /* target stored in empty IBL slots (see tc_set_ibl_miss), CS-relative */
    uint32_t cs_base;       /* base of the CS ring-1 code runs with: the TC addresses it jumps
                               through (IBL slots, ibl_tca, exit_entry) are stored relative to
                               it; 0 = a flat CS (bt_config.cs_base) */
    uint8_t stub_head[5];   /* first bytes of every pristine exit stub (tc_set_stub_head) */
    uint8_t *ibl_stub;      /* the lookup stub (tc_set_ibl_stop) ... */
    uint32_t ibl_len;       /* ... its bytes, which any copy of it repeats ... */
    uint32_t ibl_stop_off;  /* ... and the offset of its miss path for a stopped block's jmp */
    uint16_t ibl_copy[TC_MAX_CODE_PAGES]; /* per arena page: 1 + the offset in it of its copy, 0: none */
    uint32_t ibl_copies_live;             /* copies of the stub in the arena since the last flush */
    struct tc_block *stopped[TC_STOPPED_MAX]; /* blocks whose jmp goes to a miss path */
    uint32_t nstopped;      /* how many; TC_STOPPED_MAX + 1: more, find them all */
    struct tc_block **hash;      /* hash_mask + 1 buckets, at the start of the metadata arena */
    uint32_t hash_mask;
    struct tc_block **page_hash; /* TC_PAGE_BUCKETS, by page, dead blocks included; after hash */
    struct tc_imap imap_build[TC_BLOCK_MAX_INSNS]; /* map of the block being built */
    struct tc_stats stats;
};

/*
 * tc_set_ibl_miss - make every empty IBL slot hold tca as its target, and
 * clear the table. The lookup stub compares a slot's key, then loads its
 * target: an interrupt handler that empties the table between the two
 * (bt_request_exit) must leave a target that goes to the dispatcher, never 0.
 */
void tc_set_ibl_miss(struct tc *tc, uint32_t tca);

/*
 * tc_set_ibl_stop - the lookup stub (stub, len bytes, position-independent:
 * copies of it work alike) and the offset of its miss path entered like
 * the stub itself (stop_off: target in EAX, the guest's EAX saved), where
 * tc_stop_block_at points a stopped block's jump until tc_restore_stopped.
 */
void tc_set_ibl_stop(struct tc *tc, uint8_t *stub, uint32_t len, uint32_t stop_off);

/*
 * tc_ibl_place - point committed block b's jump to the lookup stub (its
 * ibl_jmp) at a copy of the stub in the arena page of that jump, placing
 * one right after b if the page has none and it fits there. Under QEMU
 * TCG a direct jump is chained only within a page, and one to another
 * page is a TB lookup: every return's jump to the shared stub was one.
 * Without room in the page the jump stays at the stub.
 */
void tc_ibl_place(struct tc *tc, struct tc_block *b);

/* tc_ibl_jmp_target - where block b's jump to the lookup stub goes now: a
 * stub's first byte, or its miss path while b is stopped (b->ibl_jmp != 0). */
uint8_t *tc_ibl_jmp_target(const struct tc_block *b);

/* tc_ibl_stub_at - the stub or copy of it whose code holds tca, or NULL. */
uint8_t *tc_ibl_stub_at(const struct tc *tc, uint32_t tca);

/*
 * tc_restore_stopped - point the jumps tc_stop_block_at moved to the miss
 * path back at the lookup stub (blocks of this TC generation). Call only
 * while no translated code runs (bt_run, when it takes exit_req).
 */
void tc_restore_stopped(struct tc *tc);

/*
 * tc_init - set up an empty TC over caller memory.
 *   code/code_size: code arena (bytes, >= 2 * TC_BLOCK_MAX_CODE);
 *   meta/meta_size: metadata arena (bytes, 4-byte aligned): the guest-EIP
 *   hash (TC_HASH_MIN..TC_HASH_MAX buckets, about a 64th of it) and the page
 *   hash first, then the blocks; max_blocks is derived from the rest.
 *   vcpu: whose IBL table follows the TC.
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
 * code bytes, TC_BLOCK_MAX_INSNS map entries and TC_BLOCK_MAX_EXITS exits.
 * Flushes the whole TC first if they might not fit (eviction). Returns the
 * block being built (tca set, imap pointing at a build area) — finish with
 * tc_commit_block.
 */
struct tc_block *tc_begin_block(struct tc *tc, uint32_t guest_eip);

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
 * only in its first instruction, which is atomic to the interrupted CPU);
 * the table's keys are emptied, their targets left: a lookup interrupted
 * between its key compare and its target load goes to the block it found,
 * which exits at its end like any other.
 */
void tc_unchain_all(struct tc *tc);

/*
 * tc_ibl_insert - enter b->guest_eip -> b->tca into the vCPU's IBL table
 * (the inline indirect-branch lookup). An eip may sit in either of its two
 * slots (tc_ibl_slot, tc_ibl_slot2; the lookup stub probes both): an empty
 * one or its own is taken; else b takes its first slot and the eip there
 * moves to its other slot, replacing what that held.
 */
void tc_ibl_insert(struct tc *tc, struct tc_block *b);

/* tc_ibl_find - the IBL slot ({key, tca}) holding guest_eip, or NULL. */
uint32_t *tc_ibl_find(struct tc *tc, uint32_t guest_eip);

/* tc_ibl_slot, tc_ibl_slot2 - the two IBL table indices a guest eip may use
 * (shared with emitted code, which computes them without touching the
 * flags: the low 14 bits, as MOVZX r32,r16 of 4 times the eip (LEA);
 * BSWAP and LEA first for the second, which mixes in bits 16-21 and
 * 24-31: eips 64 KiB apart, which share their first slot, differ in their
 * second, but those 16, 32 and 48 KiB apart share both; BSWAP of 5 times
 * the eip, which mixes in every bit from 14 up, took more IBL misses on
 * the vm stressor, 6,300 a run against 4,200, and no less time,
 * docs/bt.md). 16,384 slots of 8 bytes are 128 KiB; 65,536, found with one
 * instruction less per slot, took 512 KiB of each vCPU's state and no
 * less time (docs/performance.md "Returns"). */
static inline uint32_t tc_ibl_slot(uint32_t guest_eip) { return guest_eip & (BT_IBL_ENTRIES - 1); }
static inline uint32_t tc_ibl_slot2(uint32_t guest_eip)
{
    return (guest_eip + __builtin_bswap32(guest_eip)) & (BT_IBL_ENTRIES - 1);
}

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
 * tc_invalidate_range - kill only the blocks whose guest code meets the len
 * bytes at offset off (0..4095, off + len <= 4096) of the page containing
 * page_gva (the identity tc_invalidate_page takes): a store the monitor
 * emulated into translated code (self-modifying code, per byte range as
 * QEMU's TB invalidation does). A block's bytes are its guest_len from
 * guest_eip + base (base: the CS base the cache was built under), the part
 * past its first page on its second, plus the 15 bytes after it that
 * decoding its last instruction may have read, and the bytes of the
 * callees it has inline (inl_lo..inl_hi of page[TC_PAGE_INLINE], the same
 * 15 after). Returns how many were killed.
 */
uint32_t tc_invalidate_range(struct tc *tc, uint32_t page_gva, uint32_t off, uint32_t len, uint32_t base);

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
 * tca leave translated code at its end: its chained exits are unchained,
 * and a jump to the lookup stub (RET, JMP/CALL r/m, IRET) goes to the
 * stub's miss path until tc_restore_stopped. Cheaper than tc_unchain_all()
 * when an interrupt wants the monitor back and tc_insn_boundary() said no.
 * Returns 0, or E_NOENT when tca is in no block (the shared lookup stub,
 * outside the TC): then only tc_unchain_all() stops the code in time.
 */
int tc_stop_block_at(struct tc *tc, uint32_t tca);

/* tc_ibl_reset - empty the indirect-branch lookup table: every slot's key
 * is BT_IBL_EMPTY and its target the miss trampoline (tc_set_ibl_miss). */
void tc_ibl_reset(struct tc *tc);

#endif
