/* Tests of the background batch loader on the LM-O fixture: determinism whatever the timing,
 * epoch shuffling, resuming from a saved position, single passes, error propagation. */
#include <time.h>

#include "test.h"
#include "uakd/loader.h"

#define NB 6

typedef struct {
    int n;
    float *images;
    int instance[8];
    double kp[8][2];
    uakd_loader_position start;
} saved_batch;

static void save(const uakd_batch *b, saved_batch *s) {
    size_t sz = (size_t)b->n * 3 * b->height * b->width * sizeof(float);
    s->n = b->n;
    s->images = malloc(sz);
    memcpy(s->images, b->images, sz);
    for (int i = 0; i < b->n; i++) {
        s->instance[i] = b->targets[i].instance;
        s->kp[i][0] = b->targets[i].kp2d[0][0];
        s->kp[i][1] = b->targets[i].kp2d[0][1];
    }
    s->start = b->start;
}

static int same(const uakd_batch *b, const saved_batch *s) {
    if (b->n != s->n || b->start.epoch != s->start.epoch || b->start.index != s->start.index) return 0;
    for (int i = 0; i < b->n; i++)
        if (b->targets[i].instance != s->instance[i] || b->targets[i].kp2d[0][0] != s->kp[i][0] ||
            b->targets[i].kp2d[0][1] != s->kp[i][1])
            return 0;
    return memcmp(b->images, s->images, (size_t)b->n * 3 * b->height * b->width * sizeof(float)) == 0;
}

static void sleep_ms(int ms) {
    struct timespec ts = {0, ms * 1000000L};
    nanosleep(&ts, NULL);
}

static uakd_loader_config train_config(uint64_t seed) {
    uakd_loader_config c = {.batch_size = 4, .seed = seed, .shuffle = 1, .single_pass = 0};
    uakd_augment_config_default(&c.sample, 1);
    c.sample.out_width = c.sample.out_height = 48;
    return c;
}

static void test_deterministic_and_resumable(void) {
    uakd_dataset *ds = NULL;
    CHECK_OK(uakd_dataset_load_bop(test_shared("data/lmo"), "test", NULL, &ds));
    if (!ds) return;
    int idx[10];
    for (int i = 0; i < 10; i++) idx[i] = 3 * i + 1;
    uakd_loader_config cfg = train_config(1234);
    saved_batch ref[NB];
    uakd_loader_position saved = {0, 0};
    uakd_loader *A = NULL, *B = NULL, *C = NULL, *D = NULL;
    CHECK_OK(uakd_loader_new(ds, idx, 10, &cfg, &A));
    if (!A) return;
    for (int k = 0; k < NB; k++) {
        const uakd_batch *b = NULL;
        CHECK_OK(uakd_loader_next(A, &b));
        if (!b) return;
        CHECK(b->n == 4 && b->channels == 3 && b->height == 48 && b->width == 48);
        save(b, &ref[k]);
        if (k == 1) saved = uakd_loader_tell(A);
    }
    CHECK(saved.epoch == 0 && saved.index == 8);
    /* each epoch visits every index once, in a new order */
    int seen[2][10] = {{0}}, order_differs = 0;
    for (int k = 0; k < 5; k++)
        for (int i = 0; i < 4; i++) {
            int pos = 4 * k + i, e = pos / 10, slot = -1;
            for (int j = 0; j < 10; j++)
                if (idx[j] == ref[k].instance[i]) slot = j;
            CHECK(slot >= 0);
            if (slot >= 0) seen[e][slot]++;
            if (e == 0) {
                int pos1 = pos + 10;
                order_differs |= ref[pos1 / 4].instance[pos1 % 4] != ref[k].instance[i];
            }
        }
    for (int e = 0; e < 2; e++)
        for (int j = 0; j < 10; j++) CHECK(seen[e][j] == 1);
    CHECK(order_differs);
    CHECK(ref[2].start.epoch == 0 && ref[2].start.index == 8 && ref[3].start.epoch == 1 && ref[3].start.index == 2);

    /* same seed, a slow consumer, two threads and an image cache: identical batches */
    uakd_loader_config cfg2 = cfg;
    cfg2.threads = 2;
    cfg2.cache_bytes = 64u << 20;
    CHECK_OK(uakd_loader_new(ds, idx, 10, &cfg2, &B));
    for (int k = 0; k < NB && B; k++) {
        const uakd_batch *b = NULL;
        sleep_ms(k % 2 ? 30 : 0);
        CHECK_OK(uakd_loader_next(B, &b));
        CHECK(b && same(b, &ref[k]));
    }
    /* resume from the saved position: the rest of the stream */
    CHECK_OK(uakd_loader_new(ds, idx, 10, &cfg, &C));
    if (C) {
        CHECK_OK(uakd_loader_seek(C, saved));
        for (int k = 2; k < NB; k++) {
            const uakd_batch *b = NULL;
            CHECK_OK(uakd_loader_next(C, &b));
            CHECK(b && same(b, &ref[k]));
        }
        uakd_loader_position bad = {0, 10};
        CHECK_FAILS(uakd_loader_seek(C, bad), UAKD_EINVAL);
    }
    /* another seed: other batches */
    uakd_loader_config other = train_config(99);
    CHECK_OK(uakd_loader_new(ds, idx, 10, &other, &D));
    if (D) {
        const uakd_batch *b = NULL;
        CHECK_OK(uakd_loader_next(D, &b));
        CHECK(b && !same(b, &ref[0]));
    }
    uakd_loader_free(A);
    uakd_loader_free(B);
    uakd_loader_free(C);
    uakd_loader_free(D);
    for (int k = 0; k < NB; k++) free(ref[k].images);
    uakd_dataset_free(ds);
}

