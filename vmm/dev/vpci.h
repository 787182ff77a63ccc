/*
 * Emulated PCI configuration mechanism #1 (CONFIG_ADDRESS 0xCF8 dword,
 * CONFIG_DATA 0xCFC-0xCFF any size) with a single function on the bus: an
 * Intel 440FX host bridge (8086:1237, class 06/00/00) at 00:00.0. Every other
 * bus/device/function reads all ones (master abort). Mechanism #2 is absent:
 * byte accesses to 0xCF8/0xCFA are not claimed, so they float.
 * Source: PCI Local Bus Spec 3.0 §3.2.2.3.2 (configuration mechanism #1),
 * §6.1 (configuration header); Intel 82441FX (PMC) datasheet for the IDs.
 *
 * The header is read-only except the harmless bits a guest may program:
 * command register I/O/memory/master enables, latency timer, interrupt line.
 */
#ifndef HV86_VMM_DEV_VPCI_H
#define HV86_VMM_DEV_VPCI_H
#include <stdint.h>
#include "vmm/dev/iobus.h"

#define VPCI_CONFIG_ADDRESS 0xCF8
#define VPCI_CONFIG_DATA    0xCFC
#define VPCI_CONFIG_BYTES   256   /* type 0 configuration space, bytes */

struct vpci {
    uint32_t address;                   /* CONFIG_ADDRESS as the guest reads it */
    uint8_t host_bridge[VPCI_CONFIG_BYTES];
};

void vpci_init(struct vpci *pci);
void vpci_reset(struct vpci *pci);

/* Claim 0xCF8-0xCFB (dword only) and 0xCFC-0xCFF. Returns 0 or an iobus error. */
int vpci_attach(struct vpci *pci, struct iobus *bus);

#endif
