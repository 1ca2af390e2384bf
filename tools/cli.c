/* Helpers shared by the nll tool's subcommands (see cli.h). */
#define _POSIX_C_SOURCE 200809L

#include "cli.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "formats.h"

int usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, " (see nll --help)\n");
    return EXIT_USAGE;
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

void sb_printf(strbuf *b, const char *fmt, ...)
{
    va_list ap;
    int n;
    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if (b->len + (size_t)n + 1 > b->cap) {
        size_t cap = (b->len + (size_t)n + 1) * 2;
        char *s = realloc(b->s, cap);
        if (s == NULL)
            return;
        b->s = s;
        b->cap = cap;
    }
    va_start(ap, fmt);
    vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
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

int write_outputs(output *outs, int n, const char *cmd)
{
    char err[FMT_ERROR_SIZE];
    int i, failed = 0;

    for (i = 0; i < n && !failed; i++) {
        if (outs[i].path == NULL)
            continue;
        if ((size_t)snprintf(outs[i].tmp, sizeof outs[i].tmp, "%s.nll-tmp-%ld-%d", outs[i].path,
                             (long)getpid(), i) >= sizeof outs[i].tmp) {
            fprintf(stderr, "%s: %s: path too long\n", cmd, outs[i].path);
            failed = 1;
            break;
        }
        /* The temporary name must keep the real extension's choice of format. */
        if (fmt_save_as(outs[i].tmp, outs[i].path, outs[i].tensor, outs[i].name, err,
                        sizeof err)) {
            fprintf(stderr, "%s: %s\n", cmd, err);
            remove(outs[i].tmp);
            failed = 1;
            break;
        }
        outs[i].written = 1;
    }
    for (i = 0; i < n && !failed; i++) {
        if (outs[i].written && rename(outs[i].tmp, outs[i].path) != 0) {
            fprintf(stderr, "%s: %s: cannot rename into place: %s\n", cmd, outs[i].path,
                    strerror(errno));
            failed = 1;
        } else {
            outs[i].written = 0;
        }
    }
    for (i = 0; i < n; i++)
        if (outs[i].written)
            remove(outs[i].tmp);
    return failed ? -1 : 0;
}
