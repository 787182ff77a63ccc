# bt/: binary translator. The instruction decoder's opcode tables are
# generated at build time from bt/opcodes.def (scripts/gen-opcodes.py).

BT_GEN_OPCODES := $(B)/bt/opcodes.c
$(BT_GEN_OPCODES): bt/opcodes.def bt/mnemonics.def scripts/gen-opcodes.py
	@mkdir -p $(dir $@)
	python3 scripts/gen-opcodes.py bt/opcodes.def bt/mnemonics.def $@

BT_DECODER_SRCS := bt/decode.c $(BT_GEN_OPCODES)
HV_SRCS += $(BT_DECODER_SRCS)

# Debian i386 kernel + busybox: the real-code corpus of the differential test.
# Fetched once; a failed fetch stops make: the tests that read it cannot run.
# After deps: both run apt-get, and a second apt-get fails on dpkg's lock
# (seen with make -j2 on a new machine).
DEBIAN_DIR := $(B)/debian
$(DEBIAN_DIR)/vmlinux: | deps
	@sh scripts/fetch-debian.sh $(DEBIAN_DIR) || \
		{ echo "bt: fetching the Debian kernel and busybox into $(DEBIAN_DIR) failed"; exit 1; }

UNIT_TESTS += test_decode test_decode_zydis
test_decode_SRCS := tests/unit/test_decode.c $(BT_DECODER_SRCS)
test_decode_zydis_SRCS := tests/unit/test_decode_zydis.c $(BT_DECODER_SRCS)
test_decode_zydis_LDLIBS := -lZydis
test_decode_zydis_CFLAGS := -O2
$(B)/unit/test_decode_zydis: $(DEBIAN_DIR)/vmlinux

# make bench-decode: instructions/second on the kernel .text, ours vs Zydis.
BENCHES += bench-decode
.PHONY: bench-decode
$(B)/bench/decode_bench: bench/decode_bench.c $(BT_DECODER_SRCS) $(DEBIAN_DIR)/vmlinux | deps
	@mkdir -p $(dir $@)
	$(CC) $(HOST_CFLAGS) -O2 -o $@ bench/decode_bench.c $(BT_DECODER_SRCS) -lZydis
bench-decode: $(B)/bench/decode_bench $(I386_PROBE)
	@$(RUN_I386) $(B)/bench/decode_bench $(DEBIAN_DIR)/vmlinux
include bt/translate.mk
