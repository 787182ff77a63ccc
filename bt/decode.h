/*
 * IA-32 instruction decoder for the binary translator.
 *
 * API: stable
 *
 * One call, dec_decode(), turns the bytes of one instruction into a
 * struct dec_insn: length, opcode identity, prefixes, ModRM/SIB, operands,
 * the byte offsets of every displacement/immediate/relative field (so the
 * translator can relocate or rewrite them), and the attributes the
 * translator and the monitor need (control-flow kind, privileged, sensitive,
 * I/O, memory access, stack effect, EFLAGS read/written, #UD reasons).
 *
 * Coverage: the legacy one-byte map, 0F, 0F 38 and 0F 3A maps: general
 * purpose, system, x87, MMX, SSE..SSE4.2 (+ SSSE3, POPCNT, CRC32, MOVBE,
 * AES-NI, PCLMULQDQ, XSAVE family, RDRAND/RDSEED, LZCNT/TZCNT, ADX).
 * VEX (C4/C5), EVEX (62), XOP (8F) and 3DNow! (0F 0F) encodings are outside
 * our CPU model: they decode to DEC_ERR_UD with ud == DEC_UD_UNSUPPORTED,
 * with the length still computed for VEX (docs/bt.md).
 *
 * The opcode facts live in bt/opcodes.def (one line per encoding, SDM
 * Vol. 2 Appendix A); scripts/gen-opcodes.py turns them into the tables in
 * build/bt/opcodes.c at build time. Freestanding and hosted; no allocation.
 */
#ifndef HV86_BT_DECODE_H
#define HV86_BT_DECODE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Longest legal instruction, bytes (Intel SDM Vol. 2A §2.3.11). */
#define DEC_MAX_LEN 15
/* Most explicit operands any IA-32 instruction encodes (e.g. SHLD r/m, r, imm8). */
#define DEC_MAX_OPS 4

/* Default operand/address size of the code segment (CS.D), in bits. */
enum dec_mode {
    DEC_MODE_16 = 16,
    DEC_MODE_32 = 32,
};

/* Return codes of dec_decode() (negative, STYLE.md §5). */
enum dec_err {
    DEC_ERR_TRUNCATED = -1, /* input ended before the instruction did */
    DEC_ERR_TOO_LONG  = -2, /* would exceed 15 bytes: #GP(0) on hardware */
    DEC_ERR_UD        = -3, /* invalid or unsupported encoding: #UD; see insn->ud */
};

/* Why an encoding raises #UD (valid when dec_decode() returned DEC_ERR_UD). */
enum dec_ud {
    DEC_UD_NONE = 0,
    DEC_UD_RESERVED,     /* opcode/group slot not defined (UD0/UD1/UD2 decode: cf == DEC_CF_UD) */
    DEC_UD_LOCK,         /* LOCK on a non-lockable instruction or a register destination */
    DEC_UD_NEEDS_MEM,    /* register form (ModRM.mod == 3) of a memory-only operand */
    DEC_UD_BAD_REG,      /* reserved register number (Sreg 6/7, MOV CS, CR1/CR5-7, ...) */
    DEC_UD_UNSUPPORTED,  /* valid on some CPU, not in our CPU model (VEX/EVEX/XOP/3DNow!, ...) */
    DEC_UD_NEEDS_REG,    /* memory form (ModRM.mod != 3) of a register-only operand */
};

/* Opcode maps (Intel SDM Vol. 2D Appendix A.3). */
enum dec_map {
    DEC_MAP_PRIMARY = 0, /* one-byte opcodes */
    DEC_MAP_0F      = 1, /* two-byte 0F xx */
    DEC_MAP_0F38    = 2, /* three-byte 0F 38 xx */
    DEC_MAP_0F3A    = 3, /* three-byte 0F 3A xx */
    DEC_MAP_COUNT
};

/*
 * Mnemonic identities. The names match Zydis' mnemonic strings uppercased
 * (so the differential test maps them by name); bt/mnemonics.def is the list.
 */
enum dec_mnemonic {
#define DEC_MNEMONIC(name) DEC_M_##name,
#include "bt/mnemonics.def"
#undef DEC_MNEMONIC
    DEC_M_COUNT
};

/*
 * Registers, grouped in classes of 8 so that DEC_REG_<CLASS>0 + n is register
 * number n of that class (the ModRM encoding order, SDM Vol. 2A Table 2-1).
 */
