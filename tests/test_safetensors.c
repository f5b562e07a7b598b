/* Tests of the safetensors reader and writer: a file written by PyTorch (every dtype we
 * convert), byte-identical output to the Python reference writer, round trips with typed
 * metadata, and refusal of every malformation the format forbids. Fixtures come from
 * scripts/ref_safetensors.py. */
#include "test.h"
#include "uakd/fileio.h"
#include "uakd/safetensors.h"
#include "uakd/status.h"

#include <inttypes.h>

static void test_reads_pytorch_file(void) {
    uakd_safetensors *st;
    CHECK_OK(uakd_safetensors_open("tests/data/safetensors/torch_mixed.safetensors", &st));
    if (!st) return;
    CHECK(uakd_safetensors_count(st) == 7);
    CHECK(strcmp(uakd_safetensors_at(st, 0)->name, "backbone.stem.conv.weight") == 0); /* header order */
    CHECK(strcmp(uakd_safetensors_at(st, 6)->name, "empty") == 0);
    float v[8];
    int64_t s4[4] = {2, 3, 1, 1};
    CHECK_OK(uakd_safetensors_read_f32(st, "backbone.stem.conv.weight", 4, s4, v));
    for (int i = 0; i < 6; i++) CHECK(v[i] == (i - 2.5f) / 4);
    int64_t s1 = 3;
    CHECK_OK(uakd_safetensors_read_f32(st, "backbone.stem.bn.running_var", 1, &s1, v));
    CHECK(v[0] == (float)0.1 && v[1] == (float)(1.0 / 3.0) && v[2] == (float)-2.5e-8);
    int64_t s2[2] = {2, 2};
    CHECK_OK(uakd_safetensors_read_f32(st, "head.half", 2, s2, v));
    CHECK(v[0] == 1.0f && v[1] == -0.5f && v[2] == 65504.0f && v[3] == 0x1p-24f);
    s1 = 4;
    CHECK_OK(uakd_safetensors_read_f32(st, "head.bf16", 1, &s1, v));
    CHECK(v[0] == 1.5f && v[1] == -256.0f && v[2] == 0x1p-7f && isinf(v[3]) && v[3] > 0);
    const uakd_st_tensor *t = uakd_safetensors_find(st, "step");
    CHECK(t && t->dtype == UAKD_DTYPE_I64 && t->ndim == 0 && t->numel == 1 && t->nbytes == 8);
    if (t) {
        int64_t step;
        memcpy(&step, t->data, 8);
        CHECK(step == 123456789012LL);
        CHECK_FAILS(uakd_st_tensor_to_f32(t, v), UAKD_EUNSUPPORTED);
    }
    t = uakd_safetensors_find(st, "mask");
    CHECK(t && t->dtype == UAKD_DTYPE_U8 && t->numel == 4);
    if (t) CHECK(((const unsigned char *)t->data)[3] == 255);
    t = uakd_safetensors_find(st, "empty");
    CHECK(t && t->ndim == 1 && t->shape[0] == 0 && t->nbytes == 0);
    CHECK(uakd_safetensors_find(st, "missing") == NULL);
    CHECK(uakd_safetensors_meta_count(st) == 2);
    CHECK(strcmp(uakd_safetensors_meta_key(st, 0), "format") == 0);
    CHECK(strcmp(uakd_safetensors_meta(st, "note"), "written by scripts/ref_safetensors.py") == 0);
    /* Shape mismatches name both shapes. */
    int64_t wrong[4] = {2, 3, 3, 3};
    CHECK_FAILS(uakd_safetensors_read_f32(st, "backbone.stem.conv.weight", 4, wrong, v), UAKD_EFORMAT);
    CHECK(strstr(uakd_last_error(), "[2, 3, 1, 1]") && strstr(uakd_last_error(), "[2, 3, 3, 3]"));
    CHECK_FAILS(uakd_safetensors_read_f32(st, "nope", 1, &s1, v), UAKD_EFORMAT);
    uakd_safetensors_free(st);
}

