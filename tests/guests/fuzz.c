/*
 * fuzz — differential CPU fuzzer: generates random CPL-0 programs from a
 * seed, runs each in a sandbox, prints one digest line per program. The
 * same image runs natively (Bochs) and as an hv86 VM; tests/integration/
 * fuzz.py compares the lines (docs/testing.md, "Differential fuzzer").
 *
 * Command line (boot_arg): seed=S first=F count=C [dump=N]
 *   programs F .. F+C-1 of seed S run; program n depends only on (S, n), so
 *   any range can be re-run alone. dump=N [first=F] runs F..N (F = N by
 *   default) and prints program N's bytes,
 *   descriptors, initial and final state in full (one `FZD` line each).
 *
 * Output, one line per program (hex fields):
 *   FZ <n> v=<vector> e=<error code> r=<regs> m=<memory> g=<descriptors> a=<acc>
 *     vector   the exception that ended the program; 40 = it reached its
 *              end marker (`int $0x40`), i.e. no fault
 *     regs     FNV-1a of EAX..EDI, EFLAGS, CS:EIP, DS ES FS GS and CR2 (#PF)
 *              as the trap frame holds them
 *     memory   FNV-1a of the sandbox pages and the program's stack window
 *     descriptors  FNV-1a of the GDT slots 7-15 and the 4 LDT entries,
 *              accessed bits cleared; a= FNV-1a of those accessed bits
 *   rf= EFLAGS.RF in the frame (apart from the regs hash)
 *   (memory covers the stack from the final ESP up, not the trap frame)
 *   and `FZ-END first=F count=C` when the range is done.
 *
 * Memory (physical; identity-mapped in both page directories unless said):
 *   0x300000  RW page: the fuzz GDT (16 entries) and LDT (4) right after it
 *   0x301000  program stack, 2 pages; ESP starts at PROG_ESP
 *   0x304000  code page (the program), read-only while the program runs
 *   0x310000  6 sandbox frames, mapped (PD_prog and PD_run) at
 *             0x00000000 (1, PD_prog only), 0x00400000 (2),
 *             0xFBFFF000 and 0xFC000000 (hv86's MONITOR_BASE; 1 each),
 *             0xFFFFF000 (1, the last page before the 4 GiB wrap)
 *   0x320000  page tables
 * While a program runs, CR3 = PD_prog: the low 4 MiB minus the first MiB,
 * read-only (CR0.WP=1) except the RW page and the stack, so a wild store
 * through a wrapped segment faults instead of corrupting this runner. The
 * trap handler switches back to PD_run.
 *
 * The program runs at CPL 0 with SS flat (the trap frame is pushed there:
 * exceptions at CPL 0 do not switch stacks) and ESP changed only by
 * balanced pushes and pops; every other register is random.
 */
#include "guest.h"

void *memset(void *d, int c, size_t n);

#define RW_PAGE    0x300000u
#define STACK_LO   0x301000u
#define PROG_ESP   0x302800u
#define CODE_LIN   0x304000u
#define CODE_MAX   3900u              /* bytes of program; the end marker fits after */
#define SB_PHYS    0x310000u
#define SB_PAGES   6
#define PT_PHYS    0x320000u
#define MON_BASE   0xFC000000u        /* hv86's MONITOR_BASE */

#define END_VECTOR 0x40                /* `int $0x40`: the program's last instruction */
#define NSLOT      16                  /* fuzz GDT entries */
#define SEL_WINDOW 0x38                /* data segment over GDT slots 8-15 and the LDT */
#define SLOT_CODE0 14                  /* slots 14, 15: code segments for far transfers */
#define NLDT       4
#define MAX_DEPTH  16                  /* dwords a program may push beyond PROG_ESP */

struct rw {
    struct seg_desc gdt[NSLOT];
    struct seg_desc ldt[NLDT];
};
#define RW ((struct rw *)RW_PAGE)
static uint8_t *const code = (uint8_t *)CODE_LIN;

/* Sandbox pages: linear address in PD_prog, frame index. */
static const uint32_t sb_lin[SB_PAGES] = {
    0x00000000u, 0x00400000u, 0x00401000u, 0xFBFFF000u, MON_BASE, 0xFFFFF000u,
};
/* Interesting segment bases and offsets: region starts, the monitor, the wrap. */
static const uint32_t bases[] = { 0x00400000u, 0xFBFFF000u, MON_BASE, 0xFFFFF000u, 0, 0x00401000u };

/* ---------------------------------------------------------------- PRNG (xorshift32) */
static uint32_t rs;
static uint32_t rnd(void) { rs ^= rs << 13; rs ^= rs >> 17; rs ^= rs << 5; return rs; }
static uint32_t below(uint32_t n) { return rnd() % n; }
static bool chance(uint32_t n) { return below(n) == 0; }   /* 1 in n */

static uint32_t fnv(uint32_t h, const void *p, uint32_t len)
{
    const uint8_t *b = p;
    for (uint32_t i = 0; i < len; i++)
        h = (h ^ b[i]) * 16777619u;
    return h;
}
#define FNV0 2166136261u

/* ---------------------------------------------------------------- page tables */
static pte_t *const pd_run = (pte_t *)(PT_PHYS);
static pte_t *const pd_prog = (pte_t *)(PT_PHYS + 0x1000);
static pte_t *const pt_low_run = (pte_t *)(PT_PHYS + 0x2000);
static pte_t *const pt_low_prog = (pte_t *)(PT_PHYS + 0x3000);
static pte_t *const pt_sb = (pte_t *)(PT_PHYS + 0x4000);      /* 0x00400000 */
static pte_t *const pt_fbc = (pte_t *)(PT_PHYS + 0x5000);     /* 0xFBC00000 */
static pte_t *const pt_fc0 = (pte_t *)(PT_PHYS + 0x6000);     /* 0xFC000000 */
static pte_t *const pt_ffc = (pte_t *)(PT_PHYS + 0x7000);     /* 0xFFC00000 */

