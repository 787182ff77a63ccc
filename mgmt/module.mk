# mgmt/: the serial management console (line editor, command table, commands).
HV_SRCS += mgmt/lineedit.c mgmt/cmd.c mgmt/format.c mgmt/console.c mgmt/syscmds.c

# `version` shows the git revision (kernel/version.h HV86_GIT); unless the
# top-level Makefile passes it to everyone, pass it here, and recompile
# syscmds.o when HEAD moves.
ifeq ($(findstring HV86_GIT,$(HV_CFLAGS)),)
$(B)/hv/mgmt/syscmds.o: HV_CFLAGS += -DHV86_GIT='"$(shell git describe --always --dirty 2>/dev/null || echo unknown)"'
endif
$(B)/hv/mgmt/syscmds.o: $(wildcard .git/logs/HEAD)

UNIT_TESTS += test_lineedit test_cmd
test_lineedit_SRCS := tests/unit/test_lineedit.c mgmt/lineedit.c
test_cmd_SRCS := tests/unit/test_cmd.c mgmt/cmd.c mgmt/format.c

# Boots hv86.iso in QEMU with the test disks and drives the console over
# COM1: every command, editing, completion, errors, faults, attach.
INTEGRATION_TESTS += integration-console
.PHONY: integration-console
integration-console: hv86.iso $(DISKS)
	$(PYTHON) tests/integration/mgmt_console.py qemu
