/*
 * Shadow paging core: the page tables the CPU really walks while a guest runs.
 *
 * Guest user code runs at ring 3 and guest kernel code (translated) at ring 1,
 * both under shadow page tables built here from the guest's own 32-bit page
 * tables, which are only data (Intel SDM Vol. 3A §4.3). The design story is
 * docs/vmm.md ("Shadow paging"); the map of the implementation opens vmm/shadow.c.
 *
 * Policies in one paragraph:
 *  - one shadow page directory per guest CR3, kept in a bounded LRU cache, so
 *    process switches reuse what was built; shadow page tables are shared
 *    by the directories whose guest PDEs are equal (the kernel half);
 *  - shadow entries are filled lazily by hidden page faults;
 *  - guest page-table pages are WRITE-PROTECTED AND TRACED: every shadow maps
 *    them read-only, a guest store to one comes back as SHADOW_EMULATE_PT and
 *    the VMM passes the store to shadow_pt_write(), which updates guest memory
 *    and zaps the shadow entries built from the changed guest entries; pages
 *    written too often are unshadowed ("flood"). This keeps every cached shadow
 *    exactly in sync with the guest tables, which is what makes the CR3 cache
 *    correct (SDM §4.10.4.1: a CR3 load flushes the guest's TLB);
 *  - accessed/dirty bits are emulated exactly (§4.8): a shadow PTE is
 *    installed only after A is set in the guest entries, and is writable only
 *    once the guest's D is set;
 *  - guest global pages: the G bit is never set in a shadow (only the monitor
 *    PDEs are global); cached shadows are in sync, so guest G semantics hold;
 *  - guest CR0.WP=0: see docs/vmm.md ("CR0.WP").
 *
 * One vCPU per struct shadow; not thread-safe. No allocation happens outside
 * the table_alloc callback; struct shadow itself is embedded by the caller.
 */
#ifndef HV86_VMM_SHADOW_H
#define HV86_VMM_SHADOW_H
#include <stdbool.h>
#include <stdint.h>

/* #PF error code bits (SDM Vol. 3A §4.7), used both for access kinds and results. */
#define PF_P    0x01u /* 1: protection violation; 0: not-present entry */
#define PF_W    0x02u /* the access was a write */
#define PF_U    0x04u /* the access was made at CPL 3 */
#define PF_RSVD 0x08u /* a reserved bit was set in a paging-structure entry */

/* Compile-time capacities; runtime limits (struct shadow_config) may be lower. */
#define SHADOW_MAX_PDS 32   /* cached shadow page directories (incl. paging-off) */
#define SHADOW_MAX_PTS 1024 /* shadow page tables (4 MiB of frames) */
#define SHADOW_HASH    256  /* buckets of the guest-page-table index */
#define SHADOW_FLOOD   8    /* traced writes without a fill before unshadowing */
#define SHADOW_MAX_WRITABLE 16384 /* writable sptes at a time (reverse-mapped) */
#define SHADOW_RMAP_HASH    1024 /* buckets of the reverse map, by host frame */
#define SHADOW_PREFETCH     8    /* default: entries filled around a hidden fault */
#define SHADOW_PREFETCH_MAX 64   /* the largest block shadow_set_prefetch takes */
#define SHADOW_FRAME_SHARED 1    /* gpa_to_hpa: the frame is shared copy-on-write */

/*
 * Environment the VMM provides. Every callback gets ops->ctx. Guest memory
 * callbacks take guest-physical addresses (gpa); table callbacks deal in
 * host-physical (hpa) page-table frames.
 */
