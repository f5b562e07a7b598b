/* Tests of the WDRNet training loop (uakd/train.h) on a tiny rendered BOP dataset (12 training and
 * 4 held-out images of the LM-O ape at 160x120; DarkNet-Tiny-H with F = 16, input 64, batch 4):
 * - the loss goes down over 60 steps;
 * - a run stopped at step 7 (checkpoint) and resumed gives bit-identical final weights and the
 *   same log as an uninterrupted run;
 * - the distillation hook: called every step with the batch's positives, its terms are logged,
 *   its gradient seeded into an FPN feature map changes the training, and its extra network is
 *   stepped and restored on resume; malformed hooks are refused;
 * - the trained model opens from its directory and evaluates (every held-out instance scored). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"
#include "test_synth_data.h"
#include "uakd/backend.h"
#include "uakd/fileio.h"
#include "uakd/report.h"
#include "uakd/synth.h"
#include "uakd/train.h"

static const char *make_dataset(void) {
    static int done;
    const char *dir = test_tmp("train_synth");
    static const test_synth_spec spec = {.format = UAKD_SYNTH_BOP, .count = 16, .val_fraction = 0.25, .width = 160,
                                         .height = 120, .depth_min = 250, .depth_max = 350, .seed = 3};
    if (!done) done = test_synth_dataset(dir, &spec);
    return dir;
}

static void tiny_config(uakd_train_config *c, const char *out, int64_t steps) {
    uakd_train_config_default(c);
    c->data_root = make_dataset();
    c->out_dir = out;
    c->val_split = NULL;
    c->width = 16;
    c->tower_convs = 1;
    c->input_size = 64;
    c->batch = 4;
    c->steps = steps;
    c->log_every = 1;
    c->ckpt_every = 0;
    c->cache_bytes = 64 << 20;
}

typedef struct losses {
    int n, stop_at;
    double v[256];
} losses;

static int record(const uakd_train_progress *p, void *user) {
    losses *l = user;
    if (p->event && strstr(p->event, "resumed")) return 0;
    if (l->n < 256) l->v[l->n++] = p->loss;
    return l->stop_at && p->step == l->stop_at;
}

static void test_loss_decreases(void) {
    uakd_train_config c;
    tiny_config(&c, test_tmp("train_dec"), 60);
    c.lr = 3e-3;
    losses l = {0};
    c.progress = record;
    c.user = &l;
    uakd_train_result r;
    CHECK_OK(uakd_train_run(&c, &r));
    CHECK(r.steps_done == 60 && l.n == 60);
    double first = 0, last = 0;
    for (int i = 0; i < 10; i++) first += l.v[i] / 10, last += l.v[50 + i] / 10;
    CHECK_MSG(last < 0.8 * first, "mean loss of steps 1-10 %g, of steps 51-60 %g", first, last);
}

static int files_equal(const char *a, const char *b) {
    void *da = NULL, *db = NULL;
    size_t na = 0, nb = 0;
    int eq = uakd_read_file(a, 1 << 28, &da, &na) == UAKD_OK && uakd_read_file(b, 1 << 28, &db, &nb) == UAKD_OK &&
             na == nb && !memcmp(da, db, na);
    free(da), free(db);
    return eq;
}

/* A hook: L = w * sum(f^2) / 2 over the level-0 feature map (gradient w f seeded into it), and a
 * one-parameter extra network whose scalar gets gradient 1 every step. */
typedef struct hook_state {
    int calls, bad;
    uakd_net *extra;
    int extra_in, extra_scale;
} hook_state;

