/* Writes the built-in Tango's 11 keypoints as a keypoint CSV (index,x,y,z), the file the SPEED+
 * commands take with --keypoints, for tests that build tiny SPEED+ datasets. */
#ifndef UAKD_TEST_TANGO_CSV_H
#define UAKD_TEST_TANGO_CSV_H

#include <stdio.h>

#include "uakd/synth.h"

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

#endif
