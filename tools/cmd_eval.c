/* `uakd eval`: scores a trained WDRNet on a BOP split with the ADD(-S) protocol (uakd/infer.h),
 * prints the Markdown table and writes eval.json and a report (eval.md with the table, the
 * accuracy-vs-threshold curve, the training curves when the model directory has a log, and a grid
 * of example images with the predicted and ground-truth 3D boxes). */
#include <cjson/cJSON.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "progress.h"
#include "uakd/fileio.h"
#include "uakd/json.h"
#include "uakd/report.h"
#include "uakd/train.h"
#include "spn_cli.h"
#include "wdr_opts.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: uakd eval --model DIR_OR_FILE --data ROOT [options]\n\n"
            "Scores a model trained by `uakd train` on a BOP split: for every annotated instance of the\n"
            "model's objects, a test crop (side 1.5 max(w, h), no jitter) around the ground-truth box of\n"
            "the projected 3D box (or the --box detections), the network, decoding (confidence > 0.1,\n"
            "per-level quotas), RANSAC-EPnP (5 px) + refinement in the full image. ADD (ADD-S for objects\n"
            "with symmetries in models_info.json) over every vertex of models_eval, success at 0.05, 0.1,\n"
            "0.2 diameters; 2D projection error at 5 px; 5 cm 5 deg; mean rotation and translation errors.\n"
            "A missing prediction counts as a failure.\n\n"
            "An SPNv2 model (config.json \"family\": \"spnv2\") is scored on SPEED+ instead\n"
            "(uakd eval --family spnv2 --help).\n\n"
            "options (defaults in brackets):\n"
            "  --model M       a model directory written by uakd train (config.json + model.safetensors,\n"
            "                  or checkpoint.safetensors while training), or a weights file in one (required)\n"
            "  --data ROOT     BOP dataset root (required)\n"
            "  --split NAME    split to score [test]\n"
            "  --obj IDS       only these object ids (comma-separated) [every object of the model]\n"
            "  --box FILE      detector boxes, BOP detection JSON: [{\"scene_id\", \"image_id\",\n"
            "                  \"category_id\", \"bbox\": [x, y, w, h], \"score\"}], the best-scoring box of each\n"
            "                  image and object; an instance without one is a missing prediction\n"
            "                  [the ground-truth box]\n"
            "  --list FILE     score only these images (\"scene_id im_id\" lines) [all]\n"
            "  --exclude FILE  leave out these images, e.g. the --train-list of training [none]\n"
            "  --max N         score only the first N instances, 0 = all [0]\n"
            "  --batch N       crops per forward pass [8]\n"
            "  --out DIR       eval.json, eval.md and its PNGs [MODEL_DIR/eval-SPLIT]\n"
            "  --examples N    images in the example grid, 0 = none [6]\n"
            "  --threads N     compute threads, 0 = all cores [0]\n"
            "  --backend B     ref or fast [fast]\n");
}

typedef struct eval_opts {
    const char *model, *data, *split, *out, *box_file, *list, *exclude;
    int obj_ids[UAKD_TRAIN_MAX_OBJECTS], n_obj;
    long max, batch, examples;
} eval_opts;

static int progress_cb(int done, int total, void *user) {
    uakd_progress_update(user, done);
    (void)total;
    return wdr_interrupted != 0;
}

