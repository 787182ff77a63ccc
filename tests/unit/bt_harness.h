/*
 * Host execution harness for the binary translator: an executable TC, a
 * guest memory region with a guest stack and an unmapped hole, the static
 * struct bt_vcpu translated code addresses absolutely, native runs of the
 * same guest code for comparison, and SIGSEGV capture that maps a fault in
 * translated code back to the guest EIP (tc_lookup_guest_eip).
 *
 * Guest addresses are host addresses (gva == host linear address), so
 * innocuous guest code copied IDENT touches the same memory natively and
 * translated.
 */
#ifndef HV86_TESTS_BT_HARNESS_H
#define HV86_TESTS_BT_HARNESS_H
#include <setjmp.h>
#include <stdbool.h>
#include <stdint.h>
#include <ucontext.h>
#include "bt/translate.h"

#define BT_HARNESS_FAULT (-100) /* bt_harness_run: guest code faulted */

struct bt_harness {
    struct bt bt;
    uint8_t *tc_code;              /* RWX TC arena */
    uint32_t tc_code_size;
    void *tc_meta;
    uint32_t tc_meta_size;
    uint8_t *guest;                /* RWX guest memory (code + data), page aligned */
    uint32_t guest_size;
    uint8_t *stack;                /* guest stack region */
    uint32_t stack_size;
    uint8_t *hole;                 /* one PROT_NONE page */
    /* Last fault (BT_HARNESS_FAULT): */
    uint32_t fault_tca;            /* host EIP of the faulting instruction */
    uint32_t fault_addr;           /* si_addr */
    int fault_sig;                 /* SIGSEGV, SIGBUS, SIGTRAP */
    int fault_eip_ok;              /* tc_lookup_guest_eip result */
    /* Called for a SIGTRAP while guest code runs; true: resume at the
     * context as the hook left it (a test's INT3 probe), false: a fault. */
    bool (*trap_hook)(ucontext_t *uc);
    sigjmp_buf jb;
};

/* The vCPU state translated code uses (fixed address: emitted [disp32]). */
extern struct bt_vcpu bt_host_vcpu;

/* Host world switch (bt_harness_asm.S). */
void bt_host_enter(struct bt_vcpu *v, uint32_t tca);
void bt_host_exit(void);
/* The guest's ES and FS selectors between runs (bt_harness_asm.S). */
extern uint32_t bt_host_guest_es, bt_host_guest_fs;

/* Set up everything; tc sizes in bytes. Returns 0 or a negative E_* code. */
int bt_harness_init(struct bt_harness *h, uint32_t tc_code_size, uint32_t tc_meta_size,
                    uint32_t guest_size);
void bt_harness_free(struct bt_harness *h);

/* Guest registers to zero, ESP to the top of the guest stack, EFLAGS = 2,
 * virtual IF = 1, everything else of the vCPU as reset. */
void bt_harness_reset_vcpu(struct bt_harness *h);

/* bt_run under SIGSEGV/SIGBUS capture. Returns bt_run's reason, or
 * BT_HARNESS_FAULT with vcpu->gpr/eflags at the fault and vcpu->eip the
 * guest EIP (fault_eip_ok == 0) of the faulting instruction. */
int bt_harness_run(struct bt_harness *h, uint32_t max_dispatch);

/* Run guest code natively from entry until the HLT at hlt_gva (an INT3
 * for the run: its SIGTRAP ends it). Registers in/out through bt_host_vcpu.
 * Returns 0, or BT_HARNESS_FAULT for any other fault or trap. */
int bt_harness_run_native(struct bt_harness *h, uint32_t entry, uint32_t hlt_gva);

/* The .text section of a 32-bit ELF file (e.g. build/debian/vmlinux). */
struct bt_elf_text {
    uint8_t *file;          /* whole file (malloc; free it when done) */
    const uint8_t *bytes;   /* .text contents */
    uint32_t addr, size;    /* .text link address and bytes */
};

/* Read path and find its .text. Returns 0, or E_NOENT (no file) / E_INVAL. */
int bt_harness_load_text(const char *path, struct bt_elf_text *t);

/* bt_fetch_fn over a struct bt_elf_text (gva = link address). */
uint32_t bt_harness_text_fetch(void *ctx, uint32_t gva, uint8_t *buf, uint32_t len);

#endif
