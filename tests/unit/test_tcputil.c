/* firmware/tcputil.c against a fake altcp layer: the altcp and pbuf calls
 * it makes are recorded here instead of reaching lwIP.
 *
 * The rule under test: a pcb that cannot be closed is aborted, and the
 * caller is told so (ERR_ABRT), because a recv/sent/poll callback that
 * aborted its pcb must return ERR_ABRT (lwIP would use the freed pcb). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "tcputil.h"

static struct {
    err_t close_rc;
    int closes, aborts, frees, refs;
    u32_t recved;
    void *arg;
    int callbacks_set;
} fk;

/* --- the fake altcp/pbuf layer --- */

err_t altcp_close(struct altcp_pcb *conn)
{
    (void)conn;
    fk.closes++;
    return fk.close_rc;
}

void altcp_abort(struct altcp_pcb *conn)
{
    (void)conn;
    fk.aborts++;
}

void altcp_arg(struct altcp_pcb *conn, void *arg)
{
    (void)conn;
    fk.arg = arg;
}

void altcp_recv(struct altcp_pcb *conn, altcp_recv_fn recv)
{
    (void)conn;
    fk.callbacks_set += recv != NULL;
}

void altcp_sent(struct altcp_pcb *conn, altcp_sent_fn sent)
{
    (void)conn;
    fk.callbacks_set += sent != NULL;
}

void altcp_err(struct altcp_pcb *conn, altcp_err_fn err)
{
    (void)conn;
    fk.callbacks_set += err != NULL;
}

void altcp_poll(struct altcp_pcb *conn, altcp_poll_fn poll, u8_t interval)
{
    (void)conn;
    (void)interval;
    fk.callbacks_set += poll != NULL;
}

void altcp_recved(struct altcp_pcb *conn, u16_t len)
{
    (void)conn;
    fk.recved += len;
}

u8_t pbuf_free(struct pbuf *p)
{
    (void)p;
    fk.frees++;
    return 1;
}

void pbuf_ref(struct pbuf *p)
{
    (void)p;
    fk.refs++;
}

static int reset(void **state)
{
    (void)state;
    memset(&fk, 0, sizeof fk);
    return 0;
}

/* --- tests --- */

static void test_close_ok(void **state)
{
    (void)state;
    struct altcp_pcb pcb;
    fk.close_rc = ERR_OK;
    assert_int_equal(tcputil_close(&pcb), ERR_OK);
    assert_int_equal(fk.closes, 1);
    assert_int_equal(fk.aborts, 0);
}

static void test_close_fails_aborts_and_says_so(void **state)
{
    (void)state;
    struct altcp_pcb pcb;
    fk.close_rc = ERR_MEM; /* lwIP could not queue the FIN */
    assert_int_equal(tcputil_close(&pcb), ERR_ABRT);
    assert_int_equal(fk.closes, 1);
    assert_int_equal(fk.aborts, 1);
}

static void test_detach_and_drop(void **state)
{
    (void)state;
    struct altcp_pcb pcb;
    fk.arg = &pcb;
    tcputil_detach(&pcb);
    assert_null(fk.arg);
    assert_int_equal(fk.callbacks_set, 0);
    struct pbuf p;
    memset(&p, 0, sizeof p);
    p.tot_len = 321;
    tcputil_drop(&pcb, &p);
    assert_int_equal(fk.recved, 321);
    assert_int_equal(fk.frees, 1);
    tcputil_drop(&pcb, NULL);
    assert_int_equal(fk.frees, 1);
    tcputil_drop(NULL, &p); /* pcb gone: only freed */
    assert_int_equal(fk.recved, 321);
    assert_int_equal(fk.frees, 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_close_ok, reset),
        cmocka_unit_test_setup(test_close_fails_aborts_and_says_so, reset),
        cmocka_unit_test_setup(test_detach_and_drop, reset),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
