/* Tests of the dataset loaders: the real LM-O fixture (BOP), a SPEED+ list fixture (pose
 * convention checked against OpenCV's projectPoints of the Tango keypoints), malformed inputs,
 * and the splits. */
#include <sys/stat.h>

#include "test.h"
#include "uakd/dataset.h"
#include "uakd/image.h"
#include "uakd/mesh.h"

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

static char logged[2048];

static void capture(uakd_log_level level, const char *msg, void *user) {
    size_t n = strlen(logged);
    snprintf(logged + n, sizeof logged - n, "%d:%s\n", (int)level, msg);
}

static void test_bop_lmo_loads(void) {
    uakd_dataset *ds = NULL;
    logged[0] = '\0';
    uakd_set_log(capture, NULL, UAKD_LOG_INFO);
    CHECK_OK(uakd_dataset_load_bop(test_shared("data/lmo"), "test", NULL, &ds));
    uakd_set_log(NULL, NULL, UAKD_LOG_ERROR);
    /* the skipped images and the SO(3) correction are reported */
    CHECK_MSG(strstr(logged, "1:") && strstr(logged, "192 annotated images have no rgb file"), "log: %s", logged);
    CHECK_MSG(strstr(logged, "2:") && strstr(logged, "63 instances") && strstr(logged, "moved at most"), "log: %s", logged);
    if (!ds) return;
    /* 200 annotated images, 8 present, 63 annotations on those 8 (counted with Python) */
    CHECK(ds->num_missing_images == 192);
    CHECK(ds->num_instances == 63);
    CHECK(ds->width == 640 && ds->height == 480);
    CHECK(ds->num_objects == 8);
    CHECK(ds->max_rot_moved > 1e-4 && ds->max_rot_moved < 2e-2);
    const uakd_instance *in = &ds->instances[0];
    CHECK(in->scene_id == 2 && in->image_id == 72 && in->gt_index == 0 && in->obj_id == 1);
    CHECK(ends_with(in->image_path, "test/000002/rgb/000072.png"));
    CHECK(in->mask_path == NULL);
    CHECK_NEAR(in->K[0], 572.4114, 0);
    CHECK_NEAR(in->K[2], 325.2611, 0);
    CHECK_NEAR(in->K[4], 573.57043, 0);
    CHECK_NEAR(in->K[5], 242.04899, 0);
    CHECK_NEAR(in->pose.t[0], 106.77569912, 0);
    CHECK_NEAR(in->pose.t[2], 1210.57254032, 0);
    static const double R0[9] = {0.83233807, 0.21366915, -0.51168907, -0.43551342, -0.31942735,
                                 -0.84176367, -0.34326025, 0.92336323, -0.1728012};
    for (int k = 0; k < 9; k++) CHECK_NEAR(in->pose.R[k], R0[k], 2e-2);
    CHECK_NEAR(in->bbox_obj[0], 361, 0);
    CHECK_NEAR(in->bbox_obj[3], 43, 0);
    CHECK_NEAR(in->bbox_visib[2], 14, 0);
    CHECK_NEAR(in->visib_fract, 0.17117988394584138, 1e-15);
    for (int i = 0; i < ds->num_instances; i++) {
        const double *R = ds->instances[i].pose.R;
        double RRt[9];
        uakd_mat3_mul(R, (double[9]){R[0], R[3], R[6], R[1], R[4], R[7], R[2], R[5], R[8]}, RRt);
        for (int k = 0; k < 9; k++) CHECK_NEAR(RRt[k], k % 4 == 0, 1e-12);
        CHECK_NEAR(uakd_mat3_det(R), 1.0, 1e-12);
        if (i > 0) {
            const uakd_instance *p = &ds->instances[i - 1], *q = &ds->instances[i];
            CHECK(p->image_id < q->image_id || (p->image_id == q->image_id && p->gt_index + 1 == q->gt_index));
        }
    }
    /* objects: eggbox (10) has one discrete symmetry; keypoints are the box corners */
    int egg = uakd_dataset_find_object(ds, 10);
    CHECK(egg >= 0);
    if (egg >= 0) {
        const uakd_object_info *o = &ds->objects[egg];
        CHECK(o->num_sym_discrete == 1 && o->num_sym_continuous == 0);
        CHECK_NEAR(o->sym_discrete[3], 0.232611, 0);
        CHECK_NEAR(o->diameter, 164.628, 0);
        CHECK(o->num_keypoints == 8);
        CHECK_NEAR(o->keypoints[0][0], -75.0923, 1e-12);
        CHECK_NEAR(o->keypoints[7][2], -34.6207 + 69.2414, 1e-12);
        CHECK_NEAR(o->keypoints[4][0], -75.0923 + 150.185, 1e-12); /* index 4 = ix */
    }
    /* every image: 640 x 480 */
    for (int i = 0; i < ds->num_instances; i++) {
        if (i > 0 && strcmp(ds->instances[i].image_path, ds->instances[i - 1].image_path) == 0) continue;
        int w = 0, h = 0;
        CHECK_OK(uakd_image_read_size(ds->instances[i].image_path, &w, &h));
        CHECK(w == 640 && h == 480);
    }
    uakd_dataset_free(ds);
}

