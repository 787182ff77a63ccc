/*
 * The execution engine: runs one vCPU the way the original VMware VMM did.
 *
 * Map:
 *   1. creation/reset: struct vcpu, translation cache, shadow paging, shadow GDT
 *   2. shadow GDT: guest descriptors with ring compression (DPL 0 -> 1) and
 *      limits truncated below MONITOR_BASE (vmm/segment.c); monitor
 *      descriptors at the top
 *   3. guest memory by linear address (guest paging via vmm/shadow.c)
 *   4. segment loads, EFLAGS, CPL changes
 *   5. exception and interrupt delivery through the guest's IDT
 *   6. world switch glue: building the entry frame, vmm_guest_trap()
 *   7. the run loop: virtual interrupts, hlt, BT at CPL 0, direct execution at CPL 3
 *
 * Invariants:
 *   - c->bv holds the guest registers whenever the guest is not running;
 *     c->seg holds what the guest believes is in its segment registers;
 *   - while the guest runs, the vCPU thread's world is (shadow CR3, shadow
 *     GDT); every trap from ring 1 or 3 lands in vmm_guest_trap on this
 *     thread's stack, just below the frame vmm_enter saved;
 *   - guest code never runs at ring 0, and no guest segment reaches
 *     [MONITOR_BASE, 4 GiB): only SEL_R1CODE (fetch-only, our translations)
 *     and SEL_R1VCPU (c->bv) do.
 * Sources: Intel SDM Vol. 3A §3.4-3.5 (segments), §5.5-5.8 (privilege
 * checks), §6.12 (exception and interrupt handling), §7.2 (TSS).
 */
#include "vmm/vcpu_priv.h"
#include "kernel/heap.h"
#include "kernel/clock.h"
#include "kernel/kernel.h"
#include "kernel/layout.h"
#include "kernel/paging.h"
#include "kernel/pmm.h"
#include "mgmt/cmd.h"
#include "vmm/task.h"
#include "vmm/vmdev.h"

/* Translation cache per vCPU, in bytes. A Linux boot to its shell
 * translates some 60,000 blocks (48 bytes of code and about 115 of metadata
 * each, a third of them killed by the kernel patching itself): the large
 * size holds nearly all of them (two flushes per boot). A guest of
 * TC_LARGE_MIN_PAGES or more gets it, smaller guests (the test guests) the
 * small one. Both live in the VM's window (kernel/vmwin.h), in high memory. */
#define TC_LARGE_CODE (3264u << 10) /* the window's room, 3:7 (bt_vcpu 65 pages, the GDT's page 1) */
#define TC_LARGE_META (7616u << 10)
static const struct { uint32_t code, meta; } tc_sizes[] = {
    { TC_LARGE_CODE, TC_LARGE_META },
    { 1u << 20, 512u << 10 },
};
#define TC_LARGE_MIN_PAGES  (32u << 8)  /* 32 MiB */
_Static_assert(TC_LARGE_CODE + TC_LARGE_META + SH_POOL_PAGES * PAGE_SIZE + ALIGN_UP(sizeof(struct bt_vcpu), PAGE_SIZE) +
               PAGE_SIZE <= VMWIN_SIZE, "the largest TC, the shadow pool, the bt_vcpu and the GDT's page fit in the window");
#define GDT_BYTES (GDT_ENTRIES * 8u)
#define IDT_GATE_INT32  0xE
#define IDT_GATE_TRAP32 0xF
#define EFLAGS_GUEST_SYS (EFLAGS_TF | EFLAGS_IOPL | EFLAGS_NT | EFLAGS_RF | EFLAGS_AC | EFLAGS_ID)

_Static_assert(sizeof(struct guest_frame) == 92, "vmm/switch.S GF_SIZE");

int vmm_enter(const struct guest_frame *guest, uint32_t *host_esp); /* vmm/switch.S */
static struct vcpu *fpu_owner; /* the vCPU whose state the FPU registers hold (lazy FPU) */
void vmm_leave(uint32_t host_esp, int code) __attribute__((noreturn));
void irq_handle(struct trap_frame *tf); /* kernel/irq.c */

/* ---------------------------------------------------------------- 1. creation */

_Static_assert(GMEM_SHARED == SHADOW_FRAME_SHARED, "sh_gpa_to_hpa passes gmem's answer on");
_Static_assert(SYNC_GDT_LOW == BT_GDT_LOW, "bt_vcpu.gdt_low mirrors the entries sync_gdt_low keeps");

/* A writable mapping unshares the page first (copy-on-write, vmm/gmem.h). */
static int sh_gpa_to_hpa(void *ctx, uint32_t gpa, bool write, uint32_t *hpa)
{
    struct vm *vm = ctx;
    return write ? gmem_gpa_to_hpa_w(&vm->mem, gpa & PAGE_MASK, hpa) : gmem_gpa_to_hpa(&vm->mem, gpa & PAGE_MASK, hpa);
}

/* The window onto the guest GDT's frame (r3_arm) maps nothing until r3_arm
 * looks again: the frame behind a guest page changes when it is shared or
 * unshared, and the old one may go to another VM. Any thread: the window's
 * page tables are in the direct map, its PTEs are not global. */
static void gdtw_drop(struct vcpu *c)
{
    for (unsigned i = 0; i < ARRAY_SIZE(c->sys_tlb); i++)
        c->sys_tlb[i].hpa = 0; /* read_sys8's frames too */
    if (c->gdtw_hpa) {
        vmwin_alias(&c->win, c->gdtw, 0);
        c->gdtw_hpa = 0;
    }
    /* On the vCPU thread the drop may come from the trap of a run of
     * translated code that goes on (pf_in_world: a write's copy-on-write):
     * its stub must not read the page it was armed for. Elsewhere the VM
     * is not running (and its bt_vcpu not mapped): r3_arm runs first. */
    if (thread_local() == c)
        c->bv->r3_ok = 0;
}

/*
 * Page sharing (docs/memory-layout.md "Page sharing"). A page left shared
 * frame old: every spte onto old goes (the reverse map has them all, I8).
 * Only the vCPU thread may touch the shadow (its tables are in the window);
 * a host thread writes guest RAM only while the VM does not run (load,
 * reset), and the flag makes the next run start from empty shadows.
 */
static void gm_unshared(void *ctx, uint32_t gpa, uint32_t old)
{
    struct vcpu *c = ctx;
    gdtw_drop(c);
    if (thread_local() == c)
        shadow_zap_frame(&c->sh, old);
    else
        c->sh_stale = true;
}

/* Frames about to be shared: no spte may keep mapping them (gmem_share_apply,
 * vCPU thread only). */
static void gm_sharing(void *ctx, uint32_t *hpas, unsigned n)
{
    struct vcpu *c = ctx;
    KASSERT(thread_local() == c);
    gdtw_drop(c);
    shadow_zap_frames(&c->sh, hpas, n);
}

static int sh_read32(void *ctx, uint32_t gpa, uint32_t *val) { return gmem_read32(&((struct vm *)ctx)->mem, gpa, val); }
static int sh_write32(void *ctx, uint32_t gpa, uint32_t val) { return gmem_write(&((struct vm *)ctx)->mem, gpa, &val, 4); }
static int sh_read(void *ctx, uint32_t gpa, void *buf, uint32_t len) { return gmem_read(&((struct vm *)ctx)->mem, gpa, buf, len); }

/* Shadow tables come from the VM's own pool in its window: no VM can take
 * another's, and the shadow pager evicts within its pool when it is empty. */
static void *sh_table_alloc(void *ctx, uint32_t *hpa)
{
    struct vcpu *c = VCPU((struct vm *)ctx);
    if (!c->sh_nfree)
        return NULL;
    uint8_t *va = c->sh_pool + c->sh_free[--c->sh_nfree] * PAGE_SIZE;
    memset(va, 0, PAGE_SIZE);
    *hpa = vmwin_hpa(&c->win, va);
    return va;
}

static void sh_table_free(void *ctx, void *va, uint32_t hpa)
{
    struct vcpu *c = VCPU((struct vm *)ctx);
    uint32_t page = (uint32_t)((uint8_t *)va - c->sh_pool) / PAGE_SIZE;
    KASSERT(page < SH_POOL_PAGES && c->sh_nfree < SH_POOL_PAGES && vmwin_hpa(&c->win, va) == hpa);
    c->sh_free[c->sh_nfree++] = (uint16_t)page;
}

static void sh_flush_gva(void *ctx, uint32_t gva) { invlpg(gva); }

/*
 * The shadow pager is dropping every directory, the loaded one included,
 * and may hand its frame out again at once, zeroed. Move CR3 to the VM's
 * monitor page directory (the monitor and this VM's window, no guest page)
 * until the caller loads the rebuilt shadow: running on a freed directory
 * would triple-fault, and the pager goes on working in the window. A host
 * thread doing this (vcpu_reset at vm create) is in that directory already.
 */
static void sh_flush_all(void *ctx)
{
    struct vm *vm = ctx;
    struct vcpu *c = VCPU(vm);
    if (thread_local() == c)
        thread_set_world(c->win.pd_hpa, &c->sgdtr, 0);
}

/*
 * Self-modifying code (docs/vmm.md): every guest page a translation comes
 * from is marked in code_bits and mapped read-only in every shadow. A store
 * to it faults (SHADOW_CODE_WRITE): its translations are dropped, the mark
 * is cleared, and the store re-runs as a one-instruction block; the next
 * translation from the page marks it again. Keyed by gpa, so writes
 * through an alias mapping are caught too.
 */
static bool sh_is_code(void *ctx, uint32_t gpa)
{
    struct vcpu *c = VCPU((struct vm *)ctx);
    uint32_t pg = gpa >> PAGE_SHIFT;
    return c && c->code_bits && pg < c->vm->mem.npages && (c->code_bits[pg / 32] >> (pg % 32)) & 1;
}

/* Set or clear gpa's bit in code_bits; false (nothing done) outside guest RAM. */
static bool code_bit(struct vcpu *c, uint32_t gpa, bool on)
{
    uint32_t pg = gpa >> PAGE_SHIFT;
    if (pg >= c->vm->mem.npages)
        return false;
    if (on)
        c->code_bits[pg / 32] |= 1u << (pg % 32);
    else
        c->code_bits[pg / 32] &= ~(1u << (pg % 32));
    return true;
}

static void code_mark(struct vcpu *c, uint32_t gpa, bool on)
{
    if (!code_bit(c, gpa, on))
        return;
    if (on) { /* a new round of smc_store's count */
        struct smc_slot *s = &c->smc[(gpa >> PAGE_SHIFT) % SMC_SLOTS];
        if (s->page == (gpa & PAGE_MASK))
            s->stores = 0;
        return;
    }
    /* A store into a page table that mapped translated code may remap that
     * code's EIPs to other bytes, and the translation cache is looked up
     * by EIP: the translations of every code frame it mapped go (a Linux
     * module's init text is freed after init and the next module loaded at
     * the same address on other frames). Conservative: any store. */
    uint32_t page = gpa & PAGE_MASK;
    for (uint32_t i = 0; i < c->nwatch;) {
        if (c->watch[i].table != page) {
            i++;
            continue;
        }
        uint32_t code = c->watch[i].code;
        c->watch[i] = c->watch[--c->nwatch];
        tc_invalidate_page(&c->bt.tc, code);
        c->watch_drops++;
        /* Unmarked so that its next translation watches its table again;
         * not through code_mark: a frame that is also a watched table
         * (a guest may build chains of them) would recurse once per link. */
        code_bit(c, code, false);
    }
}

#define CODE_WATCH_MAX 2048u /* code frames whose mapping is watched (vcpu.watch) */

/* Watch the page table that maps lin's code frame `code` (both gpa pages)
 * while translations from it exist: see code_mark. A full list, a 4 MiB
 * mapping (its directory entry is traced with the directory) or a table
 * that is the code frame itself watch nothing. */
static void code_watch(struct vcpu *c, uint32_t lin, uint32_t code)
{
    uint32_t table;
    if (shadow_guest_pt_page(&c->sh, lin, &table) != 0 || table == code)
        return;
    for (uint32_t i = 0; i < c->nwatch; i++)
        if (c->watch[i].table == table && c->watch[i].code == code)
            return;
    if (c->nwatch == CODE_WATCH_MAX) {
        c->watch_full++;
        return;
    }
    c->watch[c->nwatch++] = (struct code_watch){ table, code };
    if (!sh_is_code(c->vm, table)) {
        code_mark(c, table, true);
        shadow_write_protect_gpa(&c->sh, table);
    }
}

/* bt_page_fn: the gpa page of a block's code, which from now on is protected
 * -- except for the one-instruction block that re-runs a store into it. */
static uint32_t bt_page_of(void *ctx, uint32_t gva)
{
    struct vcpu *c = ctx;
    uint32_t lin = gva + c->seg[SR_CS].base, gpa, err;
    if (shadow_guest_translate(&c->sh, lin, 0, false, &gpa, &err) != 0)
        return lin | 1; /* unreadable: never matches a gpa page */
    if (!c->bt.one_insn && !sh_is_code(c->vm, gpa)) {
        code_mark(c, gpa, true);
        shadow_write_protect_gpa(&c->sh, gpa);
        code_watch(c, lin, gpa & PAGE_MASK);
    }
    return gpa & PAGE_MASK;
}

/* bt_stable_fn: native segment loads only in code on global pages. */
static bool bt_code_stable(void *ctx, uint32_t gva)
{
    struct vcpu *c = ctx;
    return shadow_guest_global(&c->sh, gva + c->seg[SR_CS].base);
}

/* Every translation of gpa's page goes, and the page is no longer claimed:
 * the guest writes it natively until code from it is translated again. */
static void code_page_drop(struct vcpu *c, uint32_t gpa)
{
    tc_invalidate_page(&c->bt.tc, gpa & PAGE_MASK);
    code_mark(c, gpa, false);
}

/* Whether page (a gpa page) is a page table code_watch watches. */
static bool watched_table(const struct vcpu *c, uint32_t page)
{
    for (uint32_t i = 0; i < c->nwatch; i++)
        if (c->watch[i].table == page)
            return true;
    return false;
}

/*
 * smc_store - the monitor stored n bytes at gpa (within one page), which
 * sh_is_code claims: translated code, or a page table mapping some. For
 * code, only the translations the bytes meet are dropped, and the page
 * stays protected, so the next store is caught too (QEMU drops TBs by byte
 * range the same way): Linux patches code a few bytes at a time at boot
 * (alternatives, retpolines, static keys), and dropping every translation
 * of a page at each patch made the kernel translate a third of its boot
 * code twice. A watched page table (code_mark says why), or a page stored
 * into SMC_FLOOD times since it was marked (data sharing a page with code),
 * has all its translations dropped and its mark cleared instead: the guest
 * then writes it natively until code from it is translated again.
 */
static void smc_store(struct vcpu *c, uint32_t gpa, uint32_t n)
{
    uint32_t page = gpa & PAGE_MASK;
    struct smc_slot *s = &c->smc[(page >> PAGE_SHIFT) % SMC_SLOTS];
    if (s->page != page)
        *s = (struct smc_slot){ .page = page };
    if (++s->stores <= SMC_FLOOD && !watched_table(c, page)) {
        tc_invalidate_range(&c->bt.tc, page, gpa & ~PAGE_MASK, n, c->tc_cs_base);
        c->smc_ranged++;
        return;
    }
    code_page_drop(c, gpa);
    c->smc_unprotects++;
}

/* A store hit translated code at gpa: see sh_is_code. Its translations
 * go and the page is written natively (the store re-runs). */
static int handle_code_write(struct vcpu *c, uint32_t gpa)
{
    code_page_drop(c, gpa);
    if (c->cpl == 0 || c->bt.cpl3) {
        c->bt.one_insn = true;
        c->bt.one_insn_eip = c->bv->eip;
    }
    return 0; /* re-run the store: the page is writable again */
}

int vcpu_code_write_unprotect(struct vcpu *c)
{
    c->smc_unprotects++;
    return handle_code_write(c, c->code_write_gpa);
}

/* bt_fetch_fn: guest code bytes at CS:gva, no further than the guest CS
 * limit (an instruction running past it faults, emu_bt_exit's
 * BT_EXIT_CODE_FAULT; SDM Vol. 3A §5.3) nor into an unreadable page. */
static uint32_t bt_fetch(void *ctx, uint32_t gva, uint8_t *buf, uint32_t len)
{
    struct vcpu *c = ctx;
    uint32_t done = 0;
    if (gva > c->seg[SR_CS].limit)
        return 0;
    len = (uint32_t)MIN((uint64_t)len, (uint64_t)c->seg[SR_CS].limit - gva + 1);
    while (done < len) {
        uint32_t a = gva + done, n = MIN(len - done, PAGE_SIZE - (a & (PAGE_SIZE - 1))), gpa, err;
        uint32_t lin = a + c->seg[SR_CS].base;
        if (shadow_guest_translate(&c->sh, lin, 0, true, &gpa, &err) != 0)
            break;
        if (gmem_read(&c->vm->mem, gpa, buf + done, n))
            break;
        done += n;
    }
    return done;
}

static void bt_enter(struct bt_vcpu *v, uint32_t tca);
static struct vcpu *ldt_loaded_for; /* whose shadow LDT the CPU's LDTR holds */

/* "out of WHAT" into err; returns E_NOMEM. */
static int out_of(char *err, size_t errlen, const char *what, uint32_t bytes)
{
    snprintf(err, errlen, "out of %s (%u KiB more needed)", what, ALIGN_UP(bytes, 1024u) >> 10);
    return E_NOMEM;
}

/* The VM's window: translation cache and shadow-table pool, from high memory. */
static int window_create(struct vcpu *c, char *err, size_t errlen)
{
    size_t i = c->vm->mem.npages >= TC_LARGE_MIN_PAGES ? 0 : ARRAY_SIZE(tc_sizes) - 1;
    void *code, *meta, *pool;
    if (vmwin_init(&c->win))
        return out_of(err, errlen, "direct-map memory for the VM's window page tables", 4 * PAGE_SIZE);
    if (vmwin_alloc(&c->win, tc_sizes[i].code, &code) || vmwin_alloc(&c->win, tc_sizes[i].meta, &meta))
        return out_of(err, errlen, "high memory for the translation cache", tc_sizes[i].code + tc_sizes[i].meta);
    if (vmwin_alloc(&c->win, SH_POOL_PAGES * PAGE_SIZE, &pool))
        return out_of(err, errlen, "high memory for the shadow page tables", SH_POOL_PAGES * PAGE_SIZE);
    c->tc_code = code;
    c->tc_meta = meta;
    c->tc_code_bytes = tc_sizes[i].code;
    c->tc_meta_bytes = tc_sizes[i].meta;
    c->sh_pool = pool;
    if (vmwin_alloc(&c->win, sizeof(struct bt_vcpu), &pool))
        return out_of(err, errlen, "high memory for the vCPU's translated-code state", sizeof(struct bt_vcpu));
    c->bv = pool;
    if (vmwin_reserve(&c->win, &c->gdtw))
        return out_of(err, errlen, "window space for the guest GDT's page", PAGE_SIZE);
    for (c->sh_nfree = 0; c->sh_nfree < SH_POOL_PAGES; c->sh_nfree++)
        c->sh_free[c->sh_nfree] = (uint16_t)(SH_POOL_PAGES - 1 - c->sh_nfree);
    return 0;
}

