/*
 * Host execution harness for the binary translator (see bt_harness.h).
 */
#define _GNU_SOURCE
#include "tests/unit/bt_harness.h"
#include <elf.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>
#include "kernel/kernel.h"

#define PAGE_SIZE_HOST 4096u

struct bt_vcpu bt_host_vcpu __attribute__((aligned(64)));

static struct bt_harness *running;   /* harness whose guest code is on the CPU */
static uint8_t altstack[64 * 1024];

static void *map_rwx(uint32_t bytes)
{
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS,
                   -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

/* Guest code fetch: plain reads inside the guest region only. */
static uint32_t harness_fetch(void *ctx, uint32_t gva, uint8_t *buf, uint32_t len)
{
    struct bt_harness *h = ctx;
    uint32_t lo = (uint32_t)(uintptr_t)h->guest, hi = lo + h->guest_size;
    if (gva < lo || gva >= hi)
        return 0;
    uint32_t n = MIN(len, hi - gva);
    memcpy(buf, (void *)(uintptr_t)gva, n);
    return n;
}

static void copy_regs_from(const ucontext_t *uc, struct bt_vcpu *v)
{
    const greg_t *g = uc->uc_mcontext.gregs;
    v->gpr[0] = (uint32_t)g[REG_EAX], v->gpr[1] = (uint32_t)g[REG_ECX];
    v->gpr[2] = (uint32_t)g[REG_EDX], v->gpr[3] = (uint32_t)g[REG_EBX];
    v->gpr[4] = (uint32_t)g[REG_ESP], v->gpr[5] = (uint32_t)g[REG_EBP];
    v->gpr[6] = (uint32_t)g[REG_ESI], v->gpr[7] = (uint32_t)g[REG_EDI];
    v->eflags = (uint32_t)g[REG_EFL];
}

static void on_fault(int sig, siginfo_t *si, void *ucv)
{
    ucontext_t *uc = ucv;
    struct bt_harness *h = running;
    if (!h) { /* not guest code: a real crash */
        signal(sig, SIG_DFL);
        return;
    }
    if (sig == SIGTRAP && h->trap_hook && h->trap_hook(uc))
        return;
    h->fault_sig = sig;
    h->fault_tca = (uint32_t)uc->uc_mcontext.gregs[REG_EIP];
    h->fault_addr = (uint32_t)(uintptr_t)si->si_addr;
    copy_regs_from(uc, &bt_host_vcpu);
    running = NULL;
    siglongjmp(h->jb, 1);
}

static const int caught_signals[3] = { SIGSEGV, SIGBUS, SIGTRAP };
static struct sigaction saved_actions[3];

/* Catch guest faults while guest code runs (cmocka installs its own
 * SIGSEGV handler around each test, so this is done per run). */
static void catch_faults(void)
{
    stack_t ss = { .ss_sp = altstack, .ss_size = sizeof(altstack) };
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = on_fault;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
    sigaltstack(&ss, NULL);
    for (int i = 0; i < 3; i++)
        sigaction(caught_signals[i], &sa, &saved_actions[i]);
}

static void release_faults(void)
{
    for (int i = 0; i < 3; i++)
        sigaction(caught_signals[i], &saved_actions[i], NULL);
}

int bt_harness_init(struct bt_harness *h, uint32_t tc_code_size, uint32_t tc_meta_size,
                    uint32_t guest_size)
{
    memset(h, 0, sizeof(*h));
    h->tc_code_size = tc_code_size, h->tc_meta_size = tc_meta_size;
    h->guest_size = guest_size, h->stack_size = 64 * 1024;
    h->tc_code = map_rwx(tc_code_size);
    h->tc_meta = map_rwx(tc_meta_size);
    h->guest = map_rwx(guest_size);
    h->stack = map_rwx(h->stack_size);
    h->hole = map_rwx(PAGE_SIZE_HOST);
    if (!h->tc_code || !h->tc_meta || !h->guest || !h->stack || !h->hole)
        return E_NOMEM;
    mprotect(h->hole, PAGE_SIZE_HOST, PROT_NONE);
    struct bt_config cfg = { .state_seg_prefix = BT_SEG_NONE,
                             .state_base = (uint32_t)(uintptr_t)&bt_host_vcpu };
    memset(&bt_host_vcpu, 0, sizeof(bt_host_vcpu));
    int r = bt_init(&h->bt, &cfg, &bt_host_vcpu, h->tc_code, tc_code_size, h->tc_meta,
                    tc_meta_size, harness_fetch, h, bt_host_enter);
    if (r < 0)
        return r;
    bt_harness_reset_vcpu(h);
    return 0;
}

void bt_harness_free(struct bt_harness *h)
{
    munmap(h->tc_code, h->tc_code_size);
    munmap(h->tc_meta, h->tc_meta_size);
    munmap(h->guest, h->guest_size);
    munmap(h->stack, h->stack_size);
    munmap(h->hole, PAGE_SIZE_HOST);
}

void bt_harness_reset_vcpu(struct bt_harness *h)
{
    struct bt_vcpu *v = &bt_host_vcpu;
    memset(v->gpr, 0, sizeof(v->gpr));
    v->gpr[4] = (uint32_t)(uintptr_t)(h->stack + h->stack_size - 64);
    v->eflags = BT_FLAGS_FIXED1;
    v->vflags_if = BT_FLAGS_IF;
    v->vflags_sys = 0;
    v->irq_pending = 0;
    /* A timer signal of the previous test (test_stop_at, the IBL storm)
     * may land after its last run and before it disarms the timer: its
     * exit request must not end this test's first dispatch. */
    v->exit_req = 0;
    v->exit_entry = (uint32_t)(uintptr_t)bt_host_exit;
    uint32_t es, fs;
    __asm__ volatile("movl %%es, %0\n movl %%fs, %1" : "=r"(es), "=r"(fs));
    bt_host_guest_es = es & 0xFFFF;
    bt_host_guest_fs = fs & 0xFFFF;
}

int bt_harness_run(struct bt_harness *h, uint32_t max_dispatch)
{
    catch_faults();
    if (sigsetjmp(h->jb, 1)) {
        release_faults();
        uint32_t eip = 0;
        h->fault_eip_ok = tc_lookup_guest_eip(&h->bt.tc, h->fault_tca, &eip);
        bt_host_vcpu.eip = eip;
        return BT_HARNESS_FAULT;
    }
    running = h;
    int r = bt_run(&h->bt, max_dispatch);
    running = NULL;
    release_faults();
    return r;
}

int bt_harness_run_native(struct bt_harness *h, uint32_t entry, uint32_t hlt_gva)
{
    uint8_t *p = (uint8_t *)(uintptr_t)hlt_gva, saved = *p;
    volatile int r = BT_HARNESS_FAULT;
    *p = 0xCC; /* INT3: SIGTRAP with EIP just after it ends the native run */
    catch_faults();
    if (sigsetjmp(h->jb, 1)) {
        if (h->fault_sig == SIGTRAP && h->fault_tca == hlt_gva + 1)
            r = 0;
    } else {
        running = h;
        bt_host_enter(&bt_host_vcpu, entry);
        running = NULL; /* not reached: the guest code has no exit stub */
    }
    release_faults();
    *p = saved;
    return r;
}

int bt_harness_load_text(const char *path, struct bt_elf_text *t)
{
    memset(t, 0, sizeof(*t));
    FILE *f = fopen(path, "rb");
    if (!f)
        return E_NOENT;
    fseek(f, 0, SEEK_END);
    size_t len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    t->file = malloc(len);
    bool ok = t->file && fread(t->file, 1, len, f) == len;
    fclose(f);
    const Elf32_Ehdr *eh = (const void *)t->file;
    if (!ok || len < sizeof(*eh) || memcmp(eh->e_ident, ELFMAG, SELFMAG) ||
        eh->e_ident[EI_CLASS] != ELFCLASS32 || eh->e_shoff + eh->e_shnum * sizeof(Elf32_Shdr) > len)
        return E_INVAL;
    const Elf32_Shdr *sh = (const void *)(t->file + eh->e_shoff);
    const char *names = (const char *)t->file + sh[eh->e_shstrndx].sh_offset;
    for (int i = 0; i < eh->e_shnum; i++) {
        if (strcmp(names + sh[i].sh_name, ".text") == 0 && sh[i].sh_offset + sh[i].sh_size <= len) {
            t->bytes = t->file + sh[i].sh_offset;
            t->addr = sh[i].sh_addr;
            t->size = sh[i].sh_size;
            return 0;
        }
    }
    return E_INVAL;
}

uint32_t bt_harness_text_fetch(void *ctx, uint32_t gva, uint8_t *buf, uint32_t len)
{
    const struct bt_elf_text *t = ctx;
    if (gva < t->addr || gva >= t->addr + t->size)
        return 0;
    uint32_t n = MIN(len, t->addr + t->size - gva);
    memcpy(buf, t->bytes + (gva - t->addr), n);
    return n;
}
