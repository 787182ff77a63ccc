/*
 * Trap-and-emulate for the vCPU: what the translator hands back to the
 * monitor (enum bt_exit_reason), #GP from directly executed user code, and
 * guest accesses the shadow cannot map (monitor range, page-table stores).
 *
 * Map:
 *   1. operand plumbing: fetch+decode at the guest EIP, registers, effective
 *      addresses, memory operands
 *   2. one handler per exit reason, dispatched from emu_bt_exit()
 *   3. privilege transitions: IRET, far transfers, SYSENTER/SYSEXIT, INT n
 * Each handler returns 0 to go on (guest EIP advanced or an exception
 * injected) or a negative value after vm_kill(): a guest doing something we
 * do not emulate is stopped with the instruction's name, never the host.
 * Sources: Intel SDM Vol. 2 (instruction pages), Vol. 3A §5.8 (control
 * transfers), §6.12 (INT/IRET), §5.8.7 (SYSENTER/SYSEXIT).
 */
#include "vmm/vcpu_priv.h"
#include "kernel/clock.h"
#include "kernel/kernel.h"
#include "kernel/layout.h"
#include "vmm/vmdev.h"
#include "vmm/cpuid.h"
#include "vmm/hostexec.h"
#include "vmm/task.h"
#include "vmm/realmode.h"


/* ---------------------------------------------------------------- 1. operands */

/* The default operand and address size of the guest's code: CS.D, which
 * is 0 in real mode and in 16-bit protected-mode code (SDM Vol. 3A §3.4.5). */
static enum dec_mode code_mode(const struct vcpu *c)
{
    return (c->seg[SR_CS].flags & DESC_FLAG_D) ? DEC_MODE_32 : DEC_MODE_16;
}

/* Fetch and decode the instruction at the guest's CS:EIP; its bytes are
 * left in buf (16 bytes: as many as were readable, the rest as they were).
 * The bytes past a page boundary are read only if that page translates: an
 * instruction that ends before it decodes without them, and only one that
 * runs into it takes the #PF (at the first byte of that page), as on
 * hardware. An encoding longer than 15 bytes is #GP(0), an invalid one #UD
 * (SDM Vol. 2A §2.3.11). Returns 0, 1 (exception injected), <0 (killed). */
static int fetch_decode_bytes(struct vcpu *c, struct dec_insn *in, uint8_t buf[16])
{
    uint32_t lin = c->seg[SR_CS].base + c->bv->eip, kind = c->cpl == 3 ? PF_U : 0;
    uint32_t n = 0, gpa, err;
    while (n < 16) {
        uint32_t chunk = MIN(16u - n, PAGE_SIZE - ((lin + n) & (PAGE_SIZE - 1)));
        if (n && shadow_mapped(&c->sh, lin + n, kind, &gpa) != 0 &&
            shadow_guest_translate(&c->sh, lin + n, kind, false, &gpa, &err) != 0)
            break; /* decode what there is; vmem_read below faults if it is needed */
        int rc = vmem_read(c, lin + n, buf + n, chunk, kind);
        if (rc)
            return rc;
        n += chunk;
    }
    enum dec_mode mode = code_mode(c);
    /* The same bytes at the same EIP in the same mode decode the same: a
     * decoder reads no byte past the instruction's length. */
    struct dec_memo *m = &c->dec_memo[(c->bv->eip ^ (c->bv->eip >> 7)) & (DEC_MEMO - 1)];
    if (m->in.len && m->in.addr == c->bv->eip && m->in.mode == mode && m->in.len <= n &&
        !memcmp(m->bytes, buf, m->in.len)) {
        *in = m->in;
        return 0;
    }
    int len = dec_decode(buf, n, c->bv->eip, mode, in);
    if (len == DEC_ERR_TRUNCATED && n < 16) { /* needs the next page: read it, or take its #PF */
        int rc = vmem_read(c, lin + n, buf + n, 16 - n, kind);
        if (rc)
            return rc;
        len = dec_decode(buf, 16, c->bv->eip, mode, in);
    }
    if (len <= 0) {
        vcpu_exception(c, len == DEC_ERR_TOO_LONG ? T_GP : T_UD, len == DEC_ERR_TOO_LONG ? 0 : -1);
        return 1;
    }
    m->in = *in;
    memcpy(m->bytes, buf, (uint32_t)len);
    return 0;
}

static int fetch_decode(struct vcpu *c, struct dec_insn *in)
{
    uint8_t buf[16];
    return fetch_decode_bytes(c, in, buf);
}

static uint32_t reg_read(const struct vcpu *c, unsigned r)
{
    const uint32_t *g = c->bv->gpr;
    if (r >= DEC_REG_EAX && r <= DEC_REG_EDI)
        return g[r - DEC_REG_EAX];
    if (r >= DEC_REG_AX && r <= DEC_REG_DI)
        return g[r - DEC_REG_AX] & 0xFFFF;
    if (r >= DEC_REG_AL && r <= DEC_REG_BL)
        return g[r - DEC_REG_AL] & 0xFF;
    if (r >= DEC_REG_AH && r <= DEC_REG_BH)
        return (g[r - DEC_REG_AH] >> 8) & 0xFF;
    if (r >= DEC_REG_ES && r <= DEC_REG_GS)
        return c->seg[r - DEC_REG_ES].sel;
    return 0;
}

static void reg_write(struct vcpu *c, unsigned r, uint32_t v)
{
    uint32_t *g = c->bv->gpr;
    if (r >= DEC_REG_EAX && r <= DEC_REG_EDI)
        g[r - DEC_REG_EAX] = v;
    else if (r >= DEC_REG_AX && r <= DEC_REG_DI)
        g[r - DEC_REG_AX] = (g[r - DEC_REG_AX] & 0xFFFF0000u) | (v & 0xFFFF);
    else if (r >= DEC_REG_AL && r <= DEC_REG_BL)
        g[r - DEC_REG_AL] = (g[r - DEC_REG_AL] & 0xFFFFFF00u) | (v & 0xFF);
    else if (r >= DEC_REG_AH && r <= DEC_REG_BH)
        g[r - DEC_REG_AH] = (g[r - DEC_REG_AH] & 0xFFFF00FFu) | ((v & 0xFF) << 8);
}

/* Offset of the memory operand in its segment (SDM Vol. 1 §3.7.5). */
static uint32_t ea_offset(const struct vcpu *c, const struct dec_insn *in)
{
    uint32_t off = (uint32_t)in->mem.disp;
    if (in->mem.base)
        off += reg_read(c, in->mem.base);
    if (in->mem.index)
        off += reg_read(c, in->mem.index) * in->mem.scale;
    if (in->addrsize == 2)
        off &= 0xFFFF;
    return off;
}

/* The segment register (enum sr) of the memory operand: DS when the
 * decoder named none (no memory operand: a caller's bug, never an index
 * outside c->seg). */
static unsigned mem_sr(const struct dec_insn *in)
{
    return in->mem.seg >= DEC_REG_ES && in->mem.seg <= DEC_REG_GS ? in->mem.seg - DEC_REG_ES : SR_DS;
}

/* Linear address of the memory operand. */
static uint32_t ea_linear(const struct vcpu *c, const struct dec_insn *in)
{
    return c->seg[mem_sr(in)].base + ea_offset(c, in);
}

static uint32_t user_kind(const struct vcpu *c) { return c->cpl == 3 ? PF_U : 0; }

static int seg_check(struct vcpu *c, unsigned sr, uint32_t off, uint32_t size, bool write);

/* size bytes at the memory operand's offset + disp, read into or written
 * from buf, after the guest's own segment check (limit, type, null: #GP(0),
 * #SS(0) through SS; SDM Vol. 3A §5.3) that hardware makes before any
 * access: the shadow segments only ever narrow it, and what the monitor
 * emulates never ran on them. Returns 0, 1 (fault injected), <0 (killed). */
static int mem_rw(struct vcpu *c, const struct dec_insn *in, uint32_t disp, void *buf, uint32_t size, bool write)
{
    unsigned sr = mem_sr(in);
    uint32_t off = ea_offset(c, in) + disp;
    if (in->addrsize == 2) /* a16: the later parts of a far pointer or descriptor wrap at 64 KiB, as on Bochs */
        off &= 0xFFFF;
    int rc = seg_check(c, sr, off, size, write);
    if (rc)
        return rc;
    uint32_t lin = c->seg[sr].base + off;
    return write ? vmem_write(c, lin, buf, size, user_kind(c)) : vmem_read(c, lin, buf, size, user_kind(c));
}

/* The read of a read-modify-write operand (XCHG, ADD m,r ...): checked as
 * the write it leads to, segment and paging, so that a fault is the one
 * hardware reports for it (#PF with W set in the error code). */
static int mem_read_for_write(struct vcpu *c, const struct dec_insn *in, uint32_t *v, uint32_t size)
{
    unsigned sr = mem_sr(in);
    uint32_t off = ea_offset(c, in);
    int rc = seg_check(c, sr, off, size, true);
    if (rc)
        return rc;
    *v = 0;
    return vmem_read(c, c->seg[sr].base + off, v, size, user_kind(c) | PF_W);
}

static bool is_bt(unsigned m) { return m == DEC_M_BT || m == DEC_M_BTS || m == DEC_M_BTR || m == DEC_M_BTC; }

/* The offset of the word or dword BT/BTS/BTR/BTC m, r touches: the bit
 * offset in the register is signed and selects a unit beyond the operand,
 * EA + 4 * (offset SAR 5), or EA + 2 * (offset SAR 4) for 16 bits, wrapped
 * to the address size (SDM Vol. 2A BT "bit offset operand"; Bochs 2.7
 * BT_EdGdM). With an immediate bit offset it is the operand's own. */
static uint32_t bt_offset(const struct vcpu *c, const struct dec_insn *in)
{
    uint32_t off = ea_offset(c, in);
    if (in->ops[1].kind == DEC_OP_REG) {
        uint32_t r = reg_read(c, in->ops[1].reg);
        int32_t units = in->ops[0].size == 2 ? (int16_t)r >> 4 : (int32_t)r >> 5;
        off += (uint32_t)units * in->ops[0].size;
    }
    return in->addrsize == 2 ? off & 0xFFFF : off;
}

/* Read/write operand i (register or memory) of size bytes. 0 ok, 1 fault injected, <0 killed. */

static int op_read(struct vcpu *c, const struct dec_insn *in, int i, uint32_t *v)
{
    const struct dec_operand *op = &in->ops[i];
    if (op->kind == DEC_OP_REG) {
        *v = reg_read(c, op->reg);
        return 0;
    }
    if (op->kind == DEC_OP_IMM) {
        *v = op->imm;
        return 0;
    }
    *v = 0;
    return mem_rw(c, in, 0, v, op->size, false);
}

static int op_write(struct vcpu *c, const struct dec_insn *in, int i, uint32_t v)
{
    const struct dec_operand *op = &in->ops[i];
    if (op->kind == DEC_OP_REG) {
        reg_write(c, op->reg, v);
        return 0;
    }
    return mem_rw(c, in, 0, &v, op->size, true);
}

/* Operand i of a read-modify-write instruction: a memory operand is read
 * with write intent (mem_read_for_write), a register as it is. */
static int op_read_rmw(struct vcpu *c, const struct dec_insn *in, int i, uint32_t *v)
{
    if (in->ops[i].kind == DEC_OP_MEM)
        return mem_read_for_write(c, in, v, in->ops[i].size);
    return op_read(c, in, i, v);
}

static int unsupported(struct vcpu *c, const struct dec_insn *in, const char *why)
{
    vm_kill(c->vm, "%s: %s at eip %08x", why, dec_mnemonic_name(in->mnemonic), c->bv->eip);
    return -1;
}

static int next(struct vcpu *c, const struct dec_insn *in)
{
    c->bv->eip += in->len;
    return 0;
}

/* Inject exception vector with error code err; the emulated instruction
 * then does nothing more (0), or the VM was stopped (-1). */
static int raise(struct vcpu *c, unsigned vector, int err)
{
    return vcpu_exception(c, vector, err) < 0 ? -1 : 0;
}

/* The result of a helper that may have injected an exception. */
#define TRY(x)                              \
    do {                                    \
        int rc_ = (x);                      \
        if (rc_)                            \
            return rc_ < 0 ? rc_ : 0;       \
    } while (0)

/* ---------------------------------------------------------------- 2. handlers */

/* CPL <= IOPL, or else every bit for the port's bytes clear in the guest
 * TSS's I/O permission bitmap (SDM Vol. 1 §19.5.2). */
static bool io_allowed(struct vcpu *c, uint16_t port, unsigned size)
{
    if (c->cpl <= ((c->bv->vflags_sys & EFLAGS_IOPL) >> 12))
        return true;
    uint64_t tssd = 0;
    if (vcpu_read_desc(c, (uint16_t)(c->bv->tr & ~7u), &tssd))
        return false;
    uint32_t base = desc_base_of(tssd), limit = desc_limit_bytes(tssd);
    uint16_t iomap = 0, bits = 0;
    if (limit < 0x67 || vmem_read(c, base + 0x66, &iomap, 2, 0))
        return false;
    uint32_t at = iomap + port / 8u;
    if (at + 1 > limit || vmem_read(c, base + at, &bits, 2, 0))
        return false;
    return !((bits >> (port % 8)) & ((1u << size) - 1));
}

