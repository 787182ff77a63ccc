# bt/translate.mk: the binary translator core (bt/translate.c, bt/tc.c),
# its execution tests on the host and its benchmark. Included by bt/module.mk.

BT_XLATE_SRCS := bt/translate.c bt/tc.c
HV_SRCS += $(BT_XLATE_SRCS)

# Translated code runs on the host from an RWX mmap and the harness uses
# absolute addresses: link the tests without PIE.
BT_HARNESS_SRCS := tests/unit/bt_harness.c tests/unit/bt_harness_asm.S

UNIT_TESTS += test_translate_tc test_translate
test_translate_tc_SRCS := tests/unit/test_translate_tc.c bt/tc.c tests/unit/bt_harness_kernel.c
test_translate_SRCS := tests/unit/test_translate.c $(BT_HARNESS_SRCS) \
	tests/unit/bt_harness_kernel.c $(BT_XLATE_SRCS) $(BT_DECODER_SRCS)
test_translate_CFLAGS := -no-pie

# make bench-translate: translation speed on the kernel .text and the
# translated/native run-time ratio of a compute loop.
BENCHES += bench-translate
.PHONY: bench-translate
$(B)/bench/translate_bench: bench/translate_bench.c $(BT_HARNESS_SRCS) tests/unit/bt_harness_kernel.c \
		$(BT_XLATE_SRCS) $(BT_DECODER_SRCS) | deps
	@mkdir -p $(dir $@)
	$(CC) $(HOST_CFLAGS) -O2 -no-pie -o $@ $^ $(HOST_LDLIBS)
bench-translate: $(B)/bench/translate_bench $(DEBIAN_DIR)/vmlinux $(I386_PROBE)
	@$(RUN_I386) $(B)/bench/translate_bench $(DEBIAN_DIR)/vmlinux