enum dec_reg {
    DEC_REG_NONE = 0,
    DEC_REG_EAX, DEC_REG_ECX, DEC_REG_EDX, DEC_REG_EBX,
    DEC_REG_ESP, DEC_REG_EBP, DEC_REG_ESI, DEC_REG_EDI,
    DEC_REG_AX, DEC_REG_CX, DEC_REG_DX, DEC_REG_BX,
    DEC_REG_SP, DEC_REG_BP, DEC_REG_SI, DEC_REG_DI,
    DEC_REG_AL, DEC_REG_CL, DEC_REG_DL, DEC_REG_BL,
    DEC_REG_AH, DEC_REG_CH, DEC_REG_DH, DEC_REG_BH,
    DEC_REG_ES, DEC_REG_CS, DEC_REG_SS, DEC_REG_DS,
    DEC_REG_FS, DEC_REG_GS, DEC_REG_SEG6_, DEC_REG_SEG7_, /* 6, 7: reserved */
    DEC_REG_CR0, DEC_REG_CR1, DEC_REG_CR2, DEC_REG_CR3,
    DEC_REG_CR4, DEC_REG_CR5, DEC_REG_CR6, DEC_REG_CR7,
    DEC_REG_DR0, DEC_REG_DR1, DEC_REG_DR2, DEC_REG_DR3,
    DEC_REG_DR4, DEC_REG_DR5, DEC_REG_DR6, DEC_REG_DR7,
    DEC_REG_ST0, DEC_REG_ST1, DEC_REG_ST2, DEC_REG_ST3,
    DEC_REG_ST4, DEC_REG_ST5, DEC_REG_ST6, DEC_REG_ST7,
    DEC_REG_MM0, DEC_REG_MM1, DEC_REG_MM2, DEC_REG_MM3,
    DEC_REG_MM4, DEC_REG_MM5, DEC_REG_MM6, DEC_REG_MM7,
    DEC_REG_XMM0, DEC_REG_XMM1, DEC_REG_XMM2, DEC_REG_XMM3,
    DEC_REG_XMM4, DEC_REG_XMM5, DEC_REG_XMM6, DEC_REG_XMM7,
    DEC_REG_COUNT
};
#define DEC_REG_GPR32 DEC_REG_EAX
#define DEC_REG_GPR16 DEC_REG_AX
#define DEC_REG_GPR8  DEC_REG_AL
#define DEC_REG_SEG   DEC_REG_ES
#define DEC_REG_CR    DEC_REG_CR0
#define DEC_REG_DR    DEC_REG_DR0
#define DEC_REG_ST    DEC_REG_ST0
#define DEC_REG_MM    DEC_REG_MM0
#define DEC_REG_XMM   DEC_REG_XMM0

/* Prefix bits in dec_insn.prefixes (SDM Vol. 2A §2.1.1). */
#define DEC_PFX_LOCK   0x0001u /* F0 */
#define DEC_PFX_REPNE  0x0002u /* F2 seen (any position) */
#define DEC_PFX_REP    0x0004u /* F3 seen (any position) */
#define DEC_PFX_OPSIZE 0x0008u /* 66 */
#define DEC_PFX_ADSIZE 0x0010u /* 67 */
#define DEC_PFX_SEG    0x0020u /* some segment override (see dec_insn.seg) */

/* Effective repeat prefix: the last F2/F3 wins, as on hardware. */
enum dec_rep { DEC_REP_NONE = 0, DEC_REP_REPNE = 0xF2, DEC_REP_REP = 0xF3 };

/* Control-flow kind (what the translator must end a block on). */
enum dec_cf {
    DEC_CF_NONE = 0,
    DEC_CF_JMP,      /* JMP rel / JMP r/m (indirect when DEC_A_INDIRECT) */
    DEC_CF_JCC,      /* Jcc rel8/rel16/rel32 */
    DEC_CF_CALL,     /* CALL rel / CALL r/m */
    DEC_CF_RET,      /* RET, RET imm16 */
    DEC_CF_RETF,     /* RETF, RETF imm16 */
    DEC_CF_IRET,     /* IRET/IRETD */
    DEC_CF_INT,      /* INT imm8 */
    DEC_CF_INT3,     /* INT3 (CC) */
    DEC_CF_INT1,     /* INT1/ICEBP (F1) */
    DEC_CF_INTO,     /* INTO */
    DEC_CF_LOOP,     /* LOOP rel8 */
    DEC_CF_LOOPCC,   /* LOOPE/LOOPNE rel8 */
    DEC_CF_JCXZ,     /* JCXZ/JECXZ rel8 (address size picks CX/ECX) */
    DEC_CF_JMP_FAR,  /* JMP ptr16:16/32 (direct) or JMP m16:16/32 (indirect) */
    DEC_CF_CALL_FAR, /* CALL ptr16:16/32 or CALL m16:16/32 */
    DEC_CF_SYSENTER, /* SYSENTER */
    DEC_CF_SYSEXIT,  /* SYSEXIT */
    DEC_CF_SYSCALL,  /* SYSCALL (AMD; legal in legacy mode on AMD) */
    DEC_CF_SYSRET,   /* SYSRET */
    DEC_CF_HLT,      /* HLT: stops the vCPU */
    DEC_CF_UD,       /* UD0/UD1/UD2: always faults */
};

