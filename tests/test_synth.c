/* Tests of synthetic data: the Tango mesh against the official keypoints file, pose sampling,
 * masks against projected meshes, and BOP / SPEED+ datasets written to disk and read back with
 * cJSON (poses, boxes, pixel counts, masks, the SPEED+ quaternion convention) and with the
 * dataset loaders, reuse of a finished dataset, thread-count independence, interruption and bad
 * settings. */
#include <cjson/cJSON.h>
#include <time.h>

#include "test.h"
#include "test_json.h"
#include "uakd/dataset.h"
#include "uakd/image.h"
#include "uakd/synth.h"

/* ---- helpers ---- */

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    if (s && fread(s, 1, (size_t)n, f) != (size_t)n) {
        free(s);
        s = NULL;
    }
    if (s) s[n] = '\0';
    fclose(f);
    return s;
}


static int read_numbers(const cJSON *arr, double *out, int n) {
    if (!cJSON_IsArray(arr) || cJSON_GetArraySize(arr) != n) return 0;
    int i = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, arr) out[i++] = e->valuedouble;
    return 1;
}

/* Distance from (u, v) to the nearest pixel with ids == id (large when none). */
static double dist_to_mask(const uint16_t *ids, int w, int h, uint16_t id, double u, double v) {
    double best = 1e9;
    for (int j = 0; j < h; j++)
        for (int i = 0; i < w; i++)
            if (ids[j * w + i] == id) best = fmin(best, hypot(i - u, j - v));
    return best;
}

/* A box [-a, a] x [-b, b] x [-c, c] (mm) with colours, as PLY text. */
static void write_box_ply(const char *path, double a, double b, double c) {
    FILE *f = fopen(path, "w");
    if (!f) return;
    fprintf(f, "ply\nformat ascii 1.0\nelement vertex 8\nproperty float x\nproperty float y\nproperty float z\n"
               "property uchar red\nproperty uchar green\nproperty uchar blue\nelement face 6\n"
               "property list uchar int vertex_indices\nend_header\n");
    for (int k = 0; k < 8; k++)
        fprintf(f, "%g %g %g %d %d %d\n", (k & 4) ? a : -a, (k & 2) ? b : -b, (k & 1) ? c : -c, 60 + 40 * (k & 4),
                60 + 80 * (k & 2), 60 + 150 * (k & 1));
    static const int q[6][4] = {{0, 1, 3, 2}, {4, 6, 7, 5}, {0, 4, 5, 1}, {2, 3, 7, 6}, {0, 2, 6, 4}, {1, 5, 7, 3}};
    for (int i = 0; i < 6; i++) fprintf(f, "4 %d %d %d %d\n", q[i][0], q[i][1], q[i][2], q[i][3]);
    fclose(f);
}

/* A BOP configuration of one box mesh (write_box_ply) written to *ply; c->mesh_paths points at
 * ply, which must outlive c. */
static void box_config(uakd_synth_config *c, const char **ply, double a, double b, double cc) {
    write_box_ply(*ply, a, b, cc);
    uakd_synth_config_default(c, UAKD_SYNTH_BOP);
    c->mesh_paths = ply;
    c->num_meshes = 1;
}

/* The objects of a configuration, a renderer of them and a frame to render into. */
typedef struct rig {
    uakd_synth_object *objs;
    int n;
    uakd_synth_renderer *r;
    uakd_synth_frame f;
} rig;

static void rig_close(rig *g) {
    uakd_synth_frame_free(&g->f);
    uakd_synth_renderer_free(g->r);
    uakd_synth_objects_free(g->objs, g->n);
}

/* Loads the objects and starts the renderer (both CHECKed); 1 when both worked, else 0 with
 * nothing held. */
static int rig_open(rig *g, const uakd_synth_config *c) {
    memset(g, 0, sizeof *g);
    CHECK_OK(uakd_synth_objects_load(c, &g->objs, &g->n));
    if (g->objs) CHECK_OK(uakd_synth_renderer_new(c, g->objs, g->n, &g->r));
    if (g->r) return 1;
    rig_close(g);
    return 0;
}

/* ---- the Tango ---- */

static void test_tango_keypoints_match_official_file(void) {
    FILE *f = fopen(test_shared("data/speedplus/tangoPoints.transcribed.csv"), "r");
    CHECK(f != NULL);
    if (!f) return;
    uakd_mesh m;
    CHECK_OK(uakd_tango_mesh(&m));
    char line[256];
    int rows = 0;
    while (fgets(line, sizeof line, f)) {
        int idx;
        double x, y, z;
        if (sscanf(line, "%d,%lf,%lf,%lf", &idx, &x, &y, &z) != 4) continue; /* comment and header lines */
        CHECK(idx == rows);
        if (idx < 0 || idx > 10) break;
        rows++;
        CHECK(uakd_tango_keypoints[idx][0] == x && uakd_tango_keypoints[idx][1] == y && uakd_tango_keypoints[idx][2] == z);
        int found = 0;
        for (int v = 0; v < m.num_vertices; v++)
            found |= m.xyz[3 * v] == (float)x && m.xyz[3 * v + 1] == (float)y && m.xyz[3 * v + 2] == (float)z;
        CHECK_MSG(found, "keypoint %d (%g, %g, %g) is not a mesh vertex", idx, x, y, z);
    }
    fclose(f);
    CHECK(rows == 11);
    /* the keypoints span the mesh: its box exceeds theirs by at most the rods' half-diagonal */
    double lo[3], hi[3], klo[3] = {1e9, 1e9, 1e9}, khi[3] = {-1e9, -1e9, -1e9};
    CHECK_OK(uakd_mesh_bbox(&m, lo, hi));
    for (int i = 0; i < 11; i++)
        for (int k = 0; k < 3; k++) {
            klo[k] = fmin(klo[k], uakd_tango_keypoints[i][k]);
            khi[k] = fmax(khi[k], uakd_tango_keypoints[i][k]);
        }
    for (int k = 0; k < 3; k++) {
        CHECK(lo[k] <= klo[k] + 1e-7 && lo[k] >= klo[k] - 0.0142);
        CHECK(hi[k] >= khi[k] - 1e-7 && hi[k] <= khi[k] + 0.0142);
    }
    uakd_mesh_free(&m);
}

