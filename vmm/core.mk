# vmm/ core: VMs, vCPUs, guest memory, loader, world switch, console commands.
HV_SRCS += vmm/loader.c vmm/gmem.c

UNIT_TESTS += test_loader
test_loader_SRCS := tests/unit/test_loader.c vmm/loader.c
build/unit/test_loader: hv86.elf
HV_SRCS += vmm/vm.c vmm/vmcmds.c vmm/vcpu.c vmm/emulate.c vmm/switch.S
HV_SRCS += vmm/vmdev.c
