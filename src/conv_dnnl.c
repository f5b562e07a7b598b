/* oneDNN convolution behind uakd/conv.h (same math and contracts: forward and backward-data assign,
 * backward-weights accumulates dw += dL/dw, db += dL/db).
 *
 * Each call looks up a primitive cached per (shape, direction, bias, thread count); the cache entry
 * holds the convolution primitive, built with the layouts oneDNN prefers (format_tag_any for the
 * weights, and for the activations when the blocked nChw8c-style layout pays), plus the reorders
 * between the caller's plain NCHW / OIHW arrays and those layouts. Reordered tensors live in
 * process-wide scratch buffers that only grow. Backward-weights computes dW into scratch and adds
 * it to the caller's array with a reorder carrying a sum post-op (beta = 1). Weights are reordered
 * on every call: the API has no way to say they have not changed since the last call.
 * One mutex serialises lookups and executions (each execution is itself OpenMP-parallel).
 * Works with the oneDNN 2.x C API (Debian 12 ships 2.6) and, by DNNL_VERSION_MAJOR guards, 3.x. */
#ifdef UAKD_HAVE_DNNL

#include <oneapi/dnnl/dnnl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "conv_fast.h"
#include "uakd/backend.h"

#if DNNL_VERSION_MAJOR >= 3
typedef const_dnnl_memory_desc_t md_ref;
#else
typedef const dnnl_memory_desc_t *md_ref;
#endif

/* A memory descriptor we own: a struct in 2.x, a handle to destroy in 3.x. */
typedef struct owned_md {
    dnnl_memory_desc_t md;
    int set;
} owned_md;

static dnnl_status_t md_init(owned_md *m, int ndims, const dnnl_dims_t dims, dnnl_format_tag_t tag) {
#if DNNL_VERSION_MAJOR >= 3
    dnnl_status_t s = dnnl_memory_desc_create_with_tag(&m->md, ndims, dims, dnnl_f32, tag);
#else
    dnnl_status_t s = dnnl_memory_desc_init_by_tag(&m->md, ndims, dims, dnnl_f32, tag);
#endif
    m->set = s == dnnl_success;
    return s;
}

static md_ref md_get(const owned_md *m) {
    if (!m->set) return NULL;
#if DNNL_VERSION_MAJOR >= 3
    return m->md;
#else
    return &m->md;
#endif
}

static void md_done(owned_md *m) {
#if DNNL_VERSION_MAJOR >= 3
    if (m->set) dnnl_memory_desc_destroy(m->md);
#endif
    m->set = 0;
}

enum { DIR_FWD_TRAIN, DIR_FWD_INFER, DIR_BWD_DATA, DIR_BWD_WEIGHTS };
enum { SLOT_IN0, SLOT_IN1, SLOT_OUT, SLOT_BIAS, NSLOT };

/* One tensor argument of the convolution: the caller's plain array (umem) and, when oneDNN wants
 * another layout, the internal copy in scratch (imem) with the reorder between them. */
typedef struct slot {
    int arg;                  /* DNNL_ARG_* of the convolution; 0 = unused */
    owned_md user;            /* the caller's layout */
    dnnl_memory_t umem, imem; /* imem NULL: the convolution reads/writes the caller's array */
    dnnl_primitive_t reorder; /* inputs: user -> internal; output: internal -> user */
    size_t bytes;             /* size of the internal copy */
} slot;

typedef struct entry {
    uakd_conv2d_desc d;
    int dir, has_bias, nthreads;
    dnnl_primitive_desc_t pd;
    dnnl_primitive_t prim;
    slot s[NSLOT];
    struct entry *next;
} entry;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static dnnl_engine_t engine;
static dnnl_stream_t stream;
static entry *cache;
static int cache_count;
static void *scratch[NSLOT];
static size_t scratch_bytes[NSLOT];
static int atexit_registered;

enum { CACHE_MAX = 512 };