/* The shadow pager, built in the VM's address space (its tables are in the window). */
static int shadow_create(struct vcpu *c, char *err, size_t errlen)
{
    struct vm *vm = c->vm;
    struct shadow_ops ops = { vm, sh_gpa_to_hpa, sh_read32, sh_write32, sh_table_alloc, sh_table_free,
                              sh_flush_gva, sh_flush_all, c->win.pdes, sh_is_code, sh_read };
    struct shadow_config cfg = { SH_MAX_PDS, SH_MAX_PTS };
    uint32_t token = vmwin_enter(&c->win);
    int rc = shadow_init(&c->sh, &ops, &cfg);
    vmwin_leave(token);
    if (rc == 0)
        rc = shadow_limit_writable(&c->sh, MAX(8u, MIN(vm->mem.npages, (uint32_t)SHADOW_MAX_WRITABLE)));
    return rc ? out_of(err, errlen, "shadow page tables", PAGE_SIZE) : 0;
}

int vcpu_create(struct vm *vm, char *err, size_t errlen)
{
    struct vcpu *c = kzalloc(sizeof(*c));
    if (!c)
        return out_of(err, errlen, "direct-map memory for the vCPU state", sizeof(*c));
    vm->vcpu = c;
    c->vm = vm;
    vm->mem.ctx = c;
    vm->mem.unshared = gm_unshared;
    vm->mem.sharing = gm_sharing;
    int rc = window_create(c, err, errlen);
    if (rc)
        goto err_free;
    c->sgdt = kzalloc(GDT_BYTES);
    c->gdt_src = kzalloc(GDT_MONITOR_FIRST * sizeof(uint64_t));
    c->code_bits = kzalloc(ALIGN_UP(vm->mem.npages, 32u) / 8);
    c->watch = kzalloc(CODE_WATCH_MAX * sizeof(*c->watch));
    if (!c->sgdt || !c->gdt_src || !c->code_bits || !c->watch) {
        rc = out_of(err, errlen, "direct-map memory for the shadow GDT", 2 * GDT_BYTES);
        goto err_free;
    }
    if ((rc = shadow_create(c, err, errlen)))
        goto err_free;
    return 0;

err_free:
    vcpu_destroy(vm);
    return rc;
}

void vcpu_destroy(struct vm *vm)
{
    struct vcpu *c = VCPU(vm);
    if (!c)
        return;
    if (fpu_owner == c)
        fpu_owner = NULL;
    if (ldt_loaded_for == c)
        ldt_loaded_for = NULL;
    if (c->sh.ops.table_alloc) { /* its directories and tables are in the window */
        uint32_t token = vmwin_enter(&c->win);
        shadow_destroy(&c->sh);
        vmwin_leave(token);
    }
    vmwin_destroy(&c->win);
    kfree(c->sgdt);
    kfree(c->gdt_src);
    kfree(c->sldt);
    kfree(c->code_bits);
    kfree(c->watch);
    kfree(c);
    vm->vcpu = NULL;
}

/* ---------------------------------------------------------------- 2. shadow GDT */

static int gdtw_remap(struct vcpu *c);

/* May the monitor keep a walk of guest page `page` as a TLB entry would
 * (the GDT window, read_sys8), besides shadow_tlb_gen keeping its value?
 * Not while translated code may skip an INVLPG of it (invlpg_dropped,
 * invlpg_skip) or after it ran one inline (invlpg_inline, until the GDT's
 * page is walked again). */
static inline bool walk_keepable(const struct vcpu *c, uint32_t page)
{
    return c->invlpg_dropped != page && c->bv->invlpg_skip != page && !c->bv->invlpg_inline;
}

/* Does the window still hold what gdtw_map would walk (no walk, no remap)?
 * It was walked for this page in this TLB generation and no INVLPG of it
 * is skipped or was run inline since. */
static inline bool gdtw_current(const struct vcpu *c)
{
    uint32_t page = c->bv->gdtr.base & PAGE_MASK;
    return c->gdtw_hpa && c->gdtw_gva == page && c->gdtw_gen == shadow_tlb_gen(&c->sh) && walk_keepable(c, page);
}

/* The window onto the GDT's frame, walked again only when not current
 * (gdtw_remap): inline, since a delivery from ring 3 and every entry to
 * translated code ask, and nearly always it is. 0, or E_NOENT. */
static inline int gdtw_map(struct vcpu *c) { return gdtw_current(c) ? 0 : gdtw_remap(c); }

/* Guest GDT entry idx as the CPU would read it: through the window onto
 * the GDT's frame (gdtw_map: the walk it keeps is one the guest's TLB
 * could hold) on the vCPU thread, where it is mapped, when the entry lies
 * in GDTR.base's page; else through vmem_read. A delivery from ring 3
 * reads three (TSS, SS, CS): the window is a load where vmem_read is a
 * walk of the shadow and a kmap. 0, or E_RANGE (beyond the limit, not
 * readable: vmem_read may have given the guest its #PF). */
static int read_guest_desc(struct vcpu *c, uint32_t idx, uint64_t *d)
{
    struct bt_desc_table *g = &c->bv->gdtr;
    if (idx == 0 || idx * 8 + 7 > g->limit)
        return E_RANGE;
    uint32_t off = (g->base & (PAGE_SIZE - 1)) + idx * 8;
    if (off + 8 <= PAGE_SIZE && thread_local() == c && gdtw_map(c) == 0) {
        const volatile u32_any *p = (const volatile u32_any *)((const uint8_t *)c->gdtw + off);
        *d = p[0] | (uint64_t)p[1] << 32;
        return 0;
    }
    return vmem_read(c, g->base + idx * 8, d, 8, 0) ? E_RANGE : 0;
}

/* read_sys8's entries: the page of the IDT's gate, of the TSS's ESP0. */
enum { SYS_TLB_IDT, SYS_TLB_TSS };

/*
 * The 8 bytes at gva, for the reads every delivery from ring 3 makes
 * through a guest page: the IDT gate (slot SYS_TLB_IDT) and the TSS's
 * ESP0 and SS0 (SYS_TLB_TSS). Linux keeps both in its fixmap, which lies
 * in the monitor's range, so the shadow never maps them and vmem_read
 * walked the guest's tables twice per delivery (160 instructions a read
 * under QEMU TCG, a sixth of the delivery). The walk is kept here as a TLB
 * entry would be, on the rules of the GDT window (gdtw_current): while
 * shadow_tlb_gen keeps its value (a CR3 load moves it), walk_keepable
 * holds (invlpg_inline, which a GDT walk clears: gdtw_walks then
 * differs), the fault given to the guest was
 * not under the same PDE (invlpg_ahead) and the frame behind the page
 * stayed (gdtw_drop). Else vmem_read, which also sets the guest's A bits
 * and raises its #PF, as the CPU's read would, and the entry is walked
 * again. Returns what vmem_read returns (0: read).
 */
static int read_sys8(struct vcpu *c, unsigned slot, uint32_t gva, void *buf)
{
    struct sys_tlb *t = &c->sys_tlb[slot];
    uint32_t page = gva & PAGE_MASK, off = gva & (PAGE_SIZE - 1), gen = shadow_tlb_gen(&c->sh);
    if (off + 8 > PAGE_SIZE || thread_local() != c)
        return vmem_read(c, gva, buf, 8, 0);
    bool usable = walk_keepable(c, page);
    if (t->hpa && t->page == page && t->gen == gen && t->walks == c->gdtw_walks && usable) {
        uint64_t v = kmap_read64(t->hpa, off);
        ((u32_any *)buf)[0] = (uint32_t)v;
        ((u32_any *)buf)[1] = (uint32_t)(v >> 32);
        c->sys_tlb_hits++;
        return 0;
    }
    int rc = vmem_read(c, gva, buf, 8, 0);
    uint32_t gpa, err, hpa;
    t->hpa = 0;
    if (rc == 0 && usable && shadow_guest_translate(&c->sh, gva, 0, false, &gpa, &err) == 0 &&
        gpa < c->vm->mem_bytes && gmem_gpa_to_hpa(&c->vm->mem, gpa & PAGE_MASK, &hpa) >= 0 &&
        shadow_tlb_gen(&c->sh) == gen)
        *t = (struct sys_tlb){ page, hpa, gen, c->gdtw_walks };
    return rc;
}

int vcpu_read_desc(struct vcpu *c, uint16_t sel, uint64_t *d)
{
    uint32_t idx = sel >> 3;
    if (!(sel & 4))
        return read_guest_desc(c, idx, d);
    if (!c->ldt_limit || idx * 8 + 7 > c->ldt_limit)
        return E_RANGE;
    return vmem_read(c, c->ldt_base + idx * 8, d, 8, 0) ? E_RANGE : 0;
}

#define DESC_TYPE_LDT 0x02 /* system descriptor type: LDT (SDM Vol. 3A Table 3-2) */

/*
 * The shadow LDT mirrors the guest's like the shadow GDT does (ring
 * compression, truncated limits), at the same indices; the CPU finds it
 * through SEL_GLDT, which every entry into the guest loads into LDTR.
 */
int vcpu_load_ldt(struct vcpu *c, uint16_t sel)
{
    uint64_t d;
    if ((sel & ~3u) == 0) {
        c->ldt_limit = 0;
        c->bv->ldtr = sel;
        c->sgdt[SEL_GLDT >> 3] = 0;
        c->ldt_stale = true;
        return 0;
    }
    if ((sel & 4) || read_guest_desc(c, sel >> 3, &d) || (desc_access(d) & (DESC_S | 0x0F)) != DESC_TYPE_LDT)
        return vcpu_exception(c, T_GP, sel & ~3u) ? -1 : 1;
    if (!(desc_access(d) & DESC_P))
        return vcpu_exception(c, T_NP, sel & ~3u) ? -1 : 1;
    if (!c->sldt && !(c->sldt = kzalloc(GDT_BYTES))) {
        vm_kill(c->vm, "out of hypervisor memory for a shadow LDT");
        return E_NOMEM;
    }
    c->ldt_base = desc_base_of(d);
    c->ldt_limit = MIN(desc_limit_bytes(d), GDT_BYTES - 1);
    c->bv->ldtr = sel;
    memset(c->sldt, 0, GDT_BYTES);
    for (uint32_t i = 0; i * 8 + 7 <= c->ldt_limit; i++) {
        uint64_t g;
        c->sldt[i] = vcpu_read_desc(c, (uint16_t)(i << 3 | 4), &g) ? 0 : seg_shadow_desc(g);
    }
    c->sgdt[SEL_GLDT >> 3] = gdt_make_desc((uint32_t)c->sldt, c->ldt_limit, DESC_P | DESC_TYPE_LDT, 0);
    c->ldt_stale = true;
    return 0;
}

/*
 * May translated code load selector (idx << 3 | rpl) into DS, ES or FS
 * natively at ring 1 (h_seg_load in bt/translate.c), given the guest
 * descriptor d whose shadow s is in the hardware GDT? Only if the guest's
 * own load at CPL 0 would succeed and leave nothing for the monitor to do:
 * s exists (present, not expand-down, below the monitor), d is data or
 * readable code with DPL >= RPL (or conforming), and d's accessed bit is
 * already set (the CPU sets it in the guest's table, which the shadow's
 * own set bit would not do). The ring compression of DPL 0 to 1 is why
 * RPL 1 on a DPL-0 descriptor must not load natively: ring 1 would accept
 * what the guest's ring 0 refuses. SDM Vol. 3A §5.6, §3.4.5.1.
 */
static bool seg_native_ok(uint64_t s, uint64_t d, unsigned rpl)
{
    uint8_t acc = desc_access(d);
    if (!s || !(acc & DESC_ACCESSED))
        return false;
    if (acc & DESC_CODE)
        return (acc & DESC_WRITABLE) && ((acc & DESC_CONFORM) || DESC_DPL(acc) >= rpl);
    return DESC_DPL(acc) >= rpl;
}

/* VERW's answer at CPL 0 for a selector with RPL rpl naming guest
 * descriptor d, as emu_desc_query gives it: a writable data segment with
 * DPL >= RPL; VERW does not look at P. SDM Vol. 2B VERR/VERW. */
static uint8_t verw_answer(uint64_t d, unsigned rpl)
{
    uint8_t acc = desc_access(d);
    bool zf = (acc & DESC_S) && !(acc & DESC_CODE) && (acc & DESC_WRITABLE) && DESC_DPL(acc) >= rpl;
    return (uint8_t)(BT_VERW_KNOWN | (zf ? BT_VERW_ZF : 0));
}

/* Guest GDT entry idx takes guest descriptor d (valid false: none, or not
 * readable): its shadow, the copy a native load caches, and the four
 * selectors' bytes of bt_vcpu.seg_native and seg_verw, always together. */
static void sgdt_set(struct vcpu *c, uint32_t idx, uint64_t d, bool valid)
{
    if (valid && d && c->gdt_src[idx] == d)
        return; /* shadowed from this very descriptor (SYSENTER, SYSEXIT and IRET reload theirs) */
    uint64_t s = valid ? seg_shadow_desc(d) : 0;
    c->sgdt[idx] = s;
    c->gdt_src[idx] = valid ? d : 0;
    if (idx < BT_GDT_LOW)
        c->bv->gdt_low[idx] = c->gdt_src[idx];
    c->r3_valid = false;
    if (s && idx >= c->gdt_low_zero_from && idx < SYNC_GDT_LOW)
        c->gdt_low_zero_from = idx + 1;
    for (unsigned rpl = 0; rpl < 4; rpl++) {
        c->bv->seg_native[idx << 3 | rpl] = seg_native_ok(s, d, rpl);
        c->bv->seg_verw[idx << 3 | rpl] = valid ? verw_answer(d, rpl) : 0;
    }
}

void vcpu_sync_gdt_entry(struct vcpu *c, uint32_t idx)
{
    uint64_t d = 0;
    if (idx == 0 || idx >= GDT_MONITOR_FIRST)
        return;
    bool valid = !read_guest_desc(c, idx, &d);
    sgdt_set(c, idx, d, valid);
}

/* After LGDT: every guest entry the guest's limit covers. */
void vcpu_sync_gdt_all(struct vcpu *c)
{
    uint32_t n = MIN((c->bv->gdtr.limit + 1) / 8, (uint32_t)GDT_MONITOR_FIRST);
    for (uint32_t i = 1; i < GDT_MONITOR_FIRST; i++)
        if (i < n || c->sgdt[i])
            vcpu_sync_gdt_entry(c, i);
}

static void init_sgdt(struct vcpu *c)
{
    /* On a guest reset (vm_reboot on the vCPU thread) this is the GDT the
     * CPU is using, with interrupts on: the monitor's entries are rewritten
     * in place and never cleared, or an interrupt taken meanwhile finds no
     * code descriptor, and #GP, #DF and the host go down with it. */
    memset(c->sgdt, 0, GDT_MONITOR_FIRST * 8u);
    memset(c->gdt_src, 0, GDT_MONITOR_FIRST * 8u);
    memset(c->bv->gdt_low, 0, sizeof(c->bv->gdt_low));
    c->r3_valid = false;
    c->gdt_low_zero_from = 1;
    /* Null selectors load anywhere but SS; no LDT selector (TI = 1) and no
     * monitor entry ever loads natively. */
    memset(c->bv->seg_native, 0, sizeof(c->bv->seg_native));
    memset(c->bv->seg_native, 1, 4);
    memset(c->bv->seg_verw, 0, sizeof(c->bv->seg_verw)); /* VERW of a null selector: ZF = 0 */
    memset(c->bv->seg_verw, BT_VERW_KNOWN, 4);
    c->alias_valid = 0;
    memcpy(&c->sgdt[GDT_MONITOR_FIRST], gdt_monitor_entries(), (GDT_ENTRIES - GDT_MONITOR_FIRST) * 8);
    /* CS for translated code: the TC arena alone, execute-only (issue 11
     * (c)): ring-1 code can reach nothing else of the monitor through CS,
     * nor read even the TC. The host GDT's flat SEL_R1CODE is never used. */
    c->sgdt[SEL_R1CODE >> 3] = gdt_make_desc((uint32_t)c->tc_code, (c->tc_code_bytes >> PAGE_SHIFT) - 1,
                                             DESC_P | DESC_S | DESC_CODE | (1 << 5), DESC_FLAG_G | DESC_FLAG_D);
    /* GS for translated code: exactly struct bt_vcpu, writable at ring 1. */
    c->sgdt[SEL_R1VCPU >> 3] = gdt_make_desc((uint32_t)c->bv, sizeof(*c->bv) - 1, DESC_P | DESC_S | 0x02 | (1 << 5), DESC_FLAG_D);
    /* ES of the return-to-ring-3 stub's GDT compare: read-only, the one
     * window page r3_arm maps onto the frame of the guest's GDT (a frame of
     * this guest's, which its ring 1 may read anyway). */
    c->sgdt[SEL_R1GDTW >> 3] = gdt_make_desc((uint32_t)c->gdtw, PAGE_SIZE - 1, DESC_P | DESC_S | DESC_ACCESSED | (1 << 5),
                                             DESC_FLAG_D);
    c->bv->r3_priv_ss = SEL_R1VCPU;
    c->bv->r3_gdtw = SEL_R1GDTW;
    c->sgdtr = (struct desc_ptr){ GDT_BYTES - 1, (uint32_t)c->sgdt };
}

/* ---------------------------------------------------------------- 3. guest memory */

/* The gpa of gva for an emulated access of kind (PF_W, PF_U), A/D set as
 * the CPU would: 0, 1 after injecting the guest's #PF, <0 after vm_kill. */
static int vmem_translate(struct vcpu *c, uint32_t gva, uint32_t kind, uint32_t *gpa)
{
    uint32_t err;
    int rc = shadow_guest_translate(&c->sh, gva, kind, true, gpa, &err);
    if (rc < 0) {
        vm_kill(c->vm, "guest page tables outside guest RAM (at gva %08x)", gva);
        return rc;
    }
    if (rc == 1) {
        c->bv->cr[2] = gva;
        vcpu_exception(c, T_PF, (int)err);
    }
    return rc;
}

/* Read len bytes (within one page) at gva as a guest access of kind would
 * find them, from the frame the loaded shadow maps there (shadow_mapped):
 * no walk of the guest's tables. False, nothing read, if it maps none. */
