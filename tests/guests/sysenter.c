/*
 * sysenter — SYSENTER from ring 3 to the guest's MSR-defined entry and
 * SYSEXIT back, with the selectors, stack and flags each one sets.
 *
 * Hazard: SYSENTER's target comes from MSRs 0x174-0x176, which a monitor
 * keeps pointing at itself while its guest runs (lguest and VMware both
 * had to handle it): the guest's own values must read back, and a guest
 * SYSENTER must land at the guest's entry at guest CPL 0 with the
 * architectural state (SDM 2B SYSENTER/SYSEXIT).
 */
#include "guest.h"

#define SYSENTER_RESULT 0x5E5E

/* What the entry saw, written with the user's DS (flat, so any DS works). */
volatile uint32_t se_cs, se_ss, se_esp, se_eflags, se_count;
static uint8_t se_stack[1024] ALIGNED(16);

/* The SYSENTER target: record, then SYSEXIT to EDX with ESP = ECX. The
 * caller keeps its ESP in ECX and its return address in EDX. */
asm(".text\n"
    "sysenter_entry:\n"
    "\tmovw %cs, se_cs\n"
    "\tmovw %ss, se_ss\n"
    "\tmovl %esp, se_esp\n"
    "\tpushfl\n"
    "\tpopl se_eflags\n"
    "\tincl se_count\n"
    "\tmovl $0x5E5E, %eax\n"
    "\tsti\n"                       /* shadow: IF=1 takes effect in ring 3 */
    "\tsysexit\n");
extern char sysenter_entry[];

/* The same return after an instruction the monitor emulates (VERR): a
 * monitor that emulates the STI and SYSEXIT after it in the same exit
 * must leave IF set for ring 3, and the user's flags alone. */
static volatile uint16_t se_verr_sel = SEL_KDATA;
asm(".text\n"
    "sysenter_entry_verr:\n"
    "\tincl se_count\n"
    "\tmovl $0x5E5E, %eax\n"
    "\tverr se_verr_sel\n"
    "\tsti\n"
    "\tsysexit\n");
extern char sysenter_entry_verr[];

static volatile uint32_t u_eax, u_cs, u_ss, u_esp_before, u_esp_after, u_eflags;

static void user_sysenter(void)
{
    uint32_t eax, esp_before, esp_after;
    asm volatile("movl %%esp, %%ecx\n\t"
                 "movl %%esp, %1\n\t"
                 "movl $1f, %%edx\n\t"
                 "sysenter\n"
                 "1:\tmovl %%esp, %2"
                 : "=a"(eax), "=m"(esp_before), "=m"(esp_after) : : "ecx", "edx", "memory");
    u_eax = eax;
    u_esp_before = esp_before;
    u_esp_after = esp_after;
    u_cs = READ_SEG(cs);
    u_ss = READ_SEG(ss);
    u_eflags = read_eflags();
}

/* SYSENTER, then (back at CPL 3, CF clear) INT 0x80: the kernel's
 * frame of it shows the flags ring 3 ran with after the SYSEXIT. */
static volatile uint32_t sc_eflags, sc_count;
static void on_syscall_flags(struct trapframe *tf)
{
    sc_eflags = tf->eflags;
    sc_count++;
}

static void user_sysenter_then_int(void)
{
    asm volatile("movl %%esp, %%ecx\n\t"
                 "movl $1f, %%edx\n\t"
                 "sysenter\n"
                 "1:\tclc\n\t"
                 "movl $1, %%eax\n\t"
                 "int $0x80"
                 : : : "eax", "ecx", "edx", "memory", "cc");
}

/* Every register and flag the kernel leaves for SYSEXIT must reach ring 3
 * as it left them, whichever way the monitor takes the return. The entry
 * sets them; the user side records what it got. */
