/* Options of `uakd distill` / `uakd ablate` and one distillation run (distill_opts.h). */
#include "distill_opts.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "uakd/fileio.h"
#include "uakd/json.h"
#include "uakd/uncertainty.h"
#include "wdr_opts.h"

const char distill_opts_help[] =
    "  --method M          student, adlp, adlp+fkd, uakd, pfkd or uakd+pfkd [uakd+pfkd]\n"
    "  --gamma-p X         weight of L_pred [5]\n"
    "  --gamma-f X         weight of L_feat [0.1]\n"
    "  --lambda X          teacher mass lambda (1 - u) + (1 - lambda) c, in [0, 1] [0.5]\n"
    "  --tau X|auto        uncertainty scale in input pixels; auto: tau^2 = median of s2 over the\n"
    "                      training split's test crops [1]\n"
    "  --tau-images N      crops scanned for --tau auto, 0 = all [500]\n"
    "  --blur X            Sinkhorn blur, eps = blur^2 (normalised coordinates) [0.001]\n"
    "  --reach X           marginal relaxation, rho = reach^2 [0.5]\n"
    "  --scaling X         blur factor per eps-scaling iteration [0.5]\n"
    "  --final-iters N     Sinkhorn iterations at the target eps [10]\n"
    "  --tol X             early stop of the final iterations, 0 = off [0]\n"
    "  --detach-student-mass  no gradient into the student's confidences through its masses\n"
    "  --r N               PFKD region side in feature cells [11]\n"
    "  --fkd-temp X        FKD attention temperature (adlp+fkd) [0.5]\n"
    "  --feat-member E     ensemble member whose features are distilled [the ensemble's best]\n"
    "  --adapter-seed N    initialisation of the 1x1 channel adapter [1]\n";

void distill_opts_default(distill_opts *d) {
    memset(d, 0, sizeof *d);
    uakd_distill_config_default(&d->cfg);
    d->tau_images = 500;
}

int distill_opts_parse(const char *cmd, int argc, char **argv, distill_opts *d) {
    static const struct option opts[] = {
        {"method", 1, 0, 'm'},   {"gamma-p", 1, 0, 'p'},      {"gamma-f", 1, 0, 'f'},   {"lambda", 1, 0, 'l'},
        {"tau", 1, 0, 't'},      {"tau-images", 1, 0, 'T'},   {"blur", 1, 0, 'b'},      {"reach", 1, 0, 'r'},
        {"scaling", 1, 0, 's'},  {"final-iters", 1, 0, 'i'},  {"tol", 1, 0, 'x'},       {"detach-student-mass", 0, 0, 'D'},
        {"r", 1, 0, 'R'},        {"fkd-temp", 1, 0, 'k'},     {"feat-member", 1, 0, 'e'}, {"adapter-seed", 1, 0, 'a'},
        {"ensemble", 1, 0, 'E'}, {"out", 1, 0, 'o'},          {"variant", 1, 0, 'v'},   {"width", 1, 0, 'w'},
        {0, 0, 0, 0}};
    uakd_distill_config *c = &d->cfg;
    long v;
    double tau;
    int o, ok = 1;
    optind = 1;
    opterr = 0;
    while (ok && (o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case 'm':
            if (uakd_distill_method_parse(optarg, &c->method) != UAKD_OK) ok = 0, uakd_cli_report(cmd, UAKD_EINVAL);
            break;
        case 'p': ok = uakd_cli_parse_double(cmd, "--gamma-p", optarg, 0, 1e6, &c->gamma_p); break;
        case 'f': ok = uakd_cli_parse_double(cmd, "--gamma-f", optarg, 0, 1e6, &c->gamma_f); break;
        case 'l': ok = uakd_cli_parse_double(cmd, "--lambda", optarg, 0, 1, &c->lambda); break;
        case 't':
            if (!strcmp(optarg, "auto")) d->tau_auto = 1;
            else if ((ok = uakd_cli_parse_double(cmd, "--tau", optarg, 1e-6, 1e6, &tau))) c->tau2 = tau * tau, d->tau_auto = 0;
            break;
        case 'T': ok = uakd_cli_parse_long(cmd, "--tau-images", optarg, 0, 100000000, &d->tau_images); break;
        case 'b': ok = uakd_cli_parse_double(cmd, "--blur", optarg, 1e-9, 1e3, &c->uot.blur); break;
        case 'r': ok = uakd_cli_parse_double(cmd, "--reach", optarg, 1e-9, 1e9, &c->uot.reach); break;
        case 's': ok = uakd_cli_parse_double(cmd, "--scaling", optarg, 1e-3, 0.999, &c->uot.scaling); break;
        case 'i': ok = uakd_cli_parse_long(cmd, "--final-iters", optarg, 1, 100000, &v), c->uot.final_iters = (int)v; break;
        case 'x': ok = uakd_cli_parse_double(cmd, "--tol", optarg, 0, 1, &c->uot.tol); break;
        case 'D': c->detach_student_mass = 1; break;
        case 'R': ok = uakd_cli_parse_long(cmd, "--r", optarg, 1, 63, &v), c->region = (int)v; break;
        case 'k': ok = uakd_cli_parse_double(cmd, "--fkd-temp", optarg, 1e-6, 1e6, &c->fkd_temp); break;
        case 'e': ok = uakd_cli_parse_long(cmd, "--feat-member", optarg, 0, UAKD_ENSEMBLE_MAX - 1, &v), c->feat_member = (int)v; break;
        case 'a': ok = uakd_cli_parse_long(cmd, "--adapter-seed", optarg, 0, 1L << 40, &v), c->adapter_seed = (uint64_t)v; break;
        case 'E': d->ensemble = optarg; break;
        case 'o': d->out = optarg; break;
        case 'v': d->variant = optarg; break;
        case 'w': ok = uakd_cli_parse_long(cmd, "--width", optarg, 1, 4096, &v), d->width = (int)v; break;
        default:
            fprintf(stderr, "uakd %s: unknown or incomplete option '%s' (train options go after --; see uakd %s --help)\n",
                    cmd, argv[optind - 1], cmd);
            return 0;
        }
    }
    if (ok && optind < argc) {
        fprintf(stderr, "uakd %s: unexpected argument '%s' (train options go after --)\n", cmd, argv[optind]);
        return 0;
    }
    return ok;
}