static void project_box(const uakd_instance *in, const double *pts, int n, int stride, double box[4]) {
    uakd_camera cam = {in->K[0], in->K[4], in->K[2], in->K[5], {0}};
    box[0] = box[1] = INFINITY;
    box[2] = box[3] = -INFINITY;
    for (int k = 0; k < n; k++) {
        double uv[2];
        if (!uakd_camera_project(&cam, &in->pose, pts + (size_t)k * stride, uv)) continue;
        box[0] = fmin(box[0], uv[0]);
        box[1] = fmin(box[1], uv[1]);
        box[2] = fmax(box[2], uv[0]);
        box[3] = fmax(box[3], uv[1]);
    }
}

/* bbox_obj is the box [x, x + w] x [y, y + h] of the projected mesh (not clipped to the image). The
 * projected eval-mesh vertices must agree within 2 px; the projected 3D box corners enclose it. */
static void test_bop_lmo_boxes_match_projection(void) {
    uakd_dataset *ds = NULL;
    CHECK_OK(uakd_dataset_load_bop(test_shared("data/lmo"), "test", NULL, &ds));
    if (!ds) return;
    double worst = 0;
    for (int o = 0; o < ds->num_objects; o++) {
        char rel[64];
        snprintf(rel, sizeof rel, "data/lmo/models_eval/obj_%06d.ply", ds->objects[o].obj_id);
        uakd_mesh mesh = {0};
        CHECK_OK(uakd_mesh_read_ply(test_shared(rel), &mesh));
        if (!mesh.xyz) continue;
        double *xyz = malloc(sizeof(double) * 3 * (size_t)mesh.num_vertices);
        for (int k = 0; k < 3 * mesh.num_vertices; k++) xyz[k] = mesh.xyz[k];
        for (int i = 0; i < ds->num_instances; i++) {
            const uakd_instance *in = &ds->instances[i];
            if (in->object != o) continue;
            double mb[4], cb[4];
            project_box(in, xyz, mesh.num_vertices, 3, mb);
            project_box(in, &ds->objects[o].keypoints[0][0], 8, 3, cb);
            const double *b = in->bbox_obj;
            if (b[2] < 0) continue; /* BOP writes -1s for an object with no valid pixel */
            double ref[4] = {b[0], b[1], b[0] + b[2], b[1] + b[3]};
            for (int k = 0; k < 4; k++) {
                CHECK_NEAR(mb[k], ref[k], 2.0);
                worst = fmax(worst, fabs(mb[k] - ref[k]));
            }
            CHECK(cb[0] <= ref[0] + 2 && cb[1] <= ref[1] + 2);
            CHECK(cb[2] >= ref[2] - 2 && cb[3] >= ref[3] - 2);
        }
        free(xyz);
        uakd_mesh_free(&mesh);
    }
    fprintf(stderr, "     projected eval mesh vs bbox_obj: max difference %.2f px\n", worst);
    CHECK(worst > 0.0);
    uakd_dataset_free(ds);
}

static void test_bop_selection(void) {
    uakd_dataset *ds = NULL;
    int ids[1] = {8};
    uakd_bop_options opt = {ids, 1, 0};
    CHECK_OK(uakd_dataset_load_bop(test_shared("data/lmo"), "test", &opt, &ds));
    if (ds) {
        CHECK(ds->num_instances == 8);
        for (int i = 0; i < ds->num_instances; i++) CHECK(ds->instances[i].obj_id == 8);
        uakd_dataset_free(ds);
    }
    uakd_bop_options vis = {NULL, 0, 0.5};
    CHECK_OK(uakd_dataset_load_bop(test_shared("data/lmo"), "test", &vis, &ds));
    if (ds) {
        CHECK(ds->num_instances == 56);
        uakd_dataset_free(ds);
    }
    int bad[1] = {2};
    uakd_bop_options none = {bad, 1, 0};
    CHECK_FAILS(uakd_dataset_load_bop(test_shared("data/lmo"), "test", &none, &ds), UAKD_EINVAL);
    CHECK_FAILS(uakd_dataset_load_bop(test_shared("data/lmo"), "train", NULL, &ds), UAKD_EIO);
    CHECK(ds == NULL);
}

