/* `uakd predict`: the pose of an object in one image from a trained WDRNet (uakd/infer.h): test
 * crop around the given box, network, decoding, RANSAC-EPnP in the full image. Prints JSON and
 * writes an overlay with the projected 3D box. With --ensemble, the teacher ensemble runs on the
 * same box and gives every box corner its epistemic uncertainty (method.md §3): over the teacher
 * cells of the inference rule, the confidence-weighted mean of the members' mean corner and of the
 * unbiased variance s2 (teacher input pixels^2), u = tanh(s2 / tau^2), the spread in image pixels
 * and how far the student's projected corner lies from the ensemble's. */
#include <cjson/cJSON.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "uakd/distill.h"
#include "uakd/fileio.h"
#include "uakd/plot.h"
#include "uakd/spn_train.h"
#include "uakd/train.h"
#include "wdr_opts.h"

static void usage(FILE *f) {
    fprintf(f, "usage: uakd predict --model M --image IMG --box x,y,w,h (--K fx,fy,cx,cy | --camera FILE) [options]\n\n"
               "Estimates the 6D pose of an object in one image with a model trained by `uakd train`: a test\n"
               "crop of side 1.5 max(w, h) around the box (there is no detector: the box is required),\n"
               "the network, decoding (confidence > 0.1), RANSAC-EPnP (5 px) + refinement with the camera.\n"
               "Prints JSON: obj_id, R (row-major, model -> camera), t (model units), confidence, inliers and\n"
               "the 8 projected 3D box corners (index 4 ix + 2 iy + iz). Exit status 1 when no pose is found.\n\n"
               "options (defaults in brackets):\n"
               "  --model M        model directory (or weights file in one) written by uakd train (required)\n"
               "  --image IMG      PNG or JPEG image (required)\n"
               "  --box x,y,w,h    the object's 2D box in pixels (required)\n"
               "  --K fx,fy,cx,cy  pinhole camera (no distortion)\n"
               "  --camera FILE    a BOP camera.json (fx, fy, cx, cy) instead of --K\n"
               "  --obj ID         which of the model's objects [its first]\n"
               "  --out PNG        overlay with the predicted 3D box (blue) and the box (white); with\n"
               "                   --ensemble also the ensemble's mean corners (orange dots)\n"
               "  --ensemble DIR   a teacher ensemble (uakd ensemble): adds \"keypoints\", per box corner the\n"
               "                   ensemble mean (image px), s2 (teacher input px^2), sd (image px), u and\n"
               "                   the student's distance from the ensemble mean (image px)\n"
               "  --tau X|auto     uncertainty scale in teacher input pixels; auto: tau^2 of the\n"
               "                   ensemble's uncertainty.json (written by uakd uncertainty --tau auto) [1]\n"
               "  --threads N      compute threads, 0 = all cores [0]\n");
}

static uakd_status read_camera(const char *path, uakd_camera *cam) {
    void *data;
    size_t size;
    UAKD_TRY(uakd_read_file(path, 1 << 20, &data, &size));
    cJSON *j = cJSON_ParseWithLength(data, size);
    free(data);
    const char *keys[4] = {"fx", "fy", "cx", "cy"};
    double v[4];
    uakd_status st = cJSON_IsObject(j) ? UAKD_OK : uakd_fail(UAKD_EFORMAT, "%s: expected a JSON object", path);
    for (int k = 0; st == UAKD_OK && k < 4; k++) {
        const cJSON *x = cJSON_GetObjectItemCaseSensitive(j, keys[k]);
        if (!cJSON_IsNumber(x)) st = uakd_fail(UAKD_EFORMAT, "%s: \"%s\" must be a number", path, keys[k]);
        else v[k] = x->valuedouble;
    }
    cJSON_Delete(j);
    if (st == UAKD_OK) *cam = (uakd_camera){v[0], v[1], v[2], v[3], {0}};
    return st;
}

/* One box corner as the teacher ensemble sees it. */
typedef struct corner_unc {
    double mean[2]; /* confidence-weighted ensemble mean, image pixels */
    double s2;      /* confidence-weighted unbiased variance, teacher input pixels^2 */
    double sd_px;   /* sqrt(s2) in image pixels */
    double u;       /* tanh(s2 / tau^2) */
} corner_unc;

