/* Tiny synthetic datasets for the tests that train, infer or distil (uakd/synth.h): a BOP dataset of
 * the LM-O ape (shared data/lmo/models/obj_000001.ply) or a SPEED+ dataset of the built-in Tango,
 * then with the Tango's 11 keypoints as the keypoint CSV <dir>/kp.csv (index,x,y,z), the file the
 * SPEED+ loaders and commands take with --keypoints. Written with one thread (the output does not
 * depend on the thread count); a rerun with the same settings reuses the files. */
#ifndef UAKD_TEST_SYNTH_DATA_H
#define UAKD_TEST_SYNTH_DATA_H

#include <stdint.h>
#include <stdio.h>

#include "test.h"
#include "uakd/synth.h"

typedef struct test_synth_spec {
    uakd_synth_format format;
    long count;          /* images in all */
    double val_fraction; /* share of them in the held-out split */
    int width, height;
    double depth_min, depth_max; /* object centre's z: mm (BOP) or m (SPEED+) */
    uint64_t seed;
} test_synth_spec;

/* 1 on success, 0 when the file cannot be written. */
static inline int test_write_tango_csv(const char *path) {
    FILE *f = fopen(path, "w");
    if (!f) return 0;
    fprintf(f, "index,x,y,z\n");
    for (int k = 0; k < 11; k++)
        fprintf(f, "%d,%.17g,%.17g,%.17g\n", k, uakd_tango_keypoints[k][0], uakd_tango_keypoints[k][1],
                uakd_tango_keypoints[k][2]);
    return fclose(f) == 0;
}

/* Writes the dataset of s into dir (and, for SPEED+, dir/kp.csv). 1 on success, 0 otherwise
 * (uakd_last_error() says why when the synthesis failed). */
static inline int test_synth_dataset(const char *dir, const test_synth_spec *s) {
    const char *mesh = test_shared("data/lmo/models/obj_000001.ply");
    uakd_synth_config c;
    uakd_synth_config_default(&c, s->format);
    if (s->format == UAKD_SYNTH_BOP) c.mesh_paths = &mesh, c.num_meshes = 1;
    c.out_dir = dir;
    c.count = s->count;
    c.val_fraction = s->val_fraction;
    c.width = s->width;
    c.height = s->height;
    c.depth_min = s->depth_min;
    c.depth_max = s->depth_max;
    c.seed = s->seed;
    c.threads = 1;
    uakd_synth_result res;
    if (uakd_synth_run(&c, NULL, NULL, &res) != UAKD_OK) return 0;
    if (s->format != UAKD_SYNTH_SPEEDPLUS) return 1;
    char csv[1100];
    return snprintf(csv, sizeof csv, "%s/kp.csv", dir) < (int)sizeof csv && test_write_tango_csv(csv);
}

#endif