struct shadow_ops {
    void *ctx;
    /* hpa of the 4 KiB host frame backing guest page gpa, for a mapping
     * that may be writable (write: the VMM unshares a shared page first,
     * docs/memory-layout.md "Page sharing") or read-only (!write). Returns
     * 0 (private frame), SHADOW_FRAME_SHARED (!write only: the frame is
     * shared copy-on-write, map it read-only), E_NOMEM (write: no frame to
     * unshare into; the fault fails), or another negative value if gpa is
     * not guest RAM (MMIO or hole: never mapped by the shadow). */
    int (*gpa_to_hpa)(void *ctx, uint32_t gpa, bool write, uint32_t *hpa);
    /* Aligned 32-bit guest-physical read/write; negative if gpa is not RAM. */
    int (*read_gpa32)(void *ctx, uint32_t gpa, uint32_t *val);
    int (*write_gpa32)(void *ctx, uint32_t gpa, uint32_t val);
    /* A zeroed 4 KiB host frame for a shadow table: returns a pointer the
     * monitor can write through (hv86: frame_alloc(ZONE_DIRECT) +
     * phys_to_virt) and its hpa in *hpa; NULL if none is left. */
    void *(*table_alloc)(void *ctx, uint32_t *hpa);
    void (*table_free)(void *ctx, void *va, uint32_t hpa);
    /* The active shadow changed at gva (invlpg), or more than one page of it
     * (reload CR3 with shadow_scr3()). Called only for the active shadow. */
    void (*flush_gva)(void *ctx, uint32_t gva);
    void (*flush_all)(void *ctx);
    /* The MONITOR_PDES entries every directory carries from MONITOR_PDE_FIRST
     * on (hv86: paging_monitor_pdes()). */
    const uint32_t *monitor_pdes;
    /* Optional: true if guest page gpa holds code the monitor translated, so
     * that every shadow maps it read-only and a store to it comes back as
     * SHADOW_CODE_WRITE (self-modifying code). NULL: no such pages. */
    bool (*is_code)(void *ctx, uint32_t gpa);
    /* Optional: len bytes (a multiple of 4, within one 4 KiB page) of guest
     * RAM at gpa into buf, as read_gpa32 would give them one by one, in
     * one call (the prefetch reads its block of guest PTEs at once, a
     * resync 16 PTEs at a time);
     * negative if gpa is not RAM. NULL: read_gpa32 per entry. */
    int (*read_gpa)(void *ctx, uint32_t gpa, void *buf, uint32_t len);
};

/* Runtime limits, for the VMM's memory budget and for the tests' pressure. */
struct shadow_config {
    uint32_t max_pds; /* 2..SHADOW_MAX_PDS; each takes 2 frames (directory + index) */
    uint32_t max_pts; /* 8..SHADOW_MAX_PTS; also bounds the writable sptes
                       * at MIN(16 * max_pts, SHADOW_MAX_WRITABLE) */
};

struct shadow_stats {
    uint32_t pages_in_use;    /* host frames held now (directories, their indexes, tables) */
    uint32_t pds_in_use;      /* shadow directories cached now */
    uint32_t pts_in_use;      /* shadow page tables now */
    uint32_t hidden_faults;   /* #PF fixed by filling the shadow */
    uint32_t reflected_faults;/* #PF the guest's own tables give */
    uint32_t prefaulted;      /* entries filled at the return from a reflected #PF (shadow_prefault) */
    uint32_t emulated;        /* SHADOW_EMULATE_* and SHADOW_MMIO results */
    uint32_t cr3_hits;        /* shadow_set_cr3 found a cached directory */
    uint32_t cr3_misses;      /* ... had to build one */
    uint32_t a_sets;          /* guest A bits set by the shadow (PDE or PTE) */
    uint32_t d_sets;          /* guest D bits set */
    uint32_t pd_evictions;    /* cached directories dropped for room */
    uint32_t pt_evictions;    /* page tables dropped for room */
    uint32_t pt_writes;       /* shadow_pt_write calls that hit a traced page */
    uint32_t zaps;            /* shadow entries invalidated by traced writes */
    uint32_t floods;          /* shadows dropped because their page was written too often */
    uint32_t full_flushes;    /* shadow_flush_all (CR0.PG/WP, CR4.PSE changes) */
    uint32_t prefetched;      /* sptes filled next to a hidden fault */
    uint32_t pt_shares;       /* shadow PTs linked into one more directory */
    uint32_t prelinks;        /* ... of them linked when their directory was made (pd_prelink) */
    uint32_t wr_reclaims;     /* writable sptes made read-only to stay under max_writable */
    uint32_t writable;        /* writable sptes now */
    uint32_t shared_maps;     /* sptes now mapping a shared frame (read-only, reverse-mapped) */
    uint32_t frame_zaps;      /* sptes dropped because their frame was shared or unshared */
    uint32_t unsyncs;         /* traced page tables let out of sync by a store (one exit, then none) */
    uint32_t resyncs;         /* out-of-sync shadow PTs brought back in sync (CR3/CR0/CR4 write, flush) */
    uint32_t resync_zaps;     /* sptes dropped at a resync: their guest PTE had changed */
    uint32_t resync_fills;    /* entries filled at a resync: the store that unsynced the table wrote them (pt_resync) */
};

