/* `uakd distill`: trains a WDRNet student with the training loop of `uakd train` plus the
 * distillation hook of uakd/distill.h (UAKD, PFKD and the baselines of method.md §7). */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "distill_opts.h"
#include "uakd/distill.h"
#include "uakd/fileio.h"
#include "uakd/train.h"
#include "spn_cli.h"
#include "wdr_opts.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: uakd distill --ensemble DIR --out DIR [options] -- <uakd train options>\n\n"
            "Trains a compact WDRNet student with L = L_sup + gamma_p L_pred + gamma_f L_feat from a teacher\n"
            "ensemble made by `uakd ensemble`. The teachers run in inference mode on the student's augmented\n"
            "batch; per selected teacher cell and corner, the ensemble mean is the teacher point and the\n"
            "member variance s2 (input pixels) gives u = tanh(s2 / tau^2). Logs, checkpoints, Ctrl-C and\n"
            "--resume work as in `uakd train` (log keys kd_pred, kd_feat).\n\n"
            "options (defaults in brackets):\n"
            "  --family spnv2      SPNv2 heatmap networks on SPEED+ (see uakd distill --family spnv2 --help)\n"
            "%s"
            "  --ensemble DIR      the teacher ensemble (required)\n"
            "  --out DIR           output directory (or --out in the train options)\n"
            "  --variant V, --width F   the student architecture (or in the train options)\n"
            "  -- ...              the options of `uakd train` (data, student, schedule; see uakd train --help)\n\n"
            "example: uakd distill --method uakd+pfkd --ensemble runs/ens --out runs/student -- \\\n"
            "             --data data-cache/ape --obj 1 --variant darknet-tiny --width 32 --input 128 --steps 2000\n",
            distill_opts_help);
}

int uakd_cmd_distill(int argc, char **argv) {
    if (spn_cli_family(argc, argv)) return spn_cmd_distill(argc, argv); /* an SPNv2 student */
    if (uakd_cli_wants_help(argc, argv)) return usage(stdout), 0;
    const int sep = uakd_cli_find_sep(argc, argv);
    distill_opts d;
    distill_opts_default(&d);
    if (!distill_opts_parse("distill", sep, argv, &d)) return UAKD_EXIT_USAGE;
    uakd_train_config c;
    if (!wdr_train_parse("distill", argc - sep, argv + sep, &c)) return UAKD_EXIT_USAGE;
    if (d.out) c.out_dir = d.out;
    if (d.variant) c.variant = d.variant;
    if (d.width) c.width = d.width;
    if (!d.ensemble || !c.out_dir || !c.data_root) {
        fprintf(stderr, "uakd distill: --ensemble, --out and the train option --data are required (see --help)\n");
        return UAKD_EXIT_USAGE;
    }
    return distill_run("distill", &d, &c, NULL);
}
