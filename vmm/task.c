/*
 * Hardware task switches of the guest (vmm/task.h).
 *
 * Map:
 *   1. the 32-bit TSS in guest memory: its layout, reading it, busy bits
 *   2. the checks before the commit point and the old task's state saved
 *   3. the new task's state loaded, with its faults in the new task
 *   4. the entry points: a task gate's target, a switch, IRET's task return
 *
 * Trust: the TSSs, their descriptors and the task gates are guest memory
 * and may hold anything. Every access to them is a guest linear access
 * through the guest's own paging (vmem_read/vmem_write), so a TSS placed
 * at the monitor's addresses only reads and writes guest memory (or floats
 * on an unbacked gpa); nothing here addresses host memory. The state a TSS
 * loads goes through the same paths as the instructions that load it
 * singly: segment registers through vcpu_load_seg (their shadows, made at
 * the next entry by load_alias, end below MONITOR_BASE whatever the
 * descriptor says), LDTR through vcpu_load_ldt, CR3 through the shadow
 * pager (a CR3 that points at no RAM gives a guest that faults or is
 * stopped when its tables are walked: shadow_why). A new task the monitor
 * cannot run (ring 1 or 2, virtual-8086 mode, a 16-bit TSS) stops the VM
 * with that reason. A guest gains nothing by lying here but its own
 * faults.
 *
 * Not modelled: the TSS's debug trap bit T (no #DB after the switch); the
 * EXT bit of error codes, as elsewhere in hv86; TR's base and limit are
 * re-read from the guest's GDT when used, as for the ring-0 stack and the
 * I/O bitmap, instead of being cached at the switch.
 * Sources: Intel SDM Vol. 3A §7.2-7.4, Table 7-1 (exceptions of a task
 * switch), Table 7-2 (busy, NT and link); Vol. 2A JMP, CALL, INT n, IRET.
 */
#include "vmm/task.h"
#include "vmm/vcpu_priv.h"
#include "kernel/kernel.h"

/* ---------------------------------------------------------------- 1. the TSS */

/* 32-bit TSS fields (SDM Vol. 3A Figure 7-2), byte offsets. */
#define TSS_LINK   0x00
#define TSS_CR3    0x1C
#define TSS_EIP    0x20
#define TSS_EFLAGS 0x24
#define TSS_GPR    0x28 /* EAX ECX EDX EBX ESP EBP ESI EDI */
#define TSS_SREG   0x48 /* ES CS SS DS FS GS, one dword each, selector in the low word */
#define TSS_LDT    0x60
#define TSS32_SIZE 0x68
/* A new TSS must reach its I/O map base word (limit >= 67h, §7.2.2); the
 * old one only needs room for the state saved into it (up to GS). */
#define TSS32_MIN_LIMIT  0x67u
#define TSS32_SAVE_LIMIT 0x5Fu
#define TSS_TYPE_BUSY    0x2 /* the B bit of a TSS descriptor's type */
#define DR7_LOCAL_ENABLES 0x155u /* L0-L3 and LE: cleared by a task switch (Vol. 3B §17.2.4) */

/* The dynamic fields of a 32-bit TSS, as read from guest memory. */
struct tss_state {
    uint32_t cr3, eip, eflags, gpr[8];
    uint16_t sel[SR_N], ldt;
};

static uint32_t rd32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint16_t rd16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }

/* The new task's TSS at linear base (limit checked). 0, 1 (#PF injected),
 * <0 (stopped). */
static int tss_read(struct vcpu *c, uint32_t base, struct tss_state *t)
{
    uint8_t b[TSS32_SIZE];
    int rc = vmem_read(c, base, b, sizeof(b), 0);
    if (rc)
        return rc;
    t->cr3 = rd32(b + TSS_CR3);
    t->eip = rd32(b + TSS_EIP);
    t->eflags = rd32(b + TSS_EFLAGS);
    for (unsigned i = 0; i < 8; i++)
        t->gpr[i] = rd32(b + TSS_GPR + 4 * i);
    for (unsigned sr = 0; sr < SR_N; sr++)
        t->sel[sr] = rd16(b + TSS_SREG + 4 * sr);
    t->ldt = rd16(b + TSS_LDT);
    return 0;
}

