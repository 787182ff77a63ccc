/*
 * pf — page faults delivered to the guest with the exact CR2, error code
 * and saved EIP: not present (PTE and PDE), write to read-only at CPL 0
 * with CR0.WP=1 (and none with WP=0), user access to supervisor pages,
 * user write to read-only, instruction fetch, a split access.
 *
 * Hazard: with shadow paging most of these reach the monitor first, as
 * faults on its shadow tables; it must tell the guest's own faults from its
 * hidden ones and reflect them with the guest's CR2 and error code
 * (SDM 3A 4.7), including the U bit of a guest CPL 0 running at ring 1.
 */
#include "guest.h"

#define R        0x40000000u        /* base of the test pages below */
#define PRESENT  (R + 0x0000)       /* P W: the page before NOTPRES */
#define NOTPRES  (R + 0x1000)
#define RO       (R + 0x2000)       /* P U, read-only */
#define SUP      (R + 0x3000)       /* P W, supervisor */
#define RO_SUP   (R + 0x4000)       /* P, read-only supervisor */
#define USER     (R + 0x5000)       /* P W U */
#define SUP_CODE (R + 0x6000)       /* code page mapped supervisor */
#define USR_CODE (R + 0x7000)       /* the same code page mapped user */
#define IDT_VA   (R + 0x10000)      /* P W, supervisor: the IDT, moved (idt_remap_checks) */
#define NO_PDE   0x50000000u        /* its page directory entry is empty */
#define NONE     0xFFFFFFFFu        /* want: no fault */

static volatile uint32_t data_page[1024] ALIGNED(PAGE_SIZE);
/* Returns through EDX, so a fetch probe needs no stack (a fault after a
 * call would leave the return address behind). */
asm(".text\n.align 4096\npf_code_page:\n\tmovl $3, %eax\n\tjmp *%edx\n.align 4096\n");
extern char pf_code_page[];

enum access { READ, WRITE, FETCH };
struct pf_case {
    const char *name;
    uint32_t addr;
    enum access how;
    uint32_t err;                   /* want: error code, or NONE */
    uint32_t cr2;                   /* want: CR2 (the faulting linear address) */
};

static const struct pf_case kernel_cases[] = {
    { "read-not-present",      NOTPRES + 0x10, READ,  0, NOTPRES + 0x10 },
    { "write-not-present",     NOTPRES + 0x20, WRITE, PFE_W, NOTPRES + 0x20 },
    { "read-no-pde",           NO_PDE + 0x30,  READ,  0, NO_PDE + 0x30 },
    { "write-ro-wp",           RO + 0x40,      WRITE, PFE_P | PFE_W, RO + 0x40 },
    { "write-ro-sup-wp",       RO_SUP + 0x44,  WRITE, PFE_P | PFE_W, RO_SUP + 0x44 },
    { "read-sup-ok",           SUP + 0x48,     READ,  NONE, 0 },
    { "fetch-not-present",     NOTPRES,        FETCH, 0, NOTPRES },
    { "split-read-into-np",    NOTPRES - 2,    READ,  0, NOTPRES },
};
static const struct pf_case user_cases[] = {
    { "user-read-sup",         SUP + 0x50,     READ,  PFE_P | PFE_U, SUP + 0x50 },
    { "user-write-sup",        SUP + 0x54,     WRITE, PFE_P | PFE_W | PFE_U, SUP + 0x54 },
    { "user-write-ro",         RO + 0x58,      WRITE, PFE_P | PFE_W | PFE_U, RO + 0x58 },
    { "user-read-not-present", NOTPRES + 0x5C, READ,  PFE_U, NOTPRES + 0x5C },
    { "user-write-not-present", NOTPRES + 0x60, WRITE, PFE_W | PFE_U, NOTPRES + 0x60 },
    { "user-read-user-ok",     USER + 0x64,    READ,  NONE, 0 },
    { "user-fetch-sup",        SUP_CODE,       FETCH, PFE_P | PFE_U, SUP_CODE },
    { "user-fetch-user-ok",    USR_CODE,       FETCH, NONE, 0 },
};
static const struct pf_case wp0_cases[] = {
    { "wp0-write-ro-ok",       RO + 0x68,      WRITE, NONE, 0 },
    { "wp0-write-ro-sup-ok",   RO_SUP + 0x6C,  WRITE, NONE, 0 },
};
static const struct pf_case wp0_user_cases[] = {
    { "wp0-user-write-ro",     RO + 0x70,      WRITE, PFE_P | PFE_W | PFE_U, RO + 0x70 },
};

