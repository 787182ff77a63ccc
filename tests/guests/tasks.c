/*
 * tasks — hardware task switches: JMP to a TSS and back, CALL through a
 * task gate and IRET (NT) back along the previous-task link, a #DF
 * delivered through an IDT task gate (Linux i386's double-fault handler),
 * and the faults a switch checks before it commits: a busy TSS (#GP), a
 * TSS below its minimum limit (#TS), a TSS not present (#NP).
 *
 * Hazard: a monitor that emulates task switches must save the old task's
 * registers into its TSS and load the new task's from guest memory, keep
 * the busy bits, NT, the link and CR0.TS as the SDM's Table 7-2 has them,
 * load CR3 from the new TSS, and raise each check's fault with its
 * selector (Intel SDM Vol. 3A §7.3, §7.4, Table 7-1; §6.12.2).
 * Every value compared is a constant of this file or one of its symbols.
 */
#include "guest.h"

#define DA_TASKGATE 0x05
#define TSS_B      (SEL_SPARE + 0x00) /* JMP target */
#define TSS_C      (SEL_SPARE + 0x08) /* reached by CALL through TGATE_C */
#define TGATE_C    (SEL_SPARE + 0x10)
#define TSS_D      (SEL_SPARE + 0x18) /* the #DF task */
#define TSS_SHORT  (SEL_SPARE + 0x20) /* limit 66h: one byte short */
#define TSS_NP     (SEL_SPARE + 0x28) /* not present */
#define TGATE_BUSY (SEL_SPARE + 0x30) /* a task gate to the runtime's (busy) TSS */
#define ALT_VA     0x00800000u        /* mapped only in task C's page directory */
#define MARKER     0x7A5C0DE5u
/* A task's initial EFLAGS: AC, a system flag, seen as loaded. (Not the
 * arithmetic flags: QEMU 7.2 TCG's pushf after a task switch shows its
 * stale lazy flags.) */
#define TASK_EFLAGS (0x2 | FL_AC)
#define TSS_TYPE(sel) ((gdt[(sel) >> 3].hi >> 8) & 0xF)

static struct tss32 tss_b ALIGNED(128), tss_c ALIGNED(128), tss_d ALIGNED(128), tss_spare ALIGNED(128);
static uint8_t stack_b[1024] ALIGNED(16), stack_c[1024] ALIGNED(16), stack_d[1024] ALIGNED(16);
static pte_t alt_pd[1024] ALIGNED(PAGE_SIZE), alt_pt[1024] ALIGNED(PAGE_SIZE);
static uint32_t marker_page[1024] ALIGNED(PAGE_SIZE);

/* What each task saw, stored by its own code below (indices: R_*). */
enum { R_EAX, R_ECX, R_EDX, R_EBX, R_ESP, R_EBP, R_ESI, R_EDI, R_EFL, R_DS, R_ES, R_FS, R_GS, R_SS, R_CS,
       R_TR, R_CR0, R_X, R_Y, R_N };
uint32_t seen_b[R_N], seen_c[R_N], seen_d[R_N];
extern char task_b_entry[], task_b_back[], task_c_entry[], task_c_back[], task_d_entry[];
extern char main_jmp_back[], main_call_back[], main_df_at[], main_df_resume[];

/* Each task stores its registers as it starts, changes them (the values
 * its TSS must then hold), and switches back: B by JMP to the runtime's
 * TSS, C and D by IRET with NT. Re-entered, a task resumes after its
 * switch back, so each loops to its start. */
#define SAVE_REGS(r)                                                       \
    "movl %eax, " r "+0\n movl %ecx, " r "+4\n movl %edx, " r "+8\n"       \
    "movl %ebx, " r "+12\n movl %esp, " r "+16\n movl %ebp, " r "+20\n"    \
    "movl %esi, " r "+24\n movl %edi, " r "+28\n pushfl\n popl " r "+32\n" \
    "movw %ds, " r "+36\n movw %es, " r "+40\n movw %fs, " r "+44\n"       \
    "movw %gs, " r "+48\n movw %ss, " r "+52\n movw %cs, " r "+56\n"       \
    "strw " r "+60\n movl %cr0, %eax\n movl %eax, " r "+64\n"
