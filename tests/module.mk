# tests/: integration tests that boot hv86.iso and drive its serial console.
INTEGRATION_TESTS += integration-qemu integration-bochs

.PHONY: integration-qemu integration-bochs
integration-qemu: hv86.iso $(DISKS)
	$(PYTHON) tests/integration/test_console.py qemu
integration-bochs: hv86.iso $(DISKS)
	$(PYTHON) tests/integration/test_console.py bochs

-include tests/guests/guests.mk

# The test guests go on the ISO as GRUB modules, so that `vm create` can run them.
# (Only guests whose source exists: the list in guests.mk may run ahead of them.)
ISO_MODULES += $(filter $(patsubst tests/guests/%.c,$(GUEST_B)/%.elf,$(wildcard tests/guests/*.c)),$(GUEST_ELFS))