/* The inputs of expected_writer.safetensors (see scripts/ref_safetensors.py). */
static uakd_status build_expected(uakd_safetensors_writer *w, float *conv, float *var, int64_t *nb) {
    for (int i = 0; i < 18; i++) conv[i] = i * 0.25f - 1;
    var[0] = 1;
    var[1] = 2;
    *nb = 7;
    int64_t sc[4] = {2, 1, 3, 3}, sv = 2;
    UAKD_TRY(uakd_safetensors_writer_set_meta(w, "format", "uakd-test"));
    UAKD_TRY(uakd_safetensors_writer_set_meta_u64(w, "format_version", 1));
    UAKD_TRY(uakd_safetensors_writer_set_meta(w, "note", "quote \" backslash \\ tab \t"));
    UAKD_TRY(uakd_safetensors_writer_add_f32(w, "backbone.stage3.unit2.conv1.weight", 4, sc, conv));
    UAKD_TRY(uakd_safetensors_writer_add_f32(w, "backbone.stage3.unit2.bn1.running_var", 1, &sv, var));
    UAKD_TRY(uakd_safetensors_writer_add(w, "backbone.stage3.unit2.bn1.num_batches_tracked", UAKD_DTYPE_I64, 0, NULL, nb));
    uakd_safetensors_writer_checksum(w, 1);
    return UAKD_OK;
}

static void test_writer_matches_python(void) {
    uakd_safetensors_writer *w;
    CHECK_OK(uakd_safetensors_writer_new(&w));
    float conv[18], var[2];
    int64_t nb;
    CHECK_OK(build_expected(w, conv, var, &nb));
    void *mine, *ref;
    size_t nmine, nref;
    CHECK_OK(uakd_safetensors_writer_to_memory(w, &mine, &nmine));
    CHECK_OK(uakd_read_file("tests/data/safetensors/expected_writer.safetensors", 1 << 20, &ref, &nref));
    CHECK(nmine == nref && memcmp(mine, ref, nref) == 0);
    /* The file writer produces the same bytes. */
    const char *path = test_tmp("st_expected.safetensors");
    CHECK_OK(uakd_safetensors_writer_write(w, path));
    void *disk;
    size_t ndisk;
    CHECK_OK(uakd_read_file(path, 1 << 20, &disk, &ndisk));
    CHECK(ndisk == nref && memcmp(disk, ref, nref) == 0);
    /* And our reader accepts it, checksum included. */
    uakd_safetensors *st;
    CHECK_OK(uakd_safetensors_parse(ref, nref, "expected_writer", &st));
    if (st) {
        CHECK(strcmp(uakd_safetensors_meta(st, "note"), "quote \" backslash \\ tab \t") == 0);
        uakd_safetensors_free(st);
    }
    /* One flipped data bit is caught by the checksum. */
    ((unsigned char *)ref)[nref - 3] ^= 0x10;
    CHECK_FAILS(uakd_safetensors_parse(ref, nref, "flipped", &st), UAKD_EFORMAT);
    CHECK(strstr(uakd_last_error(), "corrupt") != NULL);
    free(mine);
    free(ref);
    free(disk);
    uakd_safetensors_writer_free(w);
}