/* Best-scoring detection box per selected instance, or the instance is dropped from boxes (NaN). */
static uakd_status read_boxes(const char *path, const uakd_dataset *ds, const int *idx, int n, double (*boxes)[4]) {
    void *data;
    size_t size;
    UAKD_TRY(uakd_read_file(path, (size_t)1 << 30, &data, &size));
    cJSON *j = cJSON_ParseWithLength(data, size);
    free(data);
    if (!cJSON_IsArray(j)) {
        cJSON_Delete(j);
        return uakd_fail(UAKD_EFORMAT, "%s: expected a JSON array of detections", path);
    }
    double *best = malloc(sizeof(double) * (size_t)(n ? n : 1));
    if (!best) return cJSON_Delete(j), uakd_fail(UAKD_ENOMEM, "eval: out of memory");
    for (int i = 0; i < n; i++) best[i] = -INFINITY, boxes[i][0] = boxes[i][1] = boxes[i][2] = boxes[i][3] = NAN;
    uakd_status st = UAKD_OK;
    int k = 0;
    for (const cJSON *e = j->child; e && st == UAKD_OK; e = e->next, k++) {
        const cJSON *sc = cJSON_GetObjectItemCaseSensitive(e, "scene_id"), *im = cJSON_GetObjectItemCaseSensitive(e, "image_id"),
                    *ob = cJSON_GetObjectItemCaseSensitive(e, "category_id"), *bb = cJSON_GetObjectItemCaseSensitive(e, "bbox"),
                    *s = cJSON_GetObjectItemCaseSensitive(e, "score");
        double b[4];
        if (!cJSON_IsNumber(sc) || !cJSON_IsNumber(im) || !cJSON_IsNumber(ob) || !cJSON_IsArray(bb) ||
            cJSON_GetArraySize(bb) != 4) {
            st = uakd_fail(UAKD_EFORMAT, "%s: detection %d needs scene_id, image_id, category_id and bbox [x, y, w, h]", path, k);
            break;
        }
        for (int q = 0; q < 4; q++) b[q] = cJSON_IsNumber(cJSON_GetArrayItem(bb, q)) ? cJSON_GetArrayItem(bb, q)->valuedouble : NAN;
        if (!(b[2] > 0 && b[3] > 0 && isfinite(b[0]) && isfinite(b[1]))) {
            st = uakd_fail(UAKD_EFORMAT, "%s: detection %d has a bad bbox", path, k);
            break;
        }
        const double score = cJSON_IsNumber(s) ? s->valuedouble : 1.0;
        for (int i = 0; i < n; i++) {
            const uakd_instance *in = &ds->instances[idx[i]];
            if (in->scene_id == sc->valueint && in->image_id == im->valueint && in->obj_id == ob->valueint && score > best[i]) {
                best[i] = score;
                memcpy(boxes[i], b, sizeof b);
            }
        }
    }
    free(best);
    cJSON_Delete(j);
    return st;
}

static cJSON *stats_json(const uakd_eval_stats *s) {
    cJSON *o = cJSON_CreateObject();
    const double n = s->targets ? s->targets : 1, np = s->targets - s->missing > 0 ? s->targets - s->missing : 1;
    cJSON_AddNumberToObject(o, "targets", s->targets);
    cJSON_AddNumberToObject(o, "missing", s->missing);
    cJSON_AddNumberToObject(o, "add_005d", 100.0 * s->add_pass[0] / n);
    cJSON_AddNumberToObject(o, "add_01d", 100.0 * s->add_pass[1] / n);
    cJSON_AddNumberToObject(o, "add_02d", 100.0 * s->add_pass[2] / n);
    cJSON_AddNumberToObject(o, "proj_5px", 100.0 * s->proj_pass / n);
    cJSON_AddNumberToObject(o, "cm5deg5", 100.0 * s->cm5deg5_pass / n);
    cJSON_AddNumberToObject(o, "mean_add_mm", s->sum_add / np);
    cJSON_AddNumberToObject(o, "mean_rot_deg", s->sum_rot_deg / np);
    cJSON_AddNumberToObject(o, "mean_trans_mm", s->sum_trans / np);
    return o;
}

