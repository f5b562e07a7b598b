/* Tests of the network description parser: the shipped backbones' exact parameter counts and
 * tap shapes, hand-computed shapes/parameters/FLOPs of a small network, the canonical form and
 * its hash, and errors (with line numbers and suggestions) for every kind of mistake. */
#include "test.h"
#include "test_cmd.h"

#include <sys/wait.h>

#include "uakd/netdesc.h"
#include "uakd/safetensors.h"
#include "uakd/status.h"

static void check_tap(const uakd_netdesc *d, const char *name, int c, int h, int w) {
    int i = uakd_netdesc_find_output(d, name);
    CHECK_MSG(i >= 0, "no tap %s", name);
    if (i < 0) return;
    const uakd_layer_desc *l = &d->layers[i];
    CHECK_MSG(l->out_c == c && l->out_h == h && l->out_w == w, "tap %s is %dx%dx%d", name, l->out_c, l->out_h, l->out_w);
}

static int count_type(const uakd_netdesc *d, uakd_netdesc_type t) {
    int n = 0;
    for (int i = 0; i < d->n_layers; i++) n += d->layers[i].type == t;
    return n;
}

/* models.md: DarkNet-53 40.58 M, DarkNet-Tiny 0.913 M, DarkNet-Tiny-H 0.229 M parameters. */
static void test_darknet53(void) {
    uakd_netdesc *d;
    CHECK_OK(uakd_netdesc_load("cfg/darknet53.cfg", &d));
    if (!d) return;
    CHECK(d->total_params == 40584928);
    CHECK(d->total_params / 10000 == 4058); /* 40.58 M as printed */
    CHECK(d->total_buffers == 2 * 17856);   /* running mean + var of the 17856 BN channels */
    CHECK(count_type(d, UAKD_ND_CONV) == 52);
    CHECK(count_type(d, UAKD_ND_SHORTCUT) == 23);
    CHECK(d->n_layers == 78); /* 75 darknet layers + 3 taps */
    check_tap(d, "s8", 256, 32, 32);
    check_tap(d, "s16", 512, 16, 16);
    check_tap(d, "s32", 1024, 8, 8);
    CHECK(d->input.channels == 3 && d->input.mean[1] == 0.456f && d->input.std[2] == 0.225f);
    /* The stem: 3x3x3x32 weights + 64 BN parameters; 2 * 864 * 256 * 256 FLOPs. */
    CHECK(d->layers[0].params == 864 + 64);
    CHECK(d->layers[0].flops == 2.0 * 864 * 256 * 256);
    CHECK(strcmp(d->layers[0].name, "stem") == 0 && d->layers[0].norm == UAKD_ND_NORM_BATCH && !d->layers[0].bias);
    CHECK(d->layers[4].type == UAKD_ND_SHORTCUT && d->layers[4].from[0] == 1);
    CHECK_OK(uakd_netdesc_set_input_size(d, 128, 96));
    check_tap(d, "s32", 1024, 3, 4);
    CHECK(d->total_params == 40584928);
    CHECK_OK(uakd_netdesc_set_input_size(d, 8, 8)); /* padded stride-2 convs stop at 1x1 */
    check_tap(d, "s32", 1024, 1, 1);
    uakd_netdesc_free(d);
}

static void test_darknet_tiny(void) {
    uakd_netdesc *d;
    CHECK_OK(uakd_netdesc_load("cfg/darknet-tiny.cfg", &d));
    if (d) {
        CHECK(d->total_params == 913104);
        CHECK(d->total_params / 1000 == 913);
        CHECK(count_type(d, UAKD_ND_CONV) == 15 && count_type(d, UAKD_ND_MAXPOOL) == 4);
        check_tap(d, "s8", 128, 32, 32);
        check_tap(d, "s16", 128, 16, 16);
        /* 8 -> 4 -> 2 -> 1, and the stage-3 pool's 2x2 window does not fit in 1x1. */
        CHECK_FAILS(uakd_netdesc_set_input_size(d, 8, 8), UAKD_EFORMAT);
        CHECK(strstr(uakd_last_error(), "at input 8x8") && strstr(uakd_last_error(), "[maxpool]"));
        check_tap(d, "s16", 128, 16, 16); /* the previous size is kept */
        CHECK_OK(uakd_netdesc_set_input_size(d, 128, 64));
        check_tap(d, "s8", 128, 8, 16);
        uakd_netdesc_free(d);
    }
    CHECK_OK(uakd_netdesc_load("cfg/darknet-tiny-h.cfg", &d));
    if (d) {
        CHECK(d->total_params == 229480);
        CHECK(d->total_params / 1000 == 229);
        check_tap(d, "s8", 64, 32, 32);
        check_tap(d, "s16", 64, 16, 16);
        uakd_netdesc_free(d);
    }
}

