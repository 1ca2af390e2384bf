/* Helpers shared by the nll tool's subcommands (see cli.h). */
#define _POSIX_C_SOURCE 200809L

#include "cli.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "formats.h"

static void sb_vprintf(strbuf *b, const char *fmt, va_list ap);

int usage_error(const char *cmd, const char *fmt, ...)
{
    strbuf msg = {0};
    va_list ap;
    sb_printf(&msg, "%s: ", cmd);
    va_start(ap, fmt);
    sb_vprintf(&msg, fmt, ap);
    va_end(ap);
    sb_printf(&msg, " (see nll --help)\n");
    cli_fputs(stderr, sb_str(&msg));
    sb_free(&msg);
    return EXIT_USAGE;
}

/* ---- escaping ---- */

typedef enum sequence_kind {
    SEQ_SHOWN,   /* printable ASCII, newline, or a valid UTF-8 character kept as it is */
    SEQ_CONTROL, /* a valid character that acts on a terminal: C0, DEL, C1, bidi controls */
    SEQ_INVALID  /* one byte that does not start a valid UTF-8 sequence */
} sequence_kind;

/* Classifies the sequence at s (n > 0 bytes left): its length in *len, its code point in *cp. */
static sequence_kind next_sequence(const unsigned char *s, size_t n, size_t *len, unsigned *cp)
{
    unsigned c = s[0], code;
    size_t need, k;

    *len = 1;
    *cp = c;
    if (c < 0x80)
        return (c >= 0x20 || c == '\n') && c != 0x7f ? SEQ_SHOWN : SEQ_CONTROL;
    if (c >= 0xc2 && c <= 0xdf) {
        need = 1;
        code = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        need = 2;
        code = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        need = 3;
        code = c & 0x07;
    } else {
        return SEQ_INVALID;
    }
    if (n <= need)
        return SEQ_INVALID;
    for (k = 1; k <= need; k++) {
        if ((s[k] & 0xc0) != 0x80)
            return SEQ_INVALID;
        code = code << 6 | (s[k] & 0x3fu);
    }
    /* Overlong forms, surrogates and code points past U+10FFFF are not UTF-8. */
    if ((need == 2 && code < 0x800) || (need == 3 && (code < 0x10000 || code > 0x10ffff)) ||
        (code >= 0xd800 && code <= 0xdfff))
        return SEQ_INVALID;
    *len = need + 1;
    *cp = code;
    if (code < 0xa0 || (code >= 0x202a && code <= 0x202e) || (code >= 0x2066 && code <= 0x2069))
        return SEQ_CONTROL;
    return SEQ_SHOWN;
}

/* Writes s[0..n) escaped into dst (at most 4n bytes, no NUL), using no library function: the
 * SIGBUS handler calls it. Returns the bytes written. */
static size_t escape_into(char *dst, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0, out = 0, len, k;
    unsigned cp;
    while (i < n) {
        if (next_sequence(u + i, n - i, &len, &cp) == SEQ_SHOWN) {
            for (k = 0; k < len; k++)
                dst[out++] = (char)u[i + k];
        } else {
            for (k = 0; k < len; k++) {
                dst[out++] = '\\';
                dst[out++] = 'x';
                dst[out++] = hex[u[i + k] >> 4];
                dst[out++] = hex[u[i + k] & 15];
            }
        }
        i += len;
    }
    return out;
}

/* Makes room for extra more bytes and the NUL; 0, or -1 when out of memory. */
static int sb_reserve(strbuf *b, size_t extra)
{
    if (b->len + extra + 1 > b->cap) {
        size_t cap = (b->len + extra + 1) * 2;
        char *s = realloc(b->s, cap);
        if (s == NULL)
            return -1;
        b->s = s;
        b->cap = cap;
    }
    return 0;
}

void sb_escaped(strbuf *b, const char *s, size_t n)
{
    if (n > (SIZE_MAX - 1) / 4 - b->len || sb_reserve(b, 4 * n))
        return;
    b->len += escape_into(b->s + b->len, s, n);
    b->s[b->len] = '\0';
}

