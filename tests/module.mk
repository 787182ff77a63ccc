# tests/: integration tests that boot hv86.iso and drive its serial console.
INTEGRATION_TESTS += integration-qemu integration-bochs guests-hv86-qemu guests-hv86-bochs \
	vms-fairness vms-isolation vms-console-flood

.PHONY: integration-qemu integration-bochs guests-hv86-qemu guests-hv86-bochs vms-fairness vms-isolation \
	vms-console-flood
# Several VMs at once: fair shares and misbehaving guests (QEMU), and the
# monitor's isolation from a hostile guest (Bochs enforces segment limits).
vms-fairness: hv86.iso $(DISKS) guests-native
	$(PYTHON) tests/integration/test_vms.py fairness
vms-isolation: hv86.iso $(DISKS) guests-native $(B)/guests/fwattack.img
	$(PYTHON) tests/integration/test_vms.py isolation
# A guest printing megabytes without a newline must stall neither the
# console nor the other VMs (issue 11).
vms-console-flood: hv86.iso $(DISKS)
	$(PYTHON) tests/integration/test_vms.py console-flood
# The test guests as VMs under hv86, compared with their native runs
# (guests-native makes build/guests/out/*.txt, the references).
guests-hv86-qemu: hv86.iso $(DISKS) guests-native
	$(PYTHON) tests/integration/test_guests_hv86.py qemu
guests-hv86-bochs: hv86.iso $(DISKS) guests-native
	$(PYTHON) tests/integration/test_guests_hv86.py bochs
integration-qemu: hv86.iso $(DISKS)
	$(PYTHON) tests/integration/test_console.py qemu
integration-bochs: hv86.iso $(DISKS)
	$(PYTHON) tests/integration/test_console.py bochs
# Many VMs (issue 15): twelve Linux guests of 64 MiB on a 1 GiB host, all
# started at once and answering at once, page sharing, and the refusals
# that name what ran out; small guests until the VM slots run out, before
# the direct map (a minute). scale-dozen relies on the lost-tick policy
# (vmm/dev/vtick.h): without it the twelve spent their CPU in reinjected
# ticks and none reached its shell in ten minutes (docs/vmm.md "Lost ticks").
INTEGRATION_TESTS += scale-dozen scale-limits
.PHONY: scale-dozen scale-limits
scale-dozen: hv86.iso $(DISKS)
	$(PYTHON) tests/integration/test_scale.py dozen
scale-limits: hv86.iso $(DISKS)
	$(PYTHON) tests/integration/test_scale.py limits
# `make run`'s ISO: the startup script's Linux guests, the README's first session.
INTEGRATION_TESTS += run-iso
.PHONY: run-iso
run-iso: hv86-run.iso $(DISKS)
	$(PYTHON) tests/integration/test_run_iso.py

-include tests/guests/guests.mk