/* tau^2 of DIR/uncertainty.json ("tau2_px2"), the file `uakd uncertainty` writes. */
static uakd_status read_ensemble_tau2(const char *ens, double *tau2) {
    char path[4096];
    if (snprintf(path, sizeof path, "%s/uncertainty.json", ens) >= (int)sizeof path)
        return uakd_fail(UAKD_EINVAL, "predict: ensemble path too long: %s", ens);
    void *data;
    size_t size;
    uakd_status st = uakd_read_file(path, 1 << 24, &data, &size);
    if (st != UAKD_OK)
        return uakd_fail(st, "predict: --tau auto reads %s, which `uakd uncertainty --ensemble %s --data ROOT --tau auto` "
                             "writes: run that first, or give --tau a number", path, ens);
    cJSON *j = cJSON_ParseWithLength(data, size);
    free(data);
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(j, "tau2_px2");
    st = cJSON_IsNumber(x) && isfinite(x->valuedouble) && x->valuedouble > 0
             ? UAKD_OK
             : uakd_fail(UAKD_EFORMAT, "%s: \"tau2_px2\" must be a positive number (rerun uakd uncertainty)", path);
    if (st == UAKD_OK) *tau2 = x->valuedouble;
    cJSON_Delete(j);
    return st;
}

/* Runs the ensemble on the test crop of box (its members' input size) and fills out[8]; *cells gets
 * the number of teacher cells (0: no cell passed the inference rule, out is untouched). */
static uakd_status ensemble_corners(const char *ens, double tau2, const uakd_image *im, const uakd_camera *cam,
                                    const double box[4], int obj_id, corner_unc out[8], int *cells) {
    char dir[4096];
    uakd_model_info ti;
    UAKD_TRY(uakd_ensemble_member_dir(ens, 0, dir, sizeof dir));
    UAKD_TRY(uakd_model_info_read(dir, &ti, NULL, 0));
    int cls = 0;
    while (cls < ti.num_objects && ti.obj_ids[cls] != obj_id) cls++;
    if (cls == ti.num_objects) return uakd_fail(UAKD_EINVAL, "predict: the ensemble %s was not trained on object %d", ens, obj_id);
    uakd_teachers *t = NULL;
    UAKD_TRY(uakd_teachers_open(ens, 1, -1, &t));
    const int S = ti.model.input_size;
    float *chw = malloc(sizeof(float) * 3 * (size_t)S * (size_t)S);
    uakd_crop_geometry geo;
    uakd_teacher_preds tp = {0};
    uakd_status st = chw ? uakd_infer_crop_image(im, cam, box, S, chw, &geo) : uakd_fail(UAKD_ENOMEM, "predict: out of memory");
    if (st == UAKD_OK) st = uakd_teachers_predict(t, chw, 1, &cls, tau2, &tp);
    if (st == UAKD_OK) {
        *cells = tp.total;
        const double scale = sqrt(fabs(geo.Ainv[0] * geo.Ainv[4] - geo.Ainv[1] * geo.Ainv[3])); /* image px per crop px */
        for (int k = 0; k < 8 && tp.total > 0; k++) {
            double w = 0, p[2] = {0, 0}, s2 = 0;
            for (int j = 0; j < tp.total; j++) {
                const double c = tp.cells[j].conf;
                w += c, s2 += c * tp.s2[8 * j + k];
                p[0] += c * tp.cells[j].corners[2 * k], p[1] += c * tp.cells[j].corners[2 * k + 1];
            }
            p[0] /= w, p[1] /= w, s2 /= w;
            uakd_affine_apply(geo.Ainv, p, out[k].mean);
            out[k].s2 = s2;
            out[k].sd_px = sqrt(s2) * scale;
            out[k].u = tanh(s2 / tau2);
        }
    }
    uakd_teacher_preds_free(&tp);
    free(chw);
    uakd_teachers_free(t);
    return st;
}

