/*
 * randbytes — jumps at CPL 0 into seed-generated random bytes (seed=N on the
 * command line) with an empty IDT, so whatever the bytes do -- fault, write
 * anywhere in its RAM, hit ports, halt -- ends this VM one way or another
 * (or spins forever). hv86 must never be taken down by it, and the other
 * VMs must not notice.
 */
#include "guest.h"

#define CODE_BYTES 4096

static uint8_t code[CODE_BYTES] __attribute__((aligned(4096)));

void guest_main(void)
{
    uint32_t seed = boot_arg("seed", 1) * 2654435761u + 1;
    for (int i = 0; i < CODE_BYTES; i++) {
        seed = seed * 1103515245u + 12345u;
        code[i] = (uint8_t)(seed >> 16);
    }
    static const struct dtr empty = { 0, 0 };
    printf("INFO jumping into random bytes, seed %u\n", boot_arg("seed", 1));
    lidt(&empty);
    asm volatile("jmp *%0" : : "r"(code));
}
