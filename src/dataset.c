/* Parts shared by the dataset loaders: validated JSON access, keypoint CSV reading, and the
 * train/test splits (by list file, or by ratio: images ordered by h = splitmix64(seed ^ key) with
 * key = (scene << 32) | image, the first round(ratio * images) of them selected). */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dataset_internal.h"
#include "uakd/mesh.h"

uakd_status ds_read_json(const char *path, cJSON **out) {
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return uakd_fail(UAKD_EIO, "%s: cannot open (check the dataset root and split)", path);
    uakd_status st = UAKD_OK;
    char *buf = NULL;
    long size = -1;
    if (fseek(f, 0, SEEK_END) == 0) size = ftell(f);
    if (size < 0 || fseek(f, 0, SEEK_SET) != 0) {
        st = uakd_fail(UAKD_EIO, "%s: cannot determine the file size", path);
    } else if (size > (1L << 30)) {
        st = uakd_fail(UAKD_EFORMAT, "%s: JSON file of %ld bytes exceeds the 1 GiB limit", path, size);
    } else if (!(buf = malloc((size_t)size + 1))) {
        st = uakd_fail(UAKD_ENOMEM, "%s: out of memory reading %ld bytes", path, size);
    } else if (fread(buf, 1, (size_t)size, f) != (size_t)size) {
        st = uakd_fail(UAKD_EIO, "%s: short read", path);
    }
    fclose(f);
    if (st == UAKD_OK) {
        buf[size] = '\0';
        const char *end = NULL;
        *out = cJSON_ParseWithOpts(buf, &end, 1);
        if (!*out) {
            long off = end ? (long)(end - buf) : -1;
            st = uakd_fail(UAKD_EFORMAT, "%s: malformed JSON near byte %ld (fix or re-export the file)", path, off);
        }
    }
    free(buf);
    return st;
}

uakd_status ds_get_number(const cJSON *obj, const char *key, const char *path, const char *ctx, double *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v) return uakd_fail(UAKD_EFORMAT, "%s: %s: missing field \"%s\"", path, ctx, key);
    if (!cJSON_IsNumber(v))
        return uakd_fail(UAKD_EFORMAT, "%s: %s: field \"%s\" must be a number", path, ctx, key);
    if (!isfinite(v->valuedouble))
        return uakd_fail(UAKD_EFORMAT, "%s: %s: field \"%s\" is not finite", path, ctx, key);
    *out = v->valuedouble;
    return UAKD_OK;
}

uakd_status ds_get_int(const cJSON *obj, const char *key, const char *path, const char *ctx, int lo, int hi,
                       int *out) {
    double d;
    UAKD_TRY(ds_get_number(obj, key, path, ctx, &d));
    if (d != floor(d) || d < lo || d > hi)
        return uakd_fail(UAKD_EFORMAT, "%s: %s: field \"%s\" = %g must be an integer in %d..%d", path, ctx, key, d,
                         lo, hi);
    *out = (int)d;
    return UAKD_OK;
}

uakd_status ds_array_numbers(const cJSON *arr, int n, const char *path, const char *ctx, const char *key,
                             double *out) {
    if (!cJSON_IsArray(arr))
        return uakd_fail(UAKD_EFORMAT, "%s: %s: field \"%s\" must be an array of %d numbers", path, ctx, key, n);
    int len = cJSON_GetArraySize(arr);
    if (len != n)
        return uakd_fail(UAKD_EFORMAT, "%s: %s: field \"%s\" has %d elements, expected %d", path, ctx, key, len, n);
    int i = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, arr) {
        if (!cJSON_IsNumber(e) || !isfinite(e->valuedouble))
            return uakd_fail(UAKD_EFORMAT, "%s: %s: field \"%s\" element %d is not a finite number", path, ctx, key, i);
        out[i++] = e->valuedouble;
    }
    return UAKD_OK;
}

uakd_status ds_get_numbers(const cJSON *obj, const char *key, int n, const char *path, const char *ctx,
                           double *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v) return uakd_fail(UAKD_EFORMAT, "%s: %s: missing field \"%s\"", path, ctx, key);
    return ds_array_numbers(v, n, path, ctx, key, out);
}

int ds_parse_id(const char *s, int *out) {
    if (!s || !*s) return 0;
    errno = 0;
    char *end;
    long v = strtol(s, &end, 10);
    if (*end != '\0' || errno || v < 0 || v > INT_MAX || s[0] == '-' || s[0] == '+' || s[0] == ' ') return 0;
    *out = (int)v;
    return 1;
}

char *ds_join(const char *a, const char *b) {
    size_t n = strlen(a) + strlen(b) + 2;
    char *s = malloc(n);
    if (s) snprintf(s, n, "%s/%s", a, b);
    return s;
}