static bool read_mapped(struct vcpu *c, uint32_t gva, void *buf, uint32_t len, uint32_t kind)
{
    uint32_t hpa;
    if (shadow_mapped(&c->sh, gva, kind, &hpa) != 0)
        return false;
    kmap_copy(hpa & PTE_FRAME, hpa & ~PTE_FRAME, buf, len, KMAP_READ);
    return true;
}

/* Write len bytes (within one page) at gva through a writable entry of the
 * loaded shadow, as the CPU would through that TLB entry: a writable spte
 * already has the guest's A and D set and never maps a traced page table,
 * translated code, a shared frame or a device (shadow.c I3, I4, I8), so
 * the plain store is all the access does. False, nothing written, if the
 * shadow has no writable entry there. */
static bool write_mapped(struct vcpu *c, uint32_t gva, void *buf, uint32_t len, uint32_t kind)
{
    uint32_t hpa;
    if (shadow_mapped(&c->sh, gva, kind | PF_W, &hpa) != 0)
        return false;
    kmap_copy(hpa & PTE_FRAME, hpa & ~PTE_FRAME, buf, len, KMAP_WRITE);
    return true;
}

static int vmem_access(struct vcpu *c, uint32_t gva, void *buf, uint32_t len, uint32_t kind, bool write)
{
    uint8_t *p = buf;
    uint32_t hpa;
    /* The common read first (a descriptor, an IDT gate, the TSS's ESP0):
     * read_mapped's case without the page loop or kmap_copy's dispatch. */
    if (!write && (len == 4 || len == 8) && (gva & (PAGE_SIZE - 1)) + len <= PAGE_SIZE &&
        shadow_mapped(&c->sh, gva, kind, &hpa) == 0) {
        if (len == 8) {
            uint64_t v = kmap_read64(hpa & PTE_FRAME, hpa & ~PTE_FRAME);
            ((u32_any *)buf)[0] = (uint32_t)v;
            ((u32_any *)buf)[1] = (uint32_t)(v >> 32);
        } else {
            *(u32_any *)buf = kmap_read32(hpa & PTE_FRAME, hpa & ~PTE_FRAME);
        }
        return 0;
    }
    /* ... and the common write (an interrupt frame): whole words within a
     * page through a writable spte, as write_mapped writes them. */
    if (write && !(len & 3) && len <= 32 && (gva & (PAGE_SIZE - 1)) + len <= PAGE_SIZE &&
        shadow_mapped(&c->sh, gva, kind | PF_W, &hpa) == 0) {
        c->plain_write = true;
        kmap_write_words(hpa & PTE_FRAME, hpa & ~PTE_FRAME, buf, len / 4);
        return 0;
    }
    if (write) {
        kind |= PF_W;
        c->plain_write = true;
    }
    /* A write that crosses a page boundary changes nothing unless every
     * page of it translates: the CPU checks all pages first, and a #PF on
     * the second leaves the first as it was (Bochs 2.7's access_write_linear
     * does the same); A/D of the pages before it are set, as there. */
    if (write && len > PAGE_SIZE - (gva & (PAGE_SIZE - 1))) {
        for (uint32_t at = gva, left = len, gpa; left;) {
            uint32_t n = MIN(left, PAGE_SIZE - (at & (PAGE_SIZE - 1)));
            int rc = vmem_translate(c, at, kind, &gpa);
            if (rc)
                return rc;
            at += n;
            left -= n;
        }
    }
    while (len) {
        uint32_t n = MIN(len, PAGE_SIZE - (gva & (PAGE_SIZE - 1))), gpa;
        if (write ? write_mapped(c, gva, p, n, kind) : read_mapped(c, gva, p, n, kind)) {
            /* The monitor's most common accesses (an exit's instruction
             * fetch, a descriptor, an interrupt frame) without the walk's
             * two frame maps. */
            gva += n;
            p += n;
            len -= n;
            continue;
        }
        int rc = vmem_translate(c, gva, kind, &gpa);
        if (rc)
            return rc;
        if (gpa >= c->vm->mem_bytes && vmdev_mmio(c->vm, gpa, p, n, write))
            rc = 0, c->plain_write = false; /* a device page (local APIC, I/O APIC): never mapped, every access lands here */
        else if (write && shadow_is_pt_gpa(&c->sh, gpa))
            rc = shadow_pt_write(&c->sh, gpa, p, n), c->plain_write = false;
        else
            rc = write ? gmem_write(&c->vm->mem, gpa, p, n) : gmem_read(&c->vm->mem, gpa, p, n);
        if (rc && !write)
            memset(p, 0xFF, n); /* no RAM, no device: the bus floats high, writes vanish */
        if (rc)
            c->plain_write = false;
        if (write && sh_is_code(c->vm, gpa)) {
            smc_store(c, gpa, n); /* the monitor wrote translated code */
            c->plain_write = false;
        }
        gva += n;
        p += n;
        len -= n;
    }
    return 0;
}

int vcpu_dma_write(struct vm *vm, uint32_t gpa, const void *buf, uint32_t len)
{
    int rc = gmem_write(&vm->mem, gpa, buf, len);
    if (rc || !len)
        return rc;
    vcpu_dma_wrote(vm, gpa, len);
    return 0;
}

void vcpu_dma_wrote(struct vm *vm, uint32_t gpa, uint32_t len)
{
    struct vcpu *c = VCPU(vm);
    if (!len)
        return;
    shadow_gpa_changed(&c->sh, gpa, len);
    for (uint64_t pg = gpa & PAGE_MASK; pg < (uint64_t)gpa + len; pg += PAGE_SIZE) {
        if (sh_is_code(vm, (uint32_t)pg))
            code_page_drop(c, (uint32_t)pg);
    }
}

int vmem_read(struct vcpu *c, uint32_t gva, void *buf, uint32_t len, uint32_t kind)
{
    return vmem_access(c, gva, buf, len, kind, false);
}

int vmem_write(struct vcpu *c, uint32_t gva, const void *buf, uint32_t len, uint32_t kind)
{
    return vmem_access(c, gva, (void *)buf, len, kind, true);
}

/* ---------------------------------------------------------------- 4. segments, EFLAGS, CPL */

uint32_t vcpu_eflags(const struct vcpu *c) { return bt_vcpu_eflags(c->bv); }

void vcpu_set_eflags(struct vcpu *c, uint32_t fl, bool cpl0)
{
    c->bv->eflags = fl & BT_FLAGS_REAL;
    if (cpl0) {
        c->bv->vflags_if = fl & EFLAGS_IF;
        c->bv->vflags_sys = fl & EFLAGS_GUEST_SYS;
    } else {
        /* CPL 3 with IOPL < 3 cannot change IF or IOPL (SDM Vol. 2B POPF). */
        c->bv->vflags_sys = (c->bv->vflags_sys & EFLAGS_IOPL) | (fl & EFLAGS_GUEST_SYS & ~EFLAGS_IOPL);
    }
}

void vcpu_set_cpl(struct vcpu *c, unsigned cpl) { c->cpl = cpl; }

/*
 * Type and privilege rules of a segment load (SDM Vol. 2A MOV "Operation",
 * Vol. 3A §5.6-5.8): SS takes a writable data segment with RPL = DPL = CPL;
 * DS/ES/FS/GS take data or readable code, visible at max(CPL, RPL) unless
 * conforming code; CS takes code (far transfers check the rest).
 */
static bool seg_type_ok(const struct vcpu *c, int sr, uint16_t sel, uint8_t acc)
{
    unsigned rpl = sel & 3u, dpl = DESC_DPL(acc);
    bool code = acc & DESC_CODE, rw = acc & DESC_WRITABLE;
    if (!(acc & DESC_S))
        return false;
    if (sr == SR_SS)
        return !code && rw && rpl == c->cpl && dpl == c->cpl;
    if (sr == SR_CS)
        return code;
    if (code && !rw)
        return false;
    bool conforming = code && (acc & DESC_CONFORM);
    return conforming || dpl >= MAX(c->cpl, rpl);
}

int vcpu_load_seg(struct vcpu *c, int sr, uint16_t sel)
{
    uint32_t idx = sel >> 3;
    struct seg_memo *m = &c->seg_memo[sr];
    uint64_t d;
    bool read = false;
    /* The memo's case first, with nothing else looked at: the GDT selector
     * it holds, at the same CPL, whose guest descriptor is still the one
     * it was checked and shadowed from (a delivery's SS and CS, IRET's).
     * The memo holds only selectors that loaded (never null, never the
     * LDT's or the monitor's, always in protected mode). The descriptor is
     * read once: a read that fails may have given the guest a #PF. */
    if (m->valid && m->sel == sel && m->cpl == c->cpl && (c->bv->cr[0] & CR0_PE)) {
        if (read_guest_desc(c, idx, &d))
            return vcpu_exception(c, T_GP, sel & ~3u) ? -1 : 1;
        if (m->d == d && c->gdt_src[idx] == d) {
            vseg_copy(&c->seg[sr], &m->v);
            c->bv->sel[sr] = sel;
            return 0;
        }
        read = true;
    }
    if (!(c->bv->cr[0] & CR0_PE)) { /* real mode: no descriptor, no check (SDM Vol. 3A §20.1.1) */
        rm_seg_load(&c->seg[sr], sel);
        c->bv->sel[sr] = sel;
        return 0;
    }
    if ((sel & ~3u) == 0) {
        if (sr == SR_SS || sr == SR_CS)
            return vcpu_exception(c, T_GP, 0) ? -1 : 1;
        c->seg[sr] = (struct vseg){ .sel = sel };
        c->bv->sel[sr] = sel;
        return 0;
    }
    if ((!read && vcpu_read_desc(c, sel, &d)) || (!(sel & 4) && idx >= GDT_MONITOR_FIRST))
        return vcpu_exception(c, T_GP, sel & ~3u) ? -1 : 1;
    uint8_t acc = desc_access(d);
    if (!seg_type_ok(c, sr, sel, acc))
        return vcpu_exception(c, T_GP, sel & ~3u) ? -1 : 1;
    if (!(acc & DESC_P))
        return vcpu_exception(c, sr == SR_SS ? T_SS : T_NP, sel & ~3u) ? -1 : 1;
    if (!(acc & DESC_ACCESSED)) {
        /* The CPU sets the accessed bit of the guest's own descriptor when
         * it loads it (SDM Vol. 3A §3.4.5.1); the shadow's is always set, so
         * the monitor writes the guest's, through the guest's paging like
         * the CPU's implicit supervisor write (a #PF ends the load). */
        uint32_t at = (sel & 4 ? c->ldt_base : c->bv->gdtr.base) + idx * 8 + 5;
        uint8_t b = (uint8_t)(acc | DESC_ACCESSED);
        int rc = vmem_write(c, at, &b, 1, 0);
        if (rc)
            return rc < 0 ? -1 : 1;
        acc = b;
    }
    d = (d & ~(0xFFull << 40)) | (uint64_t)acc << 40;
    if (sel & 4)
        c->sldt[idx] = seg_shadow_desc(d);
    else
        sgdt_set(c, idx, d, true);
    c->seg[sr] = vseg_of(sel, d);
    c->bv->sel[sr] = sel;
    if (!(sel & 4)) {
        m->d = d, m->sel = sel, m->cpl = (uint8_t)c->cpl, m->valid = true;
        vseg_copy(&m->v, &c->seg[sr]);
    }
    return 0;
}

/* ---------------------------------------------------------------- 5. delivery */

/* A fault raised by the delivery of vector itself (fault: #GP or #NP, both
 * contributory; SDM Vol. 3A Table 6-5): one on a contributory fault or on
 * a page fault becomes #DF; a fault delivering #DF kills. */
static int gate_fault(struct vcpu *c, unsigned vector, unsigned fault, uint32_t err, uint32_t next_eip)
{
    (void)next_eip;
    if (vector == T_DF) {
        vm_kill(c->vm, "no usable guest handler for a double fault: triple fault");
        return E_INVAL;
    }
    if (vector == T_GP || vector == T_NP || vector == T_TS || vector == T_SS || vector == T_DE || vector == T_PF)
        return vcpu_deliver(c, T_DF, 0, false, c->bv->eip);
    return vcpu_deliver(c, fault, (int)err, false, c->bv->eip);
}

/* Fault-class exceptions, whose saved EFLAGS image has RF set so that the
 * faulting instruction can be restarted past an execute breakpoint (SDM
 * Vol. 3A Table 6-1, Vol. 3B §17.3.1.1). #DB is left out: only its
 * instruction-breakpoint form is a fault, and that one pushes RF as it is. */
static bool fault_sets_rf(unsigned vector)
{
    switch (vector) {
    case T_DE: case T_BR: case T_UD: case T_NM: case T_TS: case T_NP:
    case T_SS: case T_GP: case T_PF: case T_MF: case T_AC: case T_XM:
        return true;
    default:
        return false;
    }
}

/* An interrupt or exception through a task gate of the IDT (SDM Vol. 3A
 * §6.12.2, Vol. 2A INT n "TASK-GATE"): a switch to the TSS it names, with
 * the error code, if any, pushed on the new task's stack. A fault found
 * before the switch is one raised by the delivery itself (gate_fault). */
static int deliver_task_gate(struct vcpu *c, unsigned vector, uint16_t tss_sel, int err, uint32_t next_eip)
{
    struct task_fault f;
    uint64_t d;
    int rc = task_gate_target(c, tss_sel, &d, &f);
    if (rc == 0)
        rc = task_switch(c, tss_sel, d, TASK_INT, next_eip, err, &f);
    if (rc == TASK_FAULT)
        return gate_fault(c, vector, f.vector, f.err, next_eip);
    if (rc == 0) {
        c->halted = false;
        if (vector < T_NEXC)
            c->guest_exceptions++;
    }
    return rc;
}

/*
 * Interrupt or exception delivery in real-address mode (SDM Vol. 3A
 * §20.1.4): FLAGS, CS and IP pushed as words at SS:SP, IF, TF and AC
 * cleared, CS:IP from the 4-byte vector at IDTR.base + 4 * vector (the
 * IVT; LIDT may move it). No error code. A vector beyond the IDT limit
 * shuts the processor down (Table 20-1 "#GP... shutdown" is what the
 * double fault of that becomes): the VM stops with that reason. The
 * stack and the vector are guest memory (A20 applied): nothing a guest
 * writes there reaches the monitor.
 */
static int rm_deliver(struct vcpu *c, unsigned vector, uint32_t next_eip)
{
    struct bt_desc_table *idt = &c->bv->idtr;
    uint32_t ivt = 0, mask = (c->seg[SR_SS].flags & DESC_FLAG_D) ? 0xFFFFFFFFu : 0xFFFFu, esp = c->bv->gpr[4];
    if (vector * 4 + 3 > idt->limit) {
        vm_kill(c->vm, "real-mode interrupt %u beyond the IDT limit %04x: shutdown", vector, idt->limit);
        return E_INVAL;
    }
    if (vmem_read(c, idt->base + vector * 4, &ivt, 4, 0))
        return c->vm->stop_req ? E_INVAL : 0;
    uint16_t frame[3] = { (uint16_t)next_eip, c->seg[SR_CS].sel, rm_flags_image(vcpu_eflags(c)) };
    for (int i = 2; i >= 0; i--) {
        esp = (esp & ~mask) | ((esp - 2) & mask);
        if (vmem_write(c, c->seg[SR_SS].base + (esp & mask), &frame[i], 2, 0))
            return c->vm->stop_req ? E_INVAL : 0;
    }
    c->bv->gpr[4] = esp;
    rm_seg_load(&c->seg[SR_CS], (uint16_t)(ivt >> 16));
    c->bv->sel[SR_CS] = ivt >> 16;
    c->bv->eip = ivt & 0xFFFF;
    c->bv->vflags_if = 0;
    c->bv->vflags_sys &= ~(EFLAGS_TF | EFLAGS_AC);
    c->halted = false;
    if (vector < T_NEXC)
        c->guest_exceptions++;
    return 0;
}

/* Double fault rules simplified: a fault while writing the frame is fatal for the VM. */
int vcpu_deliver(struct vcpu *c, unsigned vector, int err, bool soft, uint32_t next_eip)
{
    uint64_t gate;
    struct bt_desc_table *idt = &c->bv->idtr;
    if (c->deliver_depth > 0) {
        vm_kill(c->vm, "fault while delivering %s (vector %u): triple fault (eip %08x, esp %08x, cr2 %08x)",
                trap_name(vector), vector, c->bv->eip, c->bv->gpr[4], c->bv->cr[2]);
        return E_INVAL;
    }
    if (!(c->bv->cr[0] & CR0_PE))
        return rm_deliver(c, vector, next_eip);
    /* Beyond the IDT limit or not a usable gate: #GP / #NP with an error
     * code naming the IDT entry (SDM Vol. 3A §6.13: IDT bit = 2); a second
     * failure while delivering that #GP is a double fault, and a guest with
     * no usable #DF handler dies (triple fault). */
    uint32_t idt_err = vector * 8 + 2 + (soft ? 0 : 1);
    if (vector * 8 + 7 > idt->limit)
        return gate_fault(c, vector, T_GP, idt_err, next_eip);
    c->deliver_depth++;
    int rc = read_sys8(c, SYS_TLB_IDT, idt->base + vector * 8, &gate);
    c->deliver_depth--;
    if (rc)
        return rc < 0 ? rc : E_INVAL;
    uint8_t type = (gate >> 40) & 0x1F, gdpl = (gate >> 45) & 3;
    if (type != IDT_GATE_INT32 && type != IDT_GATE_TRAP32 && type != SYS_TASK_GATE)
        return gate_fault(c, vector, T_GP, idt_err, next_eip);
    if (soft && gdpl < c->cpl)
        return vcpu_deliver(c, T_GP, (int)(vector * 8 + 2), false, c->bv->eip);
    if (!((gate >> 47) & 1))
        return gate_fault(c, vector, T_NP, idt_err, next_eip);
    if (type == SYS_TASK_GATE)
        return deliver_task_gate(c, vector, (uint16_t)(gate >> 16), soft ? -1 : err, next_eip);
    uint16_t sel = (uint16_t)(gate >> 16);
    uint32_t target = (uint32_t)(gate & 0xFFFF) | (uint32_t)((gate >> 48) << 16);
    /* Page faults and device-not-available are how a guest OS runs (demand
     * paging, copy on write, lazy FPU): thousands a second, not news. */
    if (vector < T_NEXC && vector != T_PF && vector != T_NM)
        log_debug("vm %s: deliver vector %u err %d from cpl %u eip %08x esp %08x -> %04x:%08x", c->vm->name, vector,
                  err, c->cpl, next_eip, c->bv->gpr[4], sel, target);
    uint32_t old_fl = vcpu_eflags(c), old_esp = c->bv->gpr[4];
    if (!soft && fault_sets_rf(vector))
        old_fl |= EFLAGS_RF;
    uint16_t old_cs = c->seg[SR_CS].sel, old_ss = c->seg[SR_SS].sel;
    unsigned old_cpl = c->cpl;

    if (old_cpl == 3) {
        /* Stack switch to the guest TSS's ring-0 stack (SDM Vol. 3A §6.12.1). */
        uint64_t tssd;
        uint32_t tss_sp0[2] = { 0, 0 }; /* ESP0 and SS0: offsets 4 and 8 (SDM Vol. 3A Figure 8-2) */
        if (read_guest_desc(c, c->bv->tr >> 3, &tssd) || read_sys8(c, SYS_TLB_TSS, desc_base_of(tssd) + 4, tss_sp0)) {
            vm_kill(c->vm, "no usable guest TSS for a ring 3 -> 0 interrupt (TR %04x)", c->bv->tr);
            return E_INVAL;
        }
        vcpu_set_cpl(c, 0);
        if (vcpu_load_seg(c, SR_SS, (uint16_t)tss_sp0[1])) {
            vm_kill(c->vm, "bad SS0 %04x in the guest TSS", tss_sp0[1] & 0xFFFF);
            return E_INVAL;
        }
        c->bv->gpr[4] = tss_sp0[0];
    }
    /* The frame as the pushes leave it (SDM Vol. 3A Figure 6-4), written
     * at once: a fault anywhere in it is fatal here anyway. */
    uint32_t frame[6], n = 0, esp;
    if (err >= 0)
        frame[n++] = (uint32_t)err;
    frame[n++] = next_eip;
    frame[n++] = old_cs;
    frame[n++] = old_fl;
    if (old_cpl == 3) {
        frame[n++] = old_esp;
        frame[n++] = old_ss;
    }
    esp = c->bv->gpr[4] - 4 * n;
    c->deliver_depth++;
    rc = vmem_write(c, c->seg[SR_SS].base + esp, frame, 4 * n, 0);
    c->deliver_depth--;
    if (rc) {
        vm_kill(c->vm, "guest stack unusable while delivering vector %u (esp %08x)", vector, esp);
        return E_INVAL;
    }
    c->bv->gpr[4] = esp;
    if (vcpu_load_seg(c, SR_CS, sel)) {
        vm_kill(c->vm, "guest IDT entry %u names a bad code selector %04x", vector, sel);
        return E_INVAL;
    }
    vcpu_set_cpl(c, 0);
    c->bv->eip = target;
    c->bv->vflags_sys &= ~(EFLAGS_TF | EFLAGS_NT | EFLAGS_RF);
    if (type == IDT_GATE_INT32)
        c->bv->vflags_if = 0;
    c->halted = false;
    if (vector < T_NEXC)
        c->guest_exceptions++;
    return 0;
}

