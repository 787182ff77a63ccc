/*
 * The virtual CPU and the execution engine that runs it (vmm/vcpu.c):
 * guest CPL0 code through the binary translator at ring 1, guest CPL3 code
 * by direct execution at ring 3, every trap landing in the monitor first.
 */
#ifndef HV86_VMM_VCPU_H
#define HV86_VMM_VCPU_H
#include <stdbool.h>
#include <stdint.h>
#include "vmm/loader.h"

struct vm;

/*
 * vcpu_create - allocate vm->vcpu: its state and shadow GDT from the direct
 * map, its window (kernel/vmwin.h) with the translation cache (10 MiB for a
 * guest of 32 MiB or more, else 1.5 MiB) and SH_POOL_PAGES shadow-table
 * frames from high memory. Returns 0, or E_NOMEM with err naming what ran
 * out ("out of high memory for the translation cache (10240 KiB more
 * needed)"); nothing is left allocated then.
 */
int vcpu_create(struct vm *vm, char *err, size_t errlen);
void vcpu_destroy(struct vm *vm);
/* Architectural state at a Multiboot entry (Multiboot §3.2): protected mode,
 * paging off, flat segments, EAX/EBX/EIP from e; empties the TC. For
 * e->version == LOADER_FIRMWARE, the state after RESET instead (SDM Vol. 3A
 * Table 9-1): real mode at e->cs:e->eip with CS.base = e->cs * 16. */
void vcpu_reset(struct vm *vm, const struct loader_entry *e);
/* Body of the VM's vCPU thread: runs the guest until the VM stops. */
void vcpu_thread(void *vm);
/*
 * vcpu_dma_write - a device wrote len bytes at guest-physical gpa (DMA):
 * gmem_write, then every cache the monitor keeps of that memory is dropped
 * -- shadows built from a guest page table there (shadow_gpa_changed) and
 * translations of code there -- as a CPU store would have done through the
 * write protection. Returns 0, or E_RANGE (outside guest RAM; nothing
 * written). vCPU thread only: the shadow is the current one.
 */
int vcpu_dma_write(struct vm *vm, uint32_t gpa, const void *buf, uint32_t len);
/* vcpu_dma_wrote - as vcpu_dma_write for bytes a host device already
 * wrote into guest RAM by bus-master DMA (zero copy): only the dropping of
 * the monitor's caches. gpa + len must lie inside guest RAM. vCPU thread. */
void vcpu_dma_wrote(struct vm *vm, uint32_t gpa, uint32_t len);
/* Print registers and engine statistics (for `vm info`). */
struct cmd_out;
void vcpu_info(struct vm *vm, struct cmd_out *out);

/*
 * vcpu_monitor_us - microseconds the monitor spent from the VM's exits of
 * a cause (enum vm_exit_cause; EXIT_CAUSES: exits that counted none, the
 * translator's dispatches) to its next entries: handling, and anything
 * the thread waited for or was preempted by meanwhile (a HLT's idle time).
 * 0 for an unknown cause.
 */
uint64_t vcpu_monitor_us(struct vm *vm, unsigned cause);
/*
 * vcpu_exit_sites - print the guest instructions that exit most (for `vm
 * exits`): up to `top` rows of count, guest EIP, CPL and why (translator
 * exit reason, exception, hidden or guest page fault), most first, then
 * the total and the exits the table could not place. reset: forget them
 * afterwards. The table is written by the vCPU thread without a lock: a
 * row read while it counts may be one exit behind.
 */
void vcpu_exit_sites(struct vm *vm, struct cmd_out *out, unsigned top, bool reset);
/*
 * vcpu_tc_guest_eips - the guest EIP whose translation holds each of n
 * translation cache addresses tca[] (linear addresses in the VM's TC
 * window, as a ring-1 CS base + EIP; bt/tc.h tc_lookup_guest_eip), into
 * eip[], and 0 or E_NOENT (in no translated block: the shared lookup
 * stub, exit stubs, outside the TC) into rc[]: for `vm tceip`, which
 * bench/insn_count.py uses to put translated code's instructions against
 * the guest kernel's functions. The TC and its window belong to the vCPU
 * thread, so the lookups run there, while the VM is paused: the caller
 * (another thread) waits for its run loop to take them, at most a second.
 * n <= VCPU_TCEIP_MAX. Returns 0, E_BUSY if the VM is not paused, or
 * E_TIMEOUT if the vCPU thread did not answer.
 */
#define VCPU_TCEIP_MAX 16
int vcpu_tc_guest_eips(struct vm *vm, const uint32_t *tca, uint32_t *eip, int *rc, unsigned n);

#endif