static void paging_build(void)
{
    memset((void *)PT_PHYS, 0, 8 * PAGE_SIZE);
    for (uint32_t i = 0; i < 1024; i++) {
        uint32_t pa = i * PAGE_SIZE;
        pt_low_run[i] = pa | PTE_P | PTE_W;
        bool rw = pa == RW_PAGE || pa == STACK_LO || pa == STACK_LO + PAGE_SIZE;
        pt_low_prog[i] = pa < 0x100000u ? 0 : pa | PTE_P | (rw ? PTE_W : 0);
    }
    pt_low_prog[0] = SB_PHYS | PTE_P | PTE_W;
    for (int i = 1; i < SB_PAGES; i++) {
        uint32_t va = sb_lin[i], pa = SB_PHYS + (uint32_t)i * PAGE_SIZE;
        pte_t *pt = PDX(va) == 1 ? pt_sb : PDX(va) == 1007 ? pt_fbc : PDX(va) == 1008 ? pt_fc0 : pt_ffc;
        pt[PTX(va)] = pa | PTE_P | PTE_W;
    }
    pd_run[0] = (uint32_t)pt_low_run | PTE_P | PTE_W;
    pd_prog[0] = (uint32_t)pt_low_prog | PTE_P | PTE_W;
    pte_t *pd[2] = { pd_run, pd_prog };
    for (int k = 0; k < 2; k++) {
        pd[k][1] = (uint32_t)pt_sb | PTE_P | PTE_W;
        pd[k][1007] = (uint32_t)pt_fbc | PTE_P | PTE_W;
        pd[k][1008] = (uint32_t)pt_fc0 | PTE_P | PTE_W;
        pd[k][1023] = (uint32_t)pt_ffc | PTE_P | PTE_W;
    }
    write_cr3((uint32_t)pd_run);
    write_cr0(read_cr0() | CR0_PG | CR0_WP);
}

/* ---------------------------------------------------------------- descriptors */
static uint32_t code_base[2];          /* bases of slots 14, 15 (chosen before the code) */

static struct seg_desc random_data_desc(void)
{
    uint32_t base = bases[below(ARRAY_SIZE(bases))] + (chance(3) ? below(0x2000) : 0) - (chance(4) ? below(0x40) : 0);
    uint32_t limit, flags = below(2) ? DF_DB : 0;
    switch (below(6)) {
    case 0: limit = below(0x2000); break;
    case 1: limit = 0xFFF + (below(8) - 4); break;
    case 2: limit = 0x1FFF; break;
    case 3: limit = 0xFFFFF; flags |= DF_G; break;
    case 4: limit = below(3); flags |= DF_G; break;
    default: limit = 0xFFFF; break;
    }
    static const uint8_t types[] = {
        DA_S | DA_W, DA_S | DA_W, DA_S | DA_W, DA_S, DA_S | DA_E | DA_W, DA_S | DA_E | DA_W, DA_S | DA_E,
        DA_S | DA_CODE | DA_R, DA_S | DA_CODE, DA_S | DA_CODE | DA_C | DA_R, DA_TSS32, DA_LDT,
    };
    uint8_t access = types[below(ARRAY_SIZE(types))] | (below(2) ? DA_A : 0) | DA_DPL(chance(4) ? below(4) : 0);
    if (!chance(24))
        access |= DA_P;
    return seg_make(base, limit, access, (uint8_t)(flags | (below(2) ? 1 : 0)));
}

/* Slots 14 and 15: 32-bit code segments far transfers land in, at the next
 * instruction of the code page: flat, based below the page with a byte
 * limit somewhere around the program (so fetches may cross it), or based
 * high so that the linear address wraps at 4 GiB. */
static void code_descs(uint32_t prog_len)
{
    for (int i = 0; i < 2; i++) {
        uint32_t limit = 0xFFFFF, flags = DF_DB | DF_G;
        switch (below(3)) {
        case 0: code_base[i] = 0; break;
        case 1:
            code_base[i] = CODE_LIN - below(0xF0) * PAGE_SIZE - below(2) * 0x10;
            limit = CODE_LIN - code_base[i] + (chance(2) ? prog_len + 16 : below(prog_len + 16));
            flags = DF_DB;
            break;
        default: code_base[i] = 0xFFF00000u; break;
        }
        uint8_t access = DA_P | DA_S | DA_CODE | (chance(8) ? 0 : DA_R) | (chance(6) ? DA_C : 0) |
                         DA_DPL(chance(5) ? below(4) : 0) | (below(2) ? DA_A : 0);
        if (chance(20))
            access &= (uint8_t)~DA_P;
        RW->gdt[SLOT_CODE0 + i] = seg_make(code_base[i], limit, access, (uint8_t)flags);
    }
}

static void tables_build(void)
{
    for (int i = 0; i < 7; i++)
        RW->gdt[i] = gdt[i];
    RW->gdt[SEL_LDT >> 3] = seg_make((uint32_t)RW->ldt, sizeof RW->ldt - 1, DA_P | DA_LDT, 0);
    RW->gdt[SEL_WINDOW >> 3] = seg_make((uint32_t)&RW->gdt[8], 8 * 8 + sizeof RW->ldt - 1, DA_P | DA_S | DA_W | DA_A, DF_DB);
    for (int i = 8; i < SLOT_CODE0; i++)
        RW->gdt[i] = random_data_desc();
    for (int i = 0; i < NLDT; i++)
        RW->ldt[i] = random_data_desc();
}

