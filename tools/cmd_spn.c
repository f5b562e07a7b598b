/* `uakd train --family spnv2` and `uakd eval` of an SPNv2 model: SPEED+ training (uakd/spn_train.h)
 * with a progress line and Ctrl-C checkpointing; per-domain SPEED+ evaluation (uakd/spn_infer.h)
 * printed as a Markdown table and written as JSON and as a report (eval.md with the table,
 * cumulative accuracy of the translation and rotation errors, the training curves of the model's
 * log and a grid of example images with keypoints and boxes, uakd/report.h). */
#include <ctype.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "spn_cli.h"
#include "uakd/backend.h"
#include "uakd/fileio.h"
#include "uakd/json.h"
#include "uakd/report.h"
#include "uakd/spn_train.h"
#include "wdr_opts.h"

int spn_cli_family(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--family=spnv2")) return 1;
        if (!strcmp(argv[i], "--family") && i + 1 < argc && !strcmp(argv[i + 1], "spnv2")) return 1;
    }
    return 0;
}

int spn_cli_model_is(int argc, char **argv) {
    for (int i = 1; i + 1 < argc; i++)
        if (!strcmp(argv[i], "--model")) return uakd_spn_model_is(argv[i + 1]);
    return 0;
}

static void train_usage(FILE *f) {
    fprintf(f,
            "usage: uakd train --family spnv2 --data ROOT --keypoints CSV --out DIR [options]\n\n"
            "Trains an SPNv2 heatmap network (EfficientNet-B(phi) + BiFPN + heatmap head) on a SPEED+\n"
            "dataset (the real layout, or `uakd synth --format speedplus`): the whole image resized to the\n"
            "input, Gaussian heatmaps (sigma 2, stride 4) of the keypoints projected with the camera's\n"
            "distortion, squared-error loss; brightness/contrast, noise, blur, random erasing and sun flare\n"
            "each with p = 0.5; AdamW, lr x gamma at 15/20 and 18/20 of the steps. Ctrl-C writes a\n"
            "checkpoint; --resume continues exactly.\n\n"
            "options (defaults in brackets):\n"
            "  --data ROOT         SPEED+ root: camera.json, DOMAIN/LIST.json, DOMAIN/images/ (required)\n"
            "  --keypoints CSV     keypoints \"index,x,y,z\" (m), e.g. tangoPoints.transcribed.csv (required)\n"
            "  --out DIR           output directory (required): config.json, train_log.jsonl, checkpoints,\n"
            "                      model.safetensors\n"
            "  --domain D          [synthetic]\n"
            "  --list NAME         training list [train]\n"
            "  --val-list NAME     validation list, 'none' for none [validation]\n"
            "  --phi N             0, 3 or 6 (EfficientDet scaling) [0]\n"
            "  --reduced           a small test network: width 0.25, depth 0.34, BiFPN 16 x 2, head depth 2\n"
            "  --input WxH         network input, multiples of 128 [768x512]\n"
            "  --width-mult X, --bifpn-width N, --bifpn-layers N, --head-depth N   override the phi's values\n"
            "  --batch N [8]  --steps N [10000]  --lr X [0.001]  --wd X [0.0001]  --gamma X [0.1]\n"
            "  --clip X            gradient-norm clip, 0 = none [0]\n"
            "  --drop-connect R    drop-connect (stochastic depth) of the MBConv residual branches in\n"
            "                      training: block i of B dropped per image with probability R i / B,\n"
            "                      kept ones scaled by 1 / (1 - R i / B); 0 = off [0.2]\n"
            "  --erase-p X [0.5]  --flare-p X [0.5]  --photometric-p X [0.5]\n"
            "  --bn-recal N        before each validation and the final save, recompute the batch-norm\n"
            "                      statistics for the current weights on N training images; 0 keeps the\n"
            "                      running averages, which trail the weights on short runs [200]\n"
            "  --seed N [1]  --init FILE  --val-every N [0 = at the end]  --val-max N [200]\n"
            "  --ckpt-every N [500]  --log-every N [10]  --resume  --threads N [0 = all]\n"
            "  --loader-threads N [1]  --cache-mb N [1024]  --backend ref|fast [fast]\n\n"
            "Validation: E_T (m), E_R (deg), E_pose on the validation list (rejected images count as\n"
            "failures, see uakd eval --family spnv2 --help).\n\n"
            "example: uakd train --family spnv2 --data data-cache/speedplus --keypoints \\\n"
            "             ../shared/data/speedplus/tangoPoints.transcribed.csv --reduced --input 256x128 \\\n"
            "             --batch 8 --steps 2000 --out runs/spn\n");
}

static int parse_size(const char *cmd, const char *s, int *w, int *h) {
    if (sscanf(s, "%dx%d", w, h) != 2 || *w < 128 || *h < 128 || *w > 8192 || *h > 8192 || *w % 128 || *h % 128) {
        fprintf(stderr, "uakd %s: --input '%s' must be WxH, multiples of 128 (e.g. 768x512)\n", cmd, s);
        return 0;
    }
    return 1;
}