/* ---------------------------------------------------------------- 6. world switch */

/*
 * Lazy FPU switching. One vCPU at a time owns the real FPU registers; every
 * other vCPU enters its guest with CR0.TS set, so its first FPU instruction
 * raises #NM, and only then is the owner's state saved and this one's
 * loaded. The guest's own CR0.TS/EM/MP are virtual and decide whether that
 * #NM is really the guest's. SDM Vol. 3A §13.4, §2.5 (TS, MP, EM).
 */
static void fpu_prepare_entry(struct vcpu *c)
{
    uint32_t cr0 = read_cr0();
    if (fpu_owner == c && !(c->bv->cr[0] & (CR0_TS | CR0_EM))) {
        if (cr0 & CR0_TS)
            clts();
    } else if (!(cr0 & CR0_TS)) {
        write_cr0(cr0 | CR0_TS);
    }
}

int vcpu_fpu_trap(struct vcpu *c)
{
    uint32_t gcr0 = c->bv->cr[0];
    int wait_len = emu_fwait_len(c);
    bool fwait = wait_len > 0;
    /* x87 and SSE: #NM on EM or TS; WAIT/FWAIT: only on TS with MP (SDM Vol. 3A Table 2-2). */
    bool guest_nm = fwait ? (gcr0 & CR0_TS) && (gcr0 & CR0_MP) : (gcr0 & (CR0_EM | CR0_TS)) != 0;
    if (guest_nm)
        return vcpu_exception(c, T_NM, -1) < 0 ? -1 : 0;
    /* Not preemptible: another vCPU thread would set TS again (its own
     * entry) or take the FPU between the save and the restore. */
    uint32_t fl = read_eflags();
    cpu_cli();
    clts();
    if (fpu_owner != c) {
        if (fpu_owner) {
            fxsave(fpu_owner->fpu);
            fpu_owner->fpu_valid = true;
        }
        if (c->fpu_valid)
            fxrstor(c->fpu);
        else
            fninit();
        fpu_owner = c;
    }
    write_eflags(fl);
    /* With the guest's TS still set, the real TS comes back at every entry:
     * a WAIT the guest may run must be stepped over here (no x87 error is
     * pending in the state just loaded unless the guest left one, which we
     * do not model), anything else is re-run with the FPU. */
    if (fwait && (gcr0 & (CR0_TS | CR0_EM)))
        c->bv->eip += (uint32_t)wait_len;
    return 0;
}

/*
 * The host's SYSENTER MSRs (SDM Vol. 3A §5.8.7): armed, a guest's SYSENTER
 * at ring 3 goes straight to vmm_sysenter_entry (vmm/switch.S); disarmed
 * (IA32_SYSENTER_CS = 0), it raises #GP(0) and the monitor decodes the
 * faulting instruction. Armed only while a protected-mode guest's user code
 * runs and its own IA32_SYSENTER_CS is not 0: that guest's SYSENTER then
 * cannot fault, so the EIP it does not keep is never needed. Real mode runs
 * in virtual-8086 mode, where SYSENTER would work on the host but must
 * raise #GP(0) for the guest (CR0.PE = 0): disarmed there, as at boot
 * (kernel/gdt.c). At ring 1 always armed: the guest's own SYSENTER is
 * translated into an exit there, and the only SYSENTER ring-1 code runs
 * is that exit's routine (bt_config.exit_sysenter), which the stub tells
 * from a ring-3 SYSENTER by GS (SEL_R1VCPU, which ring 3 cannot load).
 * One CPU: the state is the host's, kept here to skip WRMSRs that change
 * nothing.
 */
extern const uint8_t vmm_sysenter_entry[], sysenter_stack_top[]; /* vmm/switch.S */
static int sysenter_armed = -1;
static bool sysenter_tf; /* the guest had TF: vmm_sysenter_debug took the step trap */

static void sysenter_arm(bool on)
{
    if (sysenter_armed == (int)on)
        return;
    if (sysenter_armed < 0) {
        wrmsr(MSR_IA32_SYSENTER_ESP, (uint32_t)sysenter_stack_top);
        wrmsr(MSR_IA32_SYSENTER_EIP, (uint32_t)vmm_sysenter_entry);
    }
    wrmsr(MSR_IA32_SYSENTER_CS, on ? SEL_KCODE : 0);
    sysenter_armed = on;
}

/*
 * The processor state a guest runs with that the scheduler does not keep
 * per thread: CR0.TS (lazy FPU), LDTR and the host's SYSENTER MSRs, set for
 * the guest about to run at cs's RPL (v86: virtual-8086 mode). Called with
 * interrupts off, the vCPU thread's world (CR3, GDT) loaded: at every entry,
 * and again when a host interrupt that preempted the guest's thread
 * returns to the guest without an exit (vmm_guest_trap), since the threads
 * that ran meanwhile, other VMs' vCPUs among them, left theirs.
 */
static void cpu_state_for_guest(struct vcpu *c, uint32_t cs, bool v86)
{
    if (v86)
        sysenter_arm(false); /* real mode's SYSENTER is a #GP(0) */
    else if ((cs & 3) == 3)
        sysenter_arm((c->sysenter_cs & ~3u) != 0);
    else
        sysenter_arm(true); /* translated code's exit routine (bt_config.exit_sysenter) */
    fpu_prepare_entry(c);
    /* LDTR's hidden part may be another VM's, or this one's before its last LLDT. */
    if (ldt_loaded_for != c || c->ldt_stale) {
        lldt(c->ldt_limit ? SEL_GLDT : 0);
        ldt_loaded_for = c;
        c->ldt_stale = false;
    }
}

/* g: the frame vmm_enter copies and IRETs through, built in place by the
 * caller (no copy of it here: this runs at every world switch); v86: it
 * has EFLAGS.VM and the four segment registers after SS. The host's
 * SYSENTER MSRs are set for the ring entered with interrupts off, so no
 * other vCPU's entry can change them in between. */
static int enter(struct vcpu *c, const struct guest_frame *g, bool v86)
{
    const struct trap_frame *f = &g->tf;
    if (c->exit_tsc) {
        unsigned cause = EXIT_CAUSES;
        for (unsigned i = 0; i < EXIT_CAUSES; i++)
            if (c->vm->exits_by_cause[i] != c->cause_seen[i]) {
                c->cause_seen[i] = c->vm->exits_by_cause[i];
                cause = i;
            }
        c->monitor_tsc[cause] += rdtsc() - c->exit_tsc;
    }
    /* From here to the IRET into the guest nothing may be preempted: CR0.TS
     * and LDTR are the CPU's, not the thread's, and another vCPU thread
     * running in between would leave its own (a guest entered with another
     * VM's FPU registers or LDT). The IRET turns interrupts back on. */
    cpu_cli();
    c->pf_stashed = false; /* pf_in_world's stash is for the trap that ends this entry */
    c->enter_tsc = rdtsc();
    thread_set_world_irqs_off(shadow_scr3(&c->sh), &c->sgdtr, 0);
    cpu_state_for_guest(c, f->cs, v86);
    int wx = vmm_enter(g, &c->host_esp);
    /* Out of the guest through an interrupt gate: IF is clear. The monitor's
     * work on this exit (emulation, translation, shadow paging) is ordinary
     * thread code: host interrupts and preemption stay on for it. */
    cpu_sti();
    c->exit_tsc = rdtsc();
    c->guest_tsc += c->exit_tsc - c->enter_tsc;
    c->entries++;
    return wx;
}

/* Hardware selector for a guest segment register at ring 3 (direct
 * execution): the guest's own, SS with RPL 3 as the CPU requires. */
static uint32_t ring3_sel(const struct vcpu *c, int sr)
{
    return sr == SR_SS ? (uint32_t)(c->seg[sr].sel | 3) : c->seg[sr].sel;
}

static void frame_gprs(struct trap_frame *f, const uint32_t *gpr)
{
    f->eax = gpr[0]; f->ecx = gpr[1]; f->edx = gpr[2]; f->ebx = gpr[3];
    f->ebp = gpr[5]; f->esi = gpr[6]; f->edi = gpr[7];
    f->esp = gpr[4];
}

static void save_gprs(uint32_t *gpr, const struct trap_frame *f)
{
    gpr[0] = f->eax; gpr[1] = f->ecx; gpr[2] = f->edx; gpr[3] = f->ebx;
    gpr[4] = f->esp; gpr[5] = f->ebp; gpr[6] = f->esi; gpr[7] = f->edi;
}

/*
 * Segment registers for translated code come from per-register monitor
 * slots holding ring-1 copies of the vCPU's cached descriptors, never from
 * the guest's indices: the CPU wants SS.DPL = RPL = 1 at ring 1 while the
 * guest's stack may be DPL 0 (kernel) or 3 (user code translated for IOPL 3),
 * and a guest may rewrite or drop a GDT entry after loading it -- real
 * hardware keeps using the cached descriptor, and so do we.
 */
static uint32_t load_alias_build(struct vcpu *c, int sr, uint16_t slot);

/* Inline: six of them at every entry to translated code, and almost
 * always the alias of the last entry (a call and return each under TCG,
 * where every return is a lookup of its target's translated block). */
static inline __attribute__((always_inline)) uint32_t load_alias(struct vcpu *c, int sr, uint16_t slot)
{
    const struct vseg *s = &c->seg[sr];
    if (!(s->sel & ~3u) && sr != SR_SS)
        return 0; /* null stays null: a use faults, as in the guest */
    const struct vseg *a = &c->alias_src[sr];
    if ((c->alias_valid & (1u << sr)) && a->sel == s->sel && a->base == s->base && a->limit == s->limit &&
        a->access == s->access && a->flags == s->flags)
        return slot; /* built from this very cache at an earlier entry */
    return load_alias_build(c, sr, slot);
}

/* load_alias's shadow descriptor for slot, made from the vCPU's cache of sr. */
static __attribute__((noinline)) uint32_t load_alias_build(struct vcpu *c, int sr, uint16_t slot)
{
    const struct vseg *s = &c->seg[sr];
    c->alias_src[sr] = *s;
    c->alias_valid |= 1u << sr;
    uint32_t limit = (s->flags & DESC_FLAG_G) ? s->limit >> 12 : s->limit;
    uint64_t d = seg_shadow_desc(gdt_make_desc(s->base, limit, (uint8_t)(s->access | DESC_P), s->flags));
    if (!d) /* cannot be expressed below the monitor (based in it, expand-down): */
        d = gdt_make_desc(0, 0xFFFFF, DESC_P | DESC_S | DESC_DOWN | DESC_WRITABLE, DESC_FLAG_G | DESC_FLAG_D);
    /* ... an expand-down segment with the maximal limit has no valid offset:
     * every access faults and is emulated with the guest's own base and limit. */
    c->sgdt[slot >> 3] = (d & ~(3ull << 45)) | (1ull << 45); /* DPL 1 */
    return slot;
}

/* The TC address of an EIP of ring-1 code: an offset in its CS, which
 * covers the TC alone (init_sgdt). */
static uint32_t ring1_tca(const struct vcpu *c, uint32_t eip) { return eip + c->bt.tc.cs_base; }

int vmm_ring1_guest_eip(uint32_t eip, uint32_t *guest_eip)
{
    const struct vcpu *c = thread_local();
    return c ? tc_lookup_guest_eip(&c->bt.tc, ring1_tca(c, eip), guest_eip) : E_NOENT;
}

/* Segment register sr now holds sel, loaded by translated code itself:
 * the vCPU's cache becomes what the CPU cached, the guest descriptor the
 * selector's shadow entry was made from. */
static void seg_cache_from_native(struct vcpu *c, int sr, uint16_t sel)
{
    if ((sel & ~3u) == 0 || !c->bv->seg_native[sel]) {
        /* Null, or (a monitor bug) a selector the fast path would not
         * load: unusable, so that a use faults into the monitor. */
        c->seg[sr] = (struct vseg){ .sel = sel };
    } else {
        c->seg[sr] = vseg_of(sel, c->gdt_src[sel >> 3]);
    }
    c->bv->sel[sr] = sel;
}

/*
 * Translated code may have loaded DS, ES or FS itself (h_seg_load in
 * bt/translate.c): the CPU's selector then differs from the one its last
 * entry loaded (bt_frame: bt_enter's, or sysenter_in_world's since), and
 * the vCPU's descriptor cache becomes the guest descriptor that selector's
 * shadow entry was made from -- exactly what the CPU cached, as nothing
 * changes the shadow GDT while ring-1 code runs. The selector is
 * taken from the CPU, not from bt_vcpu.sel[], which ring 1 can write.
 */
static void native_seg_resync(struct vcpu *c)
{
    static const int srs[3] = { SR_DS, SR_ES, SR_FS };
    const uint32_t *was = c->r1_entered;
    for (unsigned i = 0; i < 3; i++) {
        uint16_t sel = c->r1_sel[i];
        /* A fault inside a DS swap (h_seg_alias): DS holds the alias, the
         * guest's own DS is the one the swap saved. */
        if (srs[i] == SR_DS && c->bv->in_swap)
            sel = (uint16_t)c->bv->ds_save;
        if (sel == (uint16_t)was[i])
            continue;
        seg_cache_from_native(c, srs[i], sel);
    }
    c->bv->in_swap = 0;
    /* GS is the state segment at ring 1: an inline GS load leaves the
     * guest's selector in sel[GS] (and seg_alias) alone. */
    uint16_t gs = (uint16_t)c->bv->sel[SR_GS];
    if (gs != c->seg[SR_GS].sel) {
        if ((gs & ~3u) == 0 || c->bv->seg_native[gs])
            seg_cache_from_native(c, SR_GS, gs);
        else
            c->bv->sel[SR_GS] = c->seg[SR_GS].sel; /* not a selector ring 1 may load: keep the cache */
    }
}

/*
 * An IRET to an outer ring whose SS is 16-bit (B = 0) loads SP only: ESP's
 * upper half keeps the monitor's stack address (the "espfix" problem;
 * SDM Vol. 2A IRET, "RETURN-TO-OUTER-PRIVILEGE-LEVEL"). Firmware runs
 * 32-bit code on a real-mode SS between a switch to protected mode and its
 * SS reload (SeaBIOS's transition32), and the trap that ends the stint
 * then pushes that ESP. Ring-1 code cannot load SS itself (it exits), so
 * the stint ran on the SS it entered with: with a 16-bit one, ESP's upper
 * half is the guest's from before the stint. Translated code that reads
 * all of ESP meanwhile sees the monitor's half (docs/vmm.md "Guest
 * firmware", a known gap).
 */
static void stack16_fix_esp(struct vcpu *c, uint32_t esp_in)
{
    uint32_t *esp = &c->bv->gpr[4];
    if (!(c->alias_src[SR_SS].flags & DESC_FLAG_D) && *esp >= MONITOR_BASE && esp_in < MONITOR_BASE)
        *esp = (esp_in & 0xFFFF0000u) | (*esp & 0xFFFFu);
}

/* ---------------------------------------------------------------- 6a. return to ring 3 from ring 1 */

/* May ring 3 be entered with this shadow descriptor in CS (code, DPL 3 or
 * conforming, present) or in SS (writable data, DPL 3, present), so that
 * IRET's checks of them cannot fault (SDM Vol. 2A IRET)? */
static bool r3_code_ok(uint64_t s)
{
    uint8_t acc = desc_access(s);
    return s && (acc & DESC_P) && (acc & DESC_S) && (acc & DESC_CODE) &&
           ((acc & DESC_CONFORM) || DESC_DPL(acc) == 3);
}

static bool r3_stack_ok(uint64_t s)
{
    uint8_t acc = desc_access(s);
    return s && (acc & DESC_P) && (acc & DESC_S) && !(acc & DESC_CODE) && (acc & DESC_WRITABLE) &&
           DESC_DPL(acc) == 3;
}

