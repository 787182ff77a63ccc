# vmm/dev/: emulated PC devices and the per-VM I/O port bus.
VDEV_SRCS := vmm/dev/iobus.c vmm/dev/vpic.c vmm/dev/vpit.c vmm/dev/vuart.c \
	vmm/dev/vrtc.c vmm/dev/vkbc.c vmm/dev/vpci.c vmm/dev/vdbg.c \
	vmm/dev/virtio.c vmm/dev/vblk.c vmm/dev/vide.c vmm/dev/vnet.c vmm/dev/vlapic.c vmm/dev/vioapic.c vmm/dev/vfwcfg.c \
	vmm/dev/vtick.c
HV_SRCS += $(VDEV_SRCS)

UNIT_TESTS += test_vdev_iobus test_vdev_pic test_vdev_pit test_vdev_uart test_vdev_rtc test_vdev_misc test_vdev_fuzz \
	test_vdev_vblk test_vdev_ide test_vdev_apic
test_vdev_apic_SRCS := tests/unit/test_vdev_apic.c vmm/dev/vlapic.c vmm/dev/vtick.c vmm/dev/vioapic.c vmm/mptable.c
test_vdev_iobus_SRCS := tests/unit/test_vdev_iobus.c vmm/dev/iobus.c
test_vdev_pic_SRCS := tests/unit/test_vdev_pic.c vmm/dev/iobus.c vmm/dev/vpic.c
test_vdev_pit_SRCS := tests/unit/test_vdev_pit.c vmm/dev/iobus.c vmm/dev/vpit.c vmm/dev/vtick.c
test_vdev_uart_SRCS := tests/unit/test_vdev_uart.c vmm/dev/iobus.c vmm/dev/vuart.c
test_vdev_rtc_SRCS := tests/unit/test_vdev_rtc.c vmm/dev/iobus.c vmm/dev/vrtc.c
test_vdev_misc_SRCS := tests/unit/test_vdev_misc.c vmm/dev/iobus.c vmm/dev/vkbc.c \
	vmm/dev/vpci.c vmm/dev/vdbg.c vmm/dev/vfwcfg.c
test_vdev_fuzz_SRCS := tests/unit/test_vdev_fuzz.c $(VDEV_SRCS)
test_vdev_vblk_SRCS := tests/unit/test_vdev_vblk.c vmm/dev/iobus.c vmm/dev/vpci.c vmm/dev/virtio.c vmm/dev/vblk.c
test_vdev_ide_SRCS := tests/unit/test_vdev_ide.c vmm/dev/iobus.c vmm/dev/vpci.c vmm/dev/vide.c
# virtio-net and the virtual switch it plugs into (net/vswitch.c), kernel
# services (heap, spinlocks) stubbed by the test.
UNIT_TESTS += test_vdev_vnet
test_vdev_vnet_SRCS := tests/unit/test_vdev_vnet.c vmm/dev/iobus.c vmm/dev/vpci.c vmm/dev/virtio.c vmm/dev/vnet.c \
	net/vswitch.c
test_vdev_vnet_CFLAGS := -include tests/unit/hosted_kernel.h