/* tau^2 = median s2 of the teachers over the training split's test crops. */
static uakd_status auto_tau2(const distill_opts *d, const uakd_train_config *c, double *tau2) {
    uakd_teachers *t;
    UAKD_TRY(uakd_teachers_open(d->ensemble, c->batch, -1, &t));
    uakd_unc_scan s;
    uakd_status st = uakd_teachers_scan(t, c->data_root, c->train_split, c->train_list, c->obj_ids, c->num_obj_ids, c->min_visib_fract,
                                        d->tau_images, &s);
    uakd_teachers_free(t);
    if (st != UAKD_OK) return st;
    st = uakd_unc_auto_tau2((int)(s.cells * 8), s.s2, tau2);
    uakd_unc_scan_free(&s);
    return st;
}

/* What OUT/distill.json records: the method settings and the student's seed. */
static cJSON *settings_json(const distill_opts *d, const uakd_train_config *c) {
    const uakd_distill_config *k = &d->cfg;
    cJSON *j = cJSON_CreateObject();
    if (!j) return NULL;
    cJSON_AddStringToObject(j, "method", uakd_distill_method_name(k->method));
    cJSON_AddStringToObject(j, "ensemble", d->ensemble);
    cJSON_AddNumberToObject(j, "gamma_p", k->gamma_p);
    cJSON_AddNumberToObject(j, "gamma_f", k->gamma_f);
    cJSON_AddNumberToObject(j, "lambda", k->lambda);
    cJSON_AddNumberToObject(j, "tau2", k->tau2);
    cJSON_AddBoolToObject(j, "tau_auto", d->tau_auto);
    cJSON_AddNumberToObject(j, "blur", k->uot.blur);
    cJSON_AddNumberToObject(j, "reach", k->uot.reach);
    cJSON_AddNumberToObject(j, "scaling", k->uot.scaling);
    cJSON_AddNumberToObject(j, "final_iters", k->uot.final_iters);
    cJSON_AddNumberToObject(j, "tol", k->uot.tol);
    cJSON_AddBoolToObject(j, "detach_student_mass", k->detach_student_mass);
    cJSON_AddNumberToObject(j, "r", k->region);
    cJSON_AddNumberToObject(j, "fkd_temp", k->fkd_temp);
    cJSON_AddNumberToObject(j, "feat_member", k->feat_member);
    cJSON_AddNumberToObject(j, "adapter_seed", (double)k->adapter_seed);
    cJSON_AddNumberToObject(j, "student_seed", (double)c->seed);
    return j;
}