/*
 * The stub reads the guest's GDT through c->gdtw, which must map the frame
 * the guest's TLB could give for GDTR.base now (the CPU reads descriptors
 * through linear addresses, SDM Vol. 3A §3.5.1). The walk it took is kept
 * as a TLB entry would be, while shadow_tlb_gen keeps its value (no
 * INVLPG the monitor ran, CR3 load, emulated page-table store... since),
 * translated code ran no INVLPG without an exit (invlpg_inline: one that
 * h_invlpg lets through, and that store also stopped the stub trying
 * until this walk), the window maps a frame (gdtw_drop clears it when the
 * frame behind the page changes) and translated code may not skip an
 * INVLPG of that page (invlpg_skip: the reflected #PF dropped it, and the
 * guest's own INVLPG after its PTE store would not exit); otherwise the
 * guest tables are walked again and the window remapped when the frame
 * differs. Linux's GDT page (its fixmap alias) is walked once per CR3
 * load. A frame page sharing merged the page onto serves as well: the
 * window only reads, and both a share and an unshare drop it
 * (gm_sharing, gm_unshared); refusing it left every return to ring 3 to
 * the monitor for as long as the page stayed shared (a process that makes
 * no context switch never writes its GDT). Returns 0, or E_NOENT: no RAM
 * frame there (not mapped, MMIO); the stub then must not run.
 */
static int gdtw_remap(struct vcpu *c)
{
    uint32_t gpa, err, hpa, page = c->bv->gdtr.base & PAGE_MASK, gen = shadow_tlb_gen(&c->sh);
    bool skipped = c->invlpg_dropped == page || c->bv->invlpg_skip == page;
    c->bv->invlpg_inline = 0;
    c->gdtw_walks++;
    if (shadow_guest_translate(&c->sh, c->bv->gdtr.base, 0, false, &gpa, &err) != 0 ||
        gmem_gpa_to_hpa(&c->vm->mem, gpa & PAGE_MASK, &hpa) < 0) /* 1: a shared frame, read as well */
        return E_NOENT;
    if (hpa != c->gdtw_hpa) {
        vmwin_alias(&c->win, c->gdtw, hpa);
        c->gdtw_hpa = hpa;
    }
    c->gdtw_gva = page;
    c->gdtw_gen = skipped ? gen - 1 : gen; /* skipped: walk again next time */
    return 0;
}

/* Is a DS offset a linear address while DS holds its selector now, in
 * translated code that may reload it natively from the shadow GDT (base 0
 * cached and shadowed)? Keys the INVLPG compares of h_invlpg. */
static bool ds_flat(const struct vcpu *c)
{
    uint16_t ds = c->seg[SR_DS].sel;
    return c->seg[SR_DS].base == 0 && !(ds & 4) && !(c->bv->seg_native[ds] && desc_base_of(c->sgdt[ds >> 3]) != 0);
}

/* 0 builds hv86 without the IRET stub's call to prefault (prefault_call), for an A/B of it. */
#ifndef FAST_PREFAULT
#define FAST_PREFAULT 1
#endif

/* 0 builds hv86 without the IRET stub (bt_config.inline_iret3), for an A/B of it. */
#ifndef FAST_IRET3
#define FAST_IRET3 1
#endif

/*
 * bt_vcpu.r3_*: may translated code's SYSEXIT return to ring 3 by itself
 * (bt_config.inline_sysexit, docs/bt.md "Returning to ring 3")? Its CS
 * and SS (SYSENTER_CS + 16 and + 24, RPL 3) must be GDT entries below the
 * guest's limit and SYNC_GDT_LOW whose shadows IRET accepts at ring 3;
 * the stub then compares the guest's entries [1, n) with gdt_low, and
 * equal means the shadow GDT is what sync_gdt_low would leave. The IRET
 * stub (inline_iret3) returns to the same CS and SS. Recomputed when
 * SYSENTER_CS, GDTR or any shadowed entry changed (r3_valid); at every
 * entry, refused while stepping or with breakpoints armed, where the
 * monitor's own path must run, and while a reflected #PF awaits its IRET
 * (prefault) unless hidden faults are fixed from the trap (pf_in_world):
 * then the retry's fault costs less than the IRET's exit.
 */
static void r3_arm(struct vcpu *c)
{
    struct bt_vcpu *v = c->bv;
    if (!c->r3_valid || c->r3_key_cs != c->sysenter_cs || c->r3_key_gdt_base != v->gdtr.base ||
        c->r3_key_gdt_limit != v->gdtr.limit) {
        c->r3_valid = true;
        c->r3_key_cs = c->sysenter_cs;
        c->r3_key_gdt_base = v->gdtr.base;
        c->r3_key_gdt_limit = v->gdtr.limit;
        uint32_t n = MIN((v->gdtr.limit + 1) / 8, SYNC_GDT_LOW), base = c->sysenter_cs & 0xFFF8u;
        uint16_t cs = (uint16_t)((base + 16) | 3), ss = (uint16_t)((base + 24) | 3);
        c->r3_ready = base && (cs >> 3) < n && (ss >> 3) < n && gdt_low_cached(c, cs) && gdt_low_cached(c, ss) &&
                      r3_code_ok(c->sgdt[cs >> 3]) && r3_stack_ok(c->sgdt[ss >> 3]) &&
                      (v->gdtr.base & (PAGE_SIZE - 1)) + n * 8u <= PAGE_SIZE;
        if (c->r3_ready) {
            c->r3_cs = cs;
            c->r3_ss = ss;
            v->r3_cs = cs;
            v->r3_ss = ss;
            v->r3_cs_limit = desc_limit_bytes(c->sgdt[cs >> 3]);
            v->r3_gdt_off = (v->gdtr.base & (PAGE_SIZE - 1)) + 8;
            v->r3_gdt_dwords = 2 * (n - 1);
        }
    }
    v->r3_gdt_page = v->gdtr.base & PAGE_MASK;
    v->r3_gdt_ds = ds_flat(c) ? c->seg[SR_DS].sel : 0xFFFFFFFFu;
    v->r3_ok = c->r3_ready && (v->cr[0] & CR0_PE) && (!c->pf_pending || c->fast_pf) && !c->stepping &&
               !(c->dr[7] & 0xFF) && gdtw_map(c) == 0;
    v->r3_prefault = c->pf_pending && FAST_PREFAULT;
}

/* A return stub went to ring 3, learnt of at ring 3's next trap: count
 * it; a reflected #PF's IRET, if it was one, is past (no prefault). */
static void r3_learnt(struct vcpu *c)
{
    c->r3_returns++;
    c->r3_iret_returns += c->bv->r3_via_iret != 0;
    c->pf_pending = false;
}

/* Translated code returned to ring 3 itself and ring 3 has now trapped
 * (c->tf): the vCPU is at CPL 3 with the CS and SS SYSEXIT loaded, cached
 * as sysexit_seg caches them (r3_state); the rest of the state is the
 * trap's, which the run loop takes as from any trap at ring 3
 * (handle_ring3_trap). */
static void r3_state(struct vcpu *c)
{
    vcpu_set_cpl(c, 3);
    c->seg[SR_CS] = vseg_of(c->r3_cs, c->gdt_src[c->r3_cs >> 3]);
    c->seg[SR_SS] = vseg_of(c->r3_ss, c->gdt_src[c->r3_ss >> 3]);
    c->bv->sel[SR_CS] = c->r3_cs;
    c->bv->sel[SR_SS] = c->r3_ss;
    r3_learnt(c);
}

static void r3_returned(struct vcpu *c)
{
    r3_state(c);
    c->r3_trapped = true;
    c->bt_trapped = false;
    c->fault_desc = (struct bt_exit){ .reason = BT_EXIT_EMULATE, .eip = c->tf.eip };
    c->bv->exit_desc = (uint32_t)&c->fault_desc;
}

/*
 * The frame translated code at tca is entered with (ring 1), from the
 * vCPU's state: its registers, DS/ES/FS/SS as ring-1 aliases of the
 * cached descriptors, GS the state segment, the arithmetic flags with IF
 * set; and what ring 1 reads at entry (seg_alias, cs_alias, ss_flat, the
 * return stub's r3_*). bt_enter and sysenter_in_world.
 */
static void bt_frame(struct vcpu *c, struct trap_frame *f, uint32_t tca)
{
    struct bt_vcpu *v = c->bv;
    frame_gprs(f, v->gpr);
    f->ds = load_alias(c, SR_DS, SEL_R1DS);
    f->es = load_alias(c, SR_ES, SEL_R1ES);
    f->fs = load_alias(c, SR_FS, SEL_R1FS);
    f->gs = SEL_R1VCPU;
    v->seg_alias = load_alias(c, SR_GS, SEL_R1GS); /* DS while a guest GS access runs (h_seg_alias) */
    /* ... and while a guest CS-prefixed access runs: an execute-only CS
     * cannot be read through, so its alias is null (the read #GPs). */
    bool cs_readable = (c->seg[SR_CS].access & DESC_CODE) && (c->seg[SR_CS].access & DESC_WRITABLE);
    v->cs_alias = cs_readable ? load_alias(c, SR_CS, SEL_R1CSD) : 0;
    f->ss = load_alias(c, SR_SS, SEL_R1STACK);
    const struct vseg *ss = &c->seg[SR_SS];
    v->ss_flat = ss->base == 0 && ss->limit == 0xFFFFFFFFu && !(ss->access & DESC_DOWN) &&
                 (ss->flags & DESC_FLAG_D); /* h_iret: 12 bytes in one page fault together */
    v->in_swap = 0;
    f->cs = SEL_R1CODE;
    f->eip = tca - c->bt.tc.cs_base; /* CS covers the TC alone */
    f->eflags = (v->eflags & BT_FLAGS_REAL) | EFLAGS_IF | EFLAGS_FIXED;
    c->r1_entered[0] = f->ds;
    c->r1_entered[1] = f->es;
    c->r1_entered[2] = f->fs;
    c->r1_esp_in = v->gpr[4];
    if (c->bt.r3_stub)
        r3_arm(c);
    c->resumed_in_row = 0; /* ring 3 may be entered from here (the return stub) */
}

/* bt_enter_fn: run translated code at tca, ring 1, until it exits or traps. */
static void bt_enter(struct bt_vcpu *v, uint32_t tca)
{
    struct vcpu *c = thread_local(); /* v is c->bv: only the vCPU thread runs translated code */
    struct guest_frame g = { 0 };
    bt_frame(c, &g.tf, tca);
    c->bt_world = true;
    int wx = enter(c, &g, false);
    c->bt_world = false;
    if (wx == WX_ENTRY_FAIL) {
        c->fault_desc = (struct bt_exit){ .reason = BT_EXIT_EMULATE, .eip = v->eip };
        v->exit_desc = (uint32_t)&c->fault_desc;
        c->bt_trapped = false;
        return;
    }
    if (c->world_handled) { /* the vCPU state is the guest's already: bt_run returns, the run loop goes on */
        c->world_handled = false;
        c->fault_desc = (struct bt_exit){ .reason = BT_EXIT_NONE, .eip = v->eip };
        v->exit_desc = (uint32_t)&c->fault_desc;
        c->bt_trapped = false;
        return;
    }
    if (wx == WX_TRAP && trap_ring(&c->tf) == 3) { /* the return stub went to ring 3 (no v86: IRET at ring 1 keeps VM) */
        r3_returned(c);
        return;
    }
    native_seg_resync(c);
    if (wx == WX_TRAP) {
        /* A fault in translated code: only IDENT-copied instructions fault,
         * so the TC address maps back to a guest instruction boundary. */
        uint32_t geip;
        save_gprs(v->gpr, &c->tf);
        v->eflags = c->tf.eflags & BT_FLAGS_REAL;
        if (is_irq_vector(c->tf.vector)) /* between two instructions: vmm_guest_trap found which */
            geip = c->irq_geip;
        else if (tc_lookup_guest_eip(&c->bt.tc, ring1_tca(c, c->tf.eip), &geip)) {
            vm_kill(c->vm, "%s in the monitor's translation of the guest (tca %08x)", trap_name(c->tf.vector),
                    ring1_tca(c, c->tf.eip));
            geip = v->eip;
        }
        c->bt_trapped = true;
        c->fault_desc = (struct bt_exit){ .reason = BT_EXIT_EMULATE, .eip = geip };
        v->exit_desc = (uint32_t)&c->fault_desc;
    }
    stack16_fix_esp(c, c->r1_esp_in);
}

extern const uint8_t trap_return[], trap_return_end[]; /* boot/isr.S */

/* A fault at ring 0 between trap_return and its iret, on a vCPU thread that
 * is entering its guest: the guest state we tried to load is unusable. */
bool vmm_entry_fault(const struct trap_frame *tf)
{
    struct vcpu *c = thread_local();
    if (!c || tf->eip < (uint32_t)trap_return || tf->eip >= (uint32_t)trap_return_end)
        return false;
    vm_kill(c->vm, "the monitor could not enter the guest: %s (error %04x) loading its state at eip %08x",
            trap_name(tf->vector), tf->error, c->bv->eip);
    vmm_leave(c->host_esp, WX_ENTRY_FAIL);
}

/* A monitor bug killed this vCPU thread: its VM stops with the reason, and
 * `vm stop`/`vm destroy` still work on it. */
void vmm_thread_faulted(const char *reason)
{
    struct vcpu *c = thread_local();
    if (!c)
        return;
    vm_kill(c->vm, "hypervisor fault in the vCPU thread (%s)", reason);
    vm_thread_died(c->vm);
}

/* Host interrupts in a row that return to ring 3 at once before one exits
 * anyway (10 ms at TIMER_HZ): the run loop's bookkeeping (`vm list`'s CPU
 * time) stays at most that stale for a guest that never exits by itself,
 * one with no timer of its own. Linux's tick exits 250 times a second. */
#define RESUME_MAX_IN_ROW 10u

/*
 * True if the run loop (vcpu_thread) has work before the guest may run on:
 * a stop, pause or reset request, page shares to apply, stale shadows, a
 * device event due (a timer, a frame, a finished read) or an interrupt
 * requested (e.g. the UART's, raised by the console thread). Read-only and
 * lock-free: called from host interrupt handlers on the vCPU thread.
 */
static bool run_loop_due(struct vcpu *c)
{
    struct vm *vm = c->vm;
    return vm->stop_req || vm->pause_req || vm->reset_req || gmem_share_ready(&vm->mem, timer_ticks()) ||
           c->sh_stale || vmdev_next_event_ns(vm) == 0 || vmdev_irq_pending(vm);
}

static void ring3_state_from_trap(struct vcpu *c, const struct trap_frame *tf);

/* SYSENTER as emu_sysenter takes it (it looks at nothing else of it). */
static const struct dec_insn insn_sysenter = { .cf = DEC_CF_SYSENTER };

/* run_loop_due's answer for the paths that stay in the trap, cheaper and
 * conservative: the devices' side from the last poll (vmdev_quiet). */
static bool run_loop_quiet(struct vcpu *c)
{
    struct vm *vm = c->vm;
    return !(vm->stop_req || vm->pause_req || vm->reset_req || gmem_share_ready(&vm->mem, timer_ticks()) ||
             c->sh_stale) && vmdev_quiet(vm);
}

/* 0 builds hv86 without sysenter_in_world, for an A/B of it. */
#ifndef FAST_SYSENTER
#define FAST_SYSENTER 1
#endif

/*
 * A SYSENTER from ring 3 that the return stub entered (bt_world: the
 * world switch in progress is bt_enter's), taken into translated code
 * from the trap itself (docs/bt.md "System calls without a world
 * switch"): the vCPU state becomes what handle_ring3_trap and emu_sysenter
 * make of it -- the registers and DS..GS from the frame, CPL 0, SYSENTER's
 * flat CS and SS, ESP and EIP from the guest's MSRs, virtual IF clear --
 * and tf, rewritten as bt_enter would build it for the translated block
 * of the guest's SYSENTER_EIP, returns to ring 1 through trap_return. No
 * exit: vmm_enter's saved frame, TSS.esp0, CR3 and the GDT stay as they
 * are, and nothing else ran on this CPU since the entry. Only when the
 * run loop has nothing to do (run_loop_quiet; the virtual IF is clear
 * after SYSENTER, so no interrupt could be delivered anyway), the block
 * exists and is for a flat CS (tc_cs_*), no single step, breakpoint,
 * one-instruction block or stop request waits, and the guest's TF is
 * clear (its step trap belongs to the monitor's path). Returns false,
 * having changed nothing, when the monitor's path must run.
 */
/* May a trap from ring 3 that a return stub entered go on into translated
 * code from the trap itself (sysenter_in_world, reflect_in_world)? The
 * world switch in progress is bt_enter's, the guest is in protected mode
 * and translated for CPL 0 in a flat CS (tc_cs_*), and neither the guest's
 * TF, the monitor's stepping or breakpoints, a one-instruction block nor
 * an exit request wants the monitor's path. */
static bool world_may_go_on(const struct vcpu *c, const struct trap_frame *tf)
{
    return c->bt_world && !c->bt.cpl3 && (c->bv->cr[0] & CR0_PE) && !(tf->eflags & EFLAGS_TF) && !c->stepping &&
           !(c->dr[7] & 0xFF) && !c->bt.one_insn && !c->bv->exit_req && c->tc_cs_base == 0 &&
           c->tc_cs_limit == 0xFFFFFFFFu;
}

/* ... and, the vCPU state made what the monitor's path would make it, go
 * on: tf becomes the frame bt_enter builds for block b (bt_frame), which
 * trap_return enters at ring 1. */
static void world_go_on(struct vcpu *c, struct trap_frame *tf, const struct tc_block *b)
{
    c->bt.stats.dispatches++;
    bt_frame(c, tf, (uint32_t)(uintptr_t)b->tca);
    cpu_state_for_guest(c, tf->cs, false);
}

static bool sysenter_in_world(struct vcpu *c, struct trap_frame *tf)
{
    if (!c->fast_sysenter || !world_may_go_on(c, tf) || c->cpl != 0 || (c->sysenter_cs & ~3u) == 0 || sysenter_tf ||
        !run_loop_quiet(c))
        return false;
    struct tc_block *b = tc_lookup(&c->bt.tc, c->sysenter_eip);
    if (!b)
        return false;
    r3_learnt(c);
    ring3_state_from_trap(c, tf);
    int r = emu_sysenter(c, &insn_sysenter); /* flat CS and SS (sysenter_seg), as tc_cs_* above */
    KASSERT(r == 0);                         /* SYSENTER_CS is not 0, PE is set, TF clear: no fault */
    c->sysenter_in_world++;
    world_go_on(c, tf, b);
    return true;
}

/* 0 builds hv86 without pf_in_world, for an A/B of it. */
#ifndef FAST_PF
#define FAST_PF 1
#endif
#define PF_WORLD_REPEATS 8u /* hidden faults in a row at one CR2 and EIP fixed from the trap */

