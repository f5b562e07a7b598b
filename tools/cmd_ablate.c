/* `uakd ablate`: the methods of method.md §7 with the same data, schedule and student seeds,
 * each run evaluated on a held-out split (uakd/infer.h), summarised as mean and spread (sample
 * standard deviation over seeds) per method next to the ensemble members; Markdown, JSON and a
 * bar chart. Finished runs (model.safetensors present) made with the same settings are reused (other
 * settings are an error); unfinished ones resume. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "distill_opts.h"
#include "jobs.h"
#include "uakd/fileio.h"
#include "uakd/json.h"
#include "uakd/infer.h"
#include "uakd/plot.h"
#include "uakd/report.h"
#include "spn_cli.h"
#include "wdr_opts.h"

#define MAX_SEEDS 16
#define NMET 6 /* metrics per run */

static const char *const metric_names[NMET] = {"add_005", "add_01", "add_02", "proj5", "median_add_d", "missing"};
static const char *const metric_heads[NMET] = {"ADD(-S)-0.05d (%)", "ADD(-S)-0.1d (%)", "ADD(-S)-0.2d (%)",
                                               "2D proj 5px (%)",   "median ADD/d",     "missing (%)"};

static void usage(FILE *f) {
    fprintf(f,
            "usage: uakd ablate --ensemble DIR --out DIR [options] -- <uakd train options>\n\n"
            "Trains the student with each method (same data, schedule and student seeds S, S+1, ...), evaluates\n"
            "every run and every ensemble member on the held-out split (test crops from the ground-truth box),\n"
            "and prints one table of mean +- standard deviation over seeds: ADD(-S) at 0.05/0.1/0.2 d, 2D\n"
            "projection @ 5 px, median ADD/d (predicted instances; missing ones count as infinite) and the\n"
            "missing rate. Writes DIR/ablation.md, DIR/ablation.json and DIR/ablation.png. Runs live in\n"
            "DIR/<method>_seed<S>/; finished runs are reused when their config.json and distill.json\n"
            "record the same settings (else ablate stops and names the difference), interrupted ones resume.\n\n"
            "options (defaults in brackets):\n"
            "  --family spnv2      SPNv2 heatmap networks on SPEED+ (see uakd ablate --family spnv2 --help)\n"
            "  --ensemble DIR      the teacher ensemble (required)\n"
            "  --out DIR           output directory (required)\n"
            "  --methods LIST      comma-separated [student,adlp,adlp+fkd,uakd,pfkd,uakd+pfkd]\n"
            "  --seeds N           student seeds per method, 1..%d [3]\n"
            "  --eval-split NAME   split to evaluate on [test]\n"
            "  --eval-max N        instances evaluated (the first of the split), 0 = all [0]\n"
            "  --jobs J            training runs at the same time, as separate processes; each then\n"
            "                      writes its output to DIR/<method>_seed<S>.log [1]\n"
            "  the method settings of `uakd distill` (not --method):\n%s"
            "  -- ...              the options of `uakd train` (data, student, schedule, --seed = first seed)\n\n"
            "example: uakd ablate --ensemble runs/ens --out runs/ablate --seeds 2 --methods student,adlp+fkd,uakd+pfkd \\\n"
            "             -- --data data-cache/ape --obj 1 --variant darknet-tiny-h --width 16 --input 128 --steps 600\n",
            MAX_SEEDS, distill_opts_help);
}

typedef struct row {
    char name[64];
    int runs;
    double v[MAX_SEEDS][NMET];
} row;

static int file_exists(const char *dir, const char *name) {
    char p[4200];
    struct stat st;
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return stat(p, &st) == 0;
}

