/* `uakd train`: supervised WDRNet training on a BOP dataset (uakd/train.h) with a progress line,
 * a JSON-lines log, periodic validation, checkpoints, --resume and a clean stop on Ctrl-C. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "uakd/backend.h"
#include "uakd/train.h"
#include "wdr_opts.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: uakd train --data ROOT --out DIR [options]\n\n"
            "Trains a WDRNet keypoint network (DarkNet backbone, FPN, shared two-tower head) on a BOP\n"
            "dataset (real, or written by `uakd synth --format bop`): training crops around the projected\n"
            "3D box with the LINEMOD augmentation, depth-range-aware target assignment, 0.1 focal + 1.0\n"
            "ray-distance pose loss, AdamW with a one-cycle schedule and gradient clipping. Ctrl-C writes a\n"
            "checkpoint and stops; --resume continues exactly where it stopped.\n\n"
            "options (defaults in brackets):\n"
            "  --data ROOT         BOP dataset root (camera.json, models/, <split>/) (required)\n"
            "  --out DIR           output directory, created (required): config.json, train_log.jsonl,\n"
            "                      checkpoint.safetensors, model.safetensors\n"
            "  --split NAME        training split [train]\n"
            "  --train-list FILE   train on these images of the split only (\"scene_id im_id\" lines, e.g.\n"
            "                      from `uakd data --write-split FILE --ratio 0.15`) [all]\n"
            "  --val-split NAME    held-out split for validation, 'none' for no validation [test]\n"
            "  --val-list FILE     validate on these images of the validation split [all; when the\n"
            "                      validation split is the training split and --train-list is given:\n"
            "                      the images not in it]\n"
            "  --obj IDS           object id(s), comma-separated; one class per object [1]\n"
            "  --variant V         darknet53, darknet-tiny or darknet-tiny-h [darknet-tiny-h]\n"
            "  --cfg FILE          a backbone description instead of the variant's\n"
            "  --cfg-dir DIR       where the variants' .cfg files are [$UAKD_CFG_DIR or cfg]\n"
            "  --width F           FPN and head width [the variant's: 256, Tiny-H 128]\n"
            "  --tower N           convolutions per head tower [4]\n"
            "  --input S           square input crop side, a multiple of 32 [256]\n"
            "  --batch N           images per step [16]\n"
            "  --steps N           training steps (the schedule length) [10000]\n"
            "  --lr X              peak learning rate [0.001]\n"
            "  --wd X              AdamW weight decay (not on norms, biases, scales) [0.0001]\n"
            "  --warmup X          warm-up fraction of the one-cycle schedule [0.05]\n"
            "  --clip X            gradient-norm clip, 0 = none [1]\n"
            "  --seed N            seed of initialisation, data order, augmentation, assignment [1]\n"
            "  --min-visib X       skip training instances less visible than this [0.1]\n"
            "  --init FILE         start from weights: a uakd model.safetensors, or a darknet .weights\n"
            "                      file for the backbone (ImageNet pretraining) [random init]\n"
            "  --val-every N       validate every N steps (and at the end); 0 = only at the end [0]\n"
            "  --val-max N         validation instances (the first of the split); 0 = all [200]\n"
            "  --ckpt-every N      checkpoint every N steps (and at the end); 0 = only at the end [500]\n"
            "  --log-every N       log line and progress line every N steps [10]\n"
            "  --resume            continue from DIR/checkpoint.safetensors (same options)\n"
            "  --threads N         compute threads, 0 = all cores [0]\n"
            "  --loader-threads N  threads preparing batches (results do not depend on it) [1]\n"
            "  --cache-mb N        decoded-image cache in MiB [1024]\n"
            "  --backend B         ref or fast [fast]\n\n"
            "Validation: ADD(-S) success at 0.05/0.1/0.2 d on the held-out split, test crops from the\n"
            "ground-truth box. Evaluate a finished model with `uakd eval --model DIR`.\n\n"
            "example: uakd train --data data-cache/ape --obj 1 --variant darknet-tiny-h --width 64 \\\n"
            "             --input 128 --batch 8 --steps 2000 --out runs/ape\n");
}

typedef struct progress_state {
    int tty;
    int64_t every;
} progress_state;

static void fmt_time(double s, char *buf, size_t cap) {
    if (!(s >= 0) || s > 1e7) snprintf(buf, cap, "?");
    else if (s >= 3600) snprintf(buf, cap, "%dh%02dm", (int)(s / 3600), (int)(s / 60) % 60);
    else snprintf(buf, cap, "%dm%02ds", (int)(s / 60), (int)s % 60);
}

static int on_progress(const uakd_train_progress *p, void *user) {
    progress_state *ps = user;
    if (p->event && strcmp(p->event, "checkpoint written")) { /* e.g. "resumed from step N" */
        fprintf(stderr, "%s%s\n", ps->tty ? "\r\033[K" : "", p->event);
        return 0;
    }
    if (p->step % ps->every == 0 || p->step == p->total) {
        char eta[32];
        fmt_time(p->eta_s, eta, sizeof eta);
        fprintf(stderr, "%sstep %lld/%lld  loss %.4f (cls %.4f pose %.4f", ps->tty ? "\r\033[K" : "", (long long)p->step,
                (long long)p->total, p->loss, p->cls, p->pose);
        for (int k = 0; k < p->n_terms; k++) fprintf(stderr, " %s %.4f", p->term_names[k], p->terms[k]);
        fprintf(stderr, ")  lr %.2e  %.1f img/s  ETA %s%s", p->lr, p->img_s, eta, ps->tty ? "" : "\n");
    }
    if (p->validation)
        fprintf(stderr, "%sstep %lld validation (%d instances, GT-box crops): ADD(-S) 0.05d %.1f%%  0.1d %.1f%%  0.2d "
                        "%.1f%%  2D proj 5px %.1f%%\n",
                ps->tty ? "\r\033[K" : "", (long long)p->step, p->val_instances, p->val_add[0], p->val_add[1],
                p->val_add[2], p->val_proj5);
    fflush(stderr);
    return 0;
}

