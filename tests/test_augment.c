/* Tests of crops and augmentation: the warp's camera and pose reproduce the warped projections
 * exactly; warped images put the object where the keypoints say; masks; photometric ops;
 * determinism; broken images. */
#include <stdint.h>
#include <unistd.h>

#include "test.h"
#include "uakd/augment.h"
#include "uakd/image.h"

static const double LM_K[9] = {572.4114, 0, 325.2611, 0, 573.57043, 242.04899, 0, 0, 1};

static void random_pose(uakd_rng *r, uakd_pose *p, double depth) {
    double q[4];
    for (int k = 0; k < 4; k++) q[k] = uakd_rng_normal(r);
    uakd_quat_to_rot(q, p->R);
    p->t[0] = uakd_rng_range(r, -0.2, 0.2) * depth;
    p->t[1] = uakd_rng_range(r, -0.15, 0.15) * depth;
    p->t[2] = depth;
}

/* For many random crops (training jitter + shift/scale/rotation): projecting with the crop camera
 * and pose equals applying the affine to the original projection, and Ainv inverts A. */
static void check_exact(const double K[9], const double dist[5], double depth, const double kp[][3], int nkp,
                        uakd_crop_mode mode, int trials) {
    uakd_augment_config cfg;
    uakd_augment_config_default(&cfg, 1);
    cfg.mode = mode;
    cfg.out_width = mode == UAKD_CROP_FULL ? 768 : 128;
    cfg.out_height = mode == UAKD_CROP_FULL ? 512 : 128;
    uakd_rng r;
    uakd_rng_seed(&r, 11);
    uakd_camera cam = {K[0], K[4], K[2], K[5], {0}};
    memcpy(cam.dist, dist, sizeof cam.dist);
    double worst = 0, worst_inv = 0;
    for (int it = 0; it < trials; it++) {
        uakd_pose pose;
        random_pose(&r, &pose, depth);
        double box[4] = {uakd_rng_range(&r, 0, 500), uakd_rng_range(&r, 0, 400), uakd_rng_range(&r, 10, 200),
                         uakd_rng_range(&r, 10, 200)};
        uakd_crop_params p;
        uakd_crop_geometry g;
        CHECK_OK(uakd_crop_params_draw(&cfg, box, 640, 480, &r, &p));
        CHECK_OK(uakd_crop_geometry_make(K, dist, &p, cfg.out_width, cfg.out_height, &g));
        uakd_pose cp;
        uakd_crop_pose(&g, &pose, &cp);
        uakd_camera ccam = {g.K[0], g.K[4], g.K[2], g.K[5], {0}};
        memcpy(ccam.dist, g.dist, sizeof ccam.dist);
        for (int k = 0; k < nkp; k++) {
            double uv[2], a[2], b[2], back[2];
            if (!uakd_camera_project(&cam, &pose, kp[k], uv)) continue;
            CHECK(uakd_camera_project(&ccam, &cp, kp[k], b));
            uakd_affine_apply(g.A, uv, a);
            uakd_affine_apply(g.Ainv, a, back);
            worst = fmax(worst, fmax(fabs(a[0] - b[0]), fabs(a[1] - b[1])));
            worst_inv = fmax(worst_inv, fmax(fabs(back[0] - uv[0]), fabs(back[1] - uv[1])));
        }
        CHECK_NEAR(uakd_mat3_det(cp.R), 1.0, 1e-12);
    }
    CHECK_NEAR(worst, 0, 1e-6);
    CHECK_NEAR(worst_inv, 0, 1e-8);
}