void cli_fputs(FILE *f, const char *s)
{
    strbuf e = {0};
    size_t n = strlen(s);
    sb_escaped(&e, s, n);
    if (e.s != NULL)
        fputs(e.s, f);
    else if (n > 0)
        fputs("(a message too long to escape)\n", f);
    sb_free(&e);
}

void cli_printf(FILE *f, const char *fmt, ...)
{
    strbuf msg = {0};
    va_list ap;
    va_start(ap, fmt);
    sb_vprintf(&msg, fmt, ap);
    va_end(ap);
    cli_fputs(f, sb_str(&msg));
    sb_free(&msg);
}

char *cli_json_escaped(const char *json)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *u = (const unsigned char *)json;
    size_t n = strlen(json), i = 0, len, k;
    strbuf out = {0};
    unsigned cp;

    if (n > (SIZE_MAX - 1) / 6 || sb_reserve(&out, 6 * n))
        return NULL;
    while (i < n) {
        sequence_kind kind = next_sequence(u + i, n - i, &len, &cp);
        char *d = out.s + out.len;
        if (kind == SEQ_SHOWN || (kind == SEQ_CONTROL && cp < 0x20)) {
            /* cJSON escapes C0 controls inside strings; those left are its layout. */
            memcpy(d, u + i, len);
            out.len += len;
        } else if (kind == SEQ_CONTROL) {
            d[0] = '\\';
            d[1] = 'u';
            for (k = 0; k < 4; k++)
                d[2 + k] = hex[(cp >> (12 - 4 * k)) & 15];
            out.len += 6;
        } else {
            d[0] = '\\';
            d[1] = '\\';
            d[2] = 'x';
            d[3] = hex[u[i] >> 4];
            d[4] = hex[u[i] & 15];
            out.len += 5;
        }
        i += len;
    }
    out.s[out.len] = '\0';
    return out.s;
}

/* ---- bus errors from mapped files that shrink ---- */

#define MAX_TEMPORARIES 8

/* The tool's own process-wide state (the library has none): what the handler reports and
 * removes. */
static const char *bus_command = "nll";
static const char *volatile temporaries[MAX_TEMPORARIES];

static void remember_temporary(const char *path)
{
    int i;
    for (i = 0; i < MAX_TEMPORARIES; i++)
        if (temporaries[i] == NULL) {
            temporaries[i] = path;
            return;
        }
}

static void forget_temporary(const char *path)
{
    int i;
    for (i = 0; i < MAX_TEMPORARIES; i++)
        if (temporaries[i] == path)
            temporaries[i] = NULL;
}

static size_t append_text(char *buf, size_t used, const char *s)
{
    while (*s)
        buf[used++] = *s++;
    return used;
}

