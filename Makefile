# hv86 — top-level Makefile.
#
#   make          build hv86.elf and the GRUB rescue ISO hv86.iso
#   make run      boot hv86.iso in QEMU TCG, console on this terminal
#   make test     unit tests (cmocka, host) + integration tests (QEMU TCG, Bochs)
#   make bench    throughput and guest-speed ratios
#   make deps     install the Debian packages the above need (run by all of them)
#
# Each directory contributes a fragment, <dir>/module.mk, that appends to:
#   HV_SRCS          freestanding .c/.S files linked into hv86.elf
#   UNIT_TESTS       names of host unit-test programs; for each NAME:
#                      NAME_SRCS    sources (test + code under test)
#                      NAME_LDLIBS  extra libraries (e.g. -lZydis)
#                      NAME_CFLAGS  extra compiler flags
#   INTEGRATION_TESTS  phony targets run by `make test` after the unit tests
#   BENCHES          phony targets run by `make bench`
#   ISO_MODULES      files copied into the ISO's /boot/modules (GRUB module2)

.DEFAULT_GOAL := all
B := build

CC      := gcc
HV_CFLAGS := -m32 -march=i686 -std=gnu11 -ffreestanding -fno-builtin -fno-pie -fno-pic \
	-fno-stack-protector -fno-omit-frame-pointer -fno-tree-loop-distribute-patterns -mgeneral-regs-only -mno-red-zone \
	-mstringop-strategy=libcall \
	-O2 -flto -g -Wall -Wextra -Werror -Wno-unused-parameter -I. -MMD -MP
HV_ASFLAGS := -m32 -g -I. -D__ASSEMBLER__ -MMD -MP
HV_LDFLAGS := -m32 -O2 -flto -flto-partition=none -mgeneral-regs-only -nostdlib -static -no-pie -Wl,--build-id=none -Wl,-T,linker.ld -Wl,-z,max-page-size=0x1000 -Wl,--no-warn-rwx-segments
HOST_CFLAGS := -m32 -std=gnu11 -O1 -g -Wall -Wextra -Werror -Wno-unused-parameter \
	-I. -DHV86_HOSTED -fno-omit-frame-pointer -MMD -MP
HOST_LDLIBS := -lcmocka
# Debian's python3, which has python3-pexpect (a pyenv python on PATH may not).
PYTHON := /usr/bin/python3

# Disk images made by scripts/mkdisks.sh for `make run` and the tests.
DISK_GPT := $(B)/disk-gpt.img
DISK_MBR := $(B)/disk-mbr.img
DISK_BAD := $(B)/disk-bad.img
DISKS := $(DISK_GPT) $(DISK_MBR) $(DISK_BAD) $(B)/disks.expected

# The unit tests and benches are i386 programs; a host kernel without IA32
# emulation runs them under qemu-i386. I386_PROBE, built like them, tells
# scripts/i386-exec.sh which (docs/testing.md). RUN_I386 PROG ARGS runs one
# such program (the bench rules use it).
I386_PROBE := $(B)/unit/i386_probe
RUN_I386 := sh scripts/run-i386.sh $(I386_PROBE)

HV_SRCS :=
UNIT_TESTS :=
INTEGRATION_TESTS :=
BENCHES :=
ISO_MODULES :=

include $(wildcard */module.mk)

# ---------------------------------------------------------------- deps
.PHONY: deps
deps:
	@sh scripts/install-deps.sh

# ---------------------------------------------------------------- hypervisor
HV_OBJS := $(patsubst %.c,$(B)/hv/%.o,$(patsubst %.S,$(B)/hv/%.o,$(HV_SRCS)))

$(B)/hv/%.o: %.c | deps
	@mkdir -p $(dir $@)
	$(CC) $(HV_CFLAGS) -c $< -o $@
# memcpy and memset: the compiler emits calls to them after link-time
# optimization (struct copies, -mstringop-strategy=libcall), when an LTO
# object's definition could already have been dropped as unused.
$(B)/hv/kernel/lib.o: HV_CFLAGS += -fno-lto
$(B)/hv/%.o: %.S | deps
	@mkdir -p $(dir $@)
	$(CC) $(HV_ASFLAGS) -c $< -o $@

hv86.elf: $(HV_OBJS) linker.ld
	$(CC) $(HV_LDFLAGS) -o $@ $(HV_OBJS) -lgcc
	@grub-file --is-x86-multiboot2 $@ || (echo "hv86.elf is not a Multiboot2 kernel"; rm -f $@; exit 1)

hv86.iso: hv86.elf boot/grub.cfg $(ISO_MODULES)
	@rm -rf $(B)/iso && mkdir -p $(B)/iso/boot/grub $(B)/iso/boot/modules
	cp hv86.elf $(B)/iso/boot/hv86.elf
	$(if $(ISO_MODULES),cp $(ISO_MODULES) $(B)/iso/boot/modules/)
	@# one `module2 FILE NAME` line per guest image; NAME is what `vm create kernel=` takes
	sed 's|^@MODULES@$$|$(foreach m,$(ISO_MODULES),    module2 /boot/modules/$(notdir $(m)) $(basename $(notdir $(m)))\n)|' \
		boot/grub.cfg > $(B)/iso/boot/grub/grub.cfg
	grub-mkrescue -o $@ $(B)/iso 2>$(B)/grub-mkrescue.log || (cat $(B)/grub-mkrescue.log; exit 1)