int uakd_cmd_predict(int argc, char **argv) {
    if (uakd_cli_wants_help(argc, argv)) return usage(stdout), 0;
    const char *model = NULL, *image = NULL, *camera = NULL, *out = NULL, *ens = NULL, *tau_arg = NULL;
    double box[4], K[4];
    int have_box = 0, have_K = 0, obj = -1, nobj;
    static const struct option opts[] = {{"model", 1, 0, 'm'}, {"image", 1, 0, 'i'},  {"box", 1, 0, 'x'},
                                         {"K", 1, 0, 'K'},     {"camera", 1, 0, 'c'}, {"obj", 1, 0, 'O'},
                                         {"out", 1, 0, 'o'},   {"threads", 1, 0, 't'}, {"ensemble", 1, 0, 'e'},
                                         {"tau", 1, 0, 'u'},   {0, 0, 0, 0}};
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        int ok = 1;
        switch (c) {
        case 'm': model = optarg; break;
        case 'i': image = optarg; break;
        case 'x': ok = have_box = wdr_parse_numbers("predict", "--box", optarg, 4, box); break;
        case 'K': ok = have_K = wdr_parse_numbers("predict", "--K", optarg, 4, K); break;
        case 'c': camera = optarg; break;
        case 'O': ok = wdr_parse_ints("predict", "--obj", optarg, 1, 0, 63, &obj, &nobj); break;
        case 'o': out = optarg; break;
        case 't': ok = wdr_set_threads("predict", optarg); break;
        case 'e': ens = optarg; break;
        case 'u': tau_arg = optarg; break;
        default:
            fprintf(stderr, "uakd predict: unknown or incomplete option '%s' (see uakd predict --help)\n", argv[optind - 1]);
            return UAKD_EXIT_USAGE;
        }
        if (!ok) return UAKD_EXIT_USAGE;
    }
    if (optind < argc || !model || !image || !have_box || have_K == (camera != NULL)) {
        fprintf(stderr, "uakd predict: --model, --image, --box and one of --K / --camera are required (see --help)\n");
        return UAKD_EXIT_USAGE;
    }
    if (!(box[2] > 0 && box[3] > 0)) {
        fprintf(stderr, "uakd predict: --box needs a positive width and height\n");
        return UAKD_EXIT_USAGE;
    }
    double tau2 = 1;
    const int tau_auto = tau_arg && !strcmp(tau_arg, "auto");
    if (tau_arg && !tau_auto) {
        char *end;
        const double tau = strtod(tau_arg, &end);
        if (*end || !(tau > 0) || !isfinite(tau)) {
            fprintf(stderr, "uakd predict: --tau must be a positive number of pixels or 'auto', not '%s'\n", tau_arg);
            return UAKD_EXIT_USAGE;
        }
        tau2 = tau * tau;
    }
    if (!ens && tau_arg) {
        fprintf(stderr, "uakd predict: --tau needs --ensemble\n");
        return UAKD_EXIT_USAGE;
    }
    uakd_camera cam = {K[0], K[1], K[2], K[3], {0}};
    uakd_status st = camera ? read_camera(camera, &cam) : UAKD_OK;
    uakd_model_info info;
    uakd_wdrnet *m = NULL;
    uakd_image im = {0};
    if (st == UAKD_OK && uakd_spn_model_is(model))
        st = uakd_fail(UAKD_EINVAL,
                       "predict: %s is an SPNv2 (SPEED+) model; predict handles WDRNet models only so far: score SPNv2 "
                       "models with `uakd eval --model %s --data ROOT --keypoints CSV --examples N`, whose example "
                       "grid shows the predicted keypoints",
                       model, model);
    if (st == UAKD_OK) st = uakd_model_open(model, 1, &info, &m);
    int cls = 0;
    if (st == UAKD_OK && obj >= 0) {
        for (cls = 0; cls < info.num_objects && info.obj_ids[cls] != obj; cls++) {}
        if (cls == info.num_objects) st = uakd_fail(UAKD_EINVAL, "predict: object %d is not one of the model's", obj);
    }
    if (st == UAKD_OK) st = uakd_image_read(image, 3, 1, &im);
    uakd_crop_geometry geo;
    uakd_prediction pred = {0};
    double box3d[24];
    if (st == UAKD_OK) {
        uakd_bbox_corners(info.box_min[cls], info.box_max[cls], box3d);
        st = uakd_infer_crop_image(&im, &cam, box, info.model.input_size,
                                   uakd_net_out(uakd_wdrnet_net(m), uakd_wdrnet_input(m)), &geo);
    }
    uakd_infer_config ic;
    uakd_infer_config_default(&ic);
    if (st == UAKD_OK) st = uakd_infer_batch(m, &ic, 1, &cls, (const double(*)[24])box3d, &geo, &cam, &pred);
    corner_unc unc[8];
    int teacher_cells = 0;
    if (st == UAKD_OK && ens && tau_auto) st = read_ensemble_tau2(ens, &tau2);
    if (st == UAKD_OK && ens) st = ensemble_corners(ens, tau2, &im, &cam, box, info.obj_ids[cls], unc, &teacher_cells);
    if (st == UAKD_OK) {
        cJSON *j = cJSON_CreateObject(), *corners = cJSON_CreateArray();
        cJSON_AddNumberToObject(j, "obj_id", info.obj_ids[cls]);
        cJSON_AddBoolToObject(j, "found", pred.ok);
        cJSON_AddNumberToObject(j, "confidence", pred.conf);
        if (pred.ok) {
            cJSON_AddItemToObject(j, "R", cJSON_CreateDoubleArray(pred.pose.R, 9));
            cJSON_AddItemToObject(j, "t", cJSON_CreateDoubleArray(pred.pose.t, 3));
            cJSON_AddNumberToObject(j, "inliers", pred.inliers);
            cJSON_AddNumberToObject(j, "correspondences", 8 * pred.cells);
            cJSON_AddNumberToObject(j, "rmse_px", pred.rmse_px);
            for (int k = 0; k < 8; k++) cJSON_AddItemToArray(corners, cJSON_CreateDoubleArray(pred.corners + 2 * k, 2));
        }
        cJSON_AddItemToObject(j, "corners", corners);
        if (ens) {
            cJSON *e = cJSON_AddObjectToObject(j, "ensemble"), *kps = cJSON_CreateArray();
            cJSON_AddNumberToObject(e, "teacher_cells", teacher_cells);
            cJSON_AddNumberToObject(e, "tau2_px2", tau2);
            for (int k = 0; k < 8 && teacher_cells > 0; k++) {
                cJSON *kp = cJSON_CreateObject();
                cJSON_AddNumberToObject(kp, "corner", k);
                cJSON_AddItemToObject(kp, "mean_px", cJSON_CreateDoubleArray(unc[k].mean, 2));
                cJSON_AddNumberToObject(kp, "s2_input_px2", unc[k].s2);
                cJSON_AddNumberToObject(kp, "sd_px", unc[k].sd_px);
                cJSON_AddNumberToObject(kp, "u", unc[k].u);
                if (pred.ok)
                    cJSON_AddNumberToObject(kp, "student_dist_px", hypot(pred.corners[2 * k] - unc[k].mean[0],
                                                                         pred.corners[2 * k + 1] - unc[k].mean[1]));
                cJSON_AddItemToArray(kps, kp);
            }
            cJSON_AddItemToObject(e, "keypoints", kps);
        }
        char *text = cJSON_Print(j);
        cJSON_Delete(j);
        if (text) printf("%s\n", text);
        free(text);
    }
    if (st == UAKD_OK && out) {
        const uint8_t blue[3] = {30, 100, 255}, white[3] = {255, 255, 255};
        const double b[16] = {box[0], box[1], box[0], box[1], box[0], box[1] + box[3], box[0], box[1] + box[3],
                              box[0] + box[2], box[1], box[0] + box[2], box[1], box[0] + box[2], box[1] + box[3],
                              box[0] + box[2], box[1] + box[3]};
        st = uakd_draw_box(&im, b, white, 1.0);
        if (st == UAKD_OK && pred.ok) st = uakd_draw_box(&im, pred.corners, blue, 2.0);
        for (int k = 0; st == UAKD_OK && k < 8 && teacher_cells > 0; k++) {
            const uint8_t orange[3] = {255, 150, 20};
            st = uakd_draw_points(&im, unc[k].mean, 1, orange, 2.5);
        }
        if (st == UAKD_OK) st = uakd_image_write(out, &im, 95);
    }
    uakd_image_free(&im);
    uakd_wdrnet_free(m);
    if (st != UAKD_OK) return uakd_cli_report("predict", st);
    if (!pred.ok) fprintf(stderr, "uakd predict: no pose (no cell above the confidence threshold, or PnP failed)\n");
    return pred.ok ? UAKD_EXIT_OK : UAKD_EXIT_FAILURE;
}
