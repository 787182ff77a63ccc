/*
 * segread — what segment-register reads and the descriptor-table queries
 * (smsw, sgdt, sidt, str, sldt, lar, lsl, verr, verw) return.
 *
 * Hazard: hv86 runs guest CPL 0 at ring 1 on its own GDT, so the real CS/SS
 * carry RPL 1, the real GDTR/IDTR/TR are the monitor's, and the shadow
 * descriptors have DPL 1. None of that may show at guest CPL 0: every value
 * here must be what the guest itself loaded. At CPL 3 the guest's code runs
 * directly, where sgdt/sidt/str/sldt/smsw are not privileged (no UMIP): the
 * `user-*` checks show whether the monitor's tables leak (README.md).
 *
 * The `exit-path-*` checks run Linux's return-to-user sequence at CPL 0
 * (segment pops, ADD ESP, VERW, IRET): hv86 emulates what follows a
 * segment load in the same exit (vmm/emulate.c run_ahead), so the flags
 * of ADD and the frame IRET pops must come out as the CPU's.
 */
#include "guest.h"

/* lar images (LAR_MASK) of the runtime's descriptors: access byte in 15:8,
 * G and D/B in 23:20. Accessed bits are preset, so loads do not change them. */
#define AR_KCODE 0x00C09B00u
#define AR_KDATA 0x00C09300u
#define AR_UCODE 0x00C0FB00u
#define AR_UDATA 0x00C0F300u
#define AR_TSS_BUSY 0x00008B00u
#define AR_LDT   0x00008200u
#define CR0_KNOWN (CR0_PE | CR0_MP | CR0_ET | CR0_NE)

static struct seg_desc ldt[2] ALIGNED(8);

struct desc_case {                  /* one row: a selector and what the queries say */
    const char *name;
    uint16_t sel;
    bool lar_ok;
    uint32_t ar;
    bool lsl_ok;
    uint32_t limit;
    bool r, w;                      /* verr, verw */
};

static const struct desc_case cpl0_cases[] = {
    { "desc-kcode",  SEL_KCODE, true, AR_KCODE, true, 0xFFFFFFFF, true,  false },
    { "desc-kdata",  SEL_KDATA, true, AR_KDATA, true, 0xFFFFFFFF, true,  true  },
    { "desc-ucode",  SEL_UCODE | 3, true, AR_UCODE, true, 0xFFFFFFFF, true, false },
    { "desc-udata",  SEL_UDATA | 3, true, AR_UDATA, true, 0xFFFFFFFF, true, true },
    { "desc-tss",    SEL_TSS,   true, AR_TSS_BUSY, true, sizeof(struct tss32) - 1, false, false },
    { "desc-ldt",    SEL_LDT,   true, AR_LDT, true, sizeof(ldt) - 1, false, false },
    { "desc-null",   0,         false, 0, false, 0, false, false },
    { "desc-beyond", GDT_ENTRIES * 8, false, 0, false, 0, false, false },
};

/* At CPL 3, DPL-0 descriptors are invisible to lar/lsl/verr/verw. */
static const struct desc_case cpl3_cases[] = {
    { "user-desc-kcode",  SEL_KCODE | 3, false, 0, false, 0, false, false },
    { "user-desc-kdata",  SEL_KDATA | 3, false, 0, false, 0, false, false },
    { "user-desc-ucode",  SEL_UCODE | 3, true, AR_UCODE, true, 0xFFFFFFFF, true, false },
    { "user-desc-udata",  SEL_UDATA | 3, true, AR_UDATA, true, 0xFFFFFFFF, true, true },
    { "user-desc-tss",    SEL_TSS | 3,   false, 0, false, 0, false, false },
};

struct desc_result { bool lar_ok, lsl_ok, r, w; uint32_t ar, limit; };
static struct desc_result u_res[ARRAY_SIZE(cpl3_cases)];

static void query(const struct desc_case *c, struct desc_result *r)
{
    r->ar = lar(c->sel, &r->lar_ok) & LAR_MASK;
    r->limit = lsl(c->sel, &r->lsl_ok);
    r->r = verr(c->sel);
    r->w = verw(c->sel);
}

