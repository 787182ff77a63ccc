/*
 * gsdata — a guest kernel that keeps per-CPU data in GS, as Linux i386 does
 * (its %fs there; %gs for the stack protector), and that, doing so, aims
 * every GS-relative instruction at the offsets where hv86's translated code
 * keeps its own vCPU state (struct bt_vcpu, reached through GS at ring 1):
 * exit_entry, exit_desc, the indirect-branch table. That was the escape of
 * issue 11: INC/DEC/PUSH m, CALL/JMP m, XLAT through GS reached the monitor,
 * a planted IBL entry ran untranslated code, a forged exit descriptor made
 * the monitor write a JMP of the guest's choosing at ring 0.
 *
 * On hardware all of it is plain memory traffic in the guest's own per-CPU
 * page. Under hv86 it must be exactly that too (the output is compared with
 * the native run), the monitor's checksum must not change (test_vms.py
 * isolation) and the console must keep answering. Also reads through a CS
 * prefix (guest CS is flat: plain memory on hardware).
 */
#include "guest.h"

#define SEL_PERCPU SEL_SPARE
/* Offsets of struct bt_vcpu (bt/vcpu_state.h) at the time of issue 11. */
#define OFF_EXIT_ENTRY 0x28
#define OFF_EXIT_DESC  0x2C
#define OFF_IBL        0xB0   /* ibl[0] = { key, tca } */
#define PERCPU_LIMIT   0xFFF

static uint8_t percpu[PAGE_SIZE] ALIGNED(4096);
static volatile uint32_t landed;

static uint32_t pc32(uint32_t off) { return *(volatile uint32_t *)(percpu + off); }

static void set_gs(void)
{
    gdt[SEL_PERCPU >> 3] = seg_make((uint32_t)percpu, PERCPU_LIMIT, DA_P | DA_S | DA_W, DF_DB);
    asm volatile("mov %w0, %%gs" : : "r"(SEL_PERCPU));
}

/* INC/DEC/NOT/NEG/ADD and MOV on GS memory, at the monitor's field offsets. */
static void gs_arith(void)
{
    uint32_t cf;
    *(volatile uint32_t *)(percpu + OFF_EXIT_DESC) = 0x41;
    asm volatile("incl %%gs:0x2C\n\tincl %%gs:0x2C\n\tdecl %%gs:0x2C" : : : "memory", "cc");
    check_eq("gs-inc-dec", pc32(OFF_EXIT_DESC), 0x42);
    asm volatile("stc\n\tincl %%gs:0x2C\n\tsetc %b0\n\tmovzbl %b0, %0" : "=q"(cf) : : "memory", "cc");
    check_eq("gs-inc-keeps-cf", cf, 1);
    asm volatile("notl %%gs:0x30\n\tnegl %%gs:0x34" : : : "memory", "cc");
    check_eq("gs-not", pc32(0x30), 0xFFFFFFFFu);
    check_eq("gs-neg-of-zero", pc32(0x34), 0);
    asm volatile("movl $0x1234, %%gs:0x28\n\taddl $0x10, %%gs:0x28" : : : "memory", "cc");
    check_eq("gs-mov-add", pc32(OFF_EXIT_ENTRY), 0x1244);
    uint32_t v;
    asm volatile("movl %%gs:0x28, %0" : "=r"(v));
    check_eq("gs-load", v, 0x1244);
}

/* PUSH/POP m through GS. */
static void gs_stack(void)
{
    uint32_t v;
    *(volatile uint32_t *)(percpu + OFF_EXIT_ENTRY) = 0xCAFE0001;
    asm volatile("pushl %%gs:0x28\n\tpopl %0" : "=r"(v) : : "memory");
    check_eq("gs-push-m", v, 0xCAFE0001);
    asm volatile("pushl $0xBEEF0002\n\tpopl %%gs:0x2C" : : : "memory");
    check_eq("gs-pop-m", pc32(OFF_EXIT_DESC), 0xBEEF0002);
}

static void target_fn(void) { landed += 1; }

/* CALL/JMP through GS-relative pointers; XLAT through GS. */
static void gs_branches(void)
{
    *(volatile uint32_t *)(percpu + OFF_EXIT_ENTRY) = (uint32_t)target_fn;
    landed = 0;
    asm volatile("call *%%gs:0x28" : : : "eax", "ecx", "edx", "memory", "cc");
    check_eq("gs-call-m", landed, 1);
    *(volatile uint32_t *)(percpu + OFF_EXIT_DESC) = 0; /* patched below: the label */
    asm volatile("movl $1f, %%gs:0x2C\n\t"
                 "jmp *%%gs:0x2C\n\t"
                 "movl $0, landed\n"
                 "1:\tincl landed" : : : "memory", "cc");
    check_eq("gs-jmp-m", landed, 2);
    for (int i = 0; i < 256; i++)
        percpu[0x200 + i] = (uint8_t)(i ^ 0x5A);
    uint32_t al;
    asm volatile("movl $0x200, %%ebx\n\tmovl $0x33, %%eax\n\t.byte 0x65, 0xD7" : "=a"(al) : : "ebx");
    check_eq("gs-xlat", al & 0xFF, 0x33 ^ 0x5A);
    uint32_t s;
    asm volatile("movl $0x201, %%esi\n\tcld\n\t.byte 0x65, 0xAC\n\tmovzbl %%al, %0" : "=r"(s) : : "esi", "eax");
    check_eq("gs-lods", s, 0x01 ^ 0x5A);
}