static const char *SMALL =
    "# a small network exercising every section\n"
    "[net]\n"
    "width = 8   # spaces and comments are fine\n"
    "height=6\n"
    "channels=2\n"
    "\n"
    "[convolutional]\n"          /* 0: 2x6x8 -> 4x3x4 */
    "filters=4\nsize=3\nstride=2\npad=1\nactivation=relu\n"
    "[conv]\n"                   /* 1: grouped 1x1 with GroupNorm, 4x3x4 -> 4x3x4 */
    "filters=4\ngroups=2\nnorm=group\nnorm_groups=2\nactivation=silu\n"
    "[shortcut]\nfrom=-2\nactivation=leaky\n" /* 2 */
    "[maxpool]\nsize=3\nstride=1\npadding=1\n"   /* 3: 4x3x4 */
    "[upsample]\n"               /* 4: 4x6x8 */
    ;

static void test_small_network_by_hand(void) {
    /* A route of layer 4 (6x8) and layer 3 (3x4) is refused with its line. */
    char text[2048];
    snprintf(text, sizeof text, "%s%s", SMALL, "[route]\nlayers=-1, 3\n");
    uakd_netdesc *d;
    CHECK_FAILS(uakd_netdesc_parse(text, strlen(text), "small", &d), UAKD_EFORMAT);
    CHECK(strstr(uakd_last_error(), "small:27: layer 5 [route]") && strstr(uakd_last_error(), "equal sizes"));
    snprintf(text, sizeof text, "%s%s", SMALL,
             "[route]\nlayers=0,2,-4\n"  /* 5: layers 0, 2, 1 (all 3x4) -> 12x3x4 */
             "[activation]\nactivation=sigmoid\n" /* 6 */
             "[conv]\nname=head.out\nfilters=5\nsize=1\nbias=1\n" /* 7: 12 -> 5, with bias */
             "[output]\nname=logits\n");
    CHECK_OK(uakd_netdesc_parse(text, strlen(text), "small", &d));
    if (!d) return;
    CHECK(d->n_layers == 9);
    const uakd_layer_desc *l = d->layers;
    CHECK(l[0].out_c == 4 && l[0].out_h == 3 && l[0].out_w == 4 && l[0].padding == 1 && l[0].bias == 1);
    CHECK(l[0].params == 4 * 2 * 9 + 4 && l[0].buffers == 0);
    CHECK(l[0].flops == 2.0 * 18 * 4 * 12);
    CHECK(l[1].params == 4 * 2 * 1 + 2 * 4 && l[1].buffers == 0 && l[1].bias == 0 && l[1].norm_groups == 2);
    CHECK(l[1].norm == UAKD_ND_NORM_GROUP && l[1].activation == UAKD_ND_ACT_SILU && l[1].norm_eps == 1e-5f);
    CHECK(l[2].from[0] == 0 && l[2].flops == 48 && l[2].activation == UAKD_ND_ACT_LEAKY);
    CHECK(l[3].out_h == 3 && l[3].out_w == 4 && l[3].stride == 1);
    CHECK(l[4].out_h == 6 && l[4].out_w == 8 && l[4].stride == 2);
    CHECK(l[5].n_from == 3 && l[5].from[0] == 0 && l[5].from[1] == 2 && l[5].from[2] == 1);
    CHECK(l[5].out_c == 12 && l[5].out_h == 3);
    CHECK(l[7].params == 12 * 5 + 5 && l[7].out_c == 5);
    CHECK(d->total_params == 76 + 16 + 65);
    CHECK(uakd_netdesc_find_output(d, "logits") == 8 && uakd_netdesc_find_output(d, "s8") == -1);
    CHECK(d->input.mean[1] == 0 && d->input.std[1] == 1);
    char *summary;
    CHECK_OK(uakd_netdesc_summary(d, &summary));
    if (summary) {
        CHECK(strstr(summary, "total: 9 layers, 157 parameters") != NULL);
        free(summary);
    }
    uakd_netdesc_free(d);
}