/*
 * A page fault from ring 1 or 3 (not v86) that the shadow alone fixes (a
 * hidden fault: the guest's tables allow the access, only the shadow entry
 * was missing or lacked a right) is fixed from the trap, and trap_return
 * runs the faulting instruction again, as the CPU itself would after a
 * TLB miss (docs/vmm.md "Hidden faults without an exit"): no world switch
 * and no run loop. The state of the interrupted code is untouched, so
 * this holds in translated code (a faulting instruction is restartable
 * wherever it is) and in ring 3 however it was entered. A fill while
 * translated code may skip an INVLPG (invlpg_skip: only the monitor fills
 * entries, and so far only between runs) ends that: the guest's INVLPG
 * exits again. Any other result is stashed for the monitor's path, which
 * takes it instead of calling shadow_handle_fault a second time (its
 * first call may have set A/D bits or let a table go out of sync). Not
 * while the run loop may have work (run_loop_quiet) or the monitor is stepping.
 * Returns true if the fault was fixed.
 */
static bool reflect_in_world(struct vcpu *c, struct trap_frame *tf, const struct shadow_fault *out);

static bool pf_in_world(struct vcpu *c, struct trap_frame *tf)
{
    if (!c->fast_pf || c->stepping || !run_loop_quiet(c))
        return false;
    uint32_t cr2 = read_cr2();
    /* The same access faulting again and again (a read's fill, then the
     * write's D bit: twice) is left to the monitor's path, which says why. */
    if (cr2 == c->pf_world_cr2 && tf->eip == c->pf_world_eip) {
        if (++c->pf_world_repeats > PF_WORLD_REPEATS)
            return false;
    } else {
        c->pf_world_cr2 = cr2;
        c->pf_world_eip = tf->eip;
        c->pf_world_repeats = 0;
    }
    unsigned cpl = trap_ring(tf) == 3 ? 3 : c->cpl; /* at ring 3 after the return stub c->cpl is still 0 */
    struct shadow_fault out;
    int r = shadow_handle_fault(&c->sh, cr2, tf->error, cpl, &out);
    if (r == SHADOW_FIXED) {
        /* What run_bt_n told this run of translated code about the shadow:
         * a write may have let a table go out of sync (INVLPG must exit). */
        c->bv->invlpg_exit = shadow_unsync_active(&c->sh);
        c->bv->invlpg_skip = BT_INVLPG_SKIP_NONE;
        c->pf_in_world++;
        return true;
    }
    if (r == SHADOW_REFLECT && trap_ring(tf) == 3 && reflect_in_world(c, tf, &out))
        return true;
    c->pf_stashed = true;
    c->pf_stash_r = r;
    c->pf_stash = out;
    c->pf_stash_cr2 = cr2;
    c->pf_stash_err = tf->error;
    c->pf_stash_eip = tf->eip;
    return false;
}

/* 0 builds hv86 without reflect_in_world, for an A/B of it. */
#ifndef FAST_REFLECT
#define FAST_REFLECT 1
#endif

/*
 * A page fault of ring 3, which a return stub entered (bt_world), that the
 * guest's own tables raise (out: shadow_handle_fault's SHADOW_REFLECT),
 * given to the guest from the trap itself (docs/vmm.md "Guest page faults
 * without an exit"): the vCPU state becomes ring 3's at the trap
 * (r3_state, ring3_state_from_trap), pf_reflect delivers the #PF through
 * the guest's IDT as the monitor's path would, and when that left CPL 0 in
 * a flat CS with a translated block at the handler, tf is rewritten as
 * bt_enter would build it for that block (bt_frame) and the handler runs
 * at ring 1 through trap_return. Only under sysenter_in_world's
 * conditions: the run loop has nothing to do, no single step, breakpoint,
 * guest TF, one-instruction block or exit request. Once the delivery has
 * run the state is the guest's whatever came of it (another fault, a
 * triple fault that stopped the VM, a handler not yet translated): the
 * world is then left with world_handled, and bt_enter hands bt_run the
 * state as it is. Returns false, having changed nothing, when the
 * monitor's path must run; else true (tf is the handler's entry).
 */
static int pf_reflect(struct vcpu *c, const struct shadow_fault *out, uint32_t err);
static void invlpg_skip_publish(struct vcpu *c);

static bool reflect_in_world(struct vcpu *c, struct trap_frame *tf, const struct shadow_fault *out)
{
    struct bt_vcpu *v = c->bv;
    if (!c->fast_reflect || !world_may_go_on(c, tf))
        return false; /* run_loop_quiet: pf_in_world asked */
    r3_state(c);
    ring3_state_from_trap(c, tf);
    int rc = pf_reflect(c, out, tf->error);
    struct tc_block *b = NULL;
    if (rc == 0 && !c->vm->stop_req && c->cpl == 0 && c->seg[SR_CS].base == 0 &&
        c->seg[SR_CS].limit == 0xFFFFFFFFu && !(v->vflags_sys & EFLAGS_TF))
        b = tc_lookup(&c->bt.tc, v->eip);
    if (!b) {
        c->world_handled = true;
        vmm_leave(c->host_esp, WX_TRAP);
    }
    /* What run_bt_n tells a run of translated code about INVLPG: the
     * fault may have let a table out of sync, and the handler's INVLPG of
     * the page pf_reflect dropped ahead has nothing to do. */
    v->invlpg_exit = shadow_unsync_active(&c->sh);
    invlpg_skip_publish(c);
    c->pf_reflected_in_world++;
    world_go_on(c, tf, b);
    return true;
}

/*
 * The IRET stub's call before it returns from a #PF handler to ring 3
 * (bt_vcpu.r3_prefault, docs/bt.md "Returning to ring 3"): its exit
 * routine left with exit_desc = &bt.prefault_call, which no exit
 * descriptor is. The monitor fills the shadow entry the retry will use
 * (vcpu_prefault: only what the guest's tables allow) and returns into
 * the stub right after its call (bt.prefault_ret) on the stub's own stack
 * (r3_priv_ss, the ESP the routine stored), with its registers and
 * segment registers as they were; the stub's flags are on its stack. The
 * retry then does not fault: a SYSENTER and an IRET instead of a page
 * fault, which under QEMU TCG costs far more. tf is an exit of ring 1
 * (vmm_guest_trap took the #GP(0) of a disarmed SYSENTER as one already).
 * Returns false for any other exit.
 */
static bool prefault_call(struct vcpu *c, struct trap_frame *tf)
{
    struct bt_vcpu *v = c->bv;
    if (v->exit_desc != (uint32_t)(uintptr_t)&c->bt.prefault_call || !c->bt.prefault_ret)
        return false;
    v->exit_desc = 0;
    v->r3_prefault = 0;
    if (c->pf_pending)
        vcpu_prefault(c);
    c->prefault_calls++;
    tf->eip = c->bt.prefault_ret;
    tf->cs = SEL_R1CODE;
    tf->esp = v->exit_esp;
    tf->ss = v->r3_priv_ss;
    tf->eflags = EFLAGS_IF | EFLAGS_FIXED;
    return true;
}

/* Every trap from ring 1 or 3 comes here (kernel/traps.c), on the vCPU
 * thread's stack below the frame vmm_enter saved. */
void vmm_guest_trap(struct trap_frame *tf)
{
    struct vcpu *c = thread_local();
    if (!c)
        panic("trap from ring %u with no vCPU on this thread", trap_ring(tf));
    bool ring1 = trap_ring(tf) == 1; /* translated code; a v86 CS may have any low bits */
    /* Translated code's exit routine leaves through SYSENTER (vmm/switch.S
     * makes the frame INT HV_EXIT_VECTOR would have), or, where this CPU's
     * SYSENTER is disarmed (another vCPU's ring-3 entry ran while this one
     * was preempted at ring 1), the #GP(0) of that SYSENTER: the same exit.
     * Nothing else at ring 1 runs an instruction at that offset of CS. */
    if (ring1 && tf->vector == T_GP && c->bt.exit_sysenter_eip && tf->eip == c->bt.exit_sysenter_eip)
        tf->vector = HV_EXIT_VECTOR;
    if (tf->vector == HV_EXIT_VECTOR && ring1 && prefault_call(c, tf))
        return;
    if (ring1) { /* native_seg_resync reads them once the world switch is over */
        c->r1_sel[0] = (uint16_t)tf->ds;
        c->r1_sel[1] = (uint16_t)tf->es;
        c->r1_sel[2] = (uint16_t)tf->fs;
    }
    if (tf->vector == HV_EXIT_VECTOR && ring1) {
        save_gprs(c->bv->gpr, tf);
        c->bv->eflags = tf->eflags & BT_FLAGS_REAL;
        vmm_leave(c->host_esp, WX_BT_EXIT);
    }
    if (tf->vector == HV_SYSENTER_VECTOR && !ring1 && sysenter_in_world(c, tf))
        return;
    if (tf->vector == T_PF && !(tf->eflags & EFLAGS_VM) && pf_in_world(c, tf))
        return;
    if (is_irq_vector(tf->vector)) {
        irq_depth++;
        irq_handle(tf);
        irq_depth--;
        if (ring1) {
            /* The monitor has something to do (a device event is due, a stop
             * or pause): if the CPU stopped exactly between two translated
             * guest instructions, leave now, as from a fault there; else let
             * the translated code run on to its next block end. */
            if (c->vm->stop_req || c->vm->pause_req || vmdev_next_event_ns(c->vm) == 0) {
                uint32_t tca = ring1_tca(c, tf->eip);
                if (tc_insn_boundary(&c->bt.tc, tca, &c->irq_geip) == 0) {
                    c->exit_req_boundary++;
                    sched_preempt_point();
                    c->tf = *tf;
                    vmm_leave(c->host_esp, WX_TRAP);
                }
                int how = bt_stop_at(&c->bt, &tca);
                tf->eip = tca - c->bt.tc.cs_base; /* bt_stop_at may move a lookup to its miss path */
                c->exit_req_block += how == BT_STOP_BLOCK;
                c->exit_req_lookup += how == BT_STOP_LOOKUP;
            }
            sched_preempt_point();
            cpu_state_for_guest(c, tf->cs, false); /* other threads may have run meanwhile */
            return;
        }
        /* Directly executed user code, interrupted at an instruction
         * boundary: resume it at once, as a CPU returns from a host
         * interrupt, unless the run loop has work for it. A world exit
         * here only to find nothing to do was one exit per host tick, 1000
         * a second for a CPU-bound guest (docs/performance.md). */
        if (!(tf->eflags & EFLAGS_VM)) {
            sched_preempt_point();
            if (!run_loop_due(c) && ++c->resumed_in_row < RESUME_MAX_IN_ROW) {
                cpu_state_for_guest(c, tf->cs, false);
                c->irqs_resumed++;
                return;
            }
        }
    }
    c->tf = *tf;
    if (tf->eflags & EFLAGS_VM) /* the CPU pushed them above SS (SDM Vol. 3A Figure 20-2) */
        c->v86 = ((const struct guest_frame *)tf)->v86;
    c->cr2 = read_cr2();
    vmm_leave(c->host_esp, WX_TRAP);
}

/* ---------------------------------------------------------------- 7. run loop */

/* The processor state after RESET (SDM Vol. 3A §9.1.1, Table 9-1), with
 * CS.base = selector * 16 (loader.h LOADER_FIRMWARE): real mode, paging
 * and protection off, every data segment 0:FFFF, the IVT at 0. */
static void reset_real_mode(struct vcpu *c, const struct loader_entry *e)
{
    uint32_t cr0 = CR0_CD | CR0_NW | CR0_ET;
    for (int i = 0; i < SR_N; i++) {
        uint16_t sel = i == SR_CS ? e->cs : 0;
        c->seg[i] = (struct vseg){ sel, (uint32_t)sel << 4, RM_OFFSET_MAX,
                                   DESC_P | DESC_S | (i == SR_CS ? DESC_CODE | 0x03 : 0x03), 0 };
        c->bv->sel[i] = sel;
    }
    c->bv->cr[0] = cr0;
    KASSERT(!shadow_set_cr0(&c->sh, cr0)); /* paging off: nothing to refuse */
    c->bv->eip = e->eip;
    c->bv->gdtr = (struct bt_desc_table){ 0, RM_OFFSET_MAX };
    c->bv->idtr = (struct bt_desc_table){ 0, 0x3FF };
    memset(c->bv->gpr, 0, sizeof(c->bv->gpr));
    c->bv->eflags = EFLAGS_FIXED;
}

void vcpu_reset(struct vm *vm, const struct loader_entry *e)
{
    struct vcpu *c = VCPU(vm);
    /* The TC and the shadow tables are in the VM's window: a host thread
     * (vm create, vm start) works in the VM's address space meanwhile. */
    bool host = thread_local() != c;
    uint32_t token = host ? vmwin_enter(&c->win) : 0;
    /* Ring-1 CS covers the TC alone (init_sgdt): the addresses translated
     * code jumps through are offsets in it, and its exit routine lies in it. */
    struct bt_config cfg = { .state_seg_prefix = BT_SEG_GS, .rewrite_cs_override = true, .guest_seg_alias = true,
                              .native_seg_loads = true,
                             .cs_base = (uint32_t)c->tc_code, .exit_vector = HV_EXIT_VECTOR,
                             .exit_sysenter = true, .inline_iret = true, .inline_sysexit = true,
                             .inline_iret3 = FAST_IRET3 };
    memset(c->bv, 0, sizeof(*c->bv));
    bt_init(&c->bt, &cfg, c->bv, c->tc_code, c->tc_code_bytes, c->tc_meta, c->tc_meta_bytes, bt_fetch, c, bt_enter);
    bt_set_page_fn(&c->bt, bt_page_of);
    bt_set_stable_fn(&c->bt, bt_code_stable);
    c->fast_sysenter = FAST_SYSENTER; /* sysenter_in_world */
    c->fast_pf = FAST_PF;             /* pf_in_world */
    c->fast_reflect = FAST_REFLECT;   /* reflect_in_world */
    c->bt.monitor_exit = &c->fault_desc; /* bt_enter's own exit_desc, trusted by bt_run */
    memset(c->code_bits, 0, ALIGN_UP(vm->mem.npages, 32u) / 8);
    c->nwatch = 0;
    shadow_flush_all(&c->sh); /* forget write protection of the previous run's code */
    shadow_set_a20(&c->sh, true); /* the gate after reset: open (i8042 output port bit 1) */
    c->a20 = true;
    shadow_set_cr0(&c->sh, CR0_PE | CR0_ET);
    shadow_set_cr4(&c->sh, 0);
    init_sgdt(c);
    /* Multiboot §3.2: flat 4 GiB code and data, paging off, IF clear. The
     * guest must load its own GDT before it reloads a segment register; our
     * shadow GDT holds flat descriptors at 0x08/0x10 meanwhile. */
    c->sgdt[1] = gdt_make_desc(0, 0xFBFFF, DESC_P | DESC_S | DESC_CODE | 0x02 | (1 << 5) | DESC_ACCESSED, DESC_FLAG_G | DESC_FLAG_D);
    c->sgdt[2] = gdt_make_desc(0, 0xFBFFF, DESC_P | DESC_S | 0x02 | (1 << 5) | DESC_ACCESSED, DESC_FLAG_G | DESC_FLAG_D);
    struct vseg code = { 0x08, 0, 0xFFFFFFFFu, DESC_P | DESC_S | DESC_CODE | 0x0A, DESC_FLAG_G | DESC_FLAG_D };
    struct vseg data = { 0x10, 0, 0xFFFFFFFFu, DESC_P | DESC_S | 0x03, DESC_FLAG_G | DESC_FLAG_D };
    for (int i = 0; i < SR_N; i++) {
        c->seg[i] = i == SR_CS ? code : data;
        c->bv->sel[i] = c->seg[i].sel;
    }
    c->bv->cr[0] = CR0_PE | CR0_ET;
    c->cpl = 0;
    c->bv->eip = e->eip;
    c->bv->gpr[0] = e->eax;
    c->bv->gpr[3] = e->ebx;
    c->bv->gpr[6] = e->esi;
    if (e->gdt_limit) { /* the Linux boot protocol: a real GDT and __BOOT_CS/__BOOT_DS */
        c->bv->gdtr.base = e->gdt_base;
        c->bv->gdtr.limit = e->gdt_limit;
        vcpu_sync_gdt_all(c);
        bool ok = !vcpu_load_seg(c, SR_CS, e->cs);
        for (int sr = 0; sr < SR_N; sr++)
            if (sr != SR_CS)
                ok = ok && !vcpu_load_seg(c, sr, e->ds);
        KASSERT(ok); /* our own GDT: a failure is a hypervisor bug */
    }
    c->bv->eflags = 0;
    if (e->version == LOADER_FIRMWARE)
        reset_real_mode(c, e);
    c->cpl = 0;
    c->halted = false;
    c->invlpg_dropped = BT_INVLPG_SKIP_NONE;
    c->fpu_valid = false;
    c->stepping = false;
    memset(c->dr, 0, sizeof(c->dr));
    c->ldt_limit = 0;
    c->ldt_stale = true;
    if (fpu_owner == c)
        fpu_owner = NULL; /* a reset guest starts from FNINIT state */
    if (host)
        vmwin_leave(token);
}

static void account(struct vm *vm, enum vm_exit_cause cause)
{
    vm->exits++;
    vm->exits_by_cause[cause]++;
}

void vcpu_note_exit(struct vcpu *c, unsigned why)
{
    uint32_t eip = c->bv->eip, h = (eip * 2654435761u) ^ (why * 40503u);
    for (unsigned i = 0; i < 16; i++) {
        struct exit_site *s = &c->sites[(h + i) & (EXIT_SITES - 1)];
        if (s->count && (s->eip != eip || s->why != why || s->cpl != c->cpl))
            continue;
        if (!s->count)
            *s = (struct exit_site){ eip, 0, (uint16_t)why, (uint8_t)c->cpl };
        s->count++;
        return;
    }
    c->sites_untracked++;
}

static const char *exit_why_name(unsigned why)
{
    if (why == EXIT_WHY_PF_HIDDEN)
        return "pf-hidden";
    if (why == EXIT_WHY_PF_GUEST)
        return "pf-guest";
    if (why == EXIT_WHY_PT_WRITE)
        return "pt-write";
    if (why == EXIT_WHY_CODE_WRITE)
        return "code-write";
    if (why == EXIT_WHY_PF_EMULATE)
        return "pf-emulated";
    if (why >= EXIT_WHY_TRAP)
        return trap_name(why - EXIT_WHY_TRAP);
    return bt_exit_name(why);
}

