/* Files of a trained SPNv2 model (uakd/spn_train.h): config.json {"family": "spnv2", "model":
 * {spnnet config}, "keypoints": [[x, y, z], ...], "train": {...}} next to model.safetensors. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "uakd/fileio.h"
#include "uakd/spn_train.h"
#include "uakd/weights.h"

static int is_dir(const char *p) {
    struct stat s;
    return stat(p, &s) == 0 && S_ISDIR(s.st_mode);
}
static int is_file(const char *p) {
    struct stat s;
    return stat(p, &s) == 0 && S_ISREG(s.st_mode);
}

/* dir of the model: model itself or the directory of a weights file. */
static void model_dir(const char *model, char *dir, size_t cap) {
    snprintf(dir, cap, "%s", model);
    if (is_dir(model)) return;
    char *slash = strrchr(dir, '/');
    if (slash) *slash = 0;
    else snprintf(dir, cap, ".");
}

static uakd_status read_config(const char *model, cJSON **out, char *path, size_t cap) {
    char dir[4096];
    model_dir(model, dir, sizeof dir);
    snprintf(path, cap, "%s/config.json", dir);
    void *data;
    size_t size;
    UAKD_TRY(uakd_read_file(path, (size_t)1 << 24, &data, &size));
    *out = cJSON_ParseWithLength(data, size);
    free(data);
    if (!*out) return uakd_fail(UAKD_EFORMAT, "%s: not valid JSON", path);
    return UAKD_OK;
}

int uakd_spn_model_is(const char *model) {
    char path[4200];
    cJSON *j = NULL;
    if (read_config(model, &j, path, sizeof path) != UAKD_OK) return 0;
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(j, "family");
    const int yes = cJSON_IsString(f) && !strcmp(f->valuestring, "spnv2");
    cJSON_Delete(j);
    return yes;
}

static uakd_status get_num(const cJSON *o, const char *key, const char *path, double lo, double hi, double *v) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsNumber(x)) return uakd_fail(UAKD_EFORMAT, "%s: model: missing number \"%s\"", path, key);
    if (!(x->valuedouble >= lo && x->valuedouble <= hi))
        return uakd_fail(UAKD_EFORMAT, "%s: model: \"%s\" = %g outside [%g, %g]", path, key, x->valuedouble, lo, hi);
    *v = x->valuedouble;
    return UAKD_OK;
}

static uakd_status parse(const cJSON *j, const char *path, uakd_spn_model_info *info) {
    static const char *const known[] = {"family", "model", "keypoints", "train"};
    for (const cJSON *e = j->child; e; e = e->next) {
        int ok = 0;
        for (size_t k = 0; k < sizeof known / sizeof *known; k++) ok |= !strcmp(e->string, known[k]);
        if (!ok) return uakd_fail(UAKD_EFORMAT, "%s: unknown key \"%s\"", path, e->string);
    }
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(j, "model");
    if (!cJSON_IsObject(m)) return uakd_fail(UAKD_EFORMAT, "%s: missing object \"model\"", path);
    static const char *const keys[] = {"width_mult", "depth_mult", "bifpn_width", "bifpn_layers", "head_depth",
                                       "keypoints", "in_w", "in_h", "group_norm", "large_backbone"};
    static const double lo[] = {0.01, 0.01, 1, 1, 1, 1, 128, 128, 0, 0};
    static const double hi[] = {10, 10, 4096, 64, 64, UAKD_SPN_MAX_KEYPOINTS, 8192, 8192, 1, 1};
    double v[10];
    for (int k = 0; k < 10; k++) UAKD_TRY(get_num(m, keys[k], path, lo[k], hi[k], &v[k]));
    uakd_spnnet_config *c = &info->model;
    c->width_mult = v[0], c->depth_mult = v[1];
    c->bifpn_width = (int)v[2], c->bifpn_layers = (int)v[3], c->head_depth = (int)v[4], c->keypoints = (int)v[5];
    c->in_w = (int)v[6], c->in_h = (int)v[7], c->group_norm = (int)v[8], c->large_backbone = (int)v[9];
    const cJSON *kp = cJSON_GetObjectItemCaseSensitive(j, "keypoints");
    if (!cJSON_IsArray(kp) || cJSON_GetArraySize(kp) != c->keypoints)
        return uakd_fail(UAKD_EFORMAT, "%s: \"keypoints\" must be %d [x, y, z] rows", path, c->keypoints);
    info->num_keypoints = c->keypoints;
    for (int k = 0; k < c->keypoints; k++) {
        const cJSON *row = cJSON_GetArrayItem(kp, k);
        if (!cJSON_IsArray(row) || cJSON_GetArraySize(row) != 3)
            return uakd_fail(UAKD_EFORMAT, "%s: keypoint %d must be [x, y, z]", path, k);
        for (int d = 0; d < 3; d++) {
            const cJSON *x = cJSON_GetArrayItem(row, d);
            if (!cJSON_IsNumber(x)) return uakd_fail(UAKD_EFORMAT, "%s: keypoint %d is not numeric", path, k);
            info->keypoints[k][d] = x->valuedouble;
        }
    }
    return UAKD_OK;
}

uakd_status uakd_spn_model_info_read(const char *model, uakd_spn_model_info *info, char *weights, size_t cap) {
    memset(info, 0, sizeof *info);
    char path[4200];
    cJSON *j = NULL;
    UAKD_TRY(read_config(model, &j, path, sizeof path));
    uakd_status st = cJSON_IsObject(j) ? parse(j, path, info) : uakd_fail(UAKD_EFORMAT, "%s: expected an object", path);
    cJSON_Delete(j);
    if (st != UAKD_OK || !weights) return st;
    if (is_file(model)) snprintf(weights, cap, "%s", model);
    else if (snprintf(weights, cap, "%s/model.safetensors", model) >= (int)cap)
        return uakd_fail(UAKD_EINVAL, "spn model: path too long");
    if (!is_file(weights))
        return uakd_fail(UAKD_EIO, "spn model: %s does not exist (training not finished? evaluate a finished run)", weights);
    return UAKD_OK;
}

uakd_status uakd_spn_model_open(const char *model, int max_batch, uakd_spn_model_info *info, uakd_spnnet **out) {
    *out = NULL;
    char weights[4200];
    UAKD_TRY(uakd_spn_model_info_read(model, info, weights, sizeof weights));
    uakd_spnnet *m = NULL;
    UAKD_TRY(uakd_spnnet_new(&info->model, max_batch, 0, &m));
    uakd_status st = uakd_weights_load(m->net, NULL, weights, 0);
    if (st != UAKD_OK) {
        uakd_spnnet_free(m);
        return st;
    }
    *out = m;
    return UAKD_OK;
}
