/* Option helpers shared by `uakd train`, `uakd eval` and `uakd predict`: number lists, the
 * compute settings (--threads, --backend) and the SIGINT flag of long runs. */
#ifndef UAKD_CLI_WDR_OPTS_H
#define UAKD_CLI_WDR_OPTS_H

#include <signal.h>

/* Exactly n comma-separated finite numbers ("fx,fy,cx,cy"); on error prints and returns 0. */
int wdr_parse_numbers(const char *cmd, const char *opt, const char *s, int n, double *out);
/* 1..max comma-separated integers in [lo, hi]; on error prints and returns 0. */
int wdr_parse_ints(const char *cmd, const char *opt, const char *s, int max, long lo, long hi, int *out, int *n);
/* --threads N (0 = all cores) and --backend ref|fast; on error prints and returns 0. */
int wdr_set_threads(const char *cmd, const char *s);
int wdr_set_backend(const char *cmd, const char *s);

/* Set by the SIGINT handler that wdr_catch_sigint installs (a second Ctrl-C kills at once). */
extern volatile sig_atomic_t wdr_interrupted;
void wdr_catch_sigint(void);

/* The options of `uakd train` (defaults first; argv[0] is skipped, so a "--" separator can be
 * argv[0]); on error prints and returns 0. `uakd distill` and `uakd ensemble` pass them through. */
struct uakd_train_config;
struct uakd_train_result;
int wdr_train_parse(const char *cmd, int argc, char **argv, struct uakd_train_config *c);
/* Runs uakd_train_run with the progress line, Ctrl-C handling and the final messages of
 * `uakd train`; returns the exit code; res (may be NULL) gets the result. */
int wdr_train_run_cli(const char *cmd, struct uakd_train_config *c, struct uakd_train_result *res);

#endif
