/*
 * Common host-kernel definitions: logging, panic, formatted output, helpers.
 * Included by nearly every hv86 source file, freestanding or hosted.
 */
#ifndef HV86_KERNEL_KERNEL_H
#define HV86_KERNEL_KERNEL_H
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define container_of(ptr, type, member) ((type *)((char *)(ptr) - offsetof(type, member)))
#define ALIGN_UP(x, a)   (((x) + ((a) - 1)) & ~((a) - 1))
#define ALIGN_DOWN(x, a) ((x) & ~((a) - 1))
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))

/* A 32-bit word access that may alias anything and needs no alignment (IA-32). */
typedef uint32_t __attribute__((may_alias, aligned(1))) u32_any;

/* Error codes: functions return 0 or a negative E* value (STYLE.md §5). */
#define E_OK      0
#define E_NOMEM   (-1)   /* out of frames or heap */
#define E_INVAL   (-2)   /* malformed argument or input */
#define E_IO      (-3)   /* device reported an error */
#define E_NODEV   (-4)   /* no such device */
#define E_TIMEOUT (-5)   /* device did not answer in time */
#define E_RANGE   (-6)   /* value outside the allowed range */
#define E_EXIST   (-7)   /* name already in use */
#define E_NOENT   (-8)   /* no such object */
#define E_CORRUPT (-9)   /* on-disk or in-memory structure failed a check */
#define E_BUSY    (-10)  /* object is in a state that forbids the request */
#define E_TOOBIG  (-11)  /* input longer than the buffer that must hold it */
#define E_NOSPC   (-12)  /* a bounded store (a redo log) is full */
#define E_NOTSUP  (-13)  /* not offered for this request here: the caller takes another way */

/* Human-readable name of an E_* code ("E_NOMEM", ...). Never NULL. */
const char *err_name(int err);

/* Log levels, most severe first. */
enum log_level { LOG_ERR, LOG_WARN, LOG_INFO, LOG_DEBUG };

/*
 * klog - append one formatted line to the kernel log ring buffer and, if
 * level <= the console threshold, print it on COM1. A newline is added.
 * Safe from any context, including interrupt handlers (takes an
 * interrupt-disabling spinlock). Lines longer than LOG_LINE_MAX bytes are cut.
 */
void klog(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define LOG_LINE_MAX 160

#define log_err(...)   klog(LOG_ERR, __VA_ARGS__)
#define log_warn(...)  klog(LOG_WARN, __VA_ARGS__)
#define log_info(...)  klog(LOG_INFO, __VA_ARGS__)
#define log_debug(...) klog(LOG_DEBUG, __VA_ARGS__)

/*
 * panic - a hypervisor invariant is broken: print the message and a stack
 * dump on COM1 with interrupts disabled and halt the machine. Never for guest
 * or user misbehaviour (STYLE.md §4).
 */
void panic(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));

#define KASSERT(cond)                                                                  \
    do {                                                                               \
        if (!(cond))                                                                   \
            panic("assertion failed: %s at %s:%d", #cond, __FILE__, __LINE__);         \
    } while (0)

#ifndef HV86_HOSTED
/* Freestanding libc subset (kernel/lib.c, kernel/printf.c). */
void *memset(void *d, int c, size_t n);
void *memcpy(void *d, const void *s, size_t n);
void *memmove(void *d, const void *s, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
size_t strnlen(const char *s, size_t max);
int strcmp(const char *a, const char *b);
int strncmp(const char *a, const char *b, size_t n);
/* Copies and fills of a size known at compile time become plain moves (the
 * kernel is built with -fno-builtin, which would otherwise call out even for
 * a 4-byte copy); the rest call the functions above. */
#define memcpy(d, s, n) __builtin_memcpy(d, s, n)
#define memset(d, c, n) __builtin_memset(d, c, n)
char *strchr(const char *s, int c);
/* Formatted output (%d %i %u %x %X %o %c %s %p %%, flags -0+ space #, width, precision,
 * length hh h l ll z). Returns the length the full output would have had. */
int vsnprintf(char *buf, size_t size, const char *fmt, va_list ap);
int snprintf(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Print on COM1 directly (polled, interrupt-safe). Used by early boot and dumps. */
void kprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
#else
#include <stdio.h>
#include <string.h>
#endif

#endif