static void test_round_trip_with_typed_metadata(void) {
    uakd_safetensors_writer *w;
    CHECK_OK(uakd_safetensors_writer_new(&w));
    float a[6] = {1, -2, 3.5f, 1e-30f, -0.0f, 7};
    uint16_t h[3] = {0x3c00, 0xc000, 0x7c00}; /* F16 1, -2, inf */
    int64_t sa[2] = {2, 3}, sh = 3;
    uint64_t rng_state[4] = {0x0123456789abcdefULL, 42, 0, UINT64_MAX};
    CHECK_OK(uakd_safetensors_writer_add_f32(w, "model.a", 2, sa, a));
    CHECK_OK(uakd_safetensors_writer_add(w, "model.h", UAKD_DTYPE_F16, 1, &sh, h));
    CHECK_OK(uakd_safetensors_writer_set_meta(w, "format", "uakd-checkpoint"));
    CHECK_OK(uakd_safetensors_writer_set_meta_u64(w, "format_version", 1));
    CHECK_OK(uakd_safetensors_writer_set_meta_u64(w, "step", 18446744073709551615ULL));
    CHECK_OK(uakd_safetensors_writer_set_meta_f64(w, "lr", 0.1 + 0.2));
    CHECK_OK(uakd_safetensors_writer_set_meta_hex(w, "rng", rng_state, sizeof rng_state));
    CHECK_OK(uakd_safetensors_writer_set_meta_u64(w, "step", 99)); /* replaces, keeps order */
    /* Refusals on the writer side. */
    CHECK_FAILS(uakd_safetensors_writer_add_f32(w, "model.a", 2, sa, a), UAKD_EINVAL);
    CHECK_FAILS(uakd_safetensors_writer_add_f32(w, "", 2, sa, a), UAKD_EINVAL);
    CHECK_FAILS(uakd_safetensors_writer_add_f32(w, "__metadata__", 2, sa, a), UAKD_EINVAL);
    int64_t neg[2] = {2, -1};
    CHECK_FAILS(uakd_safetensors_writer_add_f32(w, "model.neg", 2, neg, a), UAKD_EINVAL);
    const char *path = test_tmp("st_round_trip.safetensors");
    CHECK_OK(uakd_safetensors_writer_write(w, path));
    uakd_safetensors_writer_free(w);

    uakd_safetensors *st;
    CHECK_OK(uakd_safetensors_open(path, &st));
    if (!st) return;
    float b[6];
    CHECK_OK(uakd_safetensors_read_f32(st, "model.a", 2, sa, b));
    CHECK(memcmp(a, b, sizeof a) == 0);
    CHECK_OK(uakd_safetensors_read_f32(st, "model.h", 1, &sh, b));
    CHECK(b[0] == 1 && b[1] == -2 && isinf(b[2]));
    uint64_t v, ver;
    double d;
    uint64_t rng_back[4];
    CHECK_OK(uakd_safetensors_meta_u64(st, "step", &v));
    CHECK(v == 99);
    CHECK(strcmp(uakd_safetensors_meta_key(st, 2), "step") == 0);
    CHECK_OK(uakd_safetensors_meta_f64(st, "lr", &d));
    CHECK(d == 0.1 + 0.2);
    CHECK_OK(uakd_safetensors_meta_hex(st, "rng", rng_back, sizeof rng_back));
    CHECK(memcmp(rng_back, rng_state, sizeof rng_state) == 0);
    CHECK_OK(uakd_safetensors_expect_format(st, "uakd-checkpoint", 1, &ver));
    CHECK(ver == 1);
    CHECK_FAILS(uakd_safetensors_meta_u64(st, "absent", &v), UAKD_EFORMAT);
    CHECK_FAILS(uakd_safetensors_meta_u64(st, "format", &v), UAKD_EFORMAT);
    CHECK_FAILS(uakd_safetensors_meta_f64(st, "format", &d), UAKD_EFORMAT);
    CHECK_FAILS(uakd_safetensors_meta_hex(st, "rng", rng_back, 8), UAKD_EFORMAT);
    CHECK_FAILS(uakd_safetensors_expect_format(st, "uakd-weights", 1, &ver), UAKD_EFORMAT);
    CHECK(strstr(uakd_last_error(), "\"uakd-checkpoint\"") != NULL);
    uakd_safetensors_free(st);
}

static void test_foreign_and_newer_files_refused(void) {
    uakd_safetensors *st;
    CHECK_OK(uakd_safetensors_open("tests/data/safetensors/torch_mixed.safetensors", &st));
    if (st) {
        CHECK_FAILS(uakd_safetensors_expect_format(st, "uakd-checkpoint", 1, NULL), UAKD_EFORMAT);
        CHECK(strstr(uakd_last_error(), "not a uakd-checkpoint file") != NULL);
        uakd_safetensors_free(st);
    }
    uakd_safetensors_writer *w;
    CHECK_OK(uakd_safetensors_writer_new(&w));
    CHECK_OK(uakd_safetensors_writer_set_meta(w, "format", "uakd-checkpoint"));
    CHECK_OK(uakd_safetensors_writer_set_meta(w, "format_version", "2"));
    void *buf;
    size_t n;
    CHECK_OK(uakd_safetensors_writer_to_memory(w, &buf, &n));
    CHECK(n % 8 == 0); /* header padded to a multiple of 8, no data */
    CHECK_OK(uakd_safetensors_parse(buf, n, "newer", &st));
    if (st) {
        CHECK(uakd_safetensors_count(st) == 0);
        CHECK_FAILS(uakd_safetensors_expect_format(st, "uakd-checkpoint", 1, NULL), UAKD_EUNSUPPORTED);
        uakd_safetensors_free(st);
    }
    /* No metadata at all. */
    uakd_safetensors_writer_free(w);
    CHECK_OK(uakd_safetensors_writer_new(&w));
    free(buf);
    CHECK_OK(uakd_safetensors_writer_to_memory(w, &buf, &n));
    CHECK(n == 16 && memcmp((char *)buf + 8, "{}      ", 8) == 0);
    CHECK_OK(uakd_safetensors_parse(buf, n, "bare", &st));
    if (st) {
        CHECK_FAILS(uakd_safetensors_expect_format(st, "uakd-checkpoint", 1, NULL), UAKD_EFORMAT);
        uakd_safetensors_free(st);
    }
    free(buf);
    uakd_safetensors_writer_free(w);
}