static void report(const struct desc_case *c, const struct desc_result *r)
{
    bool ok = r->lar_ok == c->lar_ok && r->lsl_ok == c->lsl_ok && r->r == c->r && r->w == c->w &&
              (!c->lar_ok || r->ar == c->ar) && (!c->lsl_ok || r->limit == c->limit);
    check(c->name, ok, "lar %d/0x%x lsl %d/0x%x verr %d verw %d; want lar %d/0x%x lsl %d/0x%x verr %d verw %d",
          r->lar_ok, r->ar, r->lsl_ok, r->limit, r->r, r->w,
          c->lar_ok, c->ar, c->lsl_ok, c->limit, c->r, c->w);
}

/* ------------------------------------------------------------------ CPL 3 */
static volatile uint32_t u_cs, u_ss, u_ds, u_pushcs, u_smsw, u_str, u_sldt;
static struct dtr u_gdtr, u_idtr;

static void user_reads(void)
{
    u_cs = READ_SEG(cs);
    u_ss = READ_SEG(ss);
    u_ds = READ_SEG(ds);
    asm volatile("pushl %%cs; popl %0" : "=r"(u_pushcs));
    u_smsw = smsw();
    u_str = str();
    u_sldt = sldt();
    sgdt(&u_gdtr);
    sidt(&u_idtr);
    for (unsigned i = 0; i < ARRAY_SIZE(cpl3_cases); i++)
        query(&cpl3_cases[i], &u_res[i]);
}

static void user_checks(void)
{
    user_run(user_reads, FL_RSVD1);
    check_eq("user-mov-cs", u_cs, SEL_UCODE | 3);
    check_eq("user-mov-ss", u_ss, SEL_UDATA | 3);
    check_eq("user-mov-ds", u_ds, SEL_UDATA | 3);
    check_eq("user-push-cs", u_pushcs & 0xFFFF, SEL_UCODE | 3);
    for (unsigned i = 0; i < ARRAY_SIZE(cpl3_cases); i++)
        report(&cpl3_cases[i], &u_res[i]);
    /* The classic leak of ring-3 guest code run directly (README.md). */
    check_eq("user-smsw", u_smsw & 0xFFFF, CR0_KNOWN);
    check_eq("user-str", u_str, SEL_TSS);
    check_eq("user-sldt", u_sldt, SEL_LDT);
    check_eq("user-sgdt-base", u_gdtr.base, (uint32_t)gdt);
    check_eq("user-sgdt-limit", u_gdtr.limit, sizeof(gdt) - 1);
    check_eq("user-sidt-base", u_idtr.base, (uint32_t)idt);
    check_eq("user-sidt-limit", u_idtr.limit, sizeof(idt) - 1);
}

/* ------------------------------------------------------------------ CPL 0 */
static void selector_checks(void)
{
    check_eq("mov-cs", READ_SEG(cs), SEL_KCODE);
    check_eq("mov-ss", READ_SEG(ss), SEL_KDATA);
    check_eq("mov-ds", READ_SEG(ds), SEL_KDATA);
    check_eq("mov-es", READ_SEG(es), SEL_KDATA);
    check_eq("mov-fs", READ_SEG(fs), SEL_KDATA);
    check_eq("mov-gs", READ_SEG(gs), SEL_KDATA);
    uint32_t v;
    asm volatile("pushl %%cs; popl %0" : "=r"(v));
    check_eq("push-cs", v & 0xFFFF, SEL_KCODE);
    asm volatile("pushl %%ss; popl %0" : "=r"(v));
    check_eq("push-ss", v & 0xFFFF, SEL_KDATA);
    uint16_t m;
    asm volatile("movw %%cs, %0" : "=m"(m));
    check_eq("mov-cs-mem16", m, SEL_KCODE);
    /* Register forms: the 32-bit one zero-extends (P6 and later), the
     * 16-bit one leaves EAX[31:16] alone. A translator emulating them must too. */
    v = 0xFFFFFFFF;
    asm volatile("movl %%cs, %0" : "+r"(v));
    check_eq("mov-cs-r32-zero-extends", v, SEL_KCODE);
    v = 0xABCD0000;
    asm volatile("movw %%ss, %w0" : "+r"(v));
    check_eq("mov-ss-r16-keeps-high", v, 0xABCD0000 | SEL_KDATA);

    /* Loaded selectors keep their RPL, whatever ring the monitor uses. */
    uint16_t rpl3 = SEL_UDATA | 3, rpl0 = SEL_UDATA;
    asm volatile("movw %0, %%fs" : : "r"(rpl3));
    check_eq("fs-keeps-rpl3", READ_SEG(fs), SEL_UDATA | 3);
    asm volatile("movw %0, %%fs" : : "r"(rpl0));
    check_eq("fs-keeps-rpl0", READ_SEG(fs), SEL_UDATA);
    asm volatile("movw %0, %%fs" : : "r"((uint16_t)SEL_KDATA));
}