static uakd_status write_json(const char *path, const eval_opts *o, const uakd_eval_result *r) {
    cJSON *j = cJSON_CreateObject(), *objs = cJSON_CreateObject(), *items = cJSON_CreateArray();
    cJSON_AddStringToObject(j, "model", o->model);
    cJSON_AddStringToObject(j, "data", o->data);
    cJSON_AddStringToObject(j, "split", o->split);
    cJSON_AddStringToObject(j, "box", r->gt_box ? "ground truth (projected 3D box)" : o->box_file);
    uakd_eval_stats all;
    uakd_eval_overall(&r->stats, &all);
    cJSON_AddItemToObject(j, "all", stats_json(&all));
    for (int i = 0; i < UAKD_EVAL_MAX_OBJECTS; i++)
        if (r->stats.obj[i].targets) {
            char k[16];
            snprintf(k, sizeof k, "%d", i);
            cJSON_AddItemToObject(objs, k, stats_json(&r->stats.obj[i]));
        }
    cJSON_AddItemToObject(j, "objects", objs);
    for (int i = 0; i < r->n; i++) {
        const uakd_eval_sample *s = &r->samples[i];
        cJSON *e = cJSON_CreateObject();
        cJSON_AddNumberToObject(e, "instance", s->instance);
        cJSON_AddNumberToObject(e, "obj_id", s->obj_id);
        cJSON_AddBoolToObject(e, "predicted", s->pred.ok);
        if (s->pred.ok) {
            cJSON_AddNumberToObject(e, "add_d", s->err_d);
            cJSON_AddNumberToObject(e, "proj_px", isfinite(s->proj_px) ? s->proj_px : -1);
            cJSON_AddNumberToObject(e, "confidence", s->pred.conf);
            cJSON_AddItemToObject(e, "R", cJSON_CreateDoubleArray(s->pred.pose.R, 9));
            cJSON_AddItemToObject(e, "t", cJSON_CreateDoubleArray(s->pred.pose.t, 3));
        }
        cJSON_AddItemToArray(items, e);
    }
    cJSON_AddItemToObject(j, "instances", items);
    return uakd_json_write_atomic(path, j);
}

/* A view of the object around its ground-truth box with both 3D boxes drawn. */
static uakd_status example_image(const uakd_dataset *ds, const uakd_eval_sample *s, uakd_image *out) {
    const uakd_instance *in = &ds->instances[s->instance];
    const uakd_object_info *o = &ds->objects[in->object];
    uakd_image im = {0};
    UAKD_TRY(uakd_image_read(in->image_path, 3, 1, &im));
    uakd_camera cam = {in->K[0], in->K[4], in->K[2], in->K[5], {0}};
    memcpy(cam.dist, ds->dist, sizeof cam.dist);
    const double mx[3] = {o->min[0] + o->size[0], o->min[1] + o->size[1], o->min[2] + o->size[2]};
    const uint8_t green[3] = {0, 200, 0}, blue[3] = {30, 100, 255};
    uakd_status st = uakd_draw_pose_box(&im, &cam, &in->pose, o->min, mx, green, 2.0);
    if (st == UAKD_OK && s->pred.ok) st = uakd_draw_pose_box(&im, &cam, &s->pred.pose, o->min, mx, blue, 2.0);
    const double *b = in->bbox_obj;
    const double side = 2.0 * (b[2] > b[3] ? b[2] : b[3]) + 32, S = 256;
    const double M[6] = {side / S, 0, b[0] + b[2] / 2 - side / 2, 0, side / S, b[1] + b[3] / 2 - side / 2};
    if (st == UAKD_OK) st = uakd_image_alloc(out, (int)S, (int)S, 3);
    if (st == UAKD_OK) st = uakd_image_warp_affine(&im, M, 0, 0, out);
    char label[64];
    if (s->pred.ok) snprintf(label, sizeof label, "ADD %.3fd", s->err_d);
    else snprintf(label, sizeof label, "no prediction");
    const uint8_t white[3] = {255, 255, 255};
    if (st == UAKD_OK) st = uakd_draw_label(out, 4, 4, label, white, 14);
    uakd_image_free(&im);
    return st;
}