/* Per-shadow-page-table bookkeeping (private to shadow.c). */
struct shadow_pt {
    uint32_t *tbl;     /* the table, monitor-writable */
    uint32_t hpa;      /* its frame; 0 = descriptor free */
    uint32_t gsrc;     /* guest PT gpa (traced), or the 4 MiB gpa it covers */
    uint32_t gpde;     /* guest PDE it was built from (A and D ignored) */
    uint32_t parents;  /* bit i: linked from directory pds[i] (at the same pde) */
    uint16_t pde;      /* directory index it is linked at in every parent */
    uint16_t hnext;    /* next in hash chain / free list, +1 (0 = end) */
    uint16_t nwritable;/* entries in the reverse map (writable, or onto a shared frame) */
    uint8_t kind;      /* enum in shadow.c */
    uint8_t ref;       /* clock reference bit */
    uint16_t writes;   /* traced writes (or unsyncs) since the last fill (flood) */
    uint8_t unsync;    /* out of sync: the guest page is writable, stores are not traced (shadow.c 5b) */
    uint16_t unsync_idx; /* entry whose store made it out of sync (refilled at the resync), or SPT_NO_IDX */
};
#define SPT_NO_IDX 0xFFFFu

/* Per-shadow-directory bookkeeping (private to shadow.c). */
struct shadow_pd {
    uint32_t *tbl;     /* the directory */
    uint16_t *child;   /* per PDE: shadow_pt index + 1, 0 = none (second frame) */
    uint32_t hpa, child_hpa; /* 0 = descriptor free */
    uint32_t gcr3;     /* guest directory gpa (page), or SHADOW_GCR3_PHYS */
    uint32_t lru;      /* last activation stamp */
    uint16_t writes;   /* traced writes since activation (flood) */
    uint16_t monitor_gpdes; /* bit i: guest PDE MONITOR_PDE_FIRST+i is present */
};

/* Reverse-map entry: one writable spte, or one onto a shared frame (private to shadow.c). */
struct shadow_rmap {
    uint16_t pt;   /* shadow_pt index */
    uint16_t idx;  /* entry in it */
    uint16_t next; /* next in bucket / free list, +1 (0 = end) */
    uint16_t used;
};

#define SHADOW_GCR3_PHYS 0xFFFFFFFFu /* key of the paging-off (CR0.PG=0) directory */

struct shadow {
    struct shadow_ops ops;
    struct shadow_config cfg;
    uint32_t max_writable;       /* reverse-map entries in use (see shadow_config) */
    uint32_t prefetch;           /* block filled around a hidden fault (power of 2, 0 = off) */
    bool unsync_on;              /* page tables may go out of sync (shadow_set_unsync) */
    uint32_t nunsync;            /* shadow PTs out of sync now */
    uint32_t unsync_map[SHADOW_MAX_PTS / 32]; /* bit id: pts[id] is out of sync */
    uint32_t pde_used[1024 / 32]; /* bit pde: a shadow PT was made at that PDE index (pd_prelink looks there) */
    struct shadow_stats stats;
    uint32_t gcr0, gcr3, gcr4;   /* guest control registers as the guest wrote them */
    uint32_t a20_mask;           /* ~SHADOW_A20_BIT while the guest's A20 gate is off, else all ones */
    uint32_t tlb_gen;            /* shadow_tlb_gen */
    int active;                  /* index in pds[] of the loaded directory, -1 none */
    uint32_t lru_clock;
    uint32_t clock_hand;         /* PT eviction */
    uint16_t pt_free;            /* free-list head (+1) */
    uint16_t hash[SHADOW_HASH];  /* traced guest PT page -> pts[] chain (+1) */
    uint16_t rmap_free;          /* free-list head (+1) */
    uint16_t rmap_hand;          /* reclaim clock */
    uint16_t rmap_hash[SHADOW_RMAP_HASH]; /* host frame -> writable sptes (+1) */
    const char *why;             /* reason of the last negative return */
    struct shadow_pd pds[SHADOW_MAX_PDS];
    uint32_t pd_filter[SHADOW_HASH / 32]; /* bit hash_of(gcr3) of every directory in pds[] (pd_find) */
    struct shadow_pt pts[SHADOW_MAX_PTS];
    struct shadow_rmap rmap[SHADOW_MAX_WRITABLE];
};

