/* Unit tests of the console command layer: tokenizer, registry, dispatch,
 * numbers and sizes, options, help, status formats (mgmt/cmd.c, format.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>
#include "kernel/kernel.h"
#include "mgmt/cmd.h"
#include "mgmt/format.h"

/* The kernel's err_name lives in kernel/lib.c (freestanding only). */
const char *err_name(int err) { return err == E_BUSY ? "E_BUSY" : "E_OTHER"; }

static char out_buf[16384];
static size_t out_len;
static struct cmd_out out;

static void capture(const char *buf, size_t len, void *ctx)
{
    (void)ctx;
    if (out_len + len < sizeof(out_buf)) {
        memcpy(out_buf + out_len, buf, len);
        out_len += len;
        out_buf[out_len] = 0;
    }
}

/* ---------------------------------------------------------------- a test table */

static int last_argc;
static char last_args[256];

static int record(struct cmd_ctx *c)
{
    last_argc = c->argc;
    last_args[0] = 0;
    for (int i = 0; i < c->argc; i++)
        snprintf(last_args + strlen(last_args), sizeof(last_args) - strlen(last_args), "[%s]",
                 c->argv[i]);
    cmd_printf(c->out, "ran %s%s%s\n", c->def->name, c->def->sub ? " " : "",
               c->def->sub ? c->def->sub : "");
    return 0;
}

static int fails_quietly(struct cmd_ctx *c) { return E_BUSY; }

static const struct cmd_def test_defs[] = {
    { "uptime", NULL, "", "time since boot", 0, 0, record, 0 },
    { "disks", NULL, "", "list disks", 0, 0, record, 0 },
    { "echo", NULL, "[ARG...]", "print arguments", 0, CMD_ARGS_ANY, record, CMD_HIDDEN },
    { "busy", NULL, "", "always busy", 0, 0, fails_quietly, 0 },
};
static const struct cmd_def vm_defs[] = {
    { "vm", "create", "NAME [mem=SIZE] [cmdline=\"...\"]", "create a VM", 1, 3, record, 0 },
    { "vm", "start", "NAME", "start a VM", 1, 1, record, 0 },
    { "vm", "stop", "NAME", "stop a VM", 1, 1, record, 0 },
    { "vm", "list", "", "list VMs", 0, 0, record, 0 },
};
static struct cmd_table test_table = CMD_TABLE("core", test_defs);
static struct cmd_table vm_table = CMD_TABLE("vm", vm_defs);

static int setup(void **state)
{
    (void)state;
    cmd_reset_registry();
    assert_int_equal(cmd_register_table(&test_table), 0);
    assert_int_equal(cmd_register_table(&vm_table), 0);
    out = (struct cmd_out){ capture, NULL, 0 };
    out_len = 0;
    out_buf[0] = 0;
    last_argc = -1;
    last_args[0] = 0;
    return 0;
}

/* ---------------------------------------------------------------- tokenizer */

static struct cmd_args args;

static void assert_tokens(const char *line, int argc, const char *const *want)
{
    assert_int_equal(cmd_tokenize(line, &args), 0);
    assert_int_equal(args.argc, argc);
    for (int i = 0; i < argc; i++)
        assert_string_equal(args.argv[i], want[i]);
    assert_null(args.argv[argc]);
}

static void test_tokenize_blanks(void **state)
{
    const char *const want[] = { "vm", "start", "a" };
    assert_tokens("  vm\tstart   a  ", 3, want);
    assert_tokens("", 0, want);
    assert_tokens(" \t  ", 0, want);
}

static void test_tokenize_quotes_and_escapes(void **state)
{
    const char *const want[] = { "say", "hello world", "a\"b", "c\\d", "", "e\\nf", "xy z" };
    assert_tokens("say \"hello world\" \"a\\\"b\" \"c\\\\d\" \"\" \"e\\nf\" x\"y z\"", 7, want);
}