/* A squeeze-and-excitation block (EfficientNet's MBConv uses it). */
static void test_squeeze_excitation(void) {
    const char *se = "[net]\nwidth=8\nheight=6\nchannels=4\n"
                     "[conv]\nfilters=4\n"                                  /* 0: 4x6x8, 16 + 4 params */
                     "[avgpool]\n"                                           /* 1: 4x1x1 */
                     "[conv]\nfilters=2\nactivation=silu\n"                 /* 2: 2x1x1, 8 + 2 */
                     "[conv]\nfilters=4\nactivation=sigmoid\n"              /* 3: 4x1x1, 8 + 4 */
                     "[scale_channels]\nfrom=-4\n";                         /* 4: layer 0 x layer 3 */
    uakd_netdesc *d;
    CHECK_OK(uakd_netdesc_parse(se, strlen(se), "se", &d));
    if (!d) return;
    const uakd_layer_desc *l = d->layers;
    CHECK(l[1].type == UAKD_ND_AVGPOOL && l[1].out_c == 4 && l[1].out_h == 1 && l[1].out_w == 1);
    CHECK(l[1].flops == 4 * 6 * 8);
    CHECK(l[4].type == UAKD_ND_SCALE_CHANNELS && l[4].from[0] == 0);
    CHECK(l[4].out_c == 4 && l[4].out_h == 6 && l[4].out_w == 8 && l[4].flops == 4 * 6 * 8);
    CHECK(d->total_params == 20 + 10 + 12);
    uakd_netdesc_free(d);
    const char *bad = "[net]\nwidth=8\nheight=6\n[conv]\nfilters=4\n[avgpool]\n[conv]\nfilters=3\n"
                      "[scale_channels]\nfrom=0\n";
    CHECK_FAILS(uakd_netdesc_parse(bad, strlen(bad), "se", &d), UAKD_EFORMAT);
    CHECK(strstr(uakd_last_error(), "se:9: layer 3 [scale_channels]") && strstr(uakd_last_error(), "not 4x1x1"));
}

static void test_canonical_form_and_hash(void) {
    uakd_netdesc *a, *b, *c;
    CHECK_OK(uakd_netdesc_load("cfg/darknet-tiny-h.cfg", &a));
    if (!a) return;
    char *text;
    CHECK_OK(uakd_netdesc_canonical(a, &text));
    CHECK_OK(uakd_netdesc_parse(text, strlen(text), "canonical", &b));
    char *text2;
    CHECK_OK(uakd_netdesc_canonical(b, &text2));
    CHECK(strcmp(text, text2) == 0);
    CHECK(b->total_params == a->total_params);
    uint64_t ha, hb, hc;
    CHECK_OK(uakd_netdesc_hash(a, &ha));
    CHECK_OK(uakd_netdesc_hash(b, &hb));
    CHECK(ha == hb);
    /* The input size does not change the hash; one changed value does. */
    CHECK_OK(uakd_netdesc_set_input_size(b, 64, 32));
    CHECK_OK(uakd_netdesc_hash(b, &hb));
    CHECK(ha == hb);
    CHECK_OK(uakd_netdesc_hash(a, &ha));
    CHECK(ha == hb);
    char *p = strstr(text, "filters=64");
    if (p) memcpy(p, "filters=65", 10);
    CHECK_OK(uakd_netdesc_parse(text, strlen(text), "changed", &c));
    if (c) {
        CHECK_OK(uakd_netdesc_hash(c, &hc));
        CHECK(hc != ha);
        uakd_netdesc_free(c);
    }
    free(text);
    free(text2);
    uakd_netdesc_free(a);
    uakd_netdesc_free(b);
}

