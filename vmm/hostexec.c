/*
 * Host execution of one guest data instruction on a bounce buffer
 * (vmm/hostexec.h). The stub is:
 *
 *   [66] [F2|F3]  opcode bytes  ModRM(mod=00, reg, r/m=101)  disp32=&h->mem  [imm] [imm2]  C3
 *
 * Trust: bytes and registers are the guest's. Only the decoder's verdict on
 * them is used, and only for whitelisted mnemonics in their memory form;
 * every stub is decoded again before it runs (stub_ok), and a test
 * (tests/unit/test_hostexec.c) decodes every stub it can build from random
 * bytes and checks that it reads and writes nothing but h->mem.
 */
#include <stddef.h>
#include "vmm/hostexec.h"
#include "kernel/kernel.h"

_Static_assert(offsetof(struct hostexec, eflags) == HOSTEXEC_EFLAGS, "vmm/hostexec_run.S frame");
_Static_assert(offsetof(struct hostexec, code) == HOSTEXEC_CODE, "vmm/hostexec_run.S frame");

#define MODRM_DISP32 0x05 /* mod=00 r/m=101: [disp32] (SDM Vol. 2A Table 2-2) */
#define OP_RET       0xC3

/* The instructions host execution runs: integer, no control flow, no
 * segment or system state, results in general registers and flags. */
static bool whitelisted(unsigned m)
{
    switch (m) {
    case DEC_M_INC: case DEC_M_DEC: case DEC_M_NOT: case DEC_M_NEG:
    case DEC_M_MUL: case DEC_M_IMUL: case DEC_M_DIV: case DEC_M_IDIV:
    case DEC_M_ROL: case DEC_M_ROR: case DEC_M_RCL: case DEC_M_RCR:
    case DEC_M_SHL: case DEC_M_SHR: case DEC_M_SAR: case DEC_M_SHLD: case DEC_M_SHRD:
    case DEC_M_BSF: case DEC_M_BSR:
    case DEC_M_CMPXCHG: case DEC_M_CMPXCHG8B: case DEC_M_XADD:
    case DEC_M_SETO: case DEC_M_SETNO: case DEC_M_SETB: case DEC_M_SETNB:
    case DEC_M_SETZ: case DEC_M_SETNZ: case DEC_M_SETBE: case DEC_M_SETNBE:
    case DEC_M_SETS: case DEC_M_SETNS: case DEC_M_SETP: case DEC_M_SETNP:
    case DEC_M_SETL: case DEC_M_SETNL: case DEC_M_SETLE: case DEC_M_SETNLE:
    case DEC_M_CMOVO: case DEC_M_CMOVNO: case DEC_M_CMOVB: case DEC_M_CMOVNB:
    case DEC_M_CMOVZ: case DEC_M_CMOVNZ: case DEC_M_CMOVBE: case DEC_M_CMOVNBE:
    case DEC_M_CMOVS: case DEC_M_CMOVNS: case DEC_M_CMOVP: case DEC_M_CMOVNP:
    case DEC_M_CMOVL: case DEC_M_CMOVNL: case DEC_M_CMOVLE: case DEC_M_CMOVNLE:
        return true;
    default:
        return false;
    }
}

/* A register operand the stub may name: a general register, not ESP/SP
 * (the stub runs on the monitor's stack). */
static bool reg_ok(unsigned r)
{
    bool gpr = (r >= DEC_REG_EAX && r <= DEC_REG_EDI) || (r >= DEC_REG_AX && r <= DEC_REG_DI) ||
               (r >= DEC_REG_AL && r <= DEC_REG_BH);
    return gpr && r != DEC_REG_ESP && r != DEC_REG_SP;
}

/* The size of in's one memory operand, or 0 if its shape is not one the
 * stub can take: a ModRM memory operand, every other operand a usable
 * register or an immediate. */
static unsigned mem_operand_size(const struct dec_insn *in)
{
    unsigned size = 0;
    if (!in->has_modrm || in->mod == 3 || !in->has_mem || in->cf != DEC_CF_NONE || in->stack_slots)
        return 0;
    if (in->attr & (DEC_A_PRIV | DEC_A_IO | DEC_A_STRING))
        return 0;
    for (unsigned i = 0; i < in->num_ops; i++) {
        const struct dec_operand *op = &in->ops[i];
        if (op->kind == DEC_OP_MEM && !size)
            size = op->size;
        else if (op->kind == DEC_OP_MEM || (op->kind == DEC_OP_REG && !reg_ok(op->reg)) ||
                 (op->kind != DEC_OP_REG && op->kind != DEC_OP_IMM))
            return 0;
    }
    return size == 1 || size == 2 || size == 4 || size == 8 ? size : 0;
}