static void test_crop_keeps_projection_exact(void) {
    static const double box[8][3] = {{-40, -40, -45}, {-40, -40, 45}, {-40, 40, -45}, {-40, 40, 45},
                                     {40, -40, -45},  {40, -40, 45},  {40, 40, -45},  {40, 40, 45}};
    const double none[5] = {0};
    check_exact(LM_K, none, 1000, box, 8, UAKD_CROP_BOX, 300);
    check_exact(LM_K, none, 1000, box, 8, UAKD_CROP_FULL, 50);
    /* radial distortion: rotation stays exact */
    double kp[UAKD_MAX_KEYPOINTS][3];
    int n;
    CHECK_OK(uakd_keypoints_read_csv(test_shared("data/speedplus/tangoPoints.transcribed.csv"), kp, &n));
    const double Ksp[9] = {2988.5795163815555, 0, 960, 0, 2988.3401159176124, 600, 0, 0, 1};
    const double radial[5] = {-0.22383016606510672, 0.51409797089106379, 0, 0, -0.13124227429077406};
    check_exact(Ksp, radial, 8, (const double(*)[3])kp, n, UAKD_CROP_FULL, 50);
    check_exact(Ksp, radial, 8, (const double(*)[3])kp, n, UAKD_CROP_BOX, 50);
    /* tangential distortion: rotation refused, scale + shift exact */
    const double full[5] = {-0.22383016606510672, 0.51409797089106379, -0.00066499611998340662,
                            -0.00021404771667484594, -0.13124227429077406};
    uakd_crop_params p = {{900, 500}, {0.4, 0.4}, 0.1};
    uakd_crop_geometry g;
    CHECK_FAILS(uakd_crop_geometry_make(Ksp, full, &p, 768, 512, &g), UAKD_EINVAL);
    p.angle = 0;
    CHECK_OK(uakd_crop_geometry_make(Ksp, full, &p, 768, 512, &g));
    uakd_pose pose = {{1, 0, 0, 0, 1, 0, 0, 0, 1}, {0.1, -0.2, 5}};
    uakd_camera cam = {Ksp[0], Ksp[4], Ksp[2], Ksp[5], {0}}, ccam = {g.K[0], g.K[4], g.K[2], g.K[5], {0}};
    memcpy(cam.dist, full, sizeof cam.dist);
    memcpy(ccam.dist, full, sizeof ccam.dist);
    for (int k = 0; k < n; k++) {
        double uv[2], a[2], b[2];
        CHECK(uakd_camera_project(&cam, &pose, kp[k], uv));
        CHECK(uakd_camera_project(&ccam, &pose, kp[k], b));
        uakd_affine_apply(g.A, uv, a);
        CHECK_NEAR(a[0], b[0], 1e-6);
        CHECK_NEAR(a[1], b[1], 1e-6);
    }
}

/* Test crop by hand: box (100, 50, 40, 20) -> side 60, 128 px out: s = 128 / 60, centre (120, 60)
 * lands on (63.5, 63.5); K' = (s fx, s fy, 63.5 - s (120 - cx) ... ) i.e. cx' = s (cx - 120) + 63.5. */
static void test_test_crop_by_hand(void) {
    uakd_augment_config cfg;
    uakd_augment_config_default(&cfg, 0);
    cfg.out_width = cfg.out_height = 128;
    double box[4] = {100, 50, 40, 20};
    uakd_crop_params p;
    uakd_crop_geometry g;
    CHECK_OK(uakd_crop_params_draw(&cfg, box, 640, 480, NULL, &p));
    CHECK_OK(uakd_crop_geometry_make(LM_K, (double[5]){0}, &p, 128, 128, &g));
    double s = 128.0 / 60;
    const double A[6] = {s, 0, 63.5 - s * 120, 0, s, 63.5 - s * 60};
    for (int k = 0; k < 6; k++) CHECK_NEAR(g.A[k], A[k], 1e-12);
    CHECK_NEAR(g.K[0], s * LM_K[0], 1e-9);
    CHECK_NEAR(g.K[4], s * LM_K[4], 1e-9);
    CHECK_NEAR(g.K[2], s * (LM_K[2] - 120) + 63.5, 1e-9);
    CHECK_NEAR(g.K[5], s * (LM_K[5] - 60) + 63.5, 1e-9);
    CHECK_NEAR(g.Ainv[0], 1 / s, 1e-12);
    CHECK_NEAR(g.Ainv[2], 120 - 63.5 / s, 1e-9);
    /* full-image mode: 640 x 480 -> 320 x 240 maps pixel-area edges onto each other */
    cfg.mode = UAKD_CROP_FULL;
    cfg.out_width = 320;
    cfg.out_height = 240;
    CHECK_OK(uakd_crop_params_draw(&cfg, NULL, 640, 480, NULL, &p));
    CHECK_OK(uakd_crop_geometry_make(LM_K, (double[5]){0}, &p, 320, 240, &g));
    double e[2];
    uakd_affine_apply(g.A, (double[2]){-0.5, -0.5}, e);
    CHECK_NEAR(e[0], -0.5, 1e-12);
    CHECK_NEAR(e[1], -0.5, 1e-12);
    uakd_affine_apply(g.A, (double[2]){639.5, 479.5}, e);
    CHECK_NEAR(e[0], 319.5, 1e-12);
    CHECK_NEAR(e[1], 239.5, 1e-12);
}

