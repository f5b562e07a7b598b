/* A Tango-like spacecraft mesh built around the 11 official SPEED+ keypoints (metres).
 *
 * Body: the box [kp4.x, kp6.x] x [kp4.y, kp6.y] x [0, z_top - panel thickness], whose bottom
 * corners are keypoints 4-7. Solar panel: the plate [kp0.x, kp2.x] x [kp0.y, kp2.y] x
 * [z_top - thickness, z_top], whose top corners are keypoints 0-3. Antennas: square rods 2 cm
 * thick from a point on the body (same z as the tip) to the tips, keypoints 8-10, each tip the
 * centre vertex of its rod's end cap. Box faces
 * are wound outwards; the mesh has vertex colours and no normals (flat shading). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "uakd/synth.h"

const double uakd_tango_keypoints[11][3] = {
    {-0.37, -0.385, 0.3215}, {-0.37, 0.385, 0.3215},   {0.37, 0.385, 0.3215},     {0.37, -0.385, 0.3215},
    {-0.37, -0.264, 0.0},    {-0.37, 0.304, 0.0},      {0.37, 0.304, 0.0},        {0.37, -0.264, 0.0},
    {-0.5427, 0.4877, 0.2535}, {0.5427, 0.4877, 0.2591}, {0.305, -0.579, 0.2515},
};

enum { BOXES = 2, ANTENNAS = 3, NV = BOXES * 8 + ANTENNAS * 9, NF = BOXES * 12 + ANTENNAS * 14 };

typedef struct builder {
    uakd_mesh *m;
    int nv, nf;
} builder;

static int add_vertex(builder *b, const double p[3], const uint8_t rgb[3]) {
    for (int k = 0; k < 3; k++) {
        b->m->xyz[3 * b->nv + k] = (float)p[k];
        b->m->rgb[3 * b->nv + k] = rgb[k];
    }
    return b->nv++;
}

static void add_face(builder *b, int i, int j, int k) {
    int32_t *f = b->m->faces + 3 * b->nf++;
    f[0] = i;
    f[1] = j;
    f[2] = k;
}

/* Box [lo, hi]; corner c = 4 ix + 2 iy + iz. Each quad (a, b, c, d) is listed counter-clockwise
 * seen from outside, so (v1 - v0) x (v2 - v0) points outwards. */
static void add_box(builder *b, const double lo[3], const double hi[3], const uint8_t rgb[3]) {
    int v[8];
    for (int c = 0; c < 8; c++) {
        double p[3] = {(c & 4) ? hi[0] : lo[0], (c & 2) ? hi[1] : lo[1], (c & 1) ? hi[2] : lo[2]};
        v[c] = add_vertex(b, p, rgb);
    }
    static const int quads[6][4] = {{0, 1, 3, 2}, {4, 6, 7, 5}, {0, 4, 5, 1},
                                    {2, 3, 7, 6}, {0, 2, 6, 4}, {1, 5, 7, 3}};
    for (int q = 0; q < 6; q++) {
        add_face(b, v[quads[q][0]], v[quads[q][1]], v[quads[q][2]]);
        add_face(b, v[quads[q][0]], v[quads[q][2]], v[quads[q][3]]);
    }
}

/* Square rod of half-width hw from base to tip; its flat end cap is a fan around the tip, so the
 * tip is a vertex at the centre of a face (visible whenever the rod's end is). */
static void add_antenna(builder *b, const double base[3], const double tip[3], double hw, const uint8_t rgb[3]) {
    double a[3] = {tip[0] - base[0], tip[1] - base[1], tip[2] - base[2]};
    double len = sqrt(a[0] * a[0] + a[1] * a[1] + a[2] * a[2]);
    for (int k = 0; k < 3; k++) a[k] /= len;
    /* e1, e2: unit vectors orthogonal to the axis (the axes here are never parallel to z) */
    double e1[3] = {-a[1], a[0], 0}, n1 = sqrt(a[0] * a[0] + a[1] * a[1]);
    for (int k = 0; k < 3; k++) e1[k] /= n1;
    double e2[3] = {a[1] * e1[2] - a[2] * e1[1], a[2] * e1[0] - a[0] * e1[2], a[0] * e1[1] - a[1] * e1[0]};
    int v[2][4];
    static const double s[4][2] = {{1, 1}, {-1, 1}, {-1, -1}, {1, -1}};
    for (int end = 0; end < 2; end++)
        for (int c = 0; c < 4; c++) {
            double p[3];
            for (int k = 0; k < 3; k++) p[k] = (end ? tip : base)[k] + hw * (s[c][0] * e1[k] + s[c][1] * e2[k]);
            v[end][c] = add_vertex(b, p, rgb);
        }
    int apex = add_vertex(b, tip, rgb);
    for (int c = 0; c < 4; c++) {
        int d = (c + 1) % 4;
        add_face(b, v[0][c], v[0][d], v[1][d]);
        add_face(b, v[0][c], v[1][d], v[1][c]);
        add_face(b, v[1][c], v[1][d], apex);
    }
    add_face(b, v[0][0], v[0][2], v[0][1]);
    add_face(b, v[0][0], v[0][3], v[0][2]);
}

uakd_status uakd_tango_mesh(uakd_mesh *out) {
    memset(out, 0, sizeof *out);
    out->xyz = malloc(NV * 3 * sizeof(float));
    out->rgb = malloc(NV * 3);
    out->faces = malloc(NF * 3 * sizeof(int32_t));
    if (!out->xyz || !out->rgb || !out->faces) {
        uakd_mesh_free(out);
        return uakd_fail(UAKD_ENOMEM, "Tango mesh: out of memory");
    }
    builder b = {out, 0, 0};
    const double(*kp)[3] = uakd_tango_keypoints;
    const double panel = 0.02;
    static const uint8_t gold[3] = {196, 164, 84}, blue[3] = {44, 56, 120}, grey[3] = {215, 215, 220};
    double body_lo[3] = {kp[4][0], kp[4][1], kp[4][2]}, body_hi[3] = {kp[6][0], kp[6][1], kp[0][2] - panel};
    double panel_lo[3] = {kp[0][0], kp[0][1], kp[0][2] - panel}, panel_hi[3] = {kp[2][0], kp[2][1], kp[2][2]};
    add_box(&b, body_lo, body_hi, gold);
    add_box(&b, panel_lo, panel_hi, blue);
    /* antenna bases on the body's side faces y = kp6.y (tips 8, 9) and y = kp4.y (tip 10) */
    double base8[3] = {-0.25, kp[6][1], kp[8][2]}, base9[3] = {0.25, kp[6][1], kp[9][2]};
    double base10[3] = {kp[10][0], kp[4][1], kp[10][2]};
    add_antenna(&b, base8, kp[8], 0.01, grey);
    add_antenna(&b, base9, kp[9], 0.01, grey);
    add_antenna(&b, base10, kp[10], 0.01, grey);
    out->num_vertices = b.nv;
    out->num_faces = b.nf;
    return UAKD_OK;
}
