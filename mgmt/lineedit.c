/*
 * Line editor state machine; the key map and the output conventions are in
 * lineedit.h.
 *
 * Map of this file:
 *   output helpers   emit, cursor moves, redraw of the tail after an edit
 *   edits            insert, delete, kill, history replace
 *   key actions      one small function per key, found through three tables:
 *                    control bytes, CSI/SS3 final bytes, and CSI "n ~" codes
 *   le_feed          escape-sequence parser, CR/LF pairing, dispatch
 *
 * Invariants: len <= LE_LINE_MAX, cursor <= len, buf[len] == 0, and the
 * terminal cursor stands `cursor` columns right of where the line starts.
 */
#include "mgmt/lineedit.h"
#include "kernel/kernel.h"

#define CTRL(c)  ((c) & 0x1f)
#define ESC      0x1b
#define DEL      0x7f
#define STR_(x)  #x
#define STR(x)   STR_(x)

/* Said when a line longer than LE_LINE_MAX is ended. */
static const char overlong_notice[] =
    "error: line longer than " STR(LE_LINE_MAX) " bytes refused (Up recalls the first "
    STR(LE_LINE_MAX) " to edit)\r\n";

/* ---------------------------------------------------------------- output */

static void emit(struct lineedit *le, const char *s, size_t n)
{
    if (n)
        le->out(s, n, le->ctx);
}

static void emit_str(struct lineedit *le, const char *s) { emit(le, s, strlen(s)); }

static void beep(struct lineedit *le) { emit(le, "\a", 1); }

/* ESC [ n final: n decimal, as VT100 cursor-move sequences want. */
static void emit_csi(struct lineedit *le, size_t n, char final)
{
    char seq[16], digits[10];
    size_t nd = 0, k = 0;

    do {
        digits[nd++] = (char)('0' + n % 10);
        n /= 10;
    } while (n && nd < sizeof(digits));
    seq[k++] = ESC;
    seq[k++] = '[';
    while (nd)
        seq[k++] = digits[--nd];
    seq[k++] = final;
    emit(le, seq, k);
}

static void move_left(struct lineedit *le, size_t n)
{
    if (n == 1)
        emit(le, "\b", 1);
    else if (n > 1)
        emit_csi(le, n, 'D');
}

static void move_right(struct lineedit *le, size_t n)
{
    if (n)
        emit_csi(le, n, 'C');
}

/*
 * The terminal cursor is at column `from`; buf[from..] changed. Write the new
 * tail, erase what is left of the old one if the line got shorter, and walk
 * back to the editor's cursor.
 */
static void redraw_tail(struct lineedit *le, size_t from, bool shrunk)
{
    emit(le, le->buf + from, le->len - from);
    if (shrunk)
        emit(le, "\x1b[K", 3);
    move_left(le, le->len - le->cursor);
}

/* ---------------------------------------------------------------- edits */

static void clear_line(struct lineedit *le)
{
    le->len = le->cursor = 0;
    le->buf[0] = 0;
    le->overlong = false;
}

static void insert_byte(struct lineedit *le, char c)
{
    if (le->len == LE_LINE_MAX) {
        if (!le->overlong)
            beep(le);
        le->overlong = true;
        return;
    }
    memmove(le->buf + le->cursor + 1, le->buf + le->cursor, le->len - le->cursor + 1);
    le->buf[le->cursor++] = c;
    le->len++;
    if (le->cursor == le->len)
        emit(le, &c, 1);
    else
        redraw_tail(le, le->cursor - 1, false);
}

/* Delete buf[at, at+n); the terminal cursor is already at column `at`. */
static void delete_range(struct lineedit *le, size_t at, size_t n)
{
    memmove(le->buf + at, le->buf + at + n, le->len - at - n + 1);
    le->len -= n;
    le->cursor = at;
    redraw_tail(le, at, n > 0);
}

/* Show text (at most LE_LINE_MAX bytes) instead of the current line. */
static void replace_line(struct lineedit *le, const char *text, bool overlong)
{
    move_left(le, le->cursor);
    le->len = le->cursor = strnlen(text, LE_LINE_MAX);
    memcpy(le->buf, text, le->len);
    le->buf[le->len] = 0;
    le->overlong = overlong;
    emit(le, le->buf, le->len);
    emit(le, "\x1b[K", 3);
}

/* ---------------------------------------------------------------- history */

/* k-th most recent entry, 1 <= k <= hist_count. */
static const char *hist_entry(const struct lineedit *le, unsigned k)
{
    return le->hist[(le->hist_next + LE_HISTORY - k) % LE_HISTORY];
}

