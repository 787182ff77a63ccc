/*
 * Real-address mode under the monitor: the decisions, kept apart from the
 * engine (vmm/vcpu.c, vmm/emulate.c) so that they can be tested alone.
 *
 * A guest with CR0.PE = 0 runs in one of two ways (docs/vmm.md "Real mode"):
 *   - in virtual-8086 mode at CPL 3 (EFLAGS.VM = 1, IOPL 0), when the CPU
 *     would compute every address the way the guest's real-mode segment
 *     registers do: each base equals its selector * 16. The guest's linear
 *     space is then 0..10FFEFh, far below the monitor; CLI, STI, PUSHF,
 *     POPF, INT n, IRET, HLT, MOV CRn, LGDT/LIDT and port I/O fault (#GP)
 *     and are emulated, as is any offset past 64 KiB (v86 limits are
 *     always FFFFh) against the guest's own hidden limit (unreal mode);
 *   - emulated one instruction at a time otherwise: right after a switch
 *     from protected mode, while a segment register still holds a
 *     descriptor cache whose base is not its selector * 16.
 * A real-mode guest with a 32-bit code segment (CS.D = 1 left from
 * protected mode) is stopped with that reason.
 * Sources: Intel SDM Vol. 3A ch. 20 (real-address and virtual-8086 modes),
 * §9.9 (mode switching), §20.1.4 (interrupts in real mode).
 */
#ifndef HV86_VMM_REALMODE_H
#define HV86_VMM_REALMODE_H
#include <stdbool.h>
#include <stdint.h>
#include "vmm/segment.h"

#define RM_OFFSET_MAX 0xFFFFu /* the limit of every virtual-8086 segment */

enum rm_engine {
    RM_V86,     /* run directly in virtual-8086 mode */
    RM_EMULATE, /* emulate instruction by instruction */
    RM_STOP,    /* a state hv86 cannot run: stop the guest, *why says so */
};

/*
 * rm_engine_for - how to run a real-mode guest whose segment registers
 * hold seg[SR_*] (selector and hidden part) at instruction pointer eip.
 * RM_V86 when every base is selector * 16, CS and SS are 16-bit (D/B = 0:
 * IP and SP wrap at 64 KiB, as v86 does them), no limit is below FFFFh
 * (larger is unreal mode: those accesses fault in v86 and are emulated),
 * and eip is within 64 KiB. RM_STOP with *why for CS.D = 1. RM_EMULATE
 * otherwise. Pure; SDM Vol. 3A §20.1.1, §9.9.2 step 9 (the selectors
 * real-mode code must reload).
 */
enum rm_engine rm_engine_for(const struct vseg seg[SR_N], uint32_t eip, const char **why);

/*
 * rm_seg_load - what loading selector sel into a segment register in
 * real-address mode leaves in its descriptor cache s: base = sel * 16, a
 * present read/write data segment, the limit and the G and D/B flags kept
 * (which is how unreal mode survives a reload; Bochs 2.7 does the same).
 * SDM Vol. 3A §20.1.1.
 */
void rm_seg_load(struct vseg *s, uint16_t sel);

/*
 * rm_flags_image - the 16-bit FLAGS image real-mode PUSHF and interrupt
 * delivery store for EFLAGS value eflags: the low 16 bits, with bit 1 set
 * and bits 3, 5, 15 clear as on a P6 (SDM Vol. 1 §3.4.3).
 */
uint16_t rm_flags_image(uint32_t eflags);

/*
 * rm_flags_pop - EFLAGS after a real-mode POPF/IRET with operand size os
 * (2 or 4) pops img over the current eflags: at CPL 0 every flag a POPF
 * writes is taken (IF and IOPL included); a 16-bit pop keeps bits 31:16;
 * VM, VIF, VIP and RF are never changed by it. SDM Vol. 2B POPF, IRET
 * (real-address mode).
 */
uint32_t rm_flags_pop(uint32_t eflags, uint32_t img, unsigned os);

#endif