/* Result of shadow_handle_fault (non-negative) */
enum shadow_result {
    SHADOW_FIXED = 0,       /* hidden fault: shadow filled, re-run the instruction */
    SHADOW_REFLECT,         /* guest's own fault: inject #PF, error out->guest_err, CR2 out->cr2 */
    SHADOW_EMULATE_PT,      /* store to a traced guest page table at out->gpa: emulate the
                             * instruction, give the store to shadow_pt_write()
                             * (A/D for it are already set in the guest) */
    SHADOW_EMULATE_MONITOR, /* gva in_monitor(), guest-mapped to out->gpa: emulate */
    SHADOW_MMIO,            /* out->gpa is not guest RAM: emulate the device access */
    SHADOW_CODE_WRITE,      /* store to a page ops->is_code() claims, at out->gpa: drop the
                             * translations of that page, stop claiming it, re-run the store */
};

struct shadow_fault {
    uint32_t guest_err; /* SHADOW_REFLECT: the #PF error code for the guest */
    uint32_t cr2;       /* SHADOW_REFLECT: the faulting gva */
    uint32_t gpa;       /* EMULATE_* / MMIO: the guest-physical address accessed */
    uint32_t gpde;      /* SHADOW_REFLECT: the guest PDE the walk read for cr2 ... */
    bool gpde_read;     /* ... if it read one (shadow_fault_invalidate takes it) */
};

/*
 * shadow_init - set up an empty shadow for a new VM with guest CR0.PG=0,
 * CR4=0, and build the paging-off directory. ops is copied; cfg may be NULL
 * (capacities). Returns 0, E_INVAL (bad cfg/ops) or E_NOMEM.
 */
int shadow_init(struct shadow *s, const struct shadow_ops *ops, const struct shadow_config *cfg);
/*
 * shadow_limit_writable - allow at most n (8..SHADOW_MAX_WRITABLE) writable
 * sptes instead of MIN(16 * max_pts, SHADOW_MAX_WRITABLE). Only while none
 * exists (right after shadow_init): 0, E_INVAL or E_BUSY.
 */
int shadow_limit_writable(struct shadow *s, uint32_t n);
/*
 * shadow_set_prefetch - on a hidden fault also fill the other entries of its
 * aligned block of n (0 = off, or a power of 2 up to 64; default
 * SHADOW_PREFETCH) whose guest entries need no A/D update, exactly as later
 * faults would (so A/D stay exact). 0 or E_INVAL.
 */
int shadow_set_prefetch(struct shadow *s, uint32_t n);
/*
 * shadow_set_unsync - let (on, the default) or never let (off) guest page
 * tables go out of sync: a store into a traced page table that is not a
 * directory nor translated code then makes the page writable (one hidden
 * fault) instead of being emulated. Its shadow PTs are resynced at the
 * next CR3, CR0 or CR4 write or flush; in between, an INVLPG must reach
 * shadow_invlpg (shadow_unsync_active()). KVM's unsync shadow pages; the
 * staleness allowed is the TLB's (SDM Vol. 3A §4.10.4). Turning it off
 * resyncs everything first. Returns 0.
 */
