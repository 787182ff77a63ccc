/*
 * Line editor for the serial management console.
 *
 * A pure state machine: the console feeds it one received byte at a time and
 * it answers with terminal output (echo, cursor moves, erase sequences) through
 * a callback, and with an event when a line is complete. It touches no
 * hardware, so the host unit tests drive it with scripted byte streams.
 *
 * Keys understood (VT100/ANSI terminals, as sent by minicom, screen, picocom):
 *   printable ASCII      insert at the cursor
 *   BS (0x08), DEL 0x7F  delete the character left of the cursor
 *   ESC [ 3 ~            delete the character under the cursor
 *   ^A, Home / ^E, End   cursor to start / end of line
 *   ^B, Left / ^F, Right cursor one character left / right
 *   ^K                   delete from the cursor to the end of the line
 *   ^U                   delete the whole line
 *   ^W                   delete the word left of the cursor
 *   ^C                   cancel the line (prints ^C, returns LE_CANCEL)
 *   TAB                  ask the completer (le_set_completer), if any
 *   Up / Down            browse the history (LE_HISTORY entries)
 *   CR, LF, CRLF         end the line (CRLF counts once)
 * Escape sequences are ESC [ params final or ESC O final; unknown or broken
 * ones are swallowed, never inserted. NUL, other control bytes and bytes
 * >= 0x80 are ignored. Terminal output uses only BS, BEL, ESC [ n C/D and
 * ESC [ K, which every VT100 descendant knows.
 *
 * A line may hold at most LE_LINE_MAX bytes. Bytes typed past that are
 * dropped with one BEL; when such a line is ended it is refused (LE_REFUSED),
 * with a one-line notice, rather than run truncated, and its first
 * LE_LINE_MAX bytes go to the history so the user can recall and fix it.
 */
#ifndef HV86_MGMT_LINEEDIT_H
#define HV86_MGMT_LINEEDIT_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LE_LINE_MAX 255 /* bytes of text in one line, without the NUL */
#define LE_HISTORY  32  /* lines kept for Up/Down */

/* Terminal output: len bytes at buf, not NUL-terminated. */
typedef void (*le_output_fn)(const char *buf, size_t len, void *ctx);

/*
 * Tab completion: line is the text (NUL-terminated), cursor the insertion
 * point. Write the text to insert at the cursor into ins (size bytes,
 * NUL-terminated; "" for nothing). Return true if the completer wrote lines
 * of its own on the terminal (a list of choices) and ended with a fresh
 * prompt, so that the editor must write the line again after it.
 */
typedef bool (*le_complete_fn)(const char *line, size_t cursor, char *ins, size_t size, void *ctx);

/* What le_feed() reports after one byte. */
enum le_event {
    LE_PENDING, /* still editing */
    LE_LINE,    /* a line is complete: le_line() returns it */
    LE_CANCEL,  /* ^C: the line was thrown away */
    LE_REFUSED, /* the line was longer than LE_LINE_MAX and was not accepted */
};

/* Escape-sequence parser states (private to lineedit.c). */
enum le_esc { LE_ESC_NONE, LE_ESC_START, LE_ESC_CSI, LE_ESC_SS3 };

struct lineedit {
    char buf[LE_LINE_MAX + 1];  /* line being edited, NUL-terminated */
    size_t len;                 /* bytes in buf */
    size_t cursor;              /* insertion point, 0..len */
    bool overlong;              /* bytes were dropped from this line */
    bool after_cr;              /* last byte was CR: a following LF is its pair */
    enum le_esc esc;            /* escape-sequence state */
    uint32_t esc_param;         /* numeric parameter of a CSI sequence */
    char done[LE_LINE_MAX + 1]; /* the last completed line */
    char hist[LE_HISTORY][LE_LINE_MAX + 1]; /* ring of past lines */
    unsigned hist_count;        /* entries in hist, 0..LE_HISTORY */
    unsigned hist_next;         /* slot the next entry goes to */
    unsigned hist_sel;          /* 0: the live line; k: k-th most recent entry */
    char saved[LE_LINE_MAX + 1]; /* the live line while browsing history */
    bool saved_overlong;        /* ... and whether it had dropped bytes */
    le_output_fn out;
    void *ctx;
    le_complete_fn complete;    /* NULL: TAB is ignored */
    void *complete_ctx;
};

/*
 * le_init - reset le to an empty line and an empty history. out(buf, len, ctx)
 * receives all terminal output; it must not call back into le. le is caller
 * storage (about 9 KiB: keep it off small stacks); nothing is allocated.
 */
void le_init(struct lineedit *le, le_output_fn out, void *ctx);

/*
 * le_feed - process one received byte. Returns an le_event. After LE_LINE the
 * completed line is available from le_line() until the next le_feed(); the
 * editor is already empty again and ready for the next line. On LE_LINE,
 * LE_CANCEL and LE_REFUSED the editor has written "\r\n" (after a notice for
 * LE_REFUSED), so the caller prints its output and then the next prompt.
 */
enum le_event le_feed(struct lineedit *le, uint8_t byte);

/* le_set_completer - use fn (NULL: none) for TAB; ctx is passed to it. */
void le_set_completer(struct lineedit *le, le_complete_fn fn, void *ctx);

/* le_line - the last completed line (NUL-terminated, at most LE_LINE_MAX bytes). */
const char *le_line(const struct lineedit *le);

/*
 * le_redraw - write the current line again and put the terminal cursor back
 * where the editor's cursor is. For the console after it printed the prompt
 * anew in the middle of an edit (e.g. when a detached client left).
 */
void le_redraw(struct lineedit *le);

#endif