struct pf_result { struct trap_record t; uint32_t start; };
static struct pf_result results[ARRAY_SIZE(user_cases)];

/* Contract: runs at CPL 0 or 3; records the trap (if any) of one access. */
static void run_case(const struct pf_case *c, struct pf_result *r)
{
    uint32_t start = 0, next = 0;
    probe_arg = c->addr;
    switch (c->how) {
    case READ:
        PROBE(start, next, "movl probe_arg, %%eax", "movl (%%eax), %%ecx", "eax", "ecx");
        break;
    case WRITE:
        PROBE(start, next, "movl probe_arg, %%eax", "movl $0x5EED, (%%eax)", "eax");
        break;
    case FETCH:
        PROBE(start, next, "movl probe_arg, %%eax\n\tmovl $2f, %%edx", "jmp *%%eax",
              "eax", "edx");
        start = c->addr;
        break;
    }
    r->start = start;
    r->t = *(struct trap_record *)&last_trap;
}

static void report(const struct pf_case *c, const struct pf_result *r)
{
    if (c->err == NONE) {
        check(c->name, r->t.vector == -1, "vector %d err 0x%x cr2 0x%x", r->t.vector, r->t.err, r->t.cr2);
        return;
    }
    check(c->name, r->t.vector == T_PF && r->t.err == c->err && r->t.cr2 == c->cr2 && r->t.eip == r->start,
          "vector %d err 0x%x cr2 0x%x eip 0x%x; want #PF err 0x%x cr2 0x%x eip 0x%x",
          r->t.vector, r->t.err, r->t.cr2, r->t.eip, c->err, c->cr2, r->start);
}

static void run_kernel(const struct pf_case *cases, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        struct pf_result r;
        run_case(&cases[i], &r);
        report(&cases[i], &r);
    }
}

static const struct pf_case *user_set;
static unsigned user_n;
static void user_body(void)
{
    for (unsigned i = 0; i < user_n; i++)
        run_case(&user_set[i], &results[i]);
}

static void run_user(const struct pf_case *cases, unsigned n)
{
    user_set = cases;
    user_n = n;
    user_run(user_body, FL_RSVD1);
    for (unsigned i = 0; i < n; i++)
        report(&cases[i], &results[i]);
}

/* A rep movsb that runs into a not-present page faults with the copy
 * half done and ECX/ESI/EDI saying exactly how far (SDM 2B REP): a
 * translator must keep string instructions restartable. */
static uint8_t rep_dst[32] __attribute__((used));     /* named in the asm */

static void string_checks(void)
{
    uint32_t start, next;
    data_page[1023] = 0xA1B2C3D4;       /* the last 4 bytes before NOTPRES */
    probe_arg = NOTPRES - 8;
    PROBE(start, next, "movl probe_arg, %%esi\n\tmovl $rep_dst, %%edi\n\tmovl $16, %%ecx\n\tcld",
          "rep movsb", "ecx", "esi", "edi");
    check(
        "rep-movsb-fault-progress",
        last_trap.vector == T_PF && last_trap.cr2 == NOTPRES && last_trap.eip == start &&
            last_trap.ecx == 8 && last_trap.esi == NOTPRES && last_trap.edi == (uint32_t)rep_dst + 8,
        "vector %d cr2 0x%x eip 0x%x ecx %u esi 0x%x edi 0x%x", last_trap.vector, last_trap.cr2,
        last_trap.eip, last_trap.ecx, last_trap.esi, last_trap.edi);
    check_eq("rep-movsb-copied-half", rep_dst[7], 0xA1);
}

/* The IDT's page remapped to another frame between user page faults:
 * every fault after the INVLPG is delivered through the new frame's gate
 * (here: a stub that counts, then the usual #PF entry), and back again,
 * that time flushed by a CR3 load instead.
 * Hazard: the monitor's delivery keeps its walk of the IDT's page between
 * faults, as a TLB would (vmm/vcpu.c read_sys8); it must drop it at the
 * remap, and not read the old frame. */