/* Set or clear the busy bit of the TSS descriptor GDT selector sel names,
 * in the guest's GDT (the CPU's locked read-modify-write of the type
 * byte, §7.2.2), and keep the shadow GDT's view of that entry current. */
static int set_busy(struct vcpu *c, uint16_t sel, bool busy)
{
    uint32_t at = c->bv->gdtr.base + (sel & ~7u) + 5;
    uint8_t acc;
    int rc = vmem_read(c, at, &acc, 1, 0);
    if (rc)
        return rc;
    acc = busy ? (uint8_t)(acc | TSS_TYPE_BUSY) : (uint8_t)(acc & ~TSS_TYPE_BUSY);
    if ((rc = vmem_write(c, at, &acc, 1, 0)))
        return rc;
    vcpu_sync_gdt_entry(c, sel >> 3);
    return 0;
}

/* switch_precommit's result when a vmem access injected a #PF into the
 * old task (the switch ends there, as on the CPU). */
#define TASK_INJECTED 2

/* The result of a vmem access that may have injected a fault: 0 if it did
 * and the VM lives, <0 if the VM is stopping. */
static int injected(struct vcpu *c, int rc) { return rc < 0 || c->vm->stop_req ? -1 : 0; }

static int fault(struct task_fault *f, unsigned vector, uint32_t err)
{
    f->vector = vector;
    f->err = err & ~3u;
    return TASK_FAULT;
}

/* ---------------------------------------------------------------- 2. before the commit point */

/* The old task's dynamic state into its TSS at base (§7.3 step 7): EIP,
 * EFLAGS (NT cleared for IRET), general registers, segment selectors.
 * The static fields (CR3, LDT, stacks, link) are not written. */
static int save_old(struct vcpu *c, uint32_t base, uint32_t eip, enum task_source src)
{
    uint32_t d[10] = { eip, vcpu_eflags(c) };
    if (src == TASK_IRET)
        d[1] &= ~EFLAGS_NT;
    memcpy(&d[2], c->bv->gpr, 8 * 4);
    int rc = vmem_write(c, base + TSS_EIP, d, sizeof(d), 0);
    for (unsigned sr = 0; sr < SR_N && !rc; sr++)
        rc = vmem_write(c, base + TSS_SREG + 4 * sr, &c->seg[sr].sel, 2, 0);
    return rc;
}

/* ---------------------------------------------------------------- 3. the new task's state */

/* A post-commit fault (§7.3: "in the context of the new task"): 1 when
 * delivered, <0 if that stopped the VM. */
static int new_task_fault(struct vcpu *c, unsigned vector, uint16_t sel)
{
    return vcpu_exception(c, vector, sel & ~3u) < 0 ? -1 : 1;
}

/* The descriptor a task's segment selector names, or false (#TS): GDT or
 * LDT, within the limit, not one of the monitor's GDT slots. */
static bool task_desc(struct vcpu *c, uint16_t sel, uint64_t *d)
{
    return !vcpu_read_desc(c, sel, d) && ((sel & 4) || (sel >> 3) < GDT_MONITOR_FIRST);
}

/* LDTR from the new TSS (Table 7-1: #TS(LDT) for a selector in the LDT,
 * beyond the GDT, not an LDT, or not present). 0, or a fault's result. */
static int load_ldtr(struct vcpu *c, uint16_t sel)
{
    uint64_t d;
    if (sel & ~3u) {
        if ((sel & 4) || !task_desc(c, sel, &d) || (desc_access(d) & (DESC_S | 0xF)) != 0x2 ||
            !(desc_access(d) & DESC_P))
            return new_task_fault(c, T_TS, sel);
    }
    return vcpu_load_ldt(c, sel);
}

/* SS from the new TSS at CPL cpl (Table 7-1): a writable data segment
 * (#TS), present (#SS), DPL = CPL = RPL (#TS); a null SS is #TS(0). */