uakd_status ds_push_instance(uakd_dataset *ds, int *capacity, uakd_instance **out) {
    if (ds->num_instances == *capacity) {
        if (*capacity > INT_MAX / 2) return uakd_fail(UAKD_ENOMEM, "dataset: too many instances");
        int cap = *capacity ? 2 * *capacity : 256;
        uakd_instance *p = realloc(ds->instances, (size_t)cap * sizeof *p);
        if (!p) return uakd_fail(UAKD_ENOMEM, "dataset: out of memory for %d instances", cap);
        ds->instances = p;
        *capacity = cap;
    }
    *out = &ds->instances[ds->num_instances++];
    memset(*out, 0, sizeof **out);
    return UAKD_OK;
}

void ds_box_keypoints(uakd_object_info *o) {
    double max[3] = {o->min[0] + o->size[0], o->min[1] + o->size[1], o->min[2] + o->size[2]}, c[24];
    uakd_bbox_corners(o->min, max, c);
    o->num_keypoints = 8;
    memcpy(o->keypoints, c, sizeof c);
}

uakd_status ds_set_rotation(uakd_dataset *ds, const double R[9], uakd_pose *pose, const char *path,
                            const char *ctx) {
    double moved;
    if (uakd_rot_orthonormalize(R, pose->R, &moved) != UAKD_OK)
        return uakd_fail(UAKD_EFORMAT, "%s: %s: rotation is degenerate", path, ctx);
    if (moved > 0.1)
        return uakd_fail(UAKD_EFORMAT, "%s: %s: rotation is far from orthonormal (moved %.3g on projection)", path,
                         ctx, moved);
    if (moved > ds->max_rot_moved) ds->max_rot_moved = moved;
    return UAKD_OK;
}

void uakd_dataset_free(uakd_dataset *ds) {
    if (!ds) return;
    for (int i = 0; i < ds->num_instances; i++) {
        free(ds->instances[i].image_path);
        free(ds->instances[i].mask_path);
    }
    free(ds->instances);
    for (int i = 0; i < ds->num_objects; i++) {
        free(ds->objects[i].sym_discrete);
        free(ds->objects[i].sym_continuous);
    }
    free(ds->objects);
    free(ds);
}

int uakd_dataset_find_object(const uakd_dataset *ds, int obj_id) {
    for (int i = 0; i < ds->num_objects; i++)
        if (ds->objects[i].obj_id == obj_id) return i;
    return -1;
}

uakd_status uakd_keypoints_read_csv(const char *path, double kp[][3], int *num) {
    *num = 0;
    FILE *f = fopen(path, "r");
    if (!f) return uakd_fail(UAKD_EIO, "%s: cannot open the keypoint file", path);
    char line[512];
    int lineno = 0, n = 0;
    uakd_status st = UAKD_OK;
    while (st == UAKD_OK && fgets(line, sizeof line, f)) {
        lineno++;
        if (!strchr(line, '\n') && !feof(f)) {
            st = uakd_fail(UAKD_EFORMAT, "%s:%d: line too long", path, lineno);
            break;
        }
        char *s = line;
        while (*s == ' ' || *s == '\t') s++;
        if (*s == '#' || *s == '\n' || *s == '\r' || *s == '\0') continue;
        if (n == 0 && strncmp(s, "index", 5) == 0) continue; /* header */
        int idx;
        double x, y, z;
        char tail[8];
        if (sscanf(s, "%d , %lf , %lf , %lf %7s", &idx, &x, &y, &z, tail) != 4) {
            st = uakd_fail(UAKD_EFORMAT, "%s:%d: expected \"index,x,y,z\"", path, lineno);
        } else if (idx != n) {
            st = uakd_fail(UAKD_EFORMAT, "%s:%d: keypoint index %d, expected %d (rows must be in order)", path, lineno,
                           idx, n);
        } else if (n >= UAKD_MAX_KEYPOINTS) {
            st = uakd_fail(UAKD_EFORMAT, "%s:%d: more than %d keypoints", path, lineno, UAKD_MAX_KEYPOINTS);
        } else if (!isfinite(x) || !isfinite(y) || !isfinite(z)) {
            st = uakd_fail(UAKD_EFORMAT, "%s:%d: non-finite coordinate", path, lineno);
        } else {
            kp[n][0] = x;
            kp[n][1] = y;
            kp[n][2] = z;
            n++;
        }
    }
    fclose(f);
    if (st == UAKD_OK && n == 0) st = uakd_fail(UAKD_EFORMAT, "%s: no keypoints", path);
    if (st == UAKD_OK) *num = n;
    return st;
}

/* ---- splits ---- */

static uint64_t image_key(const uakd_instance *in) {
    return ((uint64_t)(uint32_t)in->scene_id << 32) | (uint32_t)in->image_id;
}

static uakd_status collect(const uakd_dataset *ds, const unsigned char *keep, int want, int **indices, int *num) {
    int n = 0;
    for (int i = 0; i < ds->num_instances; i++) n += keep[i] == want;
    int *p = malloc(((size_t)n + 1) * sizeof *p);
    if (!p) return uakd_fail(UAKD_ENOMEM, "split: out of memory");
    n = 0;
    for (int i = 0; i < ds->num_instances; i++)
        if (keep[i] == want) p[n++] = i;
    *indices = p;
    *num = n;
    return UAKD_OK;
}