#define SCRIBBLE(v)                                                        \
    "movl $" v ", %eax\n movl %eax, %ecx\n movl %eax, %edx\n movl %eax, %ebx\n" \
    "movl %eax, %ebp\n movl %eax, %esi\n movl %eax, %edi\n"
asm(".text\n"
    "task_b_entry:\n" SAVE_REGS("seen_b") SCRIBBLE("0xB0B0B0B0")
    "ljmp $0x28, $0\n"
    "task_b_back:\n jmp task_b_entry\n"
    "task_c_entry:\n" SAVE_REGS("seen_c")
    "movl " "0x800000, %eax\n movl %eax, seen_c+68\n"     /* ALT_VA through task C's CR3 */
    "movl %cr3, %eax\n movl %eax, seen_c+72\n" SCRIBBLE("0xC0C0C0C0")
    "iret\n"
    "task_c_back:\n jmp task_c_entry\n"
    "task_d_entry:\n" SAVE_REGS("seen_d")
    "movl (%esp), %eax\n movl %eax, seen_d+68\n"            /* #DF's error code */
    "movl tss+0x20, %eax\n movl %eax, seen_d+72\n"          /* the interrupted EIP */
    "movl $main_df_resume, tss+0x20\n"
    "addl $4, %esp\n iret\n jmp task_d_entry\n");

static void tss_init(struct tss32 *t, void *entry, uint8_t *stack_top, uint32_t base)
{
    *t = (struct tss32){ 0 };
    t->eip = (uint32_t)entry;
    t->eflags = TASK_EFLAGS;
    t->eax = base + 1; t->ecx = base + 2; t->edx = base + 3; t->ebx = base + 4;
    t->esp = (uint32_t)stack_top; t->ebp = base + 6; t->esi = base + 7; t->edi = base + 8;
    t->cs = SEL_KCODE; t->ss = t->ds = t->es = SEL_KDATA;
    t->fs = SEL_UDATA; t->gs = 0;
    t->iomap = sizeof(*t);
}

/* Check names per task, in the order check_loaded and check_saved use them. */
#define TASK_NAMES(t)                                                                              \
    (const char *const[]){ t "-loaded-eax", t "-loaded-ecx", t "-loaded-edx", t "-loaded-ebx",    \
                           t "-loaded-esp", t "-loaded-ebp", t "-loaded-esi", t "-loaded-edi",    \
                           t "-loaded-segs", t "-cr0-ts" }
#define SAVED_NAMES(t) (const char *const[]){ t "-saved-gprs", t "-saved-eip" }

/* What a task saw as it started (s) against its TSS (t). */
static void check_loaded(const char *const *name, const uint32_t *s, const struct tss32 *t)
{
    const uint32_t want[8] = { t->eax, t->ecx, t->edx, t->ebx, t->esp, t->ebp, t->esi, t->edi };
    for (unsigned i = 0; i < 8; i++)
        check_eq(name[i], s[R_EAX + i], want[i]);
    check(name[8], s[R_DS] == t->ds && s[R_ES] == t->es && s[R_FS] == t->fs && s[R_GS] == t->gs &&
          s[R_SS] == t->ss && s[R_CS] == t->cs, "ds %x es %x fs %x gs %x ss %x cs %x", s[R_DS], s[R_ES],
          s[R_FS], s[R_GS], s[R_SS], s[R_CS]);
    check(name[9], s[R_CR0] & CR0_TS, "cr0 %08x", s[R_CR0]);
}

/* The state a task left in its TSS when it switched away. */
static void check_saved(const char *const *name, const struct tss32 *t, uint32_t v, void *eip)
{
    check(name[0], t->eax == v && t->ecx == v && t->edx == v && t->ebx == v && t->ebp == v && t->esi == v &&
          t->edi == v, "eax %08x ebp %08x edi %08x", t->eax, t->ebp, t->edi);
    check_eq(name[1], t->eip, (uint32_t)eip);
}