static uakd_status hook_step(void *user, uakd_train_hook_ctx *ctx, double *terms) {
    hook_state *h = user;
    h->calls++;
    if (ctx->n != 4 || ctx->targets->npos <= 0 || ctx->batch->n != 4 || !ctx->maps || !ctx->grads) h->bad++;
    uakd_net *net = uakd_wdrnet_net(ctx->student);
    const int id = uakd_wdrnet_feature_id(ctx->student, 0);
    int c, hh, w;
    const int64_t per = uakd_net_shape(net, id, &c, &hh, &w);
    const float *f = uakd_net_out(net, id);
    float *g = uakd_net_grad(net, id);
    double s = 0;
    for (int64_t k = 0; k < per * ctx->n; k++) s += 0.5e-3 * f[k] * f[k], g[k] = 1e-3f * f[k];
    ctx->seeds[ctx->n_seeds++] = id;
    terms[0] = s;
    /* the extra network: y = scale * x with dL/dy = 1 at x = 1 */
    uakd_net_out(h->extra, h->extra_in)[0] = 1.0f;
    UAKD_TRY(uakd_net_forward(h->extra, 1, 1));
    uakd_net_grad(h->extra, h->extra_scale)[0] = 1.0f;
    return uakd_net_backward(h->extra, 1, &h->extra_scale);
}

static uakd_status hook_new(hook_state *h) {
    memset(h, 0, sizeof *h);
    UAKD_TRY(uakd_net_new(1, &h->extra));
    h->extra_in = uakd_net_input(h->extra, "x", 1, 1, 1, 0);
    h->extra_scale = uakd_net_scale(h->extra, "adapter.scale", h->extra_in);
    UAKD_TRY(uakd_net_build(h->extra, 1));
    uakd_rng r;
    uakd_rng_seed(&r, 1);
    return uakd_net_init(h->extra, &r);
}

static float extra_value(const hook_state *h) { return uakd_net_param_find(h->extra, "adapter.scale")->data[0]; }

static void test_resume_bit_exact(void) {
    uakd_train_config c;
    tiny_config(&c, test_tmp("train_full"), 14);
    CHECK_OK(uakd_train_run(&c, NULL));
    tiny_config(&c, test_tmp("train_split"), 14);
    losses l = {0};
    l.stop_at = 7;
    c.progress = record;
    c.user = &l;
    uakd_train_result r;
    CHECK_FAILS(uakd_train_run(&c, &r), UAKD_EINTERRUPTED);
    CHECK(r.steps_done == 7);
    l.stop_at = 0;
    c.resume = 1;
    CHECK_OK(uakd_train_run(&c, &r));
    CHECK(r.steps_done == 7);
    CHECK(files_equal(test_tmp("train_full/model.safetensors"), test_tmp("train_split/model.safetensors")));
    /* the logs hold the same steps and losses (img_s differs between runs) */
    uakd_train_log a = {0}, b = {0};
    CHECK_OK(uakd_train_log_read(test_tmp("train_full/train_log.jsonl"), &a));
    CHECK_OK(uakd_train_log_read(test_tmp("train_split/train_log.jsonl"), &b));
    CHECK(a.rows == 14 && b.rows == 14);
    const int ka = uakd_train_log_key(&a, "loss"), kb = uakd_train_log_key(&b, "loss");
    for (int i = 0; ka >= 0 && kb >= 0 && i < a.rows && i < b.rows; i++) {
        CHECK(a.step[i] == b.step[i]);
        CHECK(a.values[ka * a.rows + i] == b.values[kb * b.rows + i]);
    }
    uakd_train_log_free(&a), uakd_train_log_free(&b);
    /* a resume with another schedule length is refused */
    c.steps = 20;
    CHECK_FAILS(uakd_train_run(&c, NULL), UAKD_EINVAL);
}