static int train_parse(int argc, char **argv, uakd_spn_train_config *c) {
    static const struct option opts[] = {
        {"family", 1, 0, 'F'},   {"data", 1, 0, 'd'},        {"keypoints", 1, 0, 'k'},    {"out", 1, 0, 'o'},
        {"domain", 1, 0, 'D'},   {"list", 1, 0, 's'},        {"val-list", 1, 0, 'V'},     {"phi", 1, 0, 'P'},
        {"reduced", 0, 0, 'R'},  {"input", 1, 0, 'i'},       {"batch", 1, 0, 'b'},        {"steps", 1, 0, 'n'},
        {"lr", 1, 0, 'l'},       {"wd", 1, 0, 'W'},          {"gamma", 1, 0, 'g'},        {"clip", 1, 0, 'c'},
        {"erase-p", 1, 0, 'E'},  {"flare-p", 1, 0, 'f'},     {"photometric-p", 1, 0, 'h'}, {"seed", 1, 0, 'S'},
        {"init", 1, 0, 'I'},     {"val-every", 1, 0, 'e'},   {"val-max", 1, 0, 'x'},      {"ckpt-every", 1, 0, 'K'},
        {"log-every", 1, 0, 'L'}, {"resume", 0, 0, 'r'},     {"threads", 1, 0, 't'},      {"loader-threads", 1, 0, 'p'},
        {"cache-mb", 1, 0, 'M'}, {"backend", 1, 0, 'B'},     {"width-mult", 1, 0, 'X'},   {"bifpn-width", 1, 0, 'Y'},
        {"bifpn-layers", 1, 0, 'Z'}, {"head-depth", 1, 0, 'H'}, {"drop-connect", 1, 0, 'q'}, {"bn-recal", 1, 0, 'j'},
        {0, 0, 0, 0}};
    int o, in_w = 0, in_h = 0, reduced = 0;
    double wm = 0, drop = c->model.drop_connect;
    long bw = 0, bl = 0, hd = 0;
    long v, phi = 0;
    optind = 1;
    opterr = 0;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        int ok = 1;
        switch (o) {
        case 'F': break;
        case 'd': c->data_root = optarg; break;
        case 'k': c->keypoints_csv = optarg; break;
        case 'o': c->out_dir = optarg; break;
        case 'D': c->domain = optarg; break;
        case 's': c->train_list = optarg; break;
        case 'V': c->val_list = strcmp(optarg, "none") ? optarg : NULL; break;
        case 'P': ok = uakd_cli_parse_long("train", "--phi", optarg, 0, 6, &phi); break;
        case 'R': reduced = 1; break;
        case 'i': ok = parse_size("train", optarg, &in_w, &in_h); break;
        case 'b': ok = uakd_cli_parse_long("train", "--batch", optarg, 1, 4096, &v), c->batch = (int)v; break;
        case 'n': ok = uakd_cli_parse_long("train", "--steps", optarg, 1, 100000000, &v), c->steps = v; break;
        case 'l': ok = uakd_cli_parse_double("train", "--lr", optarg, 1e-9, 10, &c->lr); break;
        case 'W': ok = uakd_cli_parse_double("train", "--wd", optarg, 0, 10, &c->weight_decay); break;
        case 'g': ok = uakd_cli_parse_double("train", "--gamma", optarg, 1e-6, 1, &c->gamma); break;
        case 'c': ok = uakd_cli_parse_double("train", "--clip", optarg, 0, 1e9, &c->clip); break;
        case 'E': ok = uakd_cli_parse_double("train", "--erase-p", optarg, 0, 1, &c->erase_p); break;
        case 'f': ok = uakd_cli_parse_double("train", "--flare-p", optarg, 0, 1, &c->flare_p); break;
        case 'h': ok = uakd_cli_parse_double("train", "--photometric-p", optarg, 0, 1, &c->photometric_p); break;
        case 'S': ok = uakd_cli_parse_long("train", "--seed", optarg, 0, 1L << 62, &v), c->seed = (uint64_t)v; break;
        case 'I': c->init_weights = optarg; break;
        case 'e': ok = uakd_cli_parse_long("train", "--val-every", optarg, 0, 100000000, &v), c->val_every = v; break;
        case 'x': ok = uakd_cli_parse_long("train", "--val-max", optarg, 0, 10000000, &v), c->val_max = (int)v; break;
        case 'K': ok = uakd_cli_parse_long("train", "--ckpt-every", optarg, 0, 100000000, &v), c->ckpt_every = v; break;
        case 'L': ok = uakd_cli_parse_long("train", "--log-every", optarg, 1, 100000000, &v), c->log_every = v; break;
        case 'r': c->resume = 1; break;
        case 't': ok = wdr_set_threads("train", optarg); break;
        case 'p': ok = uakd_cli_parse_long("train", "--loader-threads", optarg, 0, 64, &v), c->loader_threads = (int)v; break;
        case 'M': ok = uakd_cli_parse_long("train", "--cache-mb", optarg, 0, 1L << 20, &v), c->cache_bytes = (size_t)v << 20; break;
        case 'B': ok = wdr_set_backend("train", optarg); break;
        case 'X': ok = uakd_cli_parse_double("train", "--width-mult", optarg, 0.05, 4, &wm); break;
        case 'Y': ok = uakd_cli_parse_long("train", "--bifpn-width", optarg, 4, 1024, &bw); break;
        case 'Z': ok = uakd_cli_parse_long("train", "--bifpn-layers", optarg, 1, 16, &bl); break;
        case 'H': ok = uakd_cli_parse_long("train", "--head-depth", optarg, 1, 16, &hd); break;
        case 'q': ok = uakd_cli_parse_double("train", "--drop-connect", optarg, 0, 0.95, &drop); break;
        case 'j': ok = uakd_cli_parse_long("train", "--bn-recal", optarg, 0, 10000000, &v), c->bn_recal = (int)v; break;
        default:
            fprintf(stderr, "uakd train: unknown or incomplete option '%s' (see uakd train --family spnv2 --help)\n",
                    argv[optind - 1]);
            return 0;
        }
        if (!ok) return 0;
    }
    if (optind < argc) {
        fprintf(stderr, "uakd train: unexpected argument '%s'\n", argv[optind]);
        return 0;
    }
    if (reduced) {
        const uakd_spnnet_config r = {0.25, 0.34, 16, 2, 2, 11, 768, 512, 0, 0, 0};
        c->model = r;
    } else if (uakd_spnnet_config_phi((int)phi, &c->model) != UAKD_OK) {
        fprintf(stderr, "uakd train: --phi %ld: only 0, 3 and 6 are defined\n", phi);
        return 0;
    }
    if (in_w) c->model.in_w = in_w, c->model.in_h = in_h;
    if (wm > 0) c->model.width_mult = wm;
    if (bw) c->model.bifpn_width = (int)bw;
    if (bl) c->model.bifpn_layers = (int)bl;
    if (hd) c->model.head_depth = (int)hd;
    c->model.drop_connect = drop;
    if (!c->data_root || !c->keypoints_csv) {
        fprintf(stderr, "uakd train: --data and --keypoints are required (see uakd train --family spnv2 --help)\n");
        return 0;
    }
    return 1;
}

