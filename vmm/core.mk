# vmm/ core: VMs, vCPUs, guest memory, loader, world switch, console commands.
HV_SRCS += vmm/loader.c vmm/gmem.c vmm/pshare.c vmm/pshare_scan.c

UNIT_TESTS += test_loader
test_loader_SRCS := tests/unit/test_loader.c vmm/loader.c
# The loader tests load hv86.elf itself and Debian's i386 kernel.
build/unit/test_loader: hv86.elf $(DEBIAN_DIR)/vmlinux
HV_SRCS += vmm/vm.c vmm/vmconsole.c vmm/vmcmds.c vmm/vcpu.c vmm/emulate.c vmm/task.c vmm/segment.c vmm/realmode.c vmm/switch.S vmm/hostexec.c vmm/hostexec_run.S
HV_SRCS += vmm/vmdev.c vmm/cpuid.c vmm/vdisk.c vmm/vdiskio.c vmm/diskra.c vmm/redo.c vmm/vnic.c vmm/mptable.c

UNIT_TESTS += test_cpuid
test_cpuid_SRCS := tests/unit/test_cpuid.c vmm/cpuid.c

# Real-mode decisions: which engine runs a real-mode state, real-mode
# segment loads and FLAGS images.
UNIT_TESTS += test_realmode
test_realmode_SRCS := tests/unit/test_realmode.c vmm/realmode.c

# Shadow segment descriptors against a model of the SDM's limit rules.
UNIT_TESTS += test_segment
test_segment_SRCS := tests/unit/test_segment.c vmm/segment.c

# The console output ring of each VM (scrollback, drop-oldest, replay).
UNIT_TESTS += test_vmconsole
test_vmconsole_SRCS := tests/unit/test_vmconsole.c vmm/vmconsole.c mgmt/cmd.c mgmt/format.c

# Host execution of guest data instructions: the stub's trust property, #DE, runs.
UNIT_TESTS += test_hostexec
test_hostexec_SRCS := tests/unit/test_hostexec.c vmm/hostexec.c vmm/hostexec_run.S $(BT_DECODER_SRCS)

# A VM's disks and redo logs against a model (kernel services stubbed).
UNIT_TESTS += test_vdisk
test_vdisk_SRCS := tests/unit/test_vdisk.c vmm/vdisk.c vmm/redo.c tests/unit/hosted_kernel.c
test_vdisk_CFLAGS := -include tests/unit/hosted_kernel.h

# Sequential read-ahead of a VM disk: plans, hits, and a write never hidden
# by a window or a fill in flight (against a model of the disk's sectors).
UNIT_TESTS += test_diskra
test_diskra_SRCS := tests/unit/test_diskra.c vmm/diskra.c

# Guest RAM and content-based page sharing: share, unshare on every write
# path, reference counts, and a random model of several VMs.
UNIT_TESTS += test_gmem
test_gmem_SRCS := tests/unit/test_gmem.c vmm/gmem.c vmm/pshare.c tests/unit/hosted_kernel.c
test_gmem_CFLAGS := -include tests/unit/hosted_kernel.h

# firmware=bios: Debian's SeaBIOS (package seabios), its 128 KiB QEMU build,
# as GRUB module "seabios" (vm.h VM_BIOS_MODULE; docs/vmm.md "Guest firmware").
SEABIOS_BIN := /usr/share/seabios/bios.bin
$(B)/fw/seabios.bin: | deps
	@mkdir -p $(dir $@)
	cp $(SEABIOS_BIN) $@
ISO_MODULES += $(B)/fw/seabios.bin