asm(".text\n"
    "sysenter_entry_regs:\n"
    "\tincl se_count\n"
    "\tmovl $0x5E5E, %eax\n"
    "\tmovl $0x11111111, %ebx\n"
    "\tmovl $0x22222222, %esi\n"
    "\tmovl $0x33333333, %edi\n"
    "\tmovl $0x44444444, %ebp\n"
    "\tstc\n"
    "\tstd\n"
    "\tsti\n"
    "\tsysexit\n");
extern char sysenter_entry_regs[];

volatile uint32_t r_eax, r_ebx, r_ecx, r_esi, r_edi, r_ebp, r_esp, r_esp_before, r_eflags;
asm(".text\n"
    "user_sysenter_regs:\n"
    "\tpushl %ebp\n\tpushl %ebx\n\tpushl %esi\n\tpushl %edi\n"
    "\tmovl %esp, %ecx\n"
    "\tmovl %esp, r_esp_before\n"
    "\tmovl $1f, %edx\n"
    "\tsysenter\n"
    "1:\tpushfl\n"
    "\tpopl r_eflags\n"
    "\tcld\n"
    "\tmovl %eax, r_eax\n\tmovl %ebx, r_ebx\n\tmovl %ecx, r_ecx\n\tmovl %esi, r_esi\n"
    "\tmovl %edi, r_edi\n\tmovl %ebp, r_ebp\n\tmovl %esp, r_esp\n"
    "\tpopl %edi\n\tpopl %esi\n\tpopl %ebx\n\tpopl %ebp\n"
    "\tret\n");
void user_sysenter_regs(void);

/* "how-what" into buf (the checks' names). */
static const char *name2(char *buf, size_t size, const char *how, const char *what)
{
    size_t n = 0;
    for (const char *p = how; *p && n + 1 < size; p++)
        buf[n++] = *p;
    if (n + 1 < size)
        buf[n++] = '-';
    for (const char *p = what; *p && n + 1 < size; p++)
        buf[n++] = *p;
    buf[n] = 0;
    return buf;
}

static void check_regs(const char *how)
{
    char name[48];
    static const char *const what[] = { "eax", "ebx", "ecx", "esi", "edi", "ebp", "esp" };
    const uint32_t got[] = { r_eax, r_ebx, r_ecx, r_esi, r_edi, r_ebp, r_esp };
    const uint32_t want[] = { SYSENTER_RESULT, 0x11111111, r_esp_before, 0x22222222, 0x33333333, 0x44444444,
                              r_esp_before };
    for (unsigned i = 0; i < sizeof(got) / sizeof(got[0]); i++)
        check_eq(name2(name, sizeof(name), how, what[i]), got[i], want[i]);
    check_eq(name2(name, sizeof(name), how, "cf-df-if"), r_eflags & (FL_CF | FL_DF | FL_IF),
             FL_CF | FL_DF | FL_IF);
}

/* The GDT seen through a linear alias nothing has touched yet (LGDT to
 * it): a monitor that reads the guest's GDT on the way back to ring 3
 * finds that page missing from its tables at the first return. */
#define GDT_ALIAS 0x40000000u

/* Several system calls in one stint at ring 3: a monitor that returned
 * to ring 3 by itself may take the next SYSENTER into its kernel's entry
 * without going through its own run loop; each must still see the same
 * registers and flags on both sides. */
#define REPEAT 4
static uint32_t rep[REPEAT][9];
static void user_sysenter_repeat(void)
{
    for (int i = 0; i < REPEAT; i++) {
        user_sysenter_regs();
        const uint32_t got[9] = { r_eax, r_ebx, r_ecx, r_esi, r_edi, r_ebp, r_esp, r_esp_before, r_eflags };
        for (int j = 0; j < 9; j++)
            rep[i][j] = got[j];
        r_eax = r_ebx = r_ecx = r_esi = r_edi = r_ebp = r_esp = r_eflags = 0;
    }
}