/* The stub of n bytes, decoded again, is what it must be (invariant 13 of
 * docs/security.md, checked on every build, not only by test_hostexec):
 * in's mnemonic, its one memory operand at [disp32] = h->mem with no
 * segment override and 32-bit addressing, registers reg_ok, then RET. */
static bool stub_ok(const struct dec_insn *in, const struct hostexec *h, unsigned n)
{
    struct dec_insn out;
    int len = dec_decode(h->code, n, (uint32_t)(uintptr_t)h->code, DEC_MODE_32, &out);
    if (len <= 0 || (unsigned)len != n - 1 || h->code[len] != OP_RET || out.mnemonic != in->mnemonic)
        return false;
    if (!out.has_mem || out.mem.base || out.mem.index || out.seg || out.addrsize != 4 ||
        (uint32_t)out.mem.disp != (uint32_t)(uintptr_t)h->mem)
        return false;
    return mem_operand_size(&out) == mem_operand_size(in);
}

bool hostexec_allowed(const struct dec_insn *in)
{
    return mem_operand_size(in) && whitelisted(in->mnemonic) && in->modrm_off > in->num_prefixes;
}

int hostexec_build(const struct dec_insn *in, const uint8_t *bytes, struct hostexec *h)
{
    unsigned size = mem_operand_size(in), n = 0;
    if (!hostexec_allowed(in))
        return E_INVAL;
    for (unsigned i = 0; i < in->num_prefixes; i++) /* LOCK, segment and address-size prefixes go */
        if (bytes[i] == 0x66 || bytes[i] == 0xF2 || bytes[i] == 0xF3)
            h->code[n++] = bytes[i];
    for (unsigned i = in->num_prefixes; i < in->modrm_off; i++) /* 0F escapes and the opcode */
        h->code[n++] = bytes[i];
    h->code[n++] = (uint8_t)((in->reg & 7) << 3 | MODRM_DISP32);
    uint32_t disp = (uint32_t)(uintptr_t)h->mem;
    for (unsigned i = 0; i < 4; i++)
        h->code[n++] = (uint8_t)(disp >> (8 * i));
    for (unsigned i = 0; i < in->imm_size; i++)
        h->code[n++] = bytes[in->imm_off + i];
    for (unsigned i = 0; i < in->imm2_size; i++)
        h->code[n++] = bytes[in->imm2_off + i];
    h->code[n++] = OP_RET;
    return stub_ok(in, h, n) ? (int)size : E_INVAL;
}

bool hostexec_div_faults(unsigned size, bool is_signed, uint32_t eax, uint32_t edx, uint32_t divisor)
{
    if (!is_signed) {
        uint32_t high = size == 1 ? (eax >> 8) & 0xFF : size == 2 ? edx & 0xFFFF : edx;
        uint32_t d = size == 4 ? divisor : divisor & ((1u << (8 * size)) - 1);
        return d == 0 || high >= d; /* the quotient fits iff the high half is below the divisor */
    }
    if (size == 1) {
        int32_t n = (int16_t)eax, d = (int8_t)divisor;
        return d == 0 || n / d < -128 || n / d > 127;
    }
    if (size == 2) {
        int32_t n = (int32_t)((edx << 16) | (eax & 0xFFFF)), d = (int16_t)divisor;
        if (d == 0 || (n == INT32_MIN && d == -1))
            return true;
        return n / d < -32768 || n / d > 32767;
    }
    /* 64 by 32 bits, without a 64-bit division: |q| > limit iff |n| >= (limit + 1) * |d|. */
    int64_t n = (int64_t)((uint64_t)edx << 32 | eax);
    int32_t d = (int32_t)divisor;
    if (d == 0)
        return true;
    bool negative = (n < 0) != (d < 0);
    uint64_t un = n < 0 ? 0 - (uint64_t)n : (uint64_t)n;
    uint64_t ud = d < 0 ? 0 - (uint64_t)(int64_t)d : (uint64_t)d;
    uint64_t bound = (negative ? 0x80000001ull : 0x80000000ull) * ud;
    return un >= bound;
}