static void test_hook(void) {
    hook_state h;
    CHECK_OK(hook_new(&h));
    uakd_train_hook hook = {&h, 1, {"kd_feat"}, h.extra, hook_step};
    uakd_train_config c;
    tiny_config(&c, test_tmp("train_hook"), 6);
    c.hook = &hook;
    CHECK_OK(uakd_train_run(&c, NULL));
    CHECK(h.calls == 6 && h.bad == 0);
    /* AdamW with a constant gradient moves the scalar by about lr per step (no decay on scales) */
    const float after = extra_value(&h);
    CHECK_MSG(after < 1.0f - 1e-6f, "adapter scale %g", after);
    uakd_train_log log = {0};
    CHECK_OK(uakd_train_log_read(test_tmp("train_hook/train_log.jsonl"), &log));
    const int k = uakd_train_log_key(&log, "kd_feat");
    CHECK(k >= 0 && log.rows == 6 && log.values[k * log.rows] > 0);
    uakd_train_log_free(&log);
    /* the seeded gradient changes the weights against a run without the hook */
    uakd_train_config c2;
    tiny_config(&c2, test_tmp("train_nohook"), 6);
    CHECK_OK(uakd_train_run(&c2, NULL));
    CHECK(!files_equal(test_tmp("train_hook/model.safetensors"), test_tmp("train_nohook/model.safetensors")));
    /* interrupted and resumed with the hook: same weights and same extra parameter */
    hook_state h2;
    CHECK_OK(hook_new(&h2));
    uakd_train_hook hook2 = {&h2, 1, {"kd_feat"}, h2.extra, hook_step};
    tiny_config(&c, test_tmp("train_hook2"), 6);
    c.hook = &hook2;
    losses l = {0};
    l.stop_at = 3;
    c.progress = record;
    c.user = &l;
    CHECK_FAILS(uakd_train_run(&c, NULL), UAKD_EINTERRUPTED);
    uakd_net_param_find(h2.extra, "adapter.scale")->data[0] = 5.0f; /* must be restored */
    l.stop_at = 0;
    c.resume = 1;
    CHECK_OK(uakd_train_run(&c, NULL));
    CHECK(extra_value(&h2) == after);
    CHECK(files_equal(test_tmp("train_hook/model.safetensors"), test_tmp("train_hook2/model.safetensors")));
    uakd_net_free(h.extra);
    uakd_net_free(h2.extra);
}

static void test_open_and_evaluate(void) {
    uakd_train_config c;
    tiny_config(&c, test_tmp("train_eval"), 3);
    c.val_split = "test";
    c.val_every = 2;
    uakd_train_result r;
    CHECK_OK(uakd_train_run(&c, &r));
    CHECK(r.val.targets == 4); /* validation ran on the 4 held-out instances */
    uakd_train_log log = {0};
    CHECK_OK(uakd_train_log_read(test_tmp("train_eval/train_log.jsonl"), &log));
    const int kv = uakd_train_log_key(&log, "val_add_01"), kl = uakd_train_log_key(&log, "loss");
    CHECK(log.rows == 3 && kv >= 0 && kl >= 0); /* validations at steps 2 and 3 share the steps' lines */
    for (int i = 0; kv >= 0 && kl >= 0 && i < log.rows; i++) {
        CHECK(isfinite(log.values[kl * log.rows + i]));
        CHECK(isfinite(log.values[kv * log.rows + i]) == (log.step[i] >= 2));
    }
    uakd_train_log_free(&log);
    uakd_model_info info;
    uakd_wdrnet *m = NULL;
    CHECK_OK(uakd_model_open(test_tmp("train_eval"), 3, &info, &m));
    CHECK(info.num_objects == 1 && info.obj_ids[0] == 1 && info.model.width == 16 && info.model.input_size == 64);
    CHECK(info.diameter[0] > 100 && info.diameter[0] < 110); /* the ape: 102.1 mm */
    uakd_dataset *ds = NULL;
    uakd_eval_model *models = NULL;
    CHECK_OK(uakd_dataset_load_bop(c.data_root, "test", NULL, &ds));
    if (m && ds) {
        CHECK_OK(uakd_eval_models_load(c.data_root, ds, &models));
        int idx[4] = {0, 1, 2, 3};
        uakd_eval_input in = {ds, models, idx, 4, info.obj_ids, 1, NULL, NULL, NULL};
        uakd_infer_config ic;
        uakd_infer_config_default(&ic);
        uakd_eval_result er;
        CHECK_OK(uakd_infer_evaluate(m, &ic, &in, &er));
        CHECK(er.n == 4 && er.stats.obj[1].targets == 4 && er.gt_box == 1);
        for (int i = 0; i < er.n; i++) CHECK(er.samples[i].pred.ok ? isfinite(er.samples[i].err_d) : isinf(er.samples[i].err_d));
        uakd_eval_result_free(&er);
        /* an object the model does not know is refused */
        int other = 7;
        in.obj_ids = &other;
        CHECK_FAILS(uakd_infer_evaluate(m, &ic, &in, &er), UAKD_EINVAL);
        uakd_eval_models_free(models, ds->num_objects);
    }
    uakd_dataset_free(ds);
    uakd_wdrnet_free(m);
    /* a directory without config.json */
    CHECK_FAILS(uakd_model_open(test_tmp("no_such_model"), 1, &info, &m), UAKD_EIO);
}

