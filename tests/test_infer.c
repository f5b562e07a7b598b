/* Tests of WDRNet inference geometry (uakd/infer.h) with an oracle predictor: on a rendered BOP
 * dataset, head maps are written by hand so that decoding yields the ground-truth corners of the
 * test crop; mapped back through the crop affine, RANSAC-EPnP must recover the ground-truth pose
 * (ADD ~ 0), with and without corrupted cells. Also: a map with no confident cell is a missing
 * prediction; the predict crop (uakd_infer_crop_image) equals the loader's test crop. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"
#include "test_synth_data.h"
#include "uakd/infer.h"
#include "uakd/synth.h"

static const char *make_dataset(void) {
    static int done;
    const char *dir = test_tmp("infer_synth");
    static const test_synth_spec spec = {.format = UAKD_SYNTH_BOP, .count = 6, .val_fraction = 0.5, .width = 320,
                                         .height = 240, .depth_min = 500, .depth_max = 700, .seed = 5};
    if (!done) done = test_synth_dataset(dir, &spec);
    return dir;
}

enum { S = 128 };

typedef struct oracle {
    uakd_wdr_levels lv;
    float *logits[4], *offsets[4];
} oracle;

static void oracle_free(oracle *o) {
    for (int l = 0; l < 4; l++) free(o->logits[l]), free(o->offsets[l]);
}

/* Maps of one image: every cell -8 except `ncells` cells of level 1 around the crop centre, whose
 * offsets encode the corners `corners` (crop pixels). */
static void oracle_init(oracle *o, const double corners[16], int ncells) {
    uakd_wdr_levels_init(&o->lv, 4, S, S);
    for (int l = 0; l < 4; l++) {
        const int cells = uakd_wdr_level_cells(&o->lv, l);
        o->logits[l] = malloc(sizeof(float) * (size_t)cells);
        o->offsets[l] = calloc(16 * (size_t)cells, sizeof(float));
        for (int k = 0; k < cells; k++) o->logits[l][k] = -8.0f;
    }
    const int gw = o->lv.gw[1];
    for (int i = 0; i < ncells; i++) {
        const int col = 2 + i % 4, row = 2 + i / 4, cell = row * gw + col;
        double off[16];
        uakd_wdr_encode(&o->lv, 1, col, row, corners, off);
        o->logits[1][cell] = 4.0f - 0.1f * (float)i;
        for (int k = 0; k < 16; k++) o->offsets[1][(size_t)k * uakd_wdr_level_cells(&o->lv, 1) + cell] = (float)off[k];
    }
}

static void oracle_maps(const oracle *o, uakd_wdr_maps *m) {
    memset(m, 0, sizeof *m);
    m->n = 1, m->c = 1;
    for (int l = 0; l < 4; l++) m->logits[l] = o->logits[l], m->offsets[l] = o->offsets[l];
}

static void test_oracle_recovers_pose(void) {
    const char *root = make_dataset();
    uakd_dataset *ds;
    CHECK_OK(uakd_dataset_load_bop(root, "test", NULL, &ds));
    if (!ds) return;
    uakd_eval_model *models = NULL;
    CHECK_OK(uakd_eval_models_load(root, ds, &models));
    CHECK(ds->num_instances == 3);
    uakd_augment_config ac;
    uakd_augment_config_default(&ac, 0);
    ac.out_width = ac.out_height = S;
    uakd_sample_scratch scratch = {0};
    float *img = malloc(sizeof(float) * 3 * S * S);
    uakd_infer_config ic;
    uakd_infer_config_default(&ic);
    for (int i = 0; models && i < ds->num_instances; i++) {
        const uakd_instance *in = &ds->instances[i];
        const uakd_object_info *ob = &ds->objects[in->object];
        uakd_target t;
        CHECK_OK(uakd_sample_prepare(ds, i, &ac, NULL, NULL, &scratch, img, NULL, &t));
        /* ground-truth corners in the crop: the crop camera and the pose in it */
        const double mx[3] = {ob->min[0] + ob->size[0], ob->min[1] + ob->size[1], ob->min[2] + ob->size[2]};
        double box3d[24], corners[16];
        uakd_bbox_corners(ob->min, mx, box3d);
        uakd_wdr_object wo;
        CHECK_OK(uakd_wdr_object_set_box(&wo, ob->min, mx, t.pose.R, t.pose.t, t.crop.K));
        memcpy(corners, wo.corners2d, sizeof corners);
        oracle o;
        oracle_init(&o, corners, 10);
        uakd_wdr_maps maps;
        oracle_maps(&o, &maps);
        uakd_wdr_cell cells[32];
        int count = 0;
        CHECK_OK(uakd_wdr_decode(&o.lv, &ic.wdr, &maps, 0, 0, cells, 32, &count));
        CHECK(count > 0 && count <= 10);
        uakd_camera cam = {in->K[0], in->K[4], in->K[2], in->K[5], {0}};
        uakd_prediction p;
        CHECK_OK(uakd_infer_pose_from_cells(&ic, cells, count, box3d, t.crop.A, &cam, &p));
        CHECK(p.ok);
        const double add = uakd_metric_add(models[in->object].xyz, models[in->object].n, &in->pose, &p.pose);
        CHECK_MSG(add < 1e-3 * ob->diameter, "instance %d: ADD %g mm", i, add);
        CHECK(p.inliers == 8 * count);
        CHECK_NEAR(p.conf, 1.0 / (1.0 + exp(-4.0)), 1e-6);
        /* the returned corners are the projection of the box under the pose: the GT projection */
        for (int k = 0; k < 8; k++) {
            double uv[2];
            uakd_camera_project(&cam, &in->pose, box3d + 3 * k, uv);
            CHECK_NEAR(p.corners[2 * k], uv[0], 1e-2);
            CHECK_NEAR(p.corners[2 * k + 1], uv[1], 1e-2);
        }
        /* two cells shifted by 30 crop pixels are outliers that RANSAC rejects */
        for (int c = 0; c < 2 && count > 4; c++)
            for (int k = 0; k < 16; k += 2) cells[c].corners[k] += 30;
        CHECK_OK(uakd_infer_pose_from_cells(&ic, cells, count, box3d, t.crop.A, &cam, &p));
        CHECK(p.ok && p.inliers == 8 * (count - 2));
        CHECK(uakd_metric_add(models[in->object].xyz, models[in->object].n, &in->pose, &p.pose) < 1e-3 * ob->diameter);
        oracle_free(&o);
    }
    free(img);
    uakd_sample_scratch_free(&scratch);
    if (models) uakd_eval_models_free(models, ds->num_objects);
    uakd_dataset_free(ds);
}