static void tables_load(void)
{
    /* lgdt again after every edit: hardware would not need it, but the
     * runner's own edits must not depend on how hv86 notices them. */
    struct dtr g = { sizeof RW->gdt - 1, (uint32_t)RW->gdt };
    lgdt(&g);
    lldt(SEL_LDT);
}

/* A selector a program loads: the random slots with any RPL, the window,
 * LDT entries, null, and ones that must fault (beyond the GDT or LDT
 * limit, system descriptors, the flat code segment). */
static uint16_t random_selector(void)
{
    switch (below(8)) {
    case 0: return (uint16_t)below(4);                                  /* null */
    case 1: return (uint16_t)((below(NLDT + 1) << 3) | SEL_TI | below(4));   /* LDT (index 4: beyond) */
    case 2: {
        static const uint16_t odd[] = { SEL_WINDOW, SEL_KCODE, SEL_TSS, SEL_LDT, NSLOT * 8, 0xFFF8 };
        return odd[below(ARRAY_SIZE(odd))];
    }
    default: return (uint16_t)(((8 + below(NSLOT - 8)) << 3) | (chance(4) ? below(4) : 0));
    }
}

/* ---------------------------------------------------------------- program generator */
/* Templates are rows of a table: opcode bytes and an operand form. */
enum form {
    F_RM_R,       /* op modrm: reg = GPR, rm = memory or register */
    F_RM_MEM,     /* op modrm, memory operand only (lea, bound, les...) */
    F_GRP,        /* op modrm with the /digit in `ext`; no immediate */
    F_GRP_I8,     /* ... and an imm8 */
    F_GRP_IZ,     /* ... and an imm16/32 (by operand size) */
    F_RM_R_I8,    /* op modrm imm8 (shld, imul r,rm,imm8) */
    F_ACC_I,      /* op imm8 (byte op) or imm16/32 */
    F_ONE,        /* opcode bytes alone */
    F_REG,        /* opcode + GPR (inc, dec, bswap, xchg eax) */
    F_MOV_I,      /* b8+r imm32 */
    F_STRING,     /* string op with any rep/size/segment prefix, ECX set before */
    F_MOFFS,      /* a0-a3 moffs */
    F_SREG_LOAD,  /* mov r, selector; mov sreg, r (or from memory) */
    F_SREG_POP,   /* push selector; pop sreg */
    F_SREG_STORE, /* mov r/m16, sreg */
    F_PUSHPOP,    /* push/pop of a GPR, imm, memory: keeps ESP in the window */
    F_POPF,       /* push imm; popf (TF, DF, IOPL, AC, arithmetic flags) */
    F_PUSHF,      /* pushf; pop r */
    F_FAR,        /* ljmp/lcall ptr16:32, push+push+lret into slot 14/15 */
    F_JCC,        /* forward jcc/jecxz/loop over the next instruction */
    F_AAM,        /* aam/aad imm8 (0: #DE for aam) */
};
/* Flags of a row. */
#define T_BYTE  0x01   /* 8-bit operand size (no 0x66; reg 4 is AH) */
#define T_WR    0x02   /* writes its r/m operand (no SS override: SS is flat) */
#define T_0F    0x04   /* two-byte opcode 0F xx */
#define T_NO66  0x08   /* operand size prefix meaningless or unwanted */
#define T_STACK 0x10   /* moves ESP: never skipped by a jcc */

struct tmpl { uint8_t op, form, ext, flags; uint8_t weight; };

