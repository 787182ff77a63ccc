/*
 * A VM's network interfaces (vmm/vnic.h): `net=` parsing, default
 * addresses, and the `net` listing.
 */
#include "vmm/vnic.h"
#include "drivers/crc32.h"
#include "drivers/e1000.h"
#include "kernel/kernel.h"
#include "mgmt/cmd.h"

#define MAC_LOCAL 0x02 /* U/L bit of the first octet: locally administered (802.3 §3.2.3) */
#define MAC_GROUP 0x01

void vnic_default_mac(const char *vm_name, unsigned index, uint8_t mac[VSW_MAC_BYTES])
{
    uint32_t h = crc32(vm_name, strlen(vm_name));
    mac[0] = MAC_LOCAL;
    mac[1] = (uint8_t)(h >> 24), mac[2] = (uint8_t)(h >> 16), mac[3] = (uint8_t)(h >> 8), mac[4] = (uint8_t)h;
    mac[5] = (uint8_t)index;
}

void vnic_mac_text(const uint8_t mac[VSW_MAC_BYTES], char *buf)
{
    snprintf(buf, 18, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]);
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* "xx:xx:xx:xx:xx:xx" (n bytes at s) into mac: true if well formed. */
static bool parse_mac(const char *s, size_t n, uint8_t mac[VSW_MAC_BYTES])
{
    if (n != 3 * VSW_MAC_BYTES - 1)
        return false;
    for (unsigned i = 0; i < VSW_MAC_BYTES; i++) {
        int hi = hex_digit(s[3 * i]), lo = hex_digit(s[3 * i + 1]);
        if (hi < 0 || lo < 0 || (i + 1 < VSW_MAC_BYTES && s[3 * i + 2] != ':'))
            return false;
        mac[i] = (uint8_t)(hi << 4 | lo);
    }
    return true;
}

static size_t field_len(const char *s)
{
    size_t n = 0;
    while (s[n] && s[n] != ',')
        n++;
    return n;
}

/* The mac= field: well formed, unicast, not zero. */
static int parse_mac_field(const char *f, size_t n, struct vnic *nic, char *err, size_t errlen)
{
    static const uint8_t zero[VSW_MAC_BYTES];
    if (!parse_mac(f + 4, n - 4, nic->mac)) {
        snprintf(err, errlen, "'%.*s' is not an address like mac=02:00:00:00:00:01", (int)n, f);
        return E_INVAL;
    }
    if ((nic->mac[0] & MAC_GROUP) || !memcmp(nic->mac, zero, sizeof(zero))) {
        snprintf(err, errlen, "'%.*s' is a multicast or zero address; a NIC needs a unicast one "
                 "(first octet even, e.g. 02:...)", (int)n, f);
        return E_INVAL;
    }
    return 0;
}

int vnic_parse(const char *value, const char *vm_name, unsigned index, struct vnic *nic, char *err, size_t errlen)
{
    memset(nic, 0, sizeof(*nic));
    size_t n = field_len(value);
    if (n == 0 || n >= VSW_NAME_MAX) {
        snprintf(err, errlen, "net= needs a switch name as `net` lists it (net=lan[,mac=02:00:00:00:00:01])");
        return E_INVAL;
    }
    memcpy(nic->sw_name, value, n);
    vnic_default_mac(vm_name, index, nic->mac);
    for (const char *f = value + n; *f == ',';) {
        size_t len = field_len(f + 1);
        int rc;
        if (len > 4 && !strncmp(f + 1, "mac=", 4)) {
            rc = parse_mac_field(f + 1, len, nic, err, errlen);
        } else {
            snprintf(err, errlen, "unknown net option '%.*s' (mac=xx:xx:xx:xx:xx:xx)", (int)len, f + 1);
            rc = E_INVAL;
        }
        if (rc)
            return rc;
        f += 1 + len;
    }
    if (!(nic->sw = vswitch_find(nic->sw_name))) {
        snprintf(err, errlen, "no switch named '%s' (see `net`; `net create %s` makes one)", nic->sw_name,
                 nic->sw_name);
        return E_NOENT;
    }
    return 0;
}

static void port_line(struct cmd_out *out, struct vsw_port *p)
{
    struct vsw_port_stats st;
    char mac[18] = "-";
    vswitch_port_stats(p, &st);
    if (p->mac[0] | p->mac[1] | p->mac[2] | p->mac[3] | p->mac[4] | p->mac[5])
        vnic_mac_text(p->mac, mac);
    cmd_printf(out, "  port %-2u %-12s %-17s %-4s learned %u\n", p->index, p->name, mac, p->up ? "up" : "down",
               vswitch_learned(p));
    cmd_printf(out, "    in  %llu frames %llu bytes, errors %llu, drops %llu\n", (unsigned long long)st.in_frames,
               (unsigned long long)st.in_bytes, (unsigned long long)st.in_errors, (unsigned long long)st.in_drops);
    cmd_printf(out, "    out %llu frames %llu bytes, drops %llu, queued %u\n", (unsigned long long)st.out_frames,
               (unsigned long long)st.out_bytes, (unsigned long long)st.out_drops, p->count);
}

/* The uplink NIC's own view: link, frames both ways, what it dropped. */
static void uplink_lines(struct cmd_out *out, struct e1000 *e)
{
    struct e1000_stats st;
    typedef unsigned long long ull;
    e1000_stats(e, &st);
    cmd_printf(out, "  uplink %s: 82540EM %02x:%02x.%x irq %u, link %s", e->name, e->bus, e->dev, e->fn, e->irq,
               e->link ? "up" : "down");
    if (e->link)
        cmd_printf(out, " %u Mb/s", e->speed);
    cmd_printf(out, ", %llu interrupts\n", (ull)st.irqs);
    cmd_printf(out, "    rx %llu frames %llu bytes, dropped: runt %llu, oversize %llu, errors %llu, not bridged %llu\n",
               (ull)st.rx_frames, (ull)st.rx_bytes, (ull)st.rx_runt, (ull)st.rx_oversize, (ull)st.rx_errors,
               (ull)st.rx_unbridged);
    cmd_printf(out, "    tx %llu frames %llu bytes, bad %llu\n", (ull)st.tx_frames, (ull)st.tx_bytes, (ull)st.tx_bad);
    cmd_printf(out, "    nic: missed %llu, no buffer %llu, crc errors %llu, undersize %llu, oversize %llu\n",
               (ull)st.mpc, (ull)st.rnbc, (ull)st.crcerrs, (ull)st.ruc, (ull)st.roc);
}

void vnic_list(struct cmd_out *out)
{
    unsigned n = 0;
    for (unsigned i = 0; i < VSW_MAX; i++) {
        struct vswitch *sw = vswitch_at(i);
        if (!sw)
            continue;
        n++;
        struct e1000 *nic = NULL;
        for (unsigned k = 0; k < e1000_count(); k++)
            if (e1000_at(k)->sw == sw)
                nic = e1000_at(k);
        cmd_printf(out, "switch %s (%s%s): %u ports, %llu flooded, %llu filtered, %llu addresses not learned\n",
                   sw->name, nic ? "uplink " : "internal", nic ? nic->name : "", sw->nports,
                   (unsigned long long)sw->flooded, (unsigned long long)sw->filtered,
                   (unsigned long long)sw->learn_refused);
        for (unsigned j = 0; j < VSW_PORTS; j++)
            if (sw->ports[j])
                port_line(out, sw->ports[j]);
        if (nic)
            uplink_lines(out, nic);
    }
    if (!n)
        cmd_printf(out, "no switches (`net create NAME` makes one)\n");
}
