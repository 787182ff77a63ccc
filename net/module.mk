# net/: virtual Ethernet switches (docs/net.md).
HV_SRCS += net/vswitch.c
