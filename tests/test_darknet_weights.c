/* Tests of the darknet .weights reader on small files written here: both header versions,
 * exact, prefix and over-long files, errors naming the layer, and the DarkNet-53 layout (whose
 * size is that of the published darknet53.conv.74 file). */
#include "test.h"
#include "uakd/darknet_weights.h"
#include "uakd/fileio.h"
#include "uakd/netdesc.h"
#include "uakd/safetensors.h"
#include "uakd/status.h"

#include <stdint.h>
#include <sys/wait.h>

/* Layers: 0 conv 3x3 BN (2 -> 3), 1 maxpool, 2 conv 1x1 with bias (3 -> 2), 3 conv 1x1 BN (2 -> 4).
 * Stored values: 4*3 + 3*2*9 = 66, 2 + 2*3 = 8, 4*4 + 4*2 = 24; 98 in all. */
static const char *NET =
    "[net]\nwidth=4\nheight=4\nchannels=2\n"
    "[convolutional]\nname=stem\nfilters=3\nsize=3\npad=1\nbatch_normalize=1\nactivation=leaky\n"
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
        CHECK(strstr(uakd_last_error(), "first 2 of 3") && strstr(uakd_last_error(), "before layer 3 (line 16)"));
        CHECK(covered == 0);
        CHECK_OK(uakd_darknet_weights_plan(w, l, n, UAKD_DARKNET_ALLOW_PREFIX, &covered));
        CHECK(covered == 2);
        uakd_darknet_weights_close(w);
    }
    /* 70 values end inside layer 2, which is an error even when prefixes are allowed. */
    CHECK_OK(uakd_darknet_weights_open(write_weights("w_mid.weights", 0, 2, 0, 70, 0), &w));
    if (w) {
        CHECK_FAILS(uakd_darknet_weights_plan(w, l, n, UAKD_DARKNET_ALLOW_PREFIX, &covered), UAKD_EFORMAT);
        CHECK(strstr(uakd_last_error(), "ends inside layer 2 (line 13)") && strstr(uakd_last_error(), "needs 8"));
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

/* Checks that tensor name holds the stream values first, first + 0.5, ... with the given shape. */
static void check_run(const uakd_safetensors *st, const char *name, int ndim, const int64_t *shape, int first) {
    float v[64];
    CHECK_OK(uakd_safetensors_read_f32(st, name, ndim, shape, v));
    size_t n = 1;
    for (int i = 0; i < ndim; i++) n *= (size_t)shape[i];
    int ok = 1;
    for (size_t i = 0; i < n; i++) ok &= v[i] == 0.5f * (float)(first + (int)i);
    CHECK_MSG(ok, "%s does not hold values %d..", name, first);
}

static void test_convert_to_safetensors(void) {
    uakd_netdesc *d;
    CHECK_OK(uakd_netdesc_parse(NET, strlen(NET), "net", &d));
    if (!d) return;
    const char *out = test_tmp("converted.safetensors");
    size_t covered;
    CHECK_OK(uakd_darknet_to_safetensors(write_weights("w_conv.weights", 0, 2, 77, 98, 0), d, 0, NULL, out, &covered));
    CHECK(covered == 3);
    uakd_safetensors *st;
    CHECK_OK(uakd_safetensors_open(out, &st));
    if (st) {
        CHECK(uakd_safetensors_count(st) == 6 + 2 + 6);
        const uakd_st_tensor *nbt = uakd_safetensors_find(st, "stem.bn.num_batches_tracked");
        CHECK(nbt && nbt->dtype == UAKD_DTYPE_I64 && nbt->ndim == 0 && memcmp(nbt->data, "\0\0\0\0\0\0\0\0", 8) == 0);
        int64_t c3 = 3, c2 = 2, c4 = 4, w0[4] = {3, 2, 3, 3}, w2[4] = {2, 3, 1, 1}, w3[4] = {4, 2, 1, 1};
        check_run(st, "stem.bn.bias", 1, &c3, 0); /* darknet order: beta, gamma, mean, var, weights */
        check_run(st, "stem.bn.weight", 1, &c3, 3);
        check_run(st, "stem.bn.running_mean", 1, &c3, 6);
        check_run(st, "stem.bn.running_var", 1, &c3, 9);
        check_run(st, "stem.conv.weight", 4, w0, 12);
        check_run(st, "layers.2.conv.bias", 1, &c2, 66);
        check_run(st, "layers.2.conv.weight", 4, w2, 68);
        check_run(st, "layers.3.bn.bias", 1, &c4, 74);
        check_run(st, "layers.3.bn.running_var", 1, &c4, 86);
        check_run(st, "layers.3.conv.weight", 4, w3, 90);
        CHECK(strcmp(uakd_safetensors_at(st, 0)->name, "stem.bn.bias") == 0);
        CHECK_OK(uakd_safetensors_expect_format(st, "uakd-weights", 1, NULL));
        CHECK_OK(uakd_netdesc_check_metadata(d, st));
        CHECK(strcmp(uakd_safetensors_meta(st, "darknet_header"), "0.2.5") == 0);
        CHECK(strcmp(uakd_safetensors_meta(st, "darknet_seen"), "77") == 0);
        uakd_safetensors_free(st);
    }
    /* A prefix file converts the layers it covers, when allowed. */
    const char *prefix = write_weights("w_conv_prefix.weights", 0, 1, 5, 74, 0);
    CHECK_FAILS(uakd_darknet_to_safetensors(prefix, d, 0, NULL, out, &covered), UAKD_EFORMAT);
    CHECK_OK(uakd_darknet_to_safetensors(prefix, d, UAKD_DARKNET_ALLOW_PREFIX, "backbone.", out, &covered));
    CHECK(covered == 2);
    CHECK_OK(uakd_safetensors_open(out, &st));
    if (st) {
        CHECK(uakd_safetensors_count(st) == 8 && uakd_safetensors_find(st, "backbone.layers.3.conv.weight") == NULL);
        CHECK(uakd_safetensors_find(st, "backbone.stem.bn.running_var") != NULL);
        CHECK(strcmp(uakd_safetensors_meta(st, "darknet_layers"), "2") == 0);
        uakd_safetensors_free(st);
    }
    uakd_netdesc_free(d);
}

/* `uakd convert` end to end (needs UAKD_CLI, set by `make test`). */
static void test_cli_convert(void) {
    const char *cfg = test_tmp("cli_net.cfg"), *out = test_tmp("cli_out.safetensors");
    CHECK_OK(uakd_write_file_atomic(cfg, NET, strlen(NET)));
    const char *in = write_weights("cli_in.weights", 0, 2, 0, 74, 0);
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "%s convert --cfg %s --darknet %s -o %s >/dev/null 2>&1", getenv("UAKD_CLI"), cfg, in, out);
    int rc = system(cmd);
    CHECK(WIFEXITED(rc) && WEXITSTATUS(rc) == 3); /* a prefix, not allowed */
    snprintf(cmd, sizeof cmd, "%s convert --cfg %s --darknet %s -o %s --prefix --names-under net. >/dev/null",
             getenv("UAKD_CLI"), cfg, in, out);
    rc = system(cmd);
    CHECK(WIFEXITED(rc) && WEXITSTATUS(rc) == 0);
    uakd_safetensors *st;
    CHECK_OK(uakd_safetensors_open(out, &st));
    if (st) {
        int64_t w2[4] = {2, 3, 1, 1};
        check_run(st, "net.layers.2.conv.weight", 4, w2, 68);
        uakd_safetensors_free(st);
    }
}

int main(void) {
    RUN(test_layout);
    RUN(test_exact_file_both_header_versions);
    RUN(test_prefix_and_mismatch);
    RUN(test_bad_files);
    RUN(test_convert_to_safetensors);
    if (getenv("UAKD_CLI")) RUN(test_cli_convert);
    else SKIP(test_cli_convert, "UAKD_CLI not set (run through make test)");
    return TEST_END();
}
