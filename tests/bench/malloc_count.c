/* malloc_count.c -- an LD_PRELOAD shim for the benchmarks: counts malloc, calloc and realloc
 * calls in the whole process and prints the count on stderr when sent SIGUSR2. Used to show
 * that a cached Introspect allocates nothing. Built by introspect_bench.py; not part of the
 * service. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

extern void *__libc_malloc(size_t n);
extern void *__libc_calloc(size_t count, size_t n);
extern void *__libc_realloc(void *p, size_t n);

static atomic_long calls;

void *malloc(size_t n)
{
    atomic_fetch_add(&calls, 1);
    return __libc_malloc(n);
}

void *calloc(size_t count, size_t n)
{
    atomic_fetch_add(&calls, 1);
    return __libc_calloc(count, n);
}

void *realloc(void *p, size_t n)
{
    atomic_fetch_add(&calls, 1);
    return __libc_realloc(p, n);
}

static void report(int sig)
{
    (void)sig;
    char line[64];
    int k = snprintf(line, sizeof(line), "MALLOC_CALLS %ld\n", atomic_load(&calls));
    if (write(STDERR_FILENO, line, (size_t)k) < 0)
        _exit(1);
}

__attribute__((constructor)) static void install(void)
{
    signal(SIGUSR2, report);
}