static void test_single_pass_matches_direct_samples(void) {
    uakd_dataset *ds = NULL;
    CHECK_OK(uakd_dataset_load_bop(test_shared("data/lmo"), "test", NULL, &ds));
    if (!ds) return;
    int idx[10];
    for (int i = 0; i < 10; i++) idx[i] = 6 * i;
    uakd_loader_config cfg = {.batch_size = 4, .seed = 5, .shuffle = 0, .single_pass = 1};
    uakd_augment_config_default(&cfg.sample, 0);
    cfg.sample.out_width = cfg.sample.out_height = 32;
    uakd_loader *L = NULL;
    CHECK_OK(uakd_loader_new(ds, idx, 10, &cfg, &L));
    if (!L) return;
    uakd_sample_scratch sc = {0};
    float img[3 * 32 * 32];
    uint8_t mask[32 * 32];
    int sizes[3] = {4, 4, 2}, pos = 0;
    for (int k = 0; k < 3; k++) {
        const uakd_batch *b = NULL;
        CHECK_OK(uakd_loader_next(L, &b));
        if (!b) break;
        CHECK(b->n == sizes[k]);
        for (int i = 0; i < b->n; i++, pos++) {
            uakd_target t;
            CHECK(b->targets[i].instance == idx[pos]);
            CHECK_OK(uakd_sample_prepare(ds, idx[pos], &cfg.sample, NULL, NULL, &sc, img, mask, &t));
            CHECK(memcmp(img, b->images + (size_t)i * 3 * 32 * 32, sizeof img) == 0);
            CHECK(memcmp(mask, b->masks + (size_t)i * 32 * 32, sizeof mask) == 0);
            const uakd_target *bt = &b->targets[i];
            CHECK(memcmp(t.kp2d, bt->kp2d, sizeof t.kp2d) == 0 && memcmp(t.crop.A, bt->crop.A, sizeof t.crop.A) == 0);
            CHECK(memcmp(&t.pose, &bt->pose, sizeof t.pose) == 0 && t.obj_id == bt->obj_id);
        }
    }
    for (int k = 0; k < 2; k++) {
        const uakd_batch *b = (const uakd_batch *)1;
        CHECK_OK(uakd_loader_next(L, &b));
        CHECK(b == NULL);
    }
    /* seek back to the last batch */
    uakd_loader_position p = {0, 8};
    CHECK_OK(uakd_loader_seek(L, p));
    const uakd_batch *b = NULL;
    CHECK_OK(uakd_loader_next(L, &b));
    CHECK(b && b->n == 2 && b->targets[1].instance == idx[9]);
    p.epoch = 1;
    CHECK_FAILS(uakd_loader_seek(L, p), UAKD_EINVAL);
    uakd_sample_scratch_free(&sc);
    uakd_loader_free(L);
    uakd_dataset_free(ds);
}

