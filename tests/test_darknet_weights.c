/* Tests of the darknet .weights reader on small files written here: both header versions,
 * exact, prefix and over-long files, errors naming the layer, and the DarkNet-53 layout (whose
 * size is that of the published darknet53.conv.74 file). */
#include "test.h"
#include "uakd/darknet_weights.h"
#include "uakd/fileio.h"
#include "uakd/netdesc.h"
#include "uakd/status.h"

#include <stdint.h>

/* Layers: 0 conv 3x3 BN (2 -> 3), 1 maxpool, 2 conv 1x1 with bias (3 -> 2), 3 conv 1x1 BN (2 -> 4).
 * Stored values: 4*3 + 3*2*9 = 66, 2 + 2*3 = 8, 4*4 + 4*2 = 24; 98 in all. */
static const char *NET =
    "[net]\nwidth=4\nheight=4\nchannels=2\n"
    "[convolutional]\nfilters=3\nsize=3\npad=1\nbatch_normalize=1\nactivation=leaky\n"
    "[maxpool]\n"
    "[convolutional]\nfilters=2\nsize=1\n"
    "[convolutional]\nfilters=4\nsize=1\nbatch_normalize=1\n";

/* Writes a weights file: header (major, minor, revision, seen in 4 or 8 bytes) + values
 * 0, 0.5, 1, ... (count of them) + extra raw bytes. */
static const char *write_weights(const char *name, int major, int minor, uint64_t seen, size_t count, size_t extra) {
    const char *path = test_tmp(name);
    size_t wide = major * 10 + minor >= 2, hb = wide ? 20 : 16, n = hb + 4 * count + extra;
    unsigned char *buf = calloc(n, 1);
    int32_t h[3] = {major, minor, 5};
    memcpy(buf, h, 12);
    if (wide) memcpy(buf + 12, &seen, 8);
    else {
        uint32_t s32 = (uint32_t)seen;
        memcpy(buf + 12, &s32, 4);
    }
    for (size_t i = 0; i < count; i++) {
        float v = 0.5f * (float)i;
        memcpy(buf + hb + 4 * i, &v, 4);
    }
    uakd_status st = uakd_write_file_atomic(path, buf, n);
    free(buf);
    CHECK_OK(st);
    return path;
}

static void get_layout(uakd_darknet_layer **layers, size_t *n) {
    uakd_netdesc *d;
    *layers = NULL;
    *n = 0;
    CHECK_OK(uakd_netdesc_parse(NET, strlen(NET), "net", &d));
    if (!d) return;
    CHECK_OK(uakd_darknet_layout(d, layers, n));
    uakd_netdesc_free(d);
}

static void test_layout(void) {
    uakd_darknet_layer *l;
    size_t n;
    get_layout(&l, &n);
    CHECK(n == 3);
    if (n == 3) {
        CHECK(l[0].layer == 0 && l[0].n_floats == 66 && l[0].line == 5);
        CHECK(l[1].layer == 2 && l[1].n_floats == 8);
        CHECK(l[2].layer == 3 && l[2].n_floats == 24);
    }
    free(l);
    /* DarkNet-53: 40,584,928 parameters + 2 x 17,856 running statistics = 40,620,640 values, i.e.
     * 20 + 4 * 40,620,640 = 162,482,580 bytes, the size of darknet53.conv.74. */
    uakd_netdesc *d;
    CHECK_OK(uakd_netdesc_load("cfg/darknet53.cfg", &d));
    if (!d) return;
    CHECK_OK(uakd_darknet_layout(d, &l, &n));
    size_t total = 0;
    for (size_t i = 0; i < n; i++) total += l[i].n_floats;
    CHECK(n == 52 && total == 40620640);
    CHECK(20 + 4 * total == 162482580);
    free(l);
    uakd_netdesc_free(d);
    const char *gn = "[net]\nwidth=4\nheight=4\n[convolutional]\nfilters=32\nnorm=group\n";
    CHECK_OK(uakd_netdesc_parse(gn, strlen(gn), "gn", &d));
    if (d) {
        CHECK_FAILS(uakd_darknet_layout(d, &l, &n), UAKD_EUNSUPPORTED);
        CHECK(strstr(uakd_last_error(), "GroupNorm") && l == NULL);
        uakd_netdesc_free(d);
    }
    const char *nobias = "[net]\nwidth=4\nheight=4\n[convolutional]\nfilters=3\nbias=0\n";
    CHECK_OK(uakd_netdesc_parse(nobias, strlen(nobias), "nobias", &d));
    if (d) {
        CHECK_FAILS(uakd_darknet_layout(d, &l, &n), UAKD_EUNSUPPORTED);
        uakd_netdesc_free(d);
    }
}

