/*
 * Command registry, tokenizer and dispatcher; the contracts are in cmd.h.
 *
 * Map of this file:
 *   output         cmd_printf, cmd_error, cmd_usage
 *   registry       the list of tables, iteration, cmd_register_table
 *   tokenizer      cmd_tokenize
 *   suggestions    edit distance, nearest name, joined name lists
 *   completion     TAB: command words and subcommands
 *   dispatch       cmd_dispatch, cmd_run
 *   numbers        cmd_parse_u64/u32/size
 *   options        KEY=VALUE helpers
 *   help           the built-in `help` command, always the first table
 */
#include "mgmt/cmd.h"
#include "kernel/kernel.h"

/* ---------------------------------------------------------------- output */

static void out_vprintf(struct cmd_out *out, const char *fmt, va_list ap)
{
    char buf[CMD_OUT_LINE];
    int n = vsnprintf(buf, sizeof(buf), fmt, ap);

    if (n > 0)
        out->write(buf, MIN((size_t)n, sizeof(buf) - 1), out->ctx);
}

void cmd_printf(struct cmd_out *out, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    out_vprintf(out, fmt, ap);
    va_end(ap);
}

void cmd_error(struct cmd_out *out, const char *fmt, ...)
{
    va_list ap;

    out->write("error: ", 7, out->ctx);
    va_start(ap, fmt);
    out_vprintf(out, fmt, ap);
    va_end(ap);
    out->write("\n", 1, out->ctx);
    out->errors++;
}

/* "vm create" or "uptime": the words that select d; with synopsis, its
 * whole usage "vm create NAME [mem=SIZE]". */
static const char *def_words(const struct cmd_def *d, char *buf, size_t size, bool synopsis)
{
    const char *syn = synopsis ? d->synopsis : "";

    snprintf(buf, size, "%s%s%s%s%s", d->name, d->sub ? " " : "", d->sub ? d->sub : "",
             syn[0] ? " " : "", syn);
    return buf;
}

void cmd_usage(struct cmd_ctx *c)
{
    char usage[80];

    cmd_printf(c->out, "usage: %s\n", def_words(c->def, usage, sizeof(usage), true));
}

/* ---------------------------------------------------------------- registry */

static void cmd_help_list(struct cmd_out *out);
static int cmd_help(struct cmd_ctx *c);

static const struct cmd_def builtin_defs[] = {
    { "help", NULL, "[CMD [SUB]]", "list commands, or describe one", 0, 2, cmd_help, 0 },
};
static struct cmd_table builtin_table = CMD_TABLE("console", builtin_defs);
static struct cmd_table *tables = &builtin_table;

struct def_iter {
    const struct cmd_table *t;
    size_t i;
};

static const struct cmd_def *def_next(struct def_iter *it)
{
    while (it->t) {
        if (it->i < it->t->ndefs)
            return &it->t->defs[it->i++];
        it->t = it->t->next;
        it->i = 0;
    }
    return NULL;
}

#define FOR_EACH_DEF(d, it) for (struct def_iter it = { tables, 0 }; ((d) = def_next(&it));)

static bool same_sub(const char *a, const char *b)
{
    return (!a && !b) || (a && b && !strcmp(a, b));
}

/* The row for (name, sub); sub NULL finds the first row of name. */
static const struct cmd_def *def_find(const char *name, const char *sub, bool any_sub)
{
    const struct cmd_def *d;

    FOR_EACH_DEF(d, it) {
        if (!strcmp(d->name, name) && (any_sub || same_sub(d->sub, sub)))
            return d;
    }
    return NULL;
}

/* Does row d clash with registered row o: same words, or one name used both
 * with and without subcommands? Returns 0 or the E_* code. */
static int def_clash(const struct cmd_def *d, const struct cmd_def *o)
{
    if (strcmp(d->name, o->name))
        return 0;
    if (same_sub(d->sub, o->sub))
        return E_EXIST;
    return (!d->sub || !o->sub) ? E_INVAL : 0;
}

static int def_check(const struct cmd_table *t, size_t i)
{
    const struct cmd_def *d = &t->defs[i], *o;
    int err = 0;

    if (!d->name || !d->fn || !d->synopsis || !d->help || d->min_args > d->max_args)
        return E_INVAL;
    FOR_EACH_DEF(o, it) {
        if ((err = def_clash(d, o)))
            return err;
    }
    for (size_t j = 0; j < i && !err; j++)
        err = def_clash(d, &t->defs[j]);
    return err;
}

