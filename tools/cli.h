/* What the nll tool's subcommands share: exit statuses, option parsing, messages, growing
 * strings and output files written all-or-nothing. */
#ifndef NLL_TOOL_CLI_H
#define NLL_TOOL_CLI_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <dlpack/dlpack.h>

#if defined(__GNUC__) || defined(__clang__)
#define CLI_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define CLI_PRINTF(a, b)
#endif

/* Exit statuses: the contract scripts rely on. */
enum { EXIT_OK = 0, EXIT_REJECTED = 1, EXIT_USAGE = 2 };

/* Prints "CMD: message (see nll --help)" on stderr; returns EXIT_USAGE. */
int usage_error(const char *cmd, const char *fmt, ...) CLI_PRINTF(2, 3);

int parse_int64(const char *s, int64_t *out);
/* --op nll|cross-entropy: sets *cross_entropy; EXIT_OK, or a usage error for CMD. */
int parse_op(const char *cmd, const char *value, int *cross_entropy);
int parse_double(const char *s, double *out);

/* One option of a subcommand; value options accept "--name V" and "--name=V". */
typedef struct cli_option {
    const char *name;
    int takes_value;
} cli_option;

/* Parses argv[*i] (advancing *i past a separate value). Returns the option's index in opts, or
 * -1 after printing a usage error. Each value option may be given once: seen[] (one counter per
 * option, zeroed by the caller) tracks that. */
int cli_next_option(const char *cmd, int argc, char **argv, int *i, const cli_option *opts,
                    int n_opts, int *seen, const char **value);

/* A growing, always NUL-terminated string. Out of memory leaves it as it was. */
typedef struct strbuf {
    char *s;
    size_t len, cap;
} strbuf;

void sb_printf(strbuf *b, const char *fmt, ...) CLI_PRINTF(2, 3);
void sb_free(strbuf *b);
const char *sb_str(const strbuf *b);

/* "name[5]" for a 0-d or 1-D shape, else "name[5] (index [1, 2])", as the library writes. */
void sb_position(strbuf *b, const char *name, int64_t flat, const int64_t *shape, int ndim);

/* Prints a number as the tool does: "%.9g" ("%.17g" for 64-bit values), "nan" for any NaN. */
void print_value(FILE *f, double v, int bits);

/* Output files: each is written to a temporary file beside it, then all are renamed into
 * place, so a failure leaves no output created or changed. */
typedef struct output {
    const char *path;       /* NULL: not requested */
    const DLTensor *tensor;
    const char *name;       /* the tensor's name in a .safetensors file */
    char tmp[4096];
    int written;
} output;

int write_outputs(output *outs, int n, const char *cmd);

/* Subcommands. */
int run_check_command(int argc, char **argv);
int run_demo_command(int argc, char **argv);

#endif /* NLL_TOOL_CLI_H */