static void test_splits(void) {
    uakd_dataset *ds = NULL;
    CHECK_OK(uakd_dataset_load_bop(test_shared("data/lmo"), "test", NULL, &ds));
    if (!ds) return;
    int *a = NULL, *b = NULL, na = 0, nb = 0, *a2 = NULL, na2 = 0;
    CHECK_OK(uakd_split_by_ratio(ds, 0.25, 7, &a, &na, &b, &nb));
    CHECK(na + nb == ds->num_instances);
    /* whole images: 2 of the 8 images are selected */
    int images = 0;
    for (int i = 0; i < na; i++) images += i == 0 || ds->instances[a[i]].image_id != ds->instances[a[i - 1]].image_id;
    CHECK(images == 2);
    for (int i = 0; i < na; i++)
        for (int j = 0; j < nb; j++) CHECK(ds->instances[a[i]].image_id != ds->instances[b[j]].image_id);
    CHECK_OK(uakd_split_by_ratio(ds, 0.25, 7, &a2, &na2, NULL, NULL));
    CHECK(na2 == na && memcmp(a, a2, sizeof(int) * (size_t)na) == 0);
    free(a2);
    CHECK_OK(uakd_split_by_ratio(ds, 0.5, 7, &a2, &na2, NULL, NULL));
    /* stability: the 25% images are among the 50% ones (same hash order) */
    for (int i = 0; i < na; i++) {
        int found = 0;
        for (int j = 0; j < na2; j++) found |= a2[j] == a[i];
        CHECK(found);
    }
    free(a);
    free(a2);
    free(b);
    CHECK_FAILS(uakd_split_by_ratio(ds, 1.5, 7, &a, &na, NULL, NULL), UAKD_EINVAL);

    const char *list = test_tmp("split.txt");
    FILE *f = fopen(list, "w");
    fprintf(f, "# two images\n2 72\n\n000002/000819\n");
    fclose(f);
    CHECK_OK(uakd_split_from_list(ds, list, &a, &na));
    int expect = 0;
    for (int i = 0; i < ds->num_instances; i++) expect += ds->instances[i].image_id == 72 || ds->instances[i].image_id == 819;
    CHECK(na == expect && na > 2);
    for (int i = 0; i < na; i++) CHECK(ds->instances[a[i]].image_id == 72 || ds->instances[a[i]].image_id == 819);
    free(a);
    f = fopen(list, "w");
    fprintf(f, "153\n");
    fclose(f);
    CHECK_OK(uakd_split_from_list(ds, list, &a, &na));
    CHECK(na >= 1 && ds->instances[a[0]].image_id == 153);
    free(a);
    f = fopen(list, "w");
    fprintf(f, "2 73\n"); /* annotated, but no image file */
    fclose(f);
    CHECK_FAILS(uakd_split_from_list(ds, list, &a, &na), UAKD_EINVAL);
    f = fopen(list, "w");
    fprintf(f, "2 x72\n");
    fclose(f);
    CHECK_FAILS(uakd_split_from_list(ds, list, &a, &na), UAKD_EFORMAT);
    uakd_dataset_free(ds);
}

/* ---- a tiny BOP dataset in the scratch directory, rewritten file by file to break it ---- */

static const char *GOOD_CAMERA = "{\"fx\": 500, \"fy\": 500, \"cx\": 16, \"cy\": 12, \"width\": 32, \"height\": 24}";
static const char *GOOD_INFO =
    "{\"3\": {\"diameter\": 100, \"min_x\": -10, \"min_y\": -20, \"min_z\": -30, \"size_x\": 20, \"size_y\": 40, "
    "\"size_z\": 60, \"symmetries_continuous\": [{\"axis\": [0, 0, 1], \"offset\": [0, 0, 0]}]}}";
