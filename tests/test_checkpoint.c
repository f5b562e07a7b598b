/* Tests of weights files, darknet import into a network, and checkpoints: save/load round trips
 * bit-exactly; strict loading names missing, unexpected and misshapen tensors; a darknet file
 * imported directly equals the `uakd convert` route; an interrupted-and-resumed training run
 * (k steps, checkpoint, everything freed, fresh objects, resume) ends with exactly the weights and
 * optimizer state of an uninterrupted 2k-step run; corrupt and foreign files are refused. */
#include "test.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "uakd/checkpoint.h"
#include "uakd/darknet_weights.h"
#include "uakd/fileio.h"
#include "uakd/netbuild.h"
#include "uakd/optim.h"
#include "uakd/safetensors.h"
#include "uakd/weights.h"
#include "uakd/wdrnet.h"

static uakd_wdrnet *tiny(int classes, int training) {
    uakd_wdrnet_config cfg;
    uakd_wdrnet_config_default(&cfg, "darknet-tiny-h");
    cfg.classes = classes, cfg.width = 32, cfg.tower_convs = 1, cfg.input_size = 64;
    cfg.training = training, cfg.max_batch = 2;
    uakd_wdrnet *m = NULL;
    CHECK_OK(uakd_wdrnet_new(&cfg, &m));
    return m;
}

static int same_params(const uakd_net *a, const uakd_net *b) {
    int64_t na, nb;
    const float *pa = uakd_net_params(a, &na), *pb = uakd_net_params(b, &nb);
    return na == nb && memcmp(pa, pb, sizeof(float) * (size_t)na) == 0;
}

static void test_weights_roundtrip(void) {
    uakd_wdrnet *a = tiny(2, 0), *b = tiny(2, 0), *c = tiny(3, 0);
    if (!a || !b || !c) goto done;
    uakd_rng rng;
    uakd_rng_seed(&rng, 1);
    CHECK_OK(uakd_wdrnet_init(a, &rng));
    const char *path = test_tmp("model.safetensors");
    CHECK_OK(uakd_wdrnet_save(a, path));
    CHECK_OK(uakd_wdrnet_load(b, path, 0));
    CHECK(same_params(uakd_wdrnet_net(a), uakd_wdrnet_net(b)));
    uakd_safetensors *st;
    CHECK_OK(uakd_safetensors_open(path, &st));
    if (st) {
        const uakd_st_tensor *t = uakd_safetensors_find(st, "backbone.stage3.unit2.bn.num_batches_tracked");
        CHECK(t && t->dtype == UAKD_DTYPE_I64 && t->ndim == 0);
        t = uakd_safetensors_find(st, "head.pose_pred.weight");
        CHECK(t && t->ndim == 4 && t->shape[0] == 32 && t->shape[1] == 32 && t->shape[2] == 3);
        const char *mean = uakd_safetensors_meta(st, "input_mean"); /* ImageNet normalisation */
        float mu[3] = {0, 0, 0};
        CHECK(mean && sscanf(mean, "%f,%f,%f", &mu[0], &mu[1], &mu[2]) == 3);
        CHECK(mu[0] == 0.485f && mu[1] == 0.456f && mu[2] == 0.406f);
        CHECK(strcmp(uakd_safetensors_meta(st, "model"), "wdrnet") == 0);
        CHECK(strcmp(uakd_safetensors_meta(st, "wdrnet_classes"), "2") == 0);
        uakd_safetensors_free(st);
    }
    /* another class count: the architecture keys refuse it; without them, the shapes do */
    CHECK_FAILS(uakd_wdrnet_load(c, path, 0), UAKD_EFORMAT);
    CHECK(strstr(uakd_last_error(), "wdrnet_classes is 2 but this model has 3") != NULL);
    CHECK_FAILS(uakd_weights_load(uakd_wdrnet_net(c), NULL, path, 0), UAKD_EFORMAT);
    CHECK(strstr(uakd_last_error(), "4 with another shape (head.cls_logits.weight, head.cls_logits.bias, head.pose_pred.weight") != NULL);
    /* a backbone-only network: the neck and head are unexpected */
    uakd_net *bb;
    CHECK_OK(uakd_net_new(1, &bb));
    const uakd_netdesc *d = uakd_wdrnet_backbone(a);
    CHECK_OK(uakd_netbuild_append(bb, d, uakd_net_input(bb, "image", 3, 64, 64, 0), "backbone.", NULL));
    CHECK_OK(uakd_net_build(bb, 0));
    CHECK_FAILS(uakd_weights_load(bb, d, path, 0), UAKD_EFORMAT);
    CHECK(strstr(uakd_last_error(), "0 missing, ") && strstr(uakd_last_error(), "unexpected (neck.lateral.0.weight"));
    /* and the other way: a backbone file into the whole model, partially */
    const char *bpath = test_tmp("backbone.safetensors");
    for (int i = 0; i < uakd_net_num_params(bb); i++) {
        const uakd_param *p = uakd_net_param(bb, i);
        memcpy(p->data, uakd_net_param_find(uakd_wdrnet_net(a), p->name)->data, sizeof(float) * (size_t)p->count);
    }
    CHECK_OK(uakd_weights_save(bb, d, bpath));
    CHECK_FAILS(uakd_weights_load(uakd_wdrnet_net(c), d, bpath, 0), UAKD_EFORMAT);
    CHECK(strstr(uakd_last_error(), "missing (neck.lateral.0.weight") != NULL);
    CHECK_OK(uakd_weights_load(uakd_wdrnet_net(c), d, bpath, UAKD_WEIGHTS_PARTIAL));
    const uakd_param *p = uakd_net_param_find(uakd_wdrnet_net(c), "backbone.stage5.unit4.conv.weight");
    CHECK(p && memcmp(p->data, uakd_net_param_find(uakd_wdrnet_net(a), p->name)->data, sizeof(float) * p->count) == 0);
    uakd_net_free(bb);
done:
    uakd_wdrnet_free(a), uakd_wdrnet_free(b), uakd_wdrnet_free(c);
}