static const struct tmpl tmpls[] = {
    /* two-operand ALU: add or adc sbb and sub xor cmp, both directions */
    { 0x00, F_RM_R, 0, T_BYTE | T_WR, 3 }, { 0x01, F_RM_R, 0, T_WR, 3 }, { 0x02, F_RM_R, 0, T_BYTE, 2 },
    { 0x03, F_RM_R, 0, 0, 2 }, { 0x09, F_RM_R, 0, T_WR, 1 }, { 0x11, F_RM_R, 0, T_WR, 1 },
    { 0x19, F_RM_R, 0, T_WR, 1 }, { 0x21, F_RM_R, 0, T_WR, 1 }, { 0x29, F_RM_R, 0, T_WR, 1 },
    { 0x31, F_RM_R, 0, T_WR, 1 }, { 0x38, F_RM_R, 0, T_BYTE, 1 }, { 0x3B, F_RM_R, 0, 0, 1 },
    { 0x84, F_RM_R, 0, T_BYTE, 1 }, { 0x85, F_RM_R, 0, 0, 1 },
    { 0x86, F_RM_R, 0, T_BYTE | T_WR, 1 }, { 0x87, F_RM_R, 0, T_WR, 1 },
    { 0x88, F_RM_R, 0, T_BYTE | T_WR, 3 }, { 0x89, F_RM_R, 0, T_WR, 4 },
    { 0x8A, F_RM_R, 0, T_BYTE, 3 }, { 0x8B, F_RM_R, 0, 0, 4 },
    { 0x8D, F_RM_MEM, 0, 0, 1 }, { 0x62, F_RM_MEM, 0, T_NO66, 1 },
    { 0xC4, F_RM_MEM, 0, 0, 1 }, { 0xC5, F_RM_MEM, 0, 0, 1 },
    { 0xB4, F_RM_MEM, 0, T_0F, 1 }, { 0xB5, F_RM_MEM, 0, T_0F, 1 },
    /* 0F two-operand */
    { 0xAF, F_RM_R, 0, T_0F, 1 }, { 0xB6, F_RM_R, 0, T_0F, 1 }, { 0xBF, F_RM_R, 0, T_0F, 1 },
    { 0xBC, F_RM_R, 0, T_0F, 1 }, { 0xBD, F_RM_R, 0, T_0F, 1 }, { 0xA3, F_RM_R, 0, T_0F, 1 },
    { 0xAB, F_RM_R, 0, T_0F | T_WR, 1 }, { 0xB3, F_RM_R, 0, T_0F | T_WR, 1 }, { 0xBB, F_RM_R, 0, T_0F | T_WR, 1 },
    { 0xB0, F_RM_R, 0, T_0F | T_BYTE | T_WR, 1 }, { 0xB1, F_RM_R, 0, T_0F | T_WR, 1 },
    { 0xC1, F_RM_R, 0, T_0F | T_WR, 1 }, { 0x44, F_RM_R, 0, T_0F, 1 }, { 0x4F, F_RM_R, 0, T_0F, 1 },
    { 0xA5, F_RM_R, 0, T_0F | T_WR, 1 }, { 0xA4, F_RM_R_I8, 0, T_0F | T_WR, 1 }, { 0xAC, F_RM_R_I8, 0, T_0F | T_WR, 1 },
    { 0x6B, F_RM_R_I8, 0, 0, 1 },
    { 0x02, F_RM_R, 0, T_0F | T_NO66, 1 }, { 0x03, F_RM_R, 0, T_0F | T_NO66, 1 },   /* lar, lsl */
    /* groups */
    { 0x80, F_GRP_I8, 8, T_BYTE | T_WR, 2 }, { 0x83, F_GRP_I8, 8, T_WR, 2 }, { 0x81, F_GRP_IZ, 8, T_WR, 2 },
    { 0xC6, F_GRP_I8, 0, T_BYTE | T_WR, 1 }, { 0xC7, F_GRP_IZ, 0, T_WR, 2 },
    { 0xF6, F_GRP_I8, 0, T_BYTE, 1 }, { 0xF7, F_GRP, 2, T_WR, 1 }, { 0xF7, F_GRP, 3, T_WR, 1 },
    { 0xF6, F_GRP, 4, T_BYTE, 1 }, { 0xF7, F_GRP, 5, 0, 1 }, { 0xF7, F_GRP, 6, 0, 1 }, { 0xF6, F_GRP, 7, T_BYTE, 1 },
    { 0xFE, F_GRP, 0, T_BYTE | T_WR, 1 }, { 0xFF, F_GRP, 1, T_WR, 1 },
    { 0xD1, F_GRP, 9, T_WR, 1 }, { 0xD3, F_GRP, 9, T_WR, 1 }, { 0xC0, F_GRP_I8, 9, T_BYTE | T_WR, 1 },
    { 0xBA, F_GRP_I8, 10, T_0F | T_WR, 1 },
    { 0x90, F_GRP, 0, T_0F | T_BYTE | T_WR, 1 }, { 0x9F, F_GRP, 0, T_0F | T_BYTE | T_WR, 1 },  /* seto, setg */
    { 0x00, F_GRP, 4, T_0F | T_NO66, 1 }, { 0x00, F_GRP, 5, T_0F | T_NO66, 1 },              /* verr, verw */
    { 0x00, F_GRP, 0, T_0F | T_WR, 1 }, { 0x00, F_GRP, 1, T_0F | T_WR, 1 },                  /* sldt, str */
    /* one-byte and register forms */
    { 0x90, F_ONE, 0, T_NO66, 1 }, { 0x98, F_ONE, 0, 0, 1 }, { 0x99, F_ONE, 0, 0, 1 }, { 0x9E, F_ONE, 0, T_NO66, 1 },
    { 0x9F, F_ONE, 0, T_NO66, 1 }, { 0xF5, F_ONE, 0, T_NO66, 1 }, { 0xFC, F_ONE, 0, T_NO66, 2 },
    { 0xFD, F_ONE, 0, T_NO66, 2 }, { 0x27, F_ONE, 0, T_NO66, 1 }, { 0x3F, F_ONE, 0, T_NO66, 1 },
    { 0xD7, F_ONE, 0, T_NO66, 1 }, { 0xCC, F_ONE, 0, T_NO66, 1 }, { 0xCE, F_ONE, 0, T_NO66, 1 },
    { 0x0B, F_ONE, 0, T_0F | T_NO66, 1 },
    { 0x40, F_REG, 0, 0, 1 }, { 0x48, F_REG, 0, 0, 1 }, { 0x90, F_REG, 0, 0, 1 }, { 0xC8, F_REG, 0, T_0F | T_NO66, 1 },
    { 0xB8, F_MOV_I, 0, T_NO66, 6 },
    { 0x04, F_ACC_I, 0, T_BYTE, 1 }, { 0x2D, F_ACC_I, 0, 0, 1 }, { 0xA9, F_ACC_I, 0, 0, 1 },
    { 0xD4, F_AAM, 0, T_NO66, 1 }, { 0xD5, F_AAM, 0, T_NO66, 1 },
    /* the point of the exercise */
    { 0xA4, F_STRING, 0, T_BYTE | T_WR, 3 }, { 0xA5, F_STRING, 0, T_WR, 3 }, { 0xA6, F_STRING, 0, T_BYTE, 2 },
    { 0xA7, F_STRING, 0, 0, 1 }, { 0xAA, F_STRING, 0, T_BYTE | T_WR, 2 }, { 0xAB, F_STRING, 0, T_WR, 3 },
    { 0xAC, F_STRING, 0, T_BYTE, 2 }, { 0xAD, F_STRING, 0, 0, 2 }, { 0xAE, F_STRING, 0, T_BYTE, 1 }, { 0xAF, F_STRING, 0, 0, 1 },
    { 0xA0, F_MOFFS, 0, T_BYTE, 1 }, { 0xA1, F_MOFFS, 0, 0, 1 }, { 0xA2, F_MOFFS, 0, T_BYTE | T_WR, 1 }, { 0xA3, F_MOFFS, 0, T_WR, 1 },
    { 0x8E, F_SREG_LOAD, 0, T_NO66, 8 }, { 0x00, F_SREG_POP, 0, T_STACK | T_NO66, 3 },
    { 0x8C, F_SREG_STORE, 0, T_WR, 2 },
    { 0x00, F_PUSHPOP, 0, T_STACK | T_NO66, 2 }, { 0x9D, F_POPF, 0, T_STACK | T_NO66, 1 }, { 0x9C, F_PUSHF, 0, T_STACK | T_NO66, 1 },
    { 0x00, F_FAR, 0, T_STACK | T_NO66, 3 }, { 0x00, F_JCC, 0, T_NO66, 2 },
};