static const char *GOOD_GT =
    "{\"0\": [{\"cam_R_m2c\": [1, 0, 0, 0, 1, 0, 0, 0, 1], \"cam_t_m2c\": [0, 0, 1000], \"obj_id\": 3}],"
    " \"5\": [{\"cam_R_m2c\": [1, 0, 0, 0, 1, 0, 0, 0, 1], \"cam_t_m2c\": [0, 0, 1000], \"obj_id\": 3}]}";
static const char *GOOD_GT_INFO =
    "{\"0\": [{\"bbox_obj\": [1, 2, 3, 4], \"bbox_visib\": [1, 2, 3, 4], \"visib_fract\": 1.0}],"
    " \"5\": [{\"bbox_obj\": [1, 2, 3, 4], \"bbox_visib\": [1, 2, 3, 4], \"visib_fract\": 1.0}]}";
static const char *GOOD_SCENE_CAM =
    "{\"0\": {\"cam_K\": [500, 0, 16, 0, 500, 12, 0, 0, 1]}, \"5\": {\"cam_K\": [500, 0, 16, 0, 500, 12, 0, 0, 1]}}";

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    if (!f) return;
    fputs(text, f);
    fclose(f);
}

static const char *make_tiny_bop(void) {
    const char *root = test_tmp("tinybop");
    char p[1024];
    mkdir(root, 0755);
    snprintf(p, sizeof p, "%s/models", root), mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/test", root), mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/test/000001", root), mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/test/000001/rgb", root), mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/test/000001/mask_visib", root), mkdir(p, 0755);
    uakd_image im;
    uakd_image_alloc(&im, 32, 24, 3);
    snprintf(p, sizeof p, "%s/test/000001/rgb/000000.png", root);
    uakd_image_write(p, &im, 0);
    uakd_image_free(&im);
    uakd_image_alloc(&im, 32, 24, 1);
    snprintf(p, sizeof p, "%s/test/000001/mask_visib/000000_000000.png", root);
    uakd_image_write(p, &im, 0);
    uakd_image_free(&im);
    return root;
}

static void put(const char *root, const char *rel, const char *text) {
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", root, rel);
    write_text(p, text);
}

static void reset_tiny(const char *root) {
    put(root, "camera.json", GOOD_CAMERA);
    put(root, "models/models_info.json", GOOD_INFO);
    put(root, "test/000001/scene_gt.json", GOOD_GT);
    put(root, "test/000001/scene_gt_info.json", GOOD_GT_INFO);
    put(root, "test/000001/scene_camera.json", GOOD_SCENE_CAM);
}

/* Loading must fail with EFORMAT and a message naming the file and the field. */
static void expect_broken(const char *root, const char *rel, const char *text, const char *field) {
    reset_tiny(root);
    put(root, rel, text);
    uakd_dataset *ds = NULL;
    CHECK_FAILS(uakd_dataset_load_bop(root, "test", NULL, &ds), UAKD_EFORMAT);
    CHECK(ds == NULL);
    const char *base = strrchr(rel, '/') ? strrchr(rel, '/') + 1 : rel;
    CHECK_MSG(strstr(uakd_last_error(), base) != NULL, "message \"%s\" lacks %s", uakd_last_error(), base);
    if (field) CHECK_MSG(strstr(uakd_last_error(), field) != NULL, "message \"%s\" lacks %s", uakd_last_error(), field);
}