static void test_architecture_metadata(void) {
    uakd_netdesc *tiny, *big;
    CHECK_OK(uakd_netdesc_load("cfg/darknet-tiny-h.cfg", &tiny));
    CHECK_OK(uakd_netdesc_load("cfg/darknet53.cfg", &big));
    if (!tiny || !big) return;
    uakd_safetensors_writer *w;
    CHECK_OK(uakd_safetensors_writer_new(&w));
    CHECK_OK(uakd_netdesc_put_metadata(tiny, w));
    void *buf;
    size_t n;
    CHECK_OK(uakd_safetensors_writer_to_memory(w, &buf, &n));
    uakd_safetensors *st;
    CHECK_OK(uakd_safetensors_parse(buf, n, "meta", &st));
    if (st) {
        CHECK_OK(uakd_netdesc_check_metadata(tiny, st));
        CHECK_FAILS(uakd_netdesc_check_metadata(big, st), UAKD_EFORMAT);
        CHECK(strstr(uakd_last_error(), "another architecture") != NULL);
        CHECK(strcmp(uakd_safetensors_meta(st, "input_size"), "256x256x3") == 0);
        CHECK(strcmp(uakd_safetensors_meta(st, "input_mean"), "0.485000014,0.456000000,0.405999988") == 0 ||
              strcmp(uakd_safetensors_meta(st, "input_mean"), "0.485000014,0.456,0.405999988") == 0);
        CHECK(strcmp(uakd_safetensors_meta(st, "input_std"), "0.229000002,0.224000007,0.224999994") == 0);
        /* The recorded description is the network itself. */
        const char *arch = uakd_safetensors_meta(st, "arch");
        uakd_netdesc *again;
        CHECK_OK(uakd_netdesc_parse(arch, strlen(arch), "arch", &again));
        if (again) {
            CHECK(again->total_params == 229480);
            uakd_netdesc_free(again);
        }
        uakd_safetensors_free(st);
    }
    free(buf);
    uakd_safetensors_writer_free(w);
    CHECK_OK(uakd_safetensors_open("tests/data/safetensors/torch_mixed.safetensors", &st));
    if (st) {
        CHECK_FAILS(uakd_netdesc_check_metadata(tiny, st), UAKD_EFORMAT);
        uakd_safetensors_free(st);
    }
    uakd_netdesc_free(tiny);
    uakd_netdesc_free(big);
}

/* The description must fail and the message must contain every needle. */
static void expect_error(const char *text, const char *needle1, const char *needle2) {
    uakd_netdesc *d = (uakd_netdesc *)1;
    uakd_clear_error();
    uakd_status st = uakd_netdesc_parse(text, strlen(text), "t.cfg", &d);
    CHECK_MSG(st == UAKD_EFORMAT, "accepted:\n%s", text);
    CHECK(d == NULL);
    const char *m = uakd_last_error();
    CHECK_MSG(strstr(m, needle1) && (!needle2 || strstr(m, needle2)), "message \"%s\" lacks \"%s\"/\"%s\"", m,
              needle1, needle2 ? needle2 : "");
}