static void hist_push(struct lineedit *le, const char *line)
{
    if (!line[0] || (le->hist_count && !strcmp(hist_entry(le, 1), line)))
        return;
    memcpy(le->hist[le->hist_next], line, strlen(line) + 1);
    le->hist_next = (le->hist_next + 1) % LE_HISTORY;
    if (le->hist_count < LE_HISTORY)
        le->hist_count++;
}

/* ---------------------------------------------------------------- key actions */

typedef enum le_event (*le_action)(struct lineedit *le);

static enum le_event key_home(struct lineedit *le)
{
    move_left(le, le->cursor);
    le->cursor = 0;
    return LE_PENDING;
}

static enum le_event key_end(struct lineedit *le)
{
    move_right(le, le->len - le->cursor);
    le->cursor = le->len;
    return LE_PENDING;
}

static enum le_event key_left(struct lineedit *le)
{
    if (le->cursor) {
        move_left(le, 1);
        le->cursor--;
    }
    return LE_PENDING;
}

static enum le_event key_right(struct lineedit *le)
{
    if (le->cursor < le->len) {
        move_right(le, 1);
        le->cursor++;
    }
    return LE_PENDING;
}

static enum le_event key_backspace(struct lineedit *le)
{
    if (le->cursor) {
        move_left(le, 1);
        delete_range(le, le->cursor - 1, 1);
    }
    return LE_PENDING;
}

static enum le_event key_delete(struct lineedit *le)
{
    if (le->cursor < le->len)
        delete_range(le, le->cursor, 1);
    return LE_PENDING;
}

static enum le_event key_kill_end(struct lineedit *le)
{
    delete_range(le, le->cursor, le->len - le->cursor);
    return LE_PENDING;
}

static enum le_event key_kill_line(struct lineedit *le)
{
    move_left(le, le->cursor);
    if (le->len)
        emit(le, "\x1b[K", 3);
    clear_line(le);
    return LE_PENDING;
}

/* ^W: the blanks left of the cursor, then the word before them. */
static enum le_event key_kill_word(struct lineedit *le)
{
    size_t at = le->cursor;

    while (at && le->buf[at - 1] == ' ')
        at--;
    while (at && le->buf[at - 1] != ' ')
        at--;
    move_left(le, le->cursor - at);
    delete_range(le, at, le->cursor - at);
    return LE_PENDING;
}

static enum le_event key_up(struct lineedit *le)
{
    if (le->hist_sel >= le->hist_count) {
        beep(le);
        return LE_PENDING;
    }
    if (le->hist_sel == 0) {
        memcpy(le->saved, le->buf, le->len + 1);
        le->saved_overlong = le->overlong;
    }
    le->hist_sel++;
    replace_line(le, hist_entry(le, le->hist_sel), false);
    return LE_PENDING;
}

static enum le_event key_down(struct lineedit *le)
{
    if (le->hist_sel == 0)
        return LE_PENDING;
    le->hist_sel--;
    if (le->hist_sel)
        replace_line(le, hist_entry(le, le->hist_sel), false);
    else
        replace_line(le, le->saved, le->saved_overlong);
    return LE_PENDING;
}

static enum le_event key_cancel(struct lineedit *le)
{
    emit_str(le, "^C\r\n");
    clear_line(le);
    le->hist_sel = 0;
    return LE_CANCEL;
}

/* CR or LF: hand the line over, or refuse it if bytes were dropped. */
static enum le_event key_enter(struct lineedit *le)
{
    bool overlong = le->overlong;

    emit(le, "\r\n", 2);
    hist_push(le, le->buf);
    memcpy(le->done, le->buf, le->len + 1);
    clear_line(le);
    le->hist_sel = 0;
    if (!overlong)
        return LE_LINE;
    le->done[0] = 0;
    emit_str(le, overlong_notice);
    return LE_REFUSED;
}

/* TAB: insert what the completer proposes; beep if it has nothing. */
static enum le_event key_tab(struct lineedit *le)
{
    char ins[LE_LINE_MAX + 1];

    if (!le->complete)
        return LE_PENDING;
    ins[0] = 0;
    if (le->complete(le->buf, le->cursor, ins, sizeof(ins), le->complete_ctx))
        le_redraw(le);
    else if (!ins[0])
        beep(le);
    for (const char *p = ins; *p; p++)
        insert_byte(le, *p);
    return LE_PENDING;
}