static struct gen {
    uint32_t len;           /* bytes emitted */
    int depth;              /* dwords pushed beyond PROG_ESP */
    int cs_slot;            /* -1: flat SEL_KCODE, else 0/1 for slot 14/15 */
} g;

static void emit(uint8_t b) { code[g.len++] = b; }
static void emit16(uint32_t v) { emit((uint8_t)v); emit((uint8_t)(v >> 8)); }
static void emit32(uint32_t v) { emit16(v); emit16(v >> 16); }

/* A GPR number that is not ESP (ESP stays in the stack window). */
static uint8_t gpr(void) { uint8_t r = (uint8_t)below(7); return r >= 4 ? r + 1 : r; }

/* Offsets near the ends of pages, segments and 64 KiB. */
static uint32_t edge(void)
{
    static const uint32_t e[] = { 0, 0xFFC, 0x1000, 0x1FFC, 0x2000, 0xFFE, 0xFFFC, 0x10000, 0xFFFFFFFC };
    switch (below(10)) {
    case 0: case 1: case 2: case 3: case 4: return below(0x1000);
    case 5: case 6: case 7: return e[below(6)] + below(8) - 4;
    case 8: return e[6 + below(3)] + below(8) - 4;
    default: return rnd();
    }
}

/* A ModRM (+SIB, displacement) with reg field `reg`. A memory operand
 * never uses EBP or ESP as base (their default segment is SS, flat). */
static void modrm(uint8_t reg, bool a16, bool mem_only)
{
    if (!mem_only && chance(4)) {
        emit((uint8_t)(0xC0 | reg << 3 | gpr()));
        return;
    }
    if (a16) {
        static const uint8_t rm16[] = { 0, 1, 4, 5, 7 };
        uint8_t mod = (uint8_t)below(3);
        if (chance(4)) {
            emit((uint8_t)(reg << 3 | 6));
            emit16(edge());
            return;
        }
        emit((uint8_t)(mod << 6 | reg << 3 | rm16[below(5)]));
        if (mod == 1) emit((uint8_t)rnd());
        if (mod == 2) emit16(edge());
        return;
    }
    static const uint8_t base[] = { 0, 1, 2, 3, 6, 7 };
    uint8_t mod = (uint8_t)below(3);
    switch (below(4)) {
    case 0:
        emit((uint8_t)(reg << 3 | 5));
        emit32(edge());
        return;
    case 1: {                                             /* SIB */
        uint8_t b = chance(4) ? 5 : base[below(6)];
        uint8_t idx = (uint8_t)(chance(3) ? 4 : gpr());
        if (b == 5)
            mod = 0;                                      /* disp32, no base */
        emit((uint8_t)(mod << 6 | reg << 3 | 4));
        emit((uint8_t)(below(4) << 6 | idx << 3 | b));
        if (b == 5 || mod == 2) emit32(edge());
        if (mod == 1) emit((uint8_t)rnd());
        return;
    }
    default:
        emit((uint8_t)(mod << 6 | reg << 3 | base[below(6)]));
        if (mod == 1) emit((uint8_t)rnd());
        if (mod == 2) emit32(edge());
        return;
    }
}

/* Prefixes before an instruction; returns whether 0x67 and 0x66 were given. */
static void prefixes(const struct tmpl *t, bool *a16, bool *o16)
{
    static const uint8_t segs[] = { 0x26, 0x2E, 0x36, 0x3E, 0x64, 0x65, 0x65 };
    *a16 = chance(6);
    *o16 = !(t->flags & (T_BYTE | T_NO66)) && chance(5);
    if (chance(40))
        emit(0xF0);                                       /* lock: #UD unless a locked RMW */
    if (chance(2)) {
        uint8_t s = segs[below(ARRAY_SIZE(segs))];
        if (!(s == 0x36 && (t->flags & T_WR)))
            emit(s);
    }
    if (*o16) emit(0x66);
    if (*a16) emit(0x67);
}

static void gen_one(const struct tmpl *t);

static void gen_far(void)
{
    int slot = (int)below(2);
    uint16_t sel = (uint16_t)((SLOT_CODE0 + slot) << 3 | (chance(6) ? below(4) : 0));
    if (chance(12))
        sel = random_selector();
    uint32_t kind = below(3), insn = kind == 2 ? 11 : 7;
    uint32_t target = CODE_LIN + g.len + insn - code_base[slot];
    switch (kind) {
    case 0: emit(0xEA); emit32(target); emit16(sel); break;     /* ljmp ptr16:32 */
    case 1: emit(0x9A); emit32(target); emit16(sel); g.depth += 2; break;  /* lcall */
    default:                                                    /* push sel; push off; lret */
        emit(0x68); emit32(sel); emit(0x68); emit32(target); emit(0xCB);
        break;
    }
    g.cs_slot = slot;
}