typedef struct progress_state {
    int tty;
    int64_t every;
} progress_state;

static int on_progress(const uakd_train_progress *p, void *user) {
    progress_state *ps = user;
    const char *cr = ps->tty ? "\r\033[K" : "";
    if (p->event && strcmp(p->event, "checkpoint written")) fprintf(stderr, "%s%s\n", cr, p->event);
    if (p->step % ps->every == 0 || p->step == p->total) {
        fprintf(stderr, "%sstep %lld/%lld  loss %.5f (heatmap %.5f", cr, (long long)p->step, (long long)p->total, p->loss,
                p->cls);
        for (int k = 0; k < p->n_terms; k++) fprintf(stderr, " %s %.5f", p->term_names[k], p->terms[k]);
        fprintf(stderr, ")  lr %.2e  %.1f img/s  ETA %.0f s%s", p->lr, p->img_s, p->eta_s, ps->tty ? "" : "\n");
    }
    if (p->validation)
        fprintf(stderr, "%sstep %lld validation (%d images): E_T %.3f m  E_R %.2f deg  E_pose %.4f  rejected %.1f%%\n", cr,
                (long long)p->step, p->val_instances, p->val_add[1], p->val_add[2], p->val_add[0], p->val_proj5);
    fflush(stderr);
    return 0;
}

int spn_train_parse(int argc, char **argv, uakd_spn_train_config *c) {
    uakd_spn_train_config_default(c);
    return train_parse(argc, argv, c);
}

int spn_cmd_train(int argc, char **argv) {
    if (uakd_cli_wants_help(argc, argv)) return train_usage(stdout), 0;
    uakd_spn_train_config c;
    if (!spn_train_parse(argc, argv, &c)) return UAKD_EXIT_USAGE;
    if (!c.out_dir) {
        fprintf(stderr, "uakd train: --out is required (see uakd train --family spnv2 --help)\n");
        return UAKD_EXIT_USAGE;
    }
    return spn_train_run_cli("train", &c);
}

int spn_train_run_cli(const char *cmd, uakd_spn_train_config *cp) {
    uakd_spn_train_config c = *cp;
    progress_state ps = {isatty(2), c.log_every};
    c.progress = on_progress;
    c.user = &ps;
    wdr_catch_sigint();
    c.interrupt = &wdr_interrupted;
    uakd_spnnet *probe = NULL;
    uakd_status st = uakd_spnnet_new(&c.model, 1, 0, &probe);
    if (st != UAKD_OK) return uakd_cli_report(cmd, st);
    fprintf(stderr, "%s: spnv2 (width %g, depth %g, BiFPN %d x %d, head %d, drop-connect %g) %lld parameters, input "
                    "%dx%d, batch %d, %lld steps, lr %g, %d compute threads, backend %s\n",
            cmd, c.model.width_mult, c.model.depth_mult, c.model.bifpn_width, c.model.bifpn_layers, c.model.head_depth,
            c.model.drop_connect,
            (long long)uakd_net_trainable_count(probe->net), c.model.in_w, c.model.in_h, c.batch, (long long)c.steps, c.lr,
            uakd_get_num_threads(), uakd_backend_name(uakd_get_backend()));
    uakd_spnnet_free(probe);
    uakd_spn_train_result res;
    st = uakd_spn_train_run(&c, &res);
    if (ps.tty) fputc('\n', stderr);
    if (st == UAKD_OK || st == UAKD_EINTERRUPTED)
        fprintf(stderr, "%s: %lld steps in %.1f s (%.3f s/step)\n", cmd, (long long)res.steps_done, res.seconds,
                res.steps_done ? res.seconds / (double)res.steps_done : 0.0);
    if (st != UAKD_OK) return uakd_cli_report(cmd, st);
    printf("model: %s/model.safetensors\n", c.out_dir);
    return UAKD_EXIT_OK;
}

