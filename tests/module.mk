# tests/: integration tests that boot hv86.iso and drive its serial console.
INTEGRATION_TESTS += integration-qemu integration-bochs

.PHONY: integration-qemu integration-bochs
integration-qemu: hv86.iso $(DISKS)
	$(PYTHON) tests/integration/test_console.py qemu
integration-bochs: hv86.iso $(DISKS)
	$(PYTHON) tests/integration/test_console.py bochs

-include tests/guests/guests.mk