static void gen_body(const struct tmpl *t)
{
    bool a16, o16;
    uint8_t r = gpr();
    switch (t->form) {
    case F_MOV_I:
        emit((uint8_t)(t->op + r));
        emit32(chance(2) ? edge() : rnd());
        return;
    case F_SREG_LOAD: {
        static const uint8_t sr[] = { 0, 3, 4, 5, 5 };        /* ES DS FS GS */
        uint8_t s = sr[below(ARRAY_SIZE(sr))];
        if (chance(5)) {
            prefixes(t, &a16, &o16);
            emit(0x8E);
            modrm(s, a16, true);
            return;
        }
        emit((uint8_t)(0xB8 + r));
        emit32(random_selector() | (chance(8) ? rnd() << 16 : 0));
        if (chance(4)) emit(0x66);
        emit(0x8E);
        emit((uint8_t)(0xC0 | s << 3 | r));
        return;
    }
    case F_SREG_POP: {
        if (g.depth >= MAX_DEPTH)
            return;
        emit(0x68);
        emit32(random_selector());
        static const uint8_t pops[][2] = { { 0x07, 0 }, { 0x1F, 0 }, { 0x0F, 0xA1 }, { 0x0F, 0xA9 }, { 0x0F, 0xA9 } };
        const uint8_t *p = pops[below(ARRAY_SIZE(pops))];
        emit(p[0]);
        if (p[1]) emit(p[1]);
        return;
    }
    case F_PUSHPOP:
        if (g.depth > 0 && chance(2)) {
            if (chance(3)) {                                   /* pop r/m32 */
                prefixes(&(struct tmpl){ 0x8F, F_GRP, 0, T_WR | T_NO66, 0 }, &a16, &o16);
                emit(0x8F);
                modrm(0, a16, false);
            } else {
                emit((uint8_t)(0x58 + r));
            }
            g.depth--;
        } else if (g.depth < MAX_DEPTH) {
            switch (below(3)) {
            case 0: emit((uint8_t)(0x50 + below(8))); break;
            case 1: emit(0x68); emit32(rnd()); break;
            default:                                           /* push r/m32 */
                prefixes(&(struct tmpl){ 0xFF, F_GRP, 6, T_NO66, 0 }, &a16, &o16);
                emit(0xFF);
                modrm(6, a16, false);
                break;
            }
            g.depth++;
        }
        return;
    case F_POPF: {
        uint32_t f = rnd() & (FL_CF | 4 | 0x10 | FL_ZF | 0x80 | FL_DF | FL_OF | FL_IOPL | FL_AC | FL_NT);
        if (chance(10)) f |= FL_TF;
        if (chance(2)) {
            emit(0x66); emit(0x68); emit16(f); emit(0x66); emit(0x9D);
        } else {
            emit(0x68); emit32(f); emit(0x9D);
        }
        return;
    }
    case F_PUSHF:
        emit(0x9C);
        emit((uint8_t)(0x58 + r));
        return;
    case F_FAR:
        if (g.depth + 2 <= MAX_DEPTH)
            gen_far();
        return;
    case F_JCC: {
        uint8_t op = chance(4) ? (uint8_t)(0xE0 + below(4)) : (uint8_t)(0x70 + below(16));  /* loopne loope loop jecxz */
        if (op < 0xE3 && chance(2))
            op = 0xE3;
        if (chance(6)) emit(0x67);
        emit(op);
        uint32_t at = g.len;
        emit(0);
        const struct tmpl *n;
        do
            n = &tmpls[below(ARRAY_SIZE(tmpls))];
        while (n->flags & T_STACK || n->form == F_JCC);
        gen_one(n);
        code[at] = (uint8_t)(g.len - at - 1);
        return;
    }
    default:
        break;
    }
    prefixes(t, &a16, &o16);
    if (t->form == F_STRING) {
        if (chance(3)) emit(chance(2) ? 0xF3 : 0xF2);
        emit(t->op);
        return;
    }
    if (t->flags & T_0F) emit(0x0F);
    switch (t->form) {
    case F_ONE: emit(t->op); return;
    case F_REG: emit((uint8_t)(t->op + r)); return;
    case F_AAM: emit(t->op); emit(chance(4) ? 0 : (uint8_t)rnd()); return;
    case F_ACC_I:
        emit(t->op);
        if (t->flags & T_BYTE) emit((uint8_t)rnd()); else if (o16) emit16(rnd()); else emit32(edge());
        return;
    case F_MOFFS:
        emit(t->op);
        if (a16) emit16(edge()); else emit32(edge());
        return;
    case F_SREG_STORE:
        emit(0x8C);
        modrm((uint8_t)below(6), a16, false);
        return;
    default:
        break;
    }
    emit(t->op);
    uint8_t reg = t->form == F_GRP || t->form == F_GRP_I8 || t->form == F_GRP_IZ ? t->ext : r;
    if (reg == 8) reg = (uint8_t)below(8);                 /* ALU group: any of the 8 */
    if (reg == 9) reg = (uint8_t)below(8);                 /* shift group */
    if (reg == 10) reg = (uint8_t)(4 + below(4));          /* bt bts btr btc */
    if ((t->flags & T_BYTE) && t->form == F_RM_R && chance(4)) reg = 4;  /* AH */
    modrm(reg, a16, t->form == F_RM_MEM);
    if (t->form == F_GRP_I8 || t->form == F_RM_R_I8) emit((uint8_t)rnd());
    if (t->form == F_GRP_IZ) { if (o16) emit16(rnd()); else emit32(chance(2) ? edge() : rnd()); }
}

