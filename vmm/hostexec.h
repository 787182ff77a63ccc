/*
 * Host execution of one guest data instruction on a bounce buffer.
 *
 * An instruction whose memory operand the shadow cannot map (the monitor
 * range, a traced page table, device memory) is emulated by the monitor.
 * For the integer instructions whose result and flags are the CPU's own
 * business (INC/DEC/NOT/NEG, MUL/IMUL/DIV/IDIV, shifts and rotates,
 * SHLD/SHRD, BSF/BSR, SETcc, CMOVcc, CMPXCHG, CMPXCHG8B, XADD), the host CPU
 * runs the instruction itself: the same opcode, ModRM reg field and
 * immediates, with the memory operand rewritten to an absolute address in a
 * bounce buffer holding the guest's bytes, and the guest's general
 * registers and arithmetic flags loaded. Result and flags, the undefined
 * ones included, are then those of the CPU the rest of the guest runs on.
 *
 * Trust: the instruction bytes are the guest's. The stub is rebuilt from
 * the decoder's fields, never copied whole: only a whitelisted mnemonic in
 * its memory form, the operand-size and F2/F3 prefixes, its opcode bytes,
 * the reg field and its immediates are kept, so it can touch nothing but
 * the bounce buffer, the general registers other than ESP, and the
 * arithmetic flags. An instruction naming ESP/SP is refused, as is a divide
 * that would raise #DE at ring 0 (hostexec_div_faults decides beforehand).
 * Source: Intel SDM Vol. 2A §2.1 (instruction format), §2.1.5 (ModRM
 * mod=00 r/m=101: disp32 alone).
 */
#ifndef HV86_VMM_HOSTEXEC_H
#define HV86_VMM_HOSTEXEC_H

#define HOSTEXEC_FLAGS 0x8D5 /* CF PF AF ZF SF OF: what the stub takes and gives */

/* Field offsets for vmm/hostexec_run.S (checked by static asserts in hostexec.c). */
#define HOSTEXEC_EFLAGS 32
#define HOSTEXEC_CODE   48

#ifndef __ASSEMBLER__
#include <stdbool.h>
#include <stdint.h>
#include "bt/decode.h"

struct hostexec {
    uint32_t gpr[8];   /* EAX..EDI in and out; gpr[4] (ESP) is neither loaded nor stored */
    uint32_t eflags;   /* in: the guest's; out: HOSTEXEC_FLAGS as the instruction left them */
    uint8_t mem[8];    /* the memory operand: the guest's bytes in, the result out */
    uint32_t pad;
    uint8_t code[32];  /* the stub: the rewritten instruction, then RET */
};

/* hostexec_allowed - whether hostexec_build accepts in (bytes aside). */
bool hostexec_allowed(const struct dec_insn *in);

/*
 * hostexec_build - the stub for guest instruction in, decoded from bytes
 * (at least in->len of them), with its memory operand at h->mem. Returns
 * the operand's size in bytes (1, 2, 4 or 8), or E_INVAL when the
 * instruction is not one host execution may run: not whitelisted, not its
 * memory form, naming ESP/SP or a non-general register.
 */
int hostexec_build(const struct dec_insn *in, const uint8_t *bytes, struct hostexec *h);

/*
 * hostexec_div_faults - whether DIV/IDIV (signed) of size bytes (1, 2, 4)
 * by divisor would raise #DE given EAX and EDX: a zero divisor, or a
 * quotient too wide for the destination (SDM Vol. 2A DIV, IDIV). The
 * monitor delivers the #DE itself rather than let ring 0 take it.
 */
bool hostexec_div_faults(unsigned size, bool is_signed, uint32_t eax, uint32_t edx, uint32_t divisor);

/* hostexec_run - run h->code with h's registers and flags (vmm/hostexec_run.S);
 * the host's IF, DF and other system flags are kept. */
void hostexec_run(struct hostexec *h);

#endif /* __ASSEMBLER__ */
#endif