static void sysexit_regs(void)
{
    wrmsr(MSR_SYSENTER_EIP, (uint32_t)sysenter_entry_regs);
    user_run(user_sysenter_regs, FL_RSVD1 | FL_IF);
    check_regs("regs");
    uint32_t count = se_count;
    user_run(user_sysenter_repeat, FL_RSVD1 | FL_IF);
    check_eq("repeat-entries-taken", se_count - count, REPEAT);
    for (int i = 0; i < REPEAT; i++) {
        static const char *const names[REPEAT] = { "repeat0", "repeat1", "repeat2", "repeat3" };
        r_eax = rep[i][0], r_ebx = rep[i][1], r_ecx = rep[i][2], r_esi = rep[i][3], r_edi = rep[i][4];
        r_ebp = rep[i][5], r_esp = rep[i][6], r_esp_before = rep[i][7], r_eflags = rep[i][8];
        check_regs(names[i]);
    }
    se_count = count;
    struct dtr was, alias;
    sgdt(&was);
    paging_enable(paging_identity());
    paging_map(GDT_ALIAS, was.base & PAGE_MASK, PTE_P | PTE_W);
    alias = (struct dtr){ was.limit, GDT_ALIAS + (was.base & ~PAGE_MASK) };
    lgdt(&alias);
    for (int i = 0; i < 2; i++) {
        r_eax = r_ebx = r_ecx = r_esi = r_edi = r_ebp = r_esp = r_eflags = 0;
        user_run(user_sysenter_regs, FL_RSVD1 | FL_IF);
        check_regs(i ? "alias-again" : "alias-first");
    }
    lgdt(&was);
    paging_disable();
    wrmsr(MSR_SYSENTER_EIP, (uint32_t)sysenter_entry);
}

/* The GDT's page remapped by the kernel between SYSENTER and SYSEXIT:
 * the entry stores a new PTE for the alias (another frame holding the same
 * GDT but for one descriptor), INVLPGs it and returns; ring 3 must then
 * see the new frame's descriptor (LSL), as the CPU reads descriptors
 * through the linear address GDTR gives (SDM Vol. 3A §3.5.1). A monitor
 * that kept a translation of the GDT's page past that INVLPG would
 * compare the old frame against its shadow, find it current and let ring
 * 3 run with the old descriptor. */
#define REMAP_SEL   (SEL_SPARE | 3)
#define REMAP_OLD   0x1234u
#define REMAP_NEW   0x5678u
static uint8_t gdt_copy[PAGE_SIZE] ALIGNED(PAGE_SIZE);
volatile uint32_t remap_pte_val, *remap_pte_at;
asm(".text\n"
    "sysenter_entry_remap:\n"
    "\tincl se_count\n"
    "\tmovl remap_pte_at, %eax\n"
    "\tmovl remap_pte_val, %ebx\n"
    "\tmovl %ebx, (%eax)\n"
    "\tinvlpg 0x40000000\n"
    "\tmovl $0x5E5E, %eax\n"
    "\tsti\n"
    "\tsysexit\n");
extern char sysenter_entry_remap[];

volatile uint32_t remap_lsl, remap_zf;
static void user_sysenter_lsl(void)
{
    asm volatile("movl %%esp, %%ecx\n\t"
                 "movl $1f, %%edx\n\t"
                 "sysenter\n"
                 "1:\tmovl %0, %%ecx\n\t"
                 "xorl %%eax, %%eax\n\t"
                 "lsl %%ecx, %%eax\n\t"
                 "setz %%dl\n\t"
                 "movzbl %%dl, %%edx\n\t"
                 "movl %%eax, remap_lsl\n\t"
                 "movl %%edx, remap_zf"
                 : : "i"(REMAP_SEL) : "eax", "ecx", "edx", "ebx", "memory", "cc");
}