static void test_tokenize_key_value(void **state)
{
    const char *const want[] = { "vm", "create", "lin", "mem=64M", "cmdline=console=ttyS0 quiet" };
    assert_tokens("vm create lin mem=64M cmdline=\"console=ttyS0 quiet\"", 5, want);
}

static void test_tokenize_unterminated_quote(void **state)
{
    assert_int_equal(cmd_tokenize("vm create \"lin", &args), E_INVAL);
    assert_int_equal(args.argc, 0);
    assert_string_equal(args.err,
                        "unterminated quote at column 11 (add a closing \", or \\\" for a quote)");
    assert_int_equal(cmd_tokenize("x \"a\\\"", &args), E_INVAL); /* escaped quote does not close */
}

static void test_tokenize_too_many_args(void **state)
{
    char line[CMD_LINE_MAX + 1] = "";
    for (int i = 0; i < CMD_MAX_ARGS; i++)
        strcat(line, "a ");
    assert_int_equal(cmd_tokenize(line, &args), 0);
    assert_int_equal(args.argc, CMD_MAX_ARGS);
    strcat(line, "b");
    assert_int_equal(cmd_tokenize(line, &args), E_TOOBIG);
    assert_string_equal(args.err, "more than 16 arguments (quote text that belongs together)");
}

static void test_tokenize_too_long(void **state)
{
    char line[CMD_LINE_MAX + 2];
    memset(line, 'x', sizeof(line) - 1);
    line[sizeof(line) - 1] = 0;
    assert_int_equal(cmd_tokenize(line, &args), E_TOOBIG);
    line[CMD_LINE_MAX] = 0;
    assert_int_equal(cmd_tokenize(line, &args), 0);
    assert_int_equal(strlen(args.argv[0]), CMD_LINE_MAX);
}

/* ---------------------------------------------------------------- dispatch */

static void test_run_simple_and_blank(void **state)
{
    assert_int_equal(cmd_run("uptime", &out), 0);
    assert_string_equal(out_buf, "ran uptime\n");
    out_len = 0;
    out_buf[0] = 0;
    assert_int_equal(cmd_run("   ", &out), 0);
    assert_int_equal(cmd_run("", &out), 0);
    assert_int_equal(out_len, 0);
}

static void test_run_unknown_with_suggestion(void **state)
{
    assert_int_equal(cmd_run("uptiem", &out), E_NOENT);
    assert_string_equal(out_buf,
                        "error: unknown command 'uptiem' (did you mean 'uptime'? type 'help' for a list)\n");
    assert_int_equal(out.errors, 1);
}

static void test_run_unknown_without_suggestion(void **state)
{
    assert_int_equal(cmd_run("frobnicate now", &out), E_NOENT);
    assert_string_equal(out_buf, "error: unknown command 'frobnicate' (type 'help' for a list)\n");
}

static void test_hidden_runs_but_is_not_suggested(void **state)
{
    assert_int_equal(cmd_run("echo a \"b c\"", &out), 0);
    assert_string_equal(last_args, "[a][b c]");
    assert_null(cmd_suggest("ecoh"));
    assert_string_equal(cmd_suggest("dsks"), "disks");
}

static void test_run_wrong_arg_counts(void **state)
{
    assert_int_equal(cmd_run("uptime now", &out), E_INVAL);
    assert_string_equal(out_buf, "error: uptime: too many arguments (usage: uptime)\n");
    out_len = 0;
    assert_int_equal(cmd_run("vm start", &out), E_INVAL);
    assert_string_equal(out_buf, "error: vm start: missing arguments (usage: vm start NAME)\n");
    assert_int_equal(last_argc, -1); /* the handler never ran */
}

static void test_run_subcommands(void **state)
{
    assert_int_equal(cmd_run("vm create lin mem=64M", &out), 0);
    assert_string_equal(out_buf, "ran vm create\n");
    assert_int_equal(last_argc, 2);
    assert_string_equal(last_args, "[lin][mem=64M]");
    assert_int_equal(cmd_run("vm list", &out), 0);
    assert_int_equal(last_argc, 0);
}

