/* `uakd ablate --family spnv2`: the distillation methods on an SPNv2 student with the same data,
 * schedule and student seeds S, S+1, ..., each run (and each ensemble member) evaluated on the
 * validation list (uakd/spn_infer.h); mean and sample standard deviation over seeds of E_T, E_R,
 * E_pose and the rejection rate, as Markdown (DIR/ablation.md) and JSON (DIR/ablation.json).
 * Runs live in DIR/<method>_seed<S>/; finished runs are reused. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "distill_opts.h"
#include "jobs.h"
#include "spn_cli.h"
#include "uakd/distill_spn.h"
#include "uakd/fileio.h"
#include "uakd/json.h"

#define MAX_SEEDS 16
#define NMET 4

static const char *const heads[NMET] = {"E_T (m)", "E_R (deg)", "E_pose", "rejected (%)"};
static const char *const keys[NMET] = {"E_T", "E_R_deg", "E_pose", "rejected"};

/* Evaluates a model directory on the validation list of c's data. */
static uakd_status evaluate(const char *dir, const uakd_spn_train_config *c, double v[NMET]) {
    uakd_spn_model_info info;
    uakd_spnnet *m = NULL;
    UAKD_TRY(uakd_spn_model_open(dir, 4, &info, &m));
    uakd_dataset *ds = NULL;
    uakd_status st = uakd_dataset_load_speedplus(c->data_root, c->domain, c->val_list ? c->val_list : "validation",
                                                 c->keypoints_csv, &ds);
    uakd_spn_eval_stats s;
    uakd_spn_config sc;
    uakd_spn_config_for(&info.model, &sc);
    if (st == UAKD_OK)
        st = uakd_spn_evaluate(m, &sc, ds, NULL, c->val_max, uakd_spn_domain_thresholds(c->domain), NULL, NULL, &s, NULL);
    if (st == UAKD_OK) {
        v[0] = s.E_T, v[1] = s.E_R_deg, v[2] = s.E_pose;
        v[3] = 100.0 * (s.images - s.outcomes[UAKD_SPN_OK]) / (s.images ? s.images : 1);
    }
    uakd_dataset_free(ds);
    uakd_spnnet_free(m);
    return st;
}

static int run_exists(const char *dir) {
    char p[4300];
    struct stat sb;
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    return stat(p, &sb) == 0;
}

static void mean_sd(const double *x, int n, double *mean, double *sd) {
    double s = 0, q = 0;
    for (int i = 0; i < n; i++) s += x[i];
    *mean = s / n;
    for (int i = 0; i < n; i++) q += (x[i] - *mean) * (x[i] - *mean);
    *sd = n > 1 ? sqrt(q / (n - 1)) : 0;
}

/* One training run (student, or a student with the distillation hook); the exit code. */
typedef struct spn_job {
    uakd_spn_train_config *c;
    const uakd_distill_config *dc;
    int per_kp;
    const char *ensemble;
} spn_job;

static int run_spn_job(void *arg) {
    const spn_job *j = arg;
    uakd_spn_distill *sd = NULL;
    if (j->dc->method != UAKD_DISTILL_STUDENT) {
        uakd_status st = uakd_spn_distill_new(j->dc, j->per_kp, j->ensemble, &j->c->model, j->c->batch, &sd);
        if (st != UAKD_OK) return uakd_cli_report("ablate", st);
        j->c->hook = uakd_spn_distill_hook(sd);
    }
    const int rc = spn_train_run_cli("ablate", j->c);
    uakd_spn_distill_free(sd);
    return rc;
}