/* ---- eval ---- */

static void eval_usage(FILE *f) {
    fprintf(f,
            "usage: uakd eval --model DIR --data ROOT --keypoints CSV [options]   (an SPNv2 model)\n\n"
            "Scores an SPNv2 model (config.json \"family\": \"spnv2\", detected automatically; or say\n"
            "--family spnv2) on SPEED+ domains: the whole image resized to the input, heatmaps, sub-pixel\n"
            "peaks, keypoints above 0.5 (lowered by 0.1 until >= 5 pass; fewer rejects the image), EPnP +\n"
            "LM with the camera's distortion in the original image, rejection of poses with z outside\n"
            "(0, 50) m or the origin outside the image. E_T (m), E_R (deg), E_pose = E_T/|t| + e_q; the\n"
            "SPEED+ thresholds (2.173 mm/m, 0.169 deg) apply on lightbox and sunlamp. A REJECTED image\n"
            "is a failure in every mean: t = 0 and a 180-degree error (E_T = |t_gt|, E_pose = 1 + pi).\n\n"
            "Writes OUT/eval.json and the report OUT/eval.md with the table, accuracy_translation.png and\n"
            "accuracy_rotation.png (share of images below each normalised translation error E_T/|t| and\n"
            "rotation error, one curve per domain), training.png and validation.png (the model's\n"
            "train_log.jsonl, when there is one) and examples_DOMAIN.png (ground truth green, prediction\n"
            "blue: the pose's box of the keypoints and the keypoints; decoded peaks red when used by PnP,\n"
            "yellow otherwise).\n\n"
            "options (defaults in brackets):\n"
            "  --model DIR      directory written by uakd train --family spnv2 (required)\n"
            "  --data ROOT      SPEED+ root (required)\n"
            "  --keypoints CSV  keypoints file (required)\n"
            "  --domain LIST    comma-separated domains [synthetic]\n"
            "  --list NAME      list in each domain [validation for synthetic, test otherwise]\n"
            "  --max N          first N images per domain, 0 = all [0]\n"
            "  --batch N        images per forward pass [4]\n"
            "  --out DIR        eval.json, eval.md and its PNGs [MODEL/eval-speedplus]\n"
            "  --json FILE      the JSON somewhere else [OUT/eval.json]\n"
            "  --examples N     images per domain in the example grid, 0 = none [6]\n"
            "  --threads N [0 = all]  --backend ref|fast [fast]\n\n"
            "example: uakd eval --model runs/spn --data data-cache/speedplus \\\n"
            "             --keypoints ../shared/data/speedplus/tangoPoints.transcribed.csv --domain synthetic,lightbox\n");
}

#define MAX_DOMAINS 8
#define CURVE_PTS 101
#define MAX_TRANS 0.25 /* accuracy curves: E_T / |t| up to 25 % */
#define MAX_ROT 30.0   /* and E_R up to 30 degrees */

typedef struct spn_eval_opts {
    const char *model, *data, *csv, *list, *json, *out;
    long max, batch, examples;
    char domains[MAX_DOMAINS][64];
    int nd;
} spn_eval_opts;

/* One domain's results: the means, every image's errors for the curves, the example grid. */
typedef struct domain_result {
    uakd_spn_eval_stats stats;
    int n;
    double *e_t_norm, *e_r_deg; /* n, rejected images as failures (E_T/|t| = 1, 180 deg) */
    uakd_image examples;        /* width 0: none */
} domain_result;

static const char *const outcome_names[UAKD_SPN_OUTCOMES] = {"ok", "few keypoints", "PnP failed", "depth",
                                                             "outside the image"};