static void table_checks(void)
{
    write_cr0((read_cr0() & ~0xFFFFu & ~(CR0_CD | CR0_NW | CR0_WP | CR0_AM)) | CR0_KNOWN);
    check_eq("smsw-reg", smsw() & 0xFFFF, CR0_KNOWN);
    uint16_t m = 0;
    asm volatile("smsw %0" : "=m"(m));
    check_eq("smsw-mem16", m, CR0_KNOWN);
    check_eq("smsw-eq-cr0", smsw() & 0xFFFF, read_cr0() & 0xFFFF);

    struct dtr d;
    sgdt(&d);
    check_eq("sgdt-base", d.base, (uint32_t)gdt);
    check_eq("sgdt-limit", d.limit, sizeof(gdt) - 1);
    sidt(&d);
    check_eq("sidt-base", d.base, (uint32_t)idt);
    check_eq("sidt-limit", d.limit, sizeof(idt) - 1);
    check_eq("str", str(), SEL_TSS);
    lldt(0);
    check_eq("sldt-null", sldt(), 0);
    ldt[0] = seg_make(0, 0xFFFFF, DA_P | DA_S | DA_W | DA_A, DF_G | DF_DB);
    gdt[SEL_LDT >> 3] = seg_make((uint32_t)ldt, sizeof(ldt) - 1, DA_P | DA_LDT, 0);
    lldt(SEL_LDT);
    check_eq("sldt-loaded", sldt(), SEL_LDT);
    uint32_t sldt32 = 0xFFFFFFFF;
    asm volatile("sldt %0" : "+r"(sldt32));
    check_eq("sldt-reg32-low", sldt32 & 0xFFFF, SEL_LDT);

    bool ok;
    uint32_t ar = lar(READ_SEG(cs), &ok);
    check("lar-own-cs", ok && (ar & LAR_MASK) == AR_KCODE, "ok %d ar 0x%x", ok, ar);
    for (unsigned i = 0; i < ARRAY_SIZE(cpl0_cases); i++) {
        struct desc_result r;
        query(&cpl0_cases[i], &r);
        report(&cpl0_cases[i], &r);
    }
}

/* EFLAGS arithmetic bits after a 32-bit ADD r = a + b (SDM Vol. 1 §3.4.3.1). */
static uint32_t add_flags(uint32_t a, uint32_t b)
{
    uint32_t r = a + b, f = 0, low = r & 0xFF;
    f |= r < a ? FL_CF : 0;
    f |= ((a ^ r) & (b ^ r)) >> 31 ? FL_OF : 0;
    f |= r >> 31 ? 1u << 7 : 0;          /* SF */
    f |= r == 0 ? FL_ZF : 0;
    f |= (a ^ b ^ r) & 0x10 ? 1u << 4 : 0; /* AF */
    low ^= low >> 4;
    low ^= low >> 2;
    low ^= low >> 1;
    f |= low & 1 ? 0 : 1u << 2;          /* PF: even parity of the low byte */
    return f;
}