static enum le_event key_escape(struct lineedit *le)
{
    le->esc = LE_ESC_START;
    return LE_PENDING;
}

/* Control bytes; those not listed (NUL, ^D, ^G, ...) are ignored. */
static const le_action ctrl_keys[0x20] = {
    [CTRL('A')] = key_home,      [CTRL('B')] = key_left,      [CTRL('C')] = key_cancel,
    [CTRL('E')] = key_end,       [CTRL('F')] = key_right,     [CTRL('H')] = key_backspace,
    [CTRL('K')] = key_kill_end,  [CTRL('U')] = key_kill_line, [CTRL('W')] = key_kill_word,
    ['\r'] = key_enter,          ['\n'] = key_enter,          [ESC] = key_escape,
    ['\t'] = key_tab,
};

/* Final bytes of ESC [ ... and ESC O ... (ANSI X3.64 cursor keys, xterm Home/End). */
static const le_action final_keys[0x80] = {
    ['A'] = key_up,   ['B'] = key_down, ['C'] = key_right,
    ['D'] = key_left, ['H'] = key_home, ['F'] = key_end,
};

/* ESC [ n ~ (VT220 editing keypad): 1/7 Home, 3 Delete, 4/8 End. */
static const le_action tilde_keys[] = {
    [1] = key_home, [3] = key_delete, [4] = key_end, [7] = key_home, [8] = key_end,
};

/* ---------------------------------------------------------------- input */

static bool is_final(uint8_t b) { return b >= 0x40 && b <= 0x7e; }
static bool is_control(uint8_t b) { return b < 0x20 || b == DEL; }

static enum le_event run(struct lineedit *le, le_action a)
{
    return a ? a(le) : LE_PENDING;
}

static enum le_event csi_final(struct lineedit *le, uint8_t b)
{
    if (b != '~')
        return run(le, final_keys[b]);
    if (le->esc_param < ARRAY_SIZE(tilde_keys))
        return run(le, tilde_keys[le->esc_param]);
    return LE_PENDING;
}

/*
 * One byte inside an escape sequence. Returns true if the byte was consumed;
 * false if it broke the sequence and must be handled as ordinary input (a
 * control byte such as CR or ^C always keeps its meaning).
 */
static bool escape_byte(struct lineedit *le, uint8_t b, enum le_event *ev)
{
    enum le_esc state = le->esc;

    if (is_control(b) && b != ESC) {
        le->esc = LE_ESC_NONE;
        return false;
    }
    le->esc = LE_ESC_NONE;
    if (b == ESC) {
        le->esc = LE_ESC_START;
    } else if (state == LE_ESC_START) {
        le->esc = b == '[' ? LE_ESC_CSI : b == 'O' ? LE_ESC_SS3 : LE_ESC_NONE;
        le->esc_param = 0;
    } else if (state == LE_ESC_SS3) {
        if (b < 0x80)
            *ev = run(le, final_keys[b]);
    } else if (b >= '0' && b <= '9') {
        le->esc = LE_ESC_CSI;
        if (le->esc_param < 10000)
            le->esc_param = le->esc_param * 10 + (b - '0');
    } else if (is_final(b)) {
        *ev = csi_final(le, b);
    } else if (b < 0x80) {
        le->esc = LE_ESC_CSI; /* other parameter or intermediate byte */
    }
    return true;
}

void le_init(struct lineedit *le, le_output_fn out, void *ctx)
{
    memset(le, 0, sizeof(*le));
    le->out = out;
    le->ctx = ctx;
}

enum le_event le_feed(struct lineedit *le, uint8_t b)
{
    enum le_event ev = LE_PENDING;
    bool after_cr = le->after_cr;

    if (le->esc != LE_ESC_NONE && escape_byte(le, b, &ev))
        return ev;
    le->after_cr = b == '\r';
    if (b == '\n' && after_cr)
        return LE_PENDING; /* the LF of a CRLF pair */
    if (b < 0x20)
        return run(le, ctrl_keys[b]);
    if (b == DEL)
        return key_backspace(le);
    if (b < 0x80)
        insert_byte(le, (char)b);
    return LE_PENDING;
}

void le_set_completer(struct lineedit *le, le_complete_fn fn, void *ctx)
{
    le->complete = fn;
    le->complete_ctx = ctx;
}

const char *le_line(const struct lineedit *le) { return le->done; }

void le_redraw(struct lineedit *le)
{
    emit(le, le->buf, le->len);
    emit(le, "\x1b[K", 3);
    move_left(le, le->len - le->cursor);
}
