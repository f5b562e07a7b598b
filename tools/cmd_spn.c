/* `uakd train --family spnv2` and `uakd eval` of an SPNv2 model: SPEED+ training (uakd/spn_train.h)
 * with a progress line and Ctrl-C checkpointing; per-domain SPEED+ evaluation (uakd/spn_infer.h)
 * printed as a table and written as JSON. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "spn_cli.h"
#include "uakd/backend.h"
#include "uakd/fileio.h"
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
            "  --erase-p X [0.5]  --flare-p X [0.5]  --photometric-p X [0.5]\n"
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
        {"bifpn-layers", 1, 0, 'Z'}, {"head-depth", 1, 0, 'H'}, {0, 0, 0, 0}};
    int o, in_w = 0, in_h = 0, reduced = 0;
    double wm = 0;
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
        const uakd_spnnet_config r = {0.25, 0.34, 16, 2, 2, 11, 768, 512, 0, 0};
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
    fprintf(stderr, "%s: spnv2 (width %g, depth %g, BiFPN %d x %d, head %d) %lld parameters, input %dx%d, batch %d, "
                    "%lld steps, lr %g, %d compute threads, backend %s\n",
            cmd, c.model.width_mult, c.model.depth_mult, c.model.bifpn_width, c.model.bifpn_layers, c.model.head_depth,
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
            "options (defaults in brackets):\n"
            "  --model DIR      directory written by uakd train --family spnv2 (required)\n"
            "  --data ROOT      SPEED+ root (required)\n"
            "  --keypoints CSV  keypoints file (required)\n"
            "  --domain LIST    comma-separated domains [synthetic]\n"
            "  --list NAME      list in each domain [validation for synthetic, test otherwise]\n"
            "  --max N          first N images per domain, 0 = all [0]\n"
            "  --batch N        images per forward pass [4]\n"
            "  --json FILE      write the table as JSON [MODEL/eval-speedplus.json]\n"
            "  --threads N [0 = all]  --backend ref|fast [fast]\n");
}

static uakd_status write_json(const char *path, const char *model, char domains[][64], const uakd_spn_eval_stats *s,
                              int nd) {
    static const char *const names[UAKD_SPN_OUTCOMES] = {"ok", "rejected_few_keypoints", "rejected_pnp",
                                                        "rejected_depth", "rejected_fov"};
    cJSON *j = cJSON_CreateObject(), *arr = cJSON_CreateArray();
    cJSON_AddStringToObject(j, "model", model);
    cJSON_AddStringToObject(j, "rejected_images", "failures: t = 0, e_q = pi (E_pose = 1 + pi)");
    for (int d = 0; d < nd; d++) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "domain", domains[d]);
        cJSON_AddBoolToObject(e, "thresholds", uakd_spn_domain_thresholds(domains[d]));
        cJSON_AddNumberToObject(e, "images", s[d].images);
        cJSON_AddNumberToObject(e, "E_T_m", s[d].E_T);
        cJSON_AddNumberToObject(e, "E_R_deg", s[d].E_R_deg);
        cJSON_AddNumberToObject(e, "E_pose", s[d].E_pose);
        for (int k = 0; k < UAKD_SPN_OUTCOMES; k++) cJSON_AddNumberToObject(e, names[k], s[d].outcomes[k]);
        cJSON_AddItemToArray(arr, e);
    }
    cJSON_AddItemToObject(j, "domains", arr);
    char *text = cJSON_Print(j);
    cJSON_Delete(j);
    if (!text) return uakd_fail(UAKD_ENOMEM, "eval: out of memory");
    uakd_status st = uakd_write_file_atomic(path, text, strlen(text));
    free(text);
    return st;
}

int spn_cmd_eval(int argc, char **argv) {
    if (uakd_cli_wants_help(argc, argv)) return eval_usage(stdout), 0;
    static const struct option opts[] = {{"family", 1, 0, 'F'}, {"model", 1, 0, 'm'},  {"data", 1, 0, 'd'},
                                         {"keypoints", 1, 0, 'k'}, {"domain", 1, 0, 'D'}, {"list", 1, 0, 's'},
                                         {"max", 1, 0, 'n'},    {"batch", 1, 0, 'b'},  {"json", 1, 0, 'j'},
                                         {"threads", 1, 0, 't'}, {"backend", 1, 0, 'B'}, {0, 0, 0, 0}};
    const char *model = NULL, *data = NULL, *csv = NULL, *domain_list = "synthetic", *list = NULL, *json = NULL;
    long max = 0, batch = 4;
    int o;
    optind = 1;
    opterr = 0;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        int ok = 1;
        switch (o) {
        case 'F': break;
        case 'm': model = optarg; break;
        case 'd': data = optarg; break;
        case 'k': csv = optarg; break;
        case 'D': domain_list = optarg; break;
        case 's': list = optarg; break;
        case 'n': ok = uakd_cli_parse_long("eval", "--max", optarg, 0, 100000000, &max); break;
        case 'b': ok = uakd_cli_parse_long("eval", "--batch", optarg, 1, 1024, &batch); break;
        case 'j': json = optarg; break;
        case 't': ok = wdr_set_threads("eval", optarg); break;
        case 'B': ok = wdr_set_backend("eval", optarg); break;
        default:
            fprintf(stderr, "uakd eval: unknown or incomplete option '%s' (see uakd eval --family spnv2 --help)\n",
                    argv[optind - 1]);
            return UAKD_EXIT_USAGE;
        }
        if (!ok) return UAKD_EXIT_USAGE;
    }
    if (optind < argc || !model || !data || !csv) {
        fprintf(stderr, "uakd eval: --model, --data and --keypoints are required (see uakd eval --family spnv2 --help)\n");
        return UAKD_EXIT_USAGE;
    }
    char domains[8][64];
    int nd = 0;
    for (const char *p = domain_list; *p && nd < 8;) {
        const size_t len = strcspn(p, ",");
        if (len == 0 || len >= 64) {
            fprintf(stderr, "uakd eval: bad --domain '%s'\n", domain_list);
            return UAKD_EXIT_USAGE;
        }
        memcpy(domains[nd], p, len);
        domains[nd++][len] = 0;
        p += len + (p[len] == ',');
    }
    uakd_spn_model_info info;
    uakd_spnnet *m = NULL;
    uakd_status st = uakd_spn_model_open(model, (int)batch, &info, &m);
    if (st != UAKD_OK) return uakd_cli_report("eval", st);
    uakd_spn_config sc;
    uakd_spn_config_for(&info.model, &sc);
    uakd_spn_eval_stats stats[8];
    memset(stats, 0, sizeof stats);
    for (int d = 0; d < nd && st == UAKD_OK; d++) {
        uakd_dataset *ds = NULL;
        const char *ls = list ? list : strcmp(domains[d], "synthetic") ? "test" : "validation";
        st = uakd_dataset_load_speedplus(data, domains[d], ls, csv, &ds);
        if (st == UAKD_OK)
            st = uakd_spn_evaluate(m, &sc, ds, NULL, (int)max, uakd_spn_domain_thresholds(domains[d]), NULL, NULL,
                                   &stats[d], NULL);
        uakd_dataset_free(ds);
    }
    uakd_spnnet_free(m);
    if (st != UAKD_OK) return uakd_cli_report("eval", st);
    printf("| domain | images | rejected | E_T (m) | E_R (deg) | E_pose |\n|---|---|---|---|---|---|\n");
    for (int d = 0; d < nd; d++)
        printf("| %s%s | %d | %d | %.4f | %.3f | %.5f |\n", domains[d], uakd_spn_domain_thresholds(domains[d]) ? "*" : "",
               stats[d].images, stats[d].images - stats[d].outcomes[UAKD_SPN_OK], stats[d].E_T, stats[d].E_R_deg,
               stats[d].E_pose);
    printf("(* SPEED+ thresholds applied; rejected images enter every mean as failures: t = 0, 180 deg)\n");
    char path[4200];
    if (json) snprintf(path, sizeof path, "%s", json);
    else snprintf(path, sizeof path, "%s/eval-speedplus.json", model);
    st = write_json(path, model, domains, stats, nd);
    if (st != UAKD_OK) return uakd_cli_report("eval", st);
    printf("json: %s\n", path);
    return UAKD_EXIT_OK;
}
