/* Double-buffered batch loader. One worker thread fills buffer 1 - b while the caller holds
 * buffer b. The worker's job is fully described by (start position, buffer), and the samples of
 * a position depend only on (seed, epoch, index) (see loader.h), so the batches are the same
 * whatever the thread timing, the number of threads filling a batch (sample i goes to thread
 * i mod T; the error reported is that of the lowest failing sample) or the image cache. Worker
 * errors travel back as a status plus a copied message. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "uakd/image.h"
#include "uakd/loader.h"

struct uakd_loader {
    const uakd_dataset *ds;
    int *indices;
    int num_indices;
    uakd_loader_config cfg;
    uakd_batch buf[2];
    int current;               /* buffer the caller holds (or will get next) */
    uakd_loader_position pos;  /* position of the next batch to return */

    /* worker-only state */
    int *perm;
    int64_t perm_epoch;
    int threads;
    uakd_sample_scratch *scratch;      /* one per thread */
    uakd_image_cache *cache;
    uakd_loader_position *slot_pos;    /* per sample of the batch being filled */
    int *slot_idx;

    pthread_t thread;
    int started;               /* the worker thread exists */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int quit;
    int job_pending, job_running, job_done;
    int job_buf;
    uakd_loader_position job_pos;
    uakd_status job_status;
    char job_msg[1024];
};

static void epoch_rng(const uakd_loader *L, int64_t epoch, uakd_rng *out) {
    uakd_rng base;
    uakd_rng_seed(&base, L->cfg.seed);
    uakd_rng_split(&base, (uint64_t)epoch, out);
}

static void make_perm(uakd_loader *L, int64_t epoch) {
    if (L->perm_epoch == epoch) return;
    int n = L->num_indices;
    for (int i = 0; i < n; i++) L->perm[i] = i;
    if (L->cfg.shuffle) {
        uakd_rng er, r;
        epoch_rng(L, epoch, &er);
        uakd_rng_split(&er, 0, &r);
        for (int i = n - 1; i > 0; i--) {
            int j = (int)uakd_rng_below(&r, (uint64_t)i + 1);
            int t = L->perm[i];
            L->perm[i] = L->perm[j];
            L->perm[j] = t;
        }
    }
    L->perm_epoch = epoch;
}

/* Number of samples in the batch starting at pos (0 at the end of a single pass). */
static int batch_count(const uakd_loader *L, uakd_loader_position pos) {
    if (!L->cfg.single_pass) return L->cfg.batch_size;
    if (pos.epoch > 0) return 0;
    int64_t left = L->num_indices - pos.index;
    return left < L->cfg.batch_size ? (int)left : L->cfg.batch_size;
}

static uakd_loader_position advance(const uakd_loader *L, uakd_loader_position p, int n) {
    p.index += n;
    while (p.index >= L->num_indices) {
        p.index -= L->num_indices;
        p.epoch++;
    }
    return p;
}

typedef struct {
    uakd_loader *L;
    uakd_batch *b;
    int tid;
    int failed_at;      /* first failing sample of this part, or -1 */
    uakd_status st;
    char msg[1024];
} fill_part;

/* Prepares samples tid, tid + T, ... of the batch. */
static void *fill_run(void *arg) {
    fill_part *p = arg;
    uakd_loader *L = p->L;
    const uakd_augment_config *sc = &L->cfg.sample;
    const size_t img = (size_t)3 * sc->out_width * sc->out_height, msk = (size_t)sc->out_width * sc->out_height;
    p->failed_at = -1;
    for (int i = p->tid; i < p->b->n; i += L->threads) {
        uakd_rng er, r;
        epoch_rng(L, L->slot_pos[i].epoch, &er);
        uakd_rng_split(&er, 1 + (uint64_t)L->slot_pos[i].index, &r);
        uakd_status st = uakd_sample_prepare(L->ds, L->slot_idx[i], sc, NULL, &r, &L->scratch[p->tid],
                                             p->b->images + i * img, p->b->masks + i * msk, &p->b->targets[i]);
        if (st != UAKD_OK) {
            p->failed_at = i;
            p->st = st;
            snprintf(p->msg, sizeof p->msg, "%s", uakd_last_error());
            break;
        }
    }
    return NULL;
}

