/* SPDX-License-Identifier: MIT */
/* Umbrella header: every public libhpmem header. */
#ifndef HPMEM_HPMEM_H
#define HPMEM_HPMEM_H

#include <hpmem/common.h>
#include <hpmem/init.h>
#include <hpmem/memseg.h>
#include <hpmem/mem_event.h>
#include <hpmem/thread.h>
#include <hpmem/vfio.h>
#include <hpmem/malloc.h>
#include <hpmem/memzone.h>
#include <hpmem/ring.h>
#include <hpmem/mempool.h>
#include <hpmem/mbuf.h>
#include <hpmem/inspect.h>

#endif /* HPMEM_HPMEM_H */