/* One INS/OUTS element: ESI or EDI stepped, ECX counted down under REP.
 * Returns 0, 1 (a fault was injected: nothing stepped) or <0 (VM stopped). */
static int io_element(struct vcpu *c, const struct dec_insn *in, uint16_t port, unsigned size, bool is_out,
                      int32_t step)
{
    uint32_t *gpr = c->bv->gpr, v = 0;
    int rc;
    if (is_out) {
        if ((rc = vmem_read(c, c->seg[mem_sr(in)].base + gpr[6], &v, size, user_kind(c))) != 0)
            return rc;
        vmdev_out(c->vm, port, size, v);
        gpr[6] += (uint32_t)step;
    } else {
        vmdev_in(c->vm, port, size, &v);
        if ((rc = vmem_write(c, c->seg[SR_ES].base + gpr[7], &v, size, user_kind(c))) != 0)
            return rc;
        gpr[7] += (uint32_t)step;
    }
    if (in->rep)
        gpr[1]--;
    return 0;
}

#define REP_IO_BURST 4096u /* INS/OUTS elements per exit */

static int emu_io(struct vcpu *c, const struct dec_insn *in)
{
    bool is_out = in->mnemonic == DEC_M_OUT || in->mnemonic == DEC_M_OUTSB || in->mnemonic == DEC_M_OUTSW ||
                  in->mnemonic == DEC_M_OUTSD;
    bool string = in->attr & DEC_A_STRING;
    unsigned size = 1;
    uint16_t port = (uint16_t)c->bv->gpr[2];
    for (int i = 0; i < in->num_ops; i++) {
        const struct dec_operand *op = &in->ops[i];
        if (op->kind == DEC_OP_IMM)
            port = (uint16_t)op->imm;
        if (op->kind == DEC_OP_REG && op->reg != DEC_REG_DX)
            size = op->reg >= DEC_REG_AL ? 1 : op->reg >= DEC_REG_AX ? 2 : 4;
        if (op->kind == DEC_OP_MEM)
            size = op->size;
    }
    if (!io_allowed(c, port, size))
        return raise(c, T_GP, 0);
    if (!string) {
        if (is_out) {
            vmdev_out(c->vm, port, size, reg_read(c, size == 1 ? DEC_REG_AL : size == 2 ? DEC_REG_AX : DEC_REG_EAX));
        } else {
            uint32_t v = 0xFFFFFFFFu;
            vmdev_in(c->vm, port, size, &v);
            reg_write(c, size == 1 ? DEC_REG_AL : size == 2 ? DEC_REG_AX : DEC_REG_EAX, v);
        }
        return next(c, in);
    }
    /* INS/OUTS, with REP: ECX times, ESI/EDI stepping by DF (32-bit
     * addressing). At most REP_IO_BURST elements per exit: the instruction
     * is then left with ECX counted down and EIP on it, as when hardware
     * takes an interrupt between iterations (SDM Vol. 2B REP), so a guest's
     * REP OUTS with ECX = 2^32 - 1 cannot hold its vCPU thread, and with it
     * `vm stop`, for hours. */
    uint32_t *gpr = c->bv->gpr, count = in->rep ? gpr[1] : 1;
    int32_t step = (c->bv->eflags & EFLAGS_DF) ? -(int32_t)size : (int32_t)size;
    if (count > REP_IO_BURST) {
        for (uint32_t k = 0; k < REP_IO_BURST; k++)
            TRY(io_element(c, in, port, size, is_out, step));
        return 0; /* EIP stays: the rest at the next entry */
    }
    for (; count; count--)
        TRY(io_element(c, in, port, size, is_out, step));
    return next(c, in);
}

/* The CR4 bits of the virtual CPU (docs/vmm.md "CR4"): those of a P6-class
 * processor whose CPUID it shows; the rest (VME and PVI: CPUID hides VME;
 * UMIP, VMXE, SMXE, FSGSBASE, PCIDE, OSXSAVE, SMEP, SMAP, PKE...: hidden
 * features, or reserved) are #GP(0) as the SDM has them for a CPU without
 * the feature. TSD, DE, MCE and PCE are kept and read back but not acted on. */
#define CR4_GUEST_BITS (CR4_TSD | CR4_DE | CR4_PSE | CR4_PAE | CR4_MCE | CR4_PGE | CR4_PCE | CR4_OSFXSR | \
                        CR4_OSXMMEXCPT)

/* The shadow pager refused a control-register write: a paging mode hv86
 * does not run (PAE: E_INVAL, the mode named by shadow_why), or no shadow
 * tables left. The VM stops with that reason, not as a triple fault. */
static int shadow_refused(struct vcpu *c, const struct dec_insn *in)
{
    const char *why = shadow_why(&c->sh);
    vm_kill(c->vm, "%s (not supported) at %s, eip %08x", *why ? why : "out of shadow page tables",
            dec_mnemonic_name(in->mnemonic), c->bv->eip);
    return -1;
}

static int emu_mov_cr(struct vcpu *c, const struct dec_insn *in)
{
    uint32_t *cr = c->bv->cr;
    switch (in->mnemonic) {
    case DEC_M_CLTS:
        cr[0] &= ~CR0_TS;
        return next(c, in);
    case DEC_M_SMSW: {
        TRY(op_write(c, in, 0, cr[0] & 0xFFFF));
        return next(c, in);
    }
    case DEC_M_LMSW: {
        uint32_t v;
        TRY(op_read(c, in, 0, &v));
        /* LMSW sets PE but never clears it; touches only PE MP EM TS. */
        uint32_t n = (cr[0] & ~0xEu) | (v & 0xF) | (cr[0] & CR0_PE);
        cr[0] = n;
        return shadow_set_cr0(&c->sh, n) ? shadow_refused(c, in) : next(c, in);
    }
    default:
        break;
    }
    const struct dec_operand *dst = &in->ops[0], *src = &in->ops[1];
    if (dst->reg >= DEC_REG_CR0 && dst->reg <= DEC_REG_CR7) {
        unsigned n = dst->reg - DEC_REG_CR0;
        uint32_t v = reg_read(c, src->reg);
        if (n == 0) {
            if ((v & CR0_PG) && !(v & CR0_PE))
                return raise(c, T_GP, 0);
            uint32_t changed = (v | CR0_ET) ^ cr[0];
            cr[0] = v | CR0_ET;
            if (shadow_set_cr0(&c->sh, cr[0]))
                return shadow_refused(c, in);
            /* Translations are keyed by linear address: turning paging or
             * protection on or off remaps them all. TS, MP, EM, WP, NE, AM,
             * CD, NW change nothing in translated code. */
            if (changed & (CR0_PG | CR0_PE))
                tc_flush(&c->bt.tc);
        } else if (n == 2) {
            cr[2] = v;
        } else if (n == 3) {
            cr[3] = v;
            if (shadow_set_cr3(&c->sh, v))
                return shadow_refused(c, in);
        } else if (n == 4) {
            if (v & ~CR4_GUEST_BITS)
                return raise(c, T_GP, 0); /* reserved for this CPU (SDM Vol. 3A §2.5) */
            cr[4] = v;
            if (shadow_set_cr4(&c->sh, v))
                return shadow_refused(c, in);
        } else {
            return raise(c, T_UD, -1);
        }
        thread_set_world(shadow_scr3(&c->sh), &c->sgdtr, 0);
        return next(c, in);
    }
    if (src->reg >= DEC_REG_CR0 && src->reg <= DEC_REG_CR7) {
        unsigned n = src->reg - DEC_REG_CR0;
        if (n == 1 || n > 4)
            return raise(c, T_UD, -1);
        reg_write(c, dst->reg, cr[n]);
        return next(c, in);
    }
    return next(c, in);
}

/* MOV to/from DRn at CPL 0: values kept, breakpoints not armed. DR4/DR5
 * alias DR6/DR7 (CR4.DE = 0); DR6 and DR7 read with their fixed bits
 * (SDM Vol. 3B §17.2). */
static int emu_mov_dr(struct vcpu *c, const struct dec_insn *in)
{
    const struct dec_operand *dst = &in->ops[0], *src = &in->ops[1];
    bool to_dr = dst->reg >= DEC_REG_DR0 && dst->reg <= DEC_REG_DR7;
    unsigned n = (to_dr ? dst->reg : src->reg) - DEC_REG_DR0;
    if (n == 4 || n == 5)
        n += 2;
    if (to_dr) {
        c->dr[n] = reg_read(c, src->reg);
        return next(c, in);
    }
    uint32_t v = c->dr[n];
    if (n == 6)
        v = (v & 0x0000E00Fu) | 0xFFFF0FF0u;
    else if (n == 7)
        v = (v & ~0x0000D800u) | 0x00000400u;
    reg_write(c, dst->reg, v);
    return next(c, in);
}

/*
 * LAR/LSL/VERR/VERW on the guest's own descriptors (not the shadows, whose
 * DPL and limits differ): ZF says whether the selector is visible at
 * max(CPL, RPL). SDM Vol. 2A LAR, LSL; Vol. 2B VERR/VERW.
 */
static int emu_desc_query(struct vcpu *c, const struct dec_insn *in)
{
    uint32_t selv;
    int src = in->mnemonic == DEC_M_VERR || in->mnemonic == DEC_M_VERW ? 0 : 1;
    TRY(op_read(c, in, src, &selv));
    uint16_t sel = (uint16_t)selv;
    uint64_t d = 0;
    bool ok = (sel & ~3u) && vcpu_read_desc(c, sel, &d) == 0;
    uint8_t acc = (uint8_t)(d >> 40), type = acc & 0x0F;
    bool sys = !(acc & DESC_S), code = acc & DESC_CODE, conforming = code && (acc & DESC_CONFORM);
    unsigned eff = MAX(c->cpl, sel & 3u);
    if (ok && !conforming && DESC_DPL(acc) < eff)
        ok = false;
    switch (in->mnemonic) {
    case DEC_M_LAR: /* system types LAR accepts: TSS, LDT, call/task gates (32- and 16-bit) */
        if (ok && sys && !(type == 1 || type == 2 || type == 3 || type == 4 || type == 5 || type == 9 ||
                           type == 11 || type == 12))
            ok = false;
        /* The SDM's mask is 00FxFF00H, bits 19:16 undefined; Bochs 2.7
         * leaves the limit's bits 19:16 there, and so do we. */
        if (ok)
            reg_write(c, in->ops[0].reg, (uint32_t)(d >> 32) & (in->opsize == 4 ? 0x00FFFF00u : 0xFF00u));
        break;
    case DEC_M_LSL:
        if (ok && sys && !(type == 1 || type == 2 || type == 3 || type == 9 || type == 11))
            ok = false;
        if (ok)
            reg_write(c, in->ops[0].reg, desc_limit_bytes(d));
        break;
    case DEC_M_VERR:
        ok = ok && !sys && (!code || (acc & 0x02));
        break;
    default: /* VERW */
        ok = ok && !sys && !code && (acc & 0x02);
        break;
    }
    c->bv->eflags = ok ? c->bv->eflags | EFLAGS_ZF : c->bv->eflags & ~EFLAGS_ZF;
    return next(c, in);
}

static int emu_desc(struct vcpu *c, const struct dec_insn *in)
{
    struct bt_desc_table *t = NULL;
    switch (in->mnemonic) {
    case DEC_M_LGDT: case DEC_M_LIDT: {
        uint16_t limit;
        uint32_t base;
        TRY(mem_rw(c, in, 0, &limit, 2, false));
        TRY(mem_rw(c, in, 2, &base, 4, false));
        if (in->opsize == 2)
            base &= 0xFFFFFF;
        t = in->mnemonic == DEC_M_LGDT ? &c->bv->gdtr : &c->bv->idtr;
        t->base = base;
        t->limit = limit;
        if (in->mnemonic == DEC_M_LGDT)
            vcpu_sync_gdt_all(c);
        return next(c, in);
    }
    case DEC_M_SGDT: case DEC_M_SIDT: {
        t = in->mnemonic == DEC_M_SGDT ? &c->bv->gdtr : &c->bv->idtr;
        uint16_t limit = (uint16_t)t->limit;
        TRY(mem_rw(c, in, 0, &limit, 2, true));
        TRY(mem_rw(c, in, 2, &t->base, 4, true));
        return next(c, in);
    }
    case DEC_M_SLDT: TRY(op_write(c, in, 0, c->bv->ldtr)); return next(c, in);
    case DEC_M_STR: TRY(op_write(c, in, 0, c->bv->tr)); return next(c, in);
    case DEC_M_LLDT: {
        uint32_t v;
        TRY(op_read(c, in, 0, &v));
        TRY(vcpu_load_ldt(c, (uint16_t)v));
        return next(c, in);
    }
    case DEC_M_LAR: case DEC_M_LSL: case DEC_M_VERR: case DEC_M_VERW:
        return emu_desc_query(c, in);
    case DEC_M_LTR: {
        /* An available 32-bit TSS in the GDT; the CPU marks it busy in the
         * guest's own table (SDM Vol. 2A LTR). */
        uint32_t v;
        uint64_t d;
        TRY(op_read(c, in, 0, &v));
        uint16_t sel = (uint16_t)v;
        if (!(sel & ~3u) || (sel & 4) || vcpu_read_desc(c, sel, &d) || ((d >> 40) & 0x1F) != 0x09)
            return raise(c, T_GP, sel & ~3u);
        if (!((d >> 47) & 1))
            return raise(c, T_NP, sel & ~3u);
        d |= 2ull << 40; /* type 9 -> 11: busy */
        TRY(vmem_write(c, c->bv->gdtr.base + (sel & ~7u), &d, 8, 0));
        c->bv->tr = sel;
        return next(c, in);
    }
    default:
        return unsupported(c, in, "descriptor instruction not emulated");
    }
}

