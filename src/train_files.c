/* Files of a training run (uakd/train.h): config.json (what model was trained on what), the
 * truncation of train_log.jsonl on resume, and opening a trained model for inference from its
 * directory (config.json -> uakd_wdrnet_config, then the weights). */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "train_internal.h"
#include "uakd/fileio.h"
#include "uakd/json.h"
#include "uakd/safetensors.h"
#include "uakd/weights.h"

#define CONFIG_FORMAT "uakd-wdrnet-config"

static cJSON *vec3(const double *v) { return cJSON_CreateDoubleArray(v, 3); }

/* The "train" object of config.json: the settings that shape the training run. */
static cJSON *train_json(const uakd_train_config *c) {
    cJSON *tr = cJSON_CreateObject();
    if (!tr) return NULL;
    cJSON_AddStringToObject(tr, "data_root", c->data_root);
    cJSON_AddStringToObject(tr, "train_split", c->train_split);
    cJSON_AddStringToObject(tr, "train_list", c->train_list ? c->train_list : "");
    cJSON_AddStringToObject(tr, "val_split", c->val_split ? c->val_split : "");
    cJSON_AddStringToObject(tr, "val_list", c->val_list ? c->val_list : "");
    cJSON_AddNumberToObject(tr, "batch", c->batch);
    cJSON_AddNumberToObject(tr, "steps", (double)c->steps);
    cJSON_AddNumberToObject(tr, "lr", c->lr);
    cJSON_AddNumberToObject(tr, "weight_decay", c->weight_decay);
    cJSON_AddNumberToObject(tr, "warmup_frac", c->warmup_frac);
    cJSON_AddNumberToObject(tr, "clip", c->clip);
    cJSON_AddNumberToObject(tr, "seed", (double)c->seed);
    cJSON_AddNumberToObject(tr, "min_visib_fract", c->min_visib_fract);
    cJSON_AddStringToObject(tr, "init_weights", c->init_weights ? c->init_weights : "");
    return tr;
}

uakd_status uakd_train_write_config(const char *path, const uakd_train_config *c, const uakd_wdrnet *m,
                                    const uakd_dataset *ds) {
    const uakd_wdrnet_config *mc = uakd_wdrnet_config_of(m);
    cJSON *j = cJSON_CreateObject(), *objs = cJSON_CreateArray(), *tr = train_json(c);
    if (!j || !objs || !tr) {
        cJSON_Delete(j), cJSON_Delete(objs), cJSON_Delete(tr);
        return uakd_fail(UAKD_ENOMEM, "train: out of memory");
    }
    cJSON_AddStringToObject(j, "format", CONFIG_FORMAT);
    if (c->cfg_path) cJSON_AddStringToObject(j, "cfg_path", c->cfg_path);
    else cJSON_AddStringToObject(j, "variant", mc->variant);
    cJSON_AddNumberToObject(j, "width", mc->width);
    cJSON_AddNumberToObject(j, "tower_convs", mc->tower_convs);
    cJSON_AddNumberToObject(j, "input_size", mc->input_size);
    for (int k = 0; k < c->num_obj_ids; k++) {
        const uakd_object_info *o = &ds->objects[uakd_dataset_find_object(ds, c->obj_ids[k])];
        const double mx[3] = {o->min[0] + o->size[0], o->min[1] + o->size[1], o->min[2] + o->size[2]};
        cJSON *e = cJSON_CreateObject();
        cJSON_AddItemToArray(objs, e);
        cJSON_AddNumberToObject(e, "obj_id", o->obj_id);
        cJSON_AddItemToObject(e, "box_min", vec3(o->min));
        cJSON_AddItemToObject(e, "box_max", vec3(mx));
        cJSON_AddNumberToObject(e, "diameter", o->diameter);
    }
    cJSON_AddItemToObject(j, "objects", objs);
    cJSON_AddItemToObject(j, "train", tr);
    return uakd_json_write_atomic(path, j);
}

uakd_status uakd_train_log_truncate(const char *path, int64_t step) {
    void *data;
    size_t size;
    FILE *f = fopen(path, "rb");
    if (!f) return UAKD_OK;
    fclose(f);
    UAKD_TRY(uakd_read_file(path, (size_t)1 << 30, &data, &size));
    char *text = data, *out = malloc(size + 1);
    if (!out) {
        free(data);
        return uakd_fail(UAKD_ENOMEM, "train: out of memory");
    }
    size_t n = 0;
    for (size_t i = 0; i < size;) {
        size_t e = i;
        while (e < size && text[e] != '\n') e++;
        const char *key = "{\"step\": ";
        const size_t kl = strlen(key);
        if (e - i > kl && !memcmp(text + i, key, kl) && strtoll(text + i + kl, NULL, 10) <= step) {
            memcpy(out + n, text + i, e - i);
            n += e - i;
            out[n++] = '\n';
        }
        i = e + 1;
    }
    uakd_status st = uakd_write_file_atomic(path, out, n);
    free(out), free(data);
    return st;
}

