# vmm/shadow.mk: the shadow paging core (vmm/shadow.c) and its host tests.
# Included by vmm/module.mk. Design: docs/vmm-shadow.md.
HV_SRCS += vmm/shadow.c

UNIT_TESTS += test_shadow
test_shadow_SRCS := tests/unit/test_shadow.c vmm/shadow.c tests/unit/hosted_kernel.c