static void jmp_to_tss(void)
{
    tss_init(&tss_b, task_b_entry, stack_b + sizeof(stack_b), 0x1000);
    gdt[TSS_B >> 3] = seg_make((uint32_t)&tss_b, sizeof(tss_b) - 1, DA_P | DA_TSS32, 0);
    struct tss32 init = tss_b;
    asm volatile("ljmp $0x38, $0\n main_jmp_back:" : : : "memory");
    uint32_t cr0 = read_cr0();
    clts();
    check_loaded(TASK_NAMES("jmp"), seen_b, &init);
    check_eq("jmp-loaded-eflags", seen_b[R_EFL], TASK_EFLAGS);
    check_eq("jmp-tr", seen_b[R_TR], TSS_B);
    check_saved(SAVED_NAMES("jmp"), &tss_b, 0xB0B0B0B0, task_b_back);
    check_eq("jmp-main-saved-eip", tss.eip, (uint32_t)main_jmp_back);
    check_eq("jmp-b-not-busy", TSS_TYPE(TSS_B), DA_TSS32);
    check_eq("jmp-main-busy", TSS_TYPE(SEL_TSS), DA_TSS32_BUSY);
    check_eq("jmp-link-untouched", tss_b.link, 0);
    check("jmp-back-cr0-ts", cr0 & CR0_TS, "cr0 %08x", cr0);
    check_eq("jmp-back-tr", str(), SEL_TSS);
}

/* CALL through a task gate, IRET back; task C runs on its own page
 * directory, where ALT_VA maps marker_page. */
static void call_and_iret(void)
{
    uint32_t pd = paging_identity();
    for (unsigned i = 0; i < 1024; i++)
        alt_pd[i] = kernel_pd[i];
    alt_pt[0] = (uint32_t)marker_page | PTE_P | PTE_W;
    alt_pd[PDX(ALT_VA)] = (uint32_t)alt_pt | PTE_P | PTE_W;
    marker_page[0] = MARKER;
    tss_init(&tss_c, task_c_entry, stack_c + sizeof(stack_c), 0x2000);
    tss_c.cr3 = (uint32_t)alt_pd;
    tss.cr3 = pd;                              /* loaded on the way back: CR3 is never saved */
    gdt[TSS_C >> 3] = seg_make((uint32_t)&tss_c, sizeof(tss_c) - 1, DA_P | DA_TSS32, 0);
    gdt[TGATE_C >> 3] = (struct seg_desc){ (uint32_t)TSS_C << 16, (DA_P | DA_TASKGATE) << 8 };
    struct tss32 init = tss_c;
    paging_enable(pd);
    asm volatile("lcall $0x48, $0\n main_call_back:" : : : "memory");
    uint32_t cr3 = read_cr3(), fl = read_eflags();
    paging_disable();
    clts();
    check_loaded(TASK_NAMES("call"), seen_c, &init);
    check_eq("call-loaded-eflags", seen_c[R_EFL], TASK_EFLAGS | FL_NT);
    check_eq("call-tr", seen_c[R_TR], TSS_C);
    check_eq("call-link", tss_c.link, SEL_TSS);
    check_eq("call-cr3-loaded", seen_c[R_Y], (uint32_t)alt_pd);
    check_eq("call-alt-mapping", seen_c[R_X], MARKER);
    check_saved(SAVED_NAMES("iret"), &tss_c, 0xC0C0C0C0, task_c_back);
    check_eq("iret-saved-nt-clear", tss_c.eflags & FL_NT, 0);
    check_eq("iret-c-not-busy", TSS_TYPE(TSS_C), DA_TSS32);
    check_eq("iret-main-busy", TSS_TYPE(SEL_TSS), DA_TSS32_BUSY);
    check_eq("iret-cr3-from-tss", cr3, pd);
    check_eq("iret-main-nt", fl & FL_NT, 0);
    check_eq("call-main-saved-eip", tss.eip, (uint32_t)main_call_back);
}