static void gen_one(const struct tmpl *t)
{
    if (t->form == F_STRING) {
        if (chance(2)) {                                       /* the count */
            static const uint32_t counts[] = { 0, 1, 2, 3, 0x10001 };
            emit((uint8_t)0xB9);
            emit32(chance(2) ? below(64) : chance(3) ? below(0x1100) : counts[below(ARRAY_SIZE(counts))]);
        }
        if (chance(5)) emit(chance(2) ? 0xFC : 0xFD);
    }
    gen_body(t);
}

static uint32_t weight_total;

static const struct tmpl *pick(void)
{
    uint32_t w = below(weight_total);
    for (uint32_t i = 0; i < ARRAY_SIZE(tmpls); i++) {
        if (w < tmpls[i].weight)
            return &tmpls[i];
        w -= tmpls[i].weight;
    }
    return &tmpls[0];
}

static void gen_program(void)
{
    g.len = 0;
    g.depth = 0;
    g.cs_slot = -1;
    uint32_t n = 4 + below(28);
    for (uint32_t i = 0; i < n && g.len < CODE_MAX - 64; i++)
        gen_one(pick());
    emit(0xCD);
    emit(END_VECTOR);
}

/* ---------------------------------------------------------------- running one program */
struct state { uint32_t eax, ecx, edx, ebx, ebp, esi, edi, eflags, ds, es, fs, gs; };
struct state fuzz_init;               /* read by fuzz_enter */
uint32_t fuzz_runner_esp;             /* in the runner's stack, restored by fuzz_leave */
uint32_t fuzz_pd_prog;
static struct trapframe result;
static uint32_t result_cr2;

void fuzz_enter(void);
void fuzz_leave(void) __attribute__((noreturn));
asm(".text\n"
    "fuzz_enter:\n\t"
    "pushal\n\t"
    "pushfl\n\t"
    "mov %esp, fuzz_runner_esp\n\t"
    "mov $" "0x302800" ", %esp\n\t"
    "mov fuzz_pd_prog, %eax\n\t"
    "mov %eax, %cr3\n\t"
    "mov fuzz_init+32, %ax\n\tmov %ax, %ds\n\t"
    "mov %ss:fuzz_init+36, %ax\n\tmov %ax, %es\n\t"
    "mov %ss:fuzz_init+40, %ax\n\tmov %ax, %fs\n\t"
    "mov %ss:fuzz_init+44, %ax\n\tmov %ax, %gs\n\t"
    "pushl %ss:fuzz_init+28\n\t"
    "popfl\n\t"
    "mov %ss:fuzz_init+0, %eax\n\t"
    "mov %ss:fuzz_init+4, %ecx\n\t"
    "mov %ss:fuzz_init+8, %edx\n\t"
    "mov %ss:fuzz_init+12, %ebx\n\t"
    "mov %ss:fuzz_init+16, %ebp\n\t"
    "mov %ss:fuzz_init+20, %esi\n\t"
    "mov %ss:fuzz_init+24, %edi\n\t"
    "jmp " "0x304000" "\n"
    "fuzz_leave:\n\t"
    "mov fuzz_runner_esp, %esp\n\t"
    "popfl\n\t"
    "popal\n\t"
    "ret\n");

static void fuzz_trap(struct trapframe *tf)
{
    write_cr3((uint32_t)pd_run);
    result = *tf;
    result_cr2 = tf->vector == T_PF ? read_cr2() : 0;
    fuzz_leave();
}

/* Register values: mostly offsets near the sandbox's edges, some random. */
static uint32_t reg_value(void)
{
    return chance(4) ? rnd() : edge();
}

/* A selector the runner can load without faulting: a present, readable
 * slot with RPL 0, else null. */
static uint16_t initial_selector(void)
{
    for (int tries = 0; tries < 4; tries++) {
        int i = 7 + (int)below(NSLOT - 7);
        uint32_t hi = RW->gdt[i].hi;
        bool ok = (hi & (DA_P << 8)) && (hi & (DA_S << 8)) &&
                  (!(hi & (DA_CODE << 8)) || (hi & (DA_R << 8)));
        if (ok)
            return (uint16_t)(i << 3);
    }
    return 0;
}

static void sandbox_fill(uint32_t x)
{
    uint32_t *w = (uint32_t *)SB_PHYS;
    for (uint32_t i = 0; i < SB_PAGES * PAGE_SIZE / 4; i++)
        w[i] = x ^ (i * 0x9E3779B9u);
    uint32_t *s = (uint32_t *)(PROG_ESP - 512);
    for (uint32_t i = 0; i < 256; i++)
        s[i] = x + i * 0x01000193u;
    /* a selector-shaped word here and there, for pop sreg and lds */
    for (uint32_t i = 0; i < 64; i++)
        w[below(SB_PAGES * PAGE_SIZE / 4)] = random_selector() | (rnd() << 16);
}

static void dump_bytes(const char *what, const void *p, uint32_t len)
{
    const uint8_t *b = p;
    for (uint32_t i = 0; i < len; i += 32) {
        printf("FZD %s %03x:", what, i);
        for (uint32_t j = i; j < len && j < i + 32; j++)
            printf(" %02x", b[j]);
        printf("\n");
    }
}