int cmd_register_table(struct cmd_table *t)
{
    struct cmd_table **link = &tables;
    int err;

    for (; *link; link = &(*link)->next) {
        if (*link == t)
            return E_EXIST;
    }
    for (size_t i = 0; i < t->ndefs; i++) {
        if ((err = def_check(t, i)))
            return err;
    }
    t->next = NULL;
    *link = t;
    return 0;
}

#ifdef HV86_HOSTED
void cmd_reset_registry(void)
{
    builtin_table.next = NULL;
    tables = &builtin_table;
}
#endif

/* ---------------------------------------------------------------- tokenizer */

static bool is_blank(char c) { return c == ' ' || c == '\t'; }

static int tok_fail(struct cmd_args *a, int err, const char *fmt, int n)
{
    snprintf(a->err, sizeof(a->err), fmt, n);
    a->argc = 0;
    a->argv[0] = NULL;
    return err;
}

/* Copy one token from *pp to *wp, removing quotes and escapes. Returns the
 * offset of an unterminated opening quote in line, or -1. */
static int scan_token(const char *line, const char **pp, char **wp)
{
    const char *p = *pp, *open = NULL;
    char *w = *wp;

    for (; *p && (open || !is_blank(*p)); p++) {
        if (*p == '"') {
            open = open ? NULL : p;
            continue;
        }
        if (open && *p == '\\' && (p[1] == '"' || p[1] == '\\'))
            p++;
        *w++ = *p;
    }
    *w++ = 0;
    *pp = p;
    *wp = w;
    return open ? (int)(open - line) : -1;
}

int cmd_tokenize(const char *line, struct cmd_args *a)
{
    const char *p = line;
    char *w = a->tok;
    int open;

    a->argc = 0;
    a->err[0] = 0;
    if (strnlen(line, CMD_LINE_MAX + 1) > CMD_LINE_MAX)
        return tok_fail(a, E_TOOBIG, "line longer than %d bytes", CMD_LINE_MAX);
    for (;;) {
        while (is_blank(*p))
            p++;
        if (!*p)
            break;
        if (a->argc == CMD_MAX_ARGS)
            return tok_fail(a, E_TOOBIG,
                            "more than %d arguments (quote text that belongs together)",
                            CMD_MAX_ARGS);
        a->argv[a->argc++] = w;
        if ((open = scan_token(line, &p, &w)) >= 0)
            return tok_fail(a, E_INVAL,
                            "unterminated quote at column %d "
                            "(add a closing \", or \\\" for a quote)",
                            open + 1);
    }
    a->argv[a->argc] = NULL;
    return 0;
}

/* ---------------------------------------------------------------- suggestions */

#define DIST_MAX 32

unsigned cmd_edit_distance(const char *a, const char *b)
{
    uint8_t d[DIST_MAX + 1][DIST_MAX + 1];
    size_t la = strnlen(a, DIST_MAX), lb = strnlen(b, DIST_MAX);

    for (size_t i = 0; i <= la; i++)
        d[i][0] = (uint8_t)i;
    for (size_t j = 0; j <= lb; j++)
        d[0][j] = (uint8_t)j;
    for (size_t i = 1; i <= la; i++) {
        for (size_t j = 1; j <= lb; j++) {
            unsigned cost = a[i - 1] != b[j - 1];
            unsigned best = MIN(d[i - 1][j] + 1u, d[i][j - 1] + 1u);
            best = MIN(best, d[i - 1][j - 1] + cost);
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
                best = MIN(best, d[i - 2][j - 2] + 1u);
            d[i][j] = (uint8_t)best;
        }
    }
    return d[la][lb];
}

/* The visible command name (of_name NULL) or subcommand of of_name nearest
 * to word, if it is a likely typo. */
static const char *nearest(const char *word, const char *of_name)
{
    const char *best = NULL;
    unsigned best_d = 3, len = strnlen(word, DIST_MAX);
    const struct cmd_def *d;

    FOR_EACH_DEF(d, it) {
        const char *cand = of_name ? d->sub : d->name;
        if ((d->flags & CMD_HIDDEN) || !cand || (of_name && strcmp(d->name, of_name)))
            continue;
        unsigned dist = cmd_edit_distance(word, cand);
        if (dist < best_d && dist < len) {
            best = cand;
            best_d = dist;
        }
    }
    return best;
}

const char *cmd_suggest(const char *word) { return nearest(word, NULL); }

/* Append s to buf (size bytes) with ", " between entries; cut if full. */
static void join(char *buf, size_t size, const char *s)
{
    size_t n = strlen(buf);

    if (n + 1 < size)
        snprintf(buf + n, size - n, "%s%s", n ? ", " : "", s);
}