/* ---- reading config.json ---- */

static int read_vec3(const cJSON *a, double *v) {
    if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) != 3) return 0;
    for (int i = 0; i < 3; i++) {
        const cJSON *x = cJSON_GetArrayItem(a, i);
        if (!cJSON_IsNumber(x)) return 0;
        v[i] = x->valuedouble;
    }
    return 1;
}

static int read_int(const cJSON *j, const char *key, int lo, int hi, int *out) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(j, key);
    if (!cJSON_IsNumber(x) || x->valuedouble != (int)x->valuedouble || x->valuedouble < lo || x->valuedouble > hi) return 0;
    *out = (int)x->valuedouble;
    return 1;
}

static uakd_status parse_config(const cJSON *j, const char *path, uakd_model_info *info) {
    static const char *const known[] = {"format", "variant", "cfg_path", "width", "tower_convs", "input_size",
                                        "objects", "train"};
    if (!cJSON_IsObject(j)) return uakd_fail(UAKD_EFORMAT, "%s: expected a JSON object", path);
    for (const cJSON *e = j->child; e; e = e->next) {
        size_t k = 0;
        while (k < sizeof known / sizeof *known && strcmp(known[k], e->string)) k++;
        if (k == sizeof known / sizeof *known) return uakd_fail(UAKD_EFORMAT, "%s: unknown key \"%s\"", path, e->string);
    }
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(j, "format");
    if (!cJSON_IsString(fmt) || strcmp(fmt->valuestring, CONFIG_FORMAT))
        return uakd_fail(UAKD_EFORMAT, "%s: \"format\" must be \"%s\" (a config written by uakd train)", path,
                         CONFIG_FORMAT);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, "variant"), *cp = cJSON_GetObjectItemCaseSensitive(j, "cfg_path");
    if (cJSON_IsString(v) == cJSON_IsString(cp))
        return uakd_fail(UAKD_EFORMAT, "%s: exactly one of \"variant\" and \"cfg_path\" (strings) is needed", path);
    if (v && snprintf(info->variant, sizeof info->variant, "%s", v->valuestring) >= (int)sizeof info->variant)
        return uakd_fail(UAKD_EFORMAT, "%s: \"variant\" too long", path);
    if (cp && snprintf(info->cfg_path, sizeof info->cfg_path, "%s", cp->valuestring) >= (int)sizeof info->cfg_path)
        return uakd_fail(UAKD_EFORMAT, "%s: \"cfg_path\" too long", path);
    uakd_wdrnet_config_default(&info->model, v ? info->variant : NULL);
    info->model.cfg_path = cp ? info->cfg_path : NULL;
    if (!read_int(j, "width", 1, 4096, &info->model.width) || !read_int(j, "tower_convs", 1, 8, &info->model.tower_convs) ||
        !read_int(j, "input_size", 16, 8192, &info->model.input_size))
        return uakd_fail(UAKD_EFORMAT, "%s: \"width\" (1..4096), \"tower_convs\" (1..8) and \"input_size\" (16..8192) must "
                                       "be integers in range",
                         path);
    const cJSON *objs = cJSON_GetObjectItemCaseSensitive(j, "objects");
    const int n = cJSON_IsArray(objs) ? cJSON_GetArraySize(objs) : 0;
    if (n < 1 || n > UAKD_TRAIN_MAX_OBJECTS)
        return uakd_fail(UAKD_EFORMAT, "%s: \"objects\" must list 1..%d objects", path, UAKD_TRAIN_MAX_OBJECTS);
    info->num_objects = n;
    info->model.classes = n;
    for (int k = 0; k < n; k++) {
        const cJSON *e = cJSON_GetArrayItem(objs, k), *d = cJSON_GetObjectItemCaseSensitive(e, "diameter");
        if (!read_int(e, "obj_id", 0, UAKD_EVAL_MAX_OBJECTS - 1, &info->obj_ids[k]) ||
            !read_vec3(cJSON_GetObjectItemCaseSensitive(e, "box_min"), info->box_min[k]) ||
            !read_vec3(cJSON_GetObjectItemCaseSensitive(e, "box_max"), info->box_max[k]) || !cJSON_IsNumber(d) ||
            !(d->valuedouble > 0))
            return uakd_fail(UAKD_EFORMAT, "%s: objects[%d] needs obj_id (0..%d), box_min, box_max (3 numbers) and a "
                                           "positive diameter",
                             path, k, UAKD_EVAL_MAX_OBJECTS - 1);
        info->diameter[k] = d->valuedouble;
    }
    return UAKD_OK;
}

static int is_dir(const char *p) {
    struct stat s;
    return stat(p, &s) == 0 && S_ISDIR(s.st_mode);
}

static int exists(const char *p) {
    struct stat s;
    return stat(p, &s) == 0;
}