int wdr_train_parse(const char *cmd, int argc, char **argv, uakd_train_config *cp) {
    uakd_train_config c;
    uakd_train_config_default(&c);
    c.input_size = 256;
    long v;
    static const struct option opts[] = {
        {"data", 1, 0, 'd'},       {"out", 1, 0, 'o'},        {"split", 1, 0, 's'},     {"val-split", 1, 0, 'V'},
        {"obj", 1, 0, 'O'},        {"variant", 1, 0, 'v'},    {"cfg", 1, 0, 'c'},       {"cfg-dir", 1, 0, 'C'},
        {"width", 1, 0, 'w'},      {"tower", 1, 0, 'T'},      {"input", 1, 0, 'i'},     {"batch", 1, 0, 'b'},
        {"steps", 1, 0, 'n'},      {"lr", 1, 0, 'l'},         {"wd", 1, 0, 'W'},        {"warmup", 1, 0, 'u'},
        {"clip", 1, 0, 'k'},       {"seed", 1, 0, 'S'},       {"min-visib", 1, 0, 'm'}, {"init", 1, 0, 'I'},
        {"val-every", 1, 0, 'e'},  {"val-max", 1, 0, 'x'},    {"ckpt-every", 1, 0, 'K'}, {"log-every", 1, 0, 'L'},
        {"resume", 0, 0, 'r'},     {"threads", 1, 0, 't'},    {"loader-threads", 1, 0, 'p'}, {"cache-mb", 1, 0, 'M'},
        {"backend", 1, 0, 'B'},    {"train-list", 1, 0, 'a'}, {"val-list", 1, 0, 'A'}, {0, 0, 0, 0}};
    int o;
    optind = 1;
    opterr = 0;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        int ok = 1;
        switch (o) {
        case 'd': c.data_root = optarg; break;
        case 'o': c.out_dir = optarg; break;
        case 's': c.train_split = optarg; break;
        case 'a': c.train_list = optarg; break;
        case 'A': c.val_list = optarg; break;
        case 'V': c.val_split = strcmp(optarg, "none") ? optarg : NULL; break;
        case 'O': ok = wdr_parse_ints(cmd, "--obj", optarg, UAKD_TRAIN_MAX_OBJECTS, 0, 63, c.obj_ids, &c.num_obj_ids); break;
        case 'v': c.variant = optarg; break;
        case 'c': c.cfg_path = optarg; break;
        case 'C': c.cfg_dir = optarg; break;
        case 'w': ok = uakd_cli_parse_long(cmd, "--width", optarg, 1, 4096, &v), c.width = (int)v; break;
        case 'T': ok = uakd_cli_parse_long(cmd, "--tower", optarg, 1, 8, &v), c.tower_convs = (int)v; break;
        case 'i': ok = uakd_cli_parse_long(cmd, "--input", optarg, 32, 4096, &v), c.input_size = (int)v; break;
        case 'b': ok = uakd_cli_parse_long(cmd, "--batch", optarg, 1, 4096, &v), c.batch = (int)v; break;
        case 'n': ok = uakd_cli_parse_long(cmd, "--steps", optarg, 1, 100000000, &v), c.steps = v; break;
        case 'l': ok = uakd_cli_parse_double(cmd, "--lr", optarg, 1e-9, 10, &c.lr); break;
        case 'W': ok = uakd_cli_parse_double(cmd, "--wd", optarg, 0, 10, &c.weight_decay); break;
        case 'u': ok = uakd_cli_parse_double(cmd, "--warmup", optarg, 0, 0.99, &c.warmup_frac); break;
        case 'k': ok = uakd_cli_parse_double(cmd, "--clip", optarg, 0, 1e9, &c.clip); break;
        case 'S': ok = uakd_cli_parse_long(cmd, "--seed", optarg, 0, 1L << 62, &v), c.seed = (uint64_t)v; break;
        case 'm': ok = uakd_cli_parse_double(cmd, "--min-visib", optarg, 0, 1, &c.min_visib_fract); break;
        case 'I': c.init_weights = optarg; break;
        case 'e': ok = uakd_cli_parse_long(cmd, "--val-every", optarg, 0, 100000000, &v), c.val_every = v; break;
        case 'x': ok = uakd_cli_parse_long(cmd, "--val-max", optarg, 0, 10000000, &v), c.val_max = (int)v; break;
        case 'K': ok = uakd_cli_parse_long(cmd, "--ckpt-every", optarg, 0, 100000000, &v), c.ckpt_every = v; break;
        case 'L': ok = uakd_cli_parse_long(cmd, "--log-every", optarg, 1, 100000000, &v), c.log_every = v; break;
        case 'r': c.resume = 1; break;
        case 't': ok = wdr_set_threads(cmd, optarg); break;
        case 'p': ok = uakd_cli_parse_long(cmd, "--loader-threads", optarg, 0, 64, &v), c.loader_threads = (int)v; break;
        case 'M': ok = uakd_cli_parse_long(cmd, "--cache-mb", optarg, 0, 1L << 20, &v), c.cache_bytes = (size_t)v << 20; break;
        case 'B': ok = wdr_set_backend(cmd, optarg); break;
        default:
            fprintf(stderr, "uakd %s: unknown or incomplete option '%s' (see uakd %s --help)\n", cmd, argv[optind - 1], cmd);
            return 0;
        }
        if (!ok) return 0;
    }
    if (optind < argc) {
        fprintf(stderr, "uakd %s: unexpected argument '%s'\n", cmd, argv[optind]);
        return 0;
    }
    *cp = c;
    return 1;
}