static uakd_status write_report(const char *dir, const eval_opts *o, const char *model_dir, const uakd_dataset *ds,
                                const uakd_eval_result *r, const char *table) {
    char path[4400];
    snprintf(path, sizeof path, "%s/eval.md", dir);
    uakd_report *rep;
    UAKD_TRY(uakd_report_new(path, "WDRNet evaluation", &rep));
    uakd_status st = uakd_report_text(rep, "Model `%s`, data `%s`, split `%s`, %d instances. Crops from %s.", o->model,
                                      o->data, o->split, r->n,
                                      r->gt_box ? "the ground-truth box (perfect detector)" : "the detector boxes");
    if (st == UAKD_OK) st = uakd_report_text(rep, "%s", table);
    /* accuracy vs threshold */
    double *err = malloc(sizeof(double) * (size_t)(r->n ? r->n : 1)), thr[101], rate[101];
    uakd_image im = {0};
    if (!err) st = uakd_fail(UAKD_ENOMEM, "eval: out of memory");
    for (int i = 0; st == UAKD_OK && i < r->n; i++) err[i] = r->samples[i].err_d;
    if (st == UAKD_OK && r->n) st = uakd_accuracy_curve(err, r->n, 101, 0.5, thr, rate);
    if (st == UAKD_OK && r->n) {
        uakd_plot_opts po = {0};
        po.title = "ADD(-S) accuracy vs threshold";
        po.xlabel = "threshold (fraction of the diameter)";
        po.ylabel = "success (%)";
        po.fix_y = 1, po.y_min = 0, po.y_max = 100;
        uakd_plot_series s = {"ADD(-S)", thr, rate, 101};
        st = uakd_plot_lines(&po, &s, 1, &im, NULL);
        if (st == UAKD_OK) st = uakd_report_image(rep, &im, "accuracy.png", "ADD(-S) success rate against the threshold");
        uakd_image_free(&im);
    }
    free(err);
    /* training curves */
    char log_path[4400];
    snprintf(log_path, sizeof log_path, "%s/train_log.jsonl", model_dir);
    if (st == UAKD_OK && access(log_path, R_OK) == 0) {
        uakd_train_log log = {0};
        static const char *const keys[] = {"loss", "cls", "pose"};
        st = uakd_train_log_read(log_path, &log);
        if (st == UAKD_OK && log.rows > 0) st = uakd_plot_train_log(&log, keys, 3, NULL, &im);
        if (st == UAKD_OK && log.rows > 0) st = uakd_report_image(rep, &im, "training.png", "training losses (train_log.jsonl)");
        uakd_image_free(&im);
        uakd_train_log_free(&log);
    }
    /* example grid */
    const int ne = (int)(o->examples < r->n ? o->examples : r->n);
    uakd_image *ex = calloc((size_t)(ne ? ne : 1), sizeof *ex);
    if (!ex) st = uakd_fail(UAKD_ENOMEM, "eval: out of memory");
    for (int i = 0; st == UAKD_OK && i < ne; i++) st = example_image(ds, &r->samples[(long)i * r->n / ne], &ex[i]);
    if (st == UAKD_OK && ne) st = uakd_image_grid(ex, ne, ne < 3 ? ne : 3, 256, 256, &im);
    if (st == UAKD_OK && ne)
        st = uakd_report_image(rep, &im, "examples.png", "examples: ground truth green, prediction blue");
    uakd_image_free(&im);
    for (int i = 0; ex && i < ne; i++) uakd_image_free(&ex[i]);
    free(ex);
    if (st == UAKD_OK) st = uakd_report_write(rep);
    uakd_report_free(rep);
    return st;
}

/* Instances of the listed images (all without --list), minus those of the excluded images. */
static uakd_status select_instances(const eval_opts *o, const uakd_dataset *ds, int **idx, int *n) {
    if (o->list) UAKD_TRY(uakd_split_from_list(ds, o->list, idx, n));
    else {
        *idx = malloc(sizeof(int) * (size_t)(ds->num_instances ? ds->num_instances : 1));
        if (!*idx) return uakd_fail(UAKD_ENOMEM, "eval: out of memory");
        for (int i = 0; i < ds->num_instances; i++) (*idx)[i] = i;
        *n = ds->num_instances;
    }
    if (!o->exclude) return UAKD_OK;
    int *ex, nex, k = 0, m = 0;
    UAKD_TRY(uakd_split_from_list(ds, o->exclude, &ex, &nex));
    for (int i = 0; i < *n; i++) { /* both sorted increasingly */
        while (k < nex && ex[k] < (*idx)[i]) k++;
        if (k == nex || ex[k] != (*idx)[i]) (*idx)[m++] = (*idx)[i];
    }
    *n = m;
    free(ex);
    return UAKD_OK;
}

