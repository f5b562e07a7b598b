/* SPEED+ loader. Labels give q = q_vbs2tango_true (scalar first, Hamilton, active) and
 * r = r_Vo2To_vbs_true (m); a body point X maps to the camera as x_cam = R(q) X + r and to pixels
 * through cameraMatrix and the OpenCV distortion distCoeffs (k1 k2 p1 p2 k3). The one object
 * (id 1) has the keypoints of a CSV file; its box is their bounding box and its diameter their
 * largest pairwise distance (SPEED+ ships no mesh). bbox_obj of an image is the box of its
 * projected keypoints, bbox_visib that box clipped to the image. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "dataset_internal.h"

static uakd_status read_camera(uakd_dataset *ds, const char *path, double K[9]) {
    cJSON *j;
    UAKD_TRY(ds_read_json(path, &j));
    uakd_status st = UAKD_OK;
    if (!cJSON_IsObject(j)) st = uakd_fail(UAKD_EFORMAT, "%s: expected a JSON object", path);
    if (st == UAKD_OK) st = ds_get_int(j, "Nu", path, "camera", 1, 65536, &ds->width);
    if (st == UAKD_OK) st = ds_get_int(j, "Nv", path, "camera", 1, 65536, &ds->height);
    if (st == UAKD_OK) {
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(j, "cameraMatrix");
        if (!m) st = uakd_fail(UAKD_EFORMAT, "%s: camera: missing field \"cameraMatrix\"", path);
        else if (!cJSON_IsArray(m) || cJSON_GetArraySize(m) != 3)
            st = uakd_fail(UAKD_EFORMAT, "%s: camera: field \"cameraMatrix\" must be 3 rows of 3 numbers", path);
        for (int r = 0; r < 3 && st == UAKD_OK; r++)
            st = ds_array_numbers(cJSON_GetArrayItem(m, r), 3, path, "camera", "cameraMatrix", K + 3 * r);
    }
    if (st == UAKD_OK) st = ds_get_numbers(j, "distCoeffs", 5, path, "camera", ds->dist);
    if (st == UAKD_OK && (K[0] <= 0 || K[4] <= 0 || K[1] != 0 || K[3] != 0 || K[6] != 0 || K[7] != 0 || K[8] != 1))
        st = uakd_fail(UAKD_EFORMAT, "%s: camera: cameraMatrix must be [[fx 0 cx] [0 fy cy] [0 0 1]], fx, fy > 0", path);
    cJSON_Delete(j);
    return st;
}

static uakd_status setup_object(uakd_dataset *ds, const char *csv) {
    ds->objects = calloc(1, sizeof *ds->objects);
    if (!ds->objects) return uakd_fail(UAKD_ENOMEM, "out of memory");
    ds->num_objects = 1;
    uakd_object_info *o = ds->objects;
    o->obj_id = 1;
    UAKD_TRY(uakd_keypoints_read_csv(csv, o->keypoints, &o->num_keypoints));
    for (int a = 0; a < 3; a++) {
        double lo = o->keypoints[0][a], hi = lo;
        for (int k = 1; k < o->num_keypoints; k++) {
            lo = fmin(lo, o->keypoints[k][a]);
            hi = fmax(hi, o->keypoints[k][a]);
        }
        o->min[a] = lo;
        o->size[a] = hi - lo;
    }
    for (int i = 0; i < o->num_keypoints; i++)
        for (int k = i + 1; k < o->num_keypoints; k++) {
            double d = 0;
            for (int a = 0; a < 3; a++) d += (o->keypoints[i][a] - o->keypoints[k][a]) * (o->keypoints[i][a] - o->keypoints[k][a]);
            o->diameter = fmax(o->diameter, sqrt(d));
        }
    return UAKD_OK;
}

/* Box of the projected keypoints; fails when one lies behind the camera. */
static uakd_status keypoint_box(const uakd_dataset *ds, uakd_instance *in, const char *path, const char *ctx) {
    uakd_camera cam = {in->K[0], in->K[4], in->K[2], in->K[5], {0}};
    memcpy(cam.dist, ds->dist, sizeof cam.dist);
    const uakd_object_info *o = &ds->objects[0];
    double lo[2] = {INFINITY, INFINITY}, hi[2] = {-INFINITY, -INFINITY};
    for (int k = 0; k < o->num_keypoints; k++) {
        double uv[2];
        if (!uakd_camera_project(&cam, &in->pose, o->keypoints[k], uv))
            return uakd_fail(UAKD_EFORMAT, "%s: %s: keypoint %d is behind the camera (check r_Vo2To_vbs_true)", path, ctx, k);
        for (int a = 0; a < 2; a++) {
            lo[a] = fmin(lo[a], uv[a]);
            hi[a] = fmax(hi[a], uv[a]);
        }
    }
    double box[4] = {lo[0], lo[1], hi[0] - lo[0], hi[1] - lo[1]};
    memcpy(in->bbox_obj, box, sizeof box);
    double x0 = fmax(lo[0], 0), y0 = fmax(lo[1], 0), x1 = fmin(hi[0], ds->width), y1 = fmin(hi[1], ds->height);
    double vis[4] = {x0, y0, fmax(x1 - x0, 0), fmax(y1 - y0, 0)};
    memcpy(in->bbox_visib, vis, sizeof vis);
    in->visib_fract = 1.0;
    return UAKD_OK;
}