static int check_ss(struct vcpu *c, uint16_t sel, unsigned cpl)
{
    uint64_t d;
    if (!(sel & ~3u))
        return new_task_fault(c, T_TS, 0);
    uint8_t acc = task_desc(c, sel, &d) ? desc_access(d) : 0;
    if (!(acc & DESC_S) || (acc & DESC_CODE) || !(acc & DESC_WRITABLE))
        return new_task_fault(c, T_TS, sel);
    if (!(acc & DESC_P))
        return new_task_fault(c, T_SS, sel);
    if (DESC_DPL(acc) != cpl || (sel & 3u) != cpl)
        return new_task_fault(c, T_TS, sel);
    return 0;
}

/* DS, ES, FS, GS from the new TSS (Table 7-1): null is fine; else data or
 * readable code (#TS), DPL >= CPL and RPL unless conforming code (#TS),
 * present (#NP). */
static int check_data(struct vcpu *c, uint16_t sel, unsigned cpl)
{
    uint64_t d;
    if (!(sel & ~3u))
        return 0;
    uint8_t acc = task_desc(c, sel, &d) ? desc_access(d) : 0;
    bool code = acc & DESC_CODE;
    if (!(acc & DESC_S) || (code && !(acc & DESC_WRITABLE)))
        return new_task_fault(c, T_TS, sel);
    if ((!code || !(acc & DESC_CONFORM)) && (DESC_DPL(acc) < cpl || DESC_DPL(acc) < (sel & 3u)))
        return new_task_fault(c, T_TS, sel);
    if (!(acc & DESC_P))
        return new_task_fault(c, T_NP, sel);
    return 0;
}

/* CS from the new TSS (Table 7-1): code (#TS), nonconforming with DPL =
 * RPL or conforming with DPL <= RPL (#TS), present (#NP). */
static int check_cs(struct vcpu *c, uint16_t sel)
{
    uint64_t d;
    if (!(sel & ~3u))
        return new_task_fault(c, T_TS, 0);
    uint8_t acc = task_desc(c, sel, &d) ? desc_access(d) : 0;
    unsigned dpl = DESC_DPL(acc), rpl = sel & 3u;
    if (!(acc & DESC_S) || !(acc & DESC_CODE) || ((acc & DESC_CONFORM) ? dpl > rpl : dpl != rpl))
        return new_task_fault(c, T_TS, sel);
    if (!(acc & DESC_P))
        return new_task_fault(c, T_NP, sel);
    return 0;
}

/* Load segment register sr after its check passed; the accessed-bit
 * write may #PF (injected: 1). */
static int load_checked(struct vcpu *c, int sr, uint16_t sel)
{
    if (!(sel & ~3u)) {
        c->seg[sr] = (struct vseg){ .sel = sel };
        c->bv->sel[sr] = sel;
        return 0;
    }
    return vcpu_load_seg(c, sr, sel);
}

/* The new task's segment registers, in Bochs' order (SS, DS, ES, FS, GS,
 * CS; the SDM leaves the order open). Every register first holds its new
 * selector with an unusable cache, as after a fault part way. The checks
 * run at the new CPL (CS's RPL); SS's with CPL 3 in force, so that a fault
 * on it is delivered on the new TSS's ring-0 stack (what Bochs does: the
 * task has no stack yet). 0 loaded, 1 a fault delivered, <0 stopped. */
static int load_segments(struct vcpu *c, const struct tss_state *t, unsigned old_cpl)
{
    static const int order[] = { SR_DS, SR_ES, SR_FS, SR_GS };
    unsigned cpl = t->sel[SR_CS] & 3u;
    int rc;
    for (int sr = 0; sr < SR_N; sr++) {
        c->seg[sr] = (struct vseg){ .sel = t->sel[sr] };
        c->bv->sel[sr] = t->sel[sr];
    }
    vcpu_set_cpl(c, 3);
    if ((rc = check_ss(c, t->sel[SR_SS], cpl)))
        return rc;
    vcpu_set_cpl(c, cpl);
    if ((rc = load_checked(c, SR_SS, t->sel[SR_SS])))
        return rc;
    vcpu_set_cpl(c, old_cpl);
    for (unsigned i = 0; i < ARRAY_SIZE(order); i++) {
        if ((rc = check_data(c, t->sel[order[i]], cpl)))
            return rc;
        vcpu_set_cpl(c, cpl);
        rc = load_checked(c, order[i], t->sel[order[i]]);
        vcpu_set_cpl(c, old_cpl);
        if (rc)
            return rc;
    }
    if ((rc = check_cs(c, t->sel[SR_CS])))
        return rc;
    vcpu_set_cpl(c, cpl);
    return load_checked(c, SR_CS, t->sel[SR_CS]);
}