static int emu_seg(struct vcpu *c, const struct dec_insn *in)
{
    switch (in->mnemonic) {
    case DEC_M_MOV: {
        const struct dec_operand *dst = &in->ops[0];
        if (dst->kind == DEC_OP_REG && dst->reg >= DEC_REG_ES && dst->reg <= DEC_REG_GS) {
            uint32_t v;
            TRY(op_read(c, in, 1, &v));
            TRY(vcpu_load_seg(c, dst->reg - DEC_REG_ES, (uint16_t)v));
            return next(c, in);
        }
        /* MOV r/m, Sreg: the guest's selector, not the ring-compressed one. */
        uint32_t v = reg_read(c, in->ops[1].reg);
        if (dst->kind == DEC_OP_REG && in->opsize == 4)
            reg_write(c, dst->reg, v); /* zero-extended into r32 */
        else
            TRY(op_write(c, in, 0, v));
        return next(c, in);
    }
    case DEC_M_POP: {
        if (in->ops[0].kind != DEC_OP_REG || in->ops[0].reg < DEC_REG_ES || in->ops[0].reg > DEC_REG_GS)
            return unsupported(c, in, "segment instruction not emulated"); /* not POP Sreg */
        unsigned sr = in->ops[0].reg - DEC_REG_ES;
        uint32_t v = 0, esp = c->bv->gpr[4];
        TRY(vmem_read(c, c->seg[SR_SS].base + esp, &v, in->opsize, user_kind(c)));
        TRY(vcpu_load_seg(c, (int)sr, (uint16_t)v));
        c->bv->gpr[4] = esp + in->opsize;
        return next(c, in);
    }
    case DEC_M_PUSH: {
        uint32_t v = reg_read(c, in->ops[0].reg), esp = c->bv->gpr[4] - in->opsize;
        TRY(vmem_write(c, c->seg[SR_SS].base + esp, &v, in->opsize, user_kind(c)));
        c->bv->gpr[4] = esp;
        return next(c, in);
    }
    case DEC_M_LDS: case DEC_M_LES: case DEC_M_LFS: case DEC_M_LGS: case DEC_M_LSS: {
        int sr = in->mnemonic == DEC_M_LDS ? SR_DS : in->mnemonic == DEC_M_LES ? SR_ES :
                 in->mnemonic == DEC_M_LFS ? SR_FS : in->mnemonic == DEC_M_LGS ? SR_GS : SR_SS;
        uint32_t off = 0;
        uint16_t sel;
        TRY(mem_rw(c, in, in->opsize, &sel, 2, false)); /* selector first, as Bochs reads it */
        TRY(mem_rw(c, in, 0, &off, in->opsize, false));
        TRY(vcpu_load_seg(c, sr, sel));
        reg_write(c, in->ops[0].reg, off);
        return next(c, in);
    }
    default:
        return unsupported(c, in, "segment instruction not emulated");
    }
}

/* RDMSR/WRMSR at CPL 0 (ring 3 gets the hardware's #GP): the policy
 * table (vmm/cpuid.c cpuid_msr_policy) says which MSRs exist, which are
 * read-only and which bits are reserved (#GP(0)); the values are here. */
static int emu_msr(struct vcpu *c, const struct dec_insn *in)
{
    uint32_t *g = c->bv->gpr, msr = g[1];
    bool wr = in->mnemonic == DEC_M_WRMSR;
    uint64_t v = ((uint64_t)g[2] << 32) | g[0];
    const struct msr_policy *p = cpuid_msr_policy(msr);
    if (!p || (wr && (!p->writable || (v & p->wr_reserved))))
        return raise(c, T_GP, 0);
    switch (msr) {
    case MSR_SYSENTER_CS: if (wr) c->sysenter_cs = (uint32_t)v; else v = c->sysenter_cs; break;
    case MSR_SYSENTER_ESP: if (wr) c->sysenter_esp = (uint32_t)v; else v = c->sysenter_esp; break;
    case MSR_SYSENTER_EIP: if (wr) c->sysenter_eip = (uint32_t)v; else v = c->sysenter_eip; break;
    case MSR_TSC: if (!wr) v = rdtsc(); break; /* writes ignored: the TSC is the host's */
    case MSR_MISC_ENABLE: case MSR_PLATFORM_ID: case MSR_BIOS_SIGN_ID: /* no microcode, nothing to tune */
        if (!wr) v = 0;
        break;
    default: /* p->device: the local APIC (vmm/dev/vlapic.c), if the VM has one */
        if (!vmdev_apic_msr(c->vm, msr, wr, &v))
            return raise(c, T_GP, 0);
        break;
    }
    if (!wr) {
        g[0] = (uint32_t)v;
        g[2] = (uint32_t)(v >> 32);
    }
    return next(c, in);
}

static void host_cpuid(void *ctx, uint32_t leaf, uint32_t subleaf, uint32_t out[4])
{
    cpuid_count(leaf, subleaf, &out[0], &out[1], &out[2], &out[3]);
}

/* CPUID: the policy in vmm/cpuid.c (EAX leaf, ECX subleaf). */
static int emu_cpuid(struct vcpu *c, const struct dec_insn *in)
{
    uint32_t *g = c->bv->gpr, r[4];
    cpuid_guest(host_cpuid, NULL, clock_tsc_hz(), g[0], g[1], r);
    if (vmdev_has_apic(c->vm))
        cpuid_add_apic(g[0], r, c->vm->tsc_deadline);
    g[0] = r[0]; g[3] = r[1]; g[1] = r[2]; g[2] = r[3];
    return next(c, in);
}

/* ---------------------------------------------------------------- 3. transitions */

static int pop32(struct vcpu *c, uint32_t *esp, uint32_t *v)
{
    TRY(vmem_read(c, c->seg[SR_SS].base + *esp, v, 4, user_kind(c)));
    *esp += 4;
    return 0;
}

/* After a return to the outer ring cpl: DS, ES, FS and GS holding a data
 * or nonconforming code segment with DPL < cpl are loaded with null, so the
 * outer ring cannot use them (SDM Vol. 2A IRET, RET "Operation"). */
static void null_outer_segs(struct vcpu *c, unsigned cpl)
{
    for (int sr = SR_ES; sr < SR_N; sr++) {
        if (sr == SR_CS || sr == SR_SS)
            continue;
        const struct vseg *s = &c->seg[sr];
        bool code_nc = (s->access & DESC_CODE) && !(s->access & DESC_CONFORM);
        if ((s->sel & ~3u) && DESC_DPL(s->access) < cpl && (!(s->access & DESC_CODE) || code_nc))
            c->seg[sr] = (struct vseg){ 0 }, c->bv->sel[sr] = 0;
    }
}

/*
 * The checks of a far transfer to a code segment, before anything changes
 * (Intel SDM Vol. 2A JMP, CALL, RET "Operation", protected mode; Vol. 3A
 * §5.8.1-5.8.2): sel names a present code segment, nonconforming with DPL ==
 * rpl (the CPL the transfer runs at), conforming with DPL <= rpl, and eip
 * lies inside its limit. JMP/CALL pass rpl = CPL (and a nonconforming
 * target's selector must have RPL <= CPL); RET passes the RPL it popped.
 * Other system descriptors are #GP(sel) (call gates, TSSs and task gates
 * are far_system_target's). A return to an outer ring checks EIP last
 * (check_eip false, then outer_eip_ok). Returns 1 when the transfer may go
 * on, else the result of the fault.
 */
static int far_code_ok(struct vcpu *c, uint16_t sel, unsigned rpl, uint32_t eip, bool check_eip)
{
    uint64_t d;
    uint32_t idx = sel >> 3;
    if (!(sel & ~3u))
        return raise(c, T_GP, 0);
    if (vcpu_read_desc(c, sel, &d) || (!(sel & 4) && idx >= GDT_MONITOR_FIRST))
        return raise(c, T_GP, sel & ~3u);
    uint8_t acc = desc_access(d);
    if (!(acc & DESC_S) || !(acc & DESC_CODE))
        return raise(c, T_GP, sel & ~3u);
    unsigned dpl = DESC_DPL(acc);
    if ((acc & DESC_CONFORM) ? dpl > rpl : dpl != rpl || (sel & 3u) > rpl)
        return raise(c, T_GP, sel & ~3u);
    if (!(acc & DESC_P))
        return raise(c, T_NP, sel & ~3u);
    if (check_eip && eip > desc_limit_bytes(d))
        return raise(c, T_GP, 0);
    return 1;
}

/* The EIP check a return to an outer ring makes last, after the new SS's
 * (SDM Vol. 2A RET, IRET "RETURN-TO-OUTER-PRIVILEGE-LEVEL"): 1 if eip is
 * inside the limit of code segment sel (checked by far_code_ok), else #GP(0). */
static int outer_eip_ok(struct vcpu *c, uint16_t sel, uint32_t eip)
{
    uint64_t d;
    if (vcpu_read_desc(c, sel, &d) == 0 && eip <= desc_limit_bytes(d))
        return 1;
    return raise(c, T_GP, 0);
}

/*
 * JMP/CALL far to a TSS, a task gate or a call gate (SDM Vol. 2A JMP, CALL
 * "Operation"): the target's DPL against CPL and the selector's RPL
 * (#GP(sel)) and its presence (#NP(sel)); then a TSS or a task gate's TSS
 * becomes the new task (vmm/task.c: JMP without nesting, CALL with it).
 * Call gates are not in hv86's guest CPU model: the VM stops there, after
 * those checks (docs/vmm.md). A busy TSS is not such a target: far_code_ok
 * gives its #GP(sel). Returns 1 when sel is not such a target, else the
 * result.
 */
static int far_system_target(struct vcpu *c, const struct dec_insn *in, uint16_t sel)
{
    uint64_t d;
    if (!(sel & ~3u) || vcpu_read_desc(c, sel, &d) || (!(sel & 4) && (sel >> 3) >= GDT_MONITOR_FIRST))
        return 1;
    uint8_t acc = desc_access(d), type = acc & 0xF;
    bool tss = type == SYS_TSS16_AVAIL || type == SYS_TSS32_AVAIL, gate = type == SYS_TASK_GATE;
    if ((acc & DESC_S) || (!tss && !gate && type != 0x4 && type != SYS_CALL_GATE32))
        return 1;
    unsigned dpl = DESC_DPL(acc);
    if (dpl < c->cpl || dpl < (sel & 3u))
        return raise(c, T_GP, sel & ~3u);
    if (!(acc & DESC_P))
        return raise(c, T_NP, sel & ~3u);
    if (!tss && !gate) {
        vm_kill(c->vm, "far JMP/CALL to a call gate %04x: call gates are not supported", sel);
        return -1;
    }
    struct task_fault f;
    int rc = 0;
    if (gate) {
        sel = (uint16_t)(d >> 16); /* the gate's TSS selector */
        rc = task_gate_target(c, sel, &d, &f);
    }
    if (rc == 0)
        rc = task_switch(c, sel, d, in->cf == DEC_CF_CALL_FAR ? TASK_CALL : TASK_JMP, c->bv->eip + in->len, -1,
                         &f);
    return rc == TASK_FAULT ? raise(c, f.vector, (int)f.err) : rc;
}

/* The checks of the SS a return to outer ring rpl loads (SDM Vol. 2A IRET,
 * RET "RETURN-TO-OUTER-PRIVILEGE-LEVEL"): not null, in its table, RPL = DPL
 * = rpl, a writable data segment, present (#SS(ss) if not). Returns 1 when
 * the return may go on, else the result of the fault. */
static int outer_ss_ok(struct vcpu *c, uint16_t ss, unsigned rpl)
{
    uint64_t d;
    if (!(ss & ~3u))
        return raise(c, T_GP, 0);
    if (vcpu_read_desc(c, ss, &d) || (!(ss & 4) && (ss >> 3) >= GDT_MONITOR_FIRST))
        return raise(c, T_GP, ss & ~3u);
    uint8_t acc = desc_access(d);
    if ((ss & 3u) != rpl || !(acc & DESC_S) || (acc & DESC_CODE) || !(acc & DESC_WRITABLE) || DESC_DPL(acc) != rpl)
        return raise(c, T_GP, ss & ~3u);
    if (!(acc & DESC_P))
        return raise(c, T_SS, ss & ~3u);
    return 1;
}

/* A return to guest ring 1 or 2 that hardware would take: guests use rings
 * 0 and 3 only (ring compression: translated code runs at ring 1), so the
 * VM stops, after every check that could have faulted instead. */
static int inner_ring_stop(struct vcpu *c, const char *what, unsigned rpl)
{
    vm_kill(c->vm, "%s to ring %u: guests may use rings 0 and 3 only", what, rpl);
    return -1;
}

