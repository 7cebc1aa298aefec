// SPDX-License-Identifier: MIT
/* Slow path of the robust lock: bounded spinning, then a liveness check of
 * the holder and a takeover when it is gone. */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "robust_lock.h"

/*
 * Pauses between two looks at the holder: about 0.1-0.5 ms, far longer
 * than any heap critical section, so a live holder is rarely asked about,
 * and a dead one costs its waiters well under a millisecond.
 */
#define SPINS_PER_CHECK	4096

__thread uint64_t hpm_robust_self_ __attribute__((tls_model("initial-exec")));

static pthread_once_t self_once = PTHREAD_ONCE_INIT;

/* The child's only thread has another pid and tid than the one it copies. */
static void self_atfork_child(void)
{
	hpm_robust_self_ = 0;
}

static void self_once_init(void)
{
	pthread_atfork(NULL, NULL, self_atfork_child);
}

uint64_t hpm_robust_self_init(void)
{
	pthread_once(&self_once, self_once_init);
	hpm_robust_self_ = (uint64_t)(uint32_t)getpid() << 32 |
			   (uint32_t)syscall(SYS_gettid);
	return hpm_robust_self_;
}

/* Gone: no thread @tid in process @pid any more. EPERM means alive. */
static bool owner_dead(uint64_t owner)
{
	int saved = errno;
	bool dead = syscall(SYS_tgkill, (pid_t)(owner >> 32), (pid_t)(uint32_t)owner, 0) &&
		    errno == ESRCH;

	errno = saved;
	return dead;
}

uint64_t hpm_robust_lock_slow(hpm_robust_lock_t *l, uint64_t me)
{
	unsigned int spins = 0;

	for (;;) {
		uint64_t cur = atomic_load_explicit(&l->owner, memory_order_relaxed);

		if (!cur) {
			if (atomic_compare_exchange_weak_explicit(&l->owner, &cur, me,
								  memory_order_acquire,
								  memory_order_relaxed))
				return 0;
			continue;
		}
		if (++spins < SPINS_PER_CHECK) {
			__builtin_ia32_pause();
			continue;
		}
		spins = 0;
		/*
		 * Only a CAS from the very value found dead succeeds: of
		 * several waiters that saw the death, one wins; the others
		 * see the winner (alive) from then on. acquire: the dead
		 * holder's stores were made before it died, and the winner
		 * of an earlier takeover released them through unlock.
		 */
		if (owner_dead(cur) &&
		    atomic_compare_exchange_strong_explicit(&l->owner, &cur, me,
							    memory_order_acquire,
							    memory_order_relaxed))
			return cur;
		/* A live holder off its CPU: let it run. */
		sched_yield();
	}
}
