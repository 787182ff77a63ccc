/*
 * Console commands: tokenizer, command registry and dispatcher, argument
 * helpers. Pure code (no hardware, no allocation), unit-tested on the host.
 *
 * A command is a row of a table (struct cmd_def): a name, an optional
 * subcommand, a synopsis, one line of help, the number of arguments it takes
 * and a handler. A module adds its rows with cmd_register_table() at init,
 * without touching mgmt/:
 *
 *     static int vm_create(struct cmd_ctx *c) { ... }
 *     static const struct cmd_def vm_cmds[] = {
 *         { "vm", "create", "NAME [mem=SIZE] [cmdline=\"...\"]", "create a VM",
 *           1, 3, vm_create },
 *         { "vm", "start", "NAME", "start a created VM", 1, 1, vm_start },
 *         { "console", NULL, "NAME", "attach to a VM's serial port", 1, 1, vm_console },
 *     };
 *     static struct cmd_table vm_table = CMD_TABLE("vm", vm_cmds);
 *     ... cmd_register_table(&vm_table);
 *
 * The dispatcher finds the row by name (and subcommand when the name has
 * subcommands), checks the argument count against min_args/max_args and
 * calls the handler with the arguments after the command words. Every
 * failure prints one line starting with "error: " that says what was wrong
 * and how to do it right (usage, nearest command name, "type 'help'").
 *
 * Tokens are separated by blanks (space, tab). Double quotes group blanks
 * into a token and may stand anywhere in it: cmdline="console=ttyS0 quiet"
 * is the one token  cmdline=console=ttyS0 quiet . Inside quotes \" is a
 * quote and \\ a backslash; every other backslash is kept as written.
 * "" is an empty token. A token KEY=VALUE is an option (cmd_kv_*).
 */
#ifndef HV86_MGMT_CMD_H
#define HV86_MGMT_CMD_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CMD_LINE_MAX 255 /* bytes in a command line (= LE_LINE_MAX) */
#define CMD_MAX_ARGS 16  /* tokens in a command line, command words included */
#define CMD_ARGS_ANY 255 /* max_args: no upper limit (up to CMD_MAX_ARGS) */
#define CMD_OUT_LINE 256 /* bytes one cmd_printf() call can produce */

/* Where command output goes. The console writes it to COM1 (LF -> CRLF);
 * the unit tests collect it in a buffer. */
struct cmd_out {
    void (*write)(const char *buf, size_t len, void *ctx);
    void *ctx;
    unsigned errors; /* cmd_error() lines written so far */
};

/* The tokens of one command line. tok[] holds them NUL-separated; argv[i]
 * points into it. err holds the message of a failed cmd_tokenize(). */
struct cmd_args {
    int argc;
    char *argv[CMD_MAX_ARGS + 1]; /* argv[argc] == NULL */
    char tok[CMD_LINE_MAX + 1];
    char err[96];
};

struct cmd_def;

/* What a handler gets: its row, its arguments (the command words removed),
 * and the output. */
struct cmd_ctx {
    const struct cmd_def *def;
    int argc;
    char **argv;
    struct cmd_out *out;
};

/* Returns 0, or a negative E_* code after printing one cmd_error() line (the
 * dispatcher prints "error: NAME: E_CODE" if the handler printed none). */
typedef int (*cmd_handler)(struct cmd_ctx *c);

#define CMD_HIDDEN 0x1 /* not listed by `help` (test hooks); still runs */

struct cmd_def {
    const char *name;     /* command word, e.g. "vm" */
    const char *sub;      /* subcommand word, e.g. "create"; NULL if none */
    const char *synopsis; /* arguments, e.g. "NAME [mem=SIZE]"; "" if none */
    const char *help;     /* one line, lower case, no final period */
    uint8_t min_args;     /* arguments after the command words */
    uint8_t max_args;     /* ... at most; CMD_ARGS_ANY for no limit */
    cmd_handler fn;
    unsigned flags;       /* CMD_HIDDEN */
};

/* A registered table: caller-owned, static storage, linked by the registry. */
struct cmd_table {
    const char *group;          /* heading in `help`, e.g. "vm" */
    const struct cmd_def *defs;
    size_t ndefs;
    struct cmd_table *next;     /* registry link, set by cmd_register_table */
};
#define CMD_TABLE(group, defs) { (group), (defs), sizeof(defs) / sizeof((defs)[0]), 0 }

/*
 * cmd_register_table - add t's commands to the console. t and its rows must
 * stay valid for ever (static storage). Call at init, before console_start()
 * or from the console thread: the registry takes no lock. Rows of one name
 * must all have a subcommand or be a single row without one.
 * Returns 0; E_INVAL for a row without name or handler, min_args > max_args,
 * or a name that mixes rows with and without subcommands across tables;
 * E_EXIST if a (name, sub) pair is already registered or t is already in
 * the registry. On error nothing is registered.
 */
int cmd_register_table(struct cmd_table *t);