uakd_status uakd_train_config_compare(const char *dir, const uakd_train_config *c, char *why, size_t cap) {
    char path[4200];
    if (snprintf(path, sizeof path, "%s/config.json", dir) >= (int)sizeof path)
        return uakd_fail(UAKD_EINVAL, "train: path too long: %s", dir);
    void *data;
    size_t size;
    UAKD_TRY(uakd_read_file(path, 1 << 24, &data, &size));
    cJSON *j = cJSON_ParseWithLength(data, size), *want = train_json(c), *model = cJSON_CreateObject();
    free(data);
    const cJSON *have = cJSON_GetObjectItemCaseSensitive(j, "train");
    uakd_status st = !want || !model ? uakd_fail(UAKD_ENOMEM, "train: out of memory")
                     : cJSON_IsObject(have) ? UAKD_OK
                                            : uakd_fail(UAKD_EFORMAT, "%s: no \"train\" object (not written by uakd train?)", path);
    /* the model settings c fixes (0 / NULL: the variant's default, whatever was recorded) */
    if (st == UAKD_OK && c->width > 0) cJSON_AddNumberToObject(model, "width", c->width);
    if (st == UAKD_OK && c->tower_convs > 0) cJSON_AddNumberToObject(model, "tower_convs", c->tower_convs);
    if (st == UAKD_OK && c->input_size > 0) cJSON_AddNumberToObject(model, "input_size", c->input_size);
    if (st == UAKD_OK && !c->cfg_path && c->variant) cJSON_AddStringToObject(model, "variant", c->variant);
    if (st == UAKD_OK) uakd_json_first_difference(want, have, why, cap);
    if (st == UAKD_OK && !why[0]) uakd_json_first_difference(model, j, why, cap);
    cJSON_Delete(model);
    cJSON_Delete(want);
    cJSON_Delete(j);
    return st;
}

uakd_status uakd_model_info_read(const char *model, uakd_model_info *info, char *weights, size_t cap) {
    memset(info, 0, sizeof *info);
    char dir[4096], path[4200];
    if (is_dir(model)) snprintf(dir, sizeof dir, "%s", model);
    else {
        snprintf(dir, sizeof dir, "%s", model);
        char *slash = strrchr(dir, '/');
        if (slash) *slash = 0;
        else snprintf(dir, sizeof dir, ".");
    }
    snprintf(path, sizeof path, "%s/config.json", dir);
    void *data;
    size_t size;
    uakd_status st = uakd_read_file(path, (size_t)1 << 20, &data, &size);
    if (st != UAKD_OK) return uakd_fail_context(st, "model %s (a directory written by uakd train, with config.json): ", model);
    cJSON *j = cJSON_ParseWithLength(data, size);
    free(data);
    st = j ? parse_config(j, path, info) : uakd_fail(UAKD_EFORMAT, "%s: not valid JSON", path);
    cJSON_Delete(j);
    if (st != UAKD_OK || !weights) return st;
    if (!is_dir(model)) snprintf(weights, cap, "%s", model);
    else {
        snprintf(weights, cap, "%s/model.safetensors", dir);
        if (!exists(weights)) snprintf(weights, cap, "%s/checkpoint.safetensors", dir);
        if (!exists(weights))
            return uakd_fail(UAKD_EIO, "model %s: neither model.safetensors nor checkpoint.safetensors is there", model);
    }
    return UAKD_OK;
}

uakd_status uakd_model_open(const char *model, int max_batch, uakd_model_info *info, uakd_wdrnet **out) {
    *out = NULL;
    char weights[4096];
    UAKD_TRY(uakd_model_info_read(model, info, weights, sizeof weights));
    info->model.max_batch = max_batch;
    info->model.training = 0;
    uakd_wdrnet *m;
    UAKD_TRY(uakd_wdrnet_new(&info->model, &m));
    uakd_safetensors *sf;
    uakd_status st = uakd_safetensors_open(weights, &sf);
    if (st == UAKD_OK) {
        /* a weights file or a checkpoint (whose optimizer state is skipped) */
        const char *fmt = uakd_safetensors_meta(sf, "format");
        const int ckpt = fmt && !strcmp(fmt, UAKD_CHECKPOINT_FORMAT);
        if (!ckpt) st = uakd_safetensors_expect_format(sf, UAKD_WEIGHTS_FORMAT, UAKD_WEIGHTS_VERSION, NULL);
        if (st == UAKD_OK) st = uakd_wdrnet_check_metadata(m, sf);
        if (st == UAKD_OK) st = uakd_weights_load_from(uakd_wdrnet_net(m), sf, ckpt ? UAKD_WEIGHTS_ALLOW_OPTIM : 0, NULL);
        if (st != UAKD_OK) uakd_fail_context(st, "%s: ", weights);
        uakd_safetensors_free(sf);
    }
    if (st != UAKD_OK) {
        uakd_wdrnet_free(m);
        return st;
    }
    *out = m;
    return UAKD_OK;
}