static int cmp_double(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Evaluates a trained model directory into v[NMET]. */
static uakd_status evaluate(const char *model_dir, const uakd_dataset *ds, const uakd_eval_model *models, int n,
                            const int *obj_ids, int num_obj, int batch, double *v) {
    uakd_model_info info;
    uakd_wdrnet *m;
    UAKD_TRY(uakd_model_open(model_dir, batch, &info, &m));
    int *idx = malloc(sizeof(int) * (size_t)n);
    if (!idx) {
        uakd_wdrnet_free(m);
        return uakd_fail(UAKD_ENOMEM, "ablate: out of memory");
    }
    for (int i = 0; i < n; i++) idx[i] = i;
    uakd_infer_config ic;
    uakd_infer_config_default(&ic);
    uakd_eval_input in = {ds, models, idx, n, obj_ids, num_obj, NULL, NULL, NULL};
    uakd_eval_result r;
    memset(&r, 0, sizeof r);
    uakd_status st = uakd_infer_evaluate(m, &ic, &in, &r);
    if (st == UAKD_OK) {
        uakd_eval_stats s;
        uakd_eval_overall(&r.stats, &s);
        const double t = s.targets > 0 ? 100.0 / s.targets : 0;
        v[0] = s.add_pass[0] * t, v[1] = s.add_pass[1] * t, v[2] = s.add_pass[2] * t;
        v[3] = s.proj_pass * t, v[5] = s.missing * t;
        double *e = malloc(sizeof(double) * (size_t)(r.n > 0 ? r.n : 1));
        if (e) {
            for (int i = 0; i < r.n; i++) e[i] = r.samples[i].err_d;
            qsort(e, (size_t)r.n, sizeof *e, cmp_double);
            v[4] = r.n > 0 ? e[r.n / 2] : NAN;
            free(e);
        } else st = uakd_fail(UAKD_ENOMEM, "ablate: out of memory");
    }
    uakd_eval_result_free(&r);
    free(idx);
    uakd_wdrnet_free(m);
    return st;
}

static void mean_sd(const row *r, int k, double *mean, double *sd) {
    double s = 0, ss = 0;
    int n = 0;
    for (int i = 0; i < r->runs; i++)
        if (isfinite(r->v[i][k])) s += r->v[i][k], n++;
    *mean = n ? s / n : NAN;
    for (int i = 0; i < r->runs; i++)
        if (isfinite(r->v[i][k])) ss += (r->v[i][k] - *mean) * (r->v[i][k] - *mean);
    *sd = n > 1 ? sqrt(ss / (n - 1)) : 0;
}

static uakd_status write_outputs(const char *dir, const row *rows, int nrows, int seeds) {
    const char *head[NMET + 2] = {"model", "runs"};
    for (int k = 0; k < NMET; k++) head[k + 2] = metric_heads[k];
    uakd_md_table *t;
    UAKD_TRY(uakd_md_table_new(NMET + 2, head, &t));
    cJSON *j = cJSON_CreateObject(), *arr = cJSON_CreateArray();
    cJSON_AddNumberToObject(j, "seeds", seeds);
    cJSON_AddItemToObject(j, "rows", arr);
    uakd_status st = UAKD_OK;
    for (int k = 1; k < NMET + 2; k++) uakd_md_table_align(t, k, UAKD_ALIGN_RIGHT);
    const char *labels[64];
    double bm[64], bs[64];
    for (int i = 0; i < nrows && st == UAKD_OK; i++) {
        char runs[16];
        snprintf(runs, sizeof runs, "%d", rows[i].runs);
        st = uakd_md_table_row(t);
        if (st == UAKD_OK) st = uakd_md_table_text(t, rows[i].name);
        if (st == UAKD_OK) st = uakd_md_table_text(t, runs);
        cJSON *o = cJSON_CreateObject(), *vals = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "model", rows[i].name);
        cJSON_AddNumberToObject(o, "runs", rows[i].runs);
        for (int k = 0; k < NMET && st == UAKD_OK; k++) {
            double m, s;
            mean_sd(&rows[i], k, &m, &s);
            st = uakd_md_table_pm(t, m, s, k == 4 ? 3 : 1);
            cJSON *ms = cJSON_CreateObject(), *per = cJSON_CreateArray();
            if (isfinite(m)) cJSON_AddNumberToObject(ms, "mean", m);
            else cJSON_AddNullToObject(ms, "mean");
            cJSON_AddNumberToObject(ms, "sd", s);
            for (int r = 0; r < rows[i].runs; r++)
                cJSON_AddItemToArray(per, isfinite(rows[i].v[r][k]) ? cJSON_CreateNumber(rows[i].v[r][k]) : cJSON_CreateNull());
            cJSON_AddItemToObject(ms, "runs", per);
            cJSON_AddItemToObject(vals, metric_names[k], ms);
            if (k == 1) labels[i] = rows[i].name, bm[i] = isfinite(m) ? m : 0, bs[i] = s;
        }
        cJSON_AddItemToObject(o, "metrics", vals);
        cJSON_AddItemToArray(arr, o);
    }
    uakd_strbuf md = {0};
    if (st == UAKD_OK) st = uakd_md_table_format(t, &md);
    uakd_md_table_free(t);
    char p[4200];
    if (st == UAKD_OK) {
        fputs(md.s, stdout);
        snprintf(p, sizeof p, "%s/ablation.md", dir);
        st = uakd_write_file_atomic(p, md.s, md.len);
    }
    uakd_strbuf_free(&md);
    snprintf(p, sizeof p, "%s/ablation.json", dir);
    if (st == UAKD_OK) st = uakd_json_write_atomic(p, j);
    else cJSON_Delete(j);
    if (st == UAKD_OK && nrows <= 64) {
        uakd_plot_opts po = {0};
        po.width = 200 + 110 * nrows;
        po.title = "ADD(-S)-0.1d, mean +- sd over student seeds";
        po.ylabel = "success (%)";
        uakd_image im = {0};
        st = uakd_plot_bars(&po, labels, bm, bs, nrows, &im, NULL);
        snprintf(p, sizeof p, "%s/ablation.png", dir);
        if (st == UAKD_OK) st = uakd_image_write(p, &im, 95);
        uakd_image_free(&im);
    }
    return st;
}