static void test_run_bad_subcommand(void **state)
{
    assert_int_equal(cmd_run("vm strat a", &out), E_NOENT);
    assert_string_equal(out_buf, "error: vm: unknown subcommand 'strat' (did you mean 'start'? "
                                 "one of: create, start, stop, list)\n");
    out_len = 0;
    assert_int_equal(cmd_run("vm", &out), E_INVAL);
    assert_string_equal(out_buf, "error: vm: missing subcommand (one of: create, start, stop, list)\n");
}

static void test_run_tokenize_error(void **state)
{
    assert_int_equal(cmd_run("echo \"open", &out), E_INVAL);
    assert_string_equal(out_buf, "error: unterminated quote at column 6 (add a closing \", or \\\" "
                                 "for a quote)\n");
    assert_int_equal(last_argc, -1);
}

static void test_handler_error_without_message(void **state)
{
    assert_int_equal(cmd_run("busy", &out), E_BUSY);
    assert_string_equal(out_buf, "error: busy: E_BUSY\n");
}

/* Random lines of words, quotes, backslashes and blanks: cmd_run never
 * crashes, and every failure is exactly one line starting with "error: ". */
static void test_run_random_lines(void **state)
{
    static const char *const pieces[] = { "vm", "start", "uptime", "echo", "\"", "\\", " ",
                                          "\t", "x=", "\"a b\"", "=", "help", "64M", "zz" };
    uint32_t seed = 4242;
    int failures = 0;
    for (int i = 0; i < 20000; i++) {
        char line[CMD_LINE_MAX + 1] = "";
        int n = (int)((seed >> 16) % 24);
        for (int k = 0; k < n; k++) {
            seed = seed * 1103515245u + 12345u;
            const char *p = pieces[(seed >> 16) % (sizeof(pieces) / sizeof(pieces[0]))];
            if (strlen(line) + strlen(p) < sizeof(line))
                strcat(line, p);
        }
        seed = seed * 1103515245u + 12345u;
        out_len = 0;
        out_buf[0] = 0;
        int err = cmd_run(line, &out);
        if (err < 0) {
            failures++;
            assert_memory_equal(out_buf, "error: ", 7);
            assert_ptr_equal(strchr(out_buf, '\n'), out_buf + out_len - 1);
        }
    }
    assert_true(failures > 1000);
}

/* ---------------------------------------------------------------- registry */

static const struct cmd_def dup_defs[] = {
    { "fresh", NULL, "", "new", 0, 0, record, 0 },
    { "vm", "start", "NAME", "again", 1, 1, record, 0 },
};
static const struct cmd_def mixed_defs[] = {
    { "vm", NULL, "", "vm without sub", 0, 0, record, 0 },
};
static const struct cmd_def bad_defs[] = {
    { "x", NULL, "", "min above max", 2, 1, record, 0 },
};
static const struct cmd_def nofn_defs[] = {
    { "x", NULL, "", "no handler", 0, 0, NULL, 0 },
};
static const struct cmd_def more_vm_defs[] = {
    { "vm", "pause", "NAME", "pause a VM", 1, 1, record, 0 },
    { "console", NULL, "NAME", "attach", 1, 1, record, 0 },
};

static void test_register_rejects_conflicts(void **state)
{
    static struct cmd_table dup = CMD_TABLE("dup", dup_defs), mixed = CMD_TABLE("m", mixed_defs);
    static struct cmd_table bad = CMD_TABLE("b", bad_defs), nofn = CMD_TABLE("n", nofn_defs);
    assert_int_equal(cmd_register_table(&dup), E_EXIST);
    assert_int_equal(cmd_run("fresh", &out), E_NOENT); /* nothing of dup was added */
    assert_int_equal(cmd_register_table(&mixed), E_INVAL);
    assert_int_equal(cmd_register_table(&bad), E_INVAL);
    assert_int_equal(cmd_register_table(&nofn), E_INVAL);
    assert_int_equal(cmd_register_table(&vm_table), E_EXIST);
}