/* A darknet file with values v_i = i / 1000 for every stored value of the backbone. */
static void test_darknet_import(void) {
    uakd_wdrnet *a = tiny(1, 0), *b = tiny(1, 0);
    if (!a || !b) goto done;
    uakd_darknet_layer *layers = NULL;
    size_t n = 0, total = 0;
    CHECK_OK(uakd_darknet_layout(uakd_wdrnet_backbone(a), &layers, &n));
    for (size_t k = 0; k < n; k++) total += layers[k].n_floats;
    free(layers);
    CHECK(total == 229480 + 2 * 1096); /* parameters + BN running statistics (1096 BN channels) */
    const size_t bytes = 20 + 4 * total;
    unsigned char *buf = calloc(1, bytes);
    buf[4] = 2; /* version 0.2.0, 8-byte seen */
    for (size_t i = 0; i < total; i++) {
        const float v = (float)i / 1000.0f;
        memcpy(buf + 20 + 4 * i, &v, 4);
    }
    const char *path = test_tmp("tinyh.weights");
    CHECK_OK(uakd_write_file_atomic(path, buf, bytes));
    free(buf);
    size_t covered = 0;
    CHECK_OK(uakd_wdrnet_import_darknet(a, path, &covered));
    CHECK(covered == 15);
    uakd_net *net = uakd_wdrnet_net(a);
    /* first layer: beta, gamma, mean, var (8 each), then 8x3x3x3 weights */
    CHECK(uakd_net_param_find(net, "backbone.stage1.unit1.bn.bias")->data[1] == 1 / 1000.0f);
    CHECK(uakd_net_param_find(net, "backbone.stage1.unit1.bn.weight")->data[0] == 8 / 1000.0f);
    CHECK(uakd_net_param_find(net, "backbone.stage1.unit1.bn.running_var")->data[7] == 31 / 1000.0f);
    CHECK(uakd_net_param_find(net, "backbone.stage1.unit1.conv.weight")->data[0] == 32 / 1000.0f);
    CHECK(uakd_net_param_find(net, "backbone.stage2.unit1.bn.bias")->data[0] == (32 + 216) / 1000.0f);
    /* the convert route gives the same tensors */
    const char *conv = test_tmp("tinyh_converted.safetensors");
    CHECK_OK(uakd_darknet_to_safetensors(path, uakd_wdrnet_backbone(a), 0, "backbone.", conv, NULL));
    CHECK_OK(uakd_weights_load(uakd_wdrnet_net(b), uakd_wdrnet_backbone(b), conv, UAKD_WEIGHTS_PARTIAL));
    CHECK(same_params(net, uakd_wdrnet_net(b)));
done:
    uakd_wdrnet_free(a), uakd_wdrnet_free(b);
}