/* ---- poses ---- */

static void test_random_rotation_is_uniform(void) {
    uakd_rng r;
    uakd_rng_seed(&r, 11);
    enum { N = 20000 };
    double mean[9] = {0}, sq[9] = {0};
    for (int k = 0; k < N; k++) {
        double R[9], Rt[9], I[9];
        uakd_random_rotation(&r, R);
        uakd_mat3_transpose(R, Rt);
        uakd_mat3_mul(R, Rt, I);
        for (int i = 0; i < 9; i++) CHECK_NEAR(I[i], i % 4 == 0, 1e-12);
        CHECK_NEAR(uakd_mat3_det(R), 1, 1e-12);
        for (int i = 0; i < 9; i++) {
            mean[i] += R[i] / N;
            sq[i] += R[i] * R[i] / N;
        }
    }
    /* Haar measure: E[R_ij] = 0, E[R_ij^2] = 1/3 (std of an entry 1/sqrt(3); 5 sigma bounds) */
    for (int i = 0; i < 9; i++) {
        CHECK_NEAR(mean[i], 0, 5 * 0.577 / sqrt(N));
        CHECK_NEAR(sq[i], 1.0 / 3, 5 * 0.3 / sqrt(N));
    }
}

static void test_sampled_poses_keep_the_box_in_view(void) {
    uakd_synth_config c;
    uakd_synth_config_default(&c, UAKD_SYNTH_SPEEDPLUS);
    c.width = 480;
    c.height = 300;
    uakd_camera cam;
    uakd_synth_camera(&c, &cam);
    CHECK_NEAR(cam.fx, 2988.5795163815555 / 4, 1e-9);
    CHECK_NEAR(cam.cx, (960 + 0.5) / 4 - 0.5, 1e-12);
    double lo[3] = {-0.5427, -0.579, 0}, hi[3] = {0.5427, 0.4877, 0.3215}, corners[24];
    uakd_bbox_corners(lo, hi, corners);
    uakd_rng r;
    uakd_rng_seed(&r, 5);
    for (int k = 0; k < 200; k++) {
        uakd_pose p;
        CHECK_OK(uakd_synth_sample_pose(&cam, 480, 300, lo, hi, 3, 10, 2, &r, &p));
        double cen[3] = {0.5 * (lo[0] + hi[0]), 0.5 * (lo[1] + hi[1]), 0.5 * (lo[2] + hi[2])}, x[3];
        uakd_pose_apply(&p, cen, x);
        CHECK(x[2] >= 3 - 1e-9 && x[2] <= 10 + 1e-9);
        for (int i = 0; i < 8; i++) {
            double uv[2];
            CHECK(uakd_camera_project(&cam, &p, corners + 3 * i, uv));
            CHECK(uv[0] >= 2 && uv[0] <= 477 && uv[1] >= 2 && uv[1] <= 297);
        }
    }
    uakd_pose p;
    CHECK_FAILS(uakd_synth_sample_pose(&cam, 480, 300, lo, hi, 0.2, 0.3, 0, &r, &p), UAKD_EINVAL);
}

/* ---- frames ---- */

/* Frames of the Tango through the SPEED+ lens: every keypoint projects (with distortion) onto the
 * spacecraft's mask, within 1.5 px (corners lie on the silhouette's edge). */
static void test_tango_frames_keypoints_on_mask(void) {
    uakd_synth_config c;
    uakd_synth_config_default(&c, UAKD_SYNTH_SPEEDPLUS);
    c.width = 480;
    c.height = 300;
    c.depth_min = 3;
    c.depth_max = 6;
    rig rg;
    if (!rig_open(&rg, &c)) return;
    CHECK(rg.n == 1);
    uakd_camera cam;
    uakd_synth_camera(&c, &cam);
    uakd_rng rng;
    uakd_rng_seed(&rng, 21);
    double worst = 0;
    for (int k = 0; k < 6; k++) {
        CHECK_OK(uakd_synth_render_frame(rg.r, &rng, &rg.f));
        CHECK(rg.f.num_instances == 1);
        CHECK(rg.f.inst[0].px_count_visib == rg.f.inst[0].px_count_all && rg.f.inst[0].px_count_all > 100);
        for (int i = 0; i < 11; i++) {
            double uv[2];
            CHECK(uakd_camera_project(&cam, &rg.f.inst[0].pose, uakd_tango_keypoints[i], uv));
            worst = fmax(worst, dist_to_mask(rg.f.visib, 480, 300, 1, uv[0], uv[1]));
        }
    }
    CHECK_MSG(worst <= 1.5, "a keypoint is %.2f px off the mask", worst);
    rig_close(&rg);
}