/* A file image: le64 header length, the header, then data_len bytes of zeros. */
static size_t make_image(unsigned char *buf, size_t cap, const char *header, size_t data_len) {
    size_t h = strlen(header);
    if (8 + h + data_len > cap) return 0;
    for (int i = 0; i < 8; i++) buf[i] = (unsigned char)((uint64_t)h >> (8 * i));
    memcpy(buf + 8, header, h);
    memset(buf + 8 + h, 0, data_len);
    return 8 + h + data_len;
}

static void expect_refused(const char *header, size_t data_len, const char *needle) {
    unsigned char buf[4096];
    size_t n = make_image(buf, sizeof buf, header, data_len);
    uakd_safetensors *st = (uakd_safetensors *)1;
    uakd_clear_error();
    uakd_status res = uakd_safetensors_parse(buf, n, "bad", &st);
    CHECK_MSG(res == UAKD_EFORMAT || res == UAKD_EUNSUPPORTED, "header %s accepted", header);
    CHECK(st == NULL);
    CHECK_MSG(strstr(uakd_last_error(), needle) != NULL, "message \"%s\" lacks \"%s\"", uakd_last_error(), needle);
}

static void test_malformed_files_refused(void) {
    const char *ok = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
    unsigned char buf[256];
    uakd_safetensors *st;
    size_t n = make_image(buf, sizeof buf, ok, 8);
    CHECK_OK(uakd_safetensors_parse(buf, n, "ok", &st));
    uakd_safetensors_free(st);
    CHECK_FAILS(uakd_safetensors_parse(buf, 7, "short", &st), UAKD_EFORMAT);
    CHECK_FAILS(uakd_safetensors_parse(buf, 20, "cut", &st), UAKD_EFORMAT); /* header longer than file */
    buf[6] = 1;                                                            /* header length ~2^48 */
    CHECK_FAILS(uakd_safetensors_parse(buf, n, "huge", &st), UAKD_EFORMAT);
    CHECK(strstr(uakd_last_error(), "limit") != NULL);

    expect_refused("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}", 8, "well-formed");
    expect_refused("[1,2]", 0, "start with");
    expect_refused("{\"a\":[1,}", 0, "well-formed");
    expect_refused("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}} x", 8, "after the header");
    expect_refused("{\"a\":{\"dtype\":\"F33\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "unknown dtype");
    expect_refused("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, "need 12");
    expect_refused("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8, "end before");
    expect_refused("{\"a\":{\"dtype\":\"F32\",\"shape\":[2.5],\"data_offsets\":[0,8]}}", 8, "shape[0]");
    expect_refused("{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8, "shape[0]");
    expect_refused("{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4294967296],\"data_offsets\":[0,8]}}",
                   8, "overflow");
    expect_refused("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8],\"x\":1}}", 8, "unknown key");
    expect_refused("{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8, "missing");
    expect_refused("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 12, "trailing");
    expect_refused("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 4, "truncated");
    expect_refused("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12, "hole");
    expect_refused("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                   "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12, "overlap");
    expect_refused("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                   "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, "twice");
    expect_refused("{\"\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "empty name");
    expect_refused("{\"__metadata__\":{\"k\":1}}", 0, "must be a string");
    expect_refused("{\"a\xff\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1, "UTF-8");
    expect_refused("{\"a\xc0\x80\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1, "UTF-8");
    expect_refused("{\"a\xed\xa0\x80\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1, "UTF-8");
    expect_refused("{\"a\\u0000b\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1, "NUL");
    expect_refused("{\"a\\nb\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1, "control");
    expect_refused("{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"}}", 0, "twice");
    expect_refused("{\"__metadata__\":{},\"__metadata__\":{}}", 0, "twice");
    expect_refused("{\"__metadata__\":{\"data_crc32\":\"xyz\"}}", 0, "8 hex digits");
    expect_refused("{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 4, "dimensions");
}

int main(void) {
    RUN(test_reads_pytorch_file);
    RUN(test_writer_matches_python);
    RUN(test_round_trip_with_typed_metadata);
    RUN(test_foreign_and_newer_files_refused);
    RUN(test_malformed_files_refused);
    return TEST_END();
}
