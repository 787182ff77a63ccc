# Memory management: physical frame allocator and kernel heap (issue #2).
HV_SRCS += kernel/pmm.c kernel/heap.c

UNIT_TESTS += test_pmm test_heap
test_pmm_SRCS := tests/unit/test_pmm.c kernel/pmm.c
test_heap_SRCS := tests/unit/test_heap.c kernel/heap.c
