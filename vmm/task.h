/*
 * Hardware task switching for the guest (vmm/task.c): JMP and CALL to a
 * TSS or a task gate, interrupts and exceptions through an IDT task gate,
 * IRET with EFLAGS.NT back through the previous-task link.
 * Source: Intel SDM Vol. 3A ch. 7 (§7.2 TSS, §7.3 task switching, §7.4
 * task linking), §6.11-6.12 (task gates in the IDT), Vol. 2A JMP, CALL,
 * INT n and IRET "Operation".
 */
#ifndef HV86_VMM_TASK_H
#define HV86_VMM_TASK_H
#include <stdint.h>

struct vcpu;

/* What started a task switch: it decides the busy bits, NT and the link
 * (SDM Vol. 3A Table 7-2). */
enum task_source {
    TASK_JMP,  /* old task not busy; new NT as in its TSS; no link */
    TASK_CALL, /* old task stays busy; new NT set; new link = old TR */
    TASK_INT,  /* as CALL, for an interrupt or exception through a task gate */
    TASK_IRET, /* old task not busy and its saved NT cleared; the new one was busy */
};

/* System descriptor types (SDM Vol. 3A Table 3-2) */
#define SYS_TSS16_AVAIL 0x1
#define SYS_TSS16_BUSY  0x3
#define SYS_TASK_GATE   0x5
#define SYS_TSS32_AVAIL 0x9
#define SYS_TSS32_BUSY  0xB
#define SYS_CALL_GATE32 0xC

/* A fault found before a task switch's commit point (SDM Vol. 3A §7.3
 * steps 1-4): nothing was changed yet, so the caller raises it in the old
 * task's context (vector, error code) by its own rules: an instruction
 * raises it, an event delivery turns it into a double fault when both are
 * contributory. */
struct task_fault {
    unsigned vector;
    uint32_t err;
};

/* Results of the functions below besides 0 (done) and <0 (VM stopped). */
#define TASK_FAULT 1 /* *f holds a fault to raise in the old task */

/*
 * task_switch - switch the vCPU from the task in TR to the 32-bit TSS that
 * GDT selector sel names (guest descriptor d: type, base, limit; the caller
 * has made the privilege, type, busy and presence checks of its
 * instruction or gate). ret_eip is the EIP saved in the old TSS (the next
 * instruction for JMP/CALL/IRET/INT n, the faulting one for a fault).
 * err >= 0: an error code pushed on the new task's stack (TASK_INT).
 *
 * Before the commit point: new TSS limit >= 67h else #TS(sel), old TSS
 * limit >= 5Fh else #TS(TR), the new TSS read (a #PF is injected in the
 * old task: return 0), the old busy bit cleared (JMP, IRET), the old state
 * saved into the old TSS, the link written (CALL, INT), the new busy bit
 * set (not IRET), all in guest memory through the guest's own paging.
 * Then TR, CR0.TS, CR3 (paging on), EFLAGS (NT for CALL and INT), EIP,
 * general registers, LDTR and the segment registers are loaded; their
 * faults (#TS, #NP, #SS with the selector, §7.3 Table 7-1) are delivered
 * in the new task. Segment registers are loaded through vcpu_load_seg like
 * every other load, so their shadows stay below the monitor.
 *
 * Returns 0, TASK_FAULT (*f set, nothing changed), or <0 after vm_kill: a
 * 16-bit TSS, a new task in virtual-8086 mode or at ring 1 or 2, or a
 * fault while delivering through a task gate that the guest cannot take.
 */
int task_switch(struct vcpu *c, uint16_t sel, uint64_t d, enum task_source src, uint32_t ret_eip, int err,
                struct task_fault *f);

/*
 * task_gate_target - the TSS a task gate names (SDM Vol. 2A JMP, CALL, INT
 * "TASK-GATE"): tss_sel must be a GDT selector within its limit (else
 * #GP(tss_sel)) naming an available TSS (else #GP(tss_sel)) that is
 * present (else #NP(tss_sel)). Returns 0 with its descriptor in *d,
 * TASK_FAULT with *f, or <0 (VM stopped).
 */
int task_gate_target(struct vcpu *c, uint16_t tss_sel, uint64_t *d, struct task_fault *f);

/*
 * task_return - IRET with EFLAGS.NT set (SDM Vol. 2A IRET "TASK-RETURN",
 * Vol. 3A §7.4): back to the task in the previous-task link of the
 * current TSS, which must be a GDT selector of a busy TSS (else
 * #TS(link)) that is present (else #NP(link)). ret_eip: the address after
 * the IRET. Returns 0 (done or a fault injected), or <0 (VM stopped).
 */
int task_return(struct vcpu *c, uint32_t ret_eip);

#endif