/* #DE with its gate not present: #NP while delivering it, both
 * contributory: #DF, whose IDT entry is a task gate (§6.15 Table 6-5). */
static void double_fault_task(void)
{
    tss_init(&tss_d, task_d_entry, stack_d + sizeof(stack_d), 0x3000);
    gdt[TSS_D >> 3] = seg_make((uint32_t)&tss_d, sizeof(tss_d) - 1, DA_P | DA_TSS32, 0);
    struct gate_desc de = idt[T_DE], df = idt[T_DF];
    idt[T_DF] = (struct gate_desc){ (uint32_t)TSS_D << 16, (DA_P | DA_TASKGATE) << 8 };
    idt[T_DE].hi &= ~((uint32_t)DA_P << 8);
    asm volatile("xorl %%ecx, %%ecx\n xorl %%edx, %%edx\n movl $1, %%eax\n"
                 "main_df_at: divl %%ecx\n main_df_resume:" : : : "eax", "ecx", "edx", "memory");
    idt[T_DE] = de;
    idt[T_DF] = df;
    clts();
    check_eq("df-error-code", seen_d[R_X], 0);
    check_eq("df-esp", seen_d[R_ESP], (uint32_t)(stack_d + sizeof(stack_d) - 4));
    check_eq("df-nt-set", seen_d[R_EFL] & FL_NT, FL_NT);
    check_eq("df-tr", seen_d[R_TR], TSS_D);
    check_eq("df-link", tss_d.link, SEL_TSS);
    check_eq("df-faulting-eip", seen_d[R_Y], (uint32_t)main_df_at);
    check_eq("df-d-not-busy", TSS_TYPE(TSS_D), DA_TSS32);
    check_eq("df-main-busy", TSS_TYPE(SEL_TSS), DA_TSS32_BUSY);
}

/* Checks before the commit point: the fault, and nothing changed. */
static void faults(void)
{
    uint32_t s, n;
    tss_init(&tss_spare, task_b_entry, stack_b + sizeof(stack_b), 0x4000);
    gdt[TSS_SHORT >> 3] = seg_make((uint32_t)&tss_spare, 0x66, DA_P | DA_TSS32, 0);
    gdt[TSS_NP >> 3] = seg_make((uint32_t)&tss_spare, sizeof(tss_spare) - 1, DA_TSS32, 0);
    gdt[TGATE_BUSY >> 3] = (struct seg_desc){ (uint32_t)SEL_TSS << 16, (DA_P | DA_TASKGATE) << 8 };
    PROBE(s, n, "", "ljmp $0x28, $0");
    check_fault("busy-tss-jmp-gp", s, n, (struct fault_want){ T_GP, SEL_TSS, false });
    PROBE(s, n, "", "lcall $0x68, $0");
    check_fault("busy-tss-gate-gp", s, n, (struct fault_want){ T_GP, SEL_TSS, false });
    PROBE(s, n, "", "ljmp $0x58, $0");
    check_fault("short-tss-ts", s, n, (struct fault_want){ T_TS, TSS_SHORT, false });
    check_eq("short-tss-not-busy", TSS_TYPE(TSS_SHORT), DA_TSS32);
    PROBE(s, n, "", "ljmp $0x60, $0");
    check_fault("np-tss-np", s, n, (struct fault_want){ T_NP, TSS_NP, false });
    check_eq("faults-tr-kept", str(), SEL_TSS);
    check_eq("faults-main-busy", TSS_TYPE(SEL_TSS), DA_TSS32_BUSY);
}

void guest_main(void)
{
    _Static_assert(TSS_B == 0x38 && TSS_C == 0x40 && TGATE_C == 0x48 && TSS_SHORT == 0x58 && TSS_NP == 0x60 &&
                   TGATE_BUSY == 0x68 && SEL_TSS == 0x28, "selectors written out in the asm above");
    jmp_to_tss();
    call_and_iret();
    double_fault_task();
    faults();
}