int shadow_set_unsync(struct shadow *s, bool on);
/* Shadow PTs out of sync now (what `vm info` shows). */
static inline uint32_t shadow_unsync_count(const struct shadow *s) { return s->nunsync; }
/* true while a shadow PT is out of sync: then every guest INVLPG must be
 * given to shadow_invlpg (the translator may drop it only while false).
 * False from each resync of all of them (a CR3, CR0 or CR4 write) until a
 * store lets a table out of sync (U2). */
static inline bool shadow_unsync_active(const struct shadow *s) { return s->nunsync != 0; }
/*
 * shadow_destroy - free every frame the shadow holds (VM destruction). The
 * CPU must not be using shadow_scr3() any more (load the host CR3 first).
 */
void shadow_destroy(struct shadow *s);

/*
 * hpa of the shadow directory to load in the real CR3 while the guest runs
 * (0 only before shadow_init / after shadow_destroy). After an E_NOMEM from
 * a switch it is still the previous, valid directory, but not the guest's
 * current one: do not run the guest (kill the VM, or free memory and call
 * shadow_handle_fault, which retries the switch).
 */
uint32_t shadow_scr3(const struct shadow *s);

/*
 * shadow_set_cr3 - guest wrote CR3 (gcr3, PCD/PWT ignored). With paging on,
 * switch to the cached shadow of that directory or build an empty one
 * (evicting the least recently used); with paging off, only remember it.
 * Out-of-sync page tables are resynced first (a CR3 load flushes the TLB's
 * non-global entries; no spte is global, so all of them). Returns 0 (load shadow_scr3()) or E_NOMEM. SDM Vol. 3A §4.10.4.1.
 */
int shadow_set_cr3(struct shadow *s, uint32_t gcr3);
/*
 * shadow_set_cr0 / shadow_set_cr4 - guest wrote CR0 / CR4. CR0.WP going
 * 0 -> 1 and any CR4.PSE change flush every shadow (shadows encode them);
 * WP 1 -> 0 flushes nothing (shadows are only stricter; faults re-walk);
 * a CR0.PG change switches between the paging-off directory and the one of
 * the current CR3, both kept. CR4.PGE is only remembered (no shadow carries
 * G). Every write (and shadow_set_cr3) first resyncs the out-of-sync page
 * tables: each is a TLB flush (SDM Vol. 3A §4.10.4.1). Returns 0 (load shadow_scr3()), E_INVAL (PAE paging: not shadowed) or
 * E_NOMEM.
 */
int shadow_set_cr0(struct shadow *s, uint32_t gcr0);
int shadow_set_cr4(struct shadow *s, uint32_t gcr4);
/*
 * shadow_invlpg - guest executed INVLPG gva (SDM §4.10.4.1): drop the shadow
 * entry for gva, and the whole shadow table if the guest PDE changed behind
 * the tracing (e.g. a page unshadowed by flood), so the next access resyncs.
 * Needed only while page tables are out of sync (shadow_unsync_active).
 */
void shadow_invlpg(struct shadow *s, uint32_t gva);
/*
 * shadow_fault_invalidate - what a page fault at gva invalidates (SDM Vol.
 * 3A §4.10.4.1, "Page-fault exceptions"): the TLB entries for gva's page
 * and the paging-structure entries used for gva; here, as shadow_invlpg
 * does, gva's shadow entry and its table if the guest PDE changed. Unlike
 * an INVLPG, which invalidates every paging-structure cache entry, it
 * leaves shadow_tlb_gen as it is: a walk the monitor keeps for another
 * page stays good, unless it went through gva's PDE (the caller's to
 * check: same 4 MiB region). gpde: the guest PDE of gva as the fault's
 * walk read it (shadow_fault.gpde), or NULL to read it here.
 */
void shadow_fault_invalidate(struct shadow *s, uint32_t gva, const uint32_t *gpde);
/*
 * shadow_set_a20 - the guest's A20 gate (port 0x92 bit 1, i8042 output
 * port bit 1) opened (enabled) or closed. While closed, address bit 20 of
 * every gpa reached with paging off is forced to 0, as the PC's A20M#
 * does: 1 MiB..1 MiB+64 KiB (what real mode reaches through FFFF:0010
 * and up) aliases 0..64 KiB. With paging on the gate is not applied (a
 * documented gap: no paging OS runs with A20 closed). A change drops
 * every shadow. 0, or E_NOMEM from the flush. Source: IBM PC/AT
 * Technical Reference (A20 gate); Intel SDM Vol. 3A §20.1.1 (A20M#).
 */