static void run_one(uint32_t seed, uint32_t n, bool dump)
{
    rs = (seed * 0x9E3779B9u) ^ (n * 0x85EBCA6Bu) ^ 0x27D4EB2Fu;
    if (!rs) rs = 1;
    for (int i = 0; i < 4; i++) rnd();
    tables_build();
    uint32_t fill = rnd();
    sandbox_fill(fill);
    g.len = 0;
    uint32_t len_hint = 4 + below(600);
    code_descs(len_hint);
    gen_program();
    tables_load();
    struct state *s = &fuzz_init;
    s->eax = reg_value(); s->ecx = reg_value(); s->edx = reg_value(); s->ebx = reg_value();
    s->ebp = reg_value(); s->esi = reg_value(); s->edi = reg_value();
    s->eflags = FL_RSVD1 | (rnd() & (FL_CF | 4 | 0x10 | FL_ZF | 0x80 | FL_OF | FL_DF));
    s->ds = initial_selector(); s->es = initial_selector(); s->fs = initial_selector(); s->gs = initial_selector();
    struct rw before = *RW;           /* dump: printed after the run, which must */
    fuzz_enter();                     /* start as in a batch (no output first) */
    /* back at PD_run, flat segments, IF=0 */
    write_eflags(FL_RSVD1);
    seg_reload(SEL_KCODE, SEL_KDATA);
    if (dump) {
        printf("FZD %u init eax=%x ecx=%x edx=%x ebx=%x ebp=%x esi=%x edi=%x efl=%x ds=%x es=%x fs=%x gs=%x\n", n,
               s->eax, s->ecx, s->edx, s->ebx, s->ebp, s->esi, s->edi, s->eflags, s->ds, s->es, s->fs, s->gs);
        for (int i = 7; i < NSLOT; i++)
            printf("FZD gdt %02x %08x %08x\n", i * 8, before.gdt[i].hi, before.gdt[i].lo);
        for (int i = 0; i < NLDT; i++)
            printf("FZD ldt %02x %08x %08x\n", i * 8 + 4, before.ldt[i].hi, before.ldt[i].lo);
        dump_bytes("code", code, g.len);
    }
    struct trapframe *r = &result;
    uint32_t regs[] = { r->eax, r->ecx, r->edx, r->ebx, r->ebp, r->esi, r->edi, r->esp_pusha,
                        r->eflags & ~FL_RF, r->cs, r->eip, r->ds & 0xFFFF, r->es & 0xFFFF, r->fs & 0xFFFF,
                        r->gs & 0xFFFF, result_cr2 };
    uint32_t hr = fnv(FNV0, regs, sizeof regs);
    /* The stack from the program's final ESP up: below it lie the trap
     * frame and the handler's, whose `push %ds` images are implementation
     * specific in their upper half (SDM 2B PUSH). */
    uint32_t esp = r->esp_pusha + 5 * 4;                    /* above vector, error, EIP, CS, EFLAGS */
    uint32_t hm = fnv(FNV0, (void *)SB_PHYS, SB_PAGES * PAGE_SIZE);
    if (esp >= PROG_ESP - 256 && esp <= PROG_ESP + 64)
        hm = fnv(hm, (void *)esp, PROG_ESP + 64 - esp);
    /* descriptors apart from their accessed bits, and the accessed bits */
    uint32_t hg = FNV0, ha = FNV0;
    const struct seg_desc *all = (const struct seg_desc *)RW;  /* the LDT follows the GDT */
    for (int i = 7; i < NSLOT + NLDT; i++) {
        struct seg_desc d = all[i];
        ha = fnv(ha, &(uint8_t){ (d.hi >> 8) & DA_A }, 1);
        d.hi &= ~((uint32_t)DA_A << 8);
        hg = fnv(hg, &d, sizeof d);
    }
    printf("FZ %u v=%x e=%x r=%08x m=%08x g=%08x a=%08x rf=%u\n", n, r->vector, r->err, hr, hm, hg, ha,
           (r->eflags & FL_RF) != 0);
    if (dump || boot_arg("finals", 0)) {
        printf("FZD %u final eax=%x ecx=%x edx=%x ebx=%x ebp=%x esi=%x edi=%x esp=%x\n", n,
               r->eax, r->ecx, r->edx, r->ebx, r->ebp, r->esi, r->edi, r->esp_pusha);
        printf("FZD %u final efl=%x cs=%x eip=%x ds=%x es=%x fs=%x gs=%x cr2=%x\n", n,
               r->eflags, r->cs, r->eip, r->ds & 0xFFFF, r->es & 0xFFFF, r->fs & 0xFFFF, r->gs & 0xFFFF, result_cr2);
    }
    if (dump) {
        for (int i = 7; i < NSLOT; i++)
            printf("FZD gdt' %02x %08x %08x\n", i * 8, RW->gdt[i].hi, RW->gdt[i].lo);
        for (uint32_t p = 0; p < SB_PAGES; p++)
            printf("FZD page %08x hash %08x\n", sb_lin[p], fnv(FNV0, (void *)(SB_PHYS + p * PAGE_SIZE), PAGE_SIZE));
        dump_bytes("stack", (void *)(PROG_ESP - 256), 320);
    }
}

void guest_main(void)
{
    uint32_t seed = boot_arg("seed", 1), first = boot_arg("first", 0), count = boot_arg("count", 100);
    uint32_t dump = boot_arg("dump", 0xFFFFFFFFu);
    for (uint32_t i = 0; i < ARRAY_SIZE(tmpls); i++)
        weight_total += tmpls[i].weight;
    for (int v = 0; v < 256; v++)
        trap_set_handler(v, fuzz_trap);
    paging_build();
    fuzz_pd_prog = (uint32_t)pd_prog;
    printf("FZ-BEGIN seed=%u first=%u count=%u\n", seed, first, count);
    if (dump != 0xFFFFFFFFu) {
        /* first= before it: the programs that ran before N in a batch, for
         * a divergence that depends on what they left behind. */
        for (uint32_t n = boot_arg("first", dump); n <= dump; n++)
            run_one(seed, n, n == dump);
    } else {
        for (uint32_t n = first; n < first + count; n++)
            run_one(seed, n, false);
    }
    printf("FZ-END first=%u count=%u\n", first, count);
}
