/*
 * Virtual Ethernet switches (net/vswitch.h, docs/net.md).
 *
 *   1. the registry of switches by name
 *   2. the address table: learning, lookup, ageing
 *   3. egress queues with per-sender shares
 *   4. ports: add, remove, send (check, learn, forward), recv, link
 *
 * Trust: frames come from guests. Only their length (checked against
 * VSW_FRAME_MIN/MAX before anything is copied) and their first 12 bytes
 * (two addresses) are looked at; a port index always comes from the table
 * or the port array, never from a frame.
 * Source: IEEE 802.1D-2004 §7.7-7.9 (forwarding, learning, ageing),
 * IEEE 802.3 §3.2.3 (the group address bit).
 */
#include "net/vswitch.h"
#include "kernel/heap.h"
#include "kernel/kernel.h"

#define ETH_DST 0
#define ETH_SRC 6
#define MAC_GROUP 0x01 /* I/G bit of the first octet: broadcast and multicast (802.3 §3.2.3) */

static struct vswitch *switches[VSW_MAX];
static uint64_t (*now_ns)(void);

void vswitch_init(uint64_t (*clock_ns)(void)) { now_ns = clock_ns; }

/* ---------------------------------------------------------------- 1. registry */

static bool valid_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n >= VSW_NAME_MAX)
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '-' || *s == '_'))
            return false;
    return true;
}

struct vswitch *vswitch_find(const char *name)
{
    for (unsigned i = 0; i < VSW_MAX; i++)
        if (switches[i] && !strcmp(switches[i]->name, name))
            return switches[i];
    return NULL;
}

struct vswitch *vswitch_at(unsigned i) { return i < VSW_MAX ? switches[i] : NULL; }

int vswitch_create(const char *name, struct vswitch **out)
{
    if (!valid_name(name))
        return E_INVAL;
    if (vswitch_find(name))
        return E_EXIST;
    unsigned slot = 0;
    while (slot < VSW_MAX && switches[slot])
        slot++;
    if (slot == VSW_MAX)
        return E_BUSY;
    struct vswitch *sw = kzalloc(sizeof(*sw));
    if (!sw)
        return E_NOMEM;
    snprintf(sw->name, sizeof(sw->name), "%s", name);
    sw->lock = (spinlock_t)SPINLOCK_INIT("vswitch");
    switches[slot] = sw;
    *out = sw;
    return 0;
}

int vswitch_destroy(struct vswitch *sw)
{
    if (sw->nports)
        return E_BUSY;
    for (unsigned i = 0; i < VSW_MAX; i++)
        if (switches[i] == sw)
            switches[i] = NULL;
    kfree(sw);
    return 0;
}

/* ---------------------------------------------------------------- 2. address table */

static bool is_group(const uint8_t *mac) { return mac[0] & MAC_GROUP; }

static unsigned mac_set(const uint8_t *mac)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (unsigned i = 0; i < VSW_MAC_BYTES; i++)
        h = (h ^ mac[i]) * 16777619u;
    return h % VSW_MAC_SETS;
}

static bool aged(const struct vsw_mac *e, uint64_t now) { return now - e->seen_ns >= VSW_AGE_NS; }

static void forget(struct vswitch *sw, struct vsw_mac *e)
{
    if (e->used && sw->ports[e->port])
        sw->ports[e->port]->learned--;
    e->used = false;
}

/* Forget every entry pointing at port index idx. */
static void forget_port(struct vswitch *sw, unsigned idx)
{
    for (unsigned s = 0; s < VSW_MAC_SETS; s++)
        for (unsigned w = 0; w < VSW_MAC_WAYS; w++)
            if (sw->macs[s][w].used && sw->macs[s][w].port == idx)
                forget(sw, &sw->macs[s][w]);
}

/* The live entry for mac, or NULL; an aged one is forgotten on the way. */
static struct vsw_mac *lookup(struct vswitch *sw, const uint8_t *mac, uint64_t now)
{
    struct vsw_mac *set = sw->macs[mac_set(mac)];
    for (unsigned w = 0; w < VSW_MAC_WAYS; w++) {
        struct vsw_mac *e = &set[w];
        if (!e->used || memcmp(e->mac, mac, VSW_MAC_BYTES))
            continue;
        if (!aged(e, now))
            return e;
        forget(sw, e);
    }
    return NULL;
}