int distill_run(const char *cmd, distill_opts *d, uakd_train_config *c, uakd_train_result *res) {
    if (d->tau_auto) {
        uakd_status st = auto_tau2(d, c, &d->cfg.tau2);
        if (st != UAKD_OK) return uakd_cli_report(cmd, st);
        fprintf(stderr, "%s: tau auto: tau^2 = %.4g px^2 (median s2 over %s/%s)\n", cmd, d->cfg.tau2, c->data_root,
                c->train_split);
    }
    uakd_wdrnet_config mc;
    uakd_train_model_config(c, &mc);
    mc.training = 1;
    uakd_distill *h = NULL;
    uakd_status st = uakd_distill_new(&d->cfg, d->ensemble, &mc, &h);
    if (st != UAKD_OK) return uakd_cli_report(cmd, st);
    if (mkdir(c->out_dir, 0777) != 0 && errno != EEXIST) {
        uakd_distill_free(h);
        fprintf(stderr, "uakd %s: cannot create %s: %s\n", cmd, c->out_dir, strerror(errno));
        return UAKD_EXIT_FAILURE;
    }
    char path[4200];
    snprintf(path, sizeof path, "%s/distill.json", c->out_dir);
    st = uakd_json_write_atomic(path, settings_json(d, c));
    if (st != UAKD_OK) {
        uakd_distill_free(h);
        return uakd_cli_report(cmd, st);
    }
    fprintf(stderr, "%s: method %s, ensemble %s (%s), gamma_p %g, gamma_f %g, lambda %g, tau^2 %g, blur %g, reach %g, r %d\n",
            cmd, uakd_distill_method_name(d->cfg.method), d->ensemble,
            uakd_distill_adapter(h) ? "1x1 adapter" : "no adapter", d->cfg.gamma_p, d->cfg.gamma_f, d->cfg.lambda,
            d->cfg.tau2, d->cfg.uot.blur, d->cfg.uot.reach, d->cfg.region);
    c->hook = d->cfg.method == UAKD_DISTILL_STUDENT ? NULL : uakd_distill_hook(h);
    const int rc = wdr_train_run_cli(cmd, c, res);
    uakd_distill_stats s;
    uakd_distill_take_stats(h, &s);
    if (s.steps > 0)
        fprintf(stderr, "%s: per image %.1f teacher cells, %.1f student cells, mean u %.3f (last %lld steps)\n", cmd,
                s.teacher_cells, s.student_cells, s.mean_u, (long long)s.steps);
    uakd_distill_free(h);
    return rc;
}

/* Two paths that name the same existing file or directory. */
static int same_file(const char *a, const char *b) {
    struct stat x, y;
    return stat(a, &x) == 0 && stat(b, &y) == 0 && x.st_dev == y.st_dev && x.st_ino == y.st_ino;
}

uakd_status distill_run_compare(const char *dir, const distill_opts *d, const uakd_train_config *c, char *why,
                                size_t cap) {
    UAKD_TRY(uakd_train_config_compare(dir, c, why, cap));
    if (why[0]) return UAKD_OK;
    char path[4200];
    snprintf(path, sizeof path, "%s/distill.json", dir);
    void *data;
    size_t size;
    UAKD_TRY(uakd_read_file(path, 1 << 20, &data, &size));
    cJSON *have = cJSON_ParseWithLength(data, size), *want = settings_json(d, c);
    free(data);
    uakd_status st = !want ? uakd_fail(UAKD_ENOMEM, "%s: out of memory", path)
                     : cJSON_IsObject(have) ? UAKD_OK
                                            : uakd_fail(UAKD_EFORMAT, "%s: not a JSON object (delete the run)", path);
    /* what is not compared: tau^2 under --tau auto (measured when the run started), the ensemble
     * when both paths name the same directory, and for the plain student (no distillation) every
     * setting but the method and the seed */
    if (st == UAKD_OK) {
        if (d->tau_auto) cJSON_DeleteItemFromObjectCaseSensitive(want, "tau2");
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(have, "ensemble");
        if (cJSON_IsString(e) && same_file(e->valuestring, d->ensemble))
            cJSON_DeleteItemFromObjectCaseSensitive(want, "ensemble");
        for (cJSON *w = want->child, *next; d->cfg.method == UAKD_DISTILL_STUDENT && w; w = next) {
            next = w->next;
            if (strcmp(w->string, "method") && strcmp(w->string, "student_seed")) cJSON_Delete(cJSON_DetachItemViaPointer(want, w));
        }
        uakd_json_first_difference(want, have, why, cap);
    }
    cJSON_Delete(want);
    cJSON_Delete(have);
    return st;
}