static uakd_status write_json(const char *path, const spn_eval_opts *o, const domain_result *r) {
    static const char *const names[UAKD_SPN_OUTCOMES] = {"ok", "rejected_few_keypoints", "rejected_pnp",
                                                        "rejected_depth", "rejected_fov"};
    cJSON *j = cJSON_CreateObject(), *arr = cJSON_CreateArray();
    cJSON_AddStringToObject(j, "model", o->model);
    cJSON_AddStringToObject(j, "rejected_images", "failures: t = 0, e_q = pi (E_pose = 1 + pi)");
    for (int d = 0; d < o->nd; d++) {
        const uakd_spn_eval_stats *s = &r[d].stats;
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "domain", o->domains[d]);
        cJSON_AddBoolToObject(e, "thresholds", uakd_spn_domain_thresholds(o->domains[d]));
        cJSON_AddNumberToObject(e, "images", s->images);
        cJSON_AddNumberToObject(e, "E_T_m", s->E_T);
        cJSON_AddNumberToObject(e, "E_R_deg", s->E_R_deg);
        cJSON_AddNumberToObject(e, "E_pose", s->E_pose);
        for (int k = 0; k < UAKD_SPN_OUTCOMES; k++) cJSON_AddNumberToObject(e, names[k], s->outcomes[k]);
        cJSON_AddItemToArray(arr, e);
    }
    cJSON_AddItemToObject(j, "domains", arr);
    return uakd_json_write_atomic(path, j);
}

/* | domain | images | rejected | E_T (m) | E_R (deg) | E_pose |, "*" after a thresholded domain. */
static uakd_status format_table(const spn_eval_opts *o, const domain_result *r, uakd_strbuf *out) {
    static const char *const head[6] = {"domain", "images", "rejected", "E_T (m)", "E_R (deg)", "E_pose"};
    uakd_md_table *t;
    UAKD_TRY(uakd_md_table_new(6, head, &t));
    uakd_status st = UAKD_OK;
    for (int c = 1; c < 6 && st == UAKD_OK; c++) st = uakd_md_table_align(t, c, UAKD_ALIGN_RIGHT);
    for (int d = 0; d < o->nd && st == UAKD_OK; d++) {
        const uakd_spn_eval_stats *s = &r[d].stats;
        char name[80], n[16], rej[16];
        snprintf(name, sizeof name, "%s%s", o->domains[d], uakd_spn_domain_thresholds(o->domains[d]) ? "*" : "");
        snprintf(n, sizeof n, "%d", s->images);
        snprintf(rej, sizeof rej, "%d", s->images - s->outcomes[UAKD_SPN_OK]);
        st = uakd_md_table_row(t);
        if (st == UAKD_OK) st = uakd_md_table_text(t, name);
        if (st == UAKD_OK) st = uakd_md_table_text(t, n);
        if (st == UAKD_OK) st = uakd_md_table_text(t, rej);
        if (st == UAKD_OK) st = uakd_md_table_num(t, s->E_T, 4);
        if (st == UAKD_OK) st = uakd_md_table_num(t, s->E_R_deg, 3);
        if (st == UAKD_OK) st = uakd_md_table_num(t, s->E_pose, 5);
    }
    if (st == UAKD_OK) st = uakd_md_table_format(t, out);
    uakd_md_table_free(t);
    return st;
}

/* One image with the ground truth (green) and the prediction (blue): the pose's box around the
 * keypoints and the projected keypoints; the decoded peaks red (used by PnP) or yellow. */
static uakd_status example_image(const uakd_dataset *ds, const uakd_spn_eval_sample *s, uakd_image *im) {
    static const uint8_t green[3] = {0, 200, 0}, blue[3] = {30, 100, 255}, red[3] = {230, 30, 30},
                         yellow[3] = {240, 200, 0}, white[3] = {255, 255, 255};
    const uakd_instance *in = &ds->instances[s->instance];
    const uakd_object_info *ob = &ds->objects[0];
    UAKD_TRY(uakd_image_read(in->image_path, 3, 1, im));
    const uakd_camera cam = {in->K[0], in->K[4], in->K[2], in->K[5],
                             {ds->dist[0], ds->dist[1], ds->dist[2], ds->dist[3], ds->dist[4]}};
    double lo[3] = {INFINITY, INFINITY, INFINITY}, hi[3] = {-INFINITY, -INFINITY, -INFINITY};
    double gt[2 * UAKD_SPN_MAX_KEYPOINTS], used[2 * UAKD_SPN_MAX_KEYPOINTS], rest[2 * UAKD_SPN_MAX_KEYPOINTS];
    int ngt = 0, nused = 0, nrest = 0;
    for (int k = 0; k < ob->num_keypoints && k < UAKD_SPN_MAX_KEYPOINTS; k++) {
        for (int c = 0; c < 3; c++) {
            lo[c] = fmin(lo[c], ob->keypoints[k][c]);
            hi[c] = fmax(hi[c], ob->keypoints[k][c]);
        }
        if (uakd_camera_project(&cam, &in->pose, ob->keypoints[k], &gt[2 * ngt])) ngt++;
    }
    for (int k = 0; k < s->pose.keypoints; k++) {
        double *dst = s->pose.selected[k] ? &used[2 * nused++] : &rest[2 * nrest++];
        dst[0] = s->pose.uv[2 * k], dst[1] = s->pose.uv[2 * k + 1];
    }
    const double px = im->width / 384.0 > 1 ? im->width / 384.0 : 1; /* one pixel of a 384-wide cell */
    uakd_status st = uakd_draw_pose_box(im, &cam, &in->pose, lo, hi, green, 1.5 * px);
    if (st == UAKD_OK && s->pose.outcome == UAKD_SPN_OK) st = uakd_draw_pose_box(im, &cam, &s->pose.pose, lo, hi, blue, 1.5 * px);
    if (st == UAKD_OK && ngt) st = uakd_draw_points(im, gt, ngt, green, 3 * px);
    if (st == UAKD_OK && nrest) st = uakd_draw_points(im, rest, nrest, yellow, 2 * px);
    if (st == UAKD_OK && nused) st = uakd_draw_points(im, used, nused, red, 2 * px);
    char label[96];
    if (s->pose.outcome == UAKD_SPN_OK)
        snprintf(label, sizeof label, "E_T %.3f m  E_R %.2f deg", s->score.e_t, s->score.e_q * 180 / M_PI);
    else snprintf(label, sizeof label, "rejected: %s", outcome_names[s->pose.outcome]);
    if (st == UAKD_OK) st = uakd_draw_label(im, 4 * px, 4 * px, label, white, 13 * px);
    return st;
}