/* What per-CPU code does besides MOV and ALU (this_cpu_cmpxchg, _xchg,
 * _add_return, flags of per-CPU counters): CMPXCHG, XADD with LOCK,
 * CMPXCHG8B, SETcc and CMOVcc, DIV, BTS/BTR, MOVS with a GS source. hv86
 * runs these with DS swapped for the guest's GS; DS must be the guest's
 * own again right after (the flat-DS global below). */
static volatile uint32_t flat_cell;

static void gs_percpu_ops(void)
{
    uint32_t v = 7;
    uint8_t z;
    *(volatile uint32_t *)(percpu + 0x40) = 7;
    asm volatile("lock cmpxchgl %2, %%gs:0x40\n\tsetz %1" : "+a"(v), "=q"(z) : "r"(9u) : "memory", "cc");
    check_eq("gs-cmpxchg-hit", pc32(0x40) * 16 + z, 9 * 16 + 1);
    v = 7;
    asm volatile("lock cmpxchgl %1, %%gs:0x40" : "+a"(v) : "r"(11u) : "memory", "cc");
    check_eq("gs-cmpxchg-miss-loads-eax", v, 9);
    flat_cell = 0x5150;
    check_eq("ds-is-the-guests-after-gs-op", *(volatile uint32_t *)&flat_cell, 0x5150);
    v = 5;
    asm volatile("lock xaddl %0, %%gs:0x40" : "+r"(v) : : "memory", "cc");
    check_eq("gs-xadd-old", v, 9);
    check_eq("gs-xadd-new", pc32(0x40), 14);
    uint32_t lo = 14, hi = 0;
    *(volatile uint32_t *)(percpu + 0x44) = 0;
    asm volatile("lock cmpxchg8b %%gs:0x40" : "+a"(lo), "+d"(hi) : "b"(0x11u), "c"(0x22u) : "memory", "cc");
    check_eq("gs-cmpxchg8b", pc32(0x40) * 256 + pc32(0x44), 0x11 * 256 + 0x22);
    asm volatile("cmpl $1, %%eax\n\tsetne %%gs:0x48" : : "a"(2u) : "memory", "cc");
    check_eq("gs-setcc", percpu[0x48], 1);
    *(volatile uint32_t *)(percpu + 0x4C) = 0xABCD;
    v = 0;
    asm volatile("cmpl $1, %%eax\n\tcmovnel %%gs:0x4C, %0" : "+r"(v) : "a"(2u) : "cc");
    check_eq("gs-cmov", v, 0xABCD);
    *(volatile uint32_t *)(percpu + 0x50) = 7;
    asm volatile("xorl %%edx, %%edx\n\tdivl %%gs:0x50" : "=a"(v) : "a"(100u) : "edx", "cc");
    check_eq("gs-div", v, 14);
    *(volatile uint32_t *)(percpu + 0x54) = 0;
    asm volatile("btsl $5, %%gs:0x54\n\tbtsl $9, %%gs:0x54\n\tbtrl $5, %%gs:0x54" : : : "memory", "cc");
    check_eq("gs-bts-btr", pc32(0x54), 1u << 9);
    static volatile uint32_t dst[2];
    *(volatile uint32_t *)(percpu + 0x58) = 0x5EED;
    asm volatile("cld\n\tmovl $0x58, %%esi\n\tmovl %0, %%edi\n\tmovsl %%gs:(%%esi), %%es:(%%edi)"
                 : : "r"(dst) : "esi", "edi", "memory");
    check_eq("gs-movs-source", dst[0], 0x5EED);
}

static void landing(void) { landed = 0x1A; }

/* The review's chain: plant an IBL entry (key = -target, tca = our own
 * code), forge exit_desc, then branch indirectly to that target. On
 * hardware: stores to the per-CPU page and an ordinary indirect call. */
static void gs_forge(void)
{
    uint32_t target = (uint32_t)landing;
    asm volatile("movl %0, %%gs:0xB0\n\t"       /* ibl[0].key */
                 "movl %1, %%gs:0xB4\n\t"       /* ibl[0].tca: untranslated guest code */
                 "movl %1, %%gs:0x2C\n\t"       /* exit_desc */
                 "movl %1, %%gs:0x28"           /* exit_entry */
                 : : "r"(0u - target), "r"(target) : "memory");
    landed = 0;
    asm volatile("call *%0" : : "r"(target) : "eax", "ecx", "edx", "memory", "cc");
    check_eq("forged-ibl-entry-is-own-memory", landed, 0x1A);
    check_eq("forged-exit-desc-is-own-memory", pc32(OFF_EXIT_DESC), target);
    check_eq("forged-ibl-key-is-own-memory", pc32(OFF_IBL), 0u - target);
}

/* CS-prefixed reads: the guest's CS is flat (base 0), so these read its
 * own memory; they must not read anything through hv86's code segment. */
static void cs_reads(void)
{
    static volatile uint32_t cell = 0x600DC0DE;
    uint32_t v;
    asm volatile("movl %%cs:(%1), %0" : "=r"(v) : "r"(&cell));
    check_eq("cs-prefixed-read-own-memory", v, 0x600DC0DE);
}

void guest_main(void)
{
    set_gs();
    gs_arith();
    gs_stack();
    gs_branches();
    gs_percpu_ops();
    gs_forge();
    cs_reads();
}
