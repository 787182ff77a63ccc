/*
 * A VM's network interfaces: what `vm create ... net=SWITCH[,mac=M]` names
 * (docs/net.md). Each NIC is a virtio-net function (vmm/dev/vnet.h) whose
 * port is on the switch named (net/vswitch.h), from `vm create` to
 * `vm destroy`.
 *
 *   SWITCH  a switch `net create` made (`net` lists them)
 *   mac     six hex octets, ':'-separated, unicast, not all zero; by
 *           default a locally administered address derived from the VM's
 *           name and the NIC's index: 02:H1:H2:H3:H4:I, where H1-H4 are
 *           the CRC-32 of the name (big-endian) and I the index, so a VM
 *           keeps its address across boots and re-creation
 *
 * Trust: the value is the administrator's.
 */
#ifndef HV86_VMM_VNIC_H
#define HV86_VMM_VNIC_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "net/vswitch.h"

#define VM_MAX_NICS 3

struct vnic {
    char sw_name[VSW_NAME_MAX];
    uint8_t mac[VSW_MAC_BYTES];
    struct vswitch *sw;
    struct vsw_port *port;   /* from vm_create (vnic_open) to vm_destroy */
};

/*
 * vnic_parse - one `net=` value, the index-th NIC of the VM named vm_name,
 * into *n. Returns 0, or E_INVAL / E_NOENT with a one-line reason in err:
 * no switch of that name, an unknown option, a malformed, group or zero
 * address.
 */
int vnic_parse(const char *value, const char *vm_name, unsigned index, struct vnic *n, char *err, size_t errlen);
/* vnic_default_mac - the address a NIC gets without mac= (above). */
void vnic_default_mac(const char *vm_name, unsigned index, uint8_t mac[VSW_MAC_BYTES]);
/* vnic_mac_text - "02:1a:2b:3c:4d:00" into buf (at least 18 bytes). */
void vnic_mac_text(const uint8_t mac[VSW_MAC_BYTES], char *buf);

struct cmd_out;
/* `net`: every switch, its ports with their addresses and counters. */
void vnic_list(struct cmd_out *out);

#endif
