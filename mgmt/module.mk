# mgmt/: the serial management console (line editor, command table, commands).
HV_SRCS += mgmt/lineedit.c mgmt/cmd.c mgmt/format.c

# `version` shows the git revision; recompile syscmds.o when HEAD moves.
HV86_GIT_REV := $(shell git describe --always --dirty 2>/dev/null || echo unknown)
$(B)/hv/mgmt/syscmds.o: HV_CFLAGS += -DHV86_GIT_REV='"$(HV86_GIT_REV)"'
$(B)/hv/mgmt/syscmds.o: $(wildcard .git/logs/HEAD)

UNIT_TESTS += test_lineedit test_cmd
test_lineedit_SRCS := tests/unit/test_lineedit.c mgmt/lineedit.c
test_cmd_SRCS := tests/unit/test_cmd.c mgmt/cmd.c mgmt/format.c