static void sub_list(const char *name, char *buf, size_t size)
{
    const struct cmd_def *d;

    buf[0] = 0;
    FOR_EACH_DEF(d, it) {
        if (!strcmp(d->name, name) && d->sub && !(d->flags & CMD_HIDDEN))
            join(buf, size, d->sub);
    }
}

/* ---------------------------------------------------------------- completion */

#define COMPLETE_MAX 64 /* distinct names one completion considers */

struct matches {
    const char *name[COMPLETE_MAX];
    int n;
};

static void add_match(struct matches *m, const char *s)
{
    for (int i = 0; i < m->n; i++) {
        if (!strcmp(m->name[i], s))
            return;
    }
    if (m->n < COMPLETE_MAX)
        m->name[m->n++] = s;
}

/* Visible names (of_name NULL) or subcommands of of_name starting with
 * prefix[0..len). */
static void find_matches(struct matches *m, const char *prefix, size_t len, const char *of_name)
{
    const struct cmd_def *d;

    m->n = 0;
    FOR_EACH_DEF(d, it) {
        const char *cand = of_name ? d->sub : d->name;
        if ((d->flags & CMD_HIDDEN) || !cand || (of_name && strcmp(d->name, of_name)))
            continue;
        if (!strncmp(cand, prefix, len))
            add_match(m, cand);
    }
}

/* Length of the prefix all matches share. */
static size_t common_len(const struct matches *m)
{
    size_t n = strlen(m->name[0]);

    for (int i = 1; i < m->n; i++) {
        size_t k = 0;
        while (k < n && m->name[i][k] == m->name[0][k])
            k++;
        n = k;
    }
    return n;
}

static void list_matches(const struct matches *m, struct cmd_out *list)
{
    cmd_printf(list, "\n");
    for (int i = 0; i < m->n; i++)
        cmd_printf(list, "%s%s", i ? "  " : "", m->name[i]);
    cmd_printf(list, "\n");
}

int cmd_complete(const char *line, size_t cursor, char *ins, size_t size, struct cmd_out *list)
{
    char before[CMD_LINE_MAX + 1];
    struct cmd_args words;
    size_t start = cursor, common;
    struct matches m;

    ins[0] = 0;
    while (start && !is_blank(line[start - 1]))
        start--;
    if ((line[cursor] && !is_blank(line[cursor])) || start > CMD_LINE_MAX)
        return 0;
    memcpy(before, line, start); /* the words before the one completed */
    before[start] = 0;
    if (cmd_tokenize(before, &words) || words.argc > 1)
        return 0;
    find_matches(&m, line + start, cursor - start, words.argc ? words.argv[0] : NULL);
    if (!m.n)
        return 0;
    common = common_len(&m);
    snprintf(ins, size, "%.*s%s", (int)(common - (cursor - start)), m.name[0] + cursor - start,
             m.n == 1 ? " " : "");
    if (m.n > 1 && !ins[0] && list)
        list_matches(&m, list);
    return m.n;
}

/* ---------------------------------------------------------------- dispatch */

static int unknown_command(const char *word, struct cmd_out *out)
{
    const char *near = cmd_suggest(word);

    if (near)
        cmd_error(out, "unknown command '%s' (did you mean '%s'? type 'help' for a list)", word,
                  near);
    else
        cmd_error(out, "unknown command '%s' (type 'help' for a list)", word);
    return E_NOENT;
}

static int bad_subcommand(const char *name, const char *word, struct cmd_out *out)
{
    char subs[120];
    const char *near = word ? nearest(word, name) : NULL;

    sub_list(name, subs, sizeof(subs));
    if (!word)
        cmd_error(out, "%s: missing subcommand (one of: %s)", name, subs);
    else if (near)
        cmd_error(out, "%s: unknown subcommand '%s' (did you mean '%s'? one of: %s)", name, word,
                  near, subs);
    else
        cmd_error(out, "%s: unknown subcommand '%s' (one of: %s)", name, word, subs);
    return word ? E_NOENT : E_INVAL;
}

static int bad_count(const struct cmd_def *d, int n, struct cmd_out *out)
{
    char words[48], usage[80];

    cmd_error(out, "%s: %s arguments (usage: %s)", def_words(d, words, sizeof(words), false),
              n < d->min_args ? "missing" : "too many", def_words(d, usage, sizeof(usage), true));
    return E_INVAL;
}

