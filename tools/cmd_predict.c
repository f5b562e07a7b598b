/* `uakd predict`: the pose of an object in one image from a trained WDRNet (uakd/infer.h): test
 * crop around the given box, network, decoding, RANSAC-EPnP in the full image. Prints JSON and
 * writes an overlay with the projected 3D box. */
#include <cjson/cJSON.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "uakd/fileio.h"
#include "uakd/plot.h"
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
               "  --out PNG        overlay with the predicted 3D box (blue) and the box (white)\n"
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

int uakd_cmd_predict(int argc, char **argv) {
    if (uakd_cli_wants_help(argc, argv)) return usage(stdout), 0;
    const char *model = NULL, *image = NULL, *camera = NULL, *out = NULL;
    double box[4], K[4];
    int have_box = 0, have_K = 0, obj = -1, nobj;
    static const struct option opts[] = {{"model", 1, 0, 'm'}, {"image", 1, 0, 'i'},  {"box", 1, 0, 'x'},
                                         {"K", 1, 0, 'K'},     {"camera", 1, 0, 'c'}, {"obj", 1, 0, 'O'},
                                         {"out", 1, 0, 'o'},   {"threads", 1, 0, 't'}, {0, 0, 0, 0}};
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
    uakd_camera cam = {K[0], K[1], K[2], K[3], {0}};
    uakd_status st = camera ? read_camera(camera, &cam) : UAKD_OK;
    uakd_model_info info;
    uakd_wdrnet *m = NULL;
    uakd_image im = {0};
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
        if (st == UAKD_OK) st = uakd_image_write(out, &im, 95);
    }
    uakd_image_free(&im);
    uakd_wdrnet_free(m);
    if (st != UAKD_OK) return uakd_cli_report("predict", st);
    if (!pred.ok) fprintf(stderr, "uakd predict: no pose (no cell above the confidence threshold, or PnP failed)\n");
    return pred.ok ? UAKD_EXIT_OK : UAKD_EXIT_FAILURE;
}
