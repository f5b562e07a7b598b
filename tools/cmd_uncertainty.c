/* `uakd uncertainty`: the ensemble's uncertainty over a dataset split (method.md §3): every member
 * on each instance's test crop, the teacher cells of the inference rule on the ensemble-mean
 * confidence, per cell and corner the unbiased variance s2 (input pixels^2) and u = tanh(s2/tau^2).
 * Prints a histogram of u, writes per-corner statistics as JSON and the histogram as a PNG. */
#include <cjson/cJSON.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "uakd/distill.h"
#include "uakd/fileio.h"
#include "uakd/json.h"
#include "uakd/plot.h"
#include "uakd/uncertainty.h"
#include "wdr_opts.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: uakd uncertainty --ensemble DIR --data ROOT [options]\n\n"
            "Runs every ensemble member on the test crops (ground-truth box) of a BOP split and reports the\n"
            "uncertainty of the teacher local predictions: per selected cell and box corner, the unbiased\n"
            "variance s2 of the members' corners (input pixels^2) and u = tanh(s2 / tau^2). Check here that\n"
            "u is spread over [0, 1] before distilling; if it is not, use --tau auto in `uakd distill`.\n\n"
            "options (defaults in brackets):\n"
            "  --ensemble DIR   the ensemble (required)\n"
            "  --data ROOT      BOP dataset root (required)\n"
            "  --split NAME     split [train]\n"
            "  --list FILE      only the split's images in this list file (as uakd train --train-list)\n"
            "  --obj IDS        object id(s), class c = the c-th id [1]\n"
            "  --tau X|auto     scale in input pixels; auto: tau^2 = median s2 of this scan [1]\n"
            "  --max N          crops scanned (the first of the split), 0 = all [0]\n"
            "  --min-visib X    skip instances less visible than this [0.1]\n"
            "  --batch N        crops per forward [8]\n"
            "  --bins N         histogram bins over [0, 1] [10]\n"
            "  --json FILE      per-corner statistics [DIR/uncertainty.json]\n"
            "  --png FILE       histogram chart [DIR/uncertainty.png]\n"
            "  --threads N      compute threads, 0 = all cores [0]\n\n"
            "example: uakd uncertainty --ensemble runs/ens --data data-cache/ape --max 200\n");
}

static int cmp_float(const void *a, const void *b) {
    const float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* Quantile q of n sorted values (nearest rank). */
static double quantile(const float *v, long n, double q) { return n ? v[(long)floor(q * (double)(n - 1) + 0.5)] : NAN; }

static uakd_status report(const uakd_unc_scan *s, double tau2, int tau_auto, int bins, const char *json_path,
                          const char *png_path) {
    const long n = s->cells * 8;
    float *u = malloc(sizeof(float) * (size_t)(n ? n : 1)), *col = malloc(sizeof(float) * (size_t)(s->cells ? s->cells : 1));
    long *counts = calloc((size_t)bins, sizeof(long));
    if (!u || !col || !counts) {
        free(u), free(col), free(counts);
        return uakd_fail(UAKD_ENOMEM, "uncertainty: out of memory");
    }
    uakd_status st = uakd_unc_from_variance((int)n, s->s2, tau2, u);
    uakd_unc_histogram((int)n, u, bins, counts);
    cJSON *j = cJSON_CreateObject(), *kp = cJSON_CreateArray(), *hist = cJSON_CreateArray();
    cJSON_AddNumberToObject(j, "tau2_px2", tau2);
    cJSON_AddBoolToObject(j, "tau_auto", tau_auto);
    cJSON_AddNumberToObject(j, "crops", (double)s->images);
    cJSON_AddNumberToObject(j, "crops_without_teacher_cells", (double)s->missing);
    cJSON_AddNumberToObject(j, "teacher_cells", (double)s->cells);
    printf("u = tanh(s2 / %.4g px^2) over %ld teacher cells x 8 corners (%ld crops, %ld without cells)\n", tau2,
           s->cells, s->images, s->missing);
    printf("corner  mean s2 (px^2)  median s2  p90 s2    mean u\n");
    for (int k = 0; k < 8 && st == UAKD_OK; k++) {
        double ms = 0, mu = 0;
        for (long c = 0; c < s->cells; c++) col[c] = s->s2[c * 8 + k], ms += col[c], mu += u[c * 8 + k];
        qsort(col, (size_t)s->cells, sizeof *col, cmp_float);
        ms = s->cells ? ms / s->cells : NAN, mu = s->cells ? mu / s->cells : NAN;
        const double med = quantile(col, s->cells, 0.5), p90 = quantile(col, s->cells, 0.9);
        printf("%6d  %14.4g  %9.4g  %8.4g  %8.3f\n", k, ms, med, p90, mu);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "corner", k);
        if (s->cells) {
            cJSON_AddNumberToObject(o, "mean_s2", ms);
            cJSON_AddNumberToObject(o, "median_s2", med);
            cJSON_AddNumberToObject(o, "p90_s2", p90);
            cJSON_AddNumberToObject(o, "mean_u", mu);
        }
        cJSON_AddItemToArray(kp, o);
    }
    cJSON_AddItemToObject(j, "corners", kp);
    printf("histogram of u:\n");
    long total = 0;
    for (int b = 0; b < bins; b++) total += counts[b];
    double *edges = malloc(sizeof(double) * (size_t)(bins + 1)), *dc = malloc(sizeof(double) * (size_t)bins);
    for (int b = 0; b < bins; b++) {
        const int bar = total ? (int)(50.0 * counts[b] / total + 0.5) : 0;
        printf("  [%.2f, %.2f%c %8ld  %.*s\n", (double)b / bins, (double)(b + 1) / bins, b + 1 == bins ? ']' : ')',
               counts[b], bar, "##################################################");
        cJSON_AddItemToArray(hist, cJSON_CreateNumber((double)counts[b]));
        if (edges && dc) edges[b] = (double)b / bins, dc[b] = (double)counts[b];
    }
    if (edges) edges[bins] = 1.0;
    cJSON_AddItemToObject(j, "u_histogram", hist);
    if (st == UAKD_OK) st = uakd_json_write_atomic(json_path, j);
    else cJSON_Delete(j);
    if (st == UAKD_OK && (!edges || !dc)) st = uakd_fail(UAKD_ENOMEM, "uncertainty: out of memory");
    if (st == UAKD_OK) {
        uakd_plot_opts po = {0};
        po.title = "ensemble uncertainty u = tanh(s2 / tau^2)";
        po.xlabel = "u";
        po.ylabel = "corner predictions";
        uakd_image im = {0};
        st = uakd_plot_histogram(&po, edges, dc, bins, &im, NULL);
        if (st == UAKD_OK) st = uakd_image_write(png_path, &im, 95);
        uakd_image_free(&im);
    }
    free(edges), free(dc), free(u), free(col), free(counts);
    return st;
}