static void test_bop_malformed(void) {
    const char *root = make_tiny_bop();
    reset_tiny(root);
    uakd_dataset *ds = NULL;
    CHECK_OK(uakd_dataset_load_bop(root, "test", NULL, &ds));
    if (ds) {
        CHECK(ds->num_instances == 1 && ds->num_missing_images == 1);
        CHECK(ds->instances[0].mask_path && ends_with(ds->instances[0].mask_path, "mask_visib/000000_000000.png"));
        CHECK(ds->objects[0].num_sym_continuous == 1 && ds->objects[0].sym_continuous[2] == 1);
        CHECK(ds->max_rot_moved < 1e-15);
        uakd_dataset_free(ds);
    }
    expect_broken(root, "camera.json", "{\"width\": 32, \"height\": ", NULL);
    expect_broken(root, "camera.json", "{\"width\": 32}", "height");
    expect_broken(root, "camera.json", "{\"width\": \"32\", \"height\": 24}", "width");
    expect_broken(root, "models/models_info.json", "{\"3\": {\"diameter\": 100}}", "min_x");
    expect_broken(root, "models/models_info.json", "{\"x3\": {}}", "x3");
    expect_broken(root, "models/models_info.json",
                  "{\"3\": {\"diameter\": 100, \"min_x\": 0, \"min_y\": 0, \"min_z\": 0, \"size_x\": 1, \"size_y\": 1, "
                  "\"size_z\": 1, \"symmetries_discrete\": [[1, 0, 0]]}}",
                  "symmetries_discrete");
    expect_broken(root, "test/000001/scene_gt.json",
                  "{\"0\": [{\"cam_R_m2c\": [1, 0, 0, 0, 1, 0, 0, 0], \"cam_t_m2c\": [0, 0, 1], \"obj_id\": 3}],"
                  " \"5\": []}",
                  "cam_R_m2c");
    expect_broken(root, "test/000001/scene_gt.json",
                  "{\"0\": [{\"cam_R_m2c\": [1, 0, 0, 0, 1, 0, 0, 0, 1], \"obj_id\": 3}], \"5\": []}", "cam_t_m2c");
    expect_broken(root, "test/000001/scene_gt.json",
                  "{\"0\": [{\"cam_R_m2c\": [1, 0, 0, 0, 1, 0, 0, 0, 1], \"cam_t_m2c\": [0, 1e999, 1], \"obj_id\": 3}], "
                  "\"5\": []}",
                  "cam_t_m2c");
    expect_broken(root, "test/000001/scene_gt.json",
                  "{\"0\": [{\"cam_R_m2c\": [1, 0, 0, 0, 1, 0, 0, 0, 1], \"cam_t_m2c\": [0, 0, 1], \"obj_id\": \"3\"}], "
                  "\"5\": []}",
                  "obj_id");
    expect_broken(root, "test/000001/scene_gt.json",
                  "{\"0\": [{\"cam_R_m2c\": [1, 0, 0, 0, 1, 0, 0, 0, 1], \"cam_t_m2c\": [0, 0, 1], \"obj_id\": 4}], "
                  "\"5\": []}",
                  "obj_id 4");
    expect_broken(root, "test/000001/scene_gt.json",
                  "{\"0\": [{\"cam_R_m2c\": [2, 0, 0, 0, 1, 0, 0, 0, 1], \"cam_t_m2c\": [0, 0, 1], \"obj_id\": 3}], "
                  "\"5\": []}",
                  "orthonormal");
    expect_broken(root, "test/000001/scene_gt.json", "[1, 2]", NULL);
    expect_broken(root, "test/000001/scene_gt_info.json",
                  "{\"0\": [{\"bbox_obj\": [1, 2, 3, 4], \"bbox_visib\": [1, 2, 3, 4]}], \"5\": []}", "visib_fract");
    expect_broken(root, "test/000001/scene_gt_info.json", "{\"5\": []}", "image 0");
    expect_broken(root, "test/000001/scene_gt_info.json", "{\"0\": [], \"5\": []}", "image 0");
    expect_broken(root, "test/000001/scene_camera.json", "{\"0\": {\"cam_K\": [500, 0, 16]}, \"5\": {}}", "cam_K");
    expect_broken(root, "test/000001/scene_camera.json", "{\"0\": {\"cam_K\": null}}", "cam_K");
    reset_tiny(root);
}

/* ---- SPEED+ ---- */

#define SP_ROOT "tests/data/dataset/speedplus"

