/* SPDX-License-Identifier: MIT */
/* Private helpers shared by every libhpmem source file. */
#ifndef HPM_INTERNAL_H
#define HPM_INTERNAL_H

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <hpmem/common.h>

#define likely(x)	__builtin_expect(!!(x), 1)
#define unlikely(x)	__builtin_expect(!!(x), 0)
#define __hpm_cold	__attribute__((cold, noinline))
#define __hpm_export	__attribute__((visibility("default")))

#define HPM_ALIGN_UP(x, a)	(((x) + ((a) - 1)) & ~((__typeof__(x))(a) - 1))
#define HPM_IS_POW2(x)		((x) != 0 && ((x) & ((x) - 1)) == 0)
#define HPM_ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))

/* Record a failure: sets hpm_errno, returns -err for `return hpm_fail(E);`. */
static inline int hpm_fail(int err)
{
	hpm_errno = err;
	return -err;
}

/* Same, for calls that return a pointer. */
static inline void *hpm_fail_ptr(int err)
{
	hpm_errno = err;
	return NULL;
}

/*
 * Process-shared spinlock living in the region. Critical sections under it
 * are short and never sleep; holders do not call into the kernel.
 */
typedef struct {
	atomic_uint locked;
} hpm_spinlock_t;

static inline void hpm_spinlock_init(hpm_spinlock_t *l)
{
	atomic_init(&l->locked, 0);
}

static inline void hpm_spinlock_lock(hpm_spinlock_t *l)
{
	/* acquire pairs with the release in hpm_spinlock_unlock() */
	while (atomic_exchange_explicit(&l->locked, 1, memory_order_acquire)) {
		while (atomic_load_explicit(&l->locked, memory_order_relaxed))
			__builtin_ia32_pause();
	}
}

static inline bool hpm_spinlock_trylock(hpm_spinlock_t *l)
{
	return !atomic_exchange_explicit(&l->locked, 1, memory_order_acquire);
}

static inline void hpm_spinlock_unlock(hpm_spinlock_t *l)
{
	atomic_store_explicit(&l->locked, 0, memory_order_release);
}

enum hpm_log_level {
	HPM_LOG_ERR = 1,
	HPM_LOG_WARN,
	HPM_LOG_INFO,
	HPM_LOG_DEBUG,
};

/* One line to stderr, prefixed "hpmem: ", when level <= the configured one. */
void hpm_log(enum hpm_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#endif /* HPM_INTERNAL_H */
