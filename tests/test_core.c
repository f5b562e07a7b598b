/* Tests of the status/error machinery, the random number generator and image IO. */
#include "test.h"
#include "uakd/image.h"
#include "uakd/rng.h"
#include "uakd/status.h"

static void test_fail_sets_message(void) {
    uakd_clear_error();
    CHECK(uakd_last_error()[0] == '\0');
    uakd_status st = uakd_fail(UAKD_EFORMAT, "%s: field \"%s\": bad", "a.json", "cam_K");
    CHECK(st == UAKD_EFORMAT);
    CHECK(strcmp(uakd_last_error(), "a.json: field \"cam_K\": bad") == 0);
    uakd_fail_context(st, "loading scene: ");
    CHECK(strcmp(uakd_last_error(), "loading scene: a.json: field \"cam_K\": bad") == 0);
}

static void test_rng_reproducible_and_uniform(void) {
    uakd_rng a, b;
    uakd_rng_seed(&a, 42);
    uakd_rng_seed(&b, 42);
    for (int i = 0; i < 100; i++) CHECK(uakd_rng_u64(&a) == uakd_rng_u64(&b));
    double sum = 0, sum2 = 0, nsum = 0, nsum2 = 0;
    int counts[7] = {0};
    const int n = 200000;
    for (int i = 0; i < n; i++) {
        double u = uakd_rng_uniform(&a);
        CHECK(u >= 0.0 && u < 1.0);
        sum += u;
        sum2 += u * u;
        double z = uakd_rng_normal(&a);
        nsum += z;
        nsum2 += z * z;
        counts[uakd_rng_below(&a, 7)]++;
    }
    CHECK_NEAR(sum / n, 0.5, 0.005);
    CHECK_NEAR(sum2 / n - (sum / n) * (sum / n), 1.0 / 12, 0.002);
    CHECK_NEAR(nsum / n, 0.0, 0.01);
    CHECK_NEAR(nsum2 / n, 1.0, 0.02);
    for (int k = 0; k < 7; k++) CHECK_NEAR(counts[k] / (double)n, 1.0 / 7, 0.004);
    uakd_rng s1, s2;
    uakd_rng_split(&b, 1, &s1);
    uakd_rng_split(&b, 2, &s2);
    CHECK(uakd_rng_u64(&s1) != uakd_rng_u64(&s2));
}

static void test_png_roundtrip_and_scaling(void) {
    uakd_image im, back, half;
    CHECK_OK(uakd_image_alloc(&im, 37, 21, 3));
    for (int i = 0; i < 37 * 21 * 3; i++) im.data[i] = (uint8_t)(i * 7);
    const char *path = test_tmp("core_rt.png");
    CHECK_OK(uakd_image_write(path, &im, 0));
    CHECK_OK(uakd_image_read(path, 3, 1, &back));
    CHECK(back.width == 37 && back.height == 21 && back.channels == 3);
    CHECK(back.data && memcmp(back.data, im.data, 37 * 21 * 3) == 0);
    CHECK_OK(uakd_image_read(path, 3, 2, &half));
    CHECK(half.width == 19 && half.height == 11);
    /* box filter: first output pixel is the rounded mean of the 2x2 block */
    unsigned s = im.data[0] + im.data[3] + im.data[37 * 3] + im.data[37 * 3 + 3];
    CHECK(half.data && half.data[0] == (s + 2) / 4);
    uakd_image_free(&im);
    uakd_image_free(&back);
    uakd_image_free(&half);
}

static void test_jpeg_scaled_decode(void) {
    uakd_image im, full, quarter;
    CHECK_OK(uakd_image_alloc(&im, 160, 100, 3));
    for (int y = 0; y < 100; y++)
        for (int x = 0; x < 160; x++)
            for (int c = 0; c < 3; c++) im.data[(y * 160 + x) * 3 + c] = (uint8_t)(c == 0 ? x : c == 1 ? 2 * y : 128);
    const char *path = test_tmp("core_rt.jpg");
    CHECK_OK(uakd_image_write(path, &im, 95));
    CHECK_OK(uakd_image_read(path, 3, 1, &full));
    CHECK_OK(uakd_image_read(path, 3, 4, &quarter));
    CHECK(full.width == 160 && full.height == 100);
    CHECK(quarter.width == 40 && quarter.height == 25);
    if (full.data) {
        double err = 0;
        for (int i = 0; i < 160 * 100 * 3; i++) err += fabs((double)full.data[i] - im.data[i]);
        CHECK(err / (160 * 100 * 3) < 3.0);
    }
    if (quarter.data) {
        /* red channel follows x: pixel (10, 5) of the quarter image covers x 40..43 */
        CHECK_NEAR(quarter.data[(5 * 40 + 10) * 3 + 0], 41.5, 4.0);
    }
    uakd_image_free(&im);
    uakd_image_free(&full);
    uakd_image_free(&quarter);
}

static void test_real_fixture_png(void) {
    uakd_image im;
    int w = 0, h = 0;
    CHECK_OK(uakd_image_read_size(test_shared("data/lmo/test/000002/rgb/000072.png"), &w, &h));
    CHECK(w == 640 && h == 480);
    CHECK_OK(uakd_image_read(test_shared("data/lmo/test/000002/rgb/000072.png"), 3, 1, &im));
    CHECK(im.width == 640 && im.height == 480);
    uakd_image_free(&im);
}

static void test_corrupt_images_fail_cleanly(void) {
    uakd_image im;
    unsigned char junk[64] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 1, 2, 3};
    CHECK_FAILS(uakd_image_decode(junk, sizeof junk, 3, 1, "junk.png", &im), UAKD_EFORMAT);
    CHECK(strstr(uakd_last_error(), "junk.png") != NULL);
    unsigned char text[] = "hello";
    CHECK_FAILS(uakd_image_decode(text, sizeof text, 3, 1, "x", &im), UAKD_EFORMAT);
    CHECK_FAILS(uakd_image_read(test_tmp("does-not-exist.png"), 3, 1, &im), UAKD_EIO);
    /* a real PNG cut in half */
    FILE *f = fopen(test_shared("data/lmo/test/000002/rgb/000124.png"), "rb");
    CHECK(f != NULL);
    if (f) {
        static unsigned char buf[1 << 20];
        size_t n = fread(buf, 1, sizeof buf, f);
        fclose(f);
        CHECK_FAILS(uakd_image_decode(buf, n / 2, 3, 1, "half.png", &im), UAKD_EFORMAT);
    }
    /* a JPEG cut in half */
    uakd_image src;
    CHECK_OK(uakd_image_alloc(&src, 64, 64, 3));
    for (int i = 0; i < 64 * 64 * 3; i++) src.data[i] = (uint8_t)(i * 13);
    CHECK_OK(uakd_image_write(test_tmp("cut.jpg"), &src, 90));
    f = fopen(test_tmp("cut.jpg"), "rb");
    if (f) {
        static unsigned char jb[1 << 16];
        size_t n = fread(jb, 1, sizeof jb, f);
        fclose(f);
        CHECK_FAILS(uakd_image_decode(jb, n / 2, 3, 1, "cut.jpg", &im), UAKD_EFORMAT);
    }
    uakd_image_free(&src);
}

int main(void) {
    RUN(test_fail_sets_message);
    RUN(test_rng_reproducible_and_uniform);
    RUN(test_png_roundtrip_and_scaling);
    RUN(test_jpeg_scaled_decode);
    RUN(test_real_fixture_png);
    RUN(test_corrupt_images_fail_cleanly);
    return TEST_END();
}
