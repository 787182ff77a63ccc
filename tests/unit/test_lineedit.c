/* Unit tests of the console line editor (mgmt/lineedit.c), fed byte streams. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "mgmt/lineedit.h"

static struct lineedit le;
static char out[65536];
static size_t outlen;
static char lines[64][LE_LINE_MAX + 1]; /* completed lines, in order */
static int nlines, ncancel, nrefused;

static void capture(const char *buf, size_t len, void *ctx)
{
    (void)ctx;
    if (outlen + len < sizeof(out)) {
        memcpy(out + outlen, buf, len);
        outlen += len;
        out[outlen] = 0;
    }
}

static int setup(void **state)
{
    (void)state;
    le_init(&le, capture, NULL);
    outlen = 0;
    out[0] = 0;
    nlines = ncancel = nrefused = 0;
    return 0;
}

static void feed_bytes(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        enum le_event ev = le_feed(&le, (uint8_t)s[i]);
        if (ev == LE_LINE) {
            assert_true(nlines < 64);
            strcpy(lines[nlines++], le_line(&le));
        }
        ncancel += ev == LE_CANCEL;
        nrefused += ev == LE_REFUSED;
    }
}

static void feed(const char *s) { feed_bytes(s, strlen(s)); }

static void clear_out(void)
{
    outlen = 0;
    out[0] = 0;
}

#define UP    "\x1b[A"
#define DOWN  "\x1b[B"
#define RIGHT "\x1b[C"
#define LEFT  "\x1b[D"

static void test_plain_line_echoes(void **state)
{
    feed("help\r");
    assert_int_equal(nlines, 1);
    assert_string_equal(lines[0], "help");
    assert_string_equal(out, "help\r\n");
}

static void test_midline_insert_after_left(void **state)
{
    feed("helo" LEFT);
    clear_out();
    feed("l");
    /* the new byte, the shifted tail, then one column back */
    assert_string_equal(out, "lo\b");
    feed("\r");
    assert_string_equal(lines[0], "hello");
}

static void test_backspace_both_codes_and_at_start(void **state)
{
    feed("\x7f\b"); /* nothing to delete */
    assert_int_equal(outlen, 0);
    feed("abc\x7f" "d\bx\r");
    assert_string_equal(lines[0], "abx");
}

static void test_backspace_midline(void **state)
{
    feed("abcd" LEFT LEFT "\x7f\r");
    assert_string_equal(lines[0], "acd");
}

static void test_delete_key_under_cursor(void **state)
{
    feed("abcd\x01\x1b[3~\r");
    assert_string_equal(lines[0], "bcd");
}

static void test_ctrl_u_kills_line(void **state)
{
    feed("garbage\x15ok\r");
    assert_int_equal(nlines, 1);
    assert_string_equal(lines[0], "ok");
}

static void test_ctrl_c_cancels(void **state)
{
    feed("reboot\x03");
    assert_int_equal(ncancel, 1);
    assert_int_equal(nlines, 0);
    assert_non_null(strstr(out, "^C\r\n"));
    feed("\r");
    assert_int_equal(nlines, 1);
    assert_string_equal(lines[0], "");
}

static void test_home_end_keys(void **state)
{
    feed("bc\x01" "a\x05" "d\r");           /* ^A, ^E */
    feed("yz\x1b[H" "x\x1b[F" "!\r");        /* xterm Home/End */
    feed("23\x1bOH" "1\x1bOF" "4\r");        /* SS3 Home/End */
    feed("nm\x1b[1~" "o\x1b[4~" "p\r");      /* VT220 Home/End */
    assert_int_equal(nlines, 4);
    assert_string_equal(lines[0], "abcd");
    assert_string_equal(lines[1], "xyz!");
    assert_string_equal(lines[2], "1234");
    assert_string_equal(lines[3], "onmp");
}

static void test_arrows_clamp_at_ends(void **state)
{
    feed("ab" RIGHT RIGHT LEFT LEFT LEFT LEFT "x\x1bOC\x1bOC\x1bOC" "y\r");
    assert_string_equal(lines[0], "xaby");
}

static void test_ctrl_k_and_ctrl_w(void **state)
{
    feed("vm start foo" LEFT LEFT LEFT "\x0b\r");
    feed("vm start foo  \x17" "bar\r");
    assert_string_equal(lines[0], "vm start ");
    assert_string_equal(lines[1], "vm start bar");
}

static void test_cr_lf_crlf_end_once(void **state)
{
    feed("a\rb\nc\r\nd\n\re\r\r");
    assert_int_equal(nlines, 7);
    const char *want[] = { "a", "b", "c", "d", "", "e", "" };
    for (int i = 0; i < 7; i++)
        assert_string_equal(lines[i], want[i]);
}