static void test_training_jitter_ranges(void) {
    uakd_augment_config cfg;
    uakd_augment_config_default(&cfg, 1);
    cfg.out_width = cfg.out_height = 128;
    double box[4] = {100, 50, 40, 20};
    uakd_rng r;
    uakd_rng_seed(&r, 3);
    double smin = 1e9, smax = 0, amax = 0, cxmin = 1e9, cxmax = -1e9;
    for (int i = 0; i < 5000; i++) {
        uakd_crop_params p;
        CHECK_OK(uakd_crop_params_draw(&cfg, box, 640, 480, &r, &p));
        smin = fmin(smin, p.scale[0]);
        smax = fmax(smax, p.scale[0]);
        amax = fmax(amax, fabs(p.angle));
        cxmin = fmin(cxmin, p.center[0]);
        cxmax = fmax(cxmax, p.center[0]);
        CHECK(p.scale[0] == p.scale[1]);
    }
    /* s = 128 / (60 U(0.75, 1.25)) U(0.95, 1.05); centre x = 120 + 40 U(-.25, .25) + side U(-.05, .05) */
    CHECK(smin >= 128 / (60 * 1.25) * 0.95 && smin < 128 / (60 * 1.25) * 1.0);
    CHECK(smax <= 128 / (60 * 0.75) * 1.05 && smax > 128 / (60 * 0.75) * 1.0);
    CHECK(amax <= 10 * M_PI / 180 && amax > 9 * M_PI / 180);
    CHECK(cxmin >= 120 - 10 - 75 * 0.05 && cxmin < 120 - 9);
    CHECK(cxmax <= 120 + 10 + 75 * 0.05 && cxmax > 120 + 9);
    uakd_crop_params unused;
    CHECK_FAILS(uakd_crop_params_draw(&cfg, box, 640, 480, NULL, &unused), UAKD_EINVAL);
    cfg.shift = 2;
    CHECK_FAILS(uakd_augment_config_check(&cfg), UAKD_EINVAL);
}

/* ---- a one-instance dataset in memory, its image drawn by the test ---- */

static const double CUBE[8][3] = {{-30, -30, -30}, {-30, -30, 30}, {-30, 30, -30}, {-30, 30, 30},
                                  {30, -30, -30},  {30, -30, 30},  {30, 30, -30},  {30, 30, 30}};

static uakd_dataset *one_instance(const char *image_path, const char *mask_path) {
    uakd_dataset *ds = calloc(1, sizeof *ds);
    ds->width = 640;
    ds->height = 480;
    ds->num_objects = 1;
    ds->objects = calloc(1, sizeof *ds->objects);
    ds->objects[0].obj_id = 5;
    ds->objects[0].diameter = 60 * sqrt(3);
    ds->objects[0].num_keypoints = 8;
    memcpy(ds->objects[0].keypoints, CUBE, sizeof CUBE);
    ds->num_instances = 1;
    ds->instances = calloc(1, sizeof *ds->instances);
    uakd_instance *in = ds->instances;
    in->image_path = strdup(image_path);
    in->mask_path = mask_path ? strdup(mask_path) : NULL;
    in->obj_id = 5;
    memcpy(in->K, LM_K, sizeof LM_K);
    static const double q[4] = {0.9, 0.2, -0.3, 0.1};
    uakd_quat_to_rot(q, in->pose.R);
    in->pose.t[0] = 30;
    in->pose.t[1] = -20;
    in->pose.t[2] = 700;
    double bv[4] = {0, 0, 640, 480};
    memcpy(in->bbox_visib, bv, sizeof bv);
    in->visib_fract = 1;
    return ds;
}