/* RET far to an outer ring (RPL of the popped CS > CPL): the new stack's
 * SS:ESP follow the return address on the old one (after imm16 bytes of
 * parameters); data segments the outer ring may not use are nulled (SDM
 * Vol. 2A RET "RETURN-TO-OUTER-PRIVILEGE-LEVEL"). */
static int retf_outer(struct vcpu *c, const struct dec_insn *in, uint32_t esp, uint16_t cs, uint32_t eip)
{
    unsigned rpl = cs & 3u, os = in->opsize;
    uint32_t nesp = 0, nss = 0;
    esp += in->stack_extra;
    TRY(vmem_read(c, c->seg[SR_SS].base + esp, &nesp, os, user_kind(c)));
    TRY(vmem_read(c, c->seg[SR_SS].base + esp + os, &nss, os, user_kind(c)));
    uint16_t ss = (uint16_t)nss;
    int ok = outer_ss_ok(c, ss, rpl);
    if (ok == 1)
        ok = outer_eip_ok(c, cs, eip);
    if (ok != 1)
        return ok;
    if (rpl != 3)
        return inner_ring_stop(c, "far return", rpl);
    unsigned old_cpl = c->cpl;
    vcpu_set_cpl(c, rpl);
    if (vcpu_load_seg(c, SR_CS, cs) || vcpu_load_seg(c, SR_SS, ss)) {
        vcpu_set_cpl(c, old_cpl);
        return c->vm->stop_req ? -1 : 0;
    }
    null_outer_segs(c, rpl);
    c->bv->gpr[4] = (os == 2 ? (c->bv->gpr[4] & 0xFFFF0000u) | (nesp & 0xFFFF) : nesp) + in->stack_extra;
    c->bv->eip = eip;
    return 0;
}

/* The guest's handler of a #PF it was given returns (its IRET, emulated
 * or by the IRET stub): fill the shadow entry for the access it is about
 * to retry, if its tables now allow it without a bit to set
 * (shadow_prefault), so the retry does not fault again. */
void vcpu_prefault(struct vcpu *c)
{
    c->pf_pending = false;
    if (c->pf_cr3 == c->bv->cr[3]) /* E_NOMEM: nothing filled, the retry faults and that path says why */
        (void)shadow_prefault(&c->sh, c->pf_gva, c->pf_acc);
}

int emu_iret(struct vcpu *c)
{
    if (c->pf_pending)
        vcpu_prefault(c);
    uint32_t esp = c->bv->gpr[4], eip, cs, fl;
    if (c->bv->vflags_sys & EFLAGS_NT) { /* a task return (SDM Vol. 3A §7.4) */
        struct dec_insn in;
        TRY(fetch_decode(c, &in));
        return task_return(c, c->bv->eip + in.len);
    }
    if (pop32(c, &esp, &eip) || pop32(c, &esp, &cs) || pop32(c, &esp, &fl))
        return c->vm->stop_req ? -1 : 0;
    unsigned rpl = cs & 3;
    if (rpl < c->cpl) /* to an inner ring: #GP(selector) (SDM Vol. 2A IRET) */
        return raise(c, T_GP, (int)(cs & 0xFFFC));
    if (rpl == 0) {
        TRY(vcpu_load_seg(c, SR_CS, (uint16_t)cs));
        c->bv->gpr[4] = esp;
        vcpu_set_eflags(c, fl, true);
        c->bv->eip = eip;
        return 0;
    }
    uint32_t uesp, uss;
    if (pop32(c, &esp, &uesp) || pop32(c, &esp, &uss))
        return c->vm->stop_req ? -1 : 0;
    if (rpl != 3) {
        int ok = far_code_ok(c, (uint16_t)cs, rpl, eip, false);
        if (ok == 1)
            ok = outer_ss_ok(c, (uint16_t)uss, rpl);
        if (ok == 1)
            ok = outer_eip_ok(c, (uint16_t)cs, eip);
        return ok != 1 ? ok : inner_ring_stop(c, "IRET", rpl);
    }
    vcpu_set_cpl(c, 3);
    if (vcpu_load_seg(c, SR_CS, (uint16_t)cs) || vcpu_load_seg(c, SR_SS, (uint16_t)uss)) {
        vcpu_set_cpl(c, 0);
        return c->vm->stop_req ? -1 : 0;
    }
    null_outer_segs(c, 3);
    vcpu_set_eflags(c, fl, true);
    c->bv->gpr[4] = uesp;
    c->bv->eip = eip;
    return 0;
}

static int rm_far(struct vcpu *c, const struct dec_insn *in);
static int emu_dispatch(struct vcpu *c, const struct dec_insn *in, int reason);

static int emu_far(struct vcpu *c, const struct dec_insn *in)
{
    uint32_t target = 0, os = in->opsize;
    uint16_t sel = 0;
    if (!(c->bv->cr[0] & CR0_PE))
        return rm_far(c, in);
    if (in->cf == DEC_CF_RETF) {
        uint32_t esp = c->bv->gpr[4], cs = 0;
        TRY(vmem_read(c, c->seg[SR_SS].base + esp, &target, os, user_kind(c)));
        TRY(vmem_read(c, c->seg[SR_SS].base + esp + os, &cs, os, user_kind(c)));
        esp += 2 * os;
        sel = (uint16_t)cs;
        unsigned rpl = sel & 3u;
        if (sel & ~3u && rpl < c->cpl)
            return raise(c, T_GP, sel & ~3u);
        int ok = far_code_ok(c, sel, rpl, target, rpl <= c->cpl);
        if (ok != 1)
            return ok;
        if (rpl > c->cpl)
            return retf_outer(c, in, esp, sel, target);
        TRY(vcpu_load_seg(c, SR_CS, sel));
        c->bv->gpr[4] = esp + in->stack_extra;
        c->bv->eip = target;
        return 0;
    }
    if (in->ops[0].kind == DEC_OP_FAR) {
        sel = in->ops[0].sel;
        target = in->ops[0].imm;
    } else {
        TRY(mem_rw(c, in, os, &sel, 2, false)); /* selector first, as Bochs reads it */
        TRY(mem_rw(c, in, 0, &target, os, false));
    }
    if (os == 2)
        target &= 0xFFFF;
    int ok = far_system_target(c, in, sel);
    if (ok == 1)
        ok = far_code_ok(c, sel, c->cpl, target, true);
    if (ok != 1)
        return ok;
    sel = (uint16_t)((sel & ~3u) | c->cpl); /* CS.RPL := CPL */
    uint32_t ret_eip = c->bv->eip + in->len;
    uint16_t ret_cs = c->seg[SR_CS].sel;
    if (in->cf == DEC_CF_CALL_FAR) {
        uint32_t esp = c->bv->gpr[4] - 2 * os, frame[2] = { ret_eip, ret_cs };
        if (os == 2) {
            uint16_t f16[2] = { (uint16_t)ret_eip, ret_cs };
            TRY(vmem_write(c, c->seg[SR_SS].base + esp, f16, 4, user_kind(c)));
        } else {
            TRY(vmem_write(c, c->seg[SR_SS].base + esp, frame, 8, user_kind(c)));
        }
        TRY(vcpu_load_seg(c, SR_CS, sel));
        c->bv->gpr[4] = esp;
    } else {
        TRY(vcpu_load_seg(c, SR_CS, sel));
    }
    c->bv->eip = target;
    return 0;
}

/* What SYSENTER puts in CS or SS (SDM Vol. 2B SYSENTER "Operation"): a
 * flat 4 GiB segment at DPL 0, execute/read or read/write, accessed; no
 * descriptor is read. Ring 1 runs on aliases of these caches (vcpu.c
 * load_alias), so the guest's GDT entries do not matter here either. */
static void sysenter_seg(struct vcpu *c, int sr, uint16_t sel)
{
    uint8_t type = sr == SR_CS ? DESC_CODE | DESC_WRITABLE | DESC_ACCESSED : DESC_WRITABLE | DESC_ACCESSED;
    c->seg[sr] = (struct vseg){ sel, 0, 0xFFFFFFFFu, DESC_P | DESC_S | type, DESC_FLAG_G | DESC_FLAG_D };
    c->bv->sel[sr] = sel;
}

/* SYSEXIT's CS or SS at ring 3, which runs directly: the CPU will load the
 * selector from the shadow GDT, so the cache is the guest descriptor that
 * entry was made from where the monitor keeps it current (entries below
 * SYNC_GDT_LOW, resynced before ring 3 runs); elsewhere a checked load. */
static int sysexit_seg(struct vcpu *c, int sr, uint16_t sel)
{
    if (gdt_low_cached(c, sel)) {
        c->seg[sr] = vseg_of(sel, c->gdt_src[sel >> 3]);
        c->bv->sel[sr] = sel;
        return 0;
    }
    return vcpu_load_seg(c, sr, sel);
}

int emu_sysenter(struct vcpu *c, const struct dec_insn *in)
{
    uint32_t cs = c->sysenter_cs & ~3u;
    bool pe = c->bv->cr[0] & CR0_PE;
    if (in->cf == DEC_CF_SYSENTER) {
        if (!cs || !pe)
            return raise(c, T_GP, 0);
        vcpu_set_cpl(c, 0);
        sysenter_seg(c, SR_CS, (uint16_t)cs);
        sysenter_seg(c, SR_SS, (uint16_t)(cs + 8));
        c->bv->vflags_if = 0;
        c->bv->vflags_sys &= ~(EFLAGS_VM | EFLAGS_RF);
        c->bv->gpr[4] = c->sysenter_esp;
        c->bv->eip = c->sysenter_eip;
        /* SYSENTER keeps TF: the single-step trap comes once it is done,
         * at CPL 0 before the entry's first instruction (SDM Vol. 3B
         * §17.3.1.4; Linux's #DB handler knows this EIP). */
        if (c->bv->vflags_sys & EFLAGS_TF) {
            c->dr[6] |= DR6_BS;
            return vcpu_exception(c, T_DB, -1) < 0 ? -1 : 0;
        }
        return 0;
    }
    if (in->cf == DEC_CF_SYSEXIT) {
        if (!cs || !pe || c->cpl != 0)
            return raise(c, T_GP, 0);
        vcpu_set_cpl(c, 3);
        TRY(sysexit_seg(c, SR_CS, (uint16_t)((cs + 16) | 3)));
        TRY(sysexit_seg(c, SR_SS, (uint16_t)((cs + 24) | 3)));
        c->bv->gpr[4] = c->bv->gpr[1]; /* ECX */
        c->bv->eip = c->bv->gpr[2];    /* EDX */
        return 0;
    }
    return raise(c, T_UD, -1); /* SYSCALL/SYSRET: not in our CPU model */
}

#define ARITH_FLAGS (EFLAGS_CF | EFLAGS_PF | EFLAGS_AF | EFLAGS_ZF | EFLAGS_SF | EFLAGS_OF)

static int alu_of(unsigned mnemonic)
{
    switch (mnemonic) {
    case DEC_M_ADD: return ALU_ADD;
    case DEC_M_OR: return ALU_OR;
    case DEC_M_ADC: return ALU_ADC;
    case DEC_M_SBB: return ALU_SBB;
    case DEC_M_AND: return ALU_AND;
    case DEC_M_SUB: return ALU_SUB;
    case DEC_M_XOR: return ALU_XOR;
    case DEC_M_CMP: return ALU_CMP;
    case DEC_M_TEST: return ALU_TEST;
    default: return -1;
    }
}

/* A two-operand ALU instruction on an operand the shadow cannot map: the
 * host CPU computes it (alu_exec), so result and flags are the hardware's. */
static int emu_alu(struct vcpu *c, const struct dec_insn *in, enum alu_op op)
{
    unsigned size = in->ops[0].size;
    uint32_t a = 0, b = 0, fl;
    if (op != ALU_CMP && op != ALU_TEST)
        TRY(op_read_rmw(c, in, 0, &a));
    else
        TRY(op_read(c, in, 0, &a));
    TRY(op_read(c, in, 1, &b));
    uint32_t r = alu_exec(op, size, a, b, c->bv->eflags, &fl);
    if (op != ALU_CMP && op != ALU_TEST)
        TRY(op_write(c, in, 0, size == 4 ? r : r & ((1u << (8 * size)) - 1)));
    c->bv->eflags = (c->bv->eflags & ~ARITH_FLAGS) | (fl & ARITH_FLAGS);
    return next(c, in);
}

#define STRING_BATCH 65536u /* iterations per exit: a long REP resumes, as on hardware */

/* Element size in bytes of a MOVS/STOS/LODS/CMPS/SCAS string instruction;
 * 0 for anything else (the SSE MOVSD shares the string MOVSD's mnemonic:
 * the decoder's string attribute tells them apart). */
static unsigned string_size(const struct dec_insn *in)
{
    if (!(in->attr & DEC_A_STRING) || (in->attr & DEC_A_IO))
        return 0;
    switch (in->mnemonic) {
    case DEC_M_MOVSB: case DEC_M_STOSB: case DEC_M_LODSB: case DEC_M_CMPSB: case DEC_M_SCASB: return 1;
    case DEC_M_MOVSW: case DEC_M_STOSW: case DEC_M_LODSW: case DEC_M_CMPSW: case DEC_M_SCASW: return 2;
    case DEC_M_MOVSD: case DEC_M_STOSD: case DEC_M_LODSD: case DEC_M_CMPSD: case DEC_M_SCASD: return 4;
    default: return 0;
    }
}

