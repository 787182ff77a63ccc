/*
 * Virtual machines: what `vm create` makes and the console manages.
 * A VM has guest RAM (vmm/gmem.h), one vCPU run by one scheduler thread,
 * its devices, and a virtual serial line whose output is kept in a
 * scrollback ring on its way to COM1 (vmm/vmconsole.c).
 *
 * Life cycle (docs/vmm.md):
 *   CREATED --start--> RUNNING <--pause/resume--> PAUSED
 *   RUNNING/PAUSED --stop, guest fault, poweroff--> STOPPED --start--> RUNNING
 *   RUNNING --guest reset (i8042 0xFE)--> RUNNING, from the kernel entry again
 *   any state but RUNNING/PAUSED --destroy--> gone
 * A guest's misbehaviour stops only that VM, with the first reason kept
 * (vm_kill, STYLE.md §4).
 */
#ifndef HV86_VMM_VM_H
#define HV86_VMM_VM_H
#include <stdbool.h>
#include <stdint.h>
#include "kernel/sched.h"
#include "kernel/spinlock.h"
#include "vmm/gmem.h"
#include "vmm/vdisk.h"
#include "vmm/vnic.h"

#define VM_MAX          64
#define VM_NAME_MAX     16
#define VM_REASON_MAX   96
#define VM_CMDLINE_MAX  256
#define VM_SCROLLBACK   65536 /* bytes of guest console output kept (a Linux boot log) */
#define VM_BIOS_MODULE  "seabios" /* GRUB module of firmware=bios: Debian's 128 KiB SeaBIOS bios.bin */
#define VM_BIOS_BYTES   0x20000u  /* its size */
#define VM_BIOS_TOP     0x100000u /* the BIOS image ends at 1 MiB (E0000h-FFFFFh for 128 KiB) */

enum vm_state { VM_CREATED, VM_RUNNING, VM_PAUSED, VM_STOPPED, VM_STATES };

/* Why the vCPU left guest execution: counted per VM for `vm info`. */
enum vm_exit_cause {
    EXIT_IO, EXIT_HLT, EXIT_IRQ, EXIT_PF_HIDDEN, EXIT_PF_GUEST, EXIT_EXCEPTION, EXIT_INT,
    EXIT_IRET, EXIT_PRIV, EXIT_CR3, EXIT_BT, EXIT_CAUSES
};

struct vcpu;
struct vm_devices;

struct vm {
    char name[VM_NAME_MAX];
    int id;
    volatile enum vm_state state;
    char stop_reason[VM_REASON_MAX];
    char kernel[64];               /* GRUB module name of the kernel image ("" with bios) */
    bool bios;                     /* firmware=bios: SeaBIOS from GRUB module VM_BIOS_MODULE boots the first disk */
    char initrd[64];               /* GRUB module name of a Linux initrd, "" if none */
    char cmdline[VM_CMDLINE_MAX];
    uint32_t mem_bytes;
    bool apic;                     /* local APIC, I/O APIC and MP table (`apic=1`, the default) */
    bool tsc_deadline;             /* its timer offers TSC-deadline mode too (`apic=deadline`) */
    struct gmem mem;
    struct vdisk disks[VM_MAX_DISKS]; /* held from create to destroy (vmm/vdisk.h) */
    unsigned ndisks;
    struct vnic nics[VM_MAX_NICS]; /* ports held from create to destroy (vmm/vnic.h) */
    unsigned nnics;
    struct vcpu *vcpu;
    struct vm_devices *dev;
    int thread;                    /* vCPU thread id, 0 when not running */
    volatile bool stop_req, pause_req;
    volatile bool reset_req;       /* the guest pulsed its reset line: reboot at the next loop turn */
    const char *reset_why;         /* which line (static string), for the log */
    struct wait_queue state_wq;    /* vCPU waits here while paused; stop waits for the thread */
    /* Virtual serial line output. */
    uint8_t scroll[VM_SCROLLBACK];
    uint64_t scroll_head;          /* bytes ever written; ring index = head % size */
    uint64_t scroll_sent;          /* bytes given to COM1 (replay, then live); <= head */
    uint64_t scroll_lost;          /* bytes overwritten before COM1 took them (vmconsole.c) */
    /* Statistics. */
    uint64_t cpu_ticks;            /* ticks the vCPU thread ran */
    uint64_t exits, exits_by_cause[EXIT_CAUSES];
    uint64_t exits_at_last_list, ticks_at_last_list;
    uint32_t resets;               /* guest-requested reboots since `vm create` */
};

/* vm_kill - stop vm because of the guest: record the first reason (printf
 * format), mark it STOPPED and make its vCPU leave. Callable from the vCPU
 * thread or any other thread; the caller carries on. */