static void entry_free(entry *e) {
    for (int i = 0; i < NSLOT; i++) {
        slot *s = &e->s[i];
        if (s->reorder) dnnl_primitive_destroy(s->reorder);
        if (s->umem) dnnl_memory_destroy(s->umem);
        if (s->imem) dnnl_memory_destroy(s->imem);
        md_done(&s->user);
    }
    if (e->prim) dnnl_primitive_destroy(e->prim);
    if (e->pd) dnnl_primitive_desc_destroy(e->pd);
    free(e);
}

static void release_locked(void) {
    while (cache) {
        entry *e = cache;
        cache = e->next;
        entry_free(e);
    }
    cache_count = 0;
    for (int i = 0; i < NSLOT; i++) {
        free(scratch[i]);
        scratch[i] = NULL;
        scratch_bytes[i] = 0;
    }
    if (stream) dnnl_stream_destroy(stream);
    if (engine) dnnl_engine_destroy(engine);
    stream = NULL;
    engine = NULL;
}

void uakd_conv2d_dnnl_release(void) {
    pthread_mutex_lock(&lock);
    release_locked();
    pthread_mutex_unlock(&lock);
}

static uakd_status dnnl_fail(dnnl_status_t s, const char *what, const uakd_conv2d_desc *d) {
    return uakd_fail(s == dnnl_out_of_memory ? UAKD_ENOMEM : UAKD_EUNSUPPORTED,
                     "conv2d (oneDNN): %s failed (dnnl status %d) for n=%d c_in=%d %dx%d c_out=%d k=%dx%d s=%d,%d "
                     "p=%d,%d g=%d; the reference backend (uakd_set_backend(UAKD_BACKEND_REF)) still works",
                     what, (int)s, d->n, d->c_in, d->h_in, d->w_in, d->c_out, d->kh, d->kw, d->stride_h, d->stride_w,
                     d->pad_h, d->pad_w, d->groups);
}

#define DTRY(call, what)                                       \
    do {                                                       \
        dnnl_status_t dtry_ = (call);                          \
        if (dtry_ != dnnl_success) return dnnl_fail(dtry_, what, d); \
    } while (0)

static uakd_status ensure_engine(const uakd_conv2d_desc *d) {
    if (engine) return UAKD_OK;
    DTRY(dnnl_engine_create(&engine, dnnl_cpu, 0), "engine creation");
    dnnl_status_t s = dnnl_stream_create(&stream, engine, dnnl_stream_default_flags);
    if (s != dnnl_success) {
        dnnl_engine_destroy(engine);
        engine = NULL;
        return dnnl_fail(s, "stream creation", d);
    }
    /* Our cache holds every primitive we use; oneDNN's own cache would only keep second copies. */
    dnnl_set_primitive_cache_capacity(0);
    if (!atexit_registered) atexit_registered = atexit(uakd_conv2d_dnnl_release) == 0;
    return UAKD_OK;
}

/* Whether the activations should use oneDNN's blocked layout (reordered on the way in and out)
 * rather than plain NCHW. A dense 1x1 stride-1 convolution on NCHW is one matrix product per image
 * (oneDNN runs it as a GEMM), so reorders would only add memory traffic; every other shape has
 * its fast kernels in the blocked layout only (grouped and depthwise ones included). */
static int want_blocked(const uakd_conv2d_desc *d) {
    return !(d->kh == 1 && d->kw == 1 && d->stride_h == 1 && d->stride_w == 1 && d->pad_h == 0 && d->pad_w == 0 &&
             d->groups == 1);
}