static struct gate_desc idt_frames[2][PAGE_SIZE / 8] ALIGNED(PAGE_SIZE);
volatile uint32_t alt_pf_count;
uint32_t pf_stub_addr;
asm(".text\nalt_pf_entry:\n\tlock incl alt_pf_count\n\tjmp *pf_stub_addr\n");
extern char alt_pf_entry[];

static void idt_remap_checks(void)
{
    static const struct pf_case thrice[3] = {
        { "user-read-not-present", NOTPRES + 0x74, READ, PFE_U, NOTPRES + 0x74 },
        { "user-read-not-present", NOTPRES + 0x78, READ, PFE_U, NOTPRES + 0x78 },
        { "user-write-not-present", NOTPRES + 0x7C, WRITE, PFE_W | PFE_U, NOTPRES + 0x7C },
    };
    static const char *const names[3] = { "idt-frame-a-user-pf", "idt-remapped-frame-b-user-pf",
                                          "idt-remapped-back-frame-a-user-pf" };
    struct dtr moved = { sizeof(idt) - 1, IDT_VA }, home = { sizeof(idt) - 1, (uint32_t)idt };
    pf_stub_addr = stub_table[T_PF];
    for (unsigned f = 0; f < 2; f++)
        for (unsigned i = 0; i < 256; i++)
            idt_frames[f][i] = idt[i];
    idt_frames[1][T_PF] = gate_make(SEL_KCODE, (uint32_t)alt_pf_entry, DA_INTGATE, 0);
    paging_map(IDT_VA, (uint32_t)idt_frames[0], PTE_P | PTE_W);
    lidt(&moved);
    for (unsigned round = 0; round < 3; round++) {
        unsigned frame = round == 1;
        if (round < 2) {
            paging_map(IDT_VA, (uint32_t)idt_frames[frame], PTE_P | PTE_W); /* and INVLPG */
        } else {
            *paging_pte(IDT_VA) = (uint32_t)idt_frames[frame] | PTE_P | PTE_W;
            write_cr3(read_cr3());
        }
        uint32_t before = alt_pf_count;
        user_set = thrice;
        user_n = ARRAY_SIZE(thrice);
        user_run(user_body, FL_RSVD1);
        bool ok = alt_pf_count - before == (frame ? 3u : 0u);
        for (unsigned i = 0; i < ARRAY_SIZE(thrice); i++)
            ok = ok && results[i].t.vector == T_PF && results[i].t.err == thrice[i].err &&
                 results[i].t.cr2 == thrice[i].cr2 && results[i].t.eip == results[i].start;
        check(names[round], ok, "%u faults through frame B's gate, want %u; last vector %d err 0x%x cr2 0x%x",
              alt_pf_count - before, frame ? 3u : 0u, results[2].t.vector, results[2].t.err, results[2].t.cr2);
    }
    lidt(&home);
}

void guest_main(void)
{
    uint32_t dp = (uint32_t)data_page;
    paging_identity();
    paging_map(PRESENT, dp, PTE_P | PTE_W);
    paging_map(RO, dp, PTE_P | PTE_U);
    paging_map(SUP, dp, PTE_P | PTE_W);
    paging_map(RO_SUP, dp, PTE_P);
    paging_map(USER, dp, PTE_P | PTE_W | PTE_U);
    paging_map(SUP_CODE, (uint32_t)pf_code_page, PTE_P);
    paging_map(USR_CODE, (uint32_t)pf_code_page, PTE_P | PTE_U);
    write_cr0(read_cr0() | CR0_WP);
    paging_enable((uint32_t)kernel_pd);

    run_kernel(kernel_cases, ARRAY_SIZE(kernel_cases));
    run_user(user_cases, ARRAY_SIZE(user_cases));
    idt_remap_checks();
    write_cr0(read_cr0() & ~CR0_WP);
    run_kernel(wp0_cases, ARRAY_SIZE(wp0_cases));
    run_user(wp0_user_cases, ARRAY_SIZE(wp0_user_cases));
    check_eq("wp0-write-landed", data_page[0x6C / 4], 0x5EED);
    string_checks();
    paging_disable();
}