int spn_cmd_ablate(int argc, char **argv) {
    if (uakd_cli_wants_help(argc, argv)) {
        printf("usage: uakd ablate --family spnv2 --ensemble DIR --out DIR [--methods LIST] [--seeds N] [--seed S] [--jobs J]\n"
               "                   [--per-keypoint] [distill options] -- <uakd train --family spnv2 options>\n\n"
               "Trains the SPNv2 student with each method (student seeds S..S+N-1), evaluates every run and\n"
               "every ensemble member on the validation list (rejected images count as failures), and writes\n"
               "DIR/ablation.md and DIR/ablation.json: mean +- sample standard deviation over seeds of E_T,\n"
               "E_R, E_pose and the rejection rate. Methods [student,adlp+fkd,uakd+pfkd], seeds [3].\n"
               "Finished runs (model.safetensors present) are reused. --jobs J trains J runs at the same time\n"
               "as separate processes, each writing DIR/<method>_seed<S>.log [1].\n");
        return 0;
    }
    const int sep = uakd_cli_find_sep(argc, argv);
    const char *methods = "student,adlp+fkd,uakd+pfkd";
    long seeds = 3, seed0 = 1, jobs = 1;
    int per_kp = 0, dargc = 0;
    char **dargv = calloc((size_t)sep + 1, sizeof *dargv);
    if (!dargv) return uakd_cli_report("ablate", UAKD_ENOMEM);
    int ok = 1;
    for (int i = 0; i < sep && ok; i++) {
        if (!strcmp(argv[i], "--per-keypoint")) per_kp = 1;
        else if (!strcmp(argv[i], "--family") && i + 1 < sep) i++;
        else if (!strcmp(argv[i], "--methods") && i + 1 < sep) methods = argv[++i];
        else if (!strcmp(argv[i], "--seeds") && i + 1 < sep) ok = uakd_cli_parse_long("ablate", "--seeds", argv[++i], 1, MAX_SEEDS, &seeds);
        else if (!strcmp(argv[i], "--jobs") && i + 1 < sep) ok = uakd_cli_parse_long("ablate", "--jobs", argv[++i], 1, 256, &jobs);
        else if (!strcmp(argv[i], "--seed") && i + 1 < sep) ok = uakd_cli_parse_long("ablate", "--seed", argv[++i], 0, 1L << 40, &seed0);
        else dargv[dargc++] = argv[i];
    }
    distill_opts d;
    distill_opts_default(&d);
    ok = ok && distill_opts_parse("ablate", dargc, dargv, &d);
    free(dargv);
    uakd_spn_train_config base;
    if (!ok || !spn_train_parse(argc - sep, argv + sep, &base)) return UAKD_EXIT_USAGE;
    if (!d.ensemble || !d.out || d.tau_auto) {
        fprintf(stderr, "uakd ablate: --ensemble and --out are required; --tau auto is not supported for spnv2\n");
        return UAKD_EXIT_USAGE;
    }
    char names[UAKD_DISTILL_METHODS][32];
    uakd_distill_method ms[UAKD_DISTILL_METHODS];
    int nm = 0;
    for (const char *p = methods; *p && nm < UAKD_DISTILL_METHODS;) {
        const size_t len = strcspn(p, ",");
        if (len == 0 || len >= 32) return UAKD_EXIT_USAGE;
        memcpy(names[nm], p, len);
        names[nm][len] = 0;
        if (uakd_distill_method_parse(names[nm], &ms[nm]) != UAKD_OK) return uakd_cli_report("ablate", UAKD_EINVAL);
        nm++;
        p += len + (p[len] == ',');
    }
    static double vals[UAKD_DISTILL_METHODS][MAX_SEEDS][NMET];
    static char dirs[UAKD_DISTILL_METHODS][MAX_SEEDS][4000];
    cli_jobs jobs_state = {(int)jobs, 0, 0};
    if (mkdir(d.out, 0777) != 0 && errno != EEXIST) {
        fprintf(stderr, "uakd ablate: cannot create %s: %s\n", d.out, strerror(errno));
        return UAKD_EXIT_FAILURE;
    }
    for (int k = 0; k < nm; k++)
        for (int s = 0; s < seeds; s++) {
            char dir[4000];
            snprintf(dir, sizeof dir, "%s/%s_seed%ld", d.out, names[k], seed0 + s);
            memcpy(dirs[k][s], dir, sizeof dir);
            if (run_exists(dir)) continue;
            uakd_spn_train_config c = base;
            c.out_dir = dir;
            c.seed = (uint64_t)(seed0 + s);
            c.val_list = NULL;
            uakd_distill_config dc = d.cfg;
            dc.method = ms[k];
            fprintf(stderr, "ablate: %s seed %ld\n", names[k], seed0 + s);
            spn_job job = {&c, &dc, per_kp, d.ensemble};
            if (jobs == 1) {
                const int rc = run_spn_job(&job);
                if (rc != UAKD_EXIT_OK) return rc;
                continue;
            }
            char log[4200];
            snprintf(log, sizeof log, "%s.log", dir);
            cli_jobs_start(&jobs_state, log, run_spn_job, &job);
        }
    cli_jobs_wait_all(&jobs_state);
    if (jobs_state.failed) {
        fprintf(stderr, "uakd ablate: a training run failed or was interrupted (see %s/*.log); rerun the same command to "
                        "resume it\n", d.out);
        return UAKD_EXIT_FAILURE;
    }
    for (int k = 0; k < nm; k++)
        for (int s = 0; s < seeds; s++) {
            uakd_status st = evaluate(dirs[k][s], &base, vals[k][s]);
            if (st != UAKD_OK) return uakd_cli_report("ablate", st);
        }
    char path[4200];
    snprintf(path, sizeof path, "%s/ablation.md", d.out);
    FILE *f = fopen(path, "w");
    if (!f) return uakd_cli_report("ablate", uakd_fail(UAKD_EIO, "ablate: cannot write %s", path));
    cJSON *j = cJSON_CreateObject(), *rows = cJSON_CreateArray();
    fprintf(f, "| run | seeds |");
    for (int q = 0; q < NMET; q++) fprintf(f, " %s |", heads[q]);
    fprintf(f, "\n|---|---|%s\n", "---|---|---|---|");
    for (int e = 0; e < UAKD_ENSEMBLE_MAX; e++) {
        char md[4096];
        if (uakd_ensemble_member_dir(d.ensemble, e, md, sizeof md) != UAKD_OK || !run_exists(md)) break;
        double v[NMET];
        uakd_status st = evaluate(md, &base, v);
        if (st != UAKD_OK) return fclose(f), cJSON_Delete(j), uakd_cli_report("ablate", st);
        fprintf(f, "| teacher member_%d | - |", e);
        for (int q = 0; q < NMET; q++) fprintf(f, " %.4g |", v[q]);
        fprintf(f, "\n");
        cJSON *r = cJSON_CreateObject();
        cJSON_AddStringToObject(r, "run", md);
        for (int q = 0; q < NMET; q++) cJSON_AddNumberToObject(r, keys[q], v[q]);
        cJSON_AddItemToArray(rows, r);
    }
    for (int k = 0; k < nm; k++) {
        fprintf(f, "| %s | %ld |", names[k], seeds);
        cJSON *r = cJSON_CreateObject();
        cJSON_AddStringToObject(r, "run", names[k]);
        for (int q = 0; q < NMET; q++) {
            double x[MAX_SEEDS], mu, sd;
            for (int s = 0; s < seeds; s++) x[s] = vals[k][s][q];
            mean_sd(x, (int)seeds, &mu, &sd);
            fprintf(f, " %.4g +- %.2g |", mu, sd);
            char key[48];
            cJSON_AddNumberToObject(r, keys[q], mu);
            snprintf(key, sizeof key, "%s_sd", keys[q]);
            cJSON_AddNumberToObject(r, key, sd);
        }
        fprintf(f, "\n");
        cJSON_AddItemToArray(rows, r);
    }
    fprintf(f, "\nRejected images count as failures (t = 0, 180 deg: E_pose = 1 + pi). Transport: %s.\n",
            per_kp ? "per keypoint" : "joint over the keypoints");
    fclose(f);
    cJSON_AddItemToObject(j, "rows", rows);
    snprintf(path, sizeof path, "%s/ablation.json", d.out);
    uakd_status st = uakd_json_write_atomic(path, j);
    if (st != UAKD_OK) return uakd_cli_report("ablate", st);
    snprintf(path, sizeof path, "%s/ablation.md", d.out);
    void *md = NULL;
    size_t size = 0;
    st = uakd_read_file(path, (size_t)1 << 20, &md, &size);
    if (st != UAKD_OK) return uakd_cli_report("ablate", st);
    fwrite(md, 1, size, stdout);
    free(md);
    return UAKD_EXIT_OK;
}