static void test_exact_file_both_header_versions(void) {
    uakd_darknet_layer *l;
    size_t n, covered;
    get_layout(&l, &n);
    struct {
        int major, minor;
        size_t header;
    } versions[] = {{0, 2, 20}, {0, 1, 16}, {1, 0, 20}};
    for (int v = 0; v < 3; v++) {
        const char *path = write_weights("w_exact.weights", versions[v].major, versions[v].minor, 123456789, 98, 0);
        uakd_darknet_weights *w;
        CHECK_OK(uakd_darknet_weights_open(path, &w));
        if (!w) continue;
        const uakd_darknet_header *h = uakd_darknet_weights_header(w);
        CHECK(h->major == versions[v].major && h->minor == versions[v].minor && h->revision == 5);
        CHECK(h->seen == 123456789 && h->header_bytes == versions[v].header);
        CHECK(uakd_darknet_weights_available(w) == 98);
        CHECK_OK(uakd_darknet_weights_plan(w, l, n, 0, &covered));
        CHECK(covered == 3);
        float buf[98];
        CHECK_OK(uakd_darknet_weights_read(w, buf, 66));
        CHECK(buf[0] == 0 && buf[65] == 32.5f);
        CHECK_OK(uakd_darknet_weights_read(w, buf, 32));
        CHECK(buf[0] == 33 && buf[31] == 48.5f);
        CHECK_FAILS(uakd_darknet_weights_read(w, buf, 1), UAKD_EFORMAT);
        uakd_darknet_weights_close(w);
    }
    free(l);
}

static void test_prefix_and_mismatch(void) {
    uakd_darknet_layer *l;
    size_t n, covered = 99;
    get_layout(&l, &n);
    uakd_darknet_weights *w;
    /* 74 values = layers 0 and 2 exactly: a truncated backbone. */
    CHECK_OK(uakd_darknet_weights_open(write_weights("w_prefix.weights", 0, 2, 0, 74, 0), &w));
    if (w) {
        CHECK_FAILS(uakd_darknet_weights_plan(w, l, n, 0, &covered), UAKD_EFORMAT);
        CHECK(strstr(uakd_last_error(), "first 2 of 3") && strstr(uakd_last_error(), "before layer 3 (line 15)"));
        CHECK(covered == 0);
        CHECK_OK(uakd_darknet_weights_plan(w, l, n, UAKD_DARKNET_ALLOW_PREFIX, &covered));
        CHECK(covered == 2);
        uakd_darknet_weights_close(w);
    }
    /* 70 values end inside layer 2, which is an error even when prefixes are allowed. */
    CHECK_OK(uakd_darknet_weights_open(write_weights("w_mid.weights", 0, 2, 0, 70, 0), &w));
    if (w) {
        CHECK_FAILS(uakd_darknet_weights_plan(w, l, n, UAKD_DARKNET_ALLOW_PREFIX, &covered), UAKD_EFORMAT);
        CHECK(strstr(uakd_last_error(), "ends inside layer 2 (line 12)") && strstr(uakd_last_error(), "needs 8"));
        uakd_darknet_weights_close(w);
    }
    /* 100 values: two too many unless trailing values are allowed. */
    CHECK_OK(uakd_darknet_weights_open(write_weights("w_long.weights", 0, 2, 0, 100, 0), &w));
    if (w) {
        CHECK_FAILS(uakd_darknet_weights_plan(w, l, n, UAKD_DARKNET_ALLOW_PREFIX, &covered), UAKD_EFORMAT);
        CHECK(strstr(uakd_last_error(), "2 values too many") != NULL);
        CHECK_OK(uakd_darknet_weights_plan(w, l, n, UAKD_DARKNET_ALLOW_TRAILING, &covered));
        CHECK(covered == 3);
        uakd_darknet_weights_close(w);
    }
    /* A header alone covers nothing. */
    CHECK_OK(uakd_darknet_weights_open(write_weights("w_empty.weights", 0, 2, 0, 0, 0), &w));
    if (w) {
        CHECK_FAILS(uakd_darknet_weights_plan(w, l, n, UAKD_DARKNET_ALLOW_PREFIX, &covered), UAKD_EFORMAT);
        uakd_darknet_weights_close(w);
    }
    free(l);
}

static void test_bad_files(void) {
    uakd_darknet_weights *w;
    CHECK_FAILS(uakd_darknet_weights_open(write_weights("w_ragged.weights", 0, 2, 0, 10, 3), &w), UAKD_EFORMAT);
    CHECK(strstr(uakd_last_error(), "whole number") != NULL);
    CHECK_FAILS(uakd_darknet_weights_open(write_weights("w_version.weights", 1000, 0, 0, 10, 0), &w), UAKD_EFORMAT);
    const char *path = test_tmp("w_short.weights");
    CHECK_OK(uakd_write_file_atomic(path, "\0\0\0\0\2\0\0\0", 8));
    CHECK_FAILS(uakd_darknet_weights_open(path, &w), UAKD_EFORMAT);
    CHECK_OK(uakd_write_file_atomic(path, "\0\0\0\0\2\0\0\0\0\0\0\0\1\0\0\0", 16)); /* v0.2 needs 20 bytes */
    CHECK_FAILS(uakd_darknet_weights_open(path, &w), UAKD_EFORMAT);
    CHECK(strstr(uakd_last_error(), "truncated header") != NULL);
    CHECK_FAILS(uakd_darknet_weights_open(test_tmp("w_missing.weights"), &w), UAKD_EIO);
}

int main(void) {
    RUN(test_layout);
    RUN(test_exact_file_both_header_versions);
    RUN(test_prefix_and_mismatch);
    RUN(test_bad_files);
    return TEST_END();
}