static void test_no_confident_cell_is_missing(void) {
    oracle o;
    double corners[16] = {0};
    oracle_init(&o, corners, 0);
    uakd_wdr_maps maps;
    oracle_maps(&o, &maps);
    uakd_infer_config ic;
    uakd_infer_config_default(&ic);
    uakd_wdr_cell cells[32];
    int count = -1;
    CHECK_OK(uakd_wdr_decode(&o.lv, &ic.wdr, &maps, 0, 0, cells, 32, &count));
    CHECK(count == 0);
    uakd_prediction p;
    double box3d[24] = {0}, A[6] = {1, 0, 0, 0, 1, 0};
    uakd_camera cam = {500, 500, 64, 64, {0}};
    p.ok = 1;
    CHECK_OK(uakd_infer_pose_from_cells(&ic, cells, count, box3d, A, &cam, &p));
    CHECK(!p.ok && p.cells == 0);
    oracle_free(&o);
}

/* The predict path crops like the evaluation loader for the same box. */
static void test_crop_image_matches_loader(void) {
    const char *root = make_dataset();
    uakd_dataset *ds;
    CHECK_OK(uakd_dataset_load_bop(root, "test", NULL, &ds));
    if (!ds) return;
    const uakd_instance *in = &ds->instances[0];
    uakd_augment_config ac;
    uakd_augment_config_default(&ac, 0);
    ac.out_width = ac.out_height = S;
    uakd_sample_scratch scratch = {0};
    float *a = malloc(sizeof(float) * 3 * S * S), *b = malloc(sizeof(float) * 3 * S * S);
    uakd_target t;
    const double box[4] = {in->bbox_obj[0], in->bbox_obj[1], in->bbox_obj[2], in->bbox_obj[3]};
    CHECK_OK(uakd_sample_prepare(ds, 0, &ac, box, NULL, &scratch, a, NULL, &t));
    uakd_image im = {0};
    CHECK_OK(uakd_image_read(in->image_path, 3, 1, &im));
    uakd_camera cam = {in->K[0], in->K[4], in->K[2], in->K[5], {0}};
    uakd_crop_geometry g;
    CHECK_OK(uakd_infer_crop_image(&im, &cam, box, S, b, &g));
    for (int k = 0; k < 6; k++) CHECK_NEAR(g.A[k], t.crop.A[k], 1e-9);
    for (int k = 0; k < 9; k++) CHECK_NEAR(g.K[k], t.crop.K[k], 1e-9);
    double maxd = 0;
    for (int k = 0; k < 3 * S * S; k++) maxd = fmax(maxd, fabs(a[k] - b[k]));
    CHECK_MSG(maxd < 1e-5, "max pixel difference %g", maxd);
    uakd_image_free(&im);
    free(a), free(b);
    uakd_sample_scratch_free(&scratch);
    uakd_dataset_free(ds);
}

int main(void) {
    RUN(test_oracle_recovers_pose);
    RUN(test_no_confident_cell_is_missing);
    RUN(test_crop_image_matches_loader);
    return TEST_END();
}
