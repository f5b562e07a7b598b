/* Checkpoints (uakd/checkpoint.h): network tensors + optimizer state as tensors, counters and the
 * RNG state as typed metadata, all in one atomically written safetensors file with a data CRC. */
#include "uakd/checkpoint.h"

#include <string.h>

#include "uakd/weights.h"

uakd_status uakd_checkpoint_save(const char *path, const uakd_net *net, const uakd_optim *opt,
                                 const uakd_train_state *s, uakd_put_meta_fn put_meta, const void *arch) {
    if (s->step < 0 || s->total_steps < 0)
        return uakd_fail(UAKD_EINVAL, "checkpoint %s: negative step %lld / total %lld", path, (long long)s->step,
                         (long long)s->total_steps);
    int64_t count;
    const float *state = uakd_optim_state(opt, &count);
    uakd_safetensors_writer *w;
    UAKD_TRY(uakd_safetensors_writer_new(&w));
    uakd_status st = uakd_safetensors_writer_set_meta(w, "format", UAKD_CHECKPOINT_FORMAT);
    if (st == UAKD_OK) st = uakd_safetensors_writer_set_meta_u64(w, "format_version", UAKD_CHECKPOINT_VERSION);
    if (st == UAKD_OK) st = uakd_safetensors_writer_set_meta_u64(w, "step", (uint64_t)s->step);
    if (st == UAKD_OK) st = uakd_safetensors_writer_set_meta_u64(w, "total_steps", (uint64_t)s->total_steps);
    if (st == UAKD_OK) st = uakd_safetensors_writer_set_meta_u64(w, "optim_steps", (uint64_t)uakd_optim_steps(opt));
    uint8_t rng[32];
    for (int i = 0; i < 4; i++)
        for (int b = 0; b < 8; b++) rng[8 * i + b] = (uint8_t)(s->rng.s[i] >> (8 * b));
    if (st == UAKD_OK) st = uakd_safetensors_writer_set_meta_hex(w, "rng", rng, sizeof rng);
    if (st == UAKD_OK && s->has_loader) {
        if (s->loader.epoch < 0 || s->loader.index < 0)
            st = uakd_fail(UAKD_EINVAL, "checkpoint %s: negative loader position", path);
        if (st == UAKD_OK) st = uakd_safetensors_writer_set_meta_u64(w, "loader_epoch", (uint64_t)s->loader.epoch);
        if (st == UAKD_OK) st = uakd_safetensors_writer_set_meta_u64(w, "loader_index", (uint64_t)s->loader.index);
    }
    if (st == UAKD_OK && put_meta) st = put_meta(arch, w);
    if (st == UAKD_OK) st = uakd_weights_add(w, net);
    const int64_t shape = count;
    if (st == UAKD_OK) st = uakd_safetensors_writer_add_f32(w, "optim.state", 1, &shape, state);
    uakd_safetensors_writer_checksum(w, 1);
    if (st == UAKD_OK) st = uakd_safetensors_writer_write(w, path);
    uakd_safetensors_writer_free(w);
    return st;
}

static uakd_status meta_i64(const uakd_safetensors *st, const char *key, int64_t *v) {
    uint64_t u;
    UAKD_TRY(uakd_safetensors_meta_u64(st, key, &u));
    if (u > (uint64_t)INT64_MAX) return uakd_fail(UAKD_EFORMAT, "metadata %s = %llu is too large", key, (unsigned long long)u);
    *v = (int64_t)u;
    return UAKD_OK;
}

static uakd_status load(const uakd_safetensors *st, uakd_net *net, uakd_optim *opt, uakd_train_state *s,
                        uakd_check_meta_fn check_meta, const void *arch) {
    UAKD_TRY(uakd_safetensors_expect_format(st, UAKD_CHECKPOINT_FORMAT, UAKD_CHECKPOINT_VERSION, NULL));
    if (check_meta) UAKD_TRY(check_meta(arch, st));
    uakd_train_state r;
    memset(&r, 0, sizeof r);
    int64_t optim_steps = 0;
    UAKD_TRY(meta_i64(st, "step", &r.step));
    UAKD_TRY(meta_i64(st, "total_steps", &r.total_steps));
    UAKD_TRY(meta_i64(st, "optim_steps", &optim_steps));
    uint8_t rng[32];
    UAKD_TRY(uakd_safetensors_meta_hex(st, "rng", rng, sizeof rng));
    for (int i = 0; i < 4; i++)
        for (int b = 0; b < 8; b++) r.rng.s[i] |= (uint64_t)rng[8 * i + b] << (8 * b);
    r.has_loader = uakd_safetensors_meta(st, "loader_epoch") != NULL;
    if (r.has_loader) {
        UAKD_TRY(meta_i64(st, "loader_epoch", &r.loader.epoch));
        UAKD_TRY(meta_i64(st, "loader_index", &r.loader.index));
    }
    int64_t count;
    float *state = uakd_optim_state(opt, &count);
    const uakd_st_tensor *t = uakd_safetensors_find(st, "optim.state");
    if (!t || t->ndim != 1 || t->shape[0] != count)
        return uakd_fail(UAKD_EFORMAT, "optimizer state %s (expected %lld values: another optimizer or network?)",
                         t ? "has another size" : "is missing", (long long)count);
    UAKD_TRY(uakd_weights_load_from(net, st, UAKD_WEIGHTS_ALLOW_OPTIM, NULL));
    UAKD_TRY(uakd_st_tensor_to_f32(t, state));
    uakd_optim_set_steps(opt, optim_steps);
    *s = r;
    return UAKD_OK;
}

uakd_status uakd_checkpoint_load(const char *path, uakd_net *net, uakd_optim *opt, uakd_train_state *s,
                                 uakd_check_meta_fn check_meta, const void *arch) {
    uakd_safetensors *st;
    UAKD_TRY(uakd_safetensors_open(path, &st));
    uakd_status r = load(st, net, opt, s, check_meta, arch);
    if (r != UAKD_OK) uakd_fail_context(r, "checkpoint %s: ", path);
    uakd_safetensors_free(st);
    return r;
}