static void test_history_up_down(void **state)
{
    feed("one\rtwo\r");
    feed("thr" UP);
    assert_string_equal(le.buf, "two");
    feed(UP);
    assert_string_equal(le.buf, "one");
    feed(UP); /* oldest: stays, beeps */
    assert_string_equal(le.buf, "one");
    assert_int_equal(out[outlen - 1], '\a');
    feed(DOWN DOWN);
    assert_string_equal(le.buf, "thr"); /* the live line comes back */
    feed("ee\r");
    assert_string_equal(lines[2], "three");
}

static void test_history_recall_edit_keeps_entry(void **state)
{
    feed("vm start a\r" UP "\x7f" "b\r" UP UP);
    assert_string_equal(lines[1], "vm start b");
    assert_string_equal(le.buf, "vm start a"); /* the older entry is unchanged */
    feed(DOWN "\r");
    assert_string_equal(lines[2], "vm start b");
}

static void test_history_skips_blank_and_repeats(void **state)
{
    feed("x\r\rx\r  \r" UP);
    assert_string_equal(le.buf, "  ");
    feed(UP);
    assert_string_equal(le.buf, "x");
    feed(UP);
    assert_string_equal(le.buf, "x"); /* only one "x" was kept */
    assert_int_equal(le.hist_count, 2);
}

static void test_history_keeps_last_32(void **state)
{
    char line[16];
    for (int i = 0; i < LE_HISTORY + 5; i++) {
        snprintf(line, sizeof(line), "cmd%d\r", i);
        feed(line);
    }
    for (int i = 0; i < LE_HISTORY; i++)
        feed(UP);
    assert_string_equal(le.buf, "cmd5");
    feed(UP);
    assert_string_equal(le.buf, "cmd5");
}

static void test_overlong_line_refused_then_next_works(void **state)
{
    char big[LE_LINE_MAX + 40];
    memset(big, 'a', sizeof(big));
    feed_bytes(big, sizeof(big));
    assert_int_equal(le.len, LE_LINE_MAX);
    /* one beep for the whole overflow, not one per byte */
    assert_int_equal(memchr(out, '\a', outlen) != NULL, 1);
    assert_null(memchr(strchr(out, '\a') + 1, '\a', out + outlen - strchr(out, '\a') - 1));
    feed("\r");
    assert_int_equal(nrefused, 1);
    assert_int_equal(nlines, 0);
    assert_non_null(strstr(out, "error: line longer than 255 bytes refused"));
    feed("ok\r");
    assert_int_equal(nlines, 1);
    assert_string_equal(lines[0], "ok");
    feed(UP UP); /* the refused line can be recalled, cut to the limit */
    assert_int_equal(le.len, LE_LINE_MAX);
    feed("\r");
    assert_int_equal(nlines, 2);
    assert_int_equal(strlen(lines[1]), LE_LINE_MAX);
}

static void test_exactly_max_is_accepted(void **state)
{
    char big[LE_LINE_MAX + 1];
    memset(big, 'b', LE_LINE_MAX);
    big[LE_LINE_MAX] = '\r';
    feed_bytes(big, sizeof(big));
    assert_int_equal(nlines, 1);
    assert_int_equal(strlen(lines[0]), LE_LINE_MAX);
    assert_null(memchr(out, '\a', outlen));
}

static void test_overlong_survives_history_browse(void **state)
{
    char big[LE_LINE_MAX + 2];
    feed("old\r");
    memset(big, 'c', sizeof(big));
    feed_bytes(big, sizeof(big));
    feed(UP DOWN "\r");
    assert_int_equal(nrefused, 1);
    assert_int_equal(nlines, 1);
}

static void test_garbage_escapes_are_swallowed(void **state)
{
    /* unknown CSI, CSI with many params, ESC + letter, ESC ESC, SS3 unknown,
     * a CSI broken by CR (the CR still ends the line) */
    feed("a\x1b[99;5;7Zb\x1b[12345678901234567890~c\x1bxd\x1b\x1b[Ce\x1bOzf\x1b[12\r");
    assert_int_equal(nlines, 1);
    assert_string_equal(lines[0], "abcdef");
    feed("g\x1b[\x03");
    assert_int_equal(ncancel, 1);
    feed("h\r");
    assert_string_equal(lines[1], "h");
}

static void test_nul_controls_and_high_bytes_ignored(void **state)
{
    static const char in[] = "a\0b\x0e\x04\x12\t\x7f\x80\xff\x1f" "c\r";
    feed_bytes(in, sizeof(in) - 1);
    assert_int_equal(nlines, 1);
    assert_string_equal(lines[0], "ac"); /* DEL removed b */
}