static double hull_area(double (*p)[2], int n) {
    /* Andrew's monotone chain, then the shoelace formula */
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && (p[j][0] < p[j - 1][0] || (p[j][0] == p[j - 1][0] && p[j][1] < p[j - 1][1])); j--) {
            double t0 = p[j][0], t1 = p[j][1];
            p[j][0] = p[j - 1][0];
            p[j][1] = p[j - 1][1];
            p[j - 1][0] = t0;
            p[j - 1][1] = t1;
        }
    double h[32][2];
    int k = 0;
    for (int pass = 0; pass < 2; pass++) {
        int start = k;
        for (int ii = 0; ii < n; ii++) {
            int i = pass ? n - 1 - ii : ii;
            while (k >= start + 2 && (h[k - 1][0] - h[k - 2][0]) * (p[i][1] - h[k - 2][1]) -
                                             (h[k - 1][1] - h[k - 2][1]) * (p[i][0] - h[k - 2][0]) <= 0)
                k--;
            h[k][0] = p[i][0];
            h[k][1] = p[i][1];
            k++;
        }
        k--;
    }
    double a = 0;
    for (int i = 0; i < k; i++) a += h[i][0] * h[(i + 1) % k][1] - h[(i + 1) % k][0] * h[i][1];
    return fabs(a) / 2;
}

/* A convex box: its projected vertices lie on the mask (within 2 px: no pixel centre may fall in
 * the tip of an acute silhouette corner), and the mask area equals the area of the
 * projected hull within the boundary pixels (perimeter / 2 allows for half a pixel all around). */
static void test_box_mask_matches_projection(void) {
    const char *ply = test_tmp("synth_box.ply");
    uakd_synth_config c;
    box_config(&c, &ply, 40, 25, 30);
    c.width = 320;
    c.height = 240;
    c.depth_min = 300;
    c.depth_max = 500;
    rig rg;
    if (!rig_open(&rg, &c)) return;
    CHECK(rg.n == 1);
    CHECK_NEAR(rg.objs[0].diameter, 2 * sqrt(40 * 40 + 25 * 25 + 30 * 30), 1e-4);
    uakd_camera cam;
    uakd_synth_camera(&c, &cam);
    uakd_rng rng;
    uakd_rng_seed(&rng, 8);
    for (int k = 0; k < 5; k++) {
        CHECK_OK(uakd_synth_render_frame(rg.r, &rng, &rg.f));
        double pts[8][2], corners[24];
        uakd_bbox_corners(rg.objs[0].min, rg.objs[0].max, corners);
        double per = 0;
        for (int i = 0; i < 8; i++) {
            CHECK(uakd_camera_project(&cam, &rg.f.inst[0].pose, corners + 3 * i, pts[i]));
            CHECK(dist_to_mask(rg.f.visib, 320, 240, 1, pts[i][0], pts[i][1]) <= 2.0);
        }
        double area = hull_area(pts, 8);
        for (int i = 0; i < 8; i++) per = fmax(per, hypot(pts[i][0] - pts[0][0], pts[i][1] - pts[0][1]));
        CHECK_MSG(fabs(rg.f.inst[0].px_count_all - area) <= 2 * per + 4, "mask %ld px vs projected hull %.1f px",
                  rg.f.inst[0].px_count_all, area);
        /* bbox_obj spans the projected corners (same 2 px) */
        double lo0 = 1e9, hi0 = -1e9;
        for (int i = 0; i < 8; i++) {
            lo0 = fmin(lo0, pts[i][0]);
            hi0 = fmax(hi0, pts[i][0]);
        }
        CHECK_NEAR(rg.f.inst[0].bbox_obj[0], lo0, 2.0);
        CHECK_NEAR(rg.f.inst[0].bbox_obj[0] + rg.f.inst[0].bbox_obj[2] - 1, hi0, 2.0);
    }
    /* several instances with occluders: visible pixels partition the union of the objects */
    uakd_synth_renderer_free(rg.r);
    c.per_image = 3;
    c.max_occluders = 3;
    CHECK_OK(uakd_synth_renderer_new(&c, rg.objs, rg.n, &rg.r));
    uakd_synth_frame_free(&rg.f);
    for (int k = 0; k < 4; k++) {
        CHECK_OK(uakd_synth_render_frame(rg.r, &rng, &rg.f));
        long nonzero = 0, sum = 0;
        for (int p = 0; p < 320 * 240; p++) nonzero += rg.f.visib[p] != 0;
        for (int i = 0; i < 3; i++) {
            sum += rg.f.inst[i].px_count_visib;
            CHECK(rg.f.inst[i].px_count_visib <= rg.f.inst[i].px_count_all);
        }
        CHECK(sum == nonzero);
    }
    rig_close(&rg);
}

/* ---- datasets on disk ---- */