#define NET "[net]\nwidth=16\nheight=16\n"
static void test_errors_name_line_and_suggest(void) {
    expect_error(NET "[convolutional]\nfiltres=4\n", "t.cfg:5: unknown key 'filtres' in [convolutional]",
                 "did you mean 'filters'?");
    expect_error(NET "[convolutional]\nfilters=4\nactivation=leakyy\n", "t.cfg:6:", "did you mean 'leaky'?");
    expect_error(NET "[convolutinal]\nfilters=4\n", "t.cfg:4: unknown section [convolutinal]",
                 "did you mean 'convolutional'?");
    expect_error(NET "[convolutional]\nfilters=4\nzzz=1\n", "unknown key 'zzz'", NULL);
    expect_error(NET "[convolutional]\nfilters=4\nsize=3\nfilters=8\n", "t.cfg:7: key 'filters' given twice",
                 "first at line 5");
    expect_error(NET "[convolutional]\nsize=3\n", "t.cfg:4: [convolutional] is missing the required key 'filters'", NULL);
    expect_error(NET "[convolutional]\nfilters=4\nsize=40\n", "t.cfg:6:", "out of range 1..31");
    expect_error(NET "[convolutional]\nfilters=4x\n", "t.cfg:5:", "expected an integer");
    expect_error(NET "[convolutional]\nfilters=4\nnorm=batch\neps=nan\n", "t.cfg:7:", "finite");
    expect_error(NET "[convolutional]\nfilters=4\nnorm=batch\nnorm_groups=2\n", "norm_groups", "no effect");
    expect_error(NET "[convolutional]\nfilters=4\neps=0.001\n", "'eps' has no effect", NULL);
    expect_error(NET "[convolutional]\nfilters=4\nnorm=group\nmomentum=0.1\n", "'momentum' has no effect", NULL);
    expect_error(NET "[convolutional]\nfilters=6\nnorm=group\n", "not divisible by norm_groups=32", NULL);
    expect_error(NET "[convolutional]\nfilters=4\ngroups=3\n", "not divisible by groups=3", NULL);
    expect_error(NET "[convolutional]\nfilters=4\ngroups=4\n", "3 input channels are not divisible", NULL);
    expect_error(NET "[convolutional]\nfilters=4\nbatch_normalize=1\nnorm=group\n", "contradicts", NULL);
    expect_error(NET "[convolutional]\nfilters=4\npad=1\npadding=2\n", "either pad=1", NULL);
    expect_error(NET "[convolutional]\nfilters=4\nsize=31\n", "smaller than the 31x31 window", NULL);
    expect_error(NET "[convolutional]\nfilters=4\n[route]\nlayers=1\n", "t.cfg:6: [route] layers=1 refers to layer 1",
                 NULL);
    expect_error(NET "[convolutional]\nfilters=4\n[route]\nlayers=-2\n", "refers to layer -1", NULL);
    expect_error(NET "[convolutional]\nfilters=4\n[shortcut]\nfrom=-1\n", "before the previous one", NULL);
    expect_error(NET "[convolutional]\nfilters=4\n[convolutional]\nfilters=8\n[shortcut]\nfrom=-2\n",
                 "shapes differ", NULL);
    expect_error(NET "[convolutional]\nfilters=4\n[route]\nlayers=\n", "t.cfg:7: key 'layers' has an empty value", NULL);
    expect_error(NET "[convolutional]\nfilters=4\n[route]\nlayers=0,,0\n", "malformed list", NULL);
    expect_error(NET "[maxpool]\nsize=2\npadding=2\n", "more than half", NULL);
    expect_error(NET "[output]\n", "missing the required key 'name'", NULL);
    expect_error(NET "[output]\nname=a b\n", "letters, digits", NULL);
    expect_error(NET "[output]\nname=a\n[output]\nname=a\n", "t.cfg:6: name 'a' is already used by layer 0", NULL);
    expect_error(NET, "no layers", NULL);
    expect_error("[net]\nwidth=16\n[output]\nname=x\n", "missing the required key 'height'", NULL);
    expect_error("[net]\nwidth=16\nheight=16\nchannels=3\nmean=0.5,0.5\n[output]\nname=x\n", "one value per channel",
                 NULL);
    expect_error("[net]\nwidth=16\nheight=16\nstd=0\n", "out of range", NULL);
    expect_error("[output]\nname=x\n", "before [net]", NULL);
    expect_error(NET "[net]\n", "t.cfg:4: a second [net]", NULL);
    expect_error("width=3\n", "before the first section", NULL);
    expect_error(NET "[convolutional\n", "closing ']'", NULL);
    expect_error(NET "just words\n", "t.cfg:4: expected key=value", NULL);
    expect_error(NET " = 3\n", "t.cfg:4: a key is missing", NULL);
    expect_error("", "no [net] section", NULL);
    char nul[] = "[net]\nwidth=1\0";
    uakd_netdesc *d;
    CHECK_FAILS(uakd_netdesc_parse(nul, sizeof nul, "nul", &d), UAKD_EFORMAT);
}

/* `uakd netinfo` prints the totals and exits 3 on a bad description (needs UAKD_CLI, set by
 * `make test`). */
static void test_cli_netinfo(void) {
    const char *cli = getenv("UAKD_CLI");
    char cmd[1024], out[8192] = "";
    snprintf(cmd, sizeof cmd, "%s netinfo cfg/darknet-tiny-h.cfg --width 128 --height 64", cli);
    CHECK(test_run_cmd(cmd, out, sizeof out) == 0);
    CHECK(strstr(out, "total: 21 layers, 229480 parameters (0.229 M)") != NULL);
    CHECK(strstr(out, "64x8x16") != NULL); /* the s8 tap at 128x64 */
    snprintf(cmd, sizeof cmd, "%s netinfo fuzz/corpus/netdesc/bad-misspelt-key.cfg 2>/dev/null", cli);
    int rc = system(cmd);
    CHECK(WIFEXITED(rc) && WEXITSTATUS(rc) == 3);
}

int main(void) {
    RUN(test_darknet53);
    RUN(test_darknet_tiny);
    RUN(test_small_network_by_hand);
    RUN(test_squeeze_excitation);
    RUN(test_canonical_form_and_hash);
    RUN(test_errors_name_line_and_suggest);
    RUN(test_architecture_metadata);
    if (getenv("UAKD_CLI")) RUN(test_cli_netinfo);
    else SKIP(test_cli_netinfo, "UAKD_CLI not set (run through make test)");
    return TEST_END();
}