static uakd_status fill(uakd_loader *L, uakd_batch *b, uakd_loader_position pos) {
    b->n = batch_count(L, pos);
    b->start = pos;
    for (int i = 0; i < b->n; i++) {
        make_perm(L, pos.epoch);
        L->slot_pos[i] = pos;
        L->slot_idx[i] = L->indices[L->perm[pos.index]];
        pos = advance(L, pos, 1);
    }
    fill_part parts[64];
    pthread_t th[64];
    int started[64] = {0};
    for (int t = 0; t < L->threads; t++) parts[t] = (fill_part){L, b, t, -1, UAKD_OK, ""};
    for (int t = 1; t < L->threads; t++) started[t] = pthread_create(&th[t], NULL, fill_run, &parts[t]) == 0;
    fill_run(&parts[0]);
    for (int t = 1; t < L->threads; t++) {
        if (started[t]) pthread_join(th[t], NULL);
        else fill_run(&parts[t]); /* no thread: do its share here */
    }
    const fill_part *first = NULL;
    for (int t = 0; t < L->threads; t++)
        if (parts[t].failed_at >= 0 && (!first || parts[t].failed_at < first->failed_at)) first = &parts[t];
    if (first) return uakd_fail(first->st, "%s", first->msg);
    return UAKD_OK;
}

static void *worker(void *arg) {
    uakd_loader *L = arg;
    pthread_mutex_lock(&L->mu);
    for (;;) {
        while (!L->quit && !L->job_pending) pthread_cond_wait(&L->cv, &L->mu);
        if (L->quit) break;
        L->job_pending = 0;
        L->job_running = 1;
        uakd_loader_position pos = L->job_pos;
        uakd_batch *b = &L->buf[L->job_buf];
        pthread_mutex_unlock(&L->mu);
        uakd_clear_error();
        uakd_status st = fill(L, b, pos);
        pthread_mutex_lock(&L->mu);
        L->job_status = st;
        if (st != UAKD_OK) snprintf(L->job_msg, sizeof L->job_msg, "%s", uakd_last_error());
        L->job_running = 0;
        L->job_done = 1;
        pthread_cond_broadcast(&L->cv);
    }
    pthread_mutex_unlock(&L->mu);
    return NULL;
}

/* Caller side, with mu held. */
static void submit(uakd_loader *L, int bufi, uakd_loader_position pos) {
    L->job_buf = bufi;
    L->job_pos = pos;
    L->job_done = 0;
    L->job_pending = 1;
    pthread_cond_broadcast(&L->cv);
}

static void wait_idle(uakd_loader *L) {
    while (L->job_pending || L->job_running) pthread_cond_wait(&L->cv, &L->mu);
}

uakd_status uakd_loader_new(const uakd_dataset *ds, const int *indices, int num_indices,
                            const uakd_loader_config *cfg, uakd_loader **out) {
    *out = NULL;
    if (!ds || !indices || num_indices <= 0)
        return uakd_fail(UAKD_EINVAL, "loader: needs a dataset and at least one instance index");
    if (cfg->batch_size < 1 || cfg->batch_size > 4096)
        return uakd_fail(UAKD_EINVAL, "loader: batch_size %d must be in 1..4096", cfg->batch_size);
    if (cfg->threads < 0 || cfg->threads > 64)
        return uakd_fail(UAKD_EINVAL, "loader: threads %d must be in 0..64", cfg->threads);
    UAKD_TRY(uakd_augment_config_check(&cfg->sample));
    for (int i = 0; i < num_indices; i++)
        if (indices[i] < 0 || indices[i] >= ds->num_instances)
            return uakd_fail(UAKD_EINVAL, "loader: index %d (entry %d) outside the dataset's %d instances", indices[i], i,
                             ds->num_instances);
    uakd_loader *L = calloc(1, sizeof *L);
    if (!L) return uakd_fail(UAKD_ENOMEM, "loader: out of memory");
    L->ds = ds;
    L->cfg = *cfg;
    L->num_indices = num_indices;
    L->perm_epoch = -1;
    L->indices = malloc(sizeof(int) * (size_t)num_indices);
    L->perm = malloc(sizeof(int) * (size_t)num_indices);
    L->threads = cfg->threads < 1 ? 1 : cfg->threads;
    L->scratch = calloc((size_t)L->threads, sizeof *L->scratch);
    L->slot_pos = malloc(sizeof *L->slot_pos * (size_t)cfg->batch_size);
    L->slot_idx = malloc(sizeof *L->slot_idx * (size_t)cfg->batch_size);
    int ok = L->indices && L->perm && L->scratch && L->slot_pos && L->slot_idx;
    if (ok && cfg->cache_bytes > 0) ok = uakd_image_cache_new(cfg->cache_bytes, &L->cache) == UAKD_OK;
    for (int t = 0; ok && t < L->threads; t++) L->scratch[t].cache = L->cache;
    const size_t B = (size_t)cfg->batch_size, W = (size_t)cfg->sample.out_width, H = (size_t)cfg->sample.out_height;
    for (int k = 0; k < 2 && ok; k++) {
        uakd_batch *b = &L->buf[k];
        b->channels = 3;
        b->height = (int)H;
        b->width = (int)W;
        b->images = malloc(B * 3 * H * W * sizeof(float));
        b->masks = malloc(B * H * W);
        b->targets = calloc(B, sizeof *b->targets);
        ok = b->images && b->masks && b->targets;
    }
    if (!ok) {
        uakd_loader_free(L);
        return uakd_fail(UAKD_ENOMEM, "loader: out of memory for two batches of %zu x %zux%zu", B, W, H);
    }
    memcpy(L->indices, indices, sizeof(int) * (size_t)num_indices);
    pthread_mutex_init(&L->mu, NULL);
    pthread_cond_init(&L->cv, NULL);
    if (pthread_create(&L->thread, NULL, worker, L) != 0) {
        pthread_mutex_destroy(&L->mu);
        pthread_cond_destroy(&L->cv);
        uakd_loader_free(L);
        return uakd_fail(UAKD_ENOMEM, "loader: cannot start the worker thread");
    }
    L->started = 1;
    pthread_mutex_lock(&L->mu);
    submit(L, 0, L->pos);
    pthread_mutex_unlock(&L->mu);
    *out = L;
    return UAKD_OK;
}