/* One training step on synthetic data drawn from the state's RNG: random images, random binary
 * targets for the logits (gradient sigmoid(x) - y) and a pull of the offsets towards random
 * values; AdamW with one-cycle schedule and clipping, as training uses. */
static void train(uakd_wdrnet *m, uakd_optim *opt, uakd_train_state *s, int64_t until) {
    uakd_net *net = uakd_wdrnet_net(m);
    const int N = 2;
    while (s->step < until) {
        float *x = uakd_net_out(net, uakd_wdrnet_input(m));
        for (int i = 0; i < N * 3 * 64 * 64; i++) x[i] = (float)uakd_rng_normal(&s->rng);
        CHECK_OK(uakd_wdrnet_forward(m, N, 1));
        uakd_wdr_maps maps;
        uakd_wdr_grads g;
        uakd_wdrnet_maps(m, N, &maps);
        uakd_wdrnet_grads(m, &g);
        const uakd_wdr_levels *lv = uakd_wdrnet_levels(m);
        for (int l = 0; l < lv->n; l++) {
            const int cells = N * lv->gw[l] * lv->gh[l];
            for (int i = 0; i < cells; i++) {
                const double y = uakd_rng_uniform(&s->rng) < 0.1;
                g.logits[l][i] = (float)((1 / (1 + exp(-maps.logits[l][i])) - y) / cells);
            }
            for (int i = 0; i < 16 * cells; i++)
                g.offsets[l][i] = (float)((maps.offsets[l][i] - uakd_rng_normal(&s->rng)) / cells);
        }
        uakd_net_zero_grad(net);
        CHECK_OK(uakd_wdrnet_backward(m));
        uakd_clip_grad_norm(net, 1.0);
        CHECK_OK(uakd_optim_step(opt, uakd_lr_onecycle(s->step, s->total_steps, 0.05, 1e-3)));
        s->step++;
    }
}

static void start(uakd_wdrnet **m, uakd_optim **opt, uakd_train_state *s, int64_t total) {
    *m = tiny(1, 1);
    uakd_optim_config oc = uakd_optim_adamw_default(1e-4);
    CHECK_OK(uakd_optim_new(uakd_wdrnet_net(*m), &oc, opt));
    memset(s, 0, sizeof *s);
    s->total_steps = total;
    uakd_rng_seed(&s->rng, 77);
    CHECK_OK(uakd_wdrnet_init(*m, &s->rng));
}