static dnnl_status_t conv_pd_create(dnnl_primitive_desc_t *pd, int dir, md_ref src, md_ref wei, md_ref bia, md_ref dst,
                                    const dnnl_dims_t st, const dnnl_dims_t pad, const_dnnl_primitive_desc_t hint) {
    dnnl_prop_kind_t prop = dir == DIR_FWD_INFER ? dnnl_forward_inference : dnnl_forward_training;
#if DNNL_VERSION_MAJOR >= 3
    const dnnl_dims_t dil = {0, 0};
    if (dir == DIR_FWD_TRAIN || dir == DIR_FWD_INFER)
        return dnnl_convolution_forward_primitive_desc_create(pd, engine, prop, dnnl_convolution_direct, src, wei, bia,
                                                              dst, st, dil, pad, pad, NULL);
    if (dir == DIR_BWD_DATA)
        return dnnl_convolution_backward_data_primitive_desc_create(pd, engine, dnnl_convolution_direct, src, wei, dst,
                                                                    st, dil, pad, pad, hint, NULL);
    return dnnl_convolution_backward_weights_primitive_desc_create(pd, engine, dnnl_convolution_direct, src, wei, bia,
                                                                   dst, st, dil, pad, pad, hint, NULL);
#else
    dnnl_convolution_desc_t cd;
    dnnl_status_t s;
    if (dir == DIR_FWD_TRAIN || dir == DIR_FWD_INFER)
        s = dnnl_convolution_forward_desc_init(&cd, prop, dnnl_convolution_direct, src, wei, bia, dst, st, pad, pad);
    else if (dir == DIR_BWD_DATA)
        s = dnnl_convolution_backward_data_desc_init(&cd, dnnl_convolution_direct, src, wei, dst, st, pad, pad);
    else
        s = dnnl_convolution_backward_weights_desc_init(&cd, dnnl_convolution_direct, src, wei, bia, dst, st, pad,
                                                        pad);
    if (s != dnnl_success) return s;
    return dnnl_primitive_desc_create(pd, &cd, NULL, engine, hint);
#endif
}

static dnnl_status_t sum_attr(dnnl_primitive_attr_t *attr) {
    dnnl_post_ops_t po;
    dnnl_status_t s = dnnl_post_ops_create(&po);
    if (s != dnnl_success) return s;
#if DNNL_VERSION_MAJOR >= 3
    s = dnnl_post_ops_append_sum(po, 1.0f, 0, dnnl_data_type_undef);
#else
    s = dnnl_post_ops_append_sum(po, 1.0f);
#endif
    if (s == dnnl_success) s = dnnl_primitive_attr_create(attr);
    if (s == dnnl_success) {
        s = dnnl_primitive_attr_set_post_ops(*attr, po);
        if (s != dnnl_success) dnnl_primitive_attr_destroy(*attr);
    }
    dnnl_post_ops_destroy(po);
    return s;
}

/* Completes a slot whose user descriptor is set: user memory, and when the primitive's layout
 * differs (or the output must be accumulated), internal memory plus the reorder. */
static uakd_status slot_setup(const uakd_conv2d_desc *d, slot *s, md_ref internal, int is_output, int accumulate) {
    DTRY(dnnl_memory_create(&s->umem, md_get(&s->user), engine, DNNL_MEMORY_NONE), "memory creation");
    if (!accumulate && dnnl_memory_desc_equal(internal, md_get(&s->user))) return UAKD_OK;
    s->bytes = dnnl_memory_desc_get_size(internal);
    DTRY(dnnl_memory_create(&s->imem, internal, engine, DNNL_MEMORY_NONE), "memory creation");
    dnnl_primitive_attr_t attr = NULL;
    if (accumulate) DTRY(sum_attr(&attr), "sum post-op");
    dnnl_primitive_desc_t rpd;
    dnnl_status_t st = is_output ? dnnl_reorder_primitive_desc_create(&rpd, internal, engine, md_get(&s->user), engine, attr)
                                 : dnnl_reorder_primitive_desc_create(&rpd, md_get(&s->user), engine, internal, engine, attr);
    if (attr) dnnl_primitive_attr_destroy(attr);
    if (st != dnnl_success) return dnnl_fail(st, "reorder creation", d);
    st = dnnl_primitive_create(&s->reorder, rpd);
    dnnl_primitive_desc_destroy(rpd);
    if (st != dnnl_success) return dnnl_fail(st, "reorder creation", d);
    return UAKD_OK;
}