static uakd_status read_entry(uakd_dataset *ds, int *cap, const cJSON *e, int index, const double K[9],
                              const char *images_dir, const char *path) {
    char ctx[64];
    snprintf(ctx, sizeof ctx, "entry %d", index);
    if (!cJSON_IsObject(e)) return uakd_fail(UAKD_EFORMAT, "%s: %s: expected an object", path, ctx);
    const cJSON *fn = cJSON_GetObjectItemCaseSensitive(e, "filename");
    if (!fn) return uakd_fail(UAKD_EFORMAT, "%s: %s: missing field \"filename\"", path, ctx);
    if (!cJSON_IsString(fn) || !fn->valuestring[0] || fn->valuestring[0] == '/' || strstr(fn->valuestring, ".."))
        return uakd_fail(UAKD_EFORMAT, "%s: %s: field \"filename\" must be a relative file name", path, ctx);
    double q[4], r[3];
    UAKD_TRY(ds_get_numbers(e, "q_vbs2tango_true", 4, path, ctx, q));
    UAKD_TRY(ds_get_numbers(e, "r_Vo2To_vbs_true", 3, path, ctx, r));
    double qn = sqrt(q[0] * q[0] + q[1] * q[1] + q[2] * q[2] + q[3] * q[3]);
    if (fabs(qn - 1) > 1e-2)
        return uakd_fail(UAKD_EFORMAT, "%s: %s: q_vbs2tango_true has norm %g, expected a unit quaternion", path, ctx, qn);
    if (r[2] <= 0)
        return uakd_fail(UAKD_EFORMAT, "%s: %s: r_Vo2To_vbs_true has z = %g <= 0 (object behind the camera)", path, ctx,
                         r[2]);
    char *img = ds_join(images_dir, fn->valuestring);
    if (!img) return uakd_fail(UAKD_ENOMEM, "out of memory");
    struct stat sb;
    if (stat(img, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        free(img);
        ds->num_missing_images++;
        return UAKD_OK;
    }
    uakd_instance *in;
    uakd_status st = ds_push_instance(ds, cap, &in);
    if (st != UAKD_OK) {
        free(img);
        return st;
    }
    in->image_path = img;
    in->image_id = index;
    in->obj_id = 1;
    memcpy(in->K, K, 9 * sizeof *K);
    double R[9];
    uakd_quat_to_rot(q, R);
    memcpy(in->pose.t, r, sizeof r);
    UAKD_TRY(ds_set_rotation(ds, R, &in->pose, path, ctx));
    return keypoint_box(ds, in, path, ctx);
}

uakd_status uakd_dataset_load_speedplus(const char *root, const char *domain, const char *list,
                                        const char *keypoints_csv, uakd_dataset **out) {
    *out = NULL;
    if (!root || !domain || !list || !keypoints_csv)
        return uakd_fail(UAKD_EINVAL, "SPEED+ loader: root, domain, list and keypoints file are required");
    uakd_dataset *ds = calloc(1, sizeof *ds);
    if (!ds) return uakd_fail(UAKD_ENOMEM, "out of memory");
    char rel[512];
    snprintf(rel, sizeof rel, "%s/%s.json", domain, list);
    char *cam_path = ds_join(root, "camera.json"), *list_path = ds_join(root, rel);
    snprintf(rel, sizeof rel, "%s/images", domain);
    char *images_dir = ds_join(root, rel);
    cJSON *j = NULL;
    double K[9];
    int cap = 0;
    uakd_status st = cam_path && list_path && images_dir ? UAKD_OK : uakd_fail(UAKD_ENOMEM, "out of memory");
    if (st == UAKD_OK) st = read_camera(ds, cam_path, K);
    if (st == UAKD_OK) st = setup_object(ds, keypoints_csv);
    if (st == UAKD_OK) st = ds_read_json(list_path, &j);
    if (st == UAKD_OK && !cJSON_IsArray(j))
        st = uakd_fail(UAKD_EFORMAT, "%s: expected a JSON array of {filename, q_vbs2tango_true, r_Vo2To_vbs_true}",
                       list_path);
    if (st == UAKD_OK) {
        int i = 0;
        const cJSON *e;
        cJSON_ArrayForEach(e, j) {
            st = read_entry(ds, &cap, e, i++, K, images_dir, list_path);
            if (st != UAKD_OK) break;
        }
    }
    cJSON_Delete(j);
    if (st == UAKD_OK) {
        if (ds->num_missing_images)
            uakd_log(UAKD_LOG_WARN, "%s: %d listed images do not exist under %s and were skipped", list_path,
                     ds->num_missing_images, images_dir);
        uakd_log(UAKD_LOG_INFO, "%s: %d images; rotations moved at most %.3g onto SO(3)", list_path, ds->num_instances,
                 ds->max_rot_moved);
        *out = ds;
    } else {
        uakd_dataset_free(ds);
    }
    free(cam_path);
    free(list_path);
    free(images_dir);
    return st;
}