static int parse(int argc, char **argv, eval_opts *o) {
    static const struct option opts[] = {{"model", 1, 0, 'm'}, {"data", 1, 0, 'd'},    {"split", 1, 0, 's'},
                                         {"obj", 1, 0, 'O'},   {"box", 1, 0, 'x'},     {"max", 1, 0, 'n'},
                                         {"batch", 1, 0, 'b'}, {"out", 1, 0, 'o'},     {"examples", 1, 0, 'e'},
                                         {"threads", 1, 0, 't'}, {"backend", 1, 0, 'B'}, {"list", 1, 0, 'l'},
                                         {"exclude", 1, 0, 'X'}, {0, 0, 0, 0}};
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        int ok = 1;
        switch (c) {
        case 'm': o->model = optarg; break;
        case 'd': o->data = optarg; break;
        case 's': o->split = optarg; break;
        case 'O': ok = wdr_parse_ints("eval", "--obj", optarg, UAKD_TRAIN_MAX_OBJECTS, 0, 63, o->obj_ids, &o->n_obj); break;
        case 'x': o->box_file = optarg; break;
        case 'l': o->list = optarg; break;
        case 'X': o->exclude = optarg; break;
        case 'n': ok = uakd_cli_parse_long("eval", "--max", optarg, 0, 100000000, &o->max); break;
        case 'b': ok = uakd_cli_parse_long("eval", "--batch", optarg, 1, 1024, &o->batch); break;
        case 'o': o->out = optarg; break;
        case 'e': ok = uakd_cli_parse_long("eval", "--examples", optarg, 0, 64, &o->examples); break;
        case 't': ok = wdr_set_threads("eval", optarg); break;
        case 'B': ok = wdr_set_backend("eval", optarg); break;
        default:
            fprintf(stderr, "uakd eval: unknown or incomplete option '%s' (see uakd eval --help)\n", argv[optind - 1]);
            return 0;
        }
        if (!ok) return 0;
    }
    if (optind < argc) {
        fprintf(stderr, "uakd eval: unexpected argument '%s'\n", argv[optind]);
        return 0;
    }
    if (!o->model || !o->data) {
        fprintf(stderr, "uakd eval: --model and --data are required (see uakd eval --help)\n");
        return 0;
    }
    return 1;
}

