# The reference Linux guest: Debian's i386 kernel and two busybox initramfs
# images, fetched and built here (nothing of Debian's is committed), put on
# the ISO as GRUB modules `linux`, `shell`, `workload` and `web`; and the bench
# image, only on hv86-bench.iso (`make bench-disk`, `make bench-stress`).
LINUX_DIR := $(B)/linux
LINUX_MODULES := $(LINUX_DIR)/linux.bz $(LINUX_DIR)/shell.img $(LINUX_DIR)/workload.img $(LINUX_DIR)/web.img

$(LINUX_DIR)/linux.bz: $(DEBIAN_DIR)/vmlinux
	@mkdir -p $(dir $@)
	cp $(DEBIAN_DIR)/vmlinuz $@
# Kernel modules of the shell image (loaded when the VM has a virtio disk or
# NIC or an IDE disk), with their dependencies from depmod
# (scripts/mkinitramfs.sh): virtio_net brings net_failover and failover.
GUEST_MODULES := crc32c_generic virtio_pci virtio_blk virtio_net ata_piix sd_mod ext4
# Debian's i386 programs in the shell image, with their libraries and
# ld-linux.so.2 (scripts/i386-progs.sh): e2fsprogs makes and checks file
# systems. The bench image adds fio, whose libraries (librados, librbd,
# libgfapi and theirs) come to ~80 MiB: too big for hv86.iso; and
# stress-ng and sysbench (bench/stress_bench.py), ~25 MiB more.
SHELL_PROGS := sbin/mke2fs sbin/mkfs.ext4 sbin/e2fsck sbin/fsck.ext4 etc/mke2fs.conf
BENCH_PROGS := $(SHELL_PROGS) usr/bin/fio usr/bin/stress-ng usr/bin/sysbench
# The packages they come from, and the library packages those need, unpacked
# into $(DEBIAN_DIR)/root beside the kernel's.
$(DEBIAN_DIR)/%.fetched: scripts/i386-progs.sh | $(DEBIAN_DIR)/vmlinux
	sh scripts/i386-progs.sh fetch $(DEBIAN_DIR) $*
	@touch $@

IMAGE_DEPS := scripts/mkinitramfs.sh $(DEBIAN_DIR)/vmlinux
$(LINUX_DIR)/workload.img: $(IMAGE_DEPS)
	@mkdir -p $(dir $@)
	sh scripts/mkinitramfs.sh $@ workload $(DEBIAN_DIR)/busybox
$(LINUX_DIR)/shell.img: $(IMAGE_DEPS) scripts/i386-progs.sh $(DEBIAN_DIR)/e2fsprogs.fetched
	@mkdir -p $(dir $@)
	sh scripts/mkinitramfs.sh $@ shell $(DEBIAN_DIR)/busybox $(DEBIAN_DIR)/root $(GUEST_MODULES) -- $(SHELL_PROGS)
# The web image (GRUB module `web`): the shell image plus /www, which its
# init serves with busybox httpd on port 80 (docs/net.md): an index page
# and big.bin, 2 MiB from a fixed seed whose md5 the tests read from
# $(LINUX_DIR)/www/big.md5 (scripts/mkwww.py).
$(LINUX_DIR)/www/big.md5: scripts/mkwww.py
	python3 scripts/mkwww.py $(LINUX_DIR)/www
$(LINUX_DIR)/web.img: $(IMAGE_DEPS) scripts/i386-progs.sh $(DEBIAN_DIR)/e2fsprogs.fetched $(LINUX_DIR)/www/big.md5
	WWW=$(LINUX_DIR)/www sh scripts/mkinitramfs.sh $@ shell $(DEBIAN_DIR)/busybox $(DEBIAN_DIR)/root $(GUEST_MODULES) -- $(SHELL_PROGS)
BENCH_PKGS := e2fsprogs fio stress-ng sysbench
$(LINUX_DIR)/bench.img: $(IMAGE_DEPS) scripts/i386-progs.sh $(BENCH_PKGS:%=$(DEBIAN_DIR)/%.fetched)
	@mkdir -p $(dir $@)
	sh scripts/mkinitramfs.sh $@ shell $(DEBIAN_DIR)/busybox $(DEBIAN_DIR)/root $(GUEST_MODULES) -- $(BENCH_PROGS)

ISO_MODULES += $(LINUX_MODULES)

# A disk a PC boots from (scripts/mkbootdisk.sh): MBR with GRUB's boot.img,
# core.img in the gap, an ext4 partition with the kernel and the shell
# image; `make linux-bios` boots it through SeaBIOS (firmware=bios).
$(B)/disk-boot.img: scripts/mkbootdisk.sh $(LINUX_DIR)/linux.bz $(LINUX_DIR)/shell.img
	sh scripts/mkbootdisk.sh $@ $(LINUX_DIR)/linux.bz $(LINUX_DIR)/shell.img