/* Push the error code of the exception that switched tasks on the new
 * task's stack (Vol. 2A INT "TASK-GATE"). 0, 1 (#PF), <0. */
static int push_error_code(struct vcpu *c, uint32_t err)
{
    uint32_t esp = c->bv->gpr[4] - 4;
    int rc = vmem_write(c, c->seg[SR_SS].base + esp, &err, 4, c->cpl == 3 ? PF_U : 0);
    if (!rc)
        c->bv->gpr[4] = esp;
    return rc;
}

/* After the commit point: load the new task (§7.3 steps 10-11). */
static int load_new(struct vcpu *c, uint16_t sel, const struct tss_state *t, enum task_source src, int err)
{
    unsigned old_cpl = c->cpl, cpl = t->sel[SR_CS] & 3u;
    uint32_t fl = t->eflags;
    if (src == TASK_CALL || src == TASK_INT)
        fl |= EFLAGS_NT;
    if (fl & EFLAGS_VM) {
        vm_kill(c->vm, "task switch to TSS %04x: virtual-8086 mode is not supported", sel);
        return -1;
    }
    if (cpl == 1 || cpl == 2) {
        vm_kill(c->vm, "task switch to TSS %04x with CS %04x: guests may use rings 0 and 3 only", sel,
                t->sel[SR_CS]);
        return -1;
    }
    c->bv->tr = sel;
    c->bv->cr[0] |= CR0_TS;
    c->dr[7] &= ~DR7_LOCAL_ENABLES;
    c->bv->eip = t->eip;
    memcpy(c->bv->gpr, t->gpr, sizeof(t->gpr));
    vcpu_set_eflags(c, fl, true);
    if (c->bv->cr[0] & CR0_PG) {
        c->bv->cr[3] = t->cr3;
        if (shadow_set_cr3(&c->sh, t->cr3)) {
            vm_kill(c->vm, "task switch to TSS %04x: out of shadow page tables", sel);
            return -1;
        }
        thread_set_world(shadow_scr3(&c->sh), &c->sgdtr, 0);
    }
    int rc = load_ldtr(c, t->ldt);
    if (!rc)
        rc = load_segments(c, t, old_cpl);
    if (!rc && err >= 0)
        rc = push_error_code(c, (uint32_t)err);
    if (!rc && c->bv->eip > c->seg[SR_CS].limit)
        rc = vcpu_exception(c, T_GP, 0) < 0 ? -1 : 1;
    return rc < 0 || c->vm->stop_req ? -1 : 0;
}

/* ---------------------------------------------------------------- 4. entry points */

/* The old TSS: TR's descriptor in the GDT (base, limit), or none. */
static bool old_tss(struct vcpu *c, uint32_t *base, uint32_t *limit)
{
    uint64_t d;
    if (!(c->bv->tr & ~3u) || vcpu_read_desc(c, (uint16_t)(c->bv->tr & ~7u), &d))
        return false;
    *base = desc_base_of(d);
    *limit = desc_limit_bytes(d);
    return true;
}

