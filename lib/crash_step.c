// SPDX-License-Identifier: MIT
/* The crash-step test hook (crash_step.h). */
#include <signal.h>

#include "crash_step.h"

int hpm_crash_countdown;

__hpm_cold void hpm_crash_step_(void)
{
	if (!--hpm_crash_countdown)
		raise(SIGKILL);
}