#define SHADOW_A20_BIT 0x00100000u
int shadow_set_a20(struct shadow *s, bool enabled);

/* shadow_flush_all - drop every shadow; keep the current mode. 0 or E_NOMEM. */
int shadow_flush_all(struct shadow *s);

/*
 * shadow_handle_fault - a #PF hit guest code (real CR2 = gva, real error code
 * hw_err; only its W bit is used) while the guest ran at guest CPL cpl (0-3;
 * guest CPL 0-2 run at rings 1-2 and are supervisor for paging). Walks the
 * guest tables for the access (SDM §4.3, §4.6 with guest CR0.WP, §4.8 A/D) and
 * returns a shadow_result with *out filled, or a negative E_* if the VM must
 * be killed (E_CORRUPT: a guest paging structure outside guest RAM; E_NOMEM),
 * with shadow_why() telling why.
 */
int shadow_handle_fault(struct shadow *s, uint32_t gva, uint32_t hw_err, unsigned cpl,
                        struct shadow_fault *out);

/*
 * shadow_prefault - fill the shadow entry for gva as shadow_handle_fault
 * would for an access of kind acc (PF_W, PF_U bits), but only where the
 * guest's tables allow that access now and already carry every accessed
 * and dirty bit it would set: the fill is then a translation the CPU could
 * have cached on its own (SDM Vol. 3A §4.10.2), with no guest-visible
 * change. The monitor calls it when the guest returns from the handler of
 * a page fault it was given, so that the retried access does not fault a
 * second time (a hidden fault, and an exit, saved). Neighbours are
 * prefetched as a hidden fault's are only after a read: for a write,
 * Linux maps the one page. Returns 1 (filled), 0
 * (nothing done: not mapped, not allowed, a bit still to set, the monitor
 * range, not RAM, a write to a traced table or to translated code, paging
 * off), or E_NOMEM.
 */
int shadow_prefault(struct shadow *s, uint32_t gva, uint32_t acc);

/*
 * shadow_guest_translate - walk the GUEST tables for any gva (also in the
 * monitor range) as the instruction emulator's access of kind acc (PF_W,
 * PF_U bits) would (guest CR0.WP); if set_ad, set A/D as the CPU would.
 * Returns 0 with *gpa, 1 with *err = the guest #PF error code, or E_CORRUPT.
 * With paging off, *gpa = gva.
 */
int shadow_guest_translate(struct shadow *s, uint32_t gva, uint32_t acc, bool set_ad,
                           uint32_t *gpa, uint32_t *err);

/*
 * shadow_guest_pt_page - the gpa page of the GUEST page table whose PTE
 * maps gva now (a 4 KiB mapping with paging on; walk as a read, no A/D
 * set). Returns 0 with *pt_page, 1 when there is none (paging off, a 4 MiB
 * page, not present), or E_CORRUPT.
 */
int shadow_guest_pt_page(struct shadow *s, uint32_t gva, uint32_t *pt_page);

/*
 * shadow_mapped - the host frame the loaded shadow maps gva to for an
 * access of kind acc (PF_W, PF_U bits), as the CPU itself would reach it
 * from the guest: what a guest access would find without a fault. The
 * shadow is the guest's TLB (Intel SDM Vol. 3A §4.10.2): an entry exists
 * only after a guest walk allowed the access and set A (D for a writable
 * entry), and it is dropped at traced PTE writes, INVLPG and CR3 loads as
 * §4.10.4 lets a TLB be (in an out-of-sync table it may be what the guest
 * PTE was until then, as a TLB entry may: still a frame of this guest's). A monitor read may therefore use it instead of
 * walking the guest tables. Returns 0 with *hpa (byte address), or 1: no
 * such entry (not present, too few rights, a monitor-range gva, another
 * mode's directory loaded); then walk (shadow_guest_translate).
 */
int shadow_mapped(const struct shadow *s, uint32_t gva, uint32_t acc, uint32_t *hpa);

