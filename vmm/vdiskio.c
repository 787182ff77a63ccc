/* A VM disk's I/O thread and its read-ahead window (vmm/vdiskio.h). */
#include "vmm/vdiskio.h"
#include "kernel/heap.h"
#include "kernel/kernel.h"
#include "kernel/layout.h"
#include "kernel/paging.h"
#include "kernel/pmm.h"
#include "kernel/sched.h"
#include "kernel/spinlock.h"
#include "vmm/diskra.h"

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
    struct diskra ra;                 /* under lock */
    uint32_t win_pa;                  /* the window: DISKRA_SECTORS physically contiguous, direct-mapped; 0: none */
};

#define WIN_BYTES (DISKRA_SECTORS * VDEV_SECTOR)

/* Copy count sectors from the window, off sectors in, into io's host
 * frames, as the drive's DMA would have (the frames are the guest's own,
 * checked by the device; vmm/dev/vblk.c). */
static void copy_from_window(const struct vdiskio *q, uint32_t off, const struct vdev_io *io)
{
    const uint8_t *src = (const uint8_t *)phys_to_virt(q->win_pa) + (size_t)off * VDEV_SECTOR;
    for (unsigned i = 0; i < io->n; i++) {
        for (uint32_t done = 0; done < io->sg[i].len;) {
            uint32_t hpa = io->sg[i].hpa + done, page_off = hpa & (PAGE_SIZE - 1);
            uint32_t k = MIN(io->sg[i].len - done, PAGE_SIZE - page_off);
            kmap_copy(hpa - page_off, page_off, (void *)src, k, KMAP_WRITE);
            src += k, done += k;
        }
    }
}

/* A guest read: from the window if it holds it, else from the disk. */
static int serve_read(struct vdiskio *q, struct vdev_io *io)
{
    uint32_t off;
    uint32_t fl = spin_lock_irqsave(&q->lock);
    bool hit = q->win_pa && diskra_lookup(&q->ra, io->sector, io->count, &off);
    spin_unlock_irqrestore(&q->lock, fl);
    if (!hit)
        return vdisk_rw_sg(q->d, io->sector, io->count, io->sg, io->n, false, false);
    copy_from_window(q, off, io);
    return 0;
}

/* After a guest read of count sectors at sector: fill the window with what
 * follows if the stream is sequential and no other request waits (the
 * guest's own requests go first). The guest runs meanwhile; its next read
 * finds the window filled when the I/O thread takes it. */
static void read_ahead(struct vdiskio *q, uint64_t sector, uint32_t count)
{
    uint64_t start;
    uint32_t n;
    uint32_t fl = spin_lock_irqsave(&q->lock);
    bool go = q->win_pa && diskra_plan(&q->ra, sector, count, &start, &n) && !q->len && !q->stop;
    if (go)
        diskra_fill_begin(&q->ra, start, n);
    spin_unlock_irqrestore(&q->lock, fl);
    if (!go)
        return;
    struct dma_seg win = { q->win_pa, n * VDEV_SECTOR };
    int rc = vdisk_rw_sg(q->d, start, n, &win, 1, false, false);
    fl = spin_lock_irqsave(&q->lock);
    diskra_fill_end(&q->ra, rc);
    spin_unlock_irqrestore(&q->lock, fl);
}

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
        uint64_t sector = io->sector;
        uint32_t count = io->count;
        bool read = !io->write;
        io->rc = read ? serve_read(q, io)
                      : vdisk_rw_sg(q->d, io->sector, io->count, io->sg, io->n, io->write, io->cached);
        bool ok = io->rc == 0;
        __atomic_store_n(&io->done, true, __ATOMIC_RELEASE); /* io is the device's again */
        fl = spin_lock_irqsave(&q->lock);
        q->outstanding--;
        spin_unlock_irqrestore(&q->lock, fl);
        q->kick(q->ctx);
        if (read && ok)
            read_ahead(q, sector, count);
    }
    __atomic_store_n(&q->ended, true, __ATOMIC_RELEASE);
}

int vdiskio_start(struct vdisk *d, const char *name, void (*kick)(void *ctx), void *ctx)
{
    struct vdiskio *q = kzalloc(sizeof(*q));
    if (!q)
        return E_NOMEM;
    *q = (struct vdiskio){ .d = d, .lock = SPINLOCK_INIT("vdiskio"), .kick = kick, .ctx = ctx };
    diskra_init(&q->ra, d->sectors);
    if (!d->readahead || frame_alloc(ZONE_DIRECT, WIN_BYTES / PAGE_SIZE, &q->win_pa))
        q->win_pa = 0; /* no window: no read-ahead, everything else as before */
    int tid = thread_create(name, io_thread, q);
    if (tid < 0) {
        if (q->win_pa)
            frame_free(q->win_pa, WIN_BYTES / PAGE_SIZE);
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
    if (q->win_pa)
        frame_free(q->win_pa, WIN_BYTES / PAGE_SIZE);
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

void vdiskio_wrote(struct vdisk *d, uint64_t sector, uint32_t count)
{
    struct vdiskio *q = d->io;
    if (!q)
        return;
    uint32_t fl = spin_lock_irqsave(&q->lock);
    diskra_write(&q->ra, sector, count);
    spin_unlock_irqrestore(&q->lock, fl);
}

bool vdiskio_ra_stats(const struct vdisk *d, struct diskra_stats *st, uint32_t *window_kib)
{
    struct vdiskio *q = d->io;
    if (!q || !q->win_pa)
        return false;
    uint32_t fl = spin_lock_irqsave(&q->lock);
    *st = q->ra.st;
    spin_unlock_irqrestore(&q->lock, fl);
    *window_kib = WIN_BYTES / 1024;
    return true;
}