static void test_register_extends_existing_name(void **state)
{
    static struct cmd_table more = CMD_TABLE("vm2", more_vm_defs);
    assert_int_equal(cmd_register_table(&more), 0);
    assert_int_equal(cmd_run("vm pause a", &out), 0);
    assert_int_equal(cmd_run("console lin", &out), 0);
    assert_string_equal(out_buf, "ran vm pause\nran console\n");
}

/* ---------------------------------------------------------------- help */

static void test_help_lists_visible_commands(void **state)
{
    assert_int_equal(cmd_run("help", &out), 0);
    assert_non_null(strstr(out_buf, "console commands:\n  help [CMD [SUB]]"));
    assert_non_null(strstr(out_buf, "  vm create NAME [mem=SIZE] [cmdline=\"...\"] create a VM\n"));
    assert_non_null(strstr(out_buf, "  uptime                               time since boot\n"));
    assert_null(strstr(out_buf, "echo"));
}

static void test_help_one_command(void **state)
{
    assert_int_equal(cmd_run("help vm start", &out), 0);
    assert_string_equal(out_buf, "  vm start NAME                        start a VM\n");
    out_len = 0;
    assert_int_equal(cmd_run("help vm", &out), 0);
    assert_non_null(strstr(out_buf, "vm stop NAME"));
    assert_non_null(strstr(out_buf, "vm list"));
    out_len = 0;
    assert_int_equal(cmd_run("help uptme", &out), E_NOENT);
    assert_string_equal(out_buf, "error: unknown command 'uptme' (did you mean 'uptime'? type "
                                 "'help' for a list)\n");
    out_len = 0;
    assert_int_equal(cmd_run("help uptime x", &out), E_INVAL);
    assert_string_equal(out_buf, "error: 'uptime' has no subcommands (try 'help uptime')\n");
}

/* ---------------------------------------------------------------- completion */

struct complete_case {
    const char *line;   /* cursor at the end, or at '|' */
    int matches;
    const char *insert;
    const char *listed; /* what goes to the list output */
};

static const struct complete_case complete_cases[] = {
    { "up", 1, "time ", "" },
    { "  d", 1, "isks ", "" },               /* leading blanks; hidden "echo" not offered */
    { "vm s", 2, "t", "" },                  /* start, stop share "st" */
    { "vm st", 2, "", "\nstart  stop\n" },
    { "vm  cr", 1, "eate ", "" },
    { "vm", 1, " ", "" },
    { "", 5, "", "\nhelp  uptime  disks  busy  vm\n" },
    { "vm create x", 0, "", "" },            /* arguments are not completed */
    { "uptime ", 0, "", "" },                /* no subcommands */
    { "zz", 0, "", "" },
    { "u|ptime", 0, "", "" },                /* cursor inside a word */
};

static void test_complete_table(void **state)
{
    for (size_t i = 0; i < sizeof(complete_cases) / sizeof(complete_cases[0]); i++) {
        const struct complete_case *k = &complete_cases[i];
        char line[64], ins[64];
        const char *bar = strchr(k->line, '|');
        size_t cursor = bar ? (size_t)(bar - k->line) : strlen(k->line);
        snprintf(line, sizeof(line), "%.*s%s", (int)cursor, k->line, bar ? bar + 1 : "");
        out_len = 0;
        out_buf[0] = 0;
        int n = cmd_complete(line, cursor, ins, sizeof(ins), &out);
        if (n != k->matches || strcmp(ins, k->insert) || strcmp(out_buf, k->listed))
            fail_msg("'%s': %d '%s' '%s'", k->line, n, ins, out_buf);
    }
}

/* ---------------------------------------------------------------- distance */