static uakd_status example_grid(const uakd_dataset *ds, const uakd_spn_eval_sample *samples, int n, int want,
                                uakd_image *out) {
    const int ne = want < n ? want : n;
    if (ne <= 0) return UAKD_OK;
    uakd_image *ex = calloc((size_t)ne, sizeof *ex);
    if (!ex) return uakd_fail(UAKD_ENOMEM, "eval: out of memory");
    uakd_status st = UAKD_OK;
    for (int i = 0; st == UAKD_OK && i < ne; i++) st = example_image(ds, &samples[(long)i * n / ne], &ex[i]);
    const int cell_h = ds->width > 0 ? 384 * ds->height / ds->width : 240;
    if (st == UAKD_OK) st = uakd_image_grid(ex, ne, ne < 3 ? ne : 3, 384, cell_h < 32 ? 32 : cell_h, out);
    for (int i = 0; i < ne; i++) uakd_image_free(&ex[i]);
    free(ex);
    return st;
}

static uakd_status eval_domain(uakd_spnnet *m, const uakd_spn_config *sc, const spn_eval_opts *o, int d,
                               domain_result *r) {
    uakd_dataset *ds = NULL;
    const char *ls = o->list ? o->list : strcmp(o->domains[d], "synthetic") ? "test" : "validation";
    UAKD_TRY(uakd_dataset_load_speedplus(o->data, o->domains[d], ls, o->csv, &ds));
    int n = ds->num_instances;
    if (o->max > 0 && o->max < n) n = (int)o->max;
    uakd_spn_eval_sample *samples = malloc(sizeof *samples * (size_t)(n ? n : 1));
    r->e_t_norm = malloc(sizeof(double) * (size_t)(n ? n : 1));
    r->e_r_deg = malloc(sizeof(double) * (size_t)(n ? n : 1));
    uakd_status st = samples && r->e_t_norm && r->e_r_deg ? UAKD_OK : uakd_fail(UAKD_ENOMEM, "eval: out of memory");
    if (st == UAKD_OK && n > 0)
        st = uakd_spn_evaluate(m, sc, ds, NULL, n, uakd_spn_domain_thresholds(o->domains[d]), NULL, NULL, &r->stats,
                               samples);
    for (int i = 0; st == UAKD_OK && i < n; i++) {
        r->e_t_norm[i] = samples[i].score.e_t_norm;
        r->e_r_deg[i] = samples[i].score.e_q * 180 / M_PI;
    }
    if (st == UAKD_OK) r->n = n;
    if (st == UAKD_OK) st = example_grid(ds, samples, n, (int)o->examples, &r->examples);
    free(samples);
    uakd_dataset_free(ds);
    return st;
}

/* Accuracy (%) against the threshold of one error, a curve per domain. */
static uakd_status accuracy_plot(uakd_report *rep, const spn_eval_opts *o, const domain_result *r, int rot) {
    double thr[MAX_DOMAINS][CURVE_PTS], rate[MAX_DOMAINS][CURVE_PTS];
    uakd_plot_series s[MAX_DOMAINS];
    int ns = 0;
    for (int d = 0; d < o->nd; d++) {
        if (r[d].n == 0) continue;
        UAKD_TRY(uakd_accuracy_curve(rot ? r[d].e_r_deg : r[d].e_t_norm, r[d].n, CURVE_PTS, rot ? MAX_ROT : MAX_TRANS,
                                     thr[ns], rate[ns]));
        s[ns] = (uakd_plot_series){o->domains[d], thr[ns], rate[ns], CURVE_PTS};
        ns++;
    }
    if (ns == 0) return UAKD_OK;
    uakd_plot_opts po = {0};
    po.title = rot ? "Rotation accuracy" : "Translation accuracy";
    po.xlabel = rot ? "rotation error threshold (deg)" : "translation error threshold (E_T / |t|)";
    po.ylabel = "images below (%)";
    po.fix_y = 1, po.y_min = 0, po.y_max = 100;
    uakd_image im = {0};
    uakd_status st = uakd_plot_lines(&po, s, ns, &im, NULL);
    if (st == UAKD_OK)
        st = uakd_report_image(rep, &im, rot ? "accuracy_rotation.png" : "accuracy_translation.png",
                               rot ? "share of images with a rotation error below the threshold (rejected: 180 deg)"
                                   : "share of images with E_T / |t| below the threshold (rejected: 1)");
    uakd_image_free(&im);
    return st;
}