/* Black image with a 5x5 white square centred on each keypoint's (rounded) projection. */
static void draw_dots(const uakd_dataset *ds, const char *path, double dots[][2]) {
    uakd_image im;
    uakd_image_alloc(&im, 640, 480, 3);
    const uakd_instance *in = ds->instances;
    uakd_camera cam = {LM_K[0], LM_K[4], LM_K[2], LM_K[5], {0}};
    for (int k = 0; k < 8; k++) {
        double uv[2];
        uakd_camera_project(&cam, &in->pose, CUBE[k], uv);
        int x = (int)floor(uv[0] + 0.5), y = (int)floor(uv[1] + 0.5);
        dots[k][0] = x;
        dots[k][1] = y;
        for (int dy = -2; dy <= 2; dy++)
            for (int dx = -2; dx <= 2; dx++)
                memset(im.data + ((size_t)(y + dy) * 640 + x + dx) * 3, 255, 3);
    }
    CHECK_OK(uakd_image_write(path, &im, 0));
    uakd_image_free(&im);
}

/* The warped dots sit where the affine sends them, and the target's keypoints are the affine
 * images of the original projections. */
static void test_warped_image_matches_keypoints(void) {
    const char *path = test_tmp("dots.png");
    uakd_dataset *ds = one_instance(path, NULL);
    double dots[8][2];
    draw_dots(ds, path, dots);
    uakd_augment_config cfg;
    uakd_augment_config_default(&cfg, 1);
    cfg.out_width = cfg.out_height = 128;
    cfg.photometric_p = 0;
    cfg.box_scale = 2.0; /* keep every dot inside the crop */
    cfg.zoom_shift_jitter = 0.1;
    uakd_sample_scratch sc = {0};
    float *img = malloc(sizeof(float) * 3 * 128 * 128);
    uint8_t *mask = malloc(128 * 128);
    uakd_rng r;
    uakd_rng_seed(&r, 5);
    uakd_camera cam = {LM_K[0], LM_K[4], LM_K[2], LM_K[5], {0}};
    double worst_kp = 0, worst_dot = 0;
    for (int it = 0; it < 20; it++) {
        uakd_target t;
        CHECK_OK(uakd_sample_prepare(ds, 0, &cfg, NULL, &r, &sc, img, mask, &t));
        CHECK(t.obj_id == 5 && t.num_keypoints == 8 && !t.mask_from_file);
        for (int k = 0; k < 8; k++) {
            double uv[2], a[2];
            uakd_camera_project(&cam, &ds->instances[0].pose, CUBE[k], uv);
            uakd_affine_apply(t.crop.A, uv, a);
            worst_kp = fmax(worst_kp, hypot(a[0] - t.kp2d[k][0], a[1] - t.kp2d[k][1]));
            /* centroid of the brightness (channel 0, de-normalised) around the warped dot */
            double d[2], sw = 0, sx = 0, sy = 0;
            uakd_affine_apply(t.crop.A, dots[k], d);
            int r0 = 6;
            for (int y = (int)d[1] - r0; y <= (int)d[1] + r0; y++)
                for (int x = (int)d[0] - r0; x <= (int)d[0] + r0; x++) {
                    if (x < 0 || y < 0 || x >= 128 || y >= 128) continue;
                    double v = img[y * 128 + x] * 0.229 + 0.485;
                    sw += v;
                    sx += v * x;
                    sy += v * y;
                }
            CHECK(sw > 1.0);
            worst_dot = fmax(worst_dot, hypot(sx / sw - d[0], sy / sw - d[1]));
            /* keypoints lie inside the hull mask (hull of their own projections; interior points) */
        }
        double mean[2] = {0, 0};
        for (int k = 0; k < 8; k++) mean[0] += t.kp2d[k][0] / 8, mean[1] += t.kp2d[k][1] / 8;
        CHECK(mask[(int)floor(mean[1] + 0.5) * 128 + (int)floor(mean[0] + 0.5)] == 1);
        CHECK(mask[0] == 0 && mask[128 * 128 - 1] == 0);
    }
    fprintf(stderr, "     keypoints vs affine: %.2g px; warped dot centroids vs affine: %.3f px\n", worst_kp, worst_dot);
    CHECK_NEAR(worst_kp, 0, 1e-6);
    CHECK_NEAR(worst_dot, 0, 0.35);
    /* whole-image resize to 1/4: decoded at 1/4 size (box filter), the dots still land on A p */
    uakd_augment_config_default(&cfg, 0);
    cfg.mode = UAKD_CROP_FULL;
    cfg.out_width = 160;
    cfg.out_height = 120;
    float *small = malloc(sizeof(float) * 3 * 160 * 120);
    uakd_target t;
    CHECK_OK(uakd_sample_prepare(ds, 0, &cfg, NULL, NULL, &sc, small, NULL, &t));
    worst_dot = 0;
    for (int k = 0; k < 8; k++) {
        double d[2], sw = 0, sx = 0, sy = 0;
        uakd_affine_apply(t.crop.A, dots[k], d);
        for (int y = (int)d[1] - 2; y <= (int)d[1] + 3; y++)
            for (int x = (int)d[0] - 2; x <= (int)d[0] + 3; x++) {
                double v = small[y * 160 + x] * 0.229 + 0.485;
                sw += v, sx += v * x, sy += v * y;
            }
        worst_dot = fmax(worst_dot, hypot(sx / sw - d[0], sy / sw - d[1]));
    }
    fprintf(stderr, "     1/4 scale decode: dot centroids vs affine %.3f px\n", worst_dot);
    CHECK_NEAR(worst_dot, 0, 0.1);
    free(small);
    uakd_sample_scratch_free(&sc);
    free(img);
    free(mask);
    uakd_dataset_free(ds);
}

