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

/* Prints "CMD: message (see nll --help)" on stderr, escaped (cli_printf); returns EXIT_USAGE. */
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

/* Messages. Whatever a message quotes (file names, tensor and member names, header keys and
 * values, arguments) is shown, never obeyed by the terminal: each byte below 0x20 other than
 * newline, DEL, the C1 controls (U+0080..U+009F), the bidirectional overrides and isolates
 * (U+202A..U+202E, U+2066..U+2069) and each byte that is not part of valid UTF-8 is written as
 * \xNN; the rest of valid UTF-8 is kept as it is (a backslash too). Every message of the tool,
 * on stderr or in `nll check`'s text report, goes through this one escaper. */
void sb_escaped(strbuf *b, const char *s, size_t n);
/* fputs and fprintf with the text escaped as above. */
void cli_fputs(FILE *f, const char *s);
void cli_printf(FILE *f, const char *fmt, ...) CLI_PRINTF(2, 3);
/* For JSON text printed by cJSON (which escapes the bytes below 0x20 inside strings; its own
 * layout is ASCII): DEL, C1 and bidirectional controls become \u escapes, and a byte that is
 * not valid UTF-8 the characters \\xNN (decoding to \xNN, as in the text). A new string (free()
 * it), or NULL when out of memory. */
char *cli_json_escaped(const char *json);

/* A process-wide SIGBUS handler for the tool (the library installs none): a mapped input file
 * that shrinks while it is read (truncated or rewritten by another process) makes the next
 * read of a page past its new end fault, wherever it happens (the readers, the library's
 * threads, a writer). The handler names the file and the byte, removes the temporary output
 * files, and exits with EXIT_USAGE; a fault outside a mapped file keeps the default action.
 * command prefixes the message ("nll loss"). */
void cli_handle_bus_errors(const char *command);

/* Prints a number as the tool does: "%.9g" ("%.17g" for 64-bit values), "nan" for any NaN. */
void print_value(FILE *f, double v, int bits);

/* Output files: each is written to a temporary file beside it (".nll-XXXXXX" in the same
 * directory, so any name the directory allows works), then all are renamed into place, so a
 * failure leaves no output created or changed. A path that exists and is not a regular file
 * (a FIFO, a device, a directory, a socket) is refused before anything is written. */
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