static uakd_status entry_build(entry *e) {
    const uakd_conv2d_desc *d = &e->d;
    const int g = d->groups;
    const dnnl_dims_t xd = {d->n, d->c_in, d->h_in, d->w_in};
    const dnnl_dims_t yd = {d->n, d->c_out, uakd_conv2d_out_h(d), uakd_conv2d_out_w(d)};
    const dnnl_dims_t wd4 = {d->c_out, d->c_in, d->kh, d->kw};
    const dnnl_dims_t wd5 = {g, d->c_out / g, d->c_in / g, d->kh, d->kw};
    const dnnl_dims_t bd = {d->c_out};
    const dnnl_dims_t st = {d->stride_h, d->stride_w}, pad = {d->pad_h, d->pad_w};
    const int wnd = g > 1 ? 5 : 4;
    const dnnl_format_tag_t wtag = g > 1 ? dnnl_goihw : dnnl_oihw;
    const dnnl_format_tag_t atag = want_blocked(d) ? dnnl_format_tag_any : dnnl_nchw;

    /* Descriptors handed to the primitive: activations any/plain, weights any, bias plain. */
    owned_md x_any = {0}, y_any = {0}, w_any = {0}, b_plain = {0};
    uakd_status ret = UAKD_OK;
    dnnl_primitive_desc_t hint = NULL;
    dnnl_status_t s = md_init(&x_any, 4, xd, atag);
    if (s == dnnl_success) s = md_init(&y_any, 4, yd, atag);
    if (s == dnnl_success) s = md_init(&w_any, wnd, g > 1 ? wd5 : wd4, dnnl_format_tag_any);
    if (s == dnnl_success) s = md_init(&b_plain, 1, bd, dnnl_x);
    if (s != dnnl_success) {
        ret = dnnl_fail(s, "memory descriptor", d);
        goto done;
    }
    md_ref bias = e->has_bias ? md_get(&b_plain) : NULL;
    if (e->dir == DIR_BWD_DATA || e->dir == DIR_BWD_WEIGHTS) {
        s = conv_pd_create(&hint, DIR_FWD_TRAIN, md_get(&x_any), md_get(&w_any), bias, md_get(&y_any), st, pad, NULL);
        if (s != dnnl_success) {
            ret = dnnl_fail(s, "forward hint", d);
            goto done;
        }
    }
    s = conv_pd_create(&e->pd, e->dir, md_get(&x_any), md_get(&w_any), bias, md_get(&y_any), st, pad, hint);
    if (s != dnnl_success) {
        ret = dnnl_fail(s, "primitive descriptor", d);
        goto done;
    }
    s = dnnl_primitive_create(&e->prim, e->pd);
    if (s != dnnl_success) {
        ret = dnnl_fail(s, "primitive creation", d);
        goto done;
    }

    /* Slots: which plain array each argument comes from, and what the primitive wants. */
    struct {
        int arg, ndims;
        const int64_t *dims;
        dnnl_format_tag_t tag;
        dnnl_query_t q;
    } sl[3];
    if (e->dir == DIR_FWD_TRAIN || e->dir == DIR_FWD_INFER) {
        sl[0].arg = DNNL_ARG_SRC, sl[0].ndims = 4, sl[0].dims = xd, sl[0].tag = dnnl_nchw, sl[0].q = dnnl_query_src_md;
        sl[1].arg = DNNL_ARG_WEIGHTS, sl[1].q = dnnl_query_weights_md;
        sl[2].arg = DNNL_ARG_DST, sl[2].ndims = 4, sl[2].dims = yd, sl[2].tag = dnnl_nchw, sl[2].q = dnnl_query_dst_md;
    } else if (e->dir == DIR_BWD_DATA) {
        sl[0].arg = DNNL_ARG_DIFF_DST, sl[0].ndims = 4, sl[0].dims = yd, sl[0].tag = dnnl_nchw,
        sl[0].q = dnnl_query_diff_dst_md;
        sl[1].arg = DNNL_ARG_WEIGHTS, sl[1].q = dnnl_query_weights_md;
        sl[2].arg = DNNL_ARG_DIFF_SRC, sl[2].ndims = 4, sl[2].dims = xd, sl[2].tag = dnnl_nchw,
        sl[2].q = dnnl_query_diff_src_md;
    } else {
        sl[0].arg = DNNL_ARG_SRC, sl[0].ndims = 4, sl[0].dims = xd, sl[0].tag = dnnl_nchw, sl[0].q = dnnl_query_src_md;
        sl[1].arg = DNNL_ARG_DIFF_DST, sl[1].ndims = 4, sl[1].dims = yd, sl[1].tag = dnnl_nchw,
        sl[1].q = dnnl_query_diff_dst_md;
        sl[2].arg = DNNL_ARG_DIFF_WEIGHTS, sl[2].q = dnnl_query_diff_weights_md;
    }
    for (int i = 0; i < 3; i++)
        if (sl[i].arg == DNNL_ARG_WEIGHTS || sl[i].arg == DNNL_ARG_DIFF_WEIGHTS)
            sl[i].ndims = wnd, sl[i].dims = g > 1 ? wd5 : wd4, sl[i].tag = wtag;
    for (int i = 0; i < 3 && ret == UAKD_OK; i++) {
        slot *sp = &e->s[i];
        sp->arg = sl[i].arg;
        s = md_init(&sp->user, sl[i].ndims, sl[i].dims, sl[i].tag);
        if (s != dnnl_success) {
            ret = dnnl_fail(s, "memory descriptor", d);
            break;
        }
        ret = slot_setup(d, sp, dnnl_primitive_desc_query_md(e->pd, sl[i].q, 0), i == SLOT_OUT,
                         e->dir == DIR_BWD_WEIGHTS && i == SLOT_OUT);
    }
    if (ret == UAKD_OK && e->has_bias) {
        slot *sp = &e->s[SLOT_BIAS];
        sp->arg = e->dir == DIR_BWD_WEIGHTS ? DNNL_ARG_DIFF_BIAS : DNNL_ARG_BIAS;
        s = md_init(&sp->user, 1, bd, dnnl_x);
        if (s == dnnl_success) s = dnnl_memory_create(&sp->umem, md_get(&sp->user), engine, DNNL_MEMORY_NONE);
        if (s != dnnl_success) ret = dnnl_fail(s, "bias memory", d);
    }
done:
    if (hint) dnnl_primitive_desc_destroy(hint);
    md_done(&x_any), md_done(&y_any), md_done(&w_any), md_done(&b_plain);
    return ret;
}