static uakd_status too_many_seeds(void *user, uakd_train_hook_ctx *ctx, double *terms) {
    (void)user, (void)terms;
    ctx->n_seeds = (int)(sizeof ctx->seeds / sizeof *ctx->seeds) + 1;
    return UAKD_OK;
}

/* Hooks the loop refuses: no step function, too many terms (before training), more seeded layers
 * than the context holds (at the first step); nothing is trained. */
static void test_hook_errors(void) {
    uakd_train_config c;
    tiny_config(&c, test_tmp("train_bad_hook"), 2);
    uakd_train_hook no_step = {NULL, 0, {NULL}, NULL, NULL};
    c.hook = &no_step;
    CHECK_FAILS(uakd_train_run(&c, NULL), UAKD_EINVAL);
    uakd_train_hook many_terms = {NULL, UAKD_TRAIN_MAX_TERMS + 1, {NULL}, NULL, too_many_seeds};
    c.hook = &many_terms;
    CHECK_FAILS(uakd_train_run(&c, NULL), UAKD_EINVAL);
    uakd_train_hook seeds = {NULL, 0, {NULL}, NULL, too_many_seeds};
    c.hook = &seeds;
    uakd_train_result r;
    CHECK_FAILS(uakd_train_run(&c, &r), UAKD_EINVAL);
    CHECK(strstr(uakd_last_error(), "seeded layers") != NULL && r.steps_done == 0);
    FILE *f = fopen(test_tmp("train_bad_hook/model.safetensors"), "rb");
    CHECK(f == NULL);
    if (f) fclose(f);
}

/* A training list: training sees 3 images, validation on the same split the other 9. */
static void test_train_list(void) {
    uakd_train_config c;
    tiny_config(&c, test_tmp("train_list"), 2);
    const char *list = test_tmp("train_list.txt");
    FILE *f = fopen(list, "w");
    if (f) fputs("# three images\n0 1\n0 4\n0/7\n", f), fclose(f);
    c.train_list = list;
    c.val_split = "train";
    uakd_train_result r;
    CHECK_OK(uakd_train_run(&c, &r));
    CHECK(r.val.targets == 9);
    c.val_list = list; /* validating on the listed images instead */
    tiny_config(&c, test_tmp("train_list2"), 2);
    c.train_list = c.val_list = list;
    c.val_split = "train";
    CHECK_OK(uakd_train_run(&c, &r));
    CHECK(r.val.targets == 3);
}

int main(void) {
    uakd_set_num_threads(1);
    RUN(test_loss_decreases);
    RUN(test_resume_bit_exact);
    RUN(test_hook);
    RUN(test_hook_errors);
    RUN(test_open_and_evaluate);
    RUN(test_train_list);
    return TEST_END();
}