/* The log's loss series (validation 0) or its validation errors (1), each without its missing
 * rows (validation lines and loss lines interleave), on a log axis. */
static uakd_status log_plot(uakd_report *rep, const uakd_train_log *log, int validation, const char *file,
                            const char *caption) {
    uakd_plot_series s[64];
    double *buf = malloc(sizeof(double) * 2 * (size_t)log->rows * (size_t)(log->nkeys ? log->nkeys : 1));
    if (!buf) return uakd_fail(UAKD_ENOMEM, "eval: out of memory");
    int ns = 0;
    for (int k = 0; k < log->nkeys && ns < 64; k++) {
        const char *key = log->keys[k];
        const int is_val = !strncmp(key, "val_", 4);
        if (is_val != validation || !strcmp(key, "lr") || !strcmp(key, "img_s") || !strcmp(key, "val_rejected")) continue;
        double *x = buf + (size_t)2 * ns * log->rows, *y = x + log->rows;
        int n = 0;
        for (int i = 0; i < log->rows; i++) {
            const double v = log->values[(size_t)k * log->rows + i];
            if (isfinite(v)) x[n] = log->step[i], y[n++] = v;
        }
        if (n) s[ns++] = (uakd_plot_series){key, x, y, n};
    }
    uakd_status st = UAKD_OK;
    if (ns) {
        uakd_plot_opts po = {0};
        po.title = validation ? "Validation" : "Training curves";
        po.xlabel = "step";
        po.ylabel = validation ? "E_T (m), E_R (deg), E_pose" : "loss";
        po.log_y = 1;
        uakd_image im = {0};
        st = uakd_plot_lines(&po, s, ns, &im, NULL);
        if (st == UAKD_OK) st = uakd_report_image(rep, &im, file, caption);
        uakd_image_free(&im);
    }
    free(buf);
    return st;
}

/* A name usable in a file name (letters, digits, '.', '_', '-'), else the index. */
static void file_tag(const char *domain, int d, char *out, size_t cap) {
    int ok = *domain != 0;
    for (const char *p = domain; *p; p++) ok &= isalnum((unsigned char)*p) || *p == '.' || *p == '_' || *p == '-';
    if (ok) snprintf(out, cap, "%s", domain);
    else snprintf(out, cap, "%d", d);
}

static uakd_status write_report(const char *dir, const spn_eval_opts *o, const domain_result *r, const char *table) {
    char path[4400];
    snprintf(path, sizeof path, "%s/eval.md", dir);
    uakd_report *rep;
    UAKD_TRY(uakd_report_new(path, "SPNv2 evaluation (SPEED+)", &rep));
    uakd_status st = uakd_report_text(rep, "Model `%s`, data `%s`, keypoints `%s`.", o->model, o->data, o->csv);
    if (st == UAKD_OK) st = uakd_report_text(rep, "%s", table);
    if (st == UAKD_OK)
        st = uakd_report_text(rep, "E_T: mean translation error; E_R: mean rotation error; E_pose: mean of E_T / |t| + "
                                   "e_q (rad). * SPEED+ thresholds applied (2.173 mm/m, 0.169 deg). A rejected image "
                                   "enters every mean as a failure (t = 0, 180 deg).");
    for (int d = 0; d < o->nd && st == UAKD_OK; d++) {
        const uakd_spn_eval_stats *s = &r[d].stats;
        st = uakd_report_text(rep, "%s: %d images; rejected: %d few keypoints, %d PnP failed, %d depth, %d outside the "
                                   "image.", o->domains[d], s->images, s->outcomes[UAKD_SPN_REJ_FEW],
                              s->outcomes[UAKD_SPN_REJ_PNP], s->outcomes[UAKD_SPN_REJ_DEPTH], s->outcomes[UAKD_SPN_REJ_FOV]);
    }
    if (st == UAKD_OK) st = accuracy_plot(rep, o, r, 0);
    if (st == UAKD_OK) st = accuracy_plot(rep, o, r, 1);
    char log_path[4400];
    snprintf(log_path, sizeof log_path, "%s/train_log.jsonl", o->model);
    if (st == UAKD_OK && access(log_path, R_OK) == 0) {
        uakd_train_log log = {0};
        st = uakd_train_log_read(log_path, &log);
        if (st == UAKD_OK && log.rows > 0) st = log_plot(rep, &log, 0, "training.png", "training losses (train_log.jsonl)");
        if (st == UAKD_OK && log.rows > 0)
            st = log_plot(rep, &log, 1, "validation.png", "validation during training (train_log.jsonl)");
        uakd_train_log_free(&log);
    }
    for (int d = 0; d < o->nd && st == UAKD_OK; d++) {
        if (!r[d].examples.width) continue;
        char tag[80], file[128], caption[256];
        file_tag(o->domains[d], d, tag, sizeof tag);
        snprintf(file, sizeof file, "examples_%s.png", tag);
        snprintf(caption, sizeof caption, "%s examples: ground truth green, prediction blue; peaks red (used) or yellow",
                 o->domains[d]);
        st = uakd_report_image(rep, &r[d].examples, file, caption);
    }
    if (st == UAKD_OK) st = uakd_report_write(rep);
    uakd_report_free(rep);
    return st;
}

