/* Real-data checks on LM-O scene 2 (../shared/data/lmo): with every ground-truth pose (R projected
 * onto SO(3)), the projected eval mesh's box matches scene_gt_info's bbox_obj within 2 px; PnP on
 * the 8 projected corners of the models_info box recovers the pose; ADD of GT against itself is 0. */
#include <cjson/cJSON.h>

#include "test.h"
#include "test_json.h"
#include "uakd/mesh.h"
#include "uakd/metrics.h"
#include "uakd/pnp.h"


static int numbers(const cJSON *a, double *out, int cap) {
    int k = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, a) if (k < cap && cJSON_IsNumber(e)) out[k++] = e->valuedouble;
    return k;
}

static void test_lmo_scene2(void) {
    cJSON *gt = test_read_json(test_shared("data/lmo/test/000002/scene_gt.json"));
    cJSON *cams = test_read_json(test_shared("data/lmo/test/000002/scene_camera.json"));
    cJSON *info = test_read_json(test_shared("data/lmo/test/000002/scene_gt_info.json"));
    cJSON *models = test_read_json(test_shared("data/lmo/models/models_info.json"));
    CHECK(gt && cams && info && models);
    if (!(gt && cams && info && models)) goto out;
    uakd_mesh mesh[16] = {{0}};
    int targets = 0, bbox_checked = 0, bbox_bad = 0, pnp_bad = 0, add_bad = 0;
    double worst_bbox = 0, worst_rot = 0, worst_t = 0, worst_moved = 0;
    const cJSON *im;
    cJSON_ArrayForEach(im, gt) {
        double K[9];
        CHECK(numbers(cJSON_GetObjectItem(cJSON_GetObjectItem(cams, im->string), "cam_K"), K, 9) == 9);
        uakd_camera cam = {K[0], K[4], K[2], K[5], {0}};
        const cJSON *infos = cJSON_GetObjectItem(info, im->string), *g;
        int gi = 0;
        cJSON_ArrayForEach(g, im) {
            const cJSON *gin = cJSON_GetArrayItem(infos, gi++);
            int id = cJSON_GetObjectItem(g, "obj_id")->valueint;
            CHECK(id > 0 && id < 16);
            if (id <= 0 || id >= 16) continue;
            if (!mesh[id].xyz) {
                char rel[128];
                snprintf(rel, sizeof rel, "data/lmo/models_eval/obj_%06d.ply", id);
                CHECK_OK(uakd_mesh_read_ply(test_shared(rel), &mesh[id]));
            }
            uakd_pose p;
            double R[9], moved;
            CHECK(numbers(cJSON_GetObjectItem(g, "cam_R_m2c"), R, 9) == 9);
            CHECK(numbers(cJSON_GetObjectItem(g, "cam_t_m2c"), p.t, 3) == 3);
            CHECK_OK(uakd_rot_orthonormalize(R, p.R, &moved));
            worst_moved = fmax(worst_moved, moved);
            targets++;
            /* ADD of the GT pose against itself */
            add_bad += uakd_metric_add(mesh[id].xyz, mesh[id].num_vertices, &p, &p) != 0;
            /* projected eval mesh box vs bbox_obj (x, y, w, h; all -1 when not visible) */
            double bb[4];
            CHECK(numbers(cJSON_GetObjectItem(gin, "bbox_obj"), bb, 4) == 4);
            if (bb[2] > 0) {
                double lo[2] = {INFINITY, INFINITY}, hi[2] = {-INFINITY, -INFINITY};
                for (int v = 0; v < mesh[id].num_vertices; v++) {
                    double X[3] = {mesh[id].xyz[3 * v], mesh[id].xyz[3 * v + 1], mesh[id].xyz[3 * v + 2]}, uv[2];
                    CHECK(uakd_camera_project(&cam, &p, X, uv));
                    for (int k = 0; k < 2; k++) {
                        lo[k] = fmin(lo[k], uv[k]);
                        hi[k] = fmax(hi[k], uv[k]);
                    }
                }
                double e = fmax(fmax(fabs(lo[0] - bb[0]), fabs(lo[1] - bb[1])),
                                fmax(fabs(hi[0] - (bb[0] + bb[2])), fabs(hi[1] - (bb[1] + bb[3]))));
                worst_bbox = fmax(worst_bbox, e);
                bbox_bad += e > 2;
                bbox_checked++;
            }
            /* PnP from the 8 projected corners of the models_info box */
            char key[8];
            snprintf(key, sizeof key, "%d", id);
            const cJSON *mi = cJSON_GetObjectItem(models, key);
            double mn[3] = {cJSON_GetObjectItem(mi, "min_x")->valuedouble, cJSON_GetObjectItem(mi, "min_y")->valuedouble,
                            cJSON_GetObjectItem(mi, "min_z")->valuedouble};
            double mx[3] = {mn[0] + cJSON_GetObjectItem(mi, "size_x")->valuedouble,
                            mn[1] + cJSON_GetObjectItem(mi, "size_y")->valuedouble,
                            mn[2] + cJSON_GetObjectItem(mi, "size_z")->valuedouble};
            double C[24], uv[16];
            uakd_bbox_corners(mn, mx, C);
            for (int c = 0; c < 8; c++) CHECK(uakd_camera_project(&cam, &p, C + 3 * c, uv + 2 * c));
            uakd_pnp_result r;
            uakd_status st = uakd_pnp_solve(&cam, 8, C, uv, NULL, NULL, &r);
            double er = st == UAKD_OK ? uakd_rot_distance(r.pose.R, p.R) : INFINITY;
            double et = st == UAKD_OK ? uakd_metric_trans(&p, &r.pose) / sqrt(p.t[0] * p.t[0] + p.t[1] * p.t[1] + p.t[2] * p.t[2])
                                      : INFINITY;
            worst_rot = fmax(worst_rot, er);
            worst_t = fmax(worst_t, et);
            pnp_bad += !(er < 1e-6 && et < 1e-6);
        }
    }
    fprintf(stderr, "  LM-O scene 2: %d targets, bbox_obj checked on %d, worst box error %.2f px; PnP from corners "
                    "worst rotation %.2g rad, translation %.2g relative; R moved up to %.2g onto SO(3)\n",
            targets, bbox_checked, worst_bbox, worst_rot, worst_t, worst_moved);
    CHECK(targets > 1000 && bbox_checked > 1000);
    CHECK(bbox_bad == 0);
    CHECK(pnp_bad == 0);
    CHECK(add_bad == 0);
    for (int i = 0; i < 16; i++) uakd_mesh_free(&mesh[i]);
out:
    cJSON_Delete(gt);
    cJSON_Delete(cams);
    cJSON_Delete(info);
    cJSON_Delete(models);
}

int main(void) {
    RUN(test_lmo_scene2);
    return TEST_END();
}