/* mac was seen coming in through p (802.1D §7.8): refresh or add its
 * entry, reusing a free or aged way, else the set's oldest. */
static void learn(struct vswitch *sw, struct vsw_port *p, const uint8_t *mac, uint64_t now)
{
    struct vsw_mac *e = lookup(sw, mac, now);
    if (e && e->port != p->index) { /* the station moved */
        forget(sw, e);
        e = NULL;
    }
    if (!e) {
        if (p->learned >= VSW_MACS_PER_PORT) {
            sw->learn_refused++;
            return;
        }
        struct vsw_mac *set = sw->macs[mac_set(mac)];
        e = &set[0];
        for (unsigned w = 0; w < VSW_MAC_WAYS; w++) {
            if (!set[w].used || aged(&set[w], now)) {
                e = &set[w];
                break;
            }
            if (set[w].seen_ns < e->seen_ns)
                e = &set[w];
        }
        forget(sw, e);
        memcpy(e->mac, mac, VSW_MAC_BYTES);
        e->used = true;
        e->port = (uint8_t)p->index;
        p->learned++;
    }
    e->seen_ns = now;
}

unsigned vswitch_learned(struct vsw_port *p)
{
    struct vswitch *sw = p->sw;
    uint64_t now = now_ns();
    unsigned n = 0;
    uint32_t fl = spin_lock_irqsave(&sw->lock);
    for (unsigned s = 0; s < VSW_MAC_SETS; s++)
        for (unsigned w = 0; w < VSW_MAC_WAYS; w++)
            n += sw->macs[s][w].used && sw->macs[s][w].port == p->index && !aged(&sw->macs[s][w], now);
    spin_unlock_irqrestore(&sw->lock, fl);
    return n;
}

/* ---------------------------------------------------------------- 3. egress queues */

/* Frames of one queue a sender may hold: an equal part for each other
 * port, never less than VSW_MIN_SHARE. */
static unsigned share_max(const struct vswitch *sw)
{
    unsigned others = sw->nports > 1 ? sw->nports - 1 : 1;
    return MAX(VSW_QUEUE / others, (unsigned)VSW_MIN_SHARE);
}

/* A copy of frame from port src into dst's queue, if dst is up and has
 * room for src; kicks dst's owner when its queue was empty. */
static bool enqueue(struct vswitch *sw, struct vsw_port *dst, const struct vsw_port *src, const void *frame,
                    uint32_t len)
{
    if (dst->count >= VSW_QUEUE || dst->share[src->index] >= share_max(sw)) {
        dst->st.out_drops++;
        return false;
    }
    struct vsw_frame *f = &dst->q[(dst->head + dst->count) % VSW_QUEUE];
    f->len = (uint16_t)len;
    f->src = (uint8_t)src->index;
    memcpy(f->data, frame, len);
    dst->share[src->index]++;
    if (dst->count++ == 0 && dst->kick)
        dst->kick(dst->opaque);
    return true;
}

static void flush_queue(struct vsw_port *p)
{
    p->count = 0;
    p->head = 0;
    memset(p->share, 0, sizeof(p->share));
}

/* ---------------------------------------------------------------- 4. ports */

int vswitch_port_add(struct vswitch *sw, const char *name, const uint8_t *mac, void (*kick)(void *opaque),
                     void *opaque, struct vsw_port **out)
{
    unsigned idx = 0;
    for (unsigned i = 0; mac && i < VSW_PORTS; i++)
        if (sw->ports[i] && !memcmp(sw->ports[i]->mac, mac, VSW_MAC_BYTES))
            return E_EXIST;
    while (idx < VSW_PORTS && sw->ports[idx])
        idx++;
    if (idx == VSW_PORTS)
        return E_BUSY;
    struct vsw_port *p = kzalloc(sizeof(*p));
    if (!p)
        return E_NOMEM;
    if (!(p->q = kzalloc(VSW_QUEUE * sizeof(struct vsw_frame)))) {
        kfree(p);
        return E_NOMEM;
    }
    p->sw = sw;
    p->index = idx;
    snprintf(p->name, sizeof(p->name), "%s", name);
    if (mac)
        memcpy(p->mac, mac, VSW_MAC_BYTES);
    p->kick = kick;
    p->opaque = opaque;
    uint32_t fl = spin_lock_irqsave(&sw->lock);
    sw->ports[idx] = p;
    sw->nports++;
    spin_unlock_irqrestore(&sw->lock, fl);
    *out = p;
    return 0;
}

