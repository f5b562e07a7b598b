/* `uakd ensemble`: trains E teacher members of one architecture that differ only in the seed
 * (initialisation, data order, augmentation, assignment) into DIR/member_<e>/, skipping finished
 * members and resuming unfinished ones from their checkpoint; one after another or as J parallel
 * processes. Writes DIR/ensemble.json (uakd/distill.h). */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "jobs.h"
#include "uakd/distill.h"
#include "uakd/train.h"
#include "spn_cli.h"
#include "wdr_opts.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: uakd ensemble --out DIR [--members E] [--jobs J] [--seed S] -- <uakd train options>\n\n"
            "Trains E teachers of one architecture, identical except for the seed (member e uses seed\n"
            "S + e), into DIR/member_<e>/ (each a `uakd train` directory). Finished members (model.safetensors\n"
            "present) are skipped, unfinished ones resume from their checkpoint, so rerunning the same\n"
            "command completes an interrupted ensemble. DIR/ensemble.json records the seeds, the\n"
            "validation ADD(-S)-0.1d of each member and the designated PFKD member (the best one).\n\n"
            "options:\n"
            "  --family spnv2      SPNv2 heatmap networks on SPEED+ (see uakd ensemble --family spnv2 --help)\n"
            "  --out DIR      ensemble directory, created (required)\n"
            "  --members E    number of members, 2..%d [5]\n"
            "  --jobs J       members trained at the same time, as separate processes [1]\n"
            "  --seed S       seed of member 0 [the train options' --seed, else 1]\n"
            "  -- ...         the options of `uakd train` (see uakd train --help) except --out\n\n"
            "example: uakd ensemble --members 3 --out runs/ens -- --data data-cache/ape --obj 1 \\\n"
            "             --variant darknet-tiny-h --width 64 --input 128 --batch 8 --steps 2000\n",
            UAKD_ENSEMBLE_MAX);
}

static int print_state(const char *dir, int members, uint64_t s0, uakd_ensemble_info *info) {
    uakd_status st = uakd_ensemble_scan(dir, members, s0, info);
    if (st == UAKD_OK) st = uakd_ensemble_write(dir, info);
    if (st != UAKD_OK) return uakd_cli_report("ensemble", st);
    for (int e = 0; e < members; e++)
        fprintf(stderr, "  member_%d  seed %llu  %s  val ADD(-S)-0.1d %s%.1f%%\n", e, (unsigned long long)info->m[e].seed,
                info->m[e].finished ? "finished  " : (info->m[e].has_checkpoint ? "unfinished" : "not started"),
                isfinite(info->m[e].val_add_01) ? "" : "n/a ", isfinite(info->m[e].val_add_01) ? info->m[e].val_add_01 : 0.0);
    return UAKD_EXIT_OK;
}

/* Trains member e in this process; returns the exit code. */
static int train_member(const char *dir, int e, const uakd_ensemble_info *info, const uakd_train_config *base) {
    char md[4096], cmd[32];
    if (uakd_ensemble_member_dir(dir, e, md, sizeof md) != UAKD_OK) return uakd_cli_report("ensemble", UAKD_EINVAL);
    uakd_train_config c = *base;
    c.out_dir = md;
    c.seed = info->m[e].seed;
    c.resume = info->m[e].has_checkpoint;
    snprintf(cmd, sizeof cmd, "ensemble member_%d", e);
    fprintf(stderr, "ensemble: member_%d (seed %llu)%s\n", e, (unsigned long long)c.seed, c.resume ? ", resuming" : "");
    return wdr_train_run_cli(cmd, &c, NULL);
}

typedef struct member_job {
    const char *dir;
    int e;
    const uakd_ensemble_info *info;
    const uakd_train_config *base;
} member_job;

static int run_member_job(void *arg) {
    const member_job *m = arg;
    return train_member(m->dir, m->e, m->info, m->base);
}

int uakd_cmd_ensemble(int argc, char **argv) {
    if (spn_cli_family(argc, argv)) return spn_cmd_ensemble(argc, argv); /* SPNv2 members */
    if (uakd_cli_wants_help(argc, argv)) return usage(stdout), 0;
    const int sep = uakd_cli_find_sep(argc, argv);
    const char *dir = NULL;
    long members = 5, jobs = 1, seed = -1;
    static const struct option opts[] = {{"out", 1, 0, 'o'}, {"members", 1, 0, 'E'}, {"jobs", 1, 0, 'j'},
                                         {"seed", 1, 0, 'S'}, {0, 0, 0, 0}};
    int o, ok = 1;
    optind = 1;
    opterr = 0;
    while (ok && (o = getopt_long(sep, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case 'o': dir = optarg; break;
        case 'E': ok = uakd_cli_parse_long("ensemble", "--members", optarg, 2, UAKD_ENSEMBLE_MAX, &members); break;
        case 'j': ok = uakd_cli_parse_long("ensemble", "--jobs", optarg, 1, 64, &jobs); break;
        case 'S': ok = uakd_cli_parse_long("ensemble", "--seed", optarg, 0, 1L << 40, &seed); break;
        default:
            fprintf(stderr, "uakd ensemble: unknown or incomplete option '%s' (train options go after --)\n", argv[optind - 1]);
            return UAKD_EXIT_USAGE;
        }
    }
    if (!ok) return UAKD_EXIT_USAGE;
    if (optind < sep || !dir) {
        fprintf(stderr, "uakd ensemble: --out DIR is required, train options go after -- (see uakd ensemble --help)\n");
        return UAKD_EXIT_USAGE;
    }
    uakd_train_config base;
    if (!wdr_train_parse("ensemble", argc - sep, argv + sep, &base)) return UAKD_EXIT_USAGE;
    if (base.out_dir || base.resume) {
        fprintf(stderr, "uakd ensemble: --out and --resume belong to the ensemble, not to the train options\n");
        return UAKD_EXIT_USAGE;
    }
    if (!base.data_root) {
        fprintf(stderr, "uakd ensemble: the train options need --data\n");
        return UAKD_EXIT_USAGE;
    }
    if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
        fprintf(stderr, "uakd ensemble: cannot create %s: %s\n", dir, strerror(errno));
        return UAKD_EXIT_FAILURE;
    }
    const uint64_t s0 = seed >= 0 ? (uint64_t)seed : base.seed;
    uakd_ensemble_info info;
    int rc = print_state(dir, (int)members, s0, &info);
    if (rc) return rc;
    cli_jobs jobs_state = {(int)jobs, 0, 0};
    for (int e = 0; e < members && !jobs_state.failed; e++) {
        if (info.m[e].finished) {
            fprintf(stderr, "ensemble: member_%d finished, skipped\n", e);
            continue;
        }
        if (jobs == 1) {
            jobs_state.failed |= train_member(dir, e, &info, &base) != 0;
            continue;
        }
        member_job mj = {dir, e, &info, &base};
        cli_jobs_start(&jobs_state, NULL, run_member_job, &mj);
    }
    cli_jobs_wait_all(&jobs_state);
    const int failed = jobs_state.failed;
    fprintf(stderr, "ensemble %s:\n", dir);
    rc = print_state(dir, (int)members, s0, &info);
    if (rc) return rc;
    if (failed) {
        fprintf(stderr, "uakd ensemble: a member failed or was interrupted; rerun the same command to resume it\n");
        return UAKD_EXIT_FAILURE;
    }
    printf("ensemble: %s/ensemble.json (PFKD member %d)\n", dir, info.pfkd_member);
    return UAKD_EXIT_OK;
}