static void test_resume_is_bit_exact(void) {
    const int64_t k = 3;
    uakd_wdrnet *a = NULL, *b = NULL;
    uakd_optim *oa = NULL, *ob = NULL;
    uakd_train_state sa, sb;
    start(&a, &oa, &sa, 2 * k);
    train(a, oa, &sa, 2 * k);
    /* interrupted run */
    start(&b, &ob, &sb, 2 * k);
    train(b, ob, &sb, k);
    sb.has_loader = 1, sb.loader.epoch = 4, sb.loader.index = 17;
    const char *path = test_tmp("run.ckpt");
    CHECK_OK(uakd_wdrnet_checkpoint_save(b, ob, &sb, path));
    uakd_optim_free(ob), uakd_wdrnet_free(b);
    /* fresh process state: nothing initialised, the RNG elsewhere */
    b = tiny(1, 1);
    uakd_optim_config oc = uakd_optim_adamw_default(1e-4);
    CHECK_OK(uakd_optim_new(uakd_wdrnet_net(b), &oc, &ob));
    memset(&sb, 0, sizeof sb);
    uakd_rng_seed(&sb.rng, 999);
    CHECK_OK(uakd_wdrnet_checkpoint_load(b, ob, &sb, path));
    CHECK(sb.step == k && sb.total_steps == 2 * k && uakd_optim_steps(ob) == k);
    CHECK(sb.has_loader && sb.loader.epoch == 4 && sb.loader.index == 17);
    train(b, ob, &sb, 2 * k);
    CHECK(same_params(uakd_wdrnet_net(a), uakd_wdrnet_net(b)));
    int64_t na, nb;
    const float *xa = uakd_optim_state(oa, &na), *xb = uakd_optim_state(ob, &nb);
    CHECK(na == nb && memcmp(xa, xb, sizeof(float) * (size_t)na) == 0);
    CHECK(memcmp(&sa.rng, &sb.rng, sizeof sa.rng) == 0);
    /* and the training did move the weights */
    uakd_wdrnet *fresh;
    uakd_optim *of;
    uakd_train_state sf;
    start(&fresh, &of, &sf, 2 * k);
    CHECK(!same_params(uakd_wdrnet_net(a), uakd_wdrnet_net(fresh)));
    uakd_optim_free(of), uakd_wdrnet_free(fresh);

    /* corrupt: one flipped data byte (CRC), truncation; foreign: a weights file */
    void *data;
    size_t size;
    CHECK_OK(uakd_read_file(path, (size_t)1 << 30, &data, &size));
    if (data) {
        ((unsigned char *)data)[size - 100] ^= 1;
        const char *bad = test_tmp("bad.ckpt");
        CHECK_OK(uakd_write_file_atomic(bad, data, size));
        CHECK_FAILS(uakd_wdrnet_checkpoint_load(b, ob, &sb, bad), UAKD_EFORMAT);
        CHECK(strstr(uakd_last_error(), "crc") || strstr(uakd_last_error(), "CRC"));
        CHECK_OK(uakd_write_file_atomic(bad, data, size / 2));
        CHECK_FAILS(uakd_wdrnet_checkpoint_load(b, ob, &sb, bad), UAKD_EFORMAT);
        free(data);
    }
    const char *w = test_tmp("weights_not_ckpt.safetensors");
    CHECK_OK(uakd_wdrnet_save(b, w));
    CHECK_FAILS(uakd_wdrnet_checkpoint_load(b, ob, &sb, w), UAKD_EFORMAT);
    CHECK(strstr(uakd_last_error(), "uakd-weights") != NULL);
    uakd_wdrnet *other = tiny(2, 1);
    uakd_optim *oo;
    CHECK_OK(uakd_optim_new(uakd_wdrnet_net(other), &oc, &oo));
    CHECK_FAILS(uakd_wdrnet_checkpoint_load(other, oo, &sb, path), UAKD_EFORMAT);
    uakd_optim_free(oo), uakd_wdrnet_free(other);
    uakd_optim_free(oa), uakd_optim_free(ob);
    uakd_wdrnet_free(a), uakd_wdrnet_free(b);
}

int main(void) {
    RUN(test_weights_roundtrip);
    RUN(test_darknet_import);
    RUN(test_resume_is_bit_exact);
    return TEST_END();
}
