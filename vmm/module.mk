# vmm/: the virtual machine monitor. Each part has its own fragment.
-include vmm/dev.mk
-include vmm/shadow.mk
-include vmm/core.mk