static void test_redraw_restores_cursor(void **state)
{
    feed("abc" LEFT);
    clear_out();
    le_redraw(&le);
    assert_string_equal(out, "abc\x1b[K\b");
}

/* A completer that proposes "time " after "up", lists choices after "v",
 * and knows nothing else. */
static bool stub_complete(const char *line, size_t cursor, char *ins, size_t size, void *ctx)
{
    (*(int *)ctx)++;
    if (!strncmp(line, "up", cursor) && cursor == 2)
        snprintf(ins, size, "time ");
    if (cursor == 1 && line[0] == 'v') {
        capture("\r\nvm  version\r\nhv86> ", 21, NULL);
        return true;
    }
    return false;
}

static void test_tab_completion(void **state)
{
    int calls = 0;
    le_set_completer(&le, stub_complete, &calls);
    feed("up\tx\r");
    assert_string_equal(lines[0], "uptime x");
    clear_out();
    feed("v\t");
    assert_string_equal(out, "v\r\nvm  version\r\nhv86> v\x1b[K"); /* the line written again */
    feed("\x15zz\t");
    assert_int_equal(out[outlen - 1], '\a'); /* nothing to offer */
    assert_string_equal(le.buf, "zz");
    assert_int_equal(calls, 3);
}

static void test_tab_completion_respects_limit(void **state)
{
    char big[LE_LINE_MAX - 4];
    int calls = 0;
    memset(big, 'a', sizeof(big));
    le_set_completer(&le, stub_complete, &calls);
    feed("up");
    feed_bytes(big, sizeof(big)); /* 253 bytes */
    feed("\x01\x06\x06\t");     /* cursor after "up": "time " does not fit */
    assert_int_equal(calls, 1);
    assert_int_equal(le.len, LE_LINE_MAX);
    assert_memory_equal(le.buf, "upti", 4);
    assert_true(le.overlong);
}

/* Random streams: no crash, invariants hold, no line over the limit. */
static void test_random_streams(void **state)
{
    uint32_t seed = 12345;
    int got = 0;
    for (int i = 0; i < 200000; i++) {
        seed = seed * 1103515245u + 12345u;
        uint8_t b = (uint8_t)(seed >> 16);
        if ((seed >> 8) % 5 == 0)
            b = "\x1b[AOBCD~13\r\n\x7f\x15\x03\x17"[(seed >> 24) % 17];
        enum le_event ev = le_feed(&le, b);
        assert_true(le.len <= LE_LINE_MAX);
        assert_true(le.cursor <= le.len);
        assert_int_equal(le.buf[le.len], 0);
        assert_int_equal(strlen(le.buf), le.len);
        if (ev == LE_LINE) {
            assert_true(strlen(le_line(&le)) <= LE_LINE_MAX);
            got++;
        }
        if (outlen > sizeof(out) / 2)
            clear_out();
    }
    assert_true(got > 1000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_plain_line_echoes, setup),
        cmocka_unit_test_setup(test_midline_insert_after_left, setup),
        cmocka_unit_test_setup(test_backspace_both_codes_and_at_start, setup),
        cmocka_unit_test_setup(test_backspace_midline, setup),
        cmocka_unit_test_setup(test_delete_key_under_cursor, setup),
        cmocka_unit_test_setup(test_ctrl_u_kills_line, setup),
        cmocka_unit_test_setup(test_ctrl_c_cancels, setup),
        cmocka_unit_test_setup(test_home_end_keys, setup),
        cmocka_unit_test_setup(test_arrows_clamp_at_ends, setup),
        cmocka_unit_test_setup(test_ctrl_k_and_ctrl_w, setup),
        cmocka_unit_test_setup(test_cr_lf_crlf_end_once, setup),
        cmocka_unit_test_setup(test_history_up_down, setup),
        cmocka_unit_test_setup(test_history_recall_edit_keeps_entry, setup),
        cmocka_unit_test_setup(test_history_skips_blank_and_repeats, setup),
        cmocka_unit_test_setup(test_history_keeps_last_32, setup),
        cmocka_unit_test_setup(test_overlong_line_refused_then_next_works, setup),
        cmocka_unit_test_setup(test_exactly_max_is_accepted, setup),
        cmocka_unit_test_setup(test_overlong_survives_history_browse, setup),
        cmocka_unit_test_setup(test_garbage_escapes_are_swallowed, setup),
        cmocka_unit_test_setup(test_nul_controls_and_high_bytes_ignored, setup),
        cmocka_unit_test_setup(test_redraw_restores_cursor, setup),
        cmocka_unit_test_setup(test_tab_completion, setup),
        cmocka_unit_test_setup(test_tab_completion_respects_limit, setup),
        cmocka_unit_test_setup(test_random_streams, setup),
    };
    return cmocka_run_group_tests_name("lineedit", tests, NULL, NULL);
}
