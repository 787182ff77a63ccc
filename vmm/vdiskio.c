/* A VM disk's I/O thread (vmm/vdiskio.h). */
#include "vmm/vdiskio.h"
#include "kernel/heap.h"
#include "kernel/kernel.h"
#include "kernel/sched.h"
#include "kernel/spinlock.h"

#define IDLE_TICKS 1000u /* an idle thread's sleep; a submit wakes it */

struct vdiskio {
    struct vdisk *d;
    spinlock_t lock;
    struct vdev_io *q[VDISKIO_QUEUE]; /* FIFO: q[head], then the next len - 1 */
    unsigned head, len;
    volatile unsigned outstanding;    /* submitted, not yet done */
    int tid;
    bool stop;                        /* vdiskio_stop: end once the queue is empty */
    volatile bool ended;              /* the thread will not touch this any more */
    void (*kick)(void *ctx);
    void *ctx;
};

static void io_thread(void *arg)
{
    struct vdiskio *q = arg;
    for (;;) {
        uint32_t fl = spin_lock_irqsave(&q->lock);
        if (!q->len) {
            bool stop = q->stop;
            spin_unlock_irqrestore(&q->lock, fl);
            if (stop)
                break;
            thread_sleep(IDLE_TICKS); /* vdiskio_submit's thread_wake ends it */
            continue;
        }
        struct vdev_io *io = q->q[q->head];
        q->head = (q->head + 1) % VDISKIO_QUEUE;
        q->len--;
        spin_unlock_irqrestore(&q->lock, fl);
        io->rc = vdisk_rw_sg(q->d, io->sector, io->count, io->sg, io->n, io->write, io->cached);
        __atomic_store_n(&io->done, true, __ATOMIC_RELEASE);
        fl = spin_lock_irqsave(&q->lock);
        q->outstanding--;
        spin_unlock_irqrestore(&q->lock, fl);
        q->kick(q->ctx);
    }
    __atomic_store_n(&q->ended, true, __ATOMIC_RELEASE);
}

int vdiskio_start(struct vdisk *d, const char *name, void (*kick)(void *ctx), void *ctx)
{
    struct vdiskio *q = kzalloc(sizeof(*q));
    if (!q)
        return E_NOMEM;
    *q = (struct vdiskio){ .d = d, .lock = SPINLOCK_INIT("vdiskio"), .kick = kick, .ctx = ctx };
    int tid = thread_create(name, io_thread, q);
    if (tid < 0) {
        kfree(q);
        return tid;
    }
    q->tid = tid;
    d->io = q;
    return 0;
}

void vdiskio_stop(struct vdisk *d)
{
    struct vdiskio *q = d->io;
    if (!q)
        return;
    uint32_t fl = spin_lock_irqsave(&q->lock);
    q->stop = true;
    spin_unlock_irqrestore(&q->lock, fl);
    thread_wake((uint32_t)q->tid);
    while (!__atomic_load_n(&q->ended, __ATOMIC_ACQUIRE))
        thread_sleep(1);
    d->io = NULL;
    kfree(q);
}

int vdiskio_submit(void *opaque, struct vdev_io *io)
{
    struct vdisk *d = opaque;
    struct vdiskio *q = d->io;
    if (!q)
        return E_BUSY;
    uint32_t fl = spin_lock_irqsave(&q->lock);
    if (q->len == VDISKIO_QUEUE || q->stop) {
        spin_unlock_irqrestore(&q->lock, fl);
        return E_BUSY;
    }
    q->q[(q->head + q->len) % VDISKIO_QUEUE] = io;
    q->len++;
    q->outstanding++;
    spin_unlock_irqrestore(&q->lock, fl);
    thread_wake((uint32_t)q->tid);
    thread_handoff((uint32_t)q->tid); /* it starts the disk; the guest runs while the disk works */
    return 0;
}

void vdiskio_drain(void *opaque)
{
    struct vdisk *d = opaque;
    while (d->io && d->io->outstanding)
        thread_sleep(1);
}
