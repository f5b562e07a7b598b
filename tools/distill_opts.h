/* Options shared by `uakd distill` and `uakd ablate`: the method settings of uakd/distill.h and
 * one distillation run on the training loop of `uakd train`. */
#ifndef UAKD_CLI_DISTILL_OPTS_H
#define UAKD_CLI_DISTILL_OPTS_H

#include "uakd/distill.h"
#include "uakd/train.h"

typedef struct distill_opts {
    uakd_distill_config cfg;
    int tau_auto;         /* --tau auto: tau^2 = median s2 over the training split */
    long tau_images;      /* crops scanned for auto tau (0: all) */
    const char *ensemble; /* --ensemble DIR */
    const char *out;      /* --out DIR (overrides the train options') */
    const char *variant;  /* --variant (student) */
    int width;            /* --width (student) */
} distill_opts;

extern const char distill_opts_help[];

void distill_opts_default(distill_opts *d);
/* Parses argv[1..argc) (the part before "--"); on error prints and returns 0. */
int distill_opts_parse(const char *cmd, int argc, char **argv, distill_opts *d);
/* Resolves `auto` tau, writes OUT/distill.json, runs the training with the hook; returns the exit
 * code. res (may be NULL) gets the training result. */
int distill_run(const char *cmd, distill_opts *d, uakd_train_config *c, uakd_train_result *res);
/* Whether the run in dir used these settings (uakd_train_config_compare, then distill.json key by
 * key; tau^2 is not compared under --tau auto). why (size cap) gets "" or the first difference. */
uakd_status distill_run_compare(const char *dir, const distill_opts *d, const uakd_train_config *c, char *why,
                                size_t cap);

#endif