static void sysexit_gdt_remap(void)
{
    struct dtr was, alias;
    sgdt(&was);
    gdt[SEL_SPARE >> 3] = seg_make(0, REMAP_OLD, DA_P | DA_S | DA_W | DA_A | DA_DPL(3), DF_DB);
    const uint32_t *page = (const uint32_t *)(was.base & PAGE_MASK);
    for (unsigned i = 0; i < PAGE_SIZE / 4; i++)
        ((uint32_t *)gdt_copy)[i] = page[i];
    struct seg_desc *copy = (struct seg_desc *)(gdt_copy + (was.base & ~PAGE_MASK));
    copy[SEL_SPARE >> 3] = seg_make(0, REMAP_NEW, DA_P | DA_S | DA_W | DA_A | DA_DPL(3), DF_DB);
    paging_enable(paging_identity());
    paging_map(GDT_ALIAS, was.base & PAGE_MASK, PTE_P | PTE_W);
    alias = (struct dtr){ was.limit, GDT_ALIAS + (was.base & ~PAGE_MASK) };
    lgdt(&alias);
    remap_pte_at = paging_pte(GDT_ALIAS);
    /* Returns through the old frame first, so a monitor has walked it. */
    remap_pte_val = *remap_pte_at;
    wrmsr(MSR_SYSENTER_EIP, (uint32_t)sysenter_entry_remap);
    for (int i = 0; i < 2; i++) {
        user_run(user_sysenter_lsl, FL_RSVD1 | FL_IF);
        check_eq(i ? "remap-before-again" : "remap-before", remap_lsl, REMAP_OLD);
    }
    remap_pte_val = (uint32_t)gdt_copy | PTE_P | PTE_W;
    user_run(user_sysenter_lsl, FL_RSVD1 | FL_IF);
    check_eq("remap-lsl-valid", remap_zf, 1);
    check_eq("remap-after", remap_lsl, REMAP_NEW);
    paging_map(GDT_ALIAS, was.base & PAGE_MASK, PTE_P | PTE_W);
    lgdt(&was);
    paging_disable();
    gdt[SEL_SPARE >> 3] = (struct seg_desc){ 0, 0 };
    wrmsr(MSR_SYSENTER_EIP, (uint32_t)sysenter_entry);
}

static struct trap_record u_trap;
static uint32_t u_start;

static void user_sysenter_faults(void)
{
    uint32_t s, n;
    PROBE(s, n, "movl %%esp, %%ecx\n\tmovl $2f, %%edx", "sysenter", "ecx", "edx");
    u_trap = *(struct trap_record *)&last_trap;
    u_start = s;
}

static struct trap_record u_trap2;
static uint32_t u_start2;
static void user_sysexit(void)
{
    uint32_t s, n;
    PROBE(s, n, "movl %%esp, %%ecx\n\tmovl $2f, %%edx", "sysexit", "ecx", "edx");
    u_trap2 = *(struct trap_record *)&last_trap;
    u_start2 = s;
}

/* Single steps seen: at CPL 3 (the user code before SYSENTER, stepped with
 * TF from user_run), and at CPL 0, where SYSENTER, which keeps TF, traps
 * before the entry's first instruction (SDM Vol. 3B §17.3.1.4). The
 * kernel-mode one clears TF, so the rest runs unstepped. A monitor that
 * takes SYSENTER through its own MSRs gets that trap in its own entry code. */
static volatile uint32_t db_user, db_kernel, db_kernel_eip, db_kernel_cs, db_kernel_tf;
static void on_db(struct trapframe *tf)
{
    if (tf->cs & 3) {
        db_user++;
        return;
    }
    db_kernel++;
    db_kernel_eip = tf->eip;
    db_kernel_cs = tf->cs & 0xFFFF;
    db_kernel_tf = tf->eflags & FL_TF;
    tf->eflags &= ~FL_TF;
}