# The test guests go on the ISO as GRUB modules, so that `vm create` can run them.
# (Only guests whose source exists: the list in guests.mk may run ahead of them.)
ISO_MODULES += $(filter $(patsubst tests/guests/%.c,$(GUEST_B)/%.elf,$(wildcard tests/guests/*.c)),$(GUEST_ELFS))

# Debian's i386 Linux natively and as hv86 guests (issue 5): the shell image's
# commands and the workload compared with QEMU alone, three Linux guests and
# a test guest at once (10-15 minutes); bench: boot and workload times.
# Guest disks on raw partitions, checked from the host with e2fsck and
# debugfs (tests/integration/test_disk.py).
INTEGRATION_TESTS += linux-disk linux-powercut
.PHONY: linux-disk linux-powercut
linux-disk: hv86.iso $(DISKS)
	$(PYTHON) tests/integration/test_disk.py
# QEMU killed while a guest appends fsync'ed records: none acknowledged is lost.
linux-powercut: hv86.iso $(DISKS)
	$(PYTHON) tests/integration/test_powercut.py 3

# Two Linux guests on an internal switch: ping both ways, a file fetched
# from busybox httpd with its md5, `net` and `vm info` (tests/integration/test_net.py).
INTEGRATION_TESTS += linux-net
.PHONY: linux-net
linux-net: hv86.iso $(DISKS)
	$(PYTHON) tests/integration/test_net.py

# A web guest on a switch bridged to hv86's e1000 (QEMU's user-mode network
# behind it): DHCP, the harness fetching from the guest's httpd through a
# port forward, the guest fetching from the harness (tests/integration/test_uplink.py).
INTEGRATION_TESTS += linux-uplink
.PHONY: linux-uplink
linux-uplink: hv86.iso $(DISKS)
	$(PYTHON) tests/integration/test_uplink.py

INTEGRATION_TESTS += linux-hv86
# Guest-to-guest TCP (busybox nc) and harness-to-guest HTTP requests per
# second, natively (QEMU's virtio-net) and under hv86 (bench/net_bench.py).
BENCHES += bench-net
.PHONY: bench-net
bench-net: hv86.iso $(DISKS)
	$(PYTHON) bench/net_bench.py 1
BENCHES += bench-linux bench-disk bench-stress bench-apic
# The TCG plugin bench/insn_count.py loads into QEMU (a 64-bit host
# program, so without -m32; docs/performance.md "Counting guest instructions").
$(B)/bench/qemu_tbcount.so: bench/qemu_tbcount.c | deps
	@mkdir -p $(dir $@)
	$(CC) -O2 -Wall -Wextra -Werror -Wno-unused-parameter -fPIC -shared -fvisibility=hidden -o $@ $< -lpthread
.PHONY: linux-hv86 bench-linux bench-disk bench-stress bench-apic
linux-hv86: hv86.iso $(DISKS)
	$(PYTHON) tests/integration/test_linux.py
bench-linux: hv86.iso $(DISKS)
	$(PYTHON) bench/linux_bench.py 3
# Linux boot and workload with apic=1 and apic=0, and an idle guest's cost.
bench-apic: hv86.iso $(DISKS)
	$(PYTHON) bench/apic_bench.py 2
bench-disk: hv86-bench.iso $(DISKS)
	$(PYTHON) bench/disk_bench.py 1
# System calls, fork, exec, faults, pipes, switches, mmap, user CPU with
# Debian's stress-ng and sysbench (bench/stress_bench.py; issue 14), each
# figure the fastest of 2 rounds (user CPU: 5); 4 to 9 minutes.
bench-stress: hv86-bench.iso $(DISKS)
	$(PYTHON) bench/stress_bench.py 2

# Differential fuzzer (tests/guests/fuzz.c, tests/integration/fuzz.py;
# docs/testing.md): the fuzz guest natively under Bochs against the same
# guest as an hv86 VM under Bochs. fuzz-slice: a fixed seed and count
# (2400 programs, about a minute and a half) that must show no escape and only the divergences
# tests/integration/fuzz-explained.txt explains. fuzz: FUZZ_SEED,
# FUZZ_COUNT or FUZZ_SECONDS, prints programs, divergences and escapes.
INTEGRATION_TESTS += fuzz-slice
FUZZ_SEED ?= 1
FUZZ_COUNT ?=
FUZZ_SECONDS ?=
.PHONY: fuzz-slice fuzz
fuzz-slice: hv86.iso $(GUEST_B)/fuzz.elf
	$(PYTHON) tests/integration/fuzz.py --seed 1 --count 2400 --expect-clean
fuzz: hv86.iso $(GUEST_B)/fuzz.elf
	$(PYTHON) tests/integration/fuzz.py --seed $(FUZZ_SEED) \
		$(if $(FUZZ_COUNT),--count $(FUZZ_COUNT)) $(if $(FUZZ_SECONDS),--seconds $(FUZZ_SECONDS))

# A PC's boot (issue 16): firmware=bios, SeaBIOS from the reset vector,
# GRUB from the VM's own disk, Debian's kernel to the busybox shell;
# natively under QEMU with the same bios.bin first (tests/integration/test_bios.py).
INTEGRATION_TESTS += linux-bios
.PHONY: linux-bios
linux-bios: hv86.iso $(DISKS) $(B)/disk-boot.img
	$(PYTHON) tests/integration/test_bios.py
