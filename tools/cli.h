/* Shared pieces of the CLI: the command table entry, exit codes, status reporting, and small
 * option-parsing helpers that give clear messages on bad values. */
#ifndef UAKD_CLI_H
#define UAKD_CLI_H

#include "uakd/status.h"

enum {
    UAKD_EXIT_OK = 0,
    UAKD_EXIT_FAILURE = 1, /* the operation failed (message on stderr) */
    UAKD_EXIT_USAGE = 2,   /* bad command line */
    UAKD_EXIT_INPUT = 3,   /* bad or unreadable input file */
    UAKD_EXIT_INTERRUPTED = 130,
};

typedef struct uakd_cli_command {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv); /* argv[0] is the command name */
} uakd_cli_command;

/* Installs a log callback printing "uakd: ..." lines on stderr (UAKD_LOG=debug for more). */
void uakd_cli_init_logging(void);
/* Prints "uakd <cmd>: <status>: <last error>" and returns the matching exit code. */
int uakd_cli_report(const char *cmd, uakd_status st);
/* True when argv[i] is --help or -h. */
int uakd_cli_wants_help(int argc, char **argv);
/* Index of the first "--" in argv[1..] (argc when there is none): a command's own options stand
 * before it, the options it hands to `uakd train` after it. */
int uakd_cli_find_sep(int argc, char **argv);
/* Parses numbers strictly (whole string, finite, in range); on error prints and returns 0. */
int uakd_cli_parse_long(const char *cmd, const char *opt, const char *s, long lo, long hi, long *out);
int uakd_cli_parse_double(const char *cmd, const char *opt, const char *s, double lo, double hi, double *out);

int uakd_cmd_version(int argc, char **argv);
int uakd_cmd_data(int argc, char **argv);
int uakd_cmd_synth(int argc, char **argv);
int uakd_cmd_pnp(int argc, char **argv);
int uakd_cmd_netinfo(int argc, char **argv);
int uakd_cmd_convert(int argc, char **argv);
int uakd_cmd_fit_demo(int argc, char **argv);
int uakd_cmd_train(int argc, char **argv);
int uakd_cmd_ensemble(int argc, char **argv);
int uakd_cmd_distill(int argc, char **argv);
int uakd_cmd_uncertainty(int argc, char **argv);
int uakd_cmd_ablate(int argc, char **argv);
int uakd_cmd_eval(int argc, char **argv);
int uakd_cmd_predict(int argc, char **argv);

#endif