static void test_mask_file_warp_and_errors(void) {
    const char *path = test_tmp("grey.png"), *mpath = test_tmp("mask.png");
    uakd_image im, m;
    uakd_image_alloc(&im, 640, 480, 3);
    memset(im.data, 128, (size_t)640 * 480 * 3);
    CHECK_OK(uakd_image_write(path, &im, 0));
    uakd_image_alloc(&m, 640, 480, 1);
    for (int y = 200; y < 300; y++)
        for (int x = 250; x < 400; x++) m.data[y * 640 + x] = 255;
    CHECK_OK(uakd_image_write(mpath, &m, 0));
    uakd_dataset *ds = one_instance(path, mpath);
    uakd_augment_config cfg;
    uakd_augment_config_default(&cfg, 1);
    cfg.out_width = cfg.out_height = 64;
    cfg.photometric_p = 1;
    cfg.contrast = cfg.blur_sigma = cfg.noise_std = 0; /* brightness only: a constant shift */
    uakd_sample_scratch sc = {0};
    float img[3 * 64 * 64];
    uint8_t mask[64 * 64];
    uakd_rng r;
    uakd_rng_seed(&r, 9);
    uakd_target t;
    CHECK_OK(uakd_sample_prepare(ds, 0, &cfg, NULL, &r, &sc, img, mask, &t));
    CHECK(t.mask_from_file);
    for (int y = 0; y < 64; y++)
        for (int x = 0; x < 64; x++) {
            double p[2];
            uakd_affine_apply(t.crop.Ainv, (double[2]){x, y}, p);
            int px = (int)floor(p[0] + 0.5), py = (int)floor(p[1] + 0.5);
            int expect = px >= 250 && px < 400 && py >= 200 && py < 300;
            CHECK(mask[y * 64 + x] == expect);
        }
    /* brightness: every pixel inside the image got the same value, within the clamp */
    double v0 = img[32 * 64 + 32];
    CHECK(fabs(v0 - (128 / 255.0 - 0.485) / 0.229) > 1e-3);
    CHECK(fabs(v0 * 0.229 + 0.485 - 128 / 255.0) <= 0.2 + 1e-6);
    for (int i = 28; i < 36; i++) CHECK_NEAR(img[i * 64 + 30], v0, 1e-5);
    /* same stream, same sample; another stream, another sample */
    float img2[3 * 64 * 64];
    uakd_rng_seed(&r, 9);
    CHECK_OK(uakd_sample_prepare(ds, 0, &cfg, NULL, &r, &sc, img2, NULL, &t));
    CHECK(memcmp(img, img2, sizeof img) == 0);
    uakd_rng_seed(&r, 10);
    CHECK_OK(uakd_sample_prepare(ds, 0, &cfg, NULL, &r, &sc, img2, NULL, &t));
    CHECK(memcmp(img, img2, sizeof img) != 0);

    /* noise and blur change pixels but keep the mean of a flat image */
    cfg.brightness = 0;
    cfg.noise_std = 0.05;
    cfg.blur_sigma = 2;
    CHECK_OK(uakd_sample_prepare(ds, 0, &cfg, NULL, &r, &sc, img2, NULL, &t));
    double mean = 0;
    for (int i = 0; i < 64 * 64; i++) mean += (img2[i] * 0.229 + 0.485) / (64 * 64);
    CHECK_NEAR(mean, 128 / 255.0, 0.01);

    /* wrong mask size */
    uakd_image small;
    uakd_image_alloc(&small, 320, 240, 1);
    CHECK_OK(uakd_image_write(mpath, &small, 0));
    CHECK_FAILS(uakd_sample_prepare(ds, 0, &cfg, NULL, &r, &sc, img2, mask, &t), UAKD_EFORMAT);
    /* wrong image size */
    uakd_image_free(&small);
    uakd_image_alloc(&small, 320, 240, 3);
    CHECK_OK(uakd_image_write(path, &small, 0));
    CHECK_FAILS(uakd_sample_prepare(ds, 0, &cfg, NULL, &r, &sc, img2, NULL, &t), UAKD_EFORMAT);
    CHECK(strstr(uakd_last_error(), "grey.png") && strstr(uakd_last_error(), "640x480"));
    /* truncated image */
    CHECK_OK(uakd_image_write(path, &im, 0));
    FILE *f = fopen(path, "r+b");
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fclose(f);
    CHECK(truncate(path, size / 2) == 0);
    CHECK_FAILS(uakd_sample_prepare(ds, 0, &cfg, NULL, &r, &sc, img2, NULL, &t), UAKD_EFORMAT);
    CHECK(strstr(uakd_last_error(), "grey.png") != NULL);
    /* missing image; bad index */
    remove(path);
    CHECK_FAILS(uakd_sample_prepare(ds, 0, &cfg, NULL, &r, &sc, img2, NULL, &t), UAKD_EIO);
    CHECK_FAILS(uakd_sample_prepare(ds, 1, &cfg, NULL, &r, &sc, img2, NULL, &t), UAKD_EINVAL);
    uakd_image_free(&small);
    uakd_image_free(&im);
    uakd_image_free(&m);
    uakd_sample_scratch_free(&sc);
    uakd_dataset_free(ds);
}