static bool is_movs(unsigned m) { return m == DEC_M_MOVSB || m == DEC_M_MOVSW || m == DEC_M_MOVSD; }
static bool is_stos(unsigned m) { return m == DEC_M_STOSB || m == DEC_M_STOSW || m == DEC_M_STOSD; }
static bool is_cmps(unsigned m) { return m == DEC_M_CMPSB || m == DEC_M_CMPSW || m == DEC_M_CMPSD; }
static bool is_scas(unsigned m) { return m == DEC_M_SCASB || m == DEC_M_SCASW || m == DEC_M_SCASD; }
/* Does the instruction read [src:eSI] (MOVS, LODS, CMPS) / touch [ES:eDI]
 * (MOVS, STOS write; CMPS, SCAS read)? */
static bool reads_si(unsigned m) { return !is_stos(m) && !is_scas(m); }
static bool uses_di(unsigned m) { return is_movs(m) || is_stos(m) || is_cmps(m) || is_scas(m); }

/* The guest's own limit and type check (SDM Vol. 3A §5.3) of size bytes at
 * off through segment register sr, which hardware makes but the narrower
 * shadow cannot make for accesses the monitor emulates. 0: allowed;
 * 1: #GP(0), or #SS(0) for SS, injected; < 0: the VM was killed. */
static int seg_check(struct vcpu *c, unsigned sr, uint32_t off, uint32_t size, bool write)
{
    const struct vseg *s = &c->seg[sr];
    bool null = !(s->sel & ~3u) && sr != SR_SS && (c->bv->cr[0] & CR0_PE); /* real mode has no null selector */
    if (!null && seg_access_ok(s->base, s->limit, s->access, s->flags, off, size, write))
        return 0;
    return vcpu_exception(c, sr == SR_SS ? T_SS : T_GP, 0) < 0 ? -1 : 1;
}

/* MOVS/STOS/LODS/CMPS/SCAS (with REP, REPE, REPNE) touching memory the
 * shadow cannot map: element by element through the guest's own segments
 * and tables (SDM Vol. 2B MOVS, STOS, LODS, CMPS, SCAS, REP). CMPS and SCAS
 * set the flags of [src] - [ES:DI] and AL/AX/EAX - [ES:DI] as CMP does
 * (alu_exec), and REPE/REPNE also end when ZF says so. With the 0x67
 * prefix SI, DI and CX are 16 bits and wrap in their low halves; the upper
 * halves stay. A fault at an element leaves the registers as they were
 * before it, as on hardware. */
static int emu_string(struct vcpu *c, const struct dec_insn *in)
{
    unsigned m = in->mnemonic, size = string_size(in), src = mem_sr(in);
    bool movs = is_movs(m), stos = is_stos(m), cmp = is_cmps(m) || is_scas(m);
    uint32_t mask = in->addrsize == 2 ? 0xFFFFu : 0xFFFFFFFFu;
    uint32_t *g = c->bv->gpr, count = in->rep ? g[1] & mask : 1;
    uint32_t step = (c->bv->eflags & EFLAGS_DF) ? (uint32_t)-size : size;
    uint32_t vmask = size == 4 ? 0xFFFFFFFFu : (1u << (8 * size)) - 1;
    bool ended = false;
    for (uint32_t i = 0; i < count && i < STRING_BATCH && !ended; i++) {
        uint32_t v = g[0], d = 0, si = g[6] & mask, di = g[7] & mask;
        if (reads_si(m)) {
            TRY(seg_check(c, src, si, size, false));
            TRY(vmem_read(c, c->seg[src].base + si, &v, size, user_kind(c)));
        }
        if (cmp) {
            TRY(seg_check(c, SR_ES, di, size, false));
            TRY(vmem_read(c, c->seg[SR_ES].base + di, &d, size, user_kind(c)));
            uint32_t fl;
            alu_exec(ALU_CMP, size, v & vmask, d, c->bv->eflags, &fl);
            c->bv->eflags = (c->bv->eflags & ~ARITH_FLAGS) | (fl & ARITH_FLAGS);
            bool zf = c->bv->eflags & EFLAGS_ZF;
            ended = in->rep && (in->rep == DEC_REP_REP ? !zf : zf);
        } else if (movs || stos) {
            TRY(seg_check(c, SR_ES, di, size, true));
            TRY(vmem_write(c, c->seg[SR_ES].base + di, &v, size, user_kind(c)));
        } else {
            reg_write(c, size == 1 ? DEC_REG_AL : size == 2 ? DEC_REG_AX : DEC_REG_EAX, v);
        }
        if (reads_si(m))
            g[6] = (g[6] & ~mask) | ((si + step) & mask);
        if (uses_di(m))
            g[7] = (g[7] & ~mask) | ((di + step) & mask);
        if (in->rep)
            g[1] = (g[1] & ~mask) | ((g[1] - 1) & mask);
        /* A store that landed in plain RAM: the CPU does the rest, as a
         * run of translated code with a hidden fault at most, instead of
         * a walk and a frame map per element here. Linux zeroing a freed
         * page table (its first stores trap; the shadow drops the table
         * after SHADOW_FLOOD of them) took 1,000 elements here. */
        if ((movs || stos) && c->plain_write && in->rep && (g[1] & mask)) {
            c->strings_resumed++;
            break;
        }
    }
    /* not done: the same instruction resumes */
    return in->rep && (g[1] & mask) && !ended ? 0 : next(c, in);
}

/* Bytes of the memory operand an instruction names in no operand: XLAT's
 * [eBX + AL] byte, MASKMOVQ's 8 and MASKMOVDQU's 16 at [eDI] (SDM Vol. 2B). */
static uint32_t implicit_size(const struct dec_insn *in)
{
    return in->mnemonic == DEC_M_XLAT ? 1 : in->mnemonic == DEC_M_MASKMOVQ ? 8 : 16;
}

/* CALL/JMP near through a memory operand (not the far forms). */
static bool is_near_indirect(const struct dec_insn *in)
{
    return ((in->mnemonic == DEC_M_CALL && in->cf == DEC_CF_CALL) || (in->mnemonic == DEC_M_JMP && in->cf == DEC_CF_JMP)) &&
           in->num_ops == 1 && in->ops[0].kind == DEC_OP_MEM;
}

/* Whether emu_mov_mem emulates in: XCHG, two-operand ALU, MOV/MOVZX/MOVSX
 * (not to a segment register), XLAT, MOVS/STOS/LODS/CMPS/SCAS. */
static bool mem_emulable(const struct dec_insn *in)
{
    unsigned m = in->mnemonic;
    if (m == DEC_M_XLAT || (is_bt(m) && in->ops[0].kind == DEC_OP_MEM) || hostexec_allowed(in))
        return true;
    if ((m == DEC_M_PUSH || m == DEC_M_POP) && in->num_ops == 1)
        return in->ops[0].kind == DEC_OP_MEM;
    if (is_near_indirect(in))
        return true;
    if ((in->attr & DEC_A_STRING) && !(in->attr & DEC_A_IO))
        return string_size(in) != 0;
    if (in->num_ops != 2)
        return false;
    if (m == DEC_M_MOV && in->ops[0].kind == DEC_OP_REG)
        return !(in->ops[0].reg >= DEC_REG_ES && in->ops[0].reg <= DEC_REG_GS);
    return m == DEC_M_XCHG || alu_of(m) >= 0 || m == DEC_M_MOV || m == DEC_M_MOVZX || m == DEC_M_MOVSX;
}

/* BT/BTS/BTR/BTC m, r/imm8: CF = the selected bit, which BTS sets, BTR
 * clears and BTC flips (SDM Vol. 2A BT..BTS); the other flags are left as
 * they were, as Bochs 2.7 does (the SDM leaves OF, SF, AF, PF undefined).
 * The unit is read with write intent for the three that write it. */
static int emu_bt(struct vcpu *c, const struct dec_insn *in)
{
    unsigned m = in->mnemonic, sr = mem_sr(in), size = in->ops[0].size;
    bool write = m != DEC_M_BT;
    uint32_t off = bt_offset(c, in), lin = c->seg[sr].base + off, v = 0;
    uint32_t bit = (in->ops[1].kind == DEC_OP_REG ? reg_read(c, in->ops[1].reg) : in->ops[1].imm) & (size * 8 - 1);
    TRY(seg_check(c, sr, off, size, write));
    TRY(vmem_read(c, lin, &v, size, user_kind(c) | (write ? PF_W : 0)));
    bool cf = (v >> bit) & 1;
    if (write) {
        v = m == DEC_M_BTS ? v | 1u << bit : m == DEC_M_BTR ? v & ~(1u << bit) : v ^ 1u << bit;
        TRY(vmem_write(c, lin, &v, size, user_kind(c)));
    }
    c->bv->eflags = (c->bv->eflags & ~EFLAGS_CF) | (cf ? EFLAGS_CF : 0);
    return next(c, in);
}

/* eSP's width: ESP, or SP when the guest's SS.B is clear (SDM Vol. 3A §3.4.5). */
static uint32_t stack_mask(const struct vcpu *c)
{
    return (c->seg[SR_SS].flags & DESC_FLAG_D) ? 0xFFFFFFFFu : 0xFFFFu;
}

/* The stack slot of a PUSH (-os) or POP at SS:eSP, checked against the
 * guest's SS (#SS(0)); eSP is ESP, or SP when SS.B is clear. */
static int stack_slot(struct vcpu *c, int32_t delta, uint32_t os, bool write, uint32_t *lin)
{
    uint32_t sp = (c->bv->gpr[4] + (uint32_t)(delta < 0 ? delta : 0)) & stack_mask(c);
    TRY(seg_check(c, SR_SS, sp, os, write));
    *lin = c->seg[SR_SS].base + sp;
    return 0;
}

/* Push v (size bytes) on the guest stack, checked against its SS; eSP is
 * updated only on success. */
static int push_guest(struct vcpu *c, uint32_t v, unsigned size)
{
    uint32_t mask = stack_mask(c), esp = c->bv->gpr[4], lin = 0;
    TRY(stack_slot(c, -(int32_t)size, size, true, &lin));
    TRY(vmem_write(c, lin, &v, size, user_kind(c)));
    c->bv->gpr[4] = (esp & ~mask) | ((esp - size) & mask);
    return 0;
}

/* PUSH m / POP m on memory the shadow cannot map (SDM Vol. 2B PUSH, POP):
 * POP computes an ESP-based destination address after the increment, and
 * changes ESP only when both accesses succeed. */
static int emu_push_pop_m(struct vcpu *c, const struct dec_insn *in)
{
    uint32_t os = in->opsize, mask = stack_mask(c);
    uint32_t v = 0, lin = 0, esp = c->bv->gpr[4];
    if (in->mnemonic == DEC_M_PUSH) {
        TRY(mem_rw(c, in, 0, &v, os, false));
        TRY(push_guest(c, v, os));
        return next(c, in);
    }
    TRY(stack_slot(c, 0, os, false, &lin));
    TRY(vmem_read(c, lin, &v, os, user_kind(c)));
    uint32_t new_esp = (esp & ~mask) | ((esp + os) & mask), sr = mem_sr(in);
    c->bv->gpr[4] = new_esp; /* for the address only: a fault below is taken with the old ESP */
    uint32_t off = ea_offset(c, in);
    c->bv->gpr[4] = esp;
    TRY(seg_check(c, sr, off, os, true));
    TRY(vmem_write(c, c->seg[sr].base + off, &v, os, user_kind(c)));
    c->bv->gpr[4] = new_esp;
    return next(c, in);
}

/* CALL/JMP near m (SDM Vol. 2A CALL, JMP): the target read through the
 * operand's segment, 16 bits with a 16-bit operand size; CALL pushes the
 * next EIP first. The guest's GS (translated code never uses it at ring 1,
 * bt/translate.c uses_state_seg) and operands the shadow refuses come here. */
static int emu_near_indirect(struct vcpu *c, const struct dec_insn *in)
{
    uint32_t target = 0;
    TRY(mem_rw(c, in, 0, &target, in->opsize, false));
    if (in->mnemonic == DEC_M_CALL)
        TRY(push_guest(c, c->bv->eip + in->len, in->opsize));
    c->bv->eip = in->opsize == 2 ? target & 0xFFFF : target;
    return 0;
}

/* An instruction of the host-execution whitelist (vmm/hostexec.h) on memory
 * the shadow cannot map: the guest's operand is checked against its segment
 * and read (with write intent if the instruction writes it; not at all if
 * it only writes, as SETcc), the host CPU runs the instruction on a copy,
 * the bytes are written back, and only then are registers and flags
 * committed, so that a fault leaves the guest as it was. DIV/IDIV that
 * would divide by zero or overflow get their #DE here (SDM Vol. 2A DIV). */
