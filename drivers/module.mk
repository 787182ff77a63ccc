# drivers/: host device drivers and the disk layer.
HV_SRCS += drivers/ata.c
HV_SRCS += drivers/ata_prd.c
HV_SRCS += drivers/crc32.c
HV_SRCS += drivers/disk.c
HV_SRCS += drivers/e1000.c drivers/e1000_ring.c
HV_SRCS += drivers/part.c
HV_SRCS += drivers/pci.c

UNIT_TESTS += test_part test_ata_prd
test_ata_prd_SRCS := tests/unit/test_ata_prd.c drivers/ata_prd.c
test_part_SRCS := tests/unit/test_part.c drivers/part.c drivers/disk.c drivers/crc32.c
HV_SRCS += drivers/serial.c drivers/pic.c drivers/pit.c drivers/rtc.c

# The e1000's descriptor rings against a model of the NIC (drivers/e1000_ring.c).
UNIT_TESTS += test_e1000
test_e1000_SRCS := tests/unit/test_e1000.c drivers/e1000_ring.c