/*
 * shadow_tlb_gen - a count that changes at every event after which a
 * translation of the guest's (gva -> gpa) may no longer be one its TLB
 * could hold (Intel SDM Vol. 3A §4.10.4): any INVLPG given to
 * shadow_invlpg, CR0, CR3 and CR4 loads, the A20 gate, full flushes, a
 * guest page-table store the monitor emulated (shadow_pt_write) and a
 * host write to guest RAM (shadow_gpa_changed). A translation the monitor
 * walked (shadow_guest_translate) while the count had some value may be
 * used as long as it keeps it, as a TLB entry would be -- except for a
 * page whose INVLPG translated code skips (bt_vcpu.invlpg_skip), which
 * changes nothing here, and the page of a fault (and those under its PDE)
 * given to shadow_fault_invalidate. Units: none; it wraps. Inline: read at
 * every guest page fault.
 */
static inline uint32_t shadow_tlb_gen(const struct shadow *s) { return s->tlb_gen; }

/*
 * shadow_guest_global - does the guest's translation of gva outlive a CR3
 * write? True with paging off (nothing to reload), or when CR4.PGE is set
 * and the leaf entry mapping gva (PTE, or PDE of a 4 MiB page) has G; false
 * otherwise, and when gva is not mapped. Walks the guest tables without
 * setting A/D. SDM Vol. 3A §4.10.2.4 (global pages).
 */
bool shadow_guest_global(struct shadow *s, uint32_t gva);

/*
 * shadow_pt_write - the emulator's store of len bytes (1..PAGE_SIZE) at gpa, which
 * shadow_handle_fault reported as SHADOW_EMULATE_PT (or any gpa for which
 * shadow_is_pt_gpa() holds). Writes guest memory and zaps the shadow entries
 * built from every changed guest PDE/PTE. Returns 0 or E_INVAL (gpa not RAM).
 */
int shadow_pt_write(struct shadow *s, uint32_t gpa, const void *bytes, uint32_t len);
/*
 * shadow_gpa_changed - guest memory [gpa, gpa+len) changed behind the CPU
 * (device DMA); zaps every shadow built from it. Cheap when not traced.
 */
void shadow_gpa_changed(struct shadow *s, uint32_t gpa, uint32_t len);
/*
 * shadow_write_protect_gpa - from now on the page of gpa is mapped read-only
 * in every shadow: removes write permission from every spte that maps it
 * (through the reverse map of writable sptes). Call after ops->is_code()
 * starts claiming the page.
 */
void shadow_write_protect_gpa(struct shadow *s, uint32_t gpa);
/*
 * shadow_zap_frame - host frame hpa (4 KiB aligned) stopped backing the
 * guest page it was shared for (the VMM unshared that page: the page now
 * has a private copy): drop every spte onto hpa, found through the
 * reverse map, which holds every spte onto a shared frame. Cost: the
 * mappings of that frame. docs/memory-layout.md "Page sharing".
 */
void shadow_zap_frame(struct shadow *s, uint32_t hpa);
/*
 * shadow_zap_frames - the VMM is about to share the n host frames of
 * hpas[] (4 KiB aligned, n <= 256; sorted in place): drop every present
 * spte onto one of them, read-only ones included, by a sweep of every
 * shadow PT (cost: tables in use x 1024, once per batch). Afterwards every
 * fill asks gpa_to_hpa again and gets SHADOW_FRAME_SHARED, so no writable
 * or unmapped-in-the-reverse-map spte onto a shared frame exists.
 */
void shadow_zap_frames(struct shadow *s, uint32_t *hpas, unsigned n);
/* true if the page of gpa is a traced guest page table (mapped read-only). */
bool shadow_is_pt_gpa(struct shadow *s, uint32_t gpa);
/* Present guest PDEs in the monitor range of the active directory (bit i = PDE 1008+i). */
uint32_t shadow_monitor_gpdes(const struct shadow *s);

void shadow_get_stats(const struct shadow *s, struct shadow_stats *st);
/* Reason of the last negative return ("" if none). */
const char *shadow_why(const struct shadow *s);

#endif