static int emu_hostexec(struct vcpu *c)
{
    struct dec_insn in;
    struct hostexec h;
    uint8_t bytes[16];
    TRY(fetch_decode_bytes(c, &in, bytes));
    int size = hostexec_build(&in, bytes, &h);
    if (size < 0)
        return unsupported(c, &in, "instruction changed while emulated");
    int i = in.ops[0].kind == DEC_OP_MEM ? 0 : 1;
    bool rd = in.ops[i].flags & DEC_OPF_READ, wr = in.ops[i].flags & DEC_OPF_WRITE;
    unsigned sr = mem_sr(&in);
    uint32_t off = ea_offset(c, &in), lin = c->seg[sr].base + off, divisor = 0;
    TRY(seg_check(c, sr, off, (uint32_t)size, wr));
    memset(h.mem, 0, sizeof(h.mem));
    if (rd)
        TRY(vmem_read(c, lin, h.mem, (uint32_t)size, user_kind(c) | (wr ? PF_W : 0)));
    memcpy(&divisor, h.mem, sizeof(divisor));
    if ((in.mnemonic == DEC_M_DIV || in.mnemonic == DEC_M_IDIV) &&
        hostexec_div_faults((unsigned)size, in.mnemonic == DEC_M_IDIV, c->bv->gpr[0], c->bv->gpr[2], divisor))
        return raise(c, T_DE, -1);
    memcpy(h.gpr, c->bv->gpr, sizeof(h.gpr));
    h.eflags = c->bv->eflags;
    hostexec_run(&h);
    if (wr)
        TRY(vmem_write(c, lin, h.mem, (uint32_t)size, user_kind(c)));
    h.gpr[4] = c->bv->gpr[4];
    memcpy(c->bv->gpr, h.gpr, sizeof(h.gpr));
    c->bv->eflags = (c->bv->eflags & ~ARITH_FLAGS) | (h.eflags & ARITH_FLAGS);
    return next(c, &in);
}

/* MOV between a register and memory the shadow cannot map (monitor range,
 * traced page tables, device memory): the one data move we emulate. */
static int emu_mov_mem(struct vcpu *c, const struct dec_insn *in)
{
    bool sx = in->mnemonic == DEC_M_MOVSX;
    if (!mem_emulable(in)) {
        vm_kill(c->vm, "%s at eip %08x touches linear %08x, which the monitor must emulate (not supported for it)",
                dec_mnemonic_name(in->mnemonic), c->bv->eip, in->has_mem ? ea_linear(c, in) : 0);
        return -1;
    }
    if (in->mnemonic == DEC_M_XCHG) { /* atomic on one vCPU */
        uint32_t a = 0, b = 0;
        TRY(op_read_rmw(c, in, 0, &a));
        TRY(op_read_rmw(c, in, 1, &b));
        TRY(op_write(c, in, 0, b));
        TRY(op_write(c, in, 1, a));
        return next(c, in);
    }
    int alu = alu_of(in->mnemonic);
    if (alu >= 0)
        return emu_alu(c, in, (enum alu_op)alu);
    if (is_bt(in->mnemonic))
        return emu_bt(c, in);
    if (hostexec_allowed(in))
        return emu_hostexec(c);
    if ((in->mnemonic == DEC_M_PUSH || in->mnemonic == DEC_M_POP) && in->num_ops == 1)
        return emu_push_pop_m(c, in);
    if (is_near_indirect(in))
        return emu_near_indirect(c, in);
    if (string_size(in))
        return emu_string(c, in);
    uint32_t v = 0;
    if (in->mnemonic == DEC_M_XLAT) { /* AL = [seg:eBX + AL] */
        TRY(mem_rw(c, in, 0, &v, 1, false));
        reg_write(c, DEC_REG_AL, v);
        return next(c, in);
    }
    TRY(op_read(c, in, 1, &v));
    if (sx)
        v = in->ops[1].size == 1 ? (uint32_t)(int32_t)(int8_t)v : (uint32_t)(int32_t)(int16_t)v;
    TRY(op_write(c, in, 0, v));
    return next(c, in);
}

/* Whether the CPU, holding the shadow of segment register sr, accepts size
 * bytes at off: what the monitor's shadow (vmm/segment.c) lets through. */
static bool shadow_allows(const struct vcpu *c, unsigned sr, uint32_t off, uint32_t size)
{
    const struct vseg *s = &c->seg[sr];
    uint32_t field = (s->flags & DESC_FLAG_G) ? s->limit >> 12 : s->limit;
    uint64_t d = seg_shadow_desc(desc_make(s->base, field, (uint8_t)(s->access | DESC_P), s->flags));
    return d && seg_access_ok(desc_base_of(d), desc_limit_bytes(d), desc_access(d), desc_flags(d), off, size, false);
}

/* One memory access of an instruction: segment register, offset, bytes. */
struct seg_access { unsigned sr; uint32_t off, size; bool write; };

/* The segment accesses in (a MOVS/STOS/LODS element, or its memory operand)
 * makes next; returns how many (0-2). */
static int insn_accesses(const struct vcpu *c, const struct dec_insn *in, struct seg_access a[2])
{
    unsigned m = in->mnemonic, size = string_size(in), n = 0;
    uint32_t mask = in->addrsize == 2 ? 0xFFFFu : 0xFFFFFFFFu;
    if (size) {
        if (reads_si(m))
            a[n++] = (struct seg_access){ mem_sr(in), c->bv->gpr[6] & mask, size, false };
        if (uses_di(m))
            a[n++] = (struct seg_access){ SR_ES, c->bv->gpr[7] & mask, size, is_stos(m) || is_movs(m) };
        return (int)n;
    }
    bool write = in->attr & DEC_A_MEM_WRITE; /* the decoder's word: IDIV m, CMP m, TEST m only read */
    for (int i = 0; i < in->num_ops && i < 2; i++) {
        if (in->ops[i].kind != DEC_OP_MEM)
            continue;
        uint32_t off = is_bt(in->mnemonic) ? bt_offset(c, in) : ea_offset(c, in);
        a[n++] = (struct seg_access){ mem_sr(in), off, in->ops[i].size, write };
        break;
    }
    if (!n && in->has_mem) /* implicit (bt/decode.c implicit_mem): XLAT, MASKMOVQ, MASKMOVDQU */
        a[n++] = (struct seg_access){ mem_sr(in), ea_offset(c, in), implicit_size(in), write };
    return (int)n;
}

/*
 * A #GP, or a #SS for an access through SS, from guest code (translated, or
 * ring 3 run directly) at an instruction with a memory operand (vector:
 * T_GP or T_SS). The shadow of a segment may accept less than the guest's
 * own descriptor: its limit stops below MONITOR_BASE and is rounded down to
 * a page with G=1, and an expand-down segment has no valid offset at all
 * (vmm/segment.h). An access the shadow refused is checked against the
 * guest's own segment -- #GP(0)/#SS(0) past its limit, as on hardware --
 * and otherwise emulated. Any other fault is the guest's own, with the
 * CPU's error code. Implicit stack accesses (PUSH, POP, CALL...) name no
 * memory operand: their #SS is always the guest's (docs/vmm.md).
 */
static int emu_seg_fault(struct vcpu *c, const struct dec_insn *in, unsigned vector)
{
    struct seg_access a[2];
    int n = in->has_mem ? insn_accesses(c, in, a) : 0;
    bool refused = false;
    for (int i = 0; i < n; i++)
        refused = refused || !shadow_allows(c, a[i].sr, a[i].off, a[i].size);
    /* Ring-3 code must not stop its VM with an instruction we do not
     * emulate there: it gets the #GP (a documented difference). */
    if (!refused || (c->cpl == 3 && (!mem_emulable(in) || (in->attr & DEC_A_PRIV))))
        return raise(c, vector, (int)c->tf.error);
    /* A string instruction checks each element's source, then destination,
     * in emu_string (a #PF on the source comes before a #GP on the
     * destination); one memory operand is checked here, as a write if it
     * will be written. */
    for (int i = 0; i < n && !string_size(in); i++)
        TRY(seg_check(c, a[i].sr, a[i].off, a[i].size, a[i].write));
    return emu_mov_mem(c, in);
}

int emu_fwait_len(struct vcpu *c)
{
    struct dec_insn in;
    return fetch_decode(c, &in) == 0 && in.mnemonic == DEC_M_FWAIT ? in.len : 0;
}

/* BOUND r, m: signed bounds check, #BR outside (SDM Vol. 2A BOUND). */
static int emu_bound(struct vcpu *c, const struct dec_insn *in)
{
    uint32_t lo = 0, hi = 0;
    TRY(mem_rw(c, in, 0, &lo, in->opsize, false));
    TRY(mem_rw(c, in, in->opsize, &hi, in->opsize, false));
    int32_t idx = (int32_t)reg_read(c, in->ops[0].reg), l = (int32_t)lo, h = (int32_t)hi;
    if (in->opsize == 2)
        idx = (int16_t)idx, l = (int16_t)l, h = (int16_t)h;
    if (idx < l || idx > h)
        return raise(c, T_BR, -1);
    return next(c, in);
}

/* PUSHF/POPF the translator leaves to us: 16-bit operands, and POPF at
 * CPL 3 (SDM Vol. 2B POPF: IOPL changes only at CPL 0, IF only if CPL <= IOPL). */
static int emu_pushf_popf(struct vcpu *c, const struct dec_insn *in)
{
    uint32_t esp = c->bv->gpr[4], n = in->opsize, img = 0, lin = 0, mask = stack_mask(c);
    if (in->mnemonic == DEC_M_PUSHF || in->mnemonic == DEC_M_PUSHFD) {
        img = vcpu_eflags(c) & ~(EFLAGS_RF | EFLAGS_VM);
        if (!(c->bv->cr[0] & CR0_PE))
            img = (img & 0xFFFF0000u) | rm_flags_image(img);
        TRY(push_guest(c, img, n));
        return next(c, in);
    } else {
        TRY(stack_slot(c, 0, n, false, &lin));
        TRY(vmem_read(c, lin, &img, n, user_kind(c)));
        esp = (esp & ~mask) | ((esp + n) & mask);
        uint32_t fl = n == 2 ? (vcpu_eflags(c) & 0xFFFF0000u) | img : img;
        fl &= ~(EFLAGS_RF | EFLAGS_VM); /* POPF clears RF, never sets VM */
        if (c->cpl > ((c->bv->vflags_sys & EFLAGS_IOPL) >> 12))
            fl = (fl & ~EFLAGS_IF) | c->bv->vflags_if; /* IF kept when CPL > IOPL */
        vcpu_set_eflags(c, fl, c->cpl == 0);
        if (c->cpl != 0 && (vcpu_eflags(c) & EFLAGS_IOPL) >> 12 >= c->cpl)
            c->bv->vflags_if = fl & EFLAGS_IF;
    }
    c->bv->gpr[4] = esp;
    return next(c, in);
}

/* ---------------------------------------------------------------- 4. real mode and 16-bit code */

/* Pop an os-byte (2 or 4) value at SS:eSP, checked against the guest's SS;
 * eSP advanced (wrapping as SS.B says) only on success. */
static int pop_guest(struct vcpu *c, uint32_t *v, unsigned os)
{
    uint32_t lin = 0, mask = stack_mask(c), esp = c->bv->gpr[4];
    *v = 0;
    TRY(stack_slot(c, 0, os, false, &lin));
    TRY(vmem_read(c, lin, v, os, user_kind(c)));
    c->bv->gpr[4] = (esp & ~mask) | ((esp + os) & mask);
    return 0;
}

/* A real-mode code segment load: CS = sel, base sel * 16, the hidden limit
 * kept (vcpu_load_seg's real-mode rule), and the new IP. */
static void rm_jump(struct vcpu *c, uint16_t sel, uint32_t ip)
{
    vcpu_load_seg(c, SR_CS, sel); /* real mode: cannot fault */
    c->bv->eip = ip;
}

/* JMP/CALL far and RETF in real-address mode: no descriptor, no checks
 * but the stack's (SDM Vol. 2A JMP, CALL, Vol. 2B RET "real-address mode"). */
static int rm_far(struct vcpu *c, const struct dec_insn *in)
{
    uint32_t os = in->opsize, target = 0, cs = 0, esp = c->bv->gpr[4];
    uint16_t sel = 0;
    if (in->cf == DEC_CF_RETF) {
        TRY(pop_guest(c, &target, os));
        if (pop_guest(c, &cs, os)) {
            c->bv->gpr[4] = esp;
            return c->vm->stop_req ? -1 : 0;
        }
        c->bv->gpr[4] += in->stack_extra;
        rm_jump(c, (uint16_t)cs, os == 2 ? target & 0xFFFF : target);
        return 0;
    }
    if (in->ops[0].kind == DEC_OP_FAR) {
        sel = in->ops[0].sel;
        target = in->ops[0].imm;
    } else {
        TRY(mem_rw(c, in, os, &sel, 2, false));
        TRY(mem_rw(c, in, 0, &target, os, false));
    }
    if (os == 2)
        target &= 0xFFFF;
    if (in->cf == DEC_CF_CALL_FAR) {
        TRY(push_guest(c, c->seg[SR_CS].sel, os));
        if (push_guest(c, c->bv->eip + in->len, os)) {
            c->bv->gpr[4] = esp;
            return c->vm->stop_req ? -1 : 0;
        }
    }
    rm_jump(c, sel, target);
    return 0;
}

