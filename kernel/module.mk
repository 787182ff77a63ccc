# kernel/: the host kernel (boot sequence, traps, paging, scheduler, logging).
HV_SRCS += kernel/main.c kernel/gdt.c kernel/traps.c kernel/irq.c kernel/profile.c kernel/paging.c \
	kernel/mbi.c kernel/bootmod.c kernel/lib.c kernel/printf.c kernel/log.c kernel/panic.c \
	kernel/spinlock.c kernel/sched.c kernel/runq.c kernel/clock.c kernel/vmwin.c

UNIT_TESTS += test_runq
test_runq_SRCS := tests/unit/test_runq.c kernel/runq.c

include kernel/mm.mk