int wdr_train_run_cli(const char *cmd, uakd_train_config *cp, uakd_train_result *resp) {
    uakd_train_config c = *cp;
    progress_state ps = {isatty(2), c.log_every};
    c.progress = on_progress;
    c.user = &ps;
    wdr_catch_sigint();
    c.interrupt = &wdr_interrupted;
    char width[32] = "the variant's";
    if (c.width) snprintf(width, sizeof width, "%d", c.width);
    fprintf(stderr, "%s: %s, width %s, input %d, batch %d, %lld steps, lr %g, %d compute threads, backend %s\n",
            cmd, c.cfg_path ? c.cfg_path : c.variant, width, c.input_size, c.batch, (long long)c.steps, c.lr,
            uakd_get_num_threads(), uakd_backend_name(uakd_get_backend()));
    uakd_train_result res;
    uakd_status st = uakd_train_run(&c, &res);
    if (resp) *resp = res;
    if (ps.tty) fputc('\n', stderr);
    if (st == UAKD_OK || st == UAKD_EINTERRUPTED)
        fprintf(stderr, "%s: %lld steps in %.1f s (%.3f s/step)\n", cmd, (long long)res.steps_done, res.seconds,
                res.steps_done ? res.seconds / (double)res.steps_done : 0.0);
    if (st == UAKD_OK) {
        printf("model: %s/model.safetensors\n", c.out_dir);
        return UAKD_EXIT_OK;
    }
    return uakd_cli_report(cmd, st);
}

int uakd_cmd_train(int argc, char **argv) {
    if (uakd_cli_wants_help(argc, argv)) return usage(stdout), 0;
    uakd_train_config c;
    if (!wdr_train_parse("train", argc, argv, &c)) return UAKD_EXIT_USAGE;
    if (!c.data_root || !c.out_dir) {
        fprintf(stderr, "uakd train: --data and --out are required (see uakd train --help)\n");
        return UAKD_EXIT_USAGE;
    }
    return wdr_train_run_cli("train", &c, NULL);
}