int uakd_cmd_eval(int argc, char **argv) {
    if (spn_cli_family(argc, argv) || spn_cli_model_is(argc, argv)) return spn_cmd_eval(argc, argv); /* SPNv2 */
    if (uakd_cli_wants_help(argc, argv)) return usage(stdout), 0;
    eval_opts o = {0};
    o.split = "test", o.batch = 8, o.examples = 6;
    if (!parse(argc, argv, &o)) return UAKD_EXIT_USAGE;
    uakd_model_info info;
    uakd_wdrnet *m = NULL;
    uakd_dataset *ds = NULL;
    uakd_eval_model *models = NULL;
    uakd_eval_result res = {0};
    int *idx = NULL;
    double(*boxes)[4] = NULL;
    char model_dir[4096], out_dir[4200];
    struct stat sb;
    snprintf(model_dir, sizeof model_dir, "%s", o.model);
    if (stat(o.model, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        char *slash = strrchr(model_dir, '/');
        if (slash) *slash = 0;
        else snprintf(model_dir, sizeof model_dir, ".");
    }
    uakd_status st = uakd_model_open(o.model, (int)o.batch, &info, &m);
    int sel[UAKD_TRAIN_MAX_OBJECTS], nsel = 0;
    for (int k = 0; st == UAKD_OK && k < info.num_objects; k++) {
        int want = o.n_obj == 0;
        for (int q = 0; q < o.n_obj; q++) want |= o.obj_ids[q] == info.obj_ids[k];
        if (want) sel[nsel++] = info.obj_ids[k];
    }
    if (st == UAKD_OK && nsel == 0) st = uakd_fail(UAKD_EINVAL, "eval: none of --obj is an object of the model");
    uakd_bop_options bo = {sel, nsel, 0};
    if (st == UAKD_OK) st = uakd_dataset_load_bop(o.data, o.split, &bo, &ds);
    if (st == UAKD_OK) st = uakd_eval_models_load(o.data, ds, &models);
    int n = 0;
    if (st == UAKD_OK) st = select_instances(&o, ds, &idx, &n);
    if (o.max && n > o.max) n = (int)o.max;
    if (st == UAKD_OK && n == 0) st = uakd_fail(UAKD_EINVAL, "eval: %s/%s has no selected instance of the model's objects", o.data, o.split);
    if (st == UAKD_OK && o.box_file) {
        boxes = malloc(sizeof *boxes * (size_t)n);
        st = boxes ? read_boxes(o.box_file, ds, idx, n, boxes) : uakd_fail(UAKD_ENOMEM, "eval: out of memory");
    }
    /* instances without a detection: scored as missing predictions (kept out of the network) */
    int n_run = n, n_nobox = 0, *nobox = NULL;
    if (st == UAKD_OK && boxes) {
        n_run = 0;
        if (!(nobox = malloc(sizeof(int) * (size_t)n))) st = uakd_fail(UAKD_ENOMEM, "eval: out of memory");
        for (int i = 0; st == UAKD_OK && i < n; i++)
            if (isfinite(boxes[i][0])) idx[n_run] = idx[i], memmove(boxes[n_run], boxes[i], sizeof boxes[i]), n_run++;
            else nobox[n_nobox++] = idx[i];
    }
    uakd_progress pr;
    wdr_catch_sigint();
    if (st == UAKD_OK) {
        uakd_infer_config ic;
        uakd_infer_config_default(&ic);
        uakd_progress_start(&pr, "eval", n_run, "img");
        uakd_eval_input in = {ds, models, idx, n_run, info.obj_ids, info.num_objects, (const double(*)[4])boxes,
                              progress_cb, &pr};
        st = uakd_infer_evaluate(m, &ic, &in, &res);
        if (st == UAKD_OK) uakd_progress_finish(&pr, n_run);
    }
    if (st == UAKD_OK && n_nobox) {
        /* the instances without a box: failures in the table */
        for (int i = 0; i < n_nobox; i++) {
            const uakd_instance *in = &ds->instances[nobox[i]];
            st = uakd_eval_add(&res.stats, &models[in->object], &(uakd_camera){0}, &in->pose, NULL);
        }
    }
    if (st == UAKD_OK) {
        char table[16384];
        uakd_eval_format_markdown(&res.stats, table, sizeof table);
        printf("%s\ncrops from %s; %d instances of %s/%s\n", table,
               res.gt_box ? "the ground-truth box (projected 3D box, no jitter)" : "the detector boxes", n, o.data, o.split);
        if (o.out) snprintf(out_dir, sizeof out_dir, "%s", o.out);
        else snprintf(out_dir, sizeof out_dir, "%s/eval-%s", model_dir, o.split);
        if (mkdir(out_dir, 0777) != 0 && stat(out_dir, &sb) != 0)
            st = uakd_fail(UAKD_EIO, "eval: cannot create %s", out_dir);
        char path[4300];
        snprintf(path, sizeof path, "%s/eval.json", out_dir);
        if (st == UAKD_OK) st = write_json(path, &o, &res);
        if (st == UAKD_OK) st = write_report(out_dir, &o, model_dir, ds, &res, table);
        if (st == UAKD_OK) printf("wrote %s/eval.json and %s/eval.md\n", out_dir, out_dir);
    }
    uakd_eval_result_free(&res);
    if (ds) uakd_eval_models_free(models, ds->num_objects);
    uakd_dataset_free(ds);
    uakd_wdrnet_free(m);
    free(idx), free(boxes), free(nobox);
    return st == UAKD_OK ? UAKD_EXIT_OK : uakd_cli_report("eval", st);
}