int uakd_cmd_uncertainty(int argc, char **argv) {
    if (uakd_cli_wants_help(argc, argv)) return usage(stdout), 0;
    const char *ens = NULL, *root = NULL, *split = "train", *list = NULL, *json = NULL, *png = NULL;
    int obj_ids[UAKD_TRAIN_MAX_OBJECTS] = {1}, nobj = 1, tau_auto = 0;
    long max = 0, batch = 8, bins = 10;
    double tau = 1, min_visib = 0.1;
    static const struct option opts[] = {{"ensemble", 1, 0, 'e'}, {"data", 1, 0, 'd'}, {"split", 1, 0, 's'},
                                         {"obj", 1, 0, 'O'},      {"tau", 1, 0, 't'},  {"max", 1, 0, 'x'},
                                         {"min-visib", 1, 0, 'm'}, {"batch", 1, 0, 'b'}, {"bins", 1, 0, 'n'},
                                         {"json", 1, 0, 'j'},     {"png", 1, 0, 'p'},  {"threads", 1, 0, 'T'},
                                         {"list", 1, 0, 'l'},     {0, 0, 0, 0}};
    int o, ok = 1;
    optind = 1;
    opterr = 0;
    while (ok && (o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case 'e': ens = optarg; break;
        case 'd': root = optarg; break;
        case 's': split = optarg; break;
        case 'l': list = optarg; break;
        case 'O': ok = wdr_parse_ints("uncertainty", "--obj", optarg, UAKD_TRAIN_MAX_OBJECTS, 0, 63, obj_ids, &nobj); break;
        case 't':
            if (!strcmp(optarg, "auto")) tau_auto = 1;
            else ok = uakd_cli_parse_double("uncertainty", "--tau", optarg, 1e-6, 1e6, &tau);
            break;
        case 'x': ok = uakd_cli_parse_long("uncertainty", "--max", optarg, 0, 100000000, &max); break;
        case 'm': ok = uakd_cli_parse_double("uncertainty", "--min-visib", optarg, 0, 1, &min_visib); break;
        case 'b': ok = uakd_cli_parse_long("uncertainty", "--batch", optarg, 1, 4096, &batch); break;
        case 'n': ok = uakd_cli_parse_long("uncertainty", "--bins", optarg, 1, 1000, &bins); break;
        case 'j': json = optarg; break;
        case 'p': png = optarg; break;
        case 'T': ok = wdr_set_threads("uncertainty", optarg); break;
        default:
            fprintf(stderr, "uakd uncertainty: unknown or incomplete option '%s' (see --help)\n", argv[optind - 1]);
            return UAKD_EXIT_USAGE;
        }
    }
    if (!ok) return UAKD_EXIT_USAGE;
    if (!ens || !root || optind < argc) {
        fprintf(stderr, "uakd uncertainty: --ensemble and --data are required, no positional arguments\n");
        return UAKD_EXIT_USAGE;
    }
    char jbuf[4200], pbuf[4200];
    if (!json) snprintf(jbuf, sizeof jbuf, "%s/uncertainty.json", ens), json = jbuf;
    if (!png) snprintf(pbuf, sizeof pbuf, "%s/uncertainty.png", ens), png = pbuf;
    uakd_teachers *t;
    uakd_status st = uakd_teachers_open(ens, (int)batch, -1, &t);
    if (st != UAKD_OK) return uakd_cli_report("uncertainty", st);
    uakd_unc_scan s;
    st = uakd_teachers_scan(t, root, split, list, obj_ids, nobj, min_visib, max, &s);
    uakd_teachers_free(t);
    if (st != UAKD_OK) return uakd_cli_report("uncertainty", st);
    double tau2 = tau * tau;
    if (tau_auto) {
        float *copy = malloc(sizeof(float) * (size_t)(s.cells * 8 + 1));
        if (!copy) st = uakd_fail(UAKD_ENOMEM, "uncertainty: out of memory");
        else {
            memcpy(copy, s.s2, sizeof(float) * (size_t)(s.cells * 8));
            st = uakd_unc_auto_tau2((int)(s.cells * 8), copy, &tau2);
            free(copy);
        }
    }
    if (st == UAKD_OK) st = report(&s, tau2, tau_auto, (int)bins, json, png);
    uakd_unc_scan_free(&s);
    if (st != UAKD_OK) return uakd_cli_report("uncertainty", st);
    fprintf(stderr, "uncertainty: %s, %s\n", json, png);
    return UAKD_EXIT_OK;
}