uakd_status uakd_loader_next(uakd_loader *L, const uakd_batch **batch) {
    *batch = NULL;
    pthread_mutex_lock(&L->mu);
    if (!L->job_pending && !L->job_running && !L->job_done) submit(L, L->current, L->pos); /* after an error */
    while (!L->job_done) pthread_cond_wait(&L->cv, &L->mu);
    L->job_done = 0;
    if (L->job_status != UAKD_OK) {
        uakd_status st = L->job_status;
        pthread_mutex_unlock(&L->mu);
        return uakd_fail(st, "%s", L->job_msg);
    }
    uakd_batch *b = &L->buf[L->current];
    if (b->n == 0) { /* end of a single pass: keep answering "no batch" */
        L->job_done = 1;
        pthread_mutex_unlock(&L->mu);
        return UAKD_OK;
    }
    L->pos = advance(L, L->pos, b->n);
    L->current = 1 - L->current;
    submit(L, L->current, L->pos);
    pthread_mutex_unlock(&L->mu);
    *batch = b;
    return UAKD_OK;
}

uakd_loader_position uakd_loader_tell(const uakd_loader *L) { return L->pos; }

uakd_status uakd_loader_seek(uakd_loader *L, uakd_loader_position pos) {
    if (pos.index < 0 || pos.index >= L->num_indices || pos.epoch < 0 || (L->cfg.single_pass && pos.epoch > 0))
        return uakd_fail(UAKD_EINVAL, "loader: position (epoch %lld, index %lld) is outside 0..%d%s", (long long)pos.epoch,
                         (long long)pos.index, L->num_indices - 1, L->cfg.single_pass ? " of epoch 0" : "");
    pthread_mutex_lock(&L->mu);
    wait_idle(L);
    L->pos = pos;
    submit(L, L->current, L->pos);
    pthread_mutex_unlock(&L->mu);
    return UAKD_OK;
}

void uakd_loader_free(uakd_loader *L) {
    if (!L) return;
    if (L->started) {
        pthread_mutex_lock(&L->mu);
        L->quit = 1;
        pthread_cond_broadcast(&L->cv);
        pthread_mutex_unlock(&L->mu);
        pthread_join(L->thread, NULL);
        pthread_mutex_destroy(&L->mu);
        pthread_cond_destroy(&L->cv);
    }
    for (int k = 0; k < 2; k++) {
        free(L->buf[k].images);
        free(L->buf[k].masks);
        free(L->buf[k].targets);
    }
    for (int t = 0; L->scratch && t < L->threads; t++) uakd_sample_scratch_free(&L->scratch[t]);
    free(L->scratch);
    if (L->cache) {
        long hits, misses;
        size_t bytes;
        uakd_image_cache_stats(L->cache, &hits, &misses, &bytes);
        uakd_log(UAKD_LOG_DEBUG, "loader: image cache %ld hits, %ld misses, %zu bytes", hits, misses, bytes);
        uakd_image_cache_free(L->cache);
    }
    free(L->slot_pos);
    free(L->slot_idx);
    free(L->indices);
    free(L->perm);
    free(L);
}