/* Attribute bits in dec_insn.attr. */
#define DEC_A_PRIV       0x00000001u /* CPL0 only: #GP(0) at CPL>0 */
#define DEC_A_SENSITIVE  0x00000002u /* unprivileged but reads/writes state a VMM virtualizes */
#define DEC_A_IOPL       0x00000004u /* faults when CPL > IOPL (CLI/STI, IN/OUT/INS/OUTS) */
#define DEC_A_IO         0x00000008u /* port I/O (IN/OUT/INS/OUTS) */
#define DEC_A_MEM_READ   0x00000010u /* reads memory (explicit operand or string/XLAT source) */
#define DEC_A_MEM_WRITE  0x00000020u /* writes memory (explicit operand or string destination) */
#define DEC_A_INDIRECT   0x00000040u /* control transfer through register/memory */
#define DEC_A_LOCKABLE   0x00000080u /* LOCK allowed when the destination is memory */
#define DEC_A_STRING     0x00000100u /* string instruction (REP-able, uses ESI/EDI/ECX) */
#define DEC_A_X87        0x00000200u /* uses x87 state (CR0.EM/TS: #NM) */
#define DEC_A_MMX        0x00000400u /* uses MMX state */
#define DEC_A_SSE        0x00000800u /* uses XMM/MXCSR state (CR4.OSFXSR) */
#define DEC_A_STACK      0x00001000u /* implicit stack access (see stack_slots) */
#define DEC_A_STACK_VAR  0x00002000u /* stack change not a fixed slot count (ENTER/LEAVE) */
#define DEC_A_SEGLOAD    0x00004000u /* loads a segment register (MOV/POP Sreg, LxS, far CF) */
#define DEC_A_SERIAL     0x00008000u /* serializing (CPUID, IRET, MOV CR, ...) */
#define DEC_A_MOFFS      0x00010000u /* A0-A3 direct offset: disp field is the moffs */
#define DEC_A_NOP        0x00020000u /* architectural no-op (NOP, hint NOPs, PAUSE, prefetch) */

/* EFLAGS bits, architectural positions (SDM Vol. 1 §3.4.3). */
#define DEC_FL_CF   0x00000001u
#define DEC_FL_PF   0x00000004u
#define DEC_FL_AF   0x00000010u
#define DEC_FL_ZF   0x00000040u
#define DEC_FL_SF   0x00000080u
#define DEC_FL_TF   0x00000100u
#define DEC_FL_IF   0x00000200u
#define DEC_FL_DF   0x00000400u
#define DEC_FL_OF   0x00000800u
#define DEC_FL_IOPL 0x00003000u
#define DEC_FL_NT   0x00004000u
#define DEC_FL_RF   0x00010000u
#define DEC_FL_VM   0x00020000u
#define DEC_FL_AC   0x00040000u
#define DEC_FL_VIF  0x00080000u
#define DEC_FL_VIP  0x00100000u
#define DEC_FL_ID   0x00200000u
#define DEC_FL_ARITH (DEC_FL_CF | DEC_FL_PF | DEC_FL_AF | DEC_FL_ZF | DEC_FL_SF | DEC_FL_OF)
#define DEC_FL_ALL   0x003F7FD5u

/* Operand kinds. */
enum dec_op_kind {
    DEC_OP_NONE = 0,
    DEC_OP_REG,  /* op.reg */
    DEC_OP_MEM,  /* insn.mem (at most one memory operand per instruction) */
    DEC_OP_IMM,  /* op.imm (already sign/zero-extended as the CPU does) */
    DEC_OP_REL,  /* relative branch: target = decode_branch_target() */
    DEC_OP_FAR,  /* direct far pointer: op.imm = offset, op.sel = selector */
};

/* Operand flags (dec_operand.flags). */
#define DEC_OPF_READ     0x01u /* operand is read */
#define DEC_OPF_WRITE    0x02u /* operand is written */
#define DEC_OPF_IMPLICIT 0x04u /* fixed by the opcode (AL in ADD AL,imm8; DX in IN; 1 in SHL r,1) */

struct dec_operand {
    uint8_t  kind;   /* enum dec_op_kind */
    uint8_t  flags;  /* DEC_OPF_* */
    uint16_t size;   /* bytes accessed (memory: m16:32 = 6, FXSAVE = 512; 0 = no access, e.g. LEA) */
    uint8_t  reg;    /* enum dec_reg, for DEC_OP_REG */
    uint16_t sel;    /* selector, for DEC_OP_FAR */
    uint32_t imm;    /* DEC_OP_IMM value / DEC_OP_FAR offset / DEC_OP_REL raw displacement */
};