static void test_edit_distance(void **state)
{
    assert_int_equal(cmd_edit_distance("help", "help"), 0);
    assert_int_equal(cmd_edit_distance("hepl", "help"), 1);  /* swap */
    assert_int_equal(cmd_edit_distance("hel", "help"), 1);   /* insert */
    assert_int_equal(cmd_edit_distance("halp", "help"), 1);  /* substitute */
    assert_int_equal(cmd_edit_distance("", "abc"), 3);
    assert_int_equal(cmd_edit_distance("kitten", "sitting"), 3);
    assert_null(cmd_suggest("xy"));  /* distance 2 from "vm" but too short to guess */
}

/* ---------------------------------------------------------------- numbers */

struct size_case {
    const char *text;
    int err;
    uint64_t bytes;
};

static const struct size_case size_cases[] = {
    { "64M", 0, 64ull << 20 },     { "512K", 0, 512ull << 10 },  { "1G", 0, 1ull << 30 },
    { "2t", 0, 2ull << 40 },       { "0x10", 0, 16 },            { "4096", 0, 4096 },
    { "2MiB", 0, 2ull << 20 },     { "8kb", 0, 8192 },           { "0", 0, 0 },
    { "0x1B", 0, 27 },             { "16777215T", 0, 16777215ull << 40 },
    { "16777216T", E_RANGE, 0 },   { "18446744073709551615", 0, UINT64_MAX },
    { "18446744073709551616", E_RANGE, 0 },                      { "0x10000000000000000", E_RANGE, 0 },
    { "", E_INVAL, 0 },            { "M", E_INVAL, 0 },          { "64X", E_INVAL, 0 },
    { "64MM", E_INVAL, 0 },        { "-1", E_INVAL, 0 },         { "0x", E_INVAL, 0 },
    { " 1", E_INVAL, 0 },          { "1 ", E_INVAL, 0 },         { "1Bi", E_INVAL, 0 },
};

static void test_parse_size_table(void **state)
{
    for (size_t i = 0; i < sizeof(size_cases) / sizeof(size_cases[0]); i++) {
        uint64_t v = 0xdeadbeef;
        int err = cmd_parse_size(size_cases[i].text, &v);
        if (err != size_cases[i].err)
            fail_msg("'%s': got %d, want %d", size_cases[i].text, err, size_cases[i].err);
        assert_true(v == (err ? 0xdeadbeef : size_cases[i].bytes));
    }
}

static void test_parse_numbers(void **state)
{
    uint32_t v32 = 7;
    uint64_t v64;
    assert_int_equal(cmd_parse_u32("0xFFFFFFFF", &v32), 0);
    assert_true(v32 == 0xFFFFFFFFu);
    assert_int_equal(cmd_parse_u32("4294967296", &v32), E_RANGE);
    assert_int_equal(cmd_parse_u32("12abc", &v32), E_INVAL);
    assert_int_equal(cmd_parse_u64("64M", &v64), E_INVAL); /* no suffixes for plain numbers */
    assert_int_equal(cmd_parse_u64("0X1f", &v64), 0);
    assert_true(v64 == 31);
}

static void test_get_with_messages(void **state)
{
    uint64_t bytes = 0;
    uint32_t v = 0;
    assert_int_equal(cmd_get_size(&out, "mem", "64M", &bytes), 0);
    assert_true(bytes == 64ull << 20);
    assert_int_equal(out_len, 0);
    assert_int_equal(cmd_get_size(&out, "mem", "64X", &bytes), E_INVAL);
    assert_string_equal(out_buf, "error: mem: '64X' is not a size (e.g. 64M, 512K, 1G, 0x100000)\n");
    out_len = 0;
    assert_int_equal(cmd_get_size(&out, "mem", "99999999T", &bytes), E_RANGE);
    assert_string_equal(out_buf, "error: mem: '99999999T' is too large (at most 16777215T)\n");
    out_len = 0;
    assert_int_equal(cmd_get_u32(&out, "vcpus", "0x100000000", &v), E_RANGE);
    assert_string_equal(out_buf, "error: vcpus: '0x100000000' is too large (at most 4294967295)\n");
    out_len = 0;
    assert_int_equal(cmd_get_u32(&out, "vcpus", "two", &v), E_INVAL);
    assert_string_equal(out_buf, "error: vcpus: 'two' is not a number (decimal, or hex with 0x)\n");
    assert_int_equal(out.errors, 4);
}

