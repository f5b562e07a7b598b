/* Tests of `uakd pnp` (the CLI path comes from UAKD_CLI, set by `make test`; default build/uakd):
 * a SPEED+-like case with distortion and outliers through RANSAC, from a file and from stdin,
 * and the refusals (unknown keys, bad shapes, too few points) with non-zero exit codes. */
#include <cjson/cJSON.h>

#include "test.h"
#include "test_cmd.h"
#include "uakd/geom.h"
#include "uakd/rng.h"

static const char *cli(void) {
    const char *c = getenv("UAKD_CLI");
    return c && *c ? c : "build/uakd";
}

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

static void test_cli_ransac_with_distortion(void) {
    uakd_camera cam = {2988.5795, 2988.3401, 960, 600, {-0.22383, 0.51410, -0.000665, -0.000214, -0.13124}};
    uakd_pose truth;
    double rv[3] = {0.4, -1.2, 0.3};
    uakd_rot_from_axis_angle(rv, truth.R);
    truth.t[0] = 0.3;
    truth.t[1] = -0.2;
    truth.t[2] = 7.5;
    uakd_rng g;
    uakd_rng_seed(&g, 8);
    enum { N = 20 };
    static char json[16384];
    int len = snprintf(json, sizeof json,
                       "{\"K\": [[%.17g, 0, %.17g], [0, %.17g, %.17g], [0, 0, 1]], \"dist\": [%.17g, %.17g, %.17g, "
                       "%.17g, %.17g], \"ransac\": {\"threshold\": 4, \"seed\": 3}, \"points3d\": [",
                       cam.fx, cam.cx, cam.fy, cam.cy, cam.dist[0], cam.dist[1], cam.dist[2], cam.dist[3], cam.dist[4]);
    double uv[2 * N];
    for (int i = 0; i < N; i++) {
        double X[3] = {uakd_rng_range(&g, -0.5, 0.5), uakd_rng_range(&g, -0.5, 0.5), uakd_rng_range(&g, -0.3, 0.3)};
        CHECK(uakd_camera_project(&cam, &truth, X, uv + 2 * i));
        if (i % 5 == 2) uv[2 * i] += 150; /* outliers: 2, 7, 12, 17 */
        len += snprintf(json + len, sizeof json - (size_t)len, "%s[%.17g, %.17g, %.17g]", i ? ", " : "", X[0], X[1], X[2]);
    }
    len += snprintf(json + len, sizeof json - (size_t)len, "], \"points2d\": [");
    for (int i = 0; i < N; i++)
        len += snprintf(json + len, sizeof json - (size_t)len, "%s[%.17g, %.17g]", i ? ", " : "", uv[2 * i], uv[2 * i + 1]);
    snprintf(json + len, sizeof json - (size_t)len, "]}");
    const char *path = test_tmp("pnp_cli_in.json");
    write_text(path, json);
    char cmd[2048], out[8192];
    for (int via_stdin = 0; via_stdin < 2; via_stdin++) {
        if (via_stdin)
            snprintf(cmd, sizeof cmd, "%s pnp - < %s", cli(), path);
        else
            snprintf(cmd, sizeof cmd, "%s pnp %s", cli(), path);
        CHECK(test_run_cmd(cmd, out, sizeof out) == 0);
        cJSON *j = cJSON_Parse(out);
        CHECK_MSG(j != NULL, "output: %s", out);
        if (!j) continue;
        uakd_pose p;
        int k = 0;
        const cJSON *row, *v;
        cJSON_ArrayForEach(row, cJSON_GetObjectItem(j, "R")) cJSON_ArrayForEach(v, row) if (k < 9) p.R[k++] = v->valuedouble;
        CHECK(k == 9);
        k = 0;
        cJSON_ArrayForEach(v, cJSON_GetObjectItem(j, "t")) if (k < 3) p.t[k++] = v->valuedouble;
        CHECK(k == 3);
        CHECK(uakd_rot_distance(p.R, truth.R) < 1e-9);
        for (int i = 0; i < 3; i++) CHECK_NEAR(p.t[i], truth.t[i], 1e-8);
        const cJSON *inl = cJSON_GetObjectItem(j, "inliers");
        CHECK(cJSON_GetArraySize(inl) == 16);
        cJSON_ArrayForEach(v, inl) CHECK(v->valueint % 5 != 2);
        CHECK(cJSON_GetObjectItem(j, "reprojection_rmse")->valuedouble < 1e-6);
        cJSON_Delete(j);
    }
}

static void test_cli_refusals(void) {
    static const char *bad[] = {
        "not json",
        "{\"K\": [[500, 0, 320], [0, 500, 240], [0, 0, 1]], \"points3d\": [[0,0,0],[1,0,0],[0,1,0],[0,0,1]], "
        "\"points2d\": [[1,2],[3,4],[5,6],[7,8]], \"colour\": 1}",
        "{\"K\": [[500, 0, 320], [0, 500, 240], [0, 0, 1]], \"points3d\": [[0,0,0],[1,0,0],[0,1,0]], "
        "\"points2d\": [[1,2],[3,4],[5,6],[7,8]]}",
        "{\"K\": [[500, 1, 320], [0, 500, 240], [0, 0, 1]], \"points3d\": [[0,0,0]], \"points2d\": [[1,2]]}",
        "{\"K\": [[500, 0, 320], [0, 500, 240], [0, 0, 1]], \"points3d\": [[0,0,0],[1,0,0],[0,1,0],[0,0,\"a\"]], "
        "\"points2d\": [[1,2],[3,4],[5,6],[7,8]]}",
        "{\"K\": [[500, 0, 320], [0, 500, 240], [0, 0, 1]], \"points3d\": [[0,0,0],[1,0,0],[0,1,0],[0,0,1]], "
        "\"points2d\": [[1,2],[3,4],[5,6],[7,8]], \"ransac\": {\"treshold\": 3}}",
        "{\"K\": [[500, 0, 320], [0, 500, 240], [0, 0, 1]], \"points3d\": [[0,0,10],[1,0,10],[2,0,10],[3,0,10]], "
        "\"points2d\": [[320,240],[370,240],[420,240],[470,240]]}", /* collinear */
    };
    static const int want[] = {3, 3, 3, 3, 3, 3, 1};
    char cmd[2048], out[4096];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *path = test_tmp("pnp_cli_bad.json");
        write_text(path, bad[i]);
        snprintf(cmd, sizeof cmd, "%s pnp %s 2>/dev/null", cli(), path);
        int rc = test_run_cmd(cmd, out, sizeof out);
        CHECK_MSG(rc == want[i], "case %zu: exit %d (want %d), stdout \"%s\"", i, rc, want[i], out);
        CHECK(out[0] == 0); /* nothing on stdout when it fails */
    }
    snprintf(cmd, sizeof cmd, "%s pnp --help", cli());
    CHECK(test_run_cmd(cmd, out, sizeof out) == 0 && strstr(out, "points3d") != NULL);
    snprintf(cmd, sizeof cmd, "%s pnp %s 2>/dev/null", cli(), test_tmp("no_such_file.json"));
    CHECK(test_run_cmd(cmd, out, sizeof out) == 3);
}

int main(void) {
    RUN(test_cli_ransac_with_distortion);
    RUN(test_cli_refusals);
    return TEST_END();
}