/* §7.3 steps 2-9 up to the commit point; the caller made step 1. */
static int switch_precommit(struct vcpu *c, uint16_t sel, uint64_t d, enum task_source src, uint32_t ret_eip,
                            struct tss_state *t, struct task_fault *f)
{
    uint32_t nbase = desc_base_of(d), obase = 0, olimit = 0;
    unsigned type = desc_access(d) & 0xF;
    if (desc_limit_bytes(d) < TSS32_MIN_LIMIT)
        return fault(f, T_TS, sel);
    if (!old_tss(c, &obase, &olimit) || olimit < TSS32_SAVE_LIMIT)
        return fault(f, T_TS, c->bv->tr);
    if (type == SYS_TSS16_AVAIL || type == SYS_TSS16_BUSY) {
        vm_kill(c->vm, "task switch to 16-bit TSS %04x: only 32-bit TSSs are supported", sel);
        return -1;
    }
    int rc = tss_read(c, nbase, t);
    if (!rc && (src == TASK_JMP || src == TASK_IRET))
        rc = set_busy(c, c->bv->tr, false);
    if (!rc)
        rc = save_old(c, obase, ret_eip, src);
    if (!rc && (src == TASK_CALL || src == TASK_INT))
        rc = vmem_write(c, nbase + TSS_LINK, &c->bv->tr, 2, 0);
    if (!rc && src != TASK_IRET)
        rc = set_busy(c, sel, true);
    if (rc)
        return injected(c, rc) < 0 ? -1 : TASK_INJECTED;
    return 0;
}

int task_switch(struct vcpu *c, uint16_t sel, uint64_t d, enum task_source src, uint32_t ret_eip, int err,
                struct task_fault *f)
{
    struct tss_state t;
    /* While an event is delivered through a task gate, a page fault on a
     * TSS is a fault during delivery: the VM stops (vcpu_deliver). */
    if (src == TASK_INT)
        c->deliver_depth++;
    int rc = switch_precommit(c, sel, d, src, ret_eip, &t, f);
    if (src == TASK_INT)
        c->deliver_depth--;
    if (rc == TASK_INJECTED)
        return 0; /* a #PF on a TSS or the GDT, taken by the old task */
    if (rc)
        return rc;
    log_debug("vm %s: task switch %04x -> %04x (%s) eip %08x", c->vm->name, c->bv->tr, sel,
              src == TASK_JMP ? "jmp" : src == TASK_CALL ? "call" : src == TASK_INT ? "gate" : "iret", t.eip);
    return load_new(c, sel, &t, src, err);
}

int task_gate_target(struct vcpu *c, uint16_t tss_sel, uint64_t *d, struct task_fault *f)
{
    if ((tss_sel & 4) || !(tss_sel & ~3u) || vcpu_read_desc(c, tss_sel, d))
        return fault(f, T_GP, tss_sel);
    uint8_t acc = desc_access(*d), type = acc & 0xF;
    if ((acc & DESC_S) || (type != SYS_TSS32_AVAIL && type != SYS_TSS16_AVAIL))
        return fault(f, T_GP, tss_sel); /* not a TSS, or busy */
    if (!(acc & DESC_P))
        return fault(f, T_NP, tss_sel);
    return 0;
}

int task_return(struct vcpu *c, uint32_t ret_eip)
{
    uint32_t obase, olimit;
    uint16_t link = 0;
    uint64_t d;
    struct task_fault f;
    if (!old_tss(c, &obase, &olimit))
        return vcpu_exception(c, T_TS, c->bv->tr & ~3u) < 0 ? -1 : 0;
    int rc = vmem_read(c, obase + TSS_LINK, &link, 2, 0);
    if (rc)
        return injected(c, rc);
    uint8_t acc = (link & 4) || !(link & ~3u) || vcpu_read_desc(c, link, &d) ? 0 : desc_access(d);
    uint8_t type = acc & 0xF;
    if ((acc & DESC_S) || (type != SYS_TSS32_BUSY && type != SYS_TSS16_BUSY))
        return vcpu_exception(c, T_TS, link & ~3u) < 0 ? -1 : 0;
    if (!(acc & DESC_P))
        return vcpu_exception(c, T_NP, link & ~3u) < 0 ? -1 : 0;
    rc = task_switch(c, link, d, TASK_IRET, ret_eip, -1, &f);
    if (rc == TASK_FAULT)
        return vcpu_exception(c, f.vector, (int)f.err) < 0 ? -1 : 0;
    return rc;
}
