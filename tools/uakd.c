/* uakd command-line front end: dispatches `uakd <command> [options]` to the command's file
 * (tools/cmd_<name>.c), turns library statuses into exit codes and messages on stderr. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

static const uakd_cli_command commands[] = {
    {"version", "print the version and build features", uakd_cmd_version},
    {"data", "inspect a BOP or SPEED+ dataset, write splits and example crops", uakd_cmd_data},
    {"synth", "render a synthetic BOP or SPEED+ dataset", uakd_cmd_synth},
    {"pnp", "pose from 3D-2D correspondences (JSON in, JSON out)", uakd_cmd_pnp},
    {"convert", "convert darknet .weights into safetensors for a network description", uakd_cmd_convert},
    {"netinfo", "check a network description and print its layers, parameters and FLOPs", uakd_cmd_netinfo},
    {"train", "train a WDRNet keypoint network on a BOP dataset", uakd_cmd_train},
    {"eval", "score a trained WDRNet on a BOP split (ADD(-S), 2D projection) and write a report", uakd_cmd_eval},
    {"predict", "pose of an object in one image from a trained WDRNet (JSON and an overlay)", uakd_cmd_predict},
    {"ensemble", "train a teacher ensemble (members differing only in seed), resumable", uakd_cmd_ensemble},
    {"uncertainty", "ensemble uncertainty over a dataset: histogram of u, per-corner statistics", uakd_cmd_uncertainty},
    {"distill", "train a compact student from a teacher ensemble (UAKD, PFKD and baselines)", uakd_cmd_distill},
    {"ablate", "compare distillation methods over student seeds (table, JSON, chart)", uakd_cmd_ablate},
    {"fit-demo", "train a small keypoint network on generated images (engine demo)", uakd_cmd_fit_demo},
};

static void usage(FILE *f) {
    fprintf(f, "usage: uakd <command> [options]   (uakd <command> --help for details)\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-12s %s\n", commands[i].name, commands[i].summary);
}

/* Thread settings that libgomp and OpenBLAS read once, at start-up, so they must be in the
 * environment before the process begins:
 * - OMP_WAIT_POLICY: by default idle OpenMP workers spin, which on a busy two-core machine steals
 *   the cores the work needs (measured 8x slower training); passive makes them sleep.
 * - OPENBLAS_NUM_THREADS: the pose solver's small LAPACK calls gain nothing from BLAS threads, and
 *   those threads yield-spin (a 60-crop evaluation took 6 s with one, > 60 s without on a busy
 *   machine); the convolution fallback sets its BLAS thread count itself.
 * Unless the user chose them, restart once with both set. */
static void prefer_quiet_threads(char **argv) {
    int changed = 0;
#ifdef _OPENMP
    if (!getenv("OMP_WAIT_POLICY")) changed = !setenv("OMP_WAIT_POLICY", "passive", 1);
#endif
    if (!getenv("OPENBLAS_NUM_THREADS")) changed |= !setenv("OPENBLAS_NUM_THREADS", "1", 1);
    if (changed) execv("/proc/self/exe", argv); /* returns only on failure: carry on as we are */
}

int main(int argc, char **argv) {
    prefer_quiet_threads(argv);
    uakd_cli_init_logging();
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? UAKD_EXIT_USAGE : 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name)) return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "uakd: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return UAKD_EXIT_USAGE;
}