static int call(const struct cmd_def *d, int argc, char **argv, struct cmd_out *out)
{
    struct cmd_ctx c = { d, argc, argv, out };
    unsigned errors = out->errors;
    char words[48];
    int err;

    if (argc < d->min_args || (d->max_args != CMD_ARGS_ANY && argc > d->max_args))
        return bad_count(d, argc, out);
    err = d->fn(&c);
    if (err < 0 && out->errors == errors)
        cmd_error(out, "%s: %s", def_words(d, words, sizeof(words), false), err_name(err));
    return err;
}

int cmd_dispatch(int argc, char **argv, struct cmd_out *out)
{
    const struct cmd_def *d;

    if (argc == 0)
        return 0;
    if (!(d = def_find(argv[0], NULL, true)))
        return unknown_command(argv[0], out);
    if (!d->sub)
        return call(d, argc - 1, argv + 1, out);
    if (argc < 2 || !(d = def_find(argv[0], argv[1], false)))
        return bad_subcommand(argv[0], argc < 2 ? NULL : argv[1], out);
    return call(d, argc - 2, argv + 2, out);
}

int cmd_run(const char *line, struct cmd_out *out)
{
    static struct cmd_args args; /* one console thread: keep 400 bytes off its stack */
    int err = cmd_tokenize(line, &args);

    if (err) {
        cmd_error(out, "%s", args.err);
        return err;
    }
    return cmd_dispatch(args.argc, args.argv, out);
}

/* ---------------------------------------------------------------- numbers */

static unsigned digit_value(char c)
{
    if (c >= '0' && c <= '9')
        return (unsigned)(c - '0');
    if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
        return (unsigned)((c | 0x20) - 'a' + 10);
    return 99;
}

/* Parse the number at the start of s; *end gets the first byte after it. */
static int parse_prefix(const char *s, uint64_t *v, const char **end)
{
    unsigned base = 10, dv;
    uint64_t x = 0;

    if (s[0] == '0' && (s[1] | 0x20) == 'x') {
        base = 16;
        s += 2;
    }
    if (digit_value(*s) >= base)
        return E_INVAL;
    for (; (dv = digit_value(*s)) < base; s++) {
        if (x > (UINT64_MAX - dv) / base)
            return E_RANGE;
        x = x * base + dv;
    }
    *v = x;
    *end = s;
    return 0;
}

int cmd_parse_u64(const char *s, uint64_t *v)
{
    const char *end;
    uint64_t x;
    int err = parse_prefix(s, &x, &end);

    if (err)
        return err;
    if (*end)
        return E_INVAL;
    *v = x;
    return 0;
}

int cmd_parse_u32(const char *s, uint32_t *v)
{
    uint64_t x;
    int err = cmd_parse_u64(s, &x);

    if (err)
        return err;
    if (x > UINT32_MAX)
        return E_RANGE;
    *v = (uint32_t)x;
    return 0;
}

/* Binary size suffixes: letter -> shift. */
static const struct {
    char letter;
    uint8_t shift;
} size_suffixes[] = { { 'k', 10 }, { 'm', 20 }, { 'g', 30 }, { 't', 40 } };

static int suffix_shift(const char *s, unsigned *shift)
{
    *shift = 0;
    if (!*s)
        return 0;
    for (size_t i = 0; i < ARRAY_SIZE(size_suffixes); i++) {
        if ((*s | 0x20) == size_suffixes[i].letter)
            *shift = size_suffixes[i].shift;
    }
    if (!*shift)
        return E_INVAL;
    s++;
    if ((*s | 0x20) == 'i')
        s++;
    if ((*s | 0x20) == 'b')
        s++;
    return *s ? E_INVAL : 0;
}

int cmd_parse_size(const char *s, uint64_t *bytes)
{
    const char *end;
    unsigned shift;
    uint64_t x;
    int err = parse_prefix(s, &x, &end);

    if (err)
        return err;
    if ((err = suffix_shift(end, &shift)))
        return err;
    if (shift && (x >> (64 - shift)))
        return E_RANGE;
    *bytes = x << shift;
    return 0;
}

int cmd_get_size(struct cmd_out *out, const char *what, const char *text, uint64_t *bytes)
{
    int err = cmd_parse_size(text, bytes);

    if (err == E_RANGE)
        cmd_error(out, "%s: '%s' is too large (at most 16777215T)", what, text);
    else if (err)
        cmd_error(out, "%s: '%s' is not a size (e.g. 64M, 512K, 1G, 0x100000)", what, text);
    return err;
}

int cmd_get_u32(struct cmd_out *out, const char *what, const char *text, uint32_t *v)
{
    int err = cmd_parse_u32(text, v);

    if (err == E_RANGE)
        cmd_error(out, "%s: '%s' is too large (at most 4294967295)", what, text);
    else if (err)
        cmd_error(out, "%s: '%s' is not a number (decimal, or hex with 0x)", what, text);
    return err;
}