/* IRET in real-address mode: IP, CS, FLAGS (or EIP, CS, EFLAGS with a
 * 32-bit operand size) from the stack (SDM Vol. 2A IRET "real-address mode"). */
static int rm_iret(struct vcpu *c, const struct dec_insn *in)
{
    uint32_t os = in->opsize, ip = 0, cs = 0, fl = 0, esp = c->bv->gpr[4];
    if (pop_guest(c, &ip, os) || pop_guest(c, &cs, os) || pop_guest(c, &fl, os)) {
        c->bv->gpr[4] = esp;
        return c->vm->stop_req ? -1 : 0;
    }
    vcpu_set_eflags(c, rm_flags_pop(vcpu_eflags(c), fl, os), true);
    rm_jump(c, (uint16_t)cs, os == 2 ? ip & 0xFFFF : ip);
    return 0;
}

/* Jcc condition cc (the low nibble of 70h-7Fh / 0F 80h-8Fh) on eflags
 * (SDM Vol. 2A Jcc, Table B-1 of Vol. 1). */
static bool cond_holds(uint32_t fl, unsigned cc)
{
    bool cf = fl & EFLAGS_CF, zf = fl & EFLAGS_ZF, sf = fl & EFLAGS_SF, of = fl & EFLAGS_OF, pf = fl & EFLAGS_PF;
    bool r;
    switch (cc >> 1) {
    case 0: r = of; break;
    case 1: r = cf; break;
    case 2: r = zf; break;
    case 3: r = cf || zf; break;
    case 4: r = sf; break;
    case 5: r = pf; break;
    case 6: r = sf != of; break;
    default: r = zf || sf != of; break;
    }
    return (cc & 1) ? !r : r;
}

/* Near JMP/Jcc/CALL/RET/LOOP/JCXZ in 16-bit code the monitor emulates;
 * IP wraps at 64 KiB with a 16-bit operand size (decode_branch_target). */
static int emu_branch(struct vcpu *c, const struct dec_insn *in)
{
    uint32_t target = 0, v = 0, amask = in->addrsize == 2 ? 0xFFFFu : 0xFFFFFFFFu, *cx = &c->bv->gpr[1];
    if (in->cf == DEC_CF_RET) {
        TRY(pop_guest(c, &v, in->opsize));
        c->bv->gpr[4] += in->stack_extra;
        c->bv->eip = in->opsize == 2 ? v & 0xFFFF : v;
        return 0;
    }
    if (is_near_indirect(in))
        return emu_near_indirect(c, in);
    if (in->ops[0].kind == DEC_OP_REG) {
        target = reg_read(c, in->ops[0].reg);
    } else if (decode_branch_target(in, &target) != 0) {
        return unsupported(c, in, "branch not emulated");
    }
    bool taken = true;
    switch (in->cf) {
    case DEC_CF_JCC: taken = cond_holds(c->bv->eflags, in->opcode & 0xF); break;
    case DEC_CF_JCXZ: taken = (*cx & amask) == 0; break;
    case DEC_CF_LOOP: case DEC_CF_LOOPCC:
        *cx = (*cx & ~amask) | ((*cx - 1) & amask);
        taken = (*cx & amask) != 0;
        if (in->cf == DEC_CF_LOOPCC) /* E1 LOOPE: ZF = 1; E0 LOOPNE: ZF = 0 */
            taken = taken && ((c->bv->eflags & EFLAGS_ZF) != 0) == (in->opcode == 0xE1);
        break;
    case DEC_CF_CALL: TRY(push_guest(c, c->bv->eip + in->len, in->opsize)); break;
    default: break;
    }
    if (!taken)
        return next(c, in);
    c->bv->eip = in->opsize == 2 ? target & 0xFFFF : target;
    return 0;
}

/* PUSH r/imm, POP r, INC/DEC r: what mode switches and ISRs use around
 * the instructions that trap. INC and DEC leave CF alone (SDM Vol. 2A INC). */
static int emu_reg_misc(struct vcpu *c, const struct dec_insn *in)
{
    uint32_t v = 0, fl;
    unsigned os = in->opsize;
    switch (in->mnemonic) {
    case DEC_M_PUSH:
        TRY(op_read(c, in, 0, &v));
        TRY(push_guest(c, v, os));
        return next(c, in);
    case DEC_M_POP:
        TRY(pop_guest(c, &v, os));
        reg_write(c, in->ops[0].reg, v);
        return next(c, in);
    default: { /* INC, DEC */
        unsigned size = in->ops[0].size;
        v = reg_read(c, in->ops[0].reg);
        uint32_t r = alu_exec(in->mnemonic == DEC_M_INC ? ALU_ADD : ALU_SUB, size, v, 1, c->bv->eflags, &fl);
        reg_write(c, in->ops[0].reg, r);
        c->bv->eflags = (c->bv->eflags & ~(ARITH_FLAGS & ~EFLAGS_CF)) | (fl & ARITH_FLAGS & ~EFLAGS_CF);
        return next(c, in);
    }
    }
}

/* The exit reason whose handler emulates in (emu_dispatch), or -1. */
static int reason_of(const struct dec_insn *in)
{
    unsigned m = in->mnemonic;
    if (in->attr & DEC_A_IO)
        return BT_EXIT_IO;
    switch (in->cf) {
    case DEC_CF_HLT: return BT_EXIT_HLT;
    case DEC_CF_INT: case DEC_CF_INT3: case DEC_CF_INT1: case DEC_CF_INTO: return BT_EXIT_INT;
    case DEC_CF_JMP_FAR: case DEC_CF_CALL_FAR: case DEC_CF_RETF: return BT_EXIT_FAR;
    case DEC_CF_SYSENTER: case DEC_CF_SYSEXIT: case DEC_CF_SYSCALL: case DEC_CF_SYSRET: return BT_EXIT_SYSENTER;
    default: break;
    }
    if (m == DEC_M_CPUID)
        return BT_EXIT_CPUID;
    if (m == DEC_M_RDTSC)
        return BT_EXIT_RDTSC;
    if (m == DEC_M_RDMSR || m == DEC_M_WRMSR)
        return BT_EXIT_MSR;
    if (m == DEC_M_CLTS || m == DEC_M_LMSW || m == DEC_M_SMSW ||
        (m == DEC_M_MOV && in->num_ops == 2 && ((in->ops[0].reg >= DEC_REG_CR0 && in->ops[0].reg <= DEC_REG_CR7) ||
                                                (in->ops[1].reg >= DEC_REG_CR0 && in->ops[1].reg <= DEC_REG_CR7))))
        return BT_EXIT_MOV_CR;
    if (m == DEC_M_LGDT || m == DEC_M_LIDT || m == DEC_M_SGDT || m == DEC_M_SIDT || m == DEC_M_LLDT ||
        m == DEC_M_SLDT || m == DEC_M_LTR || m == DEC_M_STR)
        return BT_EXIT_DESC;
    if (in->attr & DEC_A_SEGLOAD)
        return BT_EXIT_SEG;
    if (m == DEC_M_MOV && in->num_ops == 2 && in->ops[1].kind == DEC_OP_REG && in->ops[1].reg >= DEC_REG_ES &&
        in->ops[1].reg <= DEC_REG_GS)
        return BT_EXIT_SEG; /* MOV r/m, Sreg */
    if ((m == DEC_M_PUSH || m == DEC_M_POP) && in->ops[0].kind == DEC_OP_REG && in->ops[0].reg >= DEC_REG_ES &&
        in->ops[0].reg <= DEC_REG_GS)
        return BT_EXIT_SEG;
    return -1;
}

int emu_step16(struct vcpu *c)
{
    struct dec_insn in;
    TRY(fetch_decode(c, &in));
    bool real = !(c->bv->cr[0] & CR0_PE);
    unsigned m = in.mnemonic;
    int reason = reason_of(&in);
    c->exits_by_reason[0]++;
    if (in.cf == DEC_CF_IRET)
        return real ? rm_iret(c, &in) : in.opsize == 4 ? emu_iret(c)
                                                       : unsupported(c, &in, "16-bit IRET in protected mode");
    if (reason >= 0)
        return emu_dispatch(c, &in, reason);
    if (m == DEC_M_CLI || m == DEC_M_STI) {
        c->bv->vflags_if = m == DEC_M_STI ? EFLAGS_IF : 0;
        return next(c, &in);
    }
    if (m == DEC_M_PUSHF || m == DEC_M_POPF || m == DEC_M_PUSHFD || m == DEC_M_POPFD)
        return emu_pushf_popf(c, &in);
    if (in.cf == DEC_CF_JMP || in.cf == DEC_CF_JCC || in.cf == DEC_CF_CALL || in.cf == DEC_CF_RET ||
        in.cf == DEC_CF_LOOP || in.cf == DEC_CF_LOOPCC || in.cf == DEC_CF_JCXZ)
        return emu_branch(c, &in);
    if (((m == DEC_M_PUSH || m == DEC_M_POP) && in.ops[0].kind != DEC_OP_MEM) ||
        ((m == DEC_M_INC || m == DEC_M_DEC) && in.ops[0].kind == DEC_OP_REG))
        return emu_reg_misc(c, &in);
    if (m == DEC_M_NOP || m == DEC_M_CLD || m == DEC_M_STD) {
        if (m != DEC_M_NOP)
            c->bv->eflags = m == DEC_M_STD ? c->bv->eflags | EFLAGS_DF : c->bv->eflags & ~EFLAGS_DF;
        return next(c, &in);
    }
    if (mem_emulable(&in))
        return emu_mov_mem(c, &in);
    return unsupported(c, &in, real ? "real-mode instruction not emulated outside virtual-8086 mode"
                                    : "16-bit protected-mode instruction not emulated");
}

/* ------------------------------------------------ guest memory through its GS */


int emu_ring3_gp(struct vcpu *c)
{
    struct dec_insn in;
    TRY(fetch_decode(c, &in));
    /* INT n from ring 3 hits a DPL-0 monitor gate: #GP(n*8+2). Deliver it
     * through the guest's IDT instead, with the guest gate's DPL check. */
    if (in.cf == DEC_CF_SYSENTER || in.cf == DEC_CF_SYSEXIT)
        return emu_sysenter(c, &in); /* host SYSENTER_CS is 0: the real one #GPs */
    if (in.attr & DEC_A_IO) /* the real TSS has no bitmap: the guest's may allow it */
        return emu_io(c, &in);
    /* With CR4.UMIP these fault at ring 3: answer with the guest's values. */
    if (in.mnemonic == DEC_M_SGDT || in.mnemonic == DEC_M_SIDT || in.mnemonic == DEC_M_SLDT || in.mnemonic == DEC_M_STR)
        return emu_desc(c, &in);
    if (in.mnemonic == DEC_M_SMSW)
        return emu_mov_cr(c, &in);
    if (in.cf == DEC_CF_INT || in.cf == DEC_CF_INT3 || in.cf == DEC_CF_INTO) {
        unsigned vec = in.cf == DEC_CF_INT ? in.ops[0].imm & 0xFF : in.cf == DEC_CF_INT3 ? T_BP : T_OF;
        if (in.cf == DEC_CF_INTO && !(c->bv->eflags & EFLAGS_OF))
            return next(c, &in);
        return vcpu_deliver(c, vec, -1, true, c->bv->eip + in.len) < 0 ? -1 : 0;
    }
    return emu_seg_fault(c, &in, T_GP); /* the shadow's narrower limit, or the guest's own #GP */
}

int emu_ring3_ss(struct vcpu *c)
{
    struct dec_insn in;
    TRY(fetch_decode(c, &in));
    return emu_seg_fault(c, &in, T_SS);
}

/*
 * Run-ahead after a segment load or VERW: Linux's kernel entry and exit are
 * runs of instructions that each need the monitor. SAVE_ALL loads DS, ES
 * (MOV r32,imm32 between) and FS; the return to user mode pops DS, ES, FS,
 * adds to ESP, runs VERW (CLEAR_CPU_BUFFERS, its MDS mitigation) and IRET,
 * or runs VERW, STI and SYSEXIT. The instructions that follow an exit of
 * that kind are looked at here and, while they are of these kinds,
 * emulated in the same exit:
 *   POP/MOV DS/ES/FS/GS (not SS: it has an interrupt shadow), MOV r32,imm32,
 *   ADD ESP,imm (flags computed), VERR/VERW, IRET (ends the run), and STI
 *   only when SYSEXIT follows it (both, which ends the run: the interrupt
 *   STI lets in is taken after SYSEXIT, SDM Vol. 3A §6.8.3).
 * Stops at anything else, at CPL 3, before an interrupt the guest would take,
 * and while single-stepping or with breakpoints armed. Fetches never fault:
 * code not readable just ends the run.
 */
enum ahead { AHEAD_NO, AHEAD_SEG, AHEAD_MOV_IMM, AHEAD_ADD_ESP, AHEAD_VERX, AHEAD_IRET, AHEAD_STI };

