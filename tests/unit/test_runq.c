/* Unit tests of the scheduler's run queue and sleep queue (kernel/runq.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>
#include "kernel/kernel.h"
#include "kernel/runq.h"

static void test_fifo_order(void **state)
{
    struct runq q = { 0 };
    struct sched_node n[4] = { 0 };
    for (int i = 0; i < 4; i++)
        assert_int_equal(runq_push(&q, &n[i]), 0);
    assert_int_equal(q.len, 4);
    for (int i = 0; i < 4; i++)
        assert_ptr_equal(runq_pop(&q), &n[i]);
    assert_null(runq_pop(&q));
    assert_int_equal(q.len, 0);
    assert_null(q.tail);
}

static void test_round_robin_requeue(void **state)
{
    /* A thread whose slice ends goes to the tail: A B C -> B C A. */
    struct runq q = { 0 };
    struct sched_node a = { 0 }, b = { 0 }, c = { 0 };
    runq_push(&q, &a); runq_push(&q, &b); runq_push(&q, &c);
    struct sched_node *cur = runq_pop(&q);
    assert_ptr_equal(cur, &a);
    runq_push(&q, cur);
    assert_ptr_equal(runq_pop(&q), &b);
    assert_ptr_equal(runq_pop(&q), &c);
    assert_ptr_equal(runq_pop(&q), &a);
}

static void test_push_head(void **state)
{
    /* A woken thread goes first: A B, then C at the head -> C A B; the head
     * of an empty queue is also its tail. */
    struct runq q = { 0 };
    struct sched_node a = { 0 }, b = { 0 }, c = { 0 }, d = { 0 };
    assert_int_equal(runq_push_head(&q, &d), 0);
    assert_ptr_equal(q.tail, &d);
    assert_ptr_equal(runq_pop(&q), &d);
    assert_null(q.tail);
    runq_push(&q, &a); runq_push(&q, &b);
    assert_int_equal(runq_push_head(&q, &c), 0);
    assert_int_equal(runq_push_head(&q, &c), E_BUSY);
    assert_int_equal(q.len, 3);
    assert_ptr_equal(runq_pop(&q), &c);
    assert_ptr_equal(runq_pop(&q), &a);
    runq_push(&q, &d);
    assert_ptr_equal(q.tail, &d);
    assert_ptr_equal(runq_pop(&q), &b);
    assert_ptr_equal(runq_pop(&q), &d);
    assert_null(runq_pop(&q));
}

static void test_double_push_refused(void **state)
{
    struct runq q = { 0 };
    struct sched_node a = { 0 };
    assert_int_equal(runq_push(&q, &a), 0);
    assert_int_equal(runq_push(&q, &a), E_BUSY);
    assert_int_equal(q.len, 1);
    assert_int_equal(sleepq_insert(&q, &a, 5), E_BUSY);
}

static void test_remove_middle_head_tail(void **state)
{
    struct runq q = { 0 };
    struct sched_node n[5] = { 0 };
    for (int i = 0; i < 5; i++)
        runq_push(&q, &n[i]);
    assert_true(runq_remove(&q, &n[2]));
    assert_false(runq_remove(&q, &n[2]));
    assert_true(runq_remove(&q, &n[0]));
    assert_true(runq_remove(&q, &n[4]));
    assert_ptr_equal(q.tail, &n[3]);
    assert_int_equal(q.len, 2);
    assert_ptr_equal(runq_pop(&q), &n[1]);
    assert_ptr_equal(runq_pop(&q), &n[3]);
    assert_null(runq_pop(&q));
    /* a removed node can be queued again */
    assert_int_equal(runq_push(&q, &n[2]), 0);
    assert_ptr_equal(q.head, &n[2]);
}

static void test_sleep_order_and_expiry(void **state)
{
    struct runq q = { 0 };
    struct sched_node a = { 0 }, b = { 0 }, c = { 0 }, d = { 0 };
    sleepq_insert(&q, &a, 30);
    sleepq_insert(&q, &b, 10);
    sleepq_insert(&q, &c, 20);
    sleepq_insert(&q, &d, 10); /* equal keys keep insertion order */
    assert_null(sleepq_pop_expired(&q, 9));
    assert_ptr_equal(sleepq_pop_expired(&q, 10), &b);
    assert_ptr_equal(sleepq_pop_expired(&q, 10), &d);
    assert_null(sleepq_pop_expired(&q, 19));
    assert_ptr_equal(sleepq_pop_expired(&q, 100), &c);
    assert_ptr_equal(sleepq_pop_expired(&q, 100), &a);
    assert_null(sleepq_pop_expired(&q, 1000));
    assert_null(q.tail);
}

static void test_sleep_tail_tracking(void **state)
{
    /* After inserting at the end the tail must be right, so a later FIFO push works. */
    struct runq q = { 0 };
    struct sched_node a = { 0 }, b = { 0 };
    sleepq_insert(&q, &a, 5);
    sleepq_insert(&q, &b, 7);
    assert_ptr_equal(q.tail, &b);
    assert_ptr_equal(sleepq_pop_expired(&q, 7), &a);
    assert_ptr_equal(sleepq_pop_expired(&q, 7), &b);
    assert_null(q.head);
    assert_null(q.tail);
}

static void test_random_against_model(void **state)
{
    /* Random pushes, pops and removes against an array model (fixed seed). */
    enum { N = 32 };
    struct runq q = { 0 };
    struct sched_node n[N] = { 0 };
    int model[N], mlen = 0;
    srand(1234);
    for (int step = 0; step < 20000; step++) {
        int op = rand() % 3, k = rand() % N;
        if (op == 0) {
            int found = 0;
            for (int i = 0; i < mlen; i++)
                found |= model[i] == k;
            assert_int_equal(runq_push(&q, &n[k]), found ? E_BUSY : 0);
            if (!found)
                model[mlen++] = k;
        } else if (op == 1) {
            struct sched_node *p = runq_pop(&q);
            if (mlen == 0) {
                assert_null(p);
            } else {
                assert_ptr_equal(p, &n[model[0]]);
                memmove(model, model + 1, sizeof(int) * (size_t)--mlen);
            }
        } else {
            int at = -1;
            for (int i = 0; i < mlen; i++)
                if (model[i] == k)
                    at = i;
            assert_int_equal(runq_remove(&q, &n[k]), at >= 0);
            if (at >= 0)
                memmove(model + at, model + at + 1, sizeof(int) * (size_t)(--mlen - at));
        }
        assert_int_equal(q.len, mlen);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fifo_order),
        cmocka_unit_test(test_round_robin_requeue),
        cmocka_unit_test(test_push_head),
        cmocka_unit_test(test_double_push_refused),
        cmocka_unit_test(test_remove_middle_head_tail),
        cmocka_unit_test(test_sleep_order_and_expiry),
        cmocka_unit_test(test_sleep_tail_tracking),
        cmocka_unit_test(test_random_against_model),
    };
    return cmocka_run_group_tests_name("runq", tests, NULL, NULL);
}