void vm_kill(struct vm *vm, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The VM's vCPU thread is ending (normally or killed by a fault): mark the
 * VM stopped and wake whoever waits for that. */
void vm_thread_died(struct vm *vm);
/* vm_request_reset - the guest asked for a machine reset (the i8042's
 * 0xFE pulse of the CPU reset line: IBM PC/AT Technical Reference). Only
 * records the request in vm->reset_req, with why (a static string) for the
 * log: the caller is a device in the middle of a port access, which must
 * finish before the vCPU and devices are reset. The vCPU thread honours it
 * at its next loop turn with vm_reboot. Any thread; cannot fail. */
void vm_request_reset(struct vm *vm, const char *why);
/* vm_reboot - honour reset_req on the vCPU thread (vcpu_thread, between
 * guest instructions): guest RAM zeroed, kernel and initrd (firmware=bios:
 * the BIOS image, the vCPU at the reset vector) loaded again and
 * vCPU and devices at power-on state, exactly as `vm start` of a stopped VM
 * (the VM stays RUNNING; statistics and console scrollback carry on). If the
 * reload fails (E_NOENT, E_RANGE, E_NOMEM: see vm_create) the VM is stopped
 * with vm_kill and the reason. */
void vm_reboot(struct vm *vm);
/* Find a VM by name; NULL if none. */
struct vm *vm_find(const char *name);
/*
 * The VM's serial line output (vmm/vmconsole.c, docs/vmm.md "Console
 * output"): a ring of VM_SCROLLBACK bytes between the guest and COM1.
 *
 * vm_console_output - append len bytes the guest transmitted (its UART, the
 * debug port) to the scrollback; if vm is live, wake the forwarder. Never
 * waits: the guest's UART sends instantly (vmm/dev/vuart.h) whatever COM1
 * does. Any thread, interrupts on or off.
 *
 * vm_console_replay - write the scrollback (at most VM_SCROLLBACK bytes, the
 * oldest first) to out, and remember how far it got. Console thread; waits
 * for the line, so it takes as long as one scrollback at COM1's speed
 * (5.7 s at 115200 baud) however much the guest prints meanwhile.
 *
 * vm_console_live - from where the replay stopped, forward vm's output to
 * COM1 from the "vm-console" thread (created at the first call) until
 * vm_console_unlive. Bytes the guest overwrites before COM1 takes them are
 * dropped, oldest first, and reported by one line "[hv86: N bytes of output
 * lost: ...]"; their total is vm->scroll_lost. Returns 0, or E_NOMEM if the
 * thread cannot be created. One VM is live at a time (the attached one).
 *
 * vm_console_unlive - stop forwarding vm (no-op if it is not live); returns
 * once the forwarder has written the chunk it was on, so that nothing of vm
 * follows the caller's next output. Any thread that may sleep.
 */
void vm_console_output(struct vm *vm, const uint8_t *buf, uint32_t len);
struct cmd_out;
void vm_console_replay(struct vm *vm, struct cmd_out *out);
int vm_console_live(struct vm *vm);
void vm_console_unlive(struct vm *vm);
/* Register the `vm` and `console` commands. Call once before console_start. */
int vm_commands_init(void);
const char *vm_state_name(enum vm_state s);

#endif

#ifndef HV86_VMM_VM_OPS
#define HV86_VMM_VM_OPS
#include <stddef.h>
extern struct vm *vms[VM_MAX];
/* Life-cycle operations behind the console commands. Each returns 0 or an
 * E_* code with a one-line reason in err[0..errlen) where it takes one.
 * vm_create: disks (ndisks <= VM_MAX_DISKS, parsed by vdisk_parse) are
 * claimed for the VM until vm_destroy; E_BUSY if another VM holds one of
 * them in a conflicting way (vdisk_conflict). nics (nnics <= VM_MAX_NICS,
 * parsed by vnic_parse) get a port each on their switch until vm_destroy;
 * E_EXIST if a port there has the same address. apic: VM_APIC gives the
 * VM a local APIC, an I/O APIC and an MP table, VM_APIC_DEADLINE the same
 * with the TSC-deadline mode of the APIC timer offered (CPUID.1:ECX[24]),
 * VM_APIC_NONE the PIC-only PC of before. bios: kernel is NULL and the VM
 * boots through SeaBIOS (module VM_BIOS_MODULE) from its first disk, as a
 * PC does (docs/vmm.md "Guest firmware"); E_INVAL if it has no disk. */
enum vm_apic { VM_APIC_NONE, VM_APIC, VM_APIC_DEADLINE };
int vm_create(const char *name, const char *kernel, const char *initrd, uint32_t mem_bytes,
              const char *cmdline, const struct vdisk *disks, unsigned ndisks, const struct vnic *nics,
              unsigned nnics, enum vm_apic apic, bool bios, char *err, size_t errlen);
int vm_start(struct vm *vm, char *err, size_t errlen);
/* Stop a running or paused VM with reason and wait for its vCPU thread. */
void vm_stop(struct vm *vm, const char *reason);
/* Pause (true) or resume (false): E_BUSY if not running / not paused. */
int vm_pause(struct vm *vm, bool pause);
/* Free a VM that is not running: E_BUSY otherwise. */
int vm_destroy(struct vm *vm);
#endif