/*
 * cmd_tokenize - split line (NUL-terminated) into a->argv. Returns 0;
 * E_TOOBIG for a line over CMD_LINE_MAX bytes or more than CMD_MAX_ARGS
 * tokens; E_INVAL for an unterminated quote. On error a->err holds a one-line
 * message (no "error: " prefix, no newline) and a->argc is 0.
 */
int cmd_tokenize(const char *line, struct cmd_args *a);

/*
 * cmd_run - tokenize line, find the command and call it; all output, errors
 * included, goes to out. A blank line does nothing. Returns the handler's
 * result, 0 for a blank line, or the negative E_* code of the failure
 * (E_INVAL, E_TOOBIG, E_NOENT for an unknown command or subcommand).
 */
int cmd_run(const char *line, struct cmd_out *out);

/* cmd_dispatch - cmd_run() for an already tokenized line. */
int cmd_dispatch(int argc, char **argv, struct cmd_out *out);

/* Formatted output (kernel printf subset); one call writes at most
 * CMD_OUT_LINE - 1 bytes, longer output is cut. */
void cmd_printf(struct cmd_out *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* One error line: "error: " + message + "\n". Counts in out->errors. */
void cmd_error(struct cmd_out *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Print the usage line of c's command: "usage: vm create NAME [mem=SIZE]". */
void cmd_usage(struct cmd_ctx *c);

/*
 * cmd_suggest - the registered command name nearest to word by edit distance
 * (insert, delete, substitute, swap of neighbours count 1), if close enough
 * to be a likely typo (distance <= 2 and shorter than word); otherwise NULL.
 * Hidden commands are never suggested.
 */
const char *cmd_suggest(const char *word);

/* cmd_edit_distance - optimal-string-alignment distance of a and b (bytes;
 * strings longer than 32 bytes compare only their first 32). */
unsigned cmd_edit_distance(const char *a, const char *b);

/*
 * cmd_complete - tab completion of the command word, or of the subcommand
 * after a command that has subcommands, ending at cursor in line. Writes to
 * ins (size bytes) what to insert: the rest of the only visible match and a
 * blank, or what all matches share beyond the typed prefix. When several
 * match and they share nothing more, writes them to list (if not NULL) as
 * "\n" + one line of names + "\n". Returns the number of matches (0 when the
 * cursor is not at the end of such a word).
 */
int cmd_complete(const char *line, size_t cursor, char *ins, size_t size, struct cmd_out *list);

/*
 * cmd_parse_u64 - a number: decimal, or hex with 0x/0X. Returns 0 and *v;
 * E_INVAL for an empty string, junk or a sign; E_RANGE if it does not fit.
 */
int cmd_parse_u64(const char *s, uint64_t *v);
/* cmd_parse_u32 - as cmd_parse_u64, E_RANGE above 0xFFFFFFFF. */
int cmd_parse_u32(const char *s, uint32_t *v);

/*
 * cmd_parse_size - a byte count: a number (as cmd_parse_u64) with an optional
 * binary suffix K, M, G or T (x 2^10 .. 2^40), upper or lower case, optionally
 * followed by "B" or "iB": 64M, 512K, 1G, 0x10, 4096, 2MiB. Returns 0 and
 * *bytes; E_INVAL for junk, E_RANGE on overflow of 64 bits.
 */
int cmd_parse_size(const char *s, uint64_t *bytes);

/*
 * cmd_get_size, cmd_get_u32 - cmd_parse_size / cmd_parse_u32 for a handler:
 * on failure print one error line naming what (e.g. "mem") with a hint, such
 * as "error: mem: '64X' is not a size (e.g. 64M, 512K, 1G, 0x100000)", and
 * return the E_* code; on success store the value and return 0.
 */
int cmd_get_size(struct cmd_out *out, const char *what, const char *text, uint64_t *bytes);
int cmd_get_u32(struct cmd_out *out, const char *what, const char *text, uint32_t *v);

/*
 * cmd_kv_split - if tok is KEY=VALUE with KEY made of letters, digits, '_'
 * and '-' (first a letter), return the length of KEY and set *value to the
 * text after the first '='; otherwise return 0.
 */
size_t cmd_kv_split(const char *tok, const char **value);
/* cmd_kv_get - the value of the last argument KEY=... among argv[0..argc),
 * or NULL if there is none. */
const char *cmd_kv_get(int argc, char **argv, const char *key);
/* cmd_kv_get_nth - the value of the nth (0-based) argument KEY=..., or NULL. */
const char *cmd_kv_get_nth(int argc, char **argv, const char *key, int nth);
/*
 * cmd_kv_check - every KEY=VALUE among argv[0..argc) must have a key listed in
 * keys (NULL-terminated) and appear once, unless the listed key ends in '+'
 * ("disk+": may repeat; the '+' is not part of the name). Returns 0, or
 * prints one error line ("unknown option 'x' (options: mem, cmdline)") and
 * returns E_INVAL.
 */
int cmd_kv_check(int argc, char **argv, const char *const *keys, struct cmd_out *out);

#ifdef HV86_HOSTED
/* Unit tests only: forget every table but the built-in one. */
void cmd_reset_registry(void);
#endif

#endif