/* ---------------------------------------------------------------- options */

static void test_kv_helpers(void **state)
{
    char a0[] = "lin", a1[] = "mem=64M", a2[] = "cmdline=a=b c", a3[] = "mem=128M", a4[] = "=x";
    char *argv[] = { a0, a1, a2, a3, a4 };
    const char *v = NULL;
    assert_int_equal(cmd_kv_split("mem=64M", &v), 3);
    assert_string_equal(v, "64M");
    assert_int_equal(cmd_kv_split("lin", &v), 0);
    assert_int_equal(cmd_kv_split("9p=x", &v), 0);
    assert_int_equal(cmd_kv_split("key=", &v), 3);
    assert_string_equal(v, "");
    assert_string_equal(cmd_kv_get(5, argv, "cmdline"), "a=b c");
    assert_string_equal(cmd_kv_get(5, argv, "mem"), "128M"); /* the last one wins */
    assert_null(cmd_kv_get(5, argv, "me"));
}

static void test_kv_check(void **state)
{
    static const char *const keys[] = { "mem", "cmdline", NULL };
    char a0[] = "lin", a1[] = "mem=64M", a2[] = "disk=ata0", a3[] = "mem=1G";
    char *ok[] = { a0, a1 }, *unknown[] = { a0, a2 }, *twice[] = { a1, a3 };
    assert_int_equal(cmd_kv_check(2, ok, keys, &out), 0);
    assert_int_equal(out_len, 0);
    assert_int_equal(cmd_kv_check(2, unknown, keys, &out), E_INVAL);
    assert_string_equal(out_buf, "error: unknown option 'disk' (options: mem, cmdline)\n");
    out_len = 0;
    assert_int_equal(cmd_kv_check(2, twice, keys, &out), E_INVAL);
    assert_string_equal(out_buf, "error: option 'mem' given twice (keep one)\n");
}

/* ---------------------------------------------------------------- a vmm-style handler */

/* How the vmm's `vm create NAME [mem=SIZE] [cmdline="..."]` can use the helpers. */
static uint64_t demo_mem;
static const char *demo_cmdline;

static int demo_create(struct cmd_ctx *c)
{
    static const char *const keys[] = { "mem", "cmdline", NULL };
    const char *mem = cmd_kv_get(c->argc, c->argv, "mem");
    const char *v;
    int err;

    if (cmd_kv_split(c->argv[0], &v)) {
        cmd_error(c->out, "vm create: the first argument is the VM's NAME, not an option");
        return E_INVAL;
    }
    if ((err = cmd_kv_check(c->argc - 1, c->argv + 1, keys, c->out)))
        return err;
    demo_mem = 32ull << 20;
    if (mem && (err = cmd_get_size(c->out, "mem", mem, &demo_mem)))
        return err;
    demo_cmdline = cmd_kv_get(c->argc, c->argv, "cmdline");
    cmd_printf(c->out, "created %s\n", c->argv[0]);
    return 0;
}

static const struct cmd_def demo_defs[] = {
    { "demo", "create", "NAME [mem=SIZE] [cmdline=\"...\"]", "create a VM", 1, 3, demo_create, 0 },
};

