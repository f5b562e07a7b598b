/* `uakd ensemble --family spnv2` (E SPNv2 members differing only in the seed, in DIR/member_<e>/,
 * finished ones skipped, unfinished ones resumed) and `uakd distill --family spnv2` (a student
 * trained with the heatmap distillation hook of uakd/distill_spn.h). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "distill_opts.h"
#include "spn_cli.h"
#include "uakd/distill_spn.h"
#include "wdr_opts.h"

static int exists(const char *dir, const char *name) {
    char p[4300];
    struct stat sb;
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return stat(p, &sb) == 0;
}

int spn_cmd_ensemble(int argc, char **argv) {
    if (uakd_cli_wants_help(argc, argv)) {
        printf("usage: uakd ensemble --family spnv2 --out DIR [--members E] [--seed S] -- <uakd train --family spnv2 "
               "options>\n\nTrains E SPNv2 members (seed S + e) into DIR/member_<e>/; finished members are skipped,\n"
               "unfinished ones resume from their checkpoint.\n\n"
               "example: uakd ensemble --family spnv2 --members 3 --out runs/spn-ens -- --data ds --keypoints kp.csv \\\n"
               "             --reduced --input 256x128 --batch 8 --steps 600\n");
        return 0;
    }
    const int sep = uakd_cli_find_sep(argc, argv);
    const char *dir = NULL;
    long members = 5, seed = -1;
    static const struct option opts[] = {{"family", 1, 0, 'F'}, {"out", 1, 0, 'o'}, {"members", 1, 0, 'E'},
                                         {"seed", 1, 0, 'S'}, {0, 0, 0, 0}};
    int o, ok = 1;
    optind = 1;
    opterr = 0;
    while (ok && (o = getopt_long(sep, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case 'F': break;
        case 'o': dir = optarg; break;
        case 'E': ok = uakd_cli_parse_long("ensemble", "--members", optarg, 2, UAKD_ENSEMBLE_MAX, &members); break;
        case 'S': ok = uakd_cli_parse_long("ensemble", "--seed", optarg, 0, 1L << 62, &seed); break;
        default:
            fprintf(stderr, "uakd ensemble: unknown or incomplete option '%s' (train options go after --)\n", argv[optind - 1]);
            return UAKD_EXIT_USAGE;
        }
    }
    if (!ok) return UAKD_EXIT_USAGE;
    if (optind < sep || !dir) {
        fprintf(stderr, "uakd ensemble: --out DIR is required, train options go after --\n");
        return UAKD_EXIT_USAGE;
    }
    uakd_spn_train_config base;
    if (!spn_train_parse(argc - sep, argv + sep, &base)) return UAKD_EXIT_USAGE;
    if (base.out_dir) {
        fprintf(stderr, "uakd ensemble: give the directory with --out before --, not in the train options\n");
        return UAKD_EXIT_USAGE;
    }
    if (seed < 0) seed = (long)base.seed;
    for (int e = 0; e < members; e++) {
        char md[4096], cmd[48];
        uakd_status st = uakd_ensemble_member_dir(dir, e, md, sizeof md);
        if (st != UAKD_OK) return uakd_cli_report("ensemble", st);
        if (exists(md, "model.safetensors")) {
            fprintf(stderr, "ensemble: member_%d finished\n", e);
            continue;
        }
        uakd_spn_train_config c = base;
        c.out_dir = md;
        c.seed = (uint64_t)seed + (uint64_t)e;
        c.resume = exists(md, "checkpoint.safetensors");
        snprintf(cmd, sizeof cmd, "ensemble member_%d", e);
        fprintf(stderr, "ensemble: member_%d (seed %llu)%s\n", e, (unsigned long long)c.seed, c.resume ? ", resuming" : "");
        const int rc = spn_train_run_cli(cmd, &c);
        if (rc != UAKD_EXIT_OK) return rc;
    }
    printf("ensemble: %s (%ld members)\n", dir, members);
    return UAKD_EXIT_OK;
}

int spn_cmd_distill(int argc, char **argv) {
    if (uakd_cli_wants_help(argc, argv)) {
        printf("usage: uakd distill --family spnv2 --ensemble DIR --out DIR [--per-keypoint] [options] -- <uakd train "
               "--family spnv2 options>\n\nTrains an SPNv2 student with L = L_heatmap + gamma_p L_pred + gamma_f L_feat "
               "from an SPNv2\nensemble (uakd ensemble --family spnv2): local predictions are the sub-pixel heatmap peaks,\n"
               "confidence the peak value; the transport is joint over the keypoints (one N = M = 11 problem\n"
               "per image) unless --per-keypoint (11 problems of 1 x 1); PFKD / FKD on P2 through a 1x1 adapter.\n"
               "--tau auto is not supported for this family (give --tau PX).\n\noptions:\n%s"
               "  --per-keypoint      one 1 x 1 transport problem per keypoint\n\n"
               "example: uakd distill --family spnv2 --method uakd+pfkd --ensemble runs/spn-ens --out runs/spn-st -- \\\n"
               "             --data ds --keypoints kp.csv --reduced --input 256x128 --steps 600\n",
               distill_opts_help);
        return 0;
    }
    const int sep = uakd_cli_find_sep(argc, argv);
    char **dargv = calloc((size_t)sep + 1, sizeof *dargv);
    if (!dargv) return uakd_cli_report("distill", UAKD_ENOMEM);
    int dargc = 0, per_kp = 0;
    for (int i = 0; i < sep; i++) {
        if (!strcmp(argv[i], "--per-keypoint")) per_kp = 1;
        else if (!strcmp(argv[i], "--family=spnv2")) continue;
        else if (!strcmp(argv[i], "--family") && i + 1 < sep) i++;
        else dargv[dargc++] = argv[i];
    }
    distill_opts d;
    distill_opts_default(&d);
    int ok = distill_opts_parse("distill", dargc, dargv, &d);
    free(dargv);
    if (!ok) return UAKD_EXIT_USAGE;
    if (d.tau_auto || d.variant || d.width) {
        fprintf(stderr, "uakd distill: --tau auto, --variant and --width are WDRNet options; for spnv2 give --tau PX and "
                        "the student in the train options (--phi, --reduced)\n");
        return UAKD_EXIT_USAGE;
    }
    uakd_spn_train_config c;
    if (!spn_train_parse(argc - sep, argv + sep, &c)) return UAKD_EXIT_USAGE;
    if (d.out) c.out_dir = d.out;
    if (!d.ensemble || !c.out_dir) {
        fprintf(stderr, "uakd distill: --ensemble and --out are required (see uakd distill --family spnv2 --help)\n");
        return UAKD_EXIT_USAGE;
    }
    if (d.cfg.method == UAKD_DISTILL_STUDENT) return spn_train_run_cli("distill", &c);
    uakd_spn_distill *sd = NULL;
    uakd_status st = uakd_spn_distill_new(&d.cfg, per_kp, d.ensemble, &c.model, c.batch, &sd);
    if (st != UAKD_OK) return uakd_cli_report("distill", st);
    fprintf(stderr, "distill: %s (%s transport) from %s\n", uakd_distill_method_name(d.cfg.method),
            per_kp ? "per-keypoint" : "joint", d.ensemble);
    c.hook = uakd_spn_distill_hook(sd);
    const int rc = spn_train_run_cli("distill", &c);
    uakd_spn_distill_free(sd);
    return rc;
}
