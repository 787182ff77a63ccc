# The reference Linux guest: Debian's i386 kernel and two busybox initramfs
# images, fetched and built here (nothing of Debian's is committed), put on
# the ISO as GRUB modules `linux`, `shell` and `workload`.
LINUX_DIR := $(B)/linux
LINUX_MODULES := $(LINUX_DIR)/linux.bz $(LINUX_DIR)/shell.img $(LINUX_DIR)/workload.img

$(LINUX_DIR)/linux.bz: $(DEBIAN_DIR)/vmlinux
	@mkdir -p $(dir $@)
	cp $(DEBIAN_DIR)/vmlinuz $@
# Kernel modules of the shell image (loaded when the VM has a virtio disk),
# with their dependencies from depmod (scripts/mkinitramfs.sh).
GUEST_MODULES := crc32c_generic virtio_pci virtio_blk ext4
$(LINUX_DIR)/%.img: scripts/mkinitramfs.sh $(DEBIAN_DIR)/vmlinux
	@mkdir -p $(dir $@)
	sh scripts/mkinitramfs.sh $@ $* $(DEBIAN_DIR)/busybox $(if $(filter shell,$*),$(DEBIAN_DIR)/root $(GUEST_MODULES))

ISO_MODULES += $(LINUX_MODULES)