uakd_status uakd_split_from_list(const uakd_dataset *ds, const char *path, int **indices, int *num) {
    *indices = NULL;
    *num = 0;
    FILE *f = fopen(path, "r");
    if (!f) return uakd_fail(UAKD_EIO, "%s: cannot open the split list", path);
    unsigned char *keep = calloc((size_t)ds->num_instances + 1, 1);
    if (!keep) {
        fclose(f);
        return uakd_fail(UAKD_ENOMEM, "%s: out of memory", path);
    }
    int single_scene = 1;
    for (int i = 1; i < ds->num_instances; i++) single_scene &= ds->instances[i].scene_id == ds->instances[0].scene_id;
    char line[512];
    int lineno = 0;
    uakd_status st = UAKD_OK;
    while (st == UAKD_OK && fgets(line, sizeof line, f)) {
        lineno++;
        char *s = line;
        while (*s == ' ' || *s == '\t') s++;
        if (*s == '#' || *s == '\n' || *s == '\r' || *s == '\0') continue;
        int a, b, consumed = 0;
        char sep[2];
        long scene, im;
        if (sscanf(s, "%d%1[ \t/]%d %n", &a, sep, &b, &consumed) == 3 && s[consumed] == '\0') {
            scene = a;
            im = b;
        } else if (sscanf(s, "%d %n", &a, &consumed) == 1 && s[consumed] == '\0') {
            if (!single_scene || ds->num_instances == 0) {
                st = uakd_fail(UAKD_EFORMAT, "%s:%d: a bare image id needs a single-scene dataset; write \"scene_id im_id\"",
                               path, lineno);
                break;
            }
            scene = ds->instances[0].scene_id;
            im = a;
        } else {
            st = uakd_fail(UAKD_EFORMAT, "%s:%d: expected \"scene_id im_id\", \"scene_id/im_id\" or \"im_id\"", path,
                           lineno);
            break;
        }
        int found = 0;
        for (int i = 0; i < ds->num_instances; i++)
            if (ds->instances[i].scene_id == scene && ds->instances[i].image_id == im) keep[i] = found = 1;
        if (!found)
            st = uakd_fail(UAKD_EINVAL, "%s:%d: image %ld of scene %ld is not in the dataset (missing file or filtered out)",
                           path, lineno, im, scene);
    }
    fclose(f);
    if (st == UAKD_OK) st = collect(ds, keep, 1, indices, num);
    free(keep);
    return st;
}

typedef struct {
    uint64_t hash, key;
} keyed_image;

static int cmp_keyed(const void *a, const void *b) {
    const keyed_image *x = a, *y = b;
    if (x->hash != y->hash) return x->hash < y->hash ? -1 : 1;
    return x->key < y->key ? -1 : x->key > y->key;
}

static uint64_t mix64(uint64_t z) {
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

uakd_status uakd_split_by_ratio(const uakd_dataset *ds, double ratio, uint64_t seed, int **selected,
                                int *num_selected, int **rest, int *num_rest) {
    if (selected) *selected = NULL;
    if (rest) *rest = NULL;
    if (!(ratio >= 0.0 && ratio <= 1.0)) return uakd_fail(UAKD_EINVAL, "split ratio %g must be in [0, 1]", ratio);
    int n = ds->num_instances;
    keyed_image *imgs = malloc(((size_t)n + 1) * sizeof *imgs);
    unsigned char *keep = calloc((size_t)n + 1, 1);
    uakd_status st = UAKD_OK;
    if (!imgs || !keep) {
        st = uakd_fail(UAKD_ENOMEM, "split: out of memory");
        goto done;
    }
    /* distinct images, ordered by hash; then the selected keys sorted for binary search */
    for (int i = 0; i < n; i++) imgs[i].key = image_key(&ds->instances[i]), imgs[i].hash = 0;
    qsort(imgs, (size_t)n, sizeof *imgs, cmp_keyed);
    int m = 0;
    for (int i = 0; i < n; i++)
        if (m == 0 || imgs[m - 1].key != imgs[i].key) imgs[m++].key = imgs[i].key;
    for (int j = 0; j < m; j++) imgs[j].hash = mix64(seed ^ mix64(imgs[j].key));
    qsort(imgs, (size_t)m, sizeof *imgs, cmp_keyed);
    int take = (int)floor(ratio * m + 0.5);
    for (int j = 0; j < take; j++) imgs[j].hash = 0;
    qsort(imgs, (size_t)take, sizeof *imgs, cmp_keyed);
    for (int i = 0; i < n; i++) {
        keyed_image probe = {0, image_key(&ds->instances[i])};
        keep[i] = bsearch(&probe, imgs, (size_t)take, sizeof *imgs, cmp_keyed) != NULL;
    }
    if (selected) st = collect(ds, keep, 1, selected, num_selected);
    if (st == UAKD_OK && rest) st = collect(ds, keep, 0, rest, num_rest);
    if (st != UAKD_OK && selected) {
        free(*selected);
        *selected = NULL;
    }
done:
    free(imgs);
    free(keep);
    return st;
}