static int stop_after_two(long done, long total, void *user) {
    (void)total;
    (void)user;
    return done >= 2;
}

/* BOP dataset: scene_gt / scene_gt_info / masks read back equal the frames re-rendered from the
 * same seed (image i uses rng_split(seed, i)); train/test split sizes; reuse; thread independence. */
static void remove_dirs(const char *a, const char *b, const char *c) {
    char cmd[3200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' '%s' '%s'", a, b, c);
    CHECK(system(cmd) == 0);
}

static void test_bop_round_trip(void) {
    remove_dirs(test_tmp("synth_bop"), test_tmp("synth_bop_1thread"), test_tmp("synth_bop_stopped"));
    const char *ply = test_tmp("obj_000007.ply");
    uakd_synth_config c;
    box_config(&c, &ply, 30, 20, 25);
    c.out_dir = test_tmp("synth_bop");
    c.count = 6;
    c.val_fraction = 0.34;
    c.width = 160;
    c.height = 120;
    c.depth_min = 300;
    c.depth_max = 500;
    c.max_occluders = 2;
    c.seed = 42;
    c.threads = 2;
    uakd_synth_result res;
    CHECK_OK(uakd_synth_run(&c, NULL, NULL, &res));
    CHECK(res.images == 6 && !res.reused);

    rig rg;
    if (!rig_open(&rg, &c)) return;
    uakd_rng base;
    uakd_rng_seed(&base, 42);
    char path[1024];
    cJSON *gt[2], *info[2], *cams[2];
    const char *splits[2] = {"train", "test"};
    for (int s = 0; s < 2; s++) {
        snprintf(path, sizeof path, "%s/%s/000000/scene_gt.json", c.out_dir, splits[s]);
        gt[s] = test_read_json(path);
        snprintf(path, sizeof path, "%s/%s/000000/scene_gt_info.json", c.out_dir, splits[s]);
        info[s] = test_read_json(path);
        snprintf(path, sizeof path, "%s/%s/000000/scene_camera.json", c.out_dir, splits[s]);
        cams[s] = test_read_json(path);
        CHECK(gt[s] && info[s] && cams[s]);
    }
    CHECK(cJSON_GetArraySize(gt[0]) == 4 && cJSON_GetArraySize(gt[1]) == 2);
    uakd_camera cam;
    uakd_synth_camera(&c, &cam);
    for (long i = 0; i < 6; i++) {
        uakd_rng rng;
        uakd_rng_split(&base, (uint64_t)i, &rng);
        CHECK_OK(uakd_synth_render_frame(rg.r, &rng, &rg.f));
        int s = i < 4 ? 0 : 1;
        long im = s ? i - 4 : i;
        char key[16];
        snprintf(key, sizeof key, "%ld", im);
        const cJSON *g = cJSON_GetArrayItem(cJSON_GetObjectItem(gt[s], key), 0);
        const cJSON *fi = cJSON_GetArrayItem(cJSON_GetObjectItem(info[s], key), 0);
        const cJSON *cj = cJSON_GetObjectItem(cams[s], key);
        double R[9], t[3], K[9], bo[4], bv[4];
        CHECK(read_numbers(cJSON_GetObjectItem(g, "cam_R_m2c"), R, 9));
        CHECK(read_numbers(cJSON_GetObjectItem(g, "cam_t_m2c"), t, 3));
        CHECK(read_numbers(cJSON_GetObjectItem(cj, "cam_K"), K, 9));
        CHECK(read_numbers(cJSON_GetObjectItem(fi, "bbox_obj"), bo, 4));
        CHECK(read_numbers(cJSON_GetObjectItem(fi, "bbox_visib"), bv, 4));
        CHECK(cJSON_GetObjectItem(g, "obj_id")->valueint == 7);
        for (int k = 0; k < 9; k++) CHECK(R[k] == rg.f.inst[0].pose.R[k]);
        for (int k = 0; k < 3; k++) CHECK(t[k] == rg.f.inst[0].pose.t[k]);
        CHECK(K[0] == cam.fx && K[2] == cam.cx && K[4] == cam.fy && K[5] == cam.cy && K[8] == 1);
        for (int k = 0; k < 4; k++) CHECK(bo[k] == rg.f.inst[0].bbox_obj[k] && bv[k] == rg.f.inst[0].bbox_visib[k]);
        CHECK(cJSON_GetObjectItem(fi, "px_count_all")->valuedouble == rg.f.inst[0].px_count_all);
        CHECK(cJSON_GetObjectItem(fi, "px_count_visib")->valuedouble == rg.f.inst[0].px_count_visib);
        CHECK_NEAR(cJSON_GetObjectItem(fi, "visib_fract")->valuedouble,
                   (double)rg.f.inst[0].px_count_visib / rg.f.inst[0].px_count_all, 1e-15);
        /* the mask file equals the visible map; the JPEG is close to the rendered colours */
        uakd_image mask = {0}, rgb = {0};
        snprintf(path, sizeof path, "%s/%s/000000/mask_visib/%06ld_000000.png", c.out_dir, splits[s], im);
        CHECK_OK(uakd_image_read(path, 1, 1, &mask));
        snprintf(path, sizeof path, "%s/%s/000000/rgb/%06ld.jpg", c.out_dir, splits[s], im);
        CHECK_OK(uakd_image_read(path, 3, 1, &rgb));
        long diff = 0;
        double err = 0;
        for (int p = 0; mask.data && p < 160 * 120; p++) diff += (mask.data[p] == 255) != (rg.f.visib[p] == 1);
        for (int p = 0; rgb.data && p < 160 * 120 * 3; p++) err += fabs((double)rgb.data[p] - rg.f.rgb.data[p]);
        CHECK(diff == 0);
        CHECK_MSG(err / (160 * 120 * 3) < 8, "JPEG differs from the frame by %.2f grey levels on average",
                  err / (160 * 120 * 3));
        uakd_image_free(&mask);
        uakd_image_free(&rgb);
    }
    for (int s = 0; s < 2; s++) {
        cJSON_Delete(gt[s]);
        cJSON_Delete(info[s]);
        cJSON_Delete(cams[s]);
    }
    snprintf(path, sizeof path, "%s/models/models_info.json", c.out_dir);
    cJSON *mi = test_read_json(path);
    const cJSON *o7 = cJSON_GetObjectItem(mi, "7");
    CHECK(o7 != NULL);
    if (o7) {
        CHECK_NEAR(cJSON_GetObjectItem(o7, "diameter")->valuedouble, rg.objs[0].diameter, 0);
        CHECK_NEAR(cJSON_GetObjectItem(o7, "min_x")->valuedouble, -30, 0);
        CHECK_NEAR(cJSON_GetObjectItem(o7, "size_y")->valuedouble, 40, 0);
    }
    cJSON_Delete(mi);
    const char *model_dirs[2] = {"models", "models_eval"};
    for (int d = 0; d < 2; d++) {
        snprintf(path, sizeof path, "%s/%s/obj_000007.ply", c.out_dir, model_dirs[d]);
        uakd_mesh copy;
        CHECK_OK(uakd_mesh_read_ply(path, &copy));
        CHECK(copy.num_vertices == 8 && copy.xyz && copy.xyz[0] == -30);
        uakd_mesh_free(&copy);
    }

    /* same settings: reused; one thread into another directory: identical annotations */
    CHECK_OK(uakd_synth_run(&c, NULL, NULL, &res));
    CHECK(res.reused == 1);
    snprintf(path, sizeof path, "%s/train/000000/scene_gt_info.json", c.out_dir);
    char *a = slurp(path);
    c.out_dir = test_tmp("synth_bop_1thread");
    c.threads = 1;
    CHECK_OK(uakd_synth_run(&c, NULL, NULL, &res));
    CHECK(res.reused == 0);
    snprintf(path, sizeof path, "%s/train/000000/scene_gt_info.json", c.out_dir);
    char *b = slurp(path);
    CHECK(a && b && !strcmp(a, b));
    free(a);
    free(b);
    /* interrupted: an error and no marker, so the next run starts again */
    c.out_dir = test_tmp("synth_bop_stopped");
    CHECK_FAILS(uakd_synth_run(&c, stop_after_two, NULL, &res), UAKD_EINTERRUPTED);
    snprintf(path, sizeof path, "%s/uakd_synth_done.json", c.out_dir);
    FILE *mf = fopen(path, "r");
    CHECK(mf == NULL);
    if (mf) fclose(mf);

    rig_close(&rg);
}

/* SPEED+ dataset: the camera file, and the labels: with R(q) for the scalar-first quaternion and
 * the written r, the 11 keypoints project (through the written K and distortion) onto the
 * spacecraft rendered for that image. */
static void test_speedplus_round_trip(void) {
    remove_dirs(test_tmp("synth_speedplus"), test_tmp("synth_speedplus"), test_tmp("synth_speedplus"));
    uakd_synth_config c;
    uakd_synth_config_default(&c, UAKD_SYNTH_SPEEDPLUS);
    c.out_dir = test_tmp("synth_speedplus");
    c.count = 5;
    c.val_fraction = 0.4;
    c.width = 480;
    c.height = 300;
    c.depth_min = 3;
    c.depth_max = 6;
    c.seed = 9;
    uakd_synth_result res;
    CHECK_OK(uakd_synth_run(&c, NULL, NULL, &res));
    char path[1024];
    snprintf(path, sizeof path, "%s/camera.json", c.out_dir);
    cJSON *camj = test_read_json(path);
    CHECK(camj != NULL);
    if (!camj) return;
    CHECK(cJSON_GetObjectItem(camj, "Nu")->valueint == 480 && cJSON_GetObjectItem(camj, "Nv")->valueint == 300);
    double K[3][3], dist[5];
    for (int i = 0; i < 3; i++) CHECK(read_numbers(cJSON_GetArrayItem(cJSON_GetObjectItem(camj, "cameraMatrix"), i), K[i], 3));
    CHECK(read_numbers(cJSON_GetObjectItem(camj, "distCoeffs"), dist, 5));
    CHECK_NEAR(cJSON_GetObjectItem(camj, "fx")->valuedouble, 0.017513075965995915, 1e-15); /* metres: unchanged */
    CHECK_NEAR(K[0][0], 2988.5795163815555 / 4, 1e-9);
    CHECK(dist[0] == -0.22383016606510672);
    cJSON_Delete(camj);
    uakd_camera cam = {K[0][0], K[1][1], K[0][2], K[1][2], {dist[0], dist[1], dist[2], dist[3], dist[4]}};

    rig rg;
    if (!rig_open(&rg, &c)) return;
    uakd_rng base;
    uakd_rng_seed(&base, 9);
    long seen = 0;
    const char *files[2] = {"train", "validation"};
    for (int s = 0; s < 2; s++) {
        snprintf(path, sizeof path, "%s/synthetic/%s.json", c.out_dir, files[s]);
        cJSON *list = test_read_json(path);
        CHECK(cJSON_GetArraySize(list) == (s == 0 ? 3 : 2));
        const cJSON *e;
        cJSON_ArrayForEach(e, list) {
            const char *name = cJSON_GetStringValue(cJSON_GetObjectItem(e, "filename"));
            long num = 0;
            CHECK(name && sscanf(name, "img%6ld.jpg", &num) == 1);
            uakd_rng rng;
            uakd_rng_split(&base, (uint64_t)(num - 1), &rng);
            CHECK_OK(uakd_synth_render_frame(rg.r, &rng, &rg.f));
            uakd_pose p;
            double q[4];
            CHECK(read_numbers(cJSON_GetObjectItem(e, "q_vbs2tango_true"), q, 4));
            CHECK(read_numbers(cJSON_GetObjectItem(e, "r_Vo2To_vbs_true"), p.t, 3));
            CHECK_NEAR(q[0] * q[0] + q[1] * q[1] + q[2] * q[2] + q[3] * q[3], 1, 1e-12);
            uakd_quat_to_rot(q, p.R);
            for (int k = 0; k < 9; k++) CHECK_NEAR(p.R[k], rg.f.inst[0].pose.R[k], 1e-12);
            for (int k = 0; k < 3; k++) CHECK(p.t[k] == rg.f.inst[0].pose.t[k]);
            for (int i = 0; i < 11; i++) {
                double uv[2];
                CHECK(uakd_camera_project(&cam, &p, uakd_tango_keypoints[i], uv));
                CHECK_MSG(dist_to_mask(rg.f.visib, 480, 300, 1, uv[0], uv[1]) <= 1.5,
                          "%s keypoint %d off the spacecraft", name, i);
            }
            /* the image file is greyscale at the requested size */
            uakd_image im = {0};
            snprintf(path, sizeof path, "%s/synthetic/images/%s", c.out_dir, name);
            CHECK_OK(uakd_image_read(path, 1, 1, &im));
            CHECK(im.width == 480 && im.height == 300);
            uakd_image_free(&im);
            seen++;
        }
        cJSON_Delete(list);
    }
    CHECK(seen == 5);
    rig_close(&rg);
}

/* The dataset loaders (uakd/dataset.h) read what synth writes: BOP instances with their poses,
 * boxes, visibility and masks equal to the re-rendered frames; SPEED+ poses and camera. */
static void test_loaders_read_synth(void) {
    remove_dirs(test_tmp("synth_bop_ld"), test_tmp("synth_sp_ld"), test_tmp("synth_sp_ld"));
    const char *ply = test_tmp("obj_000003.ply");
    uakd_synth_config c;
    box_config(&c, &ply, 30, 20, 25);
    c.out_dir = test_tmp("synth_bop_ld");
    c.count = 4;
    c.val_fraction = 0.25;
    c.width = 160;
    c.height = 120;
    c.depth_min = 300;
    c.depth_max = 500;
    c.per_image = 2;
    c.seed = 3;
    uakd_synth_result res;
    CHECK_OK(uakd_synth_run(&c, NULL, NULL, &res));
    rig rg;
    if (!rig_open(&rg, &c)) return;
    uakd_dataset *ds = NULL;
    CHECK_OK(uakd_dataset_load_bop(c.out_dir, "train", NULL, &ds));
    uakd_rng base;
    uakd_rng_seed(&base, 3);
    CHECK(ds && ds->num_instances == 3 * 2 && ds->num_objects == 1 && ds->width == 160);
    for (int i = 0; ds && i < ds->num_instances; i++) {
        const uakd_instance *in = &ds->instances[i];
        uakd_rng rng;
        uakd_rng_split(&base, (uint64_t)in->image_id, &rng);
        CHECK_OK(uakd_synth_render_frame(rg.r, &rng, &rg.f));
        const uakd_synth_annot *a = &rg.f.inst[in->gt_index];
        CHECK(in->obj_id == 3 && in->mask_path != NULL);
        for (int k = 0; k < 9; k++) CHECK_NEAR(in->pose.R[k], a->pose.R[k], 1e-12);
        for (int k = 0; k < 3; k++) CHECK(in->pose.t[k] == a->pose.t[k]);
        for (int k = 0; k < 4; k++) CHECK(in->bbox_obj[k] == a->bbox_obj[k] && in->bbox_visib[k] == a->bbox_visib[k]);
        CHECK_NEAR(in->visib_fract, (double)a->px_count_visib / a->px_count_all, 1e-15);
        /* the object's keypoints (box corners) project onto its whole silhouette's box (2 px) */
        const uakd_object_info *o = &ds->objects[in->object];
        uakd_camera cam = {in->K[0], in->K[4], in->K[2], in->K[5], {0}};
        for (int k = 0; k < o->num_keypoints; k++) {
            double uv[2];
            CHECK(uakd_camera_project(&cam, &in->pose, o->keypoints[k], uv));
            CHECK(uv[0] >= in->bbox_obj[0] - 2 && uv[0] <= in->bbox_obj[0] + in->bbox_obj[2] + 1 &&
                  uv[1] >= in->bbox_obj[1] - 2 && uv[1] <= in->bbox_obj[1] + in->bbox_obj[3] + 1);
        }
    }
    uakd_dataset_free(ds);
    rig_close(&rg);

    uakd_synth_config_default(&c, UAKD_SYNTH_SPEEDPLUS);
    c.out_dir = test_tmp("synth_sp_ld");
    c.count = 3;
    c.val_fraction = 0;
    c.width = 240;
    c.height = 150;
    c.depth_min = 5;
    c.depth_max = 8;
    c.seed = 4;
    CHECK_OK(uakd_synth_run(&c, NULL, NULL, &res));
    if (!rig_open(&rg, &c)) return;
    uakd_rng_seed(&base, 4);
    CHECK_OK(uakd_dataset_load_speedplus(c.out_dir, "synthetic", "train",
                                         test_shared("data/speedplus/tangoPoints.transcribed.csv"), &ds));
    uakd_camera cam;
    uakd_synth_camera(&c, &cam);
    CHECK(ds && ds->num_instances == 3 && ds->width == 240 && ds->height == 150);
    for (int i = 0; ds && i < ds->num_instances; i++) {
        const uakd_instance *in = &ds->instances[i];
        for (int k = 0; k < 5; k++) CHECK(ds->dist[k] == cam.dist[k]);
        CHECK(in->K[0] == cam.fx && in->K[2] == cam.cx);
        uakd_rng rng;
        uakd_rng_split(&base, (uint64_t)i, &rng);
        CHECK_OK(uakd_synth_render_frame(rg.r, &rng, &rg.f));
        for (int k = 0; k < 9; k++) CHECK_NEAR(in->pose.R[k], rg.f.inst[0].pose.R[k], 1e-12);
        for (int k = 0; k < 3; k++) CHECK(in->pose.t[k] == rg.f.inst[0].pose.t[k]);
    }
    uakd_dataset_free(ds);
    rig_close(&rg);
}

static void test_rejects_bad_settings(void) {
    uakd_synth_config c;
    uakd_synth_result res;
    uakd_synth_config_default(&c, UAKD_SYNTH_BOP);
    c.out_dir = test_tmp("synth_bad");
    CHECK_FAILS(uakd_synth_run(&c, NULL, NULL, &res), UAKD_EINVAL); /* BOP needs a mesh */
    const char *missing[1] = {test_tmp("no_such_mesh.ply")};
    c.mesh_paths = missing;
    c.num_meshes = 1;
    CHECK_FAILS(uakd_synth_run(&c, NULL, NULL, &res), UAKD_EIO);
    uakd_synth_config_default(&c, UAKD_SYNTH_SPEEDPLUS);
    c.out_dir = test_tmp("synth_bad");
    c.count = 0;
    CHECK_FAILS(uakd_synth_run(&c, NULL, NULL, &res), UAKD_EINVAL);
    c.count = 1;
    c.val_fraction = 1;
    CHECK_FAILS(uakd_synth_run(&c, NULL, NULL, &res), UAKD_EINVAL);
    c.val_fraction = 0;
    c.per_image = 2;
    CHECK_FAILS(uakd_synth_run(&c, NULL, NULL, &res), UAKD_EINVAL);
    c.per_image = 1;
    c.bg_dir = test_tmp("no_such_dir");
    c.width = 64;
    c.height = 40;
    CHECK_FAILS(uakd_synth_run(&c, NULL, NULL, &res), UAKD_EIO);
}

/* Backgrounds from a directory of real images: crops come from the file (here a flat image). */
static void test_background_crops(void) {
    const char *dir = test_tmp("synth_bgdir");
    char path[1024];
    snprintf(path, sizeof path, "mkdir -p %s", dir);
    CHECK(system(path) == 0);
    uakd_image im;
    CHECK_OK(uakd_image_alloc(&im, 50, 30, 3));
    for (int p = 0; p < 50 * 30 * 3; p++) im.data[p] = (uint8_t)(p % 3 == 0 ? 200 : 10);
    snprintf(path, sizeof path, "%s/flat.png", dir);
    CHECK_OK(uakd_image_write(path, &im, 0));
    uakd_image_free(&im);
    const char *ply = test_tmp("synth_box_bg.ply");
    uakd_synth_config c;
    box_config(&c, &ply, 20, 20, 20);
    c.width = 160;
    c.height = 120;
    c.depth_min = 400;
    c.depth_max = 600;
    c.noise_sigma = 0;
    c.blur_prob = 0;
    c.bg_dir = dir;
    rig rg;
    if (!rig_open(&rg, &c)) return;
    uakd_rng rng;
    uakd_rng_seed(&rng, 4);
    int crops = 0;
    for (int k = 0; k < 12; k++) {
        CHECK_OK(uakd_synth_render_frame(rg.r, &rng, &rg.f));
        long flat = 0, bg = 0;
        for (int p = 0; p < 160 * 120; p++) {
            if (rg.f.visib[p]) continue;
            bg++;
            flat += rg.f.rgb.data[3 * p] == 200 && rg.f.rgb.data[3 * p + 1] == 10 && rg.f.rgb.data[3 * p + 2] == 10;
        }
        crops += flat == bg;
    }
    CHECK(crops >= 1 && crops <= 9); /* one background kind in four */
    rig_close(&rg);
}

/* Noise has the requested mean and standard deviation; the blur spreads an impulse binomially. */
static void test_noise_and_blur(void) {
    uakd_image im;
    CHECK_OK(uakd_image_alloc(&im, 200, 100, 3));
    memset(im.data, 128, 200 * 100 * 3);
    uakd_rng r;
    uakd_rng_seed(&r, 2);
    uakd_image_add_noise(&im, 10, &r);
    double sum = 0, sq = 0;
    int n = 200 * 100 * 3;
    for (int k = 0; k < n; k++) {
        sum += im.data[k];
        sq += (im.data[k] - 128.0) * (im.data[k] - 128.0);
    }
    CHECK_NEAR(sum / n, 128, 0.15);
    CHECK_NEAR(sqrt(sq / n), 10, 0.25); /* sampling error of the 4096-value table and of n values */
    uakd_image_free(&im);
    CHECK_OK(uakd_image_alloc(&im, 5, 5, 1));
    im.data[12] = 255;
    CHECK_OK(uakd_image_blur3(&im));
    CHECK(im.data[12] == 64 && im.data[11] == 32 && im.data[7] == 32 && im.data[6] == 16 && im.data[0] == 0);
    uakd_image_free(&im);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

/* Whole frames (pose, render, background, noise, blur; no file writing) at 640x480 with the
 * real ape mesh (11678 triangles): printed, not asserted (the machine is shared). */
static void test_frame_speed(void) {
    const char *paths[1] = {test_shared("data/lmo/models/obj_000001.ply")};
    uakd_synth_config c;
    uakd_synth_config_default(&c, UAKD_SYNTH_BOP);
    c.mesh_paths = paths;
    c.num_meshes = 1;
    rig rg;
    if (!rig_open(&rg, &c)) return;
    CHECK(rg.n == 1);
    uakd_rng rng;
    uakd_rng_seed(&rng, 1);
    int frames = 30;
    double t0 = now_s();
    clock_t c0 = clock();
    for (int k = 0; k < frames; k++) CHECK_OK(uakd_synth_render_frame(rg.r, &rng, &rg.f));
    double wall = now_s() - t0, cpu = (double)(clock() - c0) / CLOCKS_PER_SEC;
    fprintf(stderr, "synth frames: %.0f images/s wall, %.0f images/s per CPU second, 640x480, %d triangles, "
                    "one thread\n", frames / wall, frames / cpu, rg.objs[0].mesh.num_faces);
    rig_close(&rg);
}

/* LINEMOD-like views: a rotation, the camera above the object's x-y plane at the requested
 * elevation or higher, the object's z axis pointing up in the image within the roll bound, and
 * azimuths and elevations spread over their whole ranges. */
static void test_upper_views(void) {
    uakd_rng r;
    uakd_rng_seed(&r, 5);
    const double deg = M_PI / 180;
    double min_el = 90, max_el = -90, az_bins[4] = {0};
    for (int i = 0; i < 4000; i++) {
        double R[9], Rt[9], I[9];
        uakd_random_upper_view(&r, 20, 10, R);
        uakd_mat3_transpose(R, Rt);
        uakd_mat3_mul(R, Rt, I);
        for (int k = 0; k < 9; k++) CHECK_NEAR(I[k], k % 4 == 0, 1e-12);
        CHECK_NEAR(uakd_mat3_det(R), 1, 1e-12);
        /* the camera's viewing direction in object coordinates is the third row of R */
        double el = asin(-R[8]) / deg;
        min_el = fmin(min_el, el), max_el = fmax(max_el, el);
        CHECK(el >= 20 - 1e-9);
        /* object z in camera coordinates is R's third column; in the image it points up (y < 0)
         * and leans sideways by at most the roll */
        double up_x = R[2], up_y = R[5];
        if (el < 85) {
            CHECK(up_y < 0);
            CHECK(fabs(atan2(up_x, -up_y)) <= 10 * deg + 1e-9);
        }
        double az = atan2(-R[7], -R[6]);
        az_bins[(int)((az + M_PI) / (M_PI / 2)) & 3]++;
    }
    CHECK(min_el < 22 && max_el > 85);
    for (int b = 0; b < 4; b++) CHECK_NEAR(az_bins[b] / 4000, 0.25, 0.03);
}

int main(void) {
    RUN(test_upper_views);
    RUN(test_tango_keypoints_match_official_file);
    RUN(test_random_rotation_is_uniform);
    RUN(test_sampled_poses_keep_the_box_in_view);
    RUN(test_tango_frames_keypoints_on_mask);
    RUN(test_box_mask_matches_projection);
    RUN(test_bop_round_trip);
    RUN(test_speedplus_round_trip);
    RUN(test_loaders_read_synth);
    RUN(test_rejects_bad_settings);
    RUN(test_background_crops);
    RUN(test_noise_and_blur);
    RUN(test_frame_speed);
    return TEST_END();
}
