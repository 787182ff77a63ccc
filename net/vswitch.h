/*
 * Virtual Ethernet switches inside hv86 (docs/net.md). A switch has a
 * name, up to VSW_PORTS ports and a MAC address table; a guest NIC is a
 * port (vmm/vnic.c plugs each virtio-net device into one), and so will an
 * uplink to a host NIC driver be: a port is a pair of calls, not a kind of
 * device.
 *
 *   ingress   vswitch_port_send(port, frame, len), on the sender's thread
 *             (or an interrupt handler): the frame is checked, its source
 *             learned, and a copy queued at each port it goes to.
 *   egress    each port has a bounded queue (VSW_QUEUE frames) that only
 *             its owner drains, with vswitch_port_recv, on the owner's
 *             thread; vswitch_port_pending says whether a frame waits. When
 *             a frame lands in an empty queue the switch calls the port's
 *             kick (with its lock held and interrupts off: kick may only
 *             wake a thread).
 *
 * So a frame's sender never touches its receiver: not its memory, not its
 * devices, not its interrupt controller. The receiver's vCPU thread, woken
 * by kick, moves the frame into its own guest's RAM and raises its own
 * interrupt.
 *
 * Forwarding (IEEE 802.1D-2004 §7.7, §7.8, §7.9): the source address of a
 * good frame is learned for its ingress port; a frame to a unicast address
 * learned for another port goes there alone, one to a unicast address
 * learned for its own ingress port is filtered, and broadcast, multicast
 * and unknown unicast frames are flooded to every port that is up but the
 * ingress one. An entry not refreshed for VSW_AGE_NS is forgotten (the
 * default ageing time, §7.9.2 Table 7-5). At most VSW_MACS_PER_PORT entries
 * point at one port, so a guest sending from random addresses cannot evict
 * the others' entries beyond its own share.
 *
 * Bad input: a frame shorter than VSW_FRAME_MIN or longer than
 * VSW_FRAME_MAX, or with a group (multicast) source address, is counted
 * (in_errors) and dropped. A queue that is full, or that already holds its
 * sender's share (VSW_QUEUE / (ports - 1), at least VSW_MIN_SHARE), drops
 * the copy and counts it at both ends (in_drops at the sender, out_drops at
 * the receiver): a guest flooding as fast as it can fills only its own
 * share of each queue, and every other sender keeps room in it.
 *
 * Locking: one spinlock per switch (interrupts off) around the table, the
 * queues and the counters. Switches and ports are created and destroyed on
 * the console thread; a port is removed (under the lock) before its owner
 * is freed, so a sender never reaches a freed port.
 */
#ifndef HV86_NET_VSWITCH_H
#define HV86_NET_VSWITCH_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "kernel/spinlock.h"
#include "vmm/dev/vdev.h"

#define VSW_MAX           8     /* switches */
#define VSW_NAME_MAX      16    /* bytes of a switch name, NUL included */
#define VSW_PORT_NAME_MAX 24    /* "VMNAME.N" */
#define VSW_PORTS         16    /* ports per switch */
#define VSW_QUEUE         64    /* frames a port's egress queue holds */
#define VSW_MIN_SHARE     4     /* frames of a queue each sender may always hold */
#define VSW_MAC_SETS      64    /* address table: sets of ... */
#define VSW_MAC_WAYS      4     /* ... entries each */
#define VSW_MACS_PER_PORT 64    /* table entries one port may hold */
#define VSW_AGE_NS        (300ull * 1000000000ull) /* 802.1D default ageing time: 300 s */
#define VSW_FRAME_MIN     VDEV_FRAME_MIN
#define VSW_FRAME_MAX     VDEV_FRAME_MAX
#define VSW_MAC_BYTES     6

/* Per-port counters, from the switch's side (docs/net.md). */
struct vsw_port_stats {
    uint64_t in_frames, in_bytes;   /* good frames the port sent into the switch */
    uint64_t in_errors;             /* runt, oversize, group source address: dropped */
    uint64_t in_drops;              /* copies of its frames other queues had no room for */
    uint64_t out_frames, out_bytes; /* frames its owner took from its queue */
    uint64_t out_drops;             /* frames for it dropped: queue or sender's share full */
};

struct vsw_frame {
    uint16_t len;
    uint8_t src;                    /* ingress port index (its share of this queue) */
    uint8_t data[VSW_FRAME_MAX];
};

struct vswitch;