static int eval_parse(int argc, char **argv, spn_eval_opts *o) {
    static const struct option opts[] = {{"family", 1, 0, 'F'},  {"model", 1, 0, 'm'},   {"data", 1, 0, 'd'},
                                         {"keypoints", 1, 0, 'k'}, {"domain", 1, 0, 'D'}, {"list", 1, 0, 's'},
                                         {"max", 1, 0, 'n'},     {"batch", 1, 0, 'b'},   {"json", 1, 0, 'j'},
                                         {"out", 1, 0, 'o'},     {"examples", 1, 0, 'e'}, {"threads", 1, 0, 't'},
                                         {"backend", 1, 0, 'B'}, {0, 0, 0, 0}};
    const char *domain_list = "synthetic";
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        int ok = 1;
        switch (c) {
        case 'F': break;
        case 'm': o->model = optarg; break;
        case 'd': o->data = optarg; break;
        case 'k': o->csv = optarg; break;
        case 'D': domain_list = optarg; break;
        case 's': o->list = optarg; break;
        case 'n': ok = uakd_cli_parse_long("eval", "--max", optarg, 0, 100000000, &o->max); break;
        case 'b': ok = uakd_cli_parse_long("eval", "--batch", optarg, 1, 1024, &o->batch); break;
        case 'j': o->json = optarg; break;
        case 'o': o->out = optarg; break;
        case 'e': ok = uakd_cli_parse_long("eval", "--examples", optarg, 0, 64, &o->examples); break;
        case 't': ok = wdr_set_threads("eval", optarg); break;
        case 'B': ok = wdr_set_backend("eval", optarg); break;
        default:
            fprintf(stderr, "uakd eval: unknown or incomplete option '%s' (see uakd eval --family spnv2 --help)\n",
                    argv[optind - 1]);
            return 0;
        }
        if (!ok) return 0;
    }
    if (optind < argc || !o->model || !o->data || !o->csv) {
        fprintf(stderr, "uakd eval: --model, --data and --keypoints are required (see uakd eval --family spnv2 --help)\n");
        return 0;
    }
    for (const char *p = domain_list; *p;) {
        const size_t len = strcspn(p, ",");
        if (len == 0 || len >= 64 || o->nd == MAX_DOMAINS) {
            fprintf(stderr, "uakd eval: bad --domain '%s' (at most %d names, comma-separated)\n", domain_list, MAX_DOMAINS);
            return 0;
        }
        memcpy(o->domains[o->nd], p, len);
        o->domains[o->nd++][len] = 0;
        p += len + (p[len] == ',');
    }
    return 1;
}

int spn_cmd_eval(int argc, char **argv) {
    if (uakd_cli_wants_help(argc, argv)) return eval_usage(stdout), 0;
    spn_eval_opts o = {0};
    o.batch = 4, o.examples = 6;
    if (!eval_parse(argc, argv, &o)) return UAKD_EXIT_USAGE;
    uakd_spn_model_info info;
    uakd_spnnet *m = NULL;
    uakd_status st = uakd_spn_model_open(o.model, (int)o.batch, &info, &m);
    if (st != UAKD_OK) return uakd_cli_report("eval", st);
    uakd_spn_config sc;
    uakd_spn_config_for(&info.model, &sc);
    domain_result r[MAX_DOMAINS];
    memset(r, 0, sizeof r);
    for (int d = 0; d < o.nd && st == UAKD_OK; d++) st = eval_domain(m, &sc, &o, d, &r[d]);
    uakd_spnnet_free(m);
    uakd_strbuf table = {0};
    char dir[4200], path[4300];
    if (o.out) snprintf(dir, sizeof dir, "%s", o.out);
    else snprintf(dir, sizeof dir, "%s/eval-speedplus", o.model);
    if (o.json) snprintf(path, sizeof path, "%s", o.json);
    else snprintf(path, sizeof path, "%s/eval.json", dir);
    if (st == UAKD_OK) st = format_table(&o, r, &table);
    if (st == UAKD_OK) {
        printf("%s(* SPEED+ thresholds applied; rejected images enter every mean as failures: t = 0, 180 deg)\n", table.s);
        struct stat sb;
        if (mkdir(dir, 0777) != 0 && (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode)))
            st = uakd_fail(UAKD_EIO, "eval: cannot create the directory %s", dir);
    }
    if (st == UAKD_OK) st = write_json(path, &o, r);
    if (st == UAKD_OK) st = write_report(dir, &o, r, table.s);
    if (st == UAKD_OK) printf("json: %s\nreport: %s/eval.md\n", path, dir);
    for (int d = 0; d < o.nd; d++) {
        free(r[d].e_t_norm), free(r[d].e_r_deg);
        uakd_image_free(&r[d].examples);
    }
    uakd_strbuf_free(&table);
    return st == UAKD_OK ? UAKD_EXIT_OK : uakd_cli_report("eval", st);
}