/* Memory operand: seg:[base + index*scale + disp], address size insn.addrsize. */
struct dec_mem {
    uint8_t seg;      /* enum dec_reg: effective segment (override or default DS/SS) */
    uint8_t base;     /* enum dec_reg or DEC_REG_NONE */
    uint8_t index;    /* enum dec_reg or DEC_REG_NONE */
    uint8_t scale;    /* 1, 2, 4, 8 (1 when no index) */
    int32_t disp;     /* sign-extended displacement (moffs: zero-extended offset) */
};

struct dec_insn {
    uint32_t addr;         /* address of the first byte (EIP-relative space of the caller) */
    uint8_t  len;          /* total length, bytes (1..15) */
    uint8_t  mode;         /* enum dec_mode the instruction was decoded in */
    uint8_t  opsize;       /* effective operand size, bytes: 2 or 4 */
    uint8_t  addrsize;     /* effective address size, bytes: 2 or 4 */

    uint16_t mnemonic;     /* enum dec_mnemonic; DEC_M_INVALID on #UD */
    uint8_t  map;          /* enum dec_map */
    uint8_t  opcode;       /* last opcode byte within the map */
    uint8_t  opcode_off;   /* offset of that byte in the instruction */

    uint16_t prefixes;     /* DEC_PFX_* */
    uint8_t  num_prefixes; /* legacy prefix bytes before the opcode (repeats counted) */
    uint8_t  seg;          /* segment override, last one wins (enum dec_reg), or DEC_REG_NONE */
    uint8_t  rep;          /* enum dec_rep */

    bool     has_modrm;
    bool     has_sib;
    uint8_t  modrm;        /* raw byte */
    uint8_t  mod, reg, rm; /* ModRM fields */
    uint8_t  sib;          /* raw byte */
    uint8_t  modrm_off;    /* offset of the ModRM byte */

    uint8_t  disp_off, disp_size;  /* displacement (or moffs) field; size 0 = none */
    uint8_t  imm_off, imm_size;    /* first immediate field; size 0 = none */
    uint8_t  imm2_off, imm2_size;  /* second immediate (ENTER's imm8, far ptr selector) */
    uint8_t  rel_off, rel_size;    /* relative-branch displacement field; size 0 = none */

    uint8_t  num_ops;
    struct dec_operand ops[DEC_MAX_OPS]; /* in Intel order, destination first */
    bool     has_mem;
    struct dec_mem mem;

    uint8_t  cf;           /* enum dec_cf */
    uint8_t  ud;           /* enum dec_ud (DEC_UD_NONE unless #UD) */
    int8_t   stack_slots;  /* stack change in operand-size slots: -1 push, +2 far ret, ... */
    uint16_t stack_extra;  /* extra bytes released (RET imm16) */
    uint32_t attr;         /* DEC_A_* */
    uint32_t flags_read;   /* DEC_FL_* read */
    uint32_t flags_written;/* DEC_FL_* written or left undefined */
};

/*
 * dec_decode - decode one instruction.
 *   buf/avail: the instruction bytes available at addr (avail may exceed 15;
 *              fewer than the instruction needs gives DEC_ERR_TRUNCATED).
 *   addr:      address of buf[0], stored in insn->addr (for branch targets).
 *   mode:      DEC_MODE_16 or DEC_MODE_32 (CS.D).
 * Returns the length in bytes (1..15) and fills *insn, or a negative
 * enum dec_err. On DEC_ERR_UD, insn->ud says why and insn->len is the
 * length up to and including the bytes needed to decide (0 if unknown).
 * Pure function of its inputs; no allocation; ~100 ns.
 * Source: Intel SDM Vol. 2A ch. 2 (format), Vol. 2D Appendix A (maps).
 */
int dec_decode(const uint8_t *buf, size_t avail, uint32_t addr, enum dec_mode mode,
               struct dec_insn *insn);

/*
 * decode_branch_target - target of a relative branch (insn->rel_size != 0):
 * addr + len + rel, truncated to 16 bits when the operand size is 16
 * (SDM Vol. 2A JMP/Jcc/CALL: "EIP <- EIP AND 0000FFFFH"). Returns 0 and
 * sets *target; E_INVAL-like -1 if the instruction has no relative field.
 */
int decode_branch_target(const struct dec_insn *insn, uint32_t *target);

/* dec_stack_bytes - net ESP change in bytes (negative = push) for fixed-slot
 * instructions: stack_slots * opsize + stack_extra. 0 when none or variable. */
int32_t dec_stack_bytes(const struct dec_insn *insn);

/* dec_mnemonic_name - lowercase name of a mnemonic ("add"); "?" if out of range. */
const char *dec_mnemonic_name(unsigned mnemonic);

/* dec_reg_name - lowercase name of a register ("eax", "xmm3"); "" for NONE. */
const char *dec_reg_name(unsigned reg);

#endif /* HV86_BT_DECODE_H */