static void test_speedplus_convention(void) {
    uakd_dataset *ds = NULL;
    CHECK_OK(uakd_dataset_load_speedplus(SP_ROOT, "synthetic", "train",
                                         test_shared("data/speedplus/tangoPoints.transcribed.csv"), &ds));
    if (!ds) return;
    CHECK(ds->width == 1920 && ds->height == 1200);
    CHECK(ds->num_instances == 2 && ds->num_missing_images == 1);
    CHECK_NEAR(ds->dist[0], -0.22383016606510672, 0);
    CHECK_NEAR(ds->dist[4], -0.13124227429077406, 0);
    const uakd_object_info *o = &ds->objects[0];
    CHECK(o->num_keypoints == 11);
    CHECK_NEAR(o->keypoints[10][1], -0.579, 0);
    const uakd_instance *in = &ds->instances[0];
    CHECK(ends_with(in->image_path, "synthetic/images/img000001.jpg"));
    CHECK_NEAR(in->K[0], 2988.5795163815555, 0);
    CHECK_NEAR(in->K[5], 600, 0);
    /* q = (cos 45, 0, 0, sin 45): 90 degrees about z, so R X = (-X_y, X_x, X_z). Keypoint 0
     * (-0.37, -0.385, 0.3215) -> camera (0.385 + 0.1, -0.37 - 0.2, 0.3215 + 5) = (0.485, -0.57, 5.3215). */
    double xc[3];
    uakd_pose_apply(&in->pose, o->keypoints[0], xc);
    CHECK_NEAR(xc[0], 0.485, 1e-12);
    CHECK_NEAR(xc[1], -0.57, 1e-12);
    CHECK_NEAR(xc[2], 5.3215, 1e-12);
    /* with distortion, against cv2.projectPoints (values printed by scripts/ref_dataset.py) */
    uakd_camera cam = {in->K[0], in->K[4], in->K[2], in->K[5], {0}};
    memcpy(cam.dist, ds->dist, sizeof cam.dist);
    double uv[2];
    CHECK(uakd_camera_project(&cam, &in->pose, o->keypoints[0], uv));
    CHECK_NEAR(uv[0], 1231.242428, 1e-5);
    CHECK_NEAR(uv[1], 281.191599, 1e-5);
    /* the box of the 11 projected keypoints (OpenCV) */
    CHECK_NEAR(in->bbox_obj[0], 740.155161, 1e-5);
    CHECK_NEAR(in->bbox_obj[1], 179.653159, 1e-5);
    CHECK_NEAR(in->bbox_obj[2], 604.792233, 1e-5);
    CHECK_NEAR(in->bbox_obj[3], 614.634204, 1e-5);
    in = &ds->instances[1];
    CHECK_NEAR(in->bbox_obj[0], 844.143332, 1e-5);
    CHECK_NEAR(in->bbox_obj[1], 496.967158, 1e-5);
    CHECK_NEAR(in->bbox_obj[2], 124.294068, 1e-5);
    CHECK_NEAR(in->bbox_obj[3], 381.538932, 1e-5);
    CHECK(o->diameter > 1.0 && o->diameter < 2.0);
    uakd_dataset_free(ds);
}

static void test_speedplus_malformed(void) {
    static const char *bad[] = {"bad_json", "bad_missing", "bad_length", "bad_type", "bad_quat", "bad_nonfinite",
                                "bad_notlist"};
    static const char *field[] = {"malformed", "r_Vo2To_vbs_true", "q_vbs2tango_true", "filename",
                                  "q_vbs2tango_true", "r_Vo2To_vbs_true", "array"};
    const char *csv = test_shared("data/speedplus/tangoPoints.transcribed.csv");
    for (int i = 0; i < 7; i++) {
        uakd_dataset *ds = NULL;
        CHECK_FAILS(uakd_dataset_load_speedplus(SP_ROOT, "synthetic", bad[i], csv, &ds), UAKD_EFORMAT);
        CHECK(ds == NULL);
        CHECK_MSG(strstr(uakd_last_error(), bad[i]) && strstr(uakd_last_error(), field[i]), "%s: \"%s\"", bad[i],
                  uakd_last_error());
    }
    uakd_dataset *ds = NULL;
    CHECK_FAILS(uakd_dataset_load_speedplus(SP_ROOT, "lightbox", "test", csv, &ds), UAKD_EIO);
    /* keypoint CSV problems */
    const char *p = test_tmp("kp.csv");
    double kp[UAKD_MAX_KEYPOINTS][3];
    int n;
    write_text(p, "index,x,y,z\n0,1,2,3\n2,1,2,3\n");
    CHECK_FAILS(uakd_keypoints_read_csv(p, kp, &n), UAKD_EFORMAT);
    write_text(p, "index,x,y,z\n0,1,2\n");
    CHECK_FAILS(uakd_keypoints_read_csv(p, kp, &n), UAKD_EFORMAT);
    write_text(p, "# only a comment\n");
    CHECK_FAILS(uakd_keypoints_read_csv(p, kp, &n), UAKD_EFORMAT);
    write_text(p, "0, 1.5, -2, 3e-1\n1,0,0,0\n");
    CHECK_OK(uakd_keypoints_read_csv(p, kp, &n));
    CHECK(n == 2 && kp[0][0] == 1.5 && kp[0][2] == 0.3);
}

int main(void) {
    RUN(test_bop_lmo_loads);
    RUN(test_bop_lmo_boxes_match_projection);
    RUN(test_bop_selection);
    RUN(test_splits);
    RUN(test_bop_malformed);
    RUN(test_speedplus_convention);
    RUN(test_speedplus_malformed);
    return TEST_END();
}