static enum ahead run_ahead_kind(const struct dec_insn *in)
{
    if (in->prefixes & DEC_PFX_LOCK)
        return AHEAD_NO;
    if (in->mnemonic == DEC_M_MOV && in->num_ops == 2 && in->ops[0].kind == DEC_OP_REG) {
        unsigned d = in->ops[0].reg;
        if (d == DEC_REG_DS || d == DEC_REG_ES || d == DEC_REG_FS || d == DEC_REG_GS)
            return in->ops[1].kind == DEC_OP_REG || in->ops[1].kind == DEC_OP_MEM ? AHEAD_SEG : AHEAD_NO;
        return in->opsize == 4 && d >= DEC_REG_EAX && d <= DEC_REG_EDI && in->ops[1].kind == DEC_OP_IMM
                   ? AHEAD_MOV_IMM : AHEAD_NO;
    }
    if (in->mnemonic == DEC_M_POP && in->num_ops == 1 && in->ops[0].kind == DEC_OP_REG) {
        unsigned d = in->ops[0].reg;
        return d == DEC_REG_DS || d == DEC_REG_ES || d == DEC_REG_FS || d == DEC_REG_GS ? AHEAD_SEG : AHEAD_NO;
    }
    if (in->mnemonic == DEC_M_ADD && in->num_ops == 2 && in->opsize == 4 && in->ops[0].kind == DEC_OP_REG &&
        in->ops[0].reg == DEC_REG_ESP && in->ops[1].kind == DEC_OP_IMM)
        return AHEAD_ADD_ESP;
    if (in->mnemonic == DEC_M_VERR || in->mnemonic == DEC_M_VERW)
        return AHEAD_VERX;
    if (in->cf == DEC_CF_IRET && in->opsize == 4)
        return AHEAD_IRET;
    if (in->mnemonic == DEC_M_STI)
        return AHEAD_STI;
    return AHEAD_NO;
}

/* EFLAGS after ADD r = a + b (32-bit): CF OF SF ZF AF PF (SDM Vol. 1 §3.4.3.1). */
static uint32_t add_flags(uint32_t eflags, uint32_t a, uint32_t b, uint32_t r)
{
    uint32_t f = eflags & ~(EFLAGS_CF | EFLAGS_PF | EFLAGS_AF | EFLAGS_ZF | EFLAGS_SF | EFLAGS_OF);
    if (r < a)
        f |= EFLAGS_CF;
    if (((a ^ r) & (b ^ r)) >> 31)
        f |= EFLAGS_OF;
    if (r >> 31)
        f |= EFLAGS_SF;
    if (r == 0)
        f |= EFLAGS_ZF;
    if ((a ^ b ^ r) & 0x10)
        f |= EFLAGS_AF;
    if (!(__builtin_popcount(r & 0xFF) & 1))
        f |= EFLAGS_PF;
    return f;
}

/* Decode the instruction at eip without faulting; false if there is none. */
static bool peek(struct vcpu *c, uint32_t eip, struct dec_insn *in)
{
    uint8_t buf[16];
    uint32_t got = c->bt.fetch(c->bt.fetch_ctx, eip, buf, sizeof(buf));
    return got && dec_decode(buf, got, eip, DEC_MODE_32, in) > 0;
}

static int run_ahead(struct vcpu *c)
{
    if (code_mode(c) != DEC_MODE_32 || !(c->bv->cr[0] & CR0_PE))
        return 0; /* peek decodes 32-bit protected-mode code only */
    for (unsigned n = 0; n < 12; n++) {
        if (c->cpl != 0 || c->stepping || (c->bv->vflags_sys & EFLAGS_TF) || (c->dr[7] & 0xFF) ||
            (c->bv->irq_pending && c->bv->vflags_if) || c->vm->stop_req)
            return 0;
        struct dec_insn in, then;
        if (!peek(c, c->bv->eip, &in))
            return 0;
        enum ahead kind = run_ahead_kind(&in);
        if (kind == AHEAD_STI && !(peek(c, c->bv->eip + in.len, &then) && then.cf == DEC_CF_SYSEXIT))
            return 0;
        if (kind == AHEAD_NO)
            return 0;
        c->run_ahead++;
        int rc = 0;
        switch (kind) {
        case AHEAD_SEG: rc = emu_seg(c, &in); break;
        case AHEAD_MOV_IMM:
            reg_write(c, in.ops[0].reg, in.ops[1].imm);
            rc = next(c, &in);
            break;
        case AHEAD_ADD_ESP: {
            uint32_t a = c->bv->gpr[4], r = a + in.ops[1].imm;
            c->bv->eflags = add_flags(c->bv->eflags, a, in.ops[1].imm, r);
            c->bv->gpr[4] = r;
            rc = next(c, &in);
            break;
        }
        case AHEAD_VERX: rc = emu_desc(c, &in); break;
        case AHEAD_IRET: return emu_iret(c);
        case AHEAD_STI:
            c->bv->vflags_if = EFLAGS_IF;
            next(c, &in);
            c->run_ahead++;
            return emu_sysenter(c, &then);
        default: return 0;
        }
        if (rc)
            return rc;
    }
    return 0;
}

/*
 * The translator could not fetch the instruction at CS:EIP whole: its bytes
 * end at the CS limit or at an unreadable page (bt_fetch). Past the limit is
 * #GP(0), which comes before any #PF (SDM Vol. 3A §5.3); otherwise the #PF
 * of the first byte it could not read, with the guest's error code.
 */
static int emu_code_fault(struct vcpu *c)
{
    uint8_t buf[DEC_MAX_LEN];
    struct dec_insn in;
    uint32_t lin = c->seg[SR_CS].base + c->bv->eip, b;
    if (c->bv->eip > c->seg[SR_CS].limit)
        return raise(c, T_GP, 0);
    uint32_t got = c->bt.fetch(c->bt.fetch_ctx, c->bv->eip, buf, DEC_MAX_LEN);
    uint64_t to_limit = (uint64_t)c->seg[SR_CS].limit - c->bv->eip + 1;
    int len = dec_decode(buf, got, c->bv->eip, DEC_MODE_32, &in);
    if (len > 0)
        return 0; /* readable now (the guest changed its tables): translate again */
    if (len == DEC_ERR_TRUNCATED && got == to_limit)
        return raise(c, T_GP, 0);
    int rc = vmem_read(c, lin + got, &b, 1, c->cpl == 3 ? PF_U : 0); /* injects that byte's #PF */
    if (rc)
        return rc < 0 ? rc : 0;
    vm_kill(c->vm, "guest code at %08x is not in guest RAM", lin + got);
    return -1;
}

int emu_bt_exit(struct vcpu *c, int reason)
{
    struct vm *vm = c->vm;
    struct dec_insn in;
    if (reason == BT_EXIT_IRQ_WINDOW)
        return 0; /* the run loop injects */
    if (reason == BT_EXIT_CODE_FAULT)
        return emu_code_fault(c);
    uint8_t bytes[16];
    TRY(fetch_decode_bytes(c, &in, bytes));
    /* The exit reason is the translator's verdict on the bytes it saw. The
     * guest may since have changed them or their mapping (the TC is looked
     * up by EIP): emulating what is there now under the old reason once let
     * POP EAX be taken for POP Sreg and index c->seg[] out of range. A stale
     * translation is dropped and the instruction translated afresh. */
    const struct bt_exit *ex = c->bt.exit;
    if (reason >= 0 && ex && ex->len && (in.len != ex->len || bt_insn_sum(bytes, in.len) != ex->insn_sum)) {
        c->stale_exits++;
        for (uint32_t i = 0; i < TC_BLOCK_PAGES; i++) /* its own two and its callees' */
            tc_invalidate_page(&c->bt.tc, ex->from->page[i]);
        return 0;
    }
    vm->exits++;
    if (reason >= 0 && reason < BT_EXIT_COUNT) {
        c->exits_by_reason[reason]++;
        vcpu_note_exit(c, (unsigned)reason);
    } else if (reason < 0) {
        c->exits_by_reason[0]++; /* traps emulated as instructions (#GP, shadow-paging emulation) */
    }
    /* CPL 3 code under translation (IOPL 3): privileged instructions,
     * BT_EXIT_INVLPG among them, are #GP there. */
    if (c->cpl != 0 && (in.attr & DEC_A_PRIV))
        return raise(c, T_GP, 0);
    return emu_dispatch(c, &in, reason);
}

/* The handler of exit reason (or -vector, or -100 - SHADOW_*) for the
 * decoded instruction in at the guest EIP. */
static int emu_dispatch(struct vcpu *c, const struct dec_insn *in, int reason)
{
    struct vm *vm = c->vm;
    switch (reason) {
    case BT_EXIT_IO: vm->exits_by_cause[EXIT_IO]++; return emu_io(c, in);
    case BT_EXIT_HLT:
        vm->exits_by_cause[EXIT_HLT]++;
        c->halted = true;
        if (!c->bv->vflags_if) {
            /* Nothing can wake it (no NMI source here): the PC's way to power
             * off without ACPI -- Linux's poweroff ends in exactly this. */
            vm_kill(vm, "powered off (halted with interrupts disabled at eip %08x)", c->bv->eip);
            return -1;
        }
        return next(c, in);
    case BT_EXIT_INT: {
        vm->exits_by_cause[EXIT_INT]++;
        if (in->cf == DEC_CF_INTO && !(c->bv->eflags & EFLAGS_OF))
            return next(c, in);
        unsigned vec = in->cf == DEC_CF_INT ? in->ops[0].imm & 0xFF : in->cf == DEC_CF_INT3 ? T_BP : in->cf == DEC_CF_INT1 ? T_DB : T_OF;
        return vcpu_deliver(c, vec, -1, true, c->bv->eip + in->len) < 0 ? -1 : 0;
    }
    case BT_EXIT_IRET: vm->exits_by_cause[EXIT_IRET]++; return emu_iret(c);
    case BT_EXIT_FAR: vm->exits_by_cause[EXIT_PRIV]++; return emu_far(c, in);
    case BT_EXIT_SYSENTER: vm->exits_by_cause[EXIT_PRIV]++; return emu_sysenter(c, in);
    case BT_EXIT_CPUID: vm->exits_by_cause[EXIT_PRIV]++; return emu_cpuid(c, in);
    case BT_EXIT_RDTSC: {
        vm->exits_by_cause[EXIT_PRIV]++;
        uint64_t t = rdtsc();
        c->bv->gpr[0] = (uint32_t)t;
        c->bv->gpr[2] = (uint32_t)(t >> 32);
        return next(c, in);
    }
    case BT_EXIT_MSR: vm->exits_by_cause[EXIT_PRIV]++; return emu_msr(c, in);
    case BT_EXIT_MOV_CR:
    case BT_EXIT_CR3_WRITE:
        vm->exits_by_cause[reason == BT_EXIT_CR3_WRITE ? EXIT_CR3 : EXIT_PRIV]++;
        return emu_mov_cr(c, in);
    case BT_EXIT_DESC: {
        vm->exits_by_cause[EXIT_PRIV]++;
        int rc = emu_desc(c, in);
        return rc ? rc : run_ahead(c);
    }
    case BT_EXIT_SEG: {
        vm->exits_by_cause[EXIT_PRIV]++;
        int rc = emu_seg(c, in);
        return rc ? rc : run_ahead(c);
    }
    case BT_EXIT_UD: vm->exits_by_cause[EXIT_EXCEPTION]++; return raise(c, T_UD, -1);
    case BT_EXIT_INVLPG:
        /* Only while shadow page tables are out of sync (bt/translate.c
         * h_invlpg); no fault on the operand (SDM Vol. 2A INVLPG). */
        vm->exits_by_cause[EXIT_PRIV]++;
        shadow_invlpg(&c->sh, ea_linear(c, in));
        return next(c, in);
    case -T_GP:
    case -T_SS:
        /* A #GP or #SS in translated code: the shadow's narrower limit, or
         * a genuine guest fault. */
        return emu_seg_fault(c, in, reason == -T_GP ? T_GP : T_SS);
    case -100 - SHADOW_EMULATE_PT:
    case -100 - SHADOW_EMULATE_MONITOR:
    case -100 - SHADOW_MMIO:
        return emu_mov_mem(c, in);
    case -100 - SHADOW_CODE_WRITE: /* its stores reach vmem_access's smc_store */
        return mem_emulable(in) ? emu_mov_mem(c, in) : vcpu_code_write_unprotect(c);
    default:
        vm->exits_by_cause[EXIT_BT]++;
        if (in->mnemonic == DEC_M_WBINVD || in->mnemonic == DEC_M_INVD)
            return next(c, in);
        if (in->mnemonic == DEC_M_BOUND)
            return emu_bound(c, in);
        if (in->mnemonic == DEC_M_PUSHF || in->mnemonic == DEC_M_POPF || in->mnemonic == DEC_M_PUSHFD ||
            in->mnemonic == DEC_M_POPFD)
            return emu_pushf_popf(c, in);
        if (in->mnemonic == DEC_M_MOV && in->num_ops == 2 &&
            ((in->ops[0].reg >= DEC_REG_DR0 && in->ops[0].reg <= DEC_REG_DR7) ||
             (in->ops[1].reg >= DEC_REG_DR0 && in->ops[1].reg <= DEC_REG_DR7)))
            return emu_mov_dr(c, in);
        /* The guest's own GS, which translated code never uses at ring 1
         * (bt/translate.c uses_state_seg): anything emu_mov_mem emulates. */
        if (in->has_mem && in->mem.seg == DEC_REG_GS)
            return emu_mov_mem(c, in);
        return unsupported(c, in, "instruction not emulated");
    }
}
