# boot/: Multiboot2 entry, trap stubs, context switch.
HV_SRCS += boot/entry.S boot/isr.S boot/switch.S
