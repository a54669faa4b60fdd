/* test_slab.c -- blocks recycled per size class, big ones through malloc, freed anywhere. */
#include "cm.h"

#include <pthread.h>

#include "slab.h"

static void slab__recycles_by_class(void **state)
{
    (void)state;
    void *a = slab_alloc(100);
    memset(a, 0xab, 100);
    slab_free(a);
    void *b = slab_alloc(120); /* the same class (128): the block comes back */
    assert_ptr_equal(a, b);
    void *c = slab_alloc(20000); /* past the largest class: malloc's */
    memset(c, 1, 20000);
    void *d = slab_realloc(b, 4000); /* grows into another class, keeps the bytes */
    assert_int_equal(((unsigned char *)d)[99], 0xab);
    c = slab_realloc(c, 40000);
    assert_int_equal(((unsigned char *)c)[19999], 1);
    unsigned char *z = slab_calloc(10, 10);
    for (int i = 0; i < 100; i++)
        assert_int_equal(z[i], 0);
    slab_free(z);
    slab_free(c);
    slab_free(d);
    slab_free(NULL);
    slab_thread_cleanup(); /* LeakSanitizer checks every block went back */
}

static void *free_there(void *p)
{
    slab_free(p); /* joins this thread's list */
    slab_thread_cleanup();
    return NULL;
}

static void slab__freed_on_another_thread(void **state)
{
    (void)state;
    void *p = slab_alloc(64);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, free_there, p), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    slab_thread_cleanup();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(slab__recycles_by_class),
        cmocka_unit_test(slab__freed_on_another_thread),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