# $(call iso_plus,TREE,FILE,PATH,NAME[,OPTION]): hv86.iso's tree copied to
# TREE with FILE at PATH as one more GRUB module NAME (`module2 [OPTION]
# PATH NAME`), made into the ISO $@.
define iso_plus
	@rm -rf $(1) && cp -r $(B)/iso $(1)
	cp $(2) $(1)$(3)
	sed -i 's|^\(\s*multiboot2 .*\)$$|\1\n    module2 $(if $(5),$(5) )$(3) $(4)|' $(1)/boot/grub/grub.cfg
	grub-mkrescue -o $@ $(1) 2>$(B)/grub-mkrescue.log || (cat $(B)/grub-mkrescue.log; exit 1)
endef

# `make run`'s ISO: the same, plus the startup script boot/hv86.rc (GRUB module "rc")
hv86-run.iso: hv86.iso boot/hv86.rc
	$(call iso_plus,$(B)/iso-run,boot/hv86.rc,/boot/hv86.rc,rc)

# `make bench-disk`'s and `make bench-stress`'s ISO: the same plus the bench
# image (GRUB module "bench", scripts/module.mk), 38.5 MB that the other
# ISOs need not carry.
# --nounzip: GRUB would gunzip it (as it does the other images) into 92 MiB
# of host RAM and then of guest RAM, where Linux's rootfs (tmpfs, at most
# half the RAM left beside the initrd) has no room to unpack it; so the
# guest gets the same gzip'ed bytes as under QEMU's -initrd.
hv86-bench.iso: hv86.iso $(LINUX_DIR)/bench.img
	$(call iso_plus,$(B)/iso-bench,$(LINUX_DIR)/bench.img,/boot/modules/bench.img,bench,--nounzip)

.PHONY: all
all: hv86.iso

# ---------------------------------------------------------------- disks for run/test
$(DISKS) &: scripts/mkdisks.sh | deps
	@mkdir -p $(B)
	sh scripts/mkdisks.sh $(DISK_GPT) $(DISK_MBR) $(DISK_BAD)

QEMU := qemu-system-i386
QEMU_MEM ?= 512
QEMU_ARGS = -accel tcg -m $(QEMU_MEM) -cdrom hv86.iso -boot d \
	-drive file=$(DISK_GPT),format=raw,if=ide,index=0 \
	-drive file=$(DISK_MBR),format=raw,if=ide,index=1 \
	-device isa-debug-exit,iobase=0xf4,iosize=4 -no-reboot

# The machine's NIC: an Intel 82540EM (hv86's e1000 driver, the uplink of the
# startup script's switch wan) on QEMU's user-mode network, with RUN_PORT on
# this machine's loopback forwarded to the web guest's httpd (docs/net.md).
RUN_PORT ?= 8080
RUN_NIC = -nic user,model=e1000,hostfwd=tcp:127.0.0.1:$(RUN_PORT)-10.0.2.15:80
.PHONY: run
# The secondary slave is the boot disk of `vm create pc firmware=bios disk=ata3`
# (scripts/mkbootdisk.sh; docs/vmm.md "Guest firmware").
run: hv86-run.iso $(DISKS) $(B)/disk-boot.img
	$(QEMU) $(QEMU_ARGS:hv86.iso=hv86-run.iso) -drive file=$(B)/disk-boot.img,format=raw,if=ide,index=3 \
		$(RUN_NIC) -display none -serial mon:stdio

# ---------------------------------------------------------------- unit tests
# A program is built from several sources in one gcc run, whose -MMD file
# lists the headers of the last source only: every program depends on every
# header instead, so that no test runs stale code after a header changes.
UNIT_HDRS := $(shell find bt kernel vmm drivers net mgmt tests/unit -name '*.h')
define unit_test_rule
$(B)/unit/$(1): $$($(1)_SRCS) $$(UNIT_HDRS) | deps
	@mkdir -p $$(dir $$@)
	$$(CC) $$(HOST_CFLAGS) $$($(1)_CFLAGS) -o $$@ $$($(1)_SRCS) $$(HOST_LDLIBS) $$($(1)_LDLIBS)
endef
$(foreach t,$(UNIT_TESTS),$(eval $(call unit_test_rule,$(t))))

UNIT_BINS := $(addprefix $(B)/unit/,$(UNIT_TESTS))

$(I386_PROBE): tests/unit/i386_probe.c | deps
	@mkdir -p $(dir $@)
	$(CC) $(HOST_CFLAGS) -o $@ $<

.PHONY: unit
unit: $(UNIT_BINS) $(I386_PROBE)
	@sh scripts/run-unit.sh $(I386_PROBE) $(UNIT_BINS)

.PHONY: test
test: unit hv86.iso $(DISKS)
	@$(MAKE) --no-print-directory integration

.PHONY: integration
integration: $(INTEGRATION_TESTS)

.PHONY: bench
bench: $(BENCHES)

.PHONY: clean
clean:
	rm -rf $(B) hv86.elf hv86.iso hv86-run.iso hv86-bench.iso

-include $(shell find $(B)/hv $(B)/unit -type f -name '*.d' 2>/dev/null)