static void test_vmm_style_handler(void **state)
{
    static struct cmd_table demo = CMD_TABLE("demo", demo_defs);
    assert_int_equal(cmd_register_table(&demo), 0);
    assert_int_equal(cmd_run("demo create lin mem=64M cmdline=\"console=ttyS0 quiet\"", &out), 0);
    assert_string_equal(out_buf, "created lin\n");
    assert_true(demo_mem == 64ull << 20);
    assert_string_equal(demo_cmdline, "console=ttyS0 quiet");
    out_len = 0;
    assert_int_equal(cmd_run("demo create lin mem=lots", &out), E_INVAL);
    assert_string_equal(out_buf, "error: mem: 'lots' is not a size (e.g. 64M, 512K, 1G, 0x100000)\n");
    out_len = 0;
    assert_int_equal(cmd_run("demo create lin disk=ata0", &out), E_INVAL);
    assert_string_equal(out_buf, "error: unknown option 'disk' (options: mem, cmdline)\n");
    out_len = 0;
    assert_int_equal(cmd_run("demo create mem=64M", &out), E_INVAL);
    assert_string_equal(out_buf,
                        "error: vm create: the first argument is the VM's NAME, not an option\n");
}

/* ---------------------------------------------------------------- formats */

static void test_formats(void **state)
{
    char buf[64];
    struct rtc_time t = { 2026, 11, 3, 7, 5, 9 };
    fmt_uptime(buf, sizeof(buf), 0, 1000);
    assert_string_equal(buf, "0 days, 0:00:00.000");
    fmt_uptime(buf, sizeof(buf), 86400000ull + 3723004, 1000);
    assert_string_equal(buf, "1 day, 1:02:03.004");
    fmt_uptime(buf, sizeof(buf), (uint64_t)400 * 86400 * 100 + 59, 100);
    assert_string_equal(buf, "400 days, 0:00:00.590");
    fmt_iso8601(buf, sizeof(buf), &t);
    assert_string_equal(buf, "2026-11-03T07:05:09");
    fmt_mib(buf, sizeof(buf), 64ull << 20);
    assert_string_equal(buf, "64.0 MiB");
    fmt_mib(buf, sizeof(buf), (64ull << 20) - 1);
    assert_string_equal(buf, "63.9 MiB");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_tokenize_blanks, setup),
        cmocka_unit_test_setup(test_tokenize_quotes_and_escapes, setup),
        cmocka_unit_test_setup(test_tokenize_key_value, setup),
        cmocka_unit_test_setup(test_tokenize_unterminated_quote, setup),
        cmocka_unit_test_setup(test_tokenize_too_many_args, setup),
        cmocka_unit_test_setup(test_tokenize_too_long, setup),
        cmocka_unit_test_setup(test_run_simple_and_blank, setup),
        cmocka_unit_test_setup(test_run_unknown_with_suggestion, setup),
        cmocka_unit_test_setup(test_run_unknown_without_suggestion, setup),
        cmocka_unit_test_setup(test_hidden_runs_but_is_not_suggested, setup),
        cmocka_unit_test_setup(test_run_wrong_arg_counts, setup),
        cmocka_unit_test_setup(test_run_subcommands, setup),
        cmocka_unit_test_setup(test_run_bad_subcommand, setup),
        cmocka_unit_test_setup(test_run_tokenize_error, setup),
        cmocka_unit_test_setup(test_handler_error_without_message, setup),
        cmocka_unit_test_setup(test_run_random_lines, setup),
        cmocka_unit_test_setup(test_register_rejects_conflicts, setup),
        cmocka_unit_test_setup(test_register_extends_existing_name, setup),
        cmocka_unit_test_setup(test_help_lists_visible_commands, setup),
        cmocka_unit_test_setup(test_help_one_command, setup),
        cmocka_unit_test_setup(test_complete_table, setup),
        cmocka_unit_test_setup(test_edit_distance, setup),
        cmocka_unit_test_setup(test_parse_size_table, setup),
        cmocka_unit_test_setup(test_parse_numbers, setup),
        cmocka_unit_test_setup(test_get_with_messages, setup),
        cmocka_unit_test_setup(test_kv_helpers, setup),
        cmocka_unit_test_setup(test_kv_check, setup),
        cmocka_unit_test_setup(test_vmm_style_handler, setup),
        cmocka_unit_test_setup(test_formats, setup),
    };
    return cmocka_run_group_tests_name("cmd", tests, NULL, NULL);
}