void vswitch_port_remove(struct vsw_port *p)
{
    struct vswitch *sw = p->sw;
    uint32_t fl = spin_lock_irqsave(&sw->lock);
    forget_port(sw, p->index);
    sw->ports[p->index] = NULL;
    sw->nports--;
    spin_unlock_irqrestore(&sw->lock, fl);
    kfree(p->q);
    kfree(p);
}

/* Forward a good frame from p (lock held): true if some port took it or
 * it was filtered. */
static bool forward(struct vswitch *sw, struct vsw_port *p, const uint8_t *frame, uint32_t len, uint64_t now)
{
    const uint8_t *dst = frame + ETH_DST;
    struct vsw_mac *e = is_group(dst) ? NULL : lookup(sw, dst, now);
    if (e && e->port == p->index) { /* both ends behind the same port (§7.7.1) */
        sw->filtered++;
        return true;
    }
    if (e) {
        struct vsw_port *to = sw->ports[e->port];
        if (to->up && enqueue(sw, to, p, frame, len))
            return true;
        p->st.in_drops++;
        return false;
    }
    bool any = false;
    sw->flooded++;
    for (unsigned i = 0; i < VSW_PORTS; i++) {
        struct vsw_port *to = sw->ports[i];
        if (!to || to == p || !to->up)
            continue;
        if (enqueue(sw, to, p, frame, len))
            any = true;
        else
            p->st.in_drops++;
    }
    return any;
}

int vswitch_port_send(struct vsw_port *p, const void *frame, uint32_t len)
{
    struct vswitch *sw = p->sw;
    const uint8_t *f = frame;
    uint64_t now = now_ns();
    uint32_t fl = spin_lock_irqsave(&sw->lock);
    if (len < VSW_FRAME_MIN || len > VSW_FRAME_MAX || is_group(f + ETH_SRC)) {
        p->st.in_errors++;
        spin_unlock_irqrestore(&sw->lock, fl);
        return E_INVAL;
    }
    p->st.in_frames++;
    p->st.in_bytes += len;
    learn(sw, p, f + ETH_SRC, now);
    bool ok = forward(sw, p, f, len, now);
    spin_unlock_irqrestore(&sw->lock, fl);
    return ok ? 0 : E_NOSPC;
}

uint32_t vswitch_port_recv(struct vsw_port *p, void *buf, uint32_t cap)
{
    uint32_t len = 0;
    uint32_t fl = spin_lock_irqsave(&p->sw->lock);
    if (p->count) {
        struct vsw_frame *f = &p->q[p->head];
        if (f->len <= cap) {
            len = f->len;
            memcpy(buf, f->data, len);
            p->st.out_frames++;
            p->st.out_bytes += len;
        } else {
            p->st.out_drops++; /* the owner's buffer is too small: a bug of the owner, not a hang */
        }
        p->share[f->src]--;
        p->head = (p->head + 1) % VSW_QUEUE;
        p->count--;
    }
    spin_unlock_irqrestore(&p->sw->lock, fl);
    return len;
}

bool vswitch_port_pending(const struct vsw_port *p) { return p->count != 0; }

void vswitch_port_link(struct vsw_port *p, bool up)
{
    struct vswitch *sw = p->sw;
    uint32_t fl = spin_lock_irqsave(&sw->lock);
    p->up = up;
    if (!up) {
        flush_queue(p);
        forget_port(sw, p->index);
    }
    spin_unlock_irqrestore(&sw->lock, fl);
}

void vswitch_port_stats(struct vsw_port *p, struct vsw_port_stats *st)
{
    uint32_t fl = spin_lock_irqsave(&p->sw->lock);
    *st = p->st;
    spin_unlock_irqrestore(&p->sw->lock, fl);
}