/* Real data: the LM-O test crop (no jitter) is reproducible and consistent; the SPEED+ whole-image
 * resize decodes at 1/2 scale and keeps the colour and the geometry. */
static void test_real_samples(void) {
    uakd_dataset *ds = NULL;
    CHECK_OK(uakd_dataset_load_bop(test_shared("data/lmo"), "test", NULL, &ds));
    if (!ds) return;
    uakd_augment_config cfg;
    uakd_augment_config_default(&cfg, 0);
    cfg.out_width = cfg.out_height = 128;
    uakd_sample_scratch sc = {0};
    float *a = malloc(sizeof(float) * 3 * 128 * 128), *b = malloc(sizeof(float) * 3 * 128 * 128);
    uint8_t *mask = malloc(128 * 128);
    uakd_target t, u;
    CHECK_OK(uakd_sample_prepare(ds, 1, &cfg, NULL, NULL, &sc, a, mask, &t));
    CHECK_OK(uakd_sample_prepare(ds, 1, &cfg, NULL, NULL, &sc, b, NULL, &u));
    CHECK(memcmp(a, b, sizeof(float) * 3 * 128 * 128) == 0);
    /* test crop: the box of the projected corners is centred and spans 128 / 1.5 pixels */
    double lo[2] = {1e9, 1e9}, hi[2] = {-1e9, -1e9};
    for (int k = 0; k < 8; k++)
        for (int c = 0; c < 2; c++) lo[c] = fmin(lo[c], t.kp2d[k][c]), hi[c] = fmax(hi[c], t.kp2d[k][c]);
    CHECK_NEAR((lo[0] + hi[0]) / 2, 63.5, 1e-6);
    CHECK_NEAR((lo[1] + hi[1]) / 2, 63.5, 1e-6);
    CHECK_NEAR(fmax(hi[0] - lo[0], hi[1] - lo[1]), 128 / 1.5, 1e-6);
    /* a given box instead of the ground truth */
    double box[4] = {300, 200, 60, 60};
    CHECK_OK(uakd_sample_prepare(ds, 1, &cfg, box, NULL, &sc, b, NULL, &u));
    double c[2];
    uakd_affine_apply(u.crop.A, (double[2]){330, 230}, c);
    CHECK_NEAR(c[0], 63.5, 1e-9);
    CHECK_NEAR(u.crop.A[0], 128 / 90.0, 1e-12);
    double lo_v = 1e9, hi_v = -1e9;
    for (int i = 0; i < 3 * 128 * 128; i++) lo_v = fmin(lo_v, a[i]), hi_v = fmax(hi_v, a[i]);
    CHECK(lo_v >= -0.485 / 0.229 - 1e-5 && hi_v <= (1 - 0.406) / 0.225 + 1e-5 && hi_v - lo_v > 1);
    int on = 0;
    for (int i = 0; i < 128 * 128; i++) on += mask[i];
    CHECK(on > 100 && on < 128 * 128);
    uakd_dataset_free(ds);
    free(a);
    free(b);
    free(mask);

    CHECK_OK(uakd_dataset_load_speedplus("tests/data/dataset/speedplus", "synthetic", "train",
                                         test_shared("data/speedplus/tangoPoints.transcribed.csv"), &ds));
    if (!ds) return;
    cfg.mode = UAKD_CROP_FULL;
    cfg.out_width = 768;
    cfg.out_height = 512;
    a = malloc(sizeof(float) * 3 * 768 * 512);
    CHECK_OK(uakd_sample_prepare(ds, 0, &cfg, NULL, NULL, &sc, a, NULL, &t));
    /* flat colour (130, 110, 90) of the fixture JPEG, within JPEG error */
    const double rgb[3] = {130, 110, 90}, mean[3] = {0.485, 0.456, 0.406}, sd[3] = {0.229, 0.224, 0.225};
    for (int ch = 0; ch < 3; ch++)
        CHECK_NEAR(a[(size_t)ch * 768 * 512 + 256 * 768 + 384] * sd[ch] + mean[ch], rgb[ch] / 255, 3.0 / 255);
    uakd_camera cam = {ds->instances[0].K[0], ds->instances[0].K[4], 960, 600, {0}};
    memcpy(cam.dist, ds->dist, sizeof cam.dist);
    for (int k = 0; k < t.num_keypoints; k++) {
        double uv[2], p[2];
        uakd_camera_project(&cam, &ds->instances[0].pose, t.kp3d[k], uv);
        uakd_affine_apply(t.crop.A, uv, p);
        CHECK_NEAR(p[0], t.kp2d[k][0], 1e-6);
        CHECK_NEAR(p[1], t.kp2d[k][1], 1e-6);
    }
    CHECK_NEAR(t.crop.A[0], 0.4, 1e-12);
    CHECK_NEAR(t.crop.A[4], 512 / 1200.0, 1e-12);
    free(a);
    uakd_sample_scratch_free(&sc);
    uakd_dataset_free(ds);
}