struct vsw_port {
    struct vswitch *sw;
    unsigned index;
    char name[VSW_PORT_NAME_MAX];
    uint8_t mac[VSW_MAC_BYTES];     /* the address configured for its NIC (shown by `net`) */
    void (*kick)(void *opaque);     /* a frame landed in the empty queue (lock held, interrupts off) */
    void *opaque;
    bool up;                        /* takes frames (its NIC's driver is up) */
    volatile uint32_t count;        /* frames queued */
    uint32_t head;                  /* queue index of the oldest */
    uint8_t share[VSW_PORTS];       /* frames queued per ingress port */
    uint32_t learned;               /* table entries pointing here */
    struct vsw_port_stats st;
    struct vsw_frame *q;            /* VSW_QUEUE frames */
};

struct vsw_mac {
    uint8_t mac[VSW_MAC_BYTES];
    bool used;
    uint8_t port;
    uint64_t seen_ns;
};

struct vswitch {
    char name[VSW_NAME_MAX];
    spinlock_t lock;
    struct vsw_port *ports[VSW_PORTS];
    unsigned nports;
    struct vsw_mac macs[VSW_MAC_SETS][VSW_MAC_WAYS];
    uint64_t flooded, filtered, learn_refused; /* frames flooded; filtered (to their own port); addresses not learned (port's share full) */
};

/* vswitch_init - the clock for ageing (monotonic ns; clock_ns in hv86, a
 * fake in the tests). Call once before any switch exists. */
void vswitch_init(uint64_t (*clock_ns)(void));

/*
 * vswitch_create - a switch named name (1..VSW_NAME_MAX-1 letters, digits,
 * '-', '_'), no ports. Returns 0 and *out, E_INVAL (bad name), E_EXIST
 * (the name is taken), E_BUSY (VSW_MAX switches exist) or E_NOMEM.
 * Console thread.
 */
int vswitch_create(const char *name, struct vswitch **out);
/* vswitch_destroy - free sw: 0, or E_BUSY while it has ports. Console thread. */
int vswitch_destroy(struct vswitch *sw);
/* vswitch_find - the switch named name, or NULL. vswitch_at - the i-th
 * existing switch in creation slots (NULL for an empty slot), i < VSW_MAX. */
struct vswitch *vswitch_find(const char *name);
struct vswitch *vswitch_at(unsigned i);

/*
 * vswitch_port_add - a new port on sw, named name (cut to
 * VSW_PORT_NAME_MAX - 1), for a NIC of address mac (NULL for an uplink),
 * down until vswitch_port_link; kick(opaque) as above. Returns 0 and *out,
 * E_EXIST (another port has mac), E_BUSY (VSW_PORTS ports) or E_NOMEM
 * (the queue: VSW_QUEUE frames). Console thread.
 */
int vswitch_port_add(struct vswitch *sw, const char *name, const uint8_t *mac, void (*kick)(void *opaque),
                     void *opaque, struct vsw_port **out);
/* vswitch_port_remove - take p off its switch (its queue and table entries
 * go with it) and free it. After it returns no thread reaches p. */
void vswitch_port_remove(struct vsw_port *p);
/*
 * vswitch_port_send - frame (len bytes, no FCS) came in through p:
 * checked, learned, forwarded (above). Returns 0 if it was forwarded to
 * at least one port or filtered, E_INVAL (runt, oversize, group source:
 * in_errors), or E_NOSPC (no port took it: down, or no room). Any thread
 * or interrupt handler. Source: 802.1D-2004 §7.7 (forwarding), §7.8
 * (learning), §7.9 (ageing); 802.3 §3.2.3 (group addresses).
 */
int vswitch_port_send(struct vsw_port *p, const void *frame, uint32_t len);
/* vswitch_port_recv - the oldest frame queued for p into buf (cap >=
 * VSW_FRAME_MAX bytes): its length in bytes, or 0 if none (or if it did
 * not fit in cap: dropped, out_drops). p's owner only; any context. */
uint32_t vswitch_port_recv(struct vsw_port *p, void *buf, uint32_t cap);
/* vswitch_port_pending - whether a frame waits for p. Lock-free; any context. */
bool vswitch_port_pending(const struct vsw_port *p);
/* vswitch_port_link - p's owner takes frames (up) or not (down: what is
 * queued is dropped, and the table forgets p's addresses). */
void vswitch_port_link(struct vsw_port *p, bool up);
/* vswitch_port_stats - a consistent copy of p's counters (under the lock). */
void vswitch_port_stats(struct vsw_port *p, struct vsw_port_stats *st);
/* vswitch_learned - how many table entries point at p and have not aged
 * (802.1D §7.9.2). Console. */
unsigned vswitch_learned(struct vsw_port *p);

#endif