static size_t append_number(char *buf, size_t used, size_t v)
{
    char digits[24];
    int n = 0;
    do {
        digits[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        buf[used++] = digits[--n];
    return used;
}

/* Only async-signal-safe calls: it may run on any thread, inside malloc or stdio. */
static void on_bus_error(int sig, siginfo_t *info, void *context)
{
    char msg[4 * 4096 + 512];
    size_t offset = 0, used = 0, n = 0;
    const char *path = fmt_mapped_file(info->si_addr, &offset);
    int i;

    (void)context;
    if (path == NULL) {
        /* Not a shrunk input file: die of it, as without the handler. */
        signal(sig, SIG_DFL);
        raise(sig);
        return;
    }
    for (i = 0; i < MAX_TEMPORARIES; i++)
        if (temporaries[i] != NULL)
            unlink(temporaries[i]);
    while (path[n] != '\0' && n < 4096)
        n++;
    used = append_text(msg, used, bus_command);
    used = append_text(msg, used, ": ");
    used += escape_into(msg + used, path, n);
    used = append_text(msg, used, ": the file shrank while it was being read (byte ");
    used = append_number(msg, used, offset);
    used = append_text(msg, used,
                       " is past its end now): it was truncated or rewritten during the run\n");
    while (used > 0) {
        ssize_t w = write(STDERR_FILENO, msg, used);
        if (w <= 0)
            break;
        memmove(msg, msg + w, used - (size_t)w);
        used -= (size_t)w;
    }
    _exit(EXIT_USAGE);
}

void cli_handle_bus_errors(const char *command)
{
    struct sigaction action;
    bus_command = command;
    memset(&action, 0, sizeof action);
    action.sa_sigaction = on_bus_error;
    action.sa_flags = SA_SIGINFO;
    sigemptyset(&action.sa_mask);
    sigaction(SIGBUS, &action, NULL);
}

int parse_op(const char *cmd, const char *value, int *cross_entropy)
{
    if (strcmp(value, "nll") == 0)
        *cross_entropy = 0;
    else if (strcmp(value, "cross-entropy") == 0)
        *cross_entropy = 1;
    else
        return usage_error(cmd, "unknown --op '%s' (expected nll or cross-entropy)", value);
    return EXIT_OK;
}

int parse_int64(const char *s, int64_t *out)
{
    char *end;
    long long v;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (*s == '\0' || *end != '\0' || errno == ERANGE)
        return -1;
    *out = (int64_t)v;
    return 0;
}

int parse_double(const char *s, double *out)
{
    char *end;
    double v;
    errno = 0;
    v = strtod(s, &end);
    if (*s == '\0' || *end != '\0' || errno == ERANGE)
        return -1;
    *out = v;
    return 0;
}

int cli_next_option(const char *cmd, int argc, char **argv, int *i, const cli_option *opts,
                    int n_opts, int *seen, const char **value)
{
    const char *arg = argv[*i], *eq = NULL;
    size_t name_len = strlen(arg);
    int k;

    *value = NULL;
    if (strncmp(arg, "--", 2) == 0 && (eq = strchr(arg, '=')) != NULL)
        name_len = (size_t)(eq - arg);
    for (k = 0; k < n_opts; k++)
        if (strlen(opts[k].name) == name_len && strncmp(arg, opts[k].name, name_len) == 0)
            break;
    if (k == n_opts) {
        if (arg[0] == '-')
            usage_error(cmd, "unknown option '%.*s'", (int)name_len, arg);
        else
            usage_error(cmd, "unexpected argument '%s'", arg);
        return -1;
    }
    if (!opts[k].takes_value) {
        if (eq) {
            usage_error(cmd, "option %s takes no value", opts[k].name);
            return -1;
        }
        return k;
    }
    if (eq)
        *value = eq + 1;
    else if (*i + 1 < argc)
        *value = argv[++*i];
    else {
        usage_error(cmd, "option %s needs a value", opts[k].name);
        return -1;
    }
    if (seen[k]++) {
        usage_error(cmd, "option %s given twice", opts[k].name);
        return -1;
    }
    return k;
}

static void sb_vprintf(strbuf *b, const char *fmt, va_list ap)
{
    va_list again;
    int n;
    va_copy(again, ap);
    n = vsnprintf(NULL, 0, fmt, ap);
    if (n >= 0 && sb_reserve(b, (size_t)n) == 0) {
        vsnprintf(b->s + b->len, b->cap - b->len, fmt, again);
        b->len += (size_t)n;
    }
    va_end(again);
}

void sb_printf(strbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sb_vprintf(b, fmt, ap);
    va_end(ap);
}

void sb_free(strbuf *b)
{
    free(b->s);
    memset(b, 0, sizeof *b);
}

const char *sb_str(const strbuf *b)
{
    return b->s ? b->s : "";
}

void sb_position(strbuf *b, const char *name, int64_t flat, const int64_t *shape, int ndim)
{
    int64_t index[FMT_MAX_NDIM], rest = flat;
    int d;
    sb_printf(b, "%s[%lld]", name, (long long)flat);
    if (ndim < 2)
        return;
    for (d = ndim - 1; d >= 0; d--) {
        index[d] = shape[d] ? rest % shape[d] : 0;
        rest = shape[d] ? rest / shape[d] : 0;
    }
    sb_printf(b, " (index [");
    for (d = 0; d < ndim; d++)
        sb_printf(b, d ? ", %lld" : "%lld", (long long)index[d]);
    sb_printf(b, "])");
}

void print_value(FILE *f, double v, int bits)
{
    if (isnan(v))
        fputs("nan", f);
    else
        fprintf(f, bits == 64 ? "%.17g" : "%.9g", v);
}

/* Creates o->tmp: ".nll-XXXXXX" in o->path's directory (a short name, so that an output name
 * as long as the directory allows still works), with the mode a new file gets. */
static int make_temporary(output *o, const char *cmd)
{
    static const char pattern[] = ".nll-XXXXXX";
    const char *slash = strrchr(o->path, '/');
    size_t dir_len = slash != NULL ? (size_t)(slash - o->path) + 1 : 0;
    mode_t mask;
    int fd;

    if (dir_len + sizeof pattern > sizeof o->tmp) {
        cli_printf(stderr, "%s: %s: path too long\n", cmd, o->path);
        return -1;
    }
    memcpy(o->tmp, o->path, dir_len);
    memcpy(o->tmp + dir_len, pattern, sizeof pattern);
    errno = 0;
    fd = mkstemp(o->tmp);
    if (fd < 0) {
        cli_printf(stderr, "%s: %s: cannot create: %s\n", cmd, o->path, strerror(errno));
        o->tmp[0] = '\0';
        return -1;
    }
    remember_temporary(o->tmp);
    /* mkstemp makes the file private (0600); an output gets what a plain create gives. */
    mask = umask(0);
    umask(mask);
    if (fchmod(fd, 0666 & ~mask) != 0) {
        cli_printf(stderr, "%s: %s: cannot set the mode of a new file: %s\n", cmd, o->path,
                   strerror(errno));
        close(fd);
        remove(o->tmp);
        forget_temporary(o->tmp);
        o->tmp[0] = '\0';
        return -1;
    }
    close(fd);
    return 0;
}

int write_outputs(output *outs, int n, const char *cmd)
{
    char err[FMT_ERROR_SIZE];
    int i, failed = 0;

    /* An output path must be a regular file or nothing: renaming over a FIFO or a device would
     * replace it, and writing into one could wait forever. */
    for (i = 0; i < n; i++) {
        struct stat st;
        outs[i].written = 0;
        outs[i].tmp[0] = '\0';
        if (outs[i].path != NULL && stat(outs[i].path, &st) == 0 && !S_ISREG(st.st_mode)) {
            cli_printf(stderr, "%s: %s: not a regular file (%s): outputs are written to a new "
                       "file renamed into place\n",
                       cmd, outs[i].path, fmt_file_type(st.st_mode));
            return -1;
        }
    }
    for (i = 0; i < n && !failed; i++) {
        if (outs[i].path == NULL)
            continue;
        if (make_temporary(&outs[i], cmd)) {
            failed = 1;
            break;
        }
        outs[i].written = 1;
        /* The temporary name must keep the real extension's choice of format. */
        if (fmt_save_as(outs[i].tmp, outs[i].path, outs[i].tensor, outs[i].name, err,
                        sizeof err)) {
            /* The writers name the file they write: name the output instead. A write straight
             * from a mapped input that shrank meanwhile fails with EFAULT: name the input. */
            size_t t = strlen(outs[i].tmp), mapped_size, size_now;
            const char *shrunk = fmt_shrunk_file(outs[i].tensor->data, &mapped_size, &size_now);
            if (shrunk != NULL)
                cli_printf(stderr,
                           "%s: %s: the file shrank while it was being read (%zu bytes now, %zu "
                           "when opened): it was truncated or rewritten during the run\n",
                           cmd, shrunk, size_now, mapped_size);
            else if (strncmp(err, outs[i].tmp, t) == 0)
                cli_printf(stderr, "%s: %s%s\n", cmd, outs[i].path, err + t);
            else
                cli_printf(stderr, "%s: %s\n", cmd, err);
            failed = 1;
            break;
        }
    }
    for (i = 0; i < n && !failed; i++) {
        if (outs[i].written && rename(outs[i].tmp, outs[i].path) != 0) {
            cli_printf(stderr, "%s: %s: cannot rename into place: %s\n", cmd, outs[i].path,
                       strerror(errno));
            failed = 1;
        } else {
            forget_temporary(outs[i].tmp);
            outs[i].written = 0;
        }
    }
    for (i = 0; i < n; i++)
        if (outs[i].tmp[0] != '\0' && outs[i].written) {
            remove(outs[i].tmp);
            forget_temporary(outs[i].tmp);
        }
    return failed ? -1 : 0;
}