static void test_image_cache(void) {
    uakd_image_cache *c = NULL;
    CHECK_OK(uakd_image_cache_new((size_t)640 * 480 * 3 + 10, &c));
    if (!c) return;
    const char *a = test_shared("data/lmo/test/000002/rgb/000072.png");
    const char *b = test_shared("data/lmo/test/000002/rgb/000124.png");
    uakd_image tmp, direct;
    const uakd_image *p1, *p2, *p3;
    CHECK_OK(uakd_image_cache_read(c, a, 3, 1, &tmp, &p1));
    CHECK(p1 != &tmp && tmp.data == NULL); /* kept */
    CHECK_OK(uakd_image_cache_read(c, a, 3, 1, &tmp, &p2));
    CHECK(p2 == p1);
    CHECK_OK(uakd_image_read(a, 3, 1, &direct));
    CHECK(memcmp(direct.data, p1->data, (size_t)640 * 480 * 3) == 0);
    uakd_image_free(&direct);
    CHECK_OK(uakd_image_cache_read(c, b, 3, 1, &tmp, &p3)); /* over budget: decoded, not kept */
    CHECK(p3 == &tmp && tmp.width == 640);
    uakd_image_free(&tmp);
    CHECK_FAILS(uakd_image_cache_read(c, test_tmp("missing.png"), 3, 1, &tmp, &p3), UAKD_EIO);
    long hits, misses;
    size_t bytes;
    uakd_image_cache_stats(c, &hits, &misses, &bytes);
    CHECK(hits == 1 && misses == 3 && bytes == (size_t)640 * 480 * 3);
    uakd_image_cache_free(c);
}