void guest_main(void)
{
    uint32_t id[4];
    cpuid(1, id);
    check("cpuid-sep", id[3] & CPUID1_EDX_SEP, "CPUID.1:EDX 0x%x", id[3]);

    uint32_t top = (uint32_t)se_stack + sizeof(se_stack);
    wrmsr(MSR_SYSENTER_CS, SEL_KCODE);
    wrmsr(MSR_SYSENTER_ESP, top);
    wrmsr(MSR_SYSENTER_EIP, (uint32_t)sysenter_entry);
    check_eq("msr-cs-readback", (uint32_t)rdmsr(MSR_SYSENTER_CS), SEL_KCODE);
    check_eq("msr-esp-readback", (uint32_t)rdmsr(MSR_SYSENTER_ESP), top);
    check_eq("msr-eip-readback", (uint32_t)rdmsr(MSR_SYSENTER_EIP), (uint32_t)sysenter_entry);

    user_run(user_sysenter, FL_RSVD1 | FL_IF);
    check_eq("entry-taken", se_count, 1);
    check_eq("entry-cs", se_cs & 0xFFFF, SEL_KCODE);
    check_eq("entry-ss", se_ss & 0xFFFF, SEL_KDATA);
    check_eq("entry-esp", se_esp, top);
    check_eq("entry-if-cleared", se_eflags & FL_IF, 0);
    check_eq("exit-eax", u_eax, SYSENTER_RESULT);
    check_eq("exit-cs", u_cs, SEL_UCODE | 3);
    check_eq("exit-ss", u_ss, SEL_UDATA | 3);
    check_eq("exit-esp", u_esp_after, u_esp_before);
    check_eq("exit-if-set", u_eflags & FL_IF, FL_IF);

    /* The return emulated after VERR: IF set and CF as ring 3 left it. */
    wrmsr(MSR_SYSENTER_EIP, (uint32_t)sysenter_entry_verr);
    user_set_syscall(on_syscall_flags);
    user_run(user_sysenter_then_int, FL_RSVD1 | FL_IF);
    user_set_syscall(0);
    wrmsr(MSR_SYSENTER_EIP, (uint32_t)sysenter_entry);
    check_eq("verr-entry-taken", se_count, 2);
    check_eq("verr-int-taken", sc_count, 1);
    check_eq("verr-exit-if-set", sc_eflags & FL_IF, FL_IF);
    check_eq("verr-exit-cf-clear", sc_eflags & FL_CF, 0);

    sysexit_regs();
    check_eq("regs-entries-taken", se_count, 5);
    sysexit_gdt_remap();
    check_eq("remap-entries-taken", se_count, 8);
    se_count = 5;

    /* SYSENTER stepped: the trap is at the entry, at CPL 0, TF saved. */
    trap_set_handler(T_DB, on_db);
    user_run(user_sysenter, FL_RSVD1 | FL_IF | FL_TF);
    trap_set_handler(T_DB, 0);
    check("tf-user-steps", db_user > 0, "%u single steps at CPL 3", db_user);
    check_eq("tf-kernel-steps", db_kernel, 1);
    check_eq("tf-trap-eip", db_kernel_eip, (uint32_t)sysenter_entry);
    check_eq("tf-trap-cs", db_kernel_cs, SEL_KCODE);
    check_eq("tf-trap-saved-tf", db_kernel_tf, FL_TF);
    check_eq("tf-entry-taken", se_count, 6);
    check_eq("tf-exit-eax", u_eax, SYSENTER_RESULT);

    /* SYSENTER with SYSENTER_CS = 0 is #GP(0); so is SYSEXIT outside CPL 0. */
    wrmsr(MSR_SYSENTER_CS, 0);
    user_run(user_sysenter_faults, FL_RSVD1);
    last_trap = u_trap;
    check_fault("sysenter-cs0-gp", u_start, 0, (struct fault_want){ T_GP, 0, false });
    wrmsr(MSR_SYSENTER_CS, SEL_KCODE);
    user_run(user_sysexit, FL_RSVD1);
    last_trap = u_trap2;
    check_fault("user-sysexit-gp", u_start2, 0, (struct fault_want){ T_GP, 0, false });
    check_eq("entry-count-after-faults", se_count, 6);
    cli();
}
