/* BOP dataset loader. For every scene directory of a split it joins scene_gt.json (pose
 * x_cam = R X + t, mm), scene_gt_info.json (boxes, visibility) and scene_camera.json (cam_K) by
 * image id and gt index, keeps the annotations whose rgb image exists, projects each R onto SO(3)
 * (nearest rotation in the Frobenius norm) and records how far it moved. Object data come from
 * models/models_info.json. */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "dataset_internal.h"

static int file_exists(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

static uakd_status read_camera(uakd_dataset *ds, const char *root) {
    char *path = ds_join(root, "camera.json");
    if (!path) return uakd_fail(UAKD_ENOMEM, "out of memory");
    cJSON *j;
    uakd_status st = ds_read_json(path, &j);
    if (st == UAKD_OK) {
        if (!cJSON_IsObject(j)) st = uakd_fail(UAKD_EFORMAT, "%s: expected a JSON object", path);
        if (st == UAKD_OK) st = ds_get_int(j, "width", path, "camera", 1, 65536, &ds->width);
        if (st == UAKD_OK) st = ds_get_int(j, "height", path, "camera", 1, 65536, &ds->height);
        cJSON_Delete(j);
    }
    free(path);
    return st;
}

static uakd_status read_symmetries(uakd_object_info *o, const cJSON *e, const char *path, const char *ctx) {
    const cJSON *sd = cJSON_GetObjectItemCaseSensitive(e, "symmetries_discrete");
    if (sd) {
        if (!cJSON_IsArray(sd))
            return uakd_fail(UAKD_EFORMAT, "%s: %s: field \"symmetries_discrete\" must be an array of 16-number arrays",
                             path, ctx);
        int n = cJSON_GetArraySize(sd);
        o->sym_discrete = malloc(((size_t)n + 1) * 16 * sizeof(double));
        if (!o->sym_discrete) return uakd_fail(UAKD_ENOMEM, "%s: out of memory", path);
        const cJSON *m;
        cJSON_ArrayForEach(m, sd) {
            double *S = o->sym_discrete + 16 * o->num_sym_discrete;
            UAKD_TRY(ds_array_numbers(m, 16, path, ctx, "symmetries_discrete", S));
            if (fabs(S[12]) > 1e-6 || fabs(S[13]) > 1e-6 || fabs(S[14]) > 1e-6 || fabs(S[15] - 1) > 1e-6)
                return uakd_fail(UAKD_EFORMAT, "%s: %s: symmetries_discrete %d: last row must be 0 0 0 1", path, ctx,
                                 o->num_sym_discrete);
            o->num_sym_discrete++;
        }
    }
    const cJSON *sc = cJSON_GetObjectItemCaseSensitive(e, "symmetries_continuous");
    if (sc) {
        if (!cJSON_IsArray(sc))
            return uakd_fail(UAKD_EFORMAT, "%s: %s: field \"symmetries_continuous\" must be an array of {axis, offset}",
                             path, ctx);
        int n = cJSON_GetArraySize(sc);
        o->sym_continuous = malloc(((size_t)n + 1) * 6 * sizeof(double));
        if (!o->sym_continuous) return uakd_fail(UAKD_ENOMEM, "%s: out of memory", path);
        const cJSON *m;
        cJSON_ArrayForEach(m, sc) {
            double *S = o->sym_continuous + 6 * o->num_sym_continuous;
            if (!cJSON_IsObject(m))
                return uakd_fail(UAKD_EFORMAT, "%s: %s: symmetries_continuous entries must be objects", path, ctx);
            UAKD_TRY(ds_get_numbers(m, "axis", 3, path, ctx, S));
            UAKD_TRY(ds_get_numbers(m, "offset", 3, path, ctx, S + 3));
            if (S[0] == 0 && S[1] == 0 && S[2] == 0)
                return uakd_fail(UAKD_EFORMAT, "%s: %s: symmetries_continuous axis is zero", path, ctx);
            o->num_sym_continuous++;
        }
    }
    return UAKD_OK;
}

static uakd_status read_models_info(uakd_dataset *ds, const char *root) {
    char *path = ds_join(root, "models/models_info.json");
    if (!path) return uakd_fail(UAKD_ENOMEM, "out of memory");
    cJSON *j;
    uakd_status st = ds_read_json(path, &j);
    if (st != UAKD_OK) {
        free(path);
        return st;
    }
    if (!cJSON_IsObject(j) || cJSON_GetArraySize(j) == 0) {
        st = uakd_fail(UAKD_EFORMAT, "%s: expected a non-empty object of obj_id -> info", path);
    } else {
        int n = cJSON_GetArraySize(j);
        ds->objects = calloc((size_t)n, sizeof *ds->objects);
        if (!ds->objects) st = uakd_fail(UAKD_ENOMEM, "%s: out of memory", path);
        const cJSON *e;
        cJSON_ArrayForEach(e, j) {
            if (st != UAKD_OK) break;
            char ctx[96];
            snprintf(ctx, sizeof ctx, "object \"%.40s\"", e->string);
            uakd_object_info *o = &ds->objects[ds->num_objects++];
            if (!ds_parse_id(e->string, &o->obj_id)) {
                st = uakd_fail(UAKD_EFORMAT, "%s: key \"%s\" is not an object id (a non-negative integer)", path,
                               e->string);
                break;
            }
            if (uakd_dataset_find_object(ds, o->obj_id) != ds->num_objects - 1) {
                st = uakd_fail(UAKD_EFORMAT, "%s: object id %d appears twice", path, o->obj_id);
                break;
            }
            if (!cJSON_IsObject(e)) {
                st = uakd_fail(UAKD_EFORMAT, "%s: %s: expected an object", path, ctx);
                break;
            }
            static const char *keys[6] = {"min_x", "min_y", "min_z", "size_x", "size_y", "size_z"};
            st = ds_get_number(e, "diameter", path, ctx, &o->diameter);
            for (int a = 0; a < 3 && st == UAKD_OK; a++) st = ds_get_number(e, keys[a], path, ctx, &o->min[a]);
            for (int a = 0; a < 3 && st == UAKD_OK; a++) st = ds_get_number(e, keys[3 + a], path, ctx, &o->size[a]);
            if (st == UAKD_OK && (o->diameter <= 0 || o->size[0] < 0 || o->size[1] < 0 || o->size[2] < 0))
                st = uakd_fail(UAKD_EFORMAT, "%s: %s: diameter and sizes must be positive", path, ctx);
            if (st == UAKD_OK) st = read_symmetries(o, e, path, ctx);
            ds_box_keypoints(o);
        }
    }
    cJSON_Delete(j);
    free(path);
    return st;
}

static int cmp_int(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

/* Scene ids (6-digit directory names) under dir, sorted. */
static uakd_status list_scenes(const char *dir, int **ids, int *n) {
    *ids = NULL;
    *n = 0;
    DIR *d = opendir(dir);
    if (!d) return uakd_fail(UAKD_EIO, "%s: cannot open the split directory (check root and split name)", dir);
    int cap = 0;
    struct dirent *e;
    uakd_status st = UAKD_OK;
    while ((e = readdir(d))) {
        int id;
        if (strlen(e->d_name) != 6 || !ds_parse_id(e->d_name, &id)) continue;
        if (*n == cap) {
            cap = cap ? 2 * cap : 16;
            int *p = realloc(*ids, (size_t)cap * sizeof *p);
            if (!p) {
                st = uakd_fail(UAKD_ENOMEM, "%s: out of memory", dir);
                break;
            }
            *ids = p;
        }
        (*ids)[(*n)++] = id;
    }
    closedir(d);
    if (st == UAKD_OK && *n == 0) st = uakd_fail(UAKD_EFORMAT, "%s: no scene directories (6-digit names)", dir);
    if (st != UAKD_OK) {
        free(*ids);
        *ids = NULL;
        *n = 0;
        return st;
    }
    qsort(*ids, (size_t)*n, sizeof **ids, cmp_int);
    return UAKD_OK;
}

static int wanted(const uakd_bop_options *opt, int obj_id) {
    if (!opt || !opt->obj_ids) return 1;
    for (int i = 0; i < opt->num_obj_ids; i++)
        if (opt->obj_ids[i] == obj_id) return 1;
    return 0;
}

typedef struct {
    const char *scene_dir;
    const char *gt_path, *info_path, *cam_path;
    cJSON *gt, *info, *cam;
} scene_files;

/* Reads the annotations of one image of a scene (validates all of them, keeps the selected ones). */
static uakd_status read_image(uakd_dataset *ds, int *cap, const scene_files *sf, int scene_id, int im_id,
                              const uakd_bop_options *opt) {
    char key[16], ctx[96];
    snprintf(key, sizeof key, "%d", im_id);
    const cJSON *gts = cJSON_GetObjectItemCaseSensitive(sf->gt, key);
    const cJSON *infos = cJSON_GetObjectItemCaseSensitive(sf->info, key);
    const cJSON *cam = cJSON_GetObjectItemCaseSensitive(sf->cam, key);
    snprintf(ctx, sizeof ctx, "image %d", im_id);
    if (!cJSON_IsArray(gts)) return uakd_fail(UAKD_EFORMAT, "%s: %s: expected an array of annotations", sf->gt_path, ctx);
    if (!infos) return uakd_fail(UAKD_EFORMAT, "%s: %s: missing (scene_gt.json has it)", sf->info_path, ctx);
    if (!cJSON_IsArray(infos)) return uakd_fail(UAKD_EFORMAT, "%s: %s: expected an array", sf->info_path, ctx);
    if (cJSON_GetArraySize(infos) != cJSON_GetArraySize(gts))
        return uakd_fail(UAKD_EFORMAT, "%s: %s: %d entries but scene_gt.json has %d", sf->info_path, ctx,
                         cJSON_GetArraySize(infos), cJSON_GetArraySize(gts));
    if (!cam) return uakd_fail(UAKD_EFORMAT, "%s: %s: missing (scene_gt.json has it)", sf->cam_path, ctx);
    if (!cJSON_IsObject(cam)) return uakd_fail(UAKD_EFORMAT, "%s: %s: expected an object", sf->cam_path, ctx);
    double K[9];
    UAKD_TRY(ds_get_numbers(cam, "cam_K", 9, sf->cam_path, ctx, K));
    if (K[0] <= 0 || K[4] <= 0 || K[1] != 0 || K[3] != 0 || K[6] != 0 || K[7] != 0 || K[8] != 1)
        return uakd_fail(UAKD_EFORMAT, "%s: %s: cam_K must be [fx 0 cx 0 fy cy 0 0 1] with fx, fy > 0", sf->cam_path, ctx);

    char rel[64], *img = NULL;
    snprintf(rel, sizeof rel, "rgb/%06d.png", im_id);
    img = ds_join(sf->scene_dir, rel);
    if (!img) return uakd_fail(UAKD_ENOMEM, "%s: out of memory", sf->scene_dir);
    if (!file_exists(img)) {
        snprintf(rel, sizeof rel, "rgb/%06d.jpg", im_id);
        free(img);
        img = ds_join(sf->scene_dir, rel);
        if (!img) return uakd_fail(UAKD_ENOMEM, "%s: out of memory", sf->scene_dir);
        if (!file_exists(img)) {
            free(img);
            img = NULL;
            ds->num_missing_images++;
        }
    }
    uakd_status st = UAKD_OK;
    int g = 0;
    const cJSON *gt = gts->child, *info = infos->child;
    for (; gt && info && st == UAKD_OK; gt = gt->next, info = info->next, g++) {
        snprintf(ctx, sizeof ctx, "image %d, annotation %d", im_id, g);
        if (!cJSON_IsObject(gt) || !cJSON_IsObject(info)) {
            st = uakd_fail(UAKD_EFORMAT, "%s: %s: expected an object", cJSON_IsObject(gt) ? sf->info_path : sf->gt_path, ctx);
            break;
        }
        int obj_id;
        double R[9], t[3], bo[4], bv[4], vf;
        st = ds_get_int(gt, "obj_id", sf->gt_path, ctx, 0, 1 << 30, &obj_id);
        if (st == UAKD_OK) st = ds_get_numbers(gt, "cam_R_m2c", 9, sf->gt_path, ctx, R);
        if (st == UAKD_OK) st = ds_get_numbers(gt, "cam_t_m2c", 3, sf->gt_path, ctx, t);
        if (st == UAKD_OK) st = ds_get_numbers(info, "bbox_obj", 4, sf->info_path, ctx, bo);
        if (st == UAKD_OK) st = ds_get_numbers(info, "bbox_visib", 4, sf->info_path, ctx, bv);
        if (st == UAKD_OK) st = ds_get_number(info, "visib_fract", sf->info_path, ctx, &vf);
        if (st != UAKD_OK) break;
        if (vf < 0 || vf > 1) {
            st = uakd_fail(UAKD_EFORMAT, "%s: %s: visib_fract %g outside [0, 1]", sf->info_path, ctx, vf);
            break;
        }
        int obj = uakd_dataset_find_object(ds, obj_id);
        if (obj < 0) {
            st = uakd_fail(UAKD_EFORMAT, "%s: %s: obj_id %d is not in models/models_info.json", sf->gt_path, ctx, obj_id);
            break;
        }
        uakd_pose pose;
        memcpy(pose.t, t, sizeof t);
        st = ds_set_rotation(ds, R, &pose, sf->gt_path, ctx);
        if (st != UAKD_OK || !img || !wanted(opt, obj_id) || (opt && vf < opt->min_visib_fract)) continue;
        uakd_instance *in;
        st = ds_push_instance(ds, cap, &in);
        if (st != UAKD_OK) break;
        in->scene_id = scene_id;
        in->image_id = im_id;
        in->gt_index = g;
        in->obj_id = obj_id;
        in->object = obj;
        memcpy(in->K, K, sizeof K);
        in->pose = pose;
        memcpy(in->bbox_obj, bo, sizeof bo);
        memcpy(in->bbox_visib, bv, sizeof bv);
        in->visib_fract = vf;
        in->image_path = strdup(img);
        snprintf(rel, sizeof rel, "mask_visib/%06d_%06d.png", im_id, g);
        in->mask_path = ds_join(sf->scene_dir, rel);
        if (!in->image_path || !in->mask_path) {
            st = uakd_fail(UAKD_ENOMEM, "%s: out of memory", sf->scene_dir);
        } else if (!file_exists(in->mask_path)) {
            free(in->mask_path);
            in->mask_path = NULL;
        }
    }
    free(img);
    return st;
}

static uakd_status read_scene(uakd_dataset *ds, int *cap, const char *split_dir, int scene_id,
                              const uakd_bop_options *opt) {
    char name[16];
    snprintf(name, sizeof name, "%06d", scene_id);
    scene_files sf = {0};
    char *dir = ds_join(split_dir, name);
    char *gp = dir ? ds_join(dir, "scene_gt.json") : NULL;
    char *ip = dir ? ds_join(dir, "scene_gt_info.json") : NULL;
    char *cp = dir ? ds_join(dir, "scene_camera.json") : NULL;
    int *ids = NULL;
    uakd_status st = UAKD_OK;
    if (!gp || !ip || !cp) {
        st = uakd_fail(UAKD_ENOMEM, "%s: out of memory", split_dir);
        goto done;
    }
    sf = (scene_files){dir, gp, ip, cp, NULL, NULL, NULL};
    st = ds_read_json(gp, &sf.gt);
    if (st == UAKD_OK) st = ds_read_json(ip, &sf.info);
    if (st == UAKD_OK) st = ds_read_json(cp, &sf.cam);
    if (st != UAKD_OK) goto done;
    if (!cJSON_IsObject(sf.gt)) st = uakd_fail(UAKD_EFORMAT, "%s: expected an object of im_id -> annotations", gp);
    else if (!cJSON_IsObject(sf.info)) st = uakd_fail(UAKD_EFORMAT, "%s: expected an object of im_id -> infos", ip);
    else if (!cJSON_IsObject(sf.cam)) st = uakd_fail(UAKD_EFORMAT, "%s: expected an object of im_id -> camera", cp);
    if (st != UAKD_OK) goto done;
    int n = cJSON_GetArraySize(sf.gt), k = 0;
    ids = malloc(((size_t)n + 1) * sizeof *ids);
    if (!ids) {
        st = uakd_fail(UAKD_ENOMEM, "%s: out of memory", gp);
        goto done;
    }
    const cJSON *e;
    cJSON_ArrayForEach(e, sf.gt) {
        if (!ds_parse_id(e->string, &ids[k])) {
            st = uakd_fail(UAKD_EFORMAT, "%s: key \"%s\" is not an image id (a non-negative integer)", gp, e->string);
            goto done;
        }
        k++;
    }
    qsort(ids, (size_t)n, sizeof *ids, cmp_int);
    for (int i = 0; i < n && st == UAKD_OK; i++) {
        if (i > 0 && ids[i] == ids[i - 1]) st = uakd_fail(UAKD_EFORMAT, "%s: image id %d appears twice", gp, ids[i]);
        else st = read_image(ds, cap, &sf, scene_id, ids[i], opt);
    }
done:
    cJSON_Delete(sf.gt);
    cJSON_Delete(sf.info);
    cJSON_Delete(sf.cam);
    free(ids);
    free(dir);
    free(gp);
    free(ip);
    free(cp);
    return st;
}

uakd_status uakd_dataset_load_bop(const char *root, const char *split, const uakd_bop_options *opt,
                                  uakd_dataset **out) {
    *out = NULL;
    if (!root || !split) return uakd_fail(UAKD_EINVAL, "BOP loader: root and split are required");
    uakd_dataset *ds = calloc(1, sizeof *ds);
    if (!ds) return uakd_fail(UAKD_ENOMEM, "out of memory");
    char *split_dir = ds_join(root, split);
    int *scenes = NULL, num_scenes = 0, cap = 0;
    uakd_status st = split_dir ? UAKD_OK : uakd_fail(UAKD_ENOMEM, "out of memory");
    if (st == UAKD_OK) st = read_camera(ds, root);
    if (st == UAKD_OK) st = read_models_info(ds, root);
    for (int i = 0; opt && opt->obj_ids && i < opt->num_obj_ids && st == UAKD_OK; i++)
        if (uakd_dataset_find_object(ds, opt->obj_ids[i]) < 0)
            st = uakd_fail(UAKD_EINVAL, "%s/models/models_info.json: selected object %d does not exist", root,
                           opt->obj_ids[i]);
    if (st == UAKD_OK) st = list_scenes(split_dir, &scenes, &num_scenes);
    for (int i = 0; i < num_scenes && st == UAKD_OK; i++) st = read_scene(ds, &cap, split_dir, scenes[i], opt);
    free(scenes);
    free(split_dir);
    if (st != UAKD_OK) {
        uakd_dataset_free(ds);
        return st;
    }
    if (ds->num_missing_images)
        uakd_log(UAKD_LOG_WARN, "%s/%s: %d annotated images have no rgb file and were skipped", root, split,
                 ds->num_missing_images);
    uakd_log(UAKD_LOG_INFO, "%s/%s: %d instances, %d objects; rotations moved at most %.3g onto SO(3)", root, split,
             ds->num_instances, ds->num_objects, ds->max_rot_moved);
    *out = ds;
    return UAKD_OK;
}