void vcpu_exit_sites(struct vm *vm, struct cmd_out *out, unsigned top, bool reset)
{
    struct vcpu *c = VCPU(vm);
    uint64_t total = c->sites_untracked;
    unsigned used = 0;
    for (unsigned i = 0; i < EXIT_SITES; i++) {
        total += c->sites[i].count;
        used += c->sites[i].count != 0;
    }
    cmd_printf(out, "%10s  %-8s %3s  %s\n", "exits", "eip", "cpl", "why");
    /* Selection of the top rows: at most top passes over the table, no copy. */
    uint32_t below = UINT32_MAX;
    unsigned shown = 0;
    while (shown < top) {
        uint32_t best = 0;
        for (unsigned i = 0; i < EXIT_SITES; i++)
            if (c->sites[i].count < below && c->sites[i].count > best)
                best = c->sites[i].count;
        if (!best)
            break;
        for (unsigned i = 0; i < EXIT_SITES && shown < top; i++) {
            const struct exit_site *s = &c->sites[i];
            if (s->count == best) {
                cmd_printf(out, "%10u  %08x %3u  %s\n", s->count, s->eip, s->cpl, exit_why_name(s->why));
                shown++;
            }
        }
        below = best;
    }
    cmd_printf(out, "%llu exits at %u sites counted, %u not placed (table full)\n", (unsigned long long)total, used,
               c->sites_untracked);
    if (reset) {
        memset(c->sites, 0, sizeof(c->sites));
        c->sites_untracked = 0;
    }
}

/* Deliver the PIC's interrupt if the guest can take it now. */
static int inject_irq(struct vcpu *c)
{
    int vec = vmdev_poll_irq(c->vm);
    c->bv->irq_pending = vec >= 0;
    if (vec < 0 || !c->bv->vflags_if)
        return 0;
    vec = vmdev_ack_irq(c->vm);
    if (vec < 0)
        return 0;
    c->bv->irq_pending = 0;
    c->irqs_injected++;
    return vcpu_deliver(c, (unsigned)vec, -1, false, c->bv->eip);
}

/* HLT: sleep until the next device event (timer) or console input. */
static void halt_wait(struct vcpu *c)
{
    uint64_t ns = vmdev_next_event_ns(c->vm);
    uint32_t ticks = ns == UINT64_MAX ? 10 : (uint32_t)MIN(ns / (1000000000u / TIMER_HZ) + 1, 10u);
    thread_sleep(ticks);
}

/*
 * INVLPG after a page fault (docs/vmm.md). Linux's handler of a #PF on a
 * present PTE (a copy-on-write break) changes the PTE, then flushes the
 * page with INVLPG, which exits while page tables are out of sync. The
 * shadow entry is dropped here instead, as the guest gets the fault: "the
 * processor is always free to invalidate additional entries in the TLBs"
 * (SDM Vol. 3A §4.10.4.1), so this is that INVLPG, early. Only the monitor
 * fills shadow entries, and only outside translated code (the fault path
 * and the IRET's prefault), so until translated code next exits, an
 * INVLPG of that page has nothing to drop, and ring 1 skips it.
 */
static void invlpg_ahead(struct vcpu *c, uint32_t gva, const uint32_t *gpde)
{
    if (!shadow_unsync_active(&c->sh))
        return; /* every INVLPG is dropped anyway (bt/translate.c h_invlpg) */
    /* What the #PF itself invalidates, not an INVLPG: gdtw_map's walk of
     * the GDT's page stays good, unless it went through this PDE (the GDT's
     * own page included). Moving the TLB generation here made that walk
     * again at every fault given to the guest. */
    shadow_fault_invalidate(&c->sh, gva, gpde);
    if ((gva >> 22) == (c->bv->gdtr.base >> 22))
        c->gdtw_gen = shadow_tlb_gen(&c->sh) - 1; /* walk again (the alias stays as gdtw_drop knows it) */
    for (unsigned i = 0; i < ARRAY_SIZE(c->sys_tlb); i++)
        if ((gva >> 22) == (c->sys_tlb[i].page >> 22))
            c->sys_tlb[i].hpa = 0; /* read_sys8 walks again */
    c->invlpg_dropped = gva & PAGE_MASK;
}

/*
 * Publish the page invlpg_ahead dropped to the translated code about to
 * run, as an offset in DS (bt/translate.c h_invlpg compares the INVLPG's
 * DS offset and DS selector): only with a DS of base 0 that stays 0 when
 * ring 1 reloads the same selector natively from the shadow GDT.
 */
static void invlpg_skip_publish(struct vcpu *c)
{
    uint32_t page = c->invlpg_dropped;
    uint16_t ds = c->seg[SR_DS].sel;
    c->invlpg_dropped = BT_INVLPG_SKIP_NONE;
    c->bv->invlpg_skip = BT_INVLPG_SKIP_NONE;
    if (page == BT_INVLPG_SKIP_NONE || !ds_flat(c))
        return;
    c->bv->invlpg_skip = page;
    c->bv->invlpg_skip_ds = ds;
    c->invlpg_skipped++;
}

/* A #PF the guest's own tables raise (shadow_handle_fault's
 * SHADOW_REFLECT, out), taken at CPL c->cpl with the hardware error code
 * err: CR2, what the handler's IRET prefaults, the faulting page dropped
 * ahead of its INVLPG, and the delivery through the guest's IDT (SDM Vol.
 * 3A §4.7, §6.12). Returns what vcpu_exception returns. */
static int pf_reflect(struct vcpu *c, const struct shadow_fault *out, uint32_t err)
{
    c->bv->cr[2] = out->cr2;
    c->pf_pending = true;
    c->pf_gva = out->cr2;
    c->pf_acc = (err & PF_W) | (c->cpl == 3 ? PF_U : 0);
    c->pf_cr3 = c->bv->cr[3];
    invlpg_ahead(c, out->cr2, out->gpde_read ? &out->gpde : NULL); /* the PDE the fault's walk just read */
    return vcpu_exception(c, T_PF, (int)out->guest_err);
}

/*
 * An exception from guest code: directly executed (direct) or translated.
 * c->bv holds the guest state at the faulting instruction.
 */
static int handle_guest_trap(struct vcpu *c, bool direct)
{
    uint32_t v = c->tf.vector;
    if (is_irq_vector(v)) { /* a host interrupt left translated code early: nothing to emulate */
        account(c->vm, EXIT_IRQ);
        return 0;
    }
    if (v == T_PF) {
        struct shadow_fault out;
        int r;
        if (c->pf_stashed && c->pf_stash_cr2 == c->cr2 && c->pf_stash_err == c->tf.error &&
            c->pf_stash_eip == c->tf.eip) { /* pf_in_world's result for this very trap */
            r = c->pf_stash_r;
            out = c->pf_stash;
            out.gpde_read = false; /* a disk's DMA may have written the PDE since: read it again */
        } else {
            r = shadow_handle_fault(&c->sh, c->cr2, c->tf.error, c->cpl, &out);
        }
        c->pf_stashed = false;
        if (r == SHADOW_FIXED) {
            account(c->vm, EXIT_PF_HIDDEN);
            vcpu_note_exit(c, EXIT_WHY_PF_HIDDEN);
            return 0;
        }
        account(c->vm, EXIT_PF_GUEST);
        vcpu_note_exit(c, r == SHADOW_REFLECT ? EXIT_WHY_PF_GUEST : r == SHADOW_EMULATE_PT ? EXIT_WHY_PT_WRITE :
                          r == SHADOW_CODE_WRITE ? EXIT_WHY_CODE_WRITE : EXIT_WHY_PF_EMULATE);
        if (r == SHADOW_REFLECT)
            return pf_reflect(c, &out, c->tf.error) < 0 ? -1 : 0;
        if (r == SHADOW_CODE_WRITE) {
            /* From translated code the store is emulated (smc_store);
             * directly executed code re-runs it on a writable page. */
            c->smc_writes++;
            c->code_write_gpa = out.gpa;
            return direct ? handle_code_write(c, out.gpa) : emu_bt_exit(c, -100 - SHADOW_CODE_WRITE);
        }
        if (r == SHADOW_EMULATE_PT || r == SHADOW_EMULATE_MONITOR || r == SHADOW_MMIO)
            return emu_bt_exit(c, -(int)r - 100); /* emulate the faulting instruction */
        vm_kill(c->vm, "shadow paging failed at gva %08x: %s", c->cr2, shadow_why(&c->sh));
        return -1;
    }
    account(c->vm, EXIT_EXCEPTION);
    vcpu_note_exit(c, EXIT_WHY_TRAP + v);
    if (v == T_NM)
        return vcpu_fpu_trap(c);
    if ((v == T_GP || v == T_SS) && (c->tf.eflags & EFLAGS_VM))
        return emu_step16(c); /* a sensitive instruction, or an offset past FFFFh: vmm/realmode.h */
    if (v == T_GP)
        return direct ? emu_ring3_gp(c) : emu_bt_exit(c, -T_GP);
    if (v == T_SS)
        return direct ? emu_ring3_ss(c) : emu_bt_exit(c, -T_SS);
    bool has_err = v == T_DF || (v >= T_TS && v <= T_PF) || v == T_AC;
    return vcpu_exception(c, v, has_err ? (int)c->tf.error : -1) < 0 ? -1 : 0;
}

/* A trap out of directly executed ring-3 code. */
/*
 * Directly executed code may load DS/ES/FS/GS itself (MOV/POP Sreg are not
 * privileged): Linux's C library loads GS with its TLS selector. What the
 * CPU holds when the guest traps is the guest's state; the descriptor
 * caches follow (the CPU checked the load against the shadow tables, which
 * mirror the guest's, so the guest's descriptor loads too).
 */
static void ring3_resync_segs(struct vcpu *c, const struct trap_frame *tf)
{
    static const int srs[] = { SR_DS, SR_ES, SR_FS, SR_GS };
    const uint32_t sels[] = { tf->ds, tf->es, tf->fs, tf->gs };
    for (unsigned i = 0; i < 4; i++) {
        uint16_t sel = (uint16_t)sels[i];
        uint64_t d;
        if (sel == c->seg[srs[i]].sel)
            continue;
        if ((sel & ~3u) == 0 || vcpu_read_desc(c, sel, &d) != 0)
            c->seg[srs[i]] = (struct vseg){ .sel = sel }; /* null (or gone since): a use faults */
        else
            c->seg[srs[i]] = vseg_of(sel, d);
        c->bv->sel[srs[i]] = sel;
    }
}

bool vmm_sysenter_debug(struct trap_frame *tf)
{
    if (tf->vector != T_DB || tf->eip != (uint32_t)vmm_sysenter_entry)
        return false;
    tf->eflags &= ~EFLAGS_TF; /* the guest's step resumes once it is at its kernel's entry */
    sysenter_tf = true;
    return true;
}

/* The guest's SYSENTER, through vmm_sysenter_entry: SDM Vol. 2B SYSENTER
 * from CPL 3, as emu_sysenter does it for the decoded instruction. */
static int fast_sysenter(struct vcpu *c)
{
    account(c->vm, EXIT_PRIV);
    vcpu_note_exit(c, BT_EXIT_SYSENTER);
    if (sysenter_tf) {
        sysenter_tf = false;
        c->bv->vflags_sys |= EFLAGS_TF; /* SYSENTER keeps TF: the step traps in the kernel */
    }
    return emu_sysenter(c, &insn_sysenter);
}

/* The vCPU state at a trap from directly executed ring 3: registers, DS..GS
 * and EIP from the frame, the flags ring 3 may change (IF and IOPL stay
 * the vCPU's). handle_ring3_trap and sysenter_in_world. */
static void ring3_state_from_trap(struct vcpu *c, const struct trap_frame *tf)
{
    save_gprs(c->bv->gpr, tf);
    ring3_resync_segs(c, tf);
    c->bv->eip = tf->eip;
    vcpu_set_eflags(c, (tf->eflags & ~(EFLAGS_IF | EFLAGS_IOPL)) | c->bv->vflags_if | (c->bv->vflags_sys & EFLAGS_IOPL), true);
}

static int handle_ring3_trap(struct vcpu *c)
{
    struct trap_frame *tf = &c->tf;
    ring3_state_from_trap(c, tf);
    if (tf->vector == HV_SYSENTER_VECTOR)
        return fast_sysenter(c);
    if (is_irq_vector(tf->vector)) {
        account(c->vm, EXIT_IRQ);
        return 0;
    }
    return handle_guest_trap(c, true);
}

/*
 * Before ring 3 runs: guest GDT entries 1-63 as they are in guest memory
 * now, since ring 3 loads them itself (the kernel may have rewritten its
 * TLS descriptors); only entries that changed are shadowed again. This
 * runs at every return to user mode, so the common case costs no copy and
 * no walk: a table within one page that the shadow maps (the guest's TLB,
 * as in read_mapped) is compared where it lies, and entries beyond the
 * guest's limit are not looked at while gdt_low_zero_from says they are
 * already empty. Otherwise the table is read whole through the shadow or
 * the guest's tables, or entry by entry if a page is not mapped.
 */
static void sync_gdt_low(struct vcpu *c)
{
    uint32_t n = MIN((c->bv->gdtr.limit + 1) / 8, SYNC_GDT_LOW), lin = c->bv->gdtr.base, got = 0, hpa;
    uint32_t off = lin & (PAGE_SIZE - 1);
    if (c->gdt_low_zero_from <= n && off + n * 8 <= PAGE_SIZE && shadow_mapped(&c->sh, lin, 0, &hpa) == 0) {
        uint32_t fl = read_eflags(); /* kmap_cached: one window, no preemption while in use */
        cpu_cli();
        const uint64_t *g = (const uint64_t *)((const uint8_t *)kmap_cached(hpa & PTE_FRAME) + off);
        for (uint32_t i = 1; i < n; i++)
            if (g[i] != c->gdt_src[i])
                sgdt_set(c, i, g[i], true);
        write_eflags(fl);
        return;
    }
    uint64_t now[SYNC_GDT_LOW];
    while (got < n * 8) {
        uint32_t a = lin + got, len = MIN(n * 8 - got, PAGE_SIZE - (a & (PAGE_SIZE - 1))), gpa, err;
        if (read_mapped(c, a, (uint8_t *)now + got, len, 0)) /* the kernel's own GDT page: mapped */
            ;
        else if (shadow_guest_translate(&c->sh, a, 0, false, &gpa, &err) != 0 ||
                 gmem_read(&c->vm->mem, gpa, (uint8_t *)now + got, len))
            break;
        got += len;
    }
    for (uint32_t i = 1; i < SYNC_GDT_LOW; i++) {
        if (got < n * 8 && i < n)
            vcpu_sync_gdt_entry(c, i);
        else if (i < n ? now[i] != c->gdt_src[i] : c->sgdt[i] != 0) /* beyond the limit: none */
            sgdt_set(c, i, i < n ? now[i] : 0, i < n);
    }
    c->gdt_low_zero_from = MAX(n, 1u);
}

static int run_ring3(struct vcpu *c)
{
    struct guest_frame g = { 0 };
    struct trap_frame *f = &g.tf;
    sync_gdt_low(c); /* e.g. TLS descriptors the kernel rewrote */
    /* The CPU loads CS and SS from the shadow GDT at this entry: the
     * vCPU's caches of them become what it loads (SYSEXIT took them from
     * the entries as they were before this sync). */
    for (int sr = SR_CS; sr <= SR_SS; sr++) {
        uint16_t sel = c->seg[sr].sel;
        if (gdt_low_cached(c, sel))
            c->seg[sr] = vseg_of(sel, c->gdt_src[sel >> 3]);
    }
    frame_gprs(f, c->bv->gpr);
    f->ds = ring3_sel(c, SR_DS);
    f->es = ring3_sel(c, SR_ES);
    f->fs = ring3_sel(c, SR_FS);
    f->gs = ring3_sel(c, SR_GS);
    f->ss = ring3_sel(c, SR_SS);
    f->cs = c->seg[SR_CS].sel | 3;
    f->eip = c->bv->eip;
    f->eflags = (c->bv->eflags & BT_FLAGS_REAL) | (c->bv->vflags_sys & (EFLAGS_TF | EFLAGS_AC)) | EFLAGS_IF | EFLAGS_FIXED;
    c->resumed_in_row = 0;
    if (enter(c, &g, false) == WX_ENTRY_FAIL)
        return -1;
    return handle_ring3_trap(c);
}

/* ---------------------------------------------------------------- 7a. real mode */

/*
 * Real-mode guest code in virtual-8086 mode (vmm/realmode.h): CPL 3,
 * EFLAGS.VM = 1, IOPL 0, so every instruction that would touch the real
 * IF, the control registers, descriptor tables or ports faults to the
 * monitor (SDM Vol. 3A §20.2.7; the monitor's TSS has no I/O bitmap, so
 * every port faults too, §20.2.8.1). Linear addresses stop at 10FFEFh;
 * with paging off the shadow maps them 1:1 onto guest RAM (A20 applied),
 * so neither the monitor nor another guest is reachable. CR4.VME is 0
 * in hv86: INT n is then always a #GP (§20.3.3 Table 20-2).
 */
static int run_v86(struct vcpu *c)
{
    struct guest_frame g = { 0 };
    struct trap_frame *f = &g.tf;
    g.v86 = (struct v86_segs){ c->seg[SR_ES].sel, c->seg[SR_DS].sel, c->seg[SR_FS].sel, c->seg[SR_GS].sel };
    frame_gprs(f, c->bv->gpr);
    f->cs = c->seg[SR_CS].sel;
    f->ss = c->seg[SR_SS].sel;
    f->eip = c->bv->eip;
    f->eflags = (c->bv->eflags & BT_FLAGS_REAL) | EFLAGS_VM | EFLAGS_IF | EFLAGS_FIXED;
    c->v86_entries++;
    if (enter(c, &g, true) == WX_ENTRY_FAIL)
        return -1;
    /* What the guest did to its registers, segment registers included:
     * v86 code loads them itself (MOV Sreg, far JMP...), as real mode does. */
    const struct trap_frame *tf = &c->tf;
    const uint32_t sels[SR_N] = { [SR_ES] = c->v86.es, [SR_CS] = tf->cs, [SR_SS] = tf->ss,
                                  [SR_DS] = c->v86.ds, [SR_FS] = c->v86.fs, [SR_GS] = c->v86.gs };
    save_gprs(c->bv->gpr, tf);
    c->bv->eip = tf->eip;
    c->bv->eflags = tf->eflags & BT_FLAGS_REAL;
    for (int sr = 0; sr < SR_N; sr++) {
        if ((uint16_t)sels[sr] != c->seg[sr].sel || c->seg[sr].base != sels[sr] << 4) {
            rm_seg_load(&c->seg[sr], (uint16_t)sels[sr]);
            c->bv->sel[sr] = (uint16_t)sels[sr];
        }
    }
    if (is_irq_vector(tf->vector)) {
        account(c->vm, EXIT_IRQ);
        return 0;
    }
    return handle_guest_trap(c, true);
}

/* The A20 gate the devices show (port 0x92, the i8042's output port)
 * becomes the shadow pager's: translations made under the other gate map
 * other frames, so they go too. */