static int thread_count(void) {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

/* Finds or builds the entry (caller holds the lock); moves it to the front of the list. */
static uakd_status lookup(const uakd_conv2d_desc *d, int dir, int has_bias, entry **out) {
    UAKD_TRY(ensure_engine(d));
    const int nt = thread_count();
    entry **pp = &cache;
    for (entry *e = cache; e; pp = &e->next, e = e->next)
        if (e->dir == dir && e->has_bias == has_bias && e->nthreads == nt && !memcmp(&e->d, d, sizeof *d)) {
            *pp = e->next;
            e->next = cache;
            cache = e;
            *out = e;
            return UAKD_OK;
        }
    entry *e = calloc(1, sizeof *e);
    if (!e) return uakd_fail(UAKD_ENOMEM, "conv2d (oneDNN): out of memory for a primitive cache entry");
    e->d = *d, e->dir = dir, e->has_bias = has_bias, e->nthreads = nt;
    uakd_status st = entry_build(e);
    if (st != UAKD_OK) {
        entry_free(e);
        return st;
    }
    e->next = cache;
    cache = e;
    if (++cache_count > CACHE_MAX) { /* drop the least recently used */
        entry **last = &cache;
        while ((*last)->next) last = &(*last)->next;
        entry_free(*last);
        *last = NULL;
        cache_count--;
    }
    *out = e;
    return UAKD_OK;
}

static uakd_status ensure_scratch(int i, size_t bytes) {
    if (bytes <= scratch_bytes[i]) return UAKD_OK;
    free(scratch[i]);
    scratch_bytes[i] = 0;
    bytes = (bytes + 63) / 64 * 64;
    scratch[i] = aligned_alloc(64, bytes);
    if (!scratch[i]) return uakd_fail(UAKD_ENOMEM, "conv2d (oneDNN): out of memory for %zu bytes of scratch", bytes);
    scratch_bytes[i] = bytes;
    return UAKD_OK;
}

/* Runs the entry on the caller's arrays p[SLOT_*] (bias pointer may be NULL). */
static uakd_status execute(entry *e, void *p[NSLOT]) {
    const uakd_conv2d_desc *d = &e->d;
    dnnl_exec_arg_t args[NSLOT];
    int nargs = 0;
    for (int i = 0; i < NSLOT; i++) {
        slot *s = &e->s[i];
        if (!s->arg) continue;
        DTRY(dnnl_memory_set_data_handle(s->umem, p[i]), "set data handle");
        if (i == SLOT_BIAS && e->dir == DIR_BWD_WEIGHTS) { /* diff_bias goes to scratch, added below */
            UAKD_TRY(ensure_scratch(i, sizeof(float) * d->c_out));
            DTRY(dnnl_memory_set_data_handle(s->umem, scratch[i]), "set data handle");
        }
        if (s->imem) {
            UAKD_TRY(ensure_scratch(i, s->bytes));
            DTRY(dnnl_memory_set_data_handle(s->imem, scratch[i]), "set data handle");
        }
        args[nargs].arg = s->arg;
        args[nargs].memory = s->imem ? s->imem : s->umem;
        nargs++;
    }
    for (int i = 0; i < NSLOT; i++) {
        slot *s = &e->s[i];
        if (!s->reorder || i == SLOT_OUT) continue;
        dnnl_exec_arg_t ra[2] = {{DNNL_ARG_FROM, s->umem}, {DNNL_ARG_TO, s->imem}};
        DTRY(dnnl_primitive_execute(s->reorder, stream, 2, ra), "input reorder");
    }
    DTRY(dnnl_primitive_execute(e->prim, stream, nargs, args), "convolution");
    slot *o = &e->s[SLOT_OUT];
    if (o->reorder) {
        dnnl_exec_arg_t ra[2] = {{DNNL_ARG_FROM, o->imem}, {DNNL_ARG_TO, o->umem}};
        DTRY(dnnl_primitive_execute(o->reorder, stream, 2, ra), "output reorder");
    }
    DTRY(dnnl_stream_wait(stream), "stream wait");
    if (e->dir == DIR_BWD_WEIGHTS && e->has_bias) {
        float *db = p[SLOT_BIAS];
        const float *tmp = scratch[SLOT_BIAS];
        for (int o2 = 0; o2 < d->c_out; o2++) db[o2] += tmp[o2];
    }
    return UAKD_OK;
}

static uakd_status run(const uakd_conv2d_desc *d, int dir, void *p[NSLOT]) {
    pthread_mutex_lock(&lock);
    entry *e;
    uakd_status st = lookup(d, dir, p[SLOT_BIAS] != NULL, &e);
    if (st == UAKD_OK) st = execute(e, p);
    pthread_mutex_unlock(&lock);
    return st;
}

uakd_status uakd_conv2d_forward_dnnl(const uakd_conv2d_desc *d, const float *x, const float *w, const float *b,
                                     float *y) {
    void *p[NSLOT] = {(void *)x, (void *)w, y, (void *)b};
    return run(d, DIR_FWD_TRAIN, p);
}

uakd_status uakd_conv2d_backward_data_dnnl(const uakd_conv2d_desc *d, const float *dy, const float *w, float *dx) {
    void *p[NSLOT] = {(void *)dy, (void *)w, dx, NULL};
    return run(d, DIR_BWD_DATA, p);
}

uakd_status uakd_conv2d_backward_weights_dnnl(const uakd_conv2d_desc *d, const float *x, const float *dy, float *dw,
                                              float *db) {
    void *p[NSLOT] = {(void *)x, (void *)dy, dw, db};
    return run(d, DIR_BWD_WEIGHTS, p);
}

#endif
