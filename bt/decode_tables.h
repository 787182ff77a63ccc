/*
 * Private to the decoder: the shape of the tables that scripts/gen-opcodes.py
 * generates from bt/opcodes.def into build/bt/opcodes.c. Not part of the API.
 */
#ifndef HV86_BT_DECODE_TABLES_H
#define HV86_BT_DECODE_TABLES_H
#include <stdint.h>
#include "bt/decode.h"

/* Operand addressing methods (SDM Vol. 2D §A.2.1, plus our fixed forms). */
enum dec_opm {
    OPM_NONE = 0,
    OPM_E,      /* ModRM r/m: general register or memory */
    OPM_M,      /* ModRM r/m: memory only */
    OPM_R,      /* ModRM r/m: general register only */
    OPM_RF,     /* ModRM r/m: general register, mod ignored (MOV CRn/DRn) */
    OPM_G,      /* ModRM reg: general register */
    OPM_Z,      /* opcode bits 2:0: general register */
    OPM_S,      /* ModRM reg: segment register */
    OPM_C,      /* ModRM reg: control register */
    OPM_D,      /* ModRM reg: debug register */
    OPM_P,      /* ModRM reg: MMX register */
    OPM_Q,      /* ModRM r/m: MMX register or memory */
    OPM_N,      /* ModRM r/m: MMX register only */
    OPM_V,      /* ModRM reg: XMM register */
    OPM_W,      /* ModRM r/m: XMM register or memory */
    OPM_U,      /* ModRM r/m: XMM register only */
    OPM_STI,    /* ModRM r/m: x87 ST(i) */
    OPM_I,      /* immediate, zero-extended */
    OPM_IS,     /* imm8 sign-extended to the operand size */
    OPM_J,      /* relative branch displacement */
    OPM_A,      /* direct far pointer ptr16:16/32 */
    OPM_O,      /* moffs: address-size offset, no ModRM */
    OPM_X,      /* string source DS:[eSI] */
    OPM_Y,      /* string destination ES:[eDI] */
    OPM_FIXED,  /* fixed register in .reg */
    OPM_FIXED_V,/* AX or EAX by operand size */
    OPM_ONE,    /* the constant 1 (shift by one) */
};

/* Operand size codes (SDM Vol. 2D §A.2.2). */
enum dec_osz {
    SZ_0 = 0, SZ_B, SZ_W, SZ_D, SZ_Q, SZ_X, SZ_T, SZ_V, SZ_Z, SZ_P, SZ_S, SZ_A,
    SZ_E, SZ_F, SZ_FX, SZ_VW, SZ_DW, SZ_DB, SZ_LINE,
};

/* Operand spec flags. */
#define SPEC_READ     DEC_OPF_READ
#define SPEC_WRITE    DEC_OPF_WRITE
#define SPEC_IMPLICIT DEC_OPF_IMPLICIT
#define SPEC_NOACCESS 0x08u

struct dec_opspec {
    uint8_t method; /* enum dec_opm */
    uint8_t size;   /* enum dec_osz */
    uint8_t flags;  /* SPEC_* */
    uint8_t reg;    /* enum dec_reg for OPM_FIXED */
};

/* Mandatory-prefix classes a row accepts (bit per class). */
#define PFX_NONE 0x1u
#define PFX_66   0x2u
#define PFX_F3   0x4u
#define PFX_F2   0x8u
#define PFX_ANY  0xFu

#define MATCH_ANY 0xFFu
#define MOD_ANY 0
#define MOD_MEM 1
#define MOD_REG 2

/* One encoding: predicates that select it, then its facts. */
struct dec_row {
    uint16_t mnemonic;    /* enum dec_mnemonic */
    uint8_t  pfx;         /* PFX_* mask */
    uint8_t  reg;         /* ModRM.reg or MATCH_ANY */
    uint8_t  rm;          /* ModRM.rm or MATCH_ANY */
    uint8_t  mod;         /* MOD_* */
    uint8_t  osz;         /* 0 any, 2 or 4: required operand size */
    uint8_t  asz;         /* 0 any, 2 or 4: required address size */
    uint8_t  cf;          /* enum dec_cf */
    int8_t   stack;       /* stack slots */
    uint8_t  ud;          /* DEC_UD_NONE or DEC_UD_UNSUPPORTED */
    uint8_t  nops;
    uint32_t attr;        /* DEC_A_* */
    uint32_t fr, fw;      /* DEC_FL_* */
    struct dec_opspec ops[DEC_MAX_OPS];
};

/* Per (map, opcode byte): where its rows are. */
#define OPI_MODRM     0x01u  /* a ModRM byte follows the opcode */
#define OPI_MODRM_REG 0x02u  /* ...and always names a register: mod ignored (MOV CRn) */
struct dec_opinfo {
    uint16_t first;  /* index into dec_rows */
    uint8_t  count;  /* 0 = reserved opcode */
    uint8_t  flags;  /* OPI_* */
};

extern const struct dec_opinfo dec_opinfo[DEC_MAP_COUNT][256];
extern const struct dec_row dec_rows[];
extern const unsigned dec_row_count;
/* Lowercase mnemonic names, indexed by enum dec_mnemonic. */
extern const char *const dec_mnemonic_names[DEC_M_COUNT];

#endif /* HV86_BT_DECODE_TABLES_H */