static int sync_a20(struct vcpu *c)
{
    bool on = vmdev_a20(c->vm);
    if (on == c->a20)
        return 0;
    c->a20 = on;
    tc_flush(&c->bt.tc);
    if (shadow_set_a20(&c->sh, on)) {
        vm_kill(c->vm, "out of shadow page tables switching the A20 gate");
        return -1;
    }
    thread_set_world(shadow_scr3(&c->sh), &c->sgdtr, 0);
    return 0;
}

/* Real mode (CR0.PE = 0) and 16-bit protected-mode code at CPL 0, which
 * the translator does not take (CS.D = 0): one stint. */
static int run_16bit(struct vcpu *c)
{
    const char *why;
    if (c->bv->cr[0] & CR0_PE) {
        c->rm_emulated++;
        return emu_step16(c);
    }
    switch (rm_engine_for(c->seg, c->bv->eip, &why)) {
    case RM_V86:
        return run_v86(c);
    case RM_EMULATE:
        c->rm_emulated++;
        return emu_step16(c);
    default:
        vm_kill(c->vm, "%s at %04x:%08x", why, c->seg[SR_CS].sel, c->bv->eip);
        return -1;
    }
}

/* ---------------------------------------------------------------- 7b. stepping */

#define DR7_RW_EXEC 0u     /* RWn = 00: instruction execution */

/* Armed execute breakpoint n matching the instruction at the guest EIP
 * (SDM Vol. 3B §17.2.4-17.2.5), or -1. RF suppresses it for one instruction. */
static int exec_breakpoint(const struct vcpu *c)
{
    uint32_t dr7 = c->dr[7], lin = c->seg[SR_CS].base + c->bv->eip;
    if (c->bv->vflags_sys & EFLAGS_RF)
        return -1;
    for (int n = 0; n < 4; n++)
        if (((dr7 >> (2 * n)) & 3) && ((dr7 >> (16 + 4 * n)) & 3) == DR7_RW_EXEC && c->dr[n] == lin)
            return n;
    return -1;
}

static bool dr7_exec_armed(const struct vcpu *c)
{
    for (int n = 0; n < 4; n++)
        if (((c->dr[7] >> (2 * n)) & 3) && ((c->dr[7] >> (16 + 4 * n)) & 3) == DR7_RW_EXEC)
            return true;
    return false;
}

static int run_bt_n(struct vcpu *c, uint32_t max_dispatch);

/*
 * Guest EFLAGS.TF or an execute breakpoint at CPL 0: translated code runs one
 * guest instruction per dispatch (the TC is flushed when stepping starts and
 * ends, so no longer block survives), breakpoints are checked before each
 * instruction (a fault, DR6.Bn) and TF set before an instruction traps after
 * it (DR6.BS). SDM Vol. 3B §17.3.1.
 */
static int run_step(struct vcpu *c)
{
    if (!c->stepping) {
        tc_flush(&c->bt.tc);
        c->stepping = true;
    }
    int bp = exec_breakpoint(c);
    if (bp >= 0) {
        c->dr[6] |= 1u << bp;
        return vcpu_exception(c, T_DB, -1) < 0 ? -1 : 0;
    }
    bool tf = c->bv->vflags_sys & EFLAGS_TF;
    uint32_t eip = c->bv->eip, exc = c->guest_exceptions, irqs = c->irqs_injected;
    c->bt.one_insn = true;
    c->bt.one_insn_eip = eip;
    int rc = run_bt_n(c, 1);
    if (rc < 0)
        return rc;
    c->bv->vflags_sys &= ~EFLAGS_RF;
    bool executed = c->bv->eip != eip && c->guest_exceptions == exc && c->irqs_injected == irqs;
    if (tf && executed) {
        c->dr[6] |= DR6_BS;
        return vcpu_exception(c, T_DB, -1) < 0 ? -1 : 0;
    }
    return 0;
}

static int run_bt(struct vcpu *c)
{
    if (c->stepping) { /* back to whole blocks: drop the one-instruction ones */
        tc_flush(&c->bt.tc);
        c->stepping = false;
    }
    return run_bt_n(c, 64);
}

struct tceip_req {
    const uint32_t *tca;
    uint32_t *eip;
    int *rc;
    unsigned n;
    volatile bool done;
};

/* The paused run loop's turn: answer vcpu_tc_guest_eips' request, if
 * any, with interrupts off (one CPU: the asking thread, which may give up
 * and free the request, never runs in the middle of it). */
static void tceip_answer(struct vcpu *c)
{
    uint32_t fl = read_eflags();
    cpu_cli();
    struct tceip_req *q = c->tceip;
    if (q) {
        for (unsigned i = 0; i < q->n; i++)
            q->rc[i] = tc_lookup_guest_eip(&c->bt.tc, q->tca[i], &q->eip[i]);
        c->tceip = NULL;
        q->done = true;
    }
    write_eflags(fl);
}

static int run_bt_n(struct vcpu *c, uint32_t max_dispatch)
{
    bool cpl3 = c->cpl != 0;
    if (c->bt.cpl3 != cpl3) { /* translations of one mode are wrong in the other (POPF) */
        tc_flush(&c->bt.tc);
        c->bt.cpl3 = cpl3;
    }
    /* Blocks are found by EIP alone, read through CS: under another CS base
     * the same EIP is other code, under another limit other faults. Linux
     * never changes them; a guest that does pays a flush. */
    if (c->seg[SR_CS].base != c->tc_cs_base || c->seg[SR_CS].limit != c->tc_cs_limit) {
        tc_flush(&c->bt.tc);
        c->tc_cs_base = c->seg[SR_CS].base;
        c->tc_cs_limit = c->seg[SR_CS].limit;
    }
    c->bt_trapped = false; /* bt_run may return without entering (IRQ window) */
    c->bv->invlpg_exit = shadow_unsync_active(&c->sh); /* only the monitor changes it */
    invlpg_skip_publish(c);
    int reason = bt_run(&c->bt, max_dispatch);
    c->bv->invlpg_skip = BT_INVLPG_SKIP_NONE; /* the monitor may fill sptes from now on */
    if (c->vm->stop_req)
        return -1;
    if (c->r3_trapped) { /* the translated SYSEXIT returned to ring 3, which then trapped */
        c->r3_trapped = false;
        return handle_ring3_trap(c);
    }
    if (reason == BT_EXIT_NONE)
        return 0;
    if (reason == BT_EXIT_BAD_DESC) { /* ring-1 code forged bt_vcpu.exit_desc */
        vm_kill(c->vm, "translated code left a forged exit descriptor %08x (guest eip %08x)",
                c->bt.exit->target, c->bv->eip);
        return -1;
    }
    if (c->bt_trapped)
        return handle_guest_trap(c, false);
    return emu_bt_exit(c, reason);
}

void vcpu_thread(void *arg)
{
    struct vm *vm = arg;
    struct vcpu *c = VCPU(vm);
    thread_set_local(c);
    thread_set_cr3(c->win.pd_hpa); /* the TC and shadow tables are in the window */
    uint64_t start = vm->cpu_ticks - thread_cpu_ticks(); /* CPU time of earlier runs carries on */
    while (!vm->stop_req) {
        if (c->sh_stale) { /* a host thread unshared pages while the VM was stopped */
            c->sh_stale = false;
            shadow_flush_all(&c->sh); /* enter() loads the new shadow_scr3 */
        }
        /* The scanner found pages to share (vmm/pshare.c). Not while a disk
         * read is in flight: the host controller writes the frames it was
         * given, which a merge would free (vmdev_dma_busy). */
        if (vm->mem.nreq && gmem_share_due(&vm->mem, timer_ticks()) && !vmdev_dma_busy(vm))
            gmem_share_apply(&vm->mem);
        if (vm->reset_req) /* the guest pulsed its reset line (vm_request_reset) */
            vm_reboot(vm);
        /* The lookup table ages: a target that missed goes to its second
         * slot when its first is taken, and a boot leaves the table full of
         * targets never looked up again, so returns that got hot later
         * paid the second probe at every lookup until the cache next
         * filled (the null system call's stressor: 6% more instructions
         * in translated code). Emptied once a second, the targets in use
         * come back at their next miss, to their first slot when free. */
        if (timer_ticks() - c->ibl_aged_at >= IBL_AGE_TICKS) {
            tc_ibl_reset(&c->bt.tc);
            c->ibl_aged_at = timer_ticks();
            c->ibl_ages++;
        }
        if (vm->pause_req) {
            tceip_answer(c);
            thread_sleep(10);
            continue;
        }
        if (inject_irq(c) < 0)
            break;
        if (c->halted) {
            account(vm, EXIT_HLT);
            halt_wait(c);
            continue;
        }
        /* CPL 3 runs directly unless it has IOPL 3: then cli/sti/popf must act
         * on the virtual IF, which only translation can give it (such a
         * process can do port I/O anyway: translating it costs no isolation). */
        bool direct = c->cpl == 3 && (c->bv->vflags_sys & EFLAGS_IOPL) != EFLAGS_IOPL;
        bool step = !direct && ((c->bv->vflags_sys & EFLAGS_TF) || dr7_exec_armed(c));
        bool code16 = !(c->bv->cr[0] & CR0_PE) || (c->cpl == 0 && !(c->seg[SR_CS].flags & DESC_FLAG_D));
        if (sync_a20(c) < 0)
            break;
        if (code16 || direct) /* ring 3 or 16-bit code may fill shadow entries before translated code runs */
            c->invlpg_dropped = BT_INVLPG_SKIP_NONE;
        int rc = code16 ? run_16bit(c) : direct ? run_ring3(c) : step ? run_step(c) : run_bt(c);
        if (rc < 0)
            break;
        vm->cpu_ticks = start + thread_cpu_ticks();
    }
    vm->cpu_ticks = start + thread_cpu_ticks();
    thread_set_world(paging_host_pd(), &host_gdtr, 0);
    thread_set_local(NULL);
}

int vcpu_tc_guest_eips(struct vm *vm, const uint32_t *tca, uint32_t *eip, int *rc, unsigned n)
{
    struct vcpu *c = VCPU(vm);
    if (!c || vm->state != VM_PAUSED || n > VCPU_TCEIP_MAX)
        return E_BUSY;
    struct tceip_req q = { tca, eip, rc, n, false };
    c->tceip = &q;
    for (unsigned waited = 0; !q.done; waited += 5) {
        if (waited >= 1000 || vm->state != VM_PAUSED) {
            c->tceip = NULL; /* one CPU: the vCPU thread is not inside tceip_answer now */
            return q.done ? 0 : E_TIMEOUT;
        }
        thread_sleep(5);
    }
    return 0;
}

uint64_t vcpu_monitor_us(struct vm *vm, unsigned cause)
{
    uint64_t per_us = clock_tsc_hz() / 1000000u;
    return cause <= EXIT_CAUSES && per_us ? VCPU(vm)->monitor_tsc[cause] / per_us : 0;
}

void vcpu_info(struct vm *vm, struct cmd_out *out)
{
    struct vcpu *c = VCPU(vm);
    uint32_t token = vmwin_enter(&c->win); /* c->bv is in the VM's window */
    const uint32_t *g = c->bv->gpr;
    struct shadow_stats ss;
    shadow_get_stats(&c->sh, &ss);
    cmd_printf(out, "EIP=%08x EFLAGS=%08x CPL=%u%s  CS=%04x SS=%04x DS=%04x ES=%04x FS=%04x GS=%04x\n",
               c->bv->eip, vcpu_eflags(c), c->cpl, c->halted ? " halted" : "", c->seg[SR_CS].sel,
               c->seg[SR_SS].sel, c->seg[SR_DS].sel, c->seg[SR_ES].sel, c->seg[SR_FS].sel, c->seg[SR_GS].sel);
    cmd_printf(out, "EAX=%08x EBX=%08x ECX=%08x EDX=%08x ESI=%08x EDI=%08x EBP=%08x ESP=%08x\n", g[0], g[3],
               g[1], g[2], g[6], g[7], g[5], g[4]);
    cmd_printf(out, "CR0=%08x CR2=%08x CR3=%08x CR4=%08x GDTR=%08x/%x IDTR=%08x/%x\n", c->bv->cr[0], c->bv->cr[2],
               c->bv->cr[3], c->bv->cr[4], c->bv->gdtr.base, c->bv->gdtr.limit, c->bv->idtr.base, c->bv->idtr.limit);
    cmd_printf(out, "translation cache: %u blocks translated (%u ahead of their first run), %u guest insns, "
               "%u dispatches, %u ibl misses (the lookup table emptied %u times, once a second)\n",
               c->bt.stats.translations, c->bt.stats.successors, c->bt.stats.insns, c->bt.stats.dispatches,
               c->bt.stats.ibl_misses, c->ibl_ages);
    cmd_printf(out, "  %u flushes, %u blocks invalidated by stores, %u chains, %u unchains, %u branch exits"
               " (%u of them and %u IBL misses to a block translated before)\n",
               c->bt.tc.stats.flushes, c->bt.tc.stats.invalidated, c->bt.tc.stats.chains, c->bt.tc.stats.unchains,
               c->bt.stats.branch_exits, c->bt.stats.branch_found, c->bt.stats.ibl_found);
    cmd_printf(out, "  %u of %u direct calls translated with their callee inline (%u instructions of callees,"
               " %u callees scanned)\n",
               c->bt.stats.inlined, c->bt.stats.calls, c->bt.stats.inlined_insns, c->bt.stats.inline_scans);
    const struct tc *tc = &c->bt.tc;
    cmd_printf(out, "  in use since the last flush: %u of %u blocks, code %u of %u KiB, exits and maps %u of %u KiB;"
               " %u copies of the lookup stub (%u placed since the VM started)\n",
               tc->nblocks, tc->max_blocks, tc->code_used >> 10, tc->code_size >> 10, tc->meta_used >> 10,
               tc->meta_size >> 10, tc->ibl_copies_live, tc->stats.ibl_copies);
    /* Ring-1 EIPs (CS covers the TC alone) of the stubs bt_init reserved at
     * the arena's start: bench/profile.py names its samples there by them. */
    uint32_t stubs = (uint32_t)(uintptr_t)tc->code - tc->cs_base;
    cmd_printf(out, "  stubs at ring-1 EIP %x-%x: lookup %x, exit routine %x, return to ring 3 %x, its IRET variant %x"
               " (prefault return %x)\n", stubs, stubs + tc->reserved, (uint32_t)(uintptr_t)c->bt.ibl_stub - tc->cs_base,
               c->bt.exit_sysenter_eip,
               c->bt.r3_stub ? (uint32_t)(uintptr_t)c->bt.r3_stub - tc->cs_base : 0,
               c->bt.r3_iret_stub ? (uint32_t)(uintptr_t)c->bt.r3_iret_stub - tc->cs_base : 0, c->bt.prefault_ret);
    uint64_t in_guest_ms = c->guest_tsc / (clock_tsc_hz() / 1000 ? clock_tsc_hz() / 1000 : 1);
    cmd_printf(out, "  %llu entries into the guest, %llu ms between entry and exit (world switches included)\n",
               (unsigned long long)c->entries, (unsigned long long)in_guest_ms);
    cmd_printf(out, "  %u instructions emulated ahead after segment loads and VERW\n", c->run_ahead);
    cmd_printf(out, "  %u returns to ring 3 by translated SYSEXIT without an exit (GDT page walked %u times)\n",
               c->r3_returns, c->gdtw_walks);
    cmd_printf(out, "  %u reads of IDT gates and of the TSS's ring-0 stack through a kept walk\n", c->sys_tlb_hits);
    cmd_printf(out, "  %u returns to ring 3 by translated IRET without an exit (%u filled the faulting page first)\n",
               c->r3_iret_returns, c->prefault_calls);
    cmd_printf(out, "  %u SYSENTERs from ring 3 into translated code without an exit\n", c->sysenter_in_world);
    cmd_printf(out, "  %u hidden page faults fixed without an exit\n", c->pf_in_world);
    cmd_printf(out, "  %u guest page faults of ring 3 given to the guest without an exit\n",
               c->pf_reflected_in_world);
    cmd_printf(out, "  16-bit code: %u stints in virtual-8086 mode, %u instructions emulated outside it; A20 %s\n",
               c->v86_entries, c->rm_emulated, c->a20 ? "open" : "closed");
    cmd_printf(out, "  exits by reason:");
    for (unsigned r = 0; r < BT_EXIT_COUNT; r++)
        if (c->exits_by_reason[r])
            cmd_printf(out, " %s %u", r ? bt_exit_name(r) : "trap", c->exits_by_reason[r]);
    cmd_printf(out, "\n");
    cmd_printf(out, "  exit requests from interrupts: %u left at an instruction boundary, %u at the block's end, "
               "%u from the lookup stub; %u host interrupts resumed user code without an exit\n",
               c->exit_req_boundary, c->exit_req_block, c->exit_req_lookup, c->irqs_resumed);
    cmd_printf(out, "shadow paging: %u pages, %u directories, %u hidden faults, %u reflected (%u prefaulted at the "
               "handler's return), %u neighbours prefetched, cr3 %u hits %u misses\n",
               ss.pages_in_use, ss.pds_in_use, ss.hidden_faults, ss.reflected_faults, ss.prefaulted, ss.prefetched,
               ss.cr3_hits, ss.cr3_misses);
    cmd_printf(out, "  %u tables shared between directories (%u of them linked as their directory was made), "
               "%u evicted for room\n", ss.pt_shares, ss.prelinks, ss.pt_evictions);
    cmd_printf(out, "  %u writable entries (of at most %u; %u made read-only to make room), %u onto shared frames, "
               "%u dropped by page sharing\n", ss.writable, c->sh.max_writable, ss.wr_reclaims, ss.shared_maps,
               ss.frame_zaps);
    cmd_printf(out, "  %u page-table stores emulated, %u tables let out of sync, %u resynced (%u entries dropped, "
               "%u filled), %u out of sync now; %u faulting pages dropped for the handler's INVLPG\n", ss.pt_writes,
               ss.unsyncs, ss.resyncs, ss.resync_zaps, ss.resync_fills, shadow_unsync_count(&c->sh), c->invlpg_skipped);
    cmd_printf(out, "interrupts injected: %u, guest exceptions: %u, stores into translated code: %u (%u emulated "
               "dropping only the translations they met, %u pages given back to native stores), "
               "stale translations dropped at an exit: %u\n",
               c->irqs_injected, c->guest_exceptions, c->smc_writes, c->smc_ranged, c->smc_unprotects,
               c->stale_exits);
    cmd_printf(out, "  %u REP MOVS/STOS given back to the CPU once their stores reached plain RAM\n",
               c->strings_resumed);
    cmd_printf(out, "  page tables mapping translated code: %u code frames watched, %u dropped by stores into "
               "their tables, %u not watched (list full)\n", c->nwatch, c->watch_drops, c->watch_full);
    vmwin_leave(token);
}
