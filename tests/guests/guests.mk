# tests/guests/: small Multiboot test guests, each probing one virtualization
# hazard, run natively under QEMU TCG and Bochs (the reference for hv86).
#
#   make guests          build/guests/<g>.elf and build/guests/iso/<g>.iso
#   make guests-native   run them all under both emulators and compare
#
# See tests/guests/README.md for the output protocol and the hv86 backend hook.

GUESTS := popf clisti segread tables cregs pgonoff pages adbits pf user r3return tasks cpufeat \
	sysenter timer except smc hlt uart hostile seglimit gsdata stalecode apic pshare realmode unsync mmiosite \
	ptchurn
# Guests for hv86 only (no native reference: their point is how hv86 copes):
# a CPU hog for fairness, a triple fault, random bytes, a console flood, the
# differential fuzzer (its reference is native Bochs running the same programs),
# an endless REP OUTS, a hostile disk driver, a hostile NIC driver that floods its switch,
# FPU registers checked while VMs take turns (fpukeep).
HV_GUESTS := spin tfault randbytes flood fuzz repio diskattack netflood apichammer taskattack fpukeep
# Guests GRUB boots with `multiboot2` in their Bochs ISO (QEMU -kernel is
# always Multiboot v1), so the runtime's Multiboot2 entry is exercised too.
GUESTS_MB2 := segread timer

GUEST_SRC := tests/guests
GUEST_B := $(B)/guests
GUEST_CFLAGS := -m32 -march=i686 -std=gnu11 -ffreestanding -nostdlib -fno-builtin \
	-fno-pie -fno-pic -fno-stack-protector -fno-omit-frame-pointer -mgeneral-regs-only \
	-O2 -Wall -Wextra -Werror -Wno-unused-parameter -Wno-missing-field-initializers -I$(GUEST_SRC)/lib -MMD -MP
GUEST_LDFLAGS := -m32 -nostdlib -static -no-pie -Wl,--build-id=none \
	-Wl,-T,$(GUEST_SRC)/guest.ld -Wl,-z,max-page-size=0x1000 -Wl,--no-warn-rwx-segments

GUEST_LIB_SRCS := $(wildcard $(GUEST_SRC)/lib/*.c $(GUEST_SRC)/lib/*.S)
GUEST_LIB_OBJS := $(patsubst $(GUEST_SRC)/lib/%,$(GUEST_B)/lib/%.o,$(GUEST_LIB_SRCS))
GUEST_ELFS := $(addprefix $(GUEST_B)/,$(addsuffix .elf,$(GUESTS) $(HV_GUESTS)))
GUEST_ISOS := $(addprefix $(GUEST_B)/iso/,$(addsuffix .iso,$(GUESTS)))

$(GUEST_B)/lib/%.c.o: $(GUEST_SRC)/lib/%.c | deps
	@mkdir -p $(dir $@)
	$(CC) $(GUEST_CFLAGS) -c $< -o $@
$(GUEST_B)/lib/%.S.o: $(GUEST_SRC)/lib/%.S | deps
	@mkdir -p $(dir $@)
	$(CC) $(GUEST_CFLAGS) -D__ASSEMBLER__ -c $< -o $@
$(GUEST_B)/%.o: $(GUEST_SRC)/%.c | deps
	@mkdir -p $(dir $@)
	$(CC) $(GUEST_CFLAGS) -c $< -o $@

$(GUEST_B)/%.elf: $(GUEST_B)/%.o $(GUEST_LIB_OBJS) $(GUEST_SRC)/guest.ld
	$(CC) $(GUEST_LDFLAGS) -o $@ $< $(GUEST_LIB_OBJS) -lgcc
	@grub-file --is-x86-multiboot $@ || (echo "$@ is not a Multiboot kernel"; rm -f $@; exit 1)
	@grub-file --is-x86-multiboot2 $@ || (echo "$@ has no Multiboot2 header"; rm -f $@; exit 1)

# One rescue ISO per guest: Bochs cannot load a Multiboot kernel itself.
$(GUEST_B)/iso/%.iso: $(GUEST_B)/%.elf $(GUEST_SRC)/guests.mk
	@rm -rf $(GUEST_B)/iso/$*.tree && mkdir -p $(GUEST_B)/iso/$*.tree/boot/grub
	cp $< $(GUEST_B)/iso/$*.tree/boot/$*.elf
	printf 'set timeout=0\nmenuentry "%s" {\n  %s /boot/%s.elf\n}\n' $* \
		$(if $(filter $*,$(GUESTS_MB2)),multiboot2,multiboot) $* \
		> $(GUEST_B)/iso/$*.tree/boot/grub/grub.cfg
	grub-mkrescue -o $@ $(GUEST_B)/iso/$*.tree 2>$(GUEST_B)/iso/$*.log || (cat $(GUEST_B)/iso/$*.log; exit 1)

.SECONDARY: $(addprefix $(GUEST_B)/,$(addsuffix .o,$(GUESTS))) $(GUEST_LIB_OBJS)
.PHONY: guests guests-native
guests: $(GUEST_ELFS) $(GUEST_ISOS)

INTEGRATION_TESTS += guests-native
guests-native: guests
	$(PYTHON) $(GUEST_SRC)/run-native.py --out $(GUEST_B)/out $(GUESTS)

-include $(shell find $(GUEST_B) -name '*.d' -type f 2>/dev/null)

# fwattack: a boot sector for firmware=bios VMs, not a Multiboot guest
# (tests/guests/fwattack.S, scripts/mkfwattack.sh); the isolation suite
# boots its cases through SeaBIOS.
$(GUEST_B)/fwattack.bin: $(GUEST_SRC)/fwattack.S | deps
	@mkdir -p $(dir $@)
	$(CC) -m32 -c -o $(GUEST_B)/fwattack.S.o $<
	ld -m elf_i386 -Ttext=0x7C00 --oformat binary -o $@ $(GUEST_B)/fwattack.S.o
	@test $$(stat -c %s $@) -eq 4096 || (echo "$@ is not 4 KiB"; rm -f $@; exit 1)
$(GUEST_B)/fwattack.img: $(GUEST_B)/fwattack.bin scripts/mkfwattack.sh
	sh scripts/mkfwattack.sh $@ $<
guests: $(GUEST_B)/fwattack.img