static int parse_methods(const char *s, uakd_distill_method *out, int *n) {
    char buf[256];
    snprintf(buf, sizeof buf, "%s", s);
    *n = 0;
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (*n >= UAKD_DISTILL_METHODS || uakd_distill_method_parse(tok, &out[*n]) != UAKD_OK) {
            uakd_cli_report("ablate", UAKD_EINVAL);
            return 0;
        }
        (*n)++;
    }
    return *n > 0;
}

typedef struct run_job {
    distill_opts *d;
    uakd_train_config *c;
} run_job;

static int run_distill_job(void *arg) {
    const run_job *r = arg;
    return distill_run("ablate", r->d, r->c, NULL);
}

int uakd_cmd_ablate(int argc, char **argv) {
    if (spn_cli_family(argc, argv)) return spn_cmd_ablate(argc, argv); /* SPNv2 students */
    if (uakd_cli_wants_help(argc, argv)) return usage(stdout), 0;
    const int sep = uakd_cli_find_sep(argc, argv);
    /* ablate's own options first, the rest are the method settings of distill */
    static const struct option opts[] = {{"methods", 1, 0, 'm'}, {"seeds", 1, 0, 's'}, {"eval-split", 1, 0, 'e'},
                                         {"eval-max", 1, 0, 'x'}, {"jobs", 1, 0, 'j'},   {0, 0, 0, 0}};
    uakd_distill_method methods[UAKD_DISTILL_METHODS] = {UAKD_DISTILL_STUDENT, UAKD_DISTILL_ADLP, UAKD_DISTILL_ADLP_FKD,
                                                         UAKD_DISTILL_UAKD,    UAKD_DISTILL_PFKD, UAKD_DISTILL_UAKD_PFKD};
    int nmethods = UAKD_DISTILL_METHODS;
    long seeds = 3, eval_max = 0, jobs = 1;
    const char *eval_split = "test";
    char **rest = malloc(sizeof(char *) * (size_t)(sep + 1));
    if (!rest) return UAKD_EXIT_FAILURE;
    int nrest = 0, ok = 1;
    rest[nrest++] = argv[0];
    for (int i = 1; i < sep && ok; i++) {
        const struct option *o = NULL;
        for (int k = 0; opts[k].name; k++)
            if (!strncmp(argv[i], "--", 2) && !strcmp(argv[i] + 2, opts[k].name)) o = &opts[k];
        if (!o) {
            rest[nrest++] = argv[i];
            continue;
        }
        if (i + 1 >= sep) {
            fprintf(stderr, "uakd ablate: %s needs a value\n", argv[i]);
            ok = 0;
            break;
        }
        const char *v = argv[++i];
        if (o->val == 'm') ok = parse_methods(v, methods, &nmethods);
        else if (o->val == 's') ok = uakd_cli_parse_long("ablate", "--seeds", v, 1, MAX_SEEDS, &seeds);
        else if (o->val == 'e') eval_split = v;
        else if (o->val == 'j') ok = uakd_cli_parse_long("ablate", "--jobs", v, 1, 256, &jobs);
        else ok = uakd_cli_parse_long("ablate", "--eval-max", v, 0, 100000000, &eval_max);
    }
    distill_opts d;
    distill_opts_default(&d);
    if (ok) ok = distill_opts_parse("ablate", nrest, rest, &d);
    free(rest);
    uakd_train_config base;
    if (ok) ok = wdr_train_parse("ablate", argc - sep, argv + sep, &base);
    if (!ok) return UAKD_EXIT_USAGE;
    if (!d.ensemble || !d.out || !base.data_root) {
        fprintf(stderr, "uakd ablate: --ensemble, --out and the train option --data are required (see --help)\n");
        return UAKD_EXIT_USAGE;
    }
    if (d.variant) base.variant = d.variant;
    if (d.width) base.width = d.width;
    if (mkdir(d.out, 0777) != 0 && errno != EEXIST) {
        fprintf(stderr, "uakd ablate: cannot create %s: %s\n", d.out, strerror(errno));
        return UAKD_EXIT_FAILURE;
    }
    /* training runs */
    static char dirs[UAKD_DISTILL_METHODS][MAX_SEEDS][4200];
    cli_jobs jobs_state = {(int)jobs, 0, 0};
    for (int mi = 0; mi < nmethods; mi++)
        for (int s = 0; s < seeds; s++) {
            const uint64_t seed = base.seed + (uint64_t)s;
            snprintf(dirs[mi][s], sizeof dirs[mi][s], "%s/%s_seed%llu", d.out, uakd_distill_method_name(methods[mi]),
                     (unsigned long long)seed);
            distill_opts dm = d;
            dm.cfg.method = methods[mi];
            uakd_train_config c = base;
            c.out_dir = dirs[mi][s];
            c.seed = seed;
            if (file_exists(dirs[mi][s], "model.safetensors")) {
                char why[512];
                uakd_status st = distill_run_compare(dirs[mi][s], &dm, &c, why, sizeof why);
                if (st != UAKD_OK) return uakd_cli_report("ablate", st);
                if (why[0]) {
                    fprintf(stderr, "uakd ablate: %s was trained with other settings (%s): delete it or use another --out\n",
                            dirs[mi][s], why);
                    return UAKD_EXIT_FAILURE;
                }
                fprintf(stderr, "ablate: %s finished with the same settings, reused\n", dirs[mi][s]);
                continue;
            }
            c.resume = file_exists(dirs[mi][s], "checkpoint.safetensors");
            fprintf(stderr, "ablate: %s (method %s, seed %llu)%s\n", dirs[mi][s], uakd_distill_method_name(methods[mi]),
                    (unsigned long long)seed, c.resume ? ", resuming" : "");
            if (jobs == 1) {
                const int rc = distill_run("ablate", &dm, &c, NULL);
                if (rc) return rc;
                continue;
            }
            char log[4300];
            snprintf(log, sizeof log, "%s.log", dirs[mi][s]);
            run_job rj = {&dm, &c};
            cli_jobs_start(&jobs_state, log, run_distill_job, &rj);
        }
    cli_jobs_wait_all(&jobs_state);
    if (jobs_state.failed) {
        fprintf(stderr, "uakd ablate: a training run failed or was interrupted (see %s/*.log); rerun the same command to "
                        "resume it\n", d.out);
        return UAKD_EXIT_FAILURE;
    }
    /* evaluation */
    uakd_bop_options bo = {base.obj_ids, base.num_obj_ids, 0};
    uakd_dataset *ds;
    uakd_status st = uakd_dataset_load_bop(base.data_root, eval_split, &bo, &ds);
    if (st != UAKD_OK) return uakd_cli_report("ablate", st);
    uakd_eval_model *models = NULL;
    st = uakd_eval_models_load(base.data_root, ds, &models);
    int n = ds->num_instances;
    if (eval_max > 0 && n > eval_max) n = (int)eval_max;
    uakd_ensemble_info ens;
    if (st == UAKD_OK) st = uakd_ensemble_read(d.ensemble, &ens);
    row *rows = calloc((size_t)(nmethods + UAKD_ENSEMBLE_MAX), sizeof *rows);
    if (st == UAKD_OK && !rows) st = uakd_fail(UAKD_ENOMEM, "ablate: out of memory");
    int nrows = 0;
    for (int e = 0; st == UAKD_OK && e < ens.members; e++) {
        char md[4200];
        st = uakd_ensemble_member_dir(d.ensemble, e, md, sizeof md);
        row *r = &rows[nrows++];
        snprintf(r->name, sizeof r->name, "teacher member_%d", e);
        r->runs = 1;
        if (st == UAKD_OK) st = evaluate(md, ds, models, n, base.obj_ids, base.num_obj_ids, base.batch, r->v[0]);
    }
    for (int mi = 0; st == UAKD_OK && mi < nmethods; mi++) {
        row *r = &rows[nrows++];
        snprintf(r->name, sizeof r->name, "%s", uakd_distill_method_name(methods[mi]));
        for (int s = 0; st == UAKD_OK && s < seeds; s++, r->runs++)
            st = evaluate(dirs[mi][s], ds, models, n, base.obj_ids, base.num_obj_ids, base.batch, r->v[s]);
    }
    if (st == UAKD_OK) {
        fprintf(stderr, "ablate: %d instances of %s/%s, test crops from the ground-truth box\n", n, base.data_root,
                eval_split);
        st = write_outputs(d.out, rows, nrows, (int)seeds);
    }
    free(rows);
    if (models) uakd_eval_models_free(models, ds->num_objects);
    uakd_dataset_free(ds);
    return st == UAKD_OK ? UAKD_EXIT_OK : uakd_cli_report("ablate", st);
}