static void test_errors_propagate(void) {
    uakd_dataset *ds = NULL;
    CHECK_OK(uakd_dataset_load_bop(test_shared("data/lmo"), "test", NULL, &ds));
    if (!ds) return;
    free(ds->instances[2].image_path);
    ds->instances[2].image_path = strdup(test_tmp("no-such-image.png"));
    int idx[6] = {0, 1, 2, 3, 4, 5};
    uakd_loader_config cfg = {.batch_size = 4, .seed = 1, .shuffle = 0, .single_pass = 1};
    uakd_augment_config_default(&cfg.sample, 0);
    cfg.sample.out_width = cfg.sample.out_height = 32;
    uakd_loader *L = NULL;
    CHECK_OK(uakd_loader_new(ds, idx, 6, &cfg, &L));
    if (!L) return;
    const uakd_batch *b = NULL;
    for (int k = 0; k < 2; k++) {
        CHECK_FAILS(uakd_loader_next(L, &b), UAKD_EIO);
        CHECK(b == NULL && strstr(uakd_last_error(), "no-such-image.png"));
        CHECK(uakd_loader_tell(L).index == 0);
    }
    uakd_loader_position p = {0, 4};
    CHECK_OK(uakd_loader_seek(L, p));
    CHECK_OK(uakd_loader_next(L, &b));
    CHECK(b && b->n == 2 && b->targets[0].instance == 4);
    uakd_loader_free(L);
    /* with several threads the reported error is still the first failing sample's */
    cfg.threads = 3;
    free(ds->instances[3].image_path);
    ds->instances[3].image_path = strdup(test_tmp("another-missing.png"));
    CHECK_OK(uakd_loader_new(ds, idx, 6, &cfg, &L));
    CHECK_FAILS(uakd_loader_next(L, &b), UAKD_EIO);
    CHECK(strstr(uakd_last_error(), "no-such-image.png") != NULL);
    uakd_loader_free(L);
    cfg.threads = 65;
    CHECK_FAILS(uakd_loader_new(ds, idx, 6, &cfg, &L), UAKD_EINVAL);
    cfg.threads = 1;

    int bad[1] = {63};
    CHECK_FAILS(uakd_loader_new(ds, bad, 1, &cfg, &L), UAKD_EINVAL);
    CHECK(L == NULL);
    cfg.batch_size = 0;
    CHECK_FAILS(uakd_loader_new(ds, idx, 6, &cfg, &L), UAKD_EINVAL);
    cfg.batch_size = 2;
    cfg.sample.out_width = 2;
    CHECK_FAILS(uakd_loader_new(ds, idx, 6, &cfg, &L), UAKD_EINVAL);
    /* a loader freed while its worker is busy shuts down cleanly */
    cfg.sample.out_width = 32;
    CHECK_OK(uakd_loader_new(ds, idx + 3, 3, &cfg, &L));
    uakd_loader_free(L);
    uakd_dataset_free(ds);
}

int main(void) {
    RUN(test_deterministic_and_resumable);
    RUN(test_single_pass_matches_direct_samples);
    RUN(test_errors_propagate);
    return TEST_END();
}
