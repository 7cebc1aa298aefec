// SPDX-License-Identifier: MIT
/* Slow path of the robust lock: bounded spinning, then a liveness check of
 * the holder and a takeover when it is gone. */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "robust_lock.h"

__hpm_export __thread uint64_t hpm_robust_self_ __attribute__((tls_model("initial-exec")));

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

__hpm_export uint64_t hpm_robust_self_init_(void)
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

uint64_t hpm_robust_lock_slow(hpm_robust_lock_t *l, uint64_t me,
			      unsigned int spins_per_yield)
{
	unsigned int spins = 0;

	for (;;) {
		uint64_t cur = atomic_load_explicit(&l->owner, memory_order_relaxed);

		if (!cur) {
			/* acquire pairs with the release in hpm_robust_unlock() */
			if (atomic_compare_exchange_weak_explicit(&l->owner, &cur, me,
								  memory_order_acquire,
								  memory_order_relaxed))
				return 0;
			continue;
		}
		if (++spins % HPM_ROBUST_SPINS_PER_CHECK) {
			/*
			 * A holder preempted inside its critical section (more
			 * threads than CPUs) holds everyone up for its whole
			 * time slice: give it our CPU now and then.
			 */
			if (spins % spins_per_yield)
				__builtin_ia32_pause();
			else
				sched_yield();
			continue;
		}
		/*
		 * Only a CAS from the very value found dead succeeds: of
		 * several waiters that saw the death, one wins; the others
		 * see the winner (alive) from then on. acquire: the dead
		 * holder's stores were made before it died (the kernel's exit
		 * path orders them before the ESRCH seen here), and the
		 * winner of an earlier takeover released them through unlock.
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
