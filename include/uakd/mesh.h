/* Triangle meshes (PLY) with optional normals and vertex colours, and their extents.
 *
 * Units are those of the file (BOP models: millimetres, origin at the bounding-box centre). */
#ifndef UAKD_MESH_H
#define UAKD_MESH_H

#include <stdint.h>

#include "uakd/status.h"

typedef struct uakd_mesh {
    int num_vertices;
    int num_faces;
    float *xyz;      /* num_vertices x 3 */
    float *normals;  /* num_vertices x 3, or NULL when the file has none */
    uint8_t *rgb;    /* num_vertices x 3, or NULL when the file has no colours */
    int32_t *faces;  /* num_faces x 3 vertex indices (polygons are fanned into triangles) */
} uakd_mesh;

/* Reads an ASCII or binary little-endian PLY file; validates counts, indices and truncation. */
uakd_status uakd_mesh_read_ply(const char *path, uakd_mesh *out);
/* Frees the arrays and zeroes the struct; safe on a zeroed struct. */
void uakd_mesh_free(uakd_mesh *m);

/* Axis-aligned bounding box of the vertices. Fails (UAKD_EINVAL) on a mesh without vertices. */
uakd_status uakd_mesh_bbox(const uakd_mesh *m, double min[3], double max[3]);
/* Largest distance between two vertices (exact; BOP's "diameter"). */
uakd_status uakd_mesh_diameter(const uakd_mesh *m, double *diameter);
/* The 8 corners of the box [min, max] as 8 x 3 numbers, corner index = 4 ix + 2 iy + iz where
 * ix, iy, iz are 0 for the minimum and 1 for the maximum along that axis. */
void uakd_bbox_corners(const double min[3], const double max[3], double corners[24]);

#endif