#define ARITH_FLAGS (FL_CF | 1u << 2 | 1u << 4 | FL_ZF | 1u << 7 | FL_OF)

/* ESP = a; a segment load; ADD ESP,imm (imm8 or imm32 form by value); the
 * resulting ESP and flags, interrupts off while ESP is not a stack. */
#define ADD_ESP_CASE(name, a, imm)                                                              \
    do {                                                                                        \
        uint32_t res_, fl_, if_ = read_eflags() & FL_IF;                                        \
        asm volatile("cli\n\tmovl %%esp, %%edi\n\tmovl %[av], %%esp\n\tmovl %%eax, %%ds\n\t"   \
                     "addl $" #imm ", %%esp\n\tmovl %%esp, %%ebx\n\tmovl %%edi, %%esp\n\t"      \
                     "pushfl\n\tpopl %%ecx"                                                     \
                     : "=&b"(res_), "=&c"(fl_)                                                  \
                     : [av] "r"((uint32_t)(a)), "a"(SEL_KDATA)                                  \
                     : "edi", "cc", "memory");                                                  \
        if (if_)                                                                                \
            sti();                                                                              \
        uint32_t want_ = add_flags((uint32_t)(a), (uint32_t)(imm));                             \
        check(name, res_ == (uint32_t)(a) + (uint32_t)(imm) && (fl_ & ARITH_FLAGS) == want_,     \
              "esp %08x flags %03x, want %08x %03x", res_, fl_ & ARITH_FLAGS,                   \
              (uint32_t)(a) + (uint32_t)(imm), want_);                                          \
    } while (0)

static void exit_path_checks(void)
{
    ADD_ESP_CASE("exit-path-add-zero-carry", 0xFFFFFFF0u, 0x10);
    ADD_ESP_CASE("exit-path-add-overflow", 0x7FFFFFF8u, 8);
    ADD_ESP_CASE("exit-path-add-imm8-max", 0x00001009u, 0x7F);
    ADD_ESP_CASE("exit-path-add-imm32", 0x00002000u, 0x100);
    ADD_ESP_CASE("exit-path-add-negative", 0x00001000u, -4);

    /* Linux's restore_all: pop ES, FS, drop a word, VERW, IRET to CPL 0. */
    static uint16_t verw_sel = SEL_KDATA;
    uint32_t if_ = read_eflags() & FL_IF;
    uint32_t fl = if_ | FL_RSVD1 | FL_CF | FL_OF | (1u << 2), got_fl, esp0, esp1;
    uint16_t es, fs;
    asm volatile("movl %0, %%es\n\tmovl %0, %%fs" : : "r"(0u)); /* null: the pops must load them */
    asm volatile("cli\n\tmovl %%esp, %[e0]\n\t"
                 "pushl %[fl]\n\tpushl %%cs\n\tpushl $1f\n\tpushl $0\n\t"
                 "pushl %[kd]\n\tpushl %[kd]\n\t"
                 "movl %[kd], %%eax\n\tmovl %%eax, %%ds\n\t"
                 "popl %%es\n\tpopl %%fs\n\taddl $4, %%esp\n\tverw %[vs]\n\tiret\n"
                 "1:\tpushfl\n\tpopl %[gf]\n\tmovl %%esp, %[e1]"
                 : [e0] "=&m"(esp0), [e1] "=&m"(esp1), [gf] "=&r"(got_fl)
                 : [fl] "r"(fl), [kd] "i"(SEL_KDATA), [vs] "m"(verw_sel)
                 : "eax", "cc", "memory");
    es = READ_SEG(es);
    fs = READ_SEG(fs);
    check("exit-path-iret-flags", got_fl == fl, "flags %08x, want %08x", got_fl, fl);
    check("exit-path-iret-esp", esp1 == esp0, "esp %08x, want %08x", esp1, esp0);
    check("exit-path-popped-segs", es == SEL_KDATA && fs == SEL_KDATA, "es %04x fs %04x", es, fs);
}

void guest_main(void)
{
    selector_checks();
    table_checks();
    exit_path_checks();
    user_checks();
}