/* ---------------------------------------------------------------- options */

static bool is_alpha(char c) { return (c | 0x20) >= 'a' && (c | 0x20) <= 'z'; }
static bool is_key_char(char c)
{
    return is_alpha(c) || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

size_t cmd_kv_split(const char *tok, const char **value)
{
    size_t n = 0;

    if (!is_alpha(tok[0]))
        return 0;
    while (is_key_char(tok[n]))
        n++;
    if (tok[n] != '=')
        return 0;
    *value = tok + n + 1;
    return n;
}

/* Does the n-byte key of tok name key? A trailing '+' in key (repeatable)
 * is not part of its name. */
static bool key_is(const char *tok, size_t n, const char *key)
{
    size_t len = strlen(key);
    if (len && key[len - 1] == '+')
        len--;
    return len == n && !strncmp(tok, key, n);
}

const char *cmd_kv_get_nth(int argc, char **argv, const char *key, int nth)
{
    const char *v;
    size_t n;

    for (int i = 0; i < argc; i++) {
        if ((n = cmd_kv_split(argv[i], &v)) && key_is(argv[i], n, key) && nth-- == 0)
            return v;
    }
    return NULL;
}

const char *cmd_kv_get(int argc, char **argv, const char *key)
{
    const char *v, *found = NULL;
    size_t n;

    for (int i = 0; i < argc; i++) {
        if ((n = cmd_kv_split(argv[i], &v)) && key_is(argv[i], n, key))
            found = v;
    }
    return found;
}

/* The entry of keys that tok's n-byte key names, or NULL. */
static const char *key_known(const char *tok, size_t n, const char *const *keys)
{
    for (; *keys; keys++) {
        if (key_is(tok, n, *keys))
            return *keys;
    }
    return NULL;
}

int cmd_kv_check(int argc, char **argv, const char *const *keys, struct cmd_out *out)
{
    char list[120] = "";
    const char *v;
    size_t n;

    for (int i = 0; i < argc; i++) {
        if (!(n = cmd_kv_split(argv[i], &v)))
            continue;
        const char *key = key_known(argv[i], n, keys);
        if (!key) {
            for (const char *const *k = keys; *k; k++)
                join(list, sizeof(list), *k);
            cmd_error(out, "unknown option '%.*s' (options: %s)", (int)n, argv[i], list);
            return E_INVAL;
        }
        for (int j = 0; j < i && key[strlen(key) - 1] != '+'; j++) {
            if (!strncmp(argv[j], argv[i], n + 1)) {
                cmd_error(out, "option '%.*s' given twice (keep one)", (int)n, argv[i]);
                return E_INVAL;
            }
        }
    }
    return 0;
}

/* ---------------------------------------------------------------- help */

static void help_row(struct cmd_out *out, const struct cmd_def *d)
{
    char usage[80];

    cmd_printf(out, "  %-36s %s\n", def_words(d, usage, sizeof(usage), true), d->help);
}

static void cmd_help_list(struct cmd_out *out)
{
    for (const struct cmd_table *t = tables; t; t = t->next) {
        cmd_printf(out, "%s commands:\n", t->group);
        for (size_t i = 0; i < t->ndefs; i++) {
            if (!(t->defs[i].flags & CMD_HIDDEN))
                help_row(out, &t->defs[i]);
        }
    }
    cmd_printf(out, "sizes take K, M, G suffixes; numbers may be 0x hex; "
                    "quote arguments with blanks: key=\"a b\"\n");
}

/* `help NAME [SUB]`: every row of NAME, or the one row of NAME SUB. */
static int cmd_help(struct cmd_ctx *c)
{
    const char *name = c->argc ? c->argv[0] : NULL, *sub = c->argc > 1 ? c->argv[1] : NULL;
    const struct cmd_def *d;
    int shown = 0;

    if (!name) {
        cmd_help_list(c->out);
        return 0;
    }
    if (!(d = def_find(name, NULL, true)))
        return unknown_command(name, c->out);
    if (sub && !d->sub) {
        cmd_error(c->out, "'%s' has no subcommands (try 'help %s')", name, name);
        return E_INVAL;
    }
    FOR_EACH_DEF(d, it) {
        if (!strcmp(d->name, name) && (!sub || same_sub(d->sub, sub))) {
            help_row(c->out, d);
            shown++;
        }
    }
    return shown ? 0 : bad_subcommand(name, sub, c->out);
}
