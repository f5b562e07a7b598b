/* Tests of the PLY reader and mesh extents: the real LM-O meshes against models_info.json, small
 * hand-written files (ASCII and binary, skipped properties, polygons) and malformed files. */
#include <cjson/cJSON.h>

#include "test.h"
#include "test_json.h"
#include "uakd/mesh.h"

static const int lmo_ids[] = {1, 5, 6, 8, 9, 10, 11, 12};


static double info_num(const cJSON *obj, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

/* Full meshes (ASCII, with normals and colours): bbox and diameter as in models_info.json. */
static void test_lmo_models(void) {
    cJSON *info = test_read_json(test_shared("data/lmo/models/models_info.json"));
    CHECK(info != NULL);
    if (!info) return;
    for (size_t i = 0; i < sizeof lmo_ids / sizeof lmo_ids[0]; i++) {
        char rel[128], key[8];
        snprintf(rel, sizeof rel, "data/lmo/models/obj_%06d.ply", lmo_ids[i]);
        snprintf(key, sizeof key, "%d", lmo_ids[i]);
        const cJSON *o = cJSON_GetObjectItemCaseSensitive(info, key);
        uakd_mesh m;
        CHECK_OK(uakd_mesh_read_ply(test_shared(rel), &m));
        CHECK(m.num_vertices > 1000 && m.num_faces > 1000);
        CHECK(m.normals != NULL && m.rgb != NULL);
        double lo[3], hi[3], d = 0;
        CHECK_OK(uakd_mesh_bbox(&m, lo, hi));
        CHECK_OK(uakd_mesh_diameter(&m, &d));
        const char *mins[3] = {"min_x", "min_y", "min_z"}, *sizes[3] = {"size_x", "size_y", "size_z"};
        for (int k = 0; k < 3; k++) {
            CHECK_NEAR(lo[k], info_num(o, mins[k]), 1e-3);
            CHECK_NEAR(hi[k] - lo[k], info_num(o, sizes[k]), 2e-3);
        }
        CHECK_NEAR(d, info_num(o, "diameter"), 1e-3);
        /* normals are unit vectors; every face index is in range */
        double worst = 0;
        for (int v = 0; v < m.num_vertices; v++) {
            const float *nv = m.normals + 3 * v;
            worst = fmax(worst, fabs(sqrt(nv[0] * nv[0] + nv[1] * nv[1] + nv[2] * nv[2]) - 1));
        }
        CHECK(worst < 1e-3);
        int bad = 0;
        for (int f = 0; f < 3 * m.num_faces; f++) bad += m.faces[f] < 0 || m.faces[f] >= m.num_vertices;
        CHECK(bad == 0);
        uakd_mesh_free(&m);
        CHECK(m.xyz == NULL && m.num_vertices == 0);
    }
    cJSON_Delete(info);
}

/* Eval meshes (binary, xyz only) are resampled surfaces of the same objects. */
static void test_lmo_models_eval(void) {
    cJSON *info = test_read_json(test_shared("data/lmo/models_eval/models_info.json"));
    CHECK(info != NULL);
    if (!info) return;
    for (size_t i = 0; i < sizeof lmo_ids / sizeof lmo_ids[0]; i++) {
        char rel[128], key[8];
        snprintf(rel, sizeof rel, "data/lmo/models_eval/obj_%06d.ply", lmo_ids[i]);
        snprintf(key, sizeof key, "%d", lmo_ids[i]);
        const cJSON *o = cJSON_GetObjectItemCaseSensitive(info, key);
        uakd_mesh m;
        CHECK_OK(uakd_mesh_read_ply(test_shared(rel), &m));
        CHECK(m.num_vertices > 500 && m.num_faces > 500);
        CHECK(m.normals == NULL && m.rgb == NULL);
        double lo[3], hi[3], d = 0;
        CHECK_OK(uakd_mesh_bbox(&m, lo, hi));
        CHECK_OK(uakd_mesh_diameter(&m, &d));
        const char *mins[3] = {"min_x", "min_y", "min_z"}, *sizes[3] = {"size_x", "size_y", "size_z"};
        for (int k = 0; k < 3; k++) {
            /* resampling moves the extremes by < 0.1 mm, except eggbox's y minimum (0.86 mm) */
            CHECK_NEAR(lo[k], info_num(o, mins[k]), 1.0);
            CHECK_NEAR(hi[k] - lo[k], info_num(o, sizes[k]), 1.0);
        }
        CHECK_NEAR(d / info_num(o, "diameter"), 1, 0.01);
        uakd_mesh_free(&m);
    }
    cJSON_Delete(info);
}

static const char *write_file(const char *name, const void *data, size_t n) {
    const char *path = test_tmp(name);
    FILE *f = fopen(path, "wb");
    if (f) {
        fwrite(data, 1, n, f);
        fclose(f);
    }
    return path;
}

static const char *write_text(const char *name, const char *text) { return write_file(name, text, strlen(text)); }

/* Skipped vertex properties (a list, a double), a quad fanned into two triangles, an extra element,
 * alpha ignored, comments. */
static void test_ascii_small(void) {
    const char *p = write_text("ascii_small.ply",
                               "ply\nformat ascii 1.0\ncomment hand made\n"
                               "element vertex 4\nproperty double w\nproperty float x\nproperty float y\n"
                               "property list uchar int junk\nproperty float z\nproperty uchar red\n"
                               "property uchar green\nproperty uchar blue\nproperty uchar alpha\n"
                               "element face 1\nproperty list uchar int vertex_indices\nproperty int flags\n"
                               "element edge 1\nproperty int a\nproperty int b\nend_header\n"
                               "9 0 0 2 5 6 0 255 0 0 17\n"
                               "9 1 0 0 0 1 2 3 33\n"
                               "9 1 1 1 7 1 4 5 6 44\n"
                               "9 0 1 0 0 10 20 30 55\n"
                               "4 0 1 2 3 99\n"
                               "0 1\n");
    uakd_mesh m;
    CHECK_OK(uakd_mesh_read_ply(p, &m));
    CHECK(m.num_vertices == 4 && m.num_faces == 2);
    CHECK(m.rgb && m.rgb[0] == 255 && m.rgb[3] == 1 && m.rgb[11] == 30);
    CHECK(m.normals == NULL);
    if (m.num_faces == 2) {
        const int want[6] = {0, 1, 2, 0, 2, 3};
        for (int i = 0; i < 6; i++) CHECK(m.faces[i] == want[i]);
    }
    if (m.num_vertices == 4) {
        CHECK(m.xyz[0] == 0 && m.xyz[2] == 0 && m.xyz[3] == 1 && m.xyz[8] == 1);
    }
    double lo[3], hi[3], c[24], d;
    CHECK_OK(uakd_mesh_bbox(&m, lo, hi));
    CHECK(lo[0] == 0 && hi[0] == 1 && lo[2] == 0 && hi[2] == 1);
    CHECK_OK(uakd_mesh_diameter(&m, &d));
    CHECK_NEAR(d, sqrt(3.0), 1e-7); /* (0,0,0)-(1,1,1) */
    double mn[3] = {-1, -2, -3}, mx[3] = {1, 2, 3};
    uakd_bbox_corners(mn, mx, c);
    CHECK(c[0] == -1 && c[1] == -2 && c[2] == -3);                 /* 0: min min min */
    CHECK(c[3 * 1] == -1 && c[3 * 1 + 1] == -2 && c[3 * 1 + 2] == 3); /* 1: z max */
    CHECK(c[3 * 2] == -1 && c[3 * 2 + 1] == 2 && c[3 * 2 + 2] == -3); /* 2: y max */
    CHECK(c[3 * 4] == 1 && c[3 * 4 + 1] == -2 && c[3 * 4 + 2] == -3); /* 4: x max */
    CHECK(c[3 * 5] == 1 && c[3 * 5 + 1] == -2 && c[3 * 5 + 2] == 3);  /* 5: x and z max */
    CHECK(c[3 * 7] == 1 && c[3 * 7 + 1] == 2 && c[3 * 7 + 2] == 3);
    uakd_mesh_free(&m);
}

/* Binary little-endian with normals, a short-typed skipped property and uint indices. */
static void test_binary_small(void) {
    unsigned char buf[512];
    const char *hdr = "ply\nformat binary_little_endian 1.0\nelement vertex 3\nproperty float x\nproperty float y\n"
                      "property float z\nproperty short s\nproperty float nx\nproperty float ny\nproperty float nz\n"
                      "element face 1\nproperty list int uint vertex_indices\nend_header\n";
    size_t n = strlen(hdr);
    memcpy(buf, hdr, n);
    for (int v = 0; v < 3; v++) {
        float xyz[3] = {(float)v, (float)(2 * v), -1.5f}, nrm[3] = {0, 0, 1};
        short s = (short)-v;
        memcpy(buf + n, xyz, 12);
        memcpy(buf + n + 12, &s, 2);
        memcpy(buf + n + 14, nrm, 12);
        n += 26;
    }
    int32_t cnt = 3;
    uint32_t idx[3] = {2, 1, 0};
    memcpy(buf + n, &cnt, 4);
    memcpy(buf + n + 4, idx, 12);
    n += 16;
    uakd_mesh m;
    CHECK_OK(uakd_mesh_read_ply(write_file("bin_small.ply", buf, n), &m));
    CHECK(m.num_vertices == 3 && m.num_faces == 1);
    if (m.num_vertices == 3 && m.num_faces == 1) {
        CHECK(m.xyz[3 * 2 + 1] == 4.0f && m.xyz[2] == -1.5f);
        CHECK(m.normals && m.normals[8] == 1.0f);
        CHECK(m.faces[0] == 2 && m.faces[2] == 0);
    }
    uakd_mesh_free(&m);
    /* every truncation of the body is an error, never a partial mesh */
    size_t body = strlen(hdr);
    int all_fail = 1;
    for (size_t cut = body; cut < n; cut += 5) {
        uakd_status st = uakd_mesh_read_ply(write_file("bin_trunc.ply", buf, cut), &m);
        all_fail &= st == UAKD_EFORMAT && m.xyz == NULL;
    }
    CHECK(all_fail);
    /* index out of range */
    idx[0] = 3;
    memcpy(buf + n - 12, idx, 12);
    CHECK_FAILS(uakd_mesh_read_ply(write_file("bin_badidx.ply", buf, n), &m), UAKD_EFORMAT);
    CHECK(strstr(uakd_last_error(), "out of range") != NULL);
}

static void test_malformed(void) {
    uakd_mesh m;
    CHECK_FAILS(uakd_mesh_read_ply(test_tmp("does_not_exist.ply"), &m), UAKD_EIO);
    CHECK_FAILS(uakd_mesh_read_ply(write_text("m1.ply", "plx\n"), &m), UAKD_EFORMAT);
    CHECK_FAILS(uakd_mesh_read_ply(write_text("m2.ply", "ply\nformat ascii 1.0\nelement vertex 1\nproperty float x\n"),
                                   &m),
                UAKD_EFORMAT); /* no end_header */
    CHECK_FAILS(uakd_mesh_read_ply(write_text("m3.ply", "ply\nformat binary_big_endian 1.0\nelement vertex 0\n"
                                                         "property float x\nend_header\n"),
                                   &m),
                UAKD_EUNSUPPORTED);
    /* missing z, named in the message */
    CHECK_FAILS(uakd_mesh_read_ply(write_text("m4.ply", "ply\nformat ascii 1.0\nelement vertex 1\nproperty float x\n"
                                                         "property float y\nend_header\n1 2\n"),
                                   &m),
                UAKD_EFORMAT);
    CHECK(strstr(uakd_last_error(), "\"z\"") != NULL && strstr(uakd_last_error(), "m4.ply") != NULL);
    /* ASCII truncated: the message names the element and property */
    CHECK_FAILS(uakd_mesh_read_ply(write_text("m5.ply", "ply\nformat ascii 1.0\nelement vertex 2\nproperty float x\n"
                                                         "property float y\nproperty float z\nend_header\n1 2 3\n4 5 6 7 8\n"),
                                   &m),
                UAKD_EFORMAT); /* more numbers than the header declares */
    CHECK_FAILS(uakd_mesh_read_ply(write_text("m6.ply", "ply\nformat ascii 1.0\nelement vertex 2\nproperty float x\n"
                                                         "property float y\nproperty float z\nend_header\n1 2 3 4 5\n"
                                                         "\n\n\n\n\n\n\n\n"),
                                   &m),
                UAKD_EFORMAT);
    /* non-numbers, unknown types, absurd counts, bad face lists */
    CHECK_FAILS(uakd_mesh_read_ply(write_text("m7.ply", "ply\nformat ascii 1.0\nelement vertex 1\nproperty float x\n"
                                                         "property float y\nproperty float z\nend_header\n1 2 abc\n"),
                                   &m),
                UAKD_EFORMAT);
    CHECK(strstr(uakd_last_error(), "abc") != NULL);
    CHECK_FAILS(uakd_mesh_read_ply(write_text("m8.ply", "ply\nformat ascii 1.0\nelement vertex 1\nproperty float128 x\n"
                                                         "end_header\n1\n"),
                                   &m),
                UAKD_EFORMAT);
    CHECK_FAILS(uakd_mesh_read_ply(write_text("m9.ply", "ply\nformat binary_little_endian 1.0\nelement vertex 99999999\n"
                                                         "property float x\nproperty float y\nproperty float z\nend_header\n"),
                                   &m),
                UAKD_EFORMAT);
    CHECK_FAILS(uakd_mesh_read_ply(write_text("m10.ply", "ply\nformat ascii 1.0\nelement vertex 99999999999\n"
                                                          "property float x\nend_header\n"),
                                   &m),
                UAKD_EFORMAT);
    CHECK_FAILS(uakd_mesh_read_ply(write_text("m11.ply", "ply\nformat ascii 1.0\nelement vertex 3\nproperty float x\n"
                                                          "property float y\nproperty float z\nelement face 1\n"
                                                          "property list uchar int vertex_indices\nend_header\n"
                                                          "0 0 0\n1 0 0\n0 1 0\n2 0 1\n"),
                                   &m),
                UAKD_EFORMAT); /* a 2-vertex face */
    CHECK_FAILS(uakd_mesh_read_ply(write_text("m12.ply", "ply\nformat ascii 1.0\nelement vertex 3\nproperty float x\n"
                                                          "property float y\nproperty float z\nelement face 1\n"
                                                          "property list uchar int vertex_indices\nend_header\n"
                                                          "0 0 0\n1 0 0\n0 1 0\n3 0 1 -1\n"),
                                   &m),
                UAKD_EFORMAT); /* negative index */
    CHECK_FAILS(uakd_mesh_read_ply(write_text("m13.ply", "ply\nformat ascii 1.0\nelement vertex 1\nproperty float x\n"
                                                          "property float y\nproperty float z\nend_header\n1 nan 3\n"),
                                   &m),
                UAKD_EFORMAT);
    CHECK_FAILS(uakd_mesh_read_ply(write_text("m14.ply", "ply\nformat ascii 1.0\nelement vertex 1\nproperty float x\n"
                                                          "property float x\nproperty float z\nend_header\n1 2 3\n"),
                                   &m),
                UAKD_EFORMAT); /* duplicate property */
    CHECK(m.xyz == NULL && m.faces == NULL);
    uakd_mesh empty = {0};
    double lo[3], hi[3], d;
    CHECK_FAILS(uakd_mesh_bbox(&empty, lo, hi), UAKD_EINVAL);
    CHECK_FAILS(uakd_mesh_diameter(&empty, &d), UAKD_EINVAL);
    uakd_mesh_free(&empty);
}

int main(void) {
    RUN(test_lmo_models);
    RUN(test_lmo_models_eval);
    RUN(test_ascii_small);
    RUN(test_binary_small);
    RUN(test_malformed);
    return TEST_END();
}
