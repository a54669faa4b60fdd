/* slab.h -- small blocks recycled per thread, so the steady-state request path allocates
 * nothing from malloc.
 *
 * Each thread keeps a free list per size class (32 bytes to 16 KiB, powers of two), capped
 * at SLAB_KEEP blocks and 1 MiB a class; larger blocks go to malloc. A 16-byte header records the
 * class, so slab_free() needs no size. A block may be freed on any thread: it joins that
 * thread's list. Used for nghttp2's and libevent's allocations and for our per-stream and
 * per-response buffers.
 */
#ifndef P2A_SLAB_H
#define P2A_SLAB_H

#include <stddef.h>

#define SLAB_KEEP 4096

void *slab_alloc(size_t n);  /* never NULL (aborts on exhaustion) */
void *slab_calloc(size_t count, size_t n);
void *slab_realloc(void *p, size_t n);
void slab_free(void *p);     /* NULL is a no-op */

/* Returns the calling thread's free blocks to malloc; call before a thread exits. */
void slab_thread_cleanup(void);

#endif