static void test_warp_bilinear_by_hand(void) {
    uakd_image s, d;
    uakd_image_alloc(&s, 2, 2, 1);
    s.data[0] = 0, s.data[1] = 100, s.data[2] = 200, s.data[3] = 40;
    uakd_image_alloc(&d, 3, 1, 1);
    /* dst (x, 0) <- src (0.5 x, 0.25): values at (0, .25), (.5, .25), (1, .25) */
    const double M[6] = {0.5, 0, 0, 0, 0, 0.25};
    CHECK_OK(uakd_image_warp_affine(&s, M, 0, 7, &d));
    CHECK(d.data[0] == 50);  /* 0.75*0 + 0.25*200 */
    CHECK(d.data[1] == 68);  /* 0.75*(50) + 0.25*(120) = 67.5 -> 68 */
    CHECK(d.data[2] == 85);  /* 0.75*100 + 0.25*40 */
    const double far[6] = {0, 0, 5, 0, 0, 0};
    CHECK_OK(uakd_image_warp_affine(&s, far, 0, 7, &d));
    CHECK(d.data[0] == 7);
    const double near[6] = {0.5, 0, 0, 0, 0, 0.6};
    CHECK_OK(uakd_image_warp_affine(&s, near, 1, 7, &d));
    CHECK(d.data[0] == 200 && d.data[1] == 40 && d.data[2] == 40);
    uakd_image_free(&s);
    uakd_image_free(&d);
}

int main(void) {
    RUN(test_warp_bilinear_by_hand);
    RUN(test_image_cache);
    RUN(test_crop_keeps_projection_exact);
    RUN(test_test_crop_by_hand);
    RUN(test_training_jitter_ranges);
    RUN(test_warped_image_matches_keypoints);
    RUN(test_mask_file_warp_and_errors);
    RUN(test_real_samples);
    return TEST_END();
}
