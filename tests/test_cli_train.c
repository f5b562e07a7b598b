/* Tests of `uakd train`, `uakd eval` and `uakd predict` through the CLI (UAKD_CLI, set by `make
 * test`): --help documents the options with their defaults, bad options and missing arguments
 * exit with the usage code 2, and a tiny run trains, evaluates (table + eval.json + eval.md) and
 * predicts (JSON with 8 corners, overlay PNG) on a rendered dataset. */
#include <cjson/cJSON.h>
#include <unistd.h>

#include "test.h"
#include "test_cmd.h"
#include "test_synth_data.h"
#include "uakd/fileio.h"
#include "uakd/synth.h"

static const char *cli(void) { return getenv("UAKD_CLI"); }

static void test_help_and_usage_errors(void) {
    static char out[16384];
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s train --help", cli());
    CHECK(test_run_cmd(cmd, out, sizeof out) == 0);
    const char *need[] = {"--data", "--out", "--obj", "--variant", "--width", "--input", "--batch", "--steps",
                          "--lr", "--wd", "--clip", "--seed", "--resume", "--val-every", "--ckpt-every", "[10000]",
                          "[0.001]", "[darknet-tiny-h]"};
    for (size_t i = 0; i < sizeof need / sizeof *need; i++) CHECK_MSG(strstr(out, need[i]) != NULL, "train --help lacks %s", need[i]);
    snprintf(cmd, sizeof cmd, "%s eval --help", cli());
    CHECK(test_run_cmd(cmd, out, sizeof out) == 0 && strstr(out, "--model") && strstr(out, "--box"));
    snprintf(cmd, sizeof cmd, "%s predict --help", cli());
    CHECK(test_run_cmd(cmd, out, sizeof out) == 0 && strstr(out, "--K") && strstr(out, "--camera"));
    snprintf(cmd, sizeof cmd, "%s train --data x --out y --bogus 2>&1", cli());
    CHECK(test_run_cmd(cmd, out, sizeof out) == 2 && strstr(out, "--bogus"));
    snprintf(cmd, sizeof cmd, "%s train --data x --out y --steps 0 2>&1", cli());
    CHECK(test_run_cmd(cmd, out, sizeof out) == 2 && strstr(out, "--steps"));
    snprintf(cmd, sizeof cmd, "%s train --out y 2>&1", cli());
    CHECK(test_run_cmd(cmd, out, sizeof out) == 2);
    snprintf(cmd, sizeof cmd, "%s eval --data x 2>&1", cli());
    CHECK(test_run_cmd(cmd, out, sizeof out) == 2);
    snprintf(cmd, sizeof cmd, "%s predict --model m --image i --box 1,2,3 --K 1,1,1,1 2>&1", cli());
    CHECK(test_run_cmd(cmd, out, sizeof out) == 2 && strstr(out, "--box"));
    snprintf(cmd, sizeof cmd, "%s eval --model %s --data x 2>&1", cli(), test_tmp("no_model_here"));
    CHECK(test_run_cmd(cmd, out, sizeof out) == 3);
}

static void test_train_eval_predict(void) {
    const char *data = test_tmp("cli_synth");
    static const test_synth_spec spec = {.format = UAKD_SYNTH_BOP, .count = 8, .val_fraction = 0.25, .width = 160,
                                         .height = 120, .depth_min = 250, .depth_max = 350, .seed = 1};
    CHECK(test_synth_dataset(data, &spec));
    static char out[65536];
    char cmd[2048];
    const char *model = test_tmp("cli_model");
    snprintf(cmd, sizeof cmd,
             "%s train --data %s --obj 1 --width 16 --tower 1 --input 64 --batch 2 --steps 3 --threads 1 --out %s 2>&1",
             cli(), data, model);
    CHECK_MSG(test_run_cmd(cmd, out, sizeof out) == 0, "%s", out);
    CHECK(strstr(out, "step 3/3") && strstr(out, "validation (2 instances"));
    snprintf(cmd, sizeof cmd, "%s eval --model %s --data %s --threads 1 --examples 2 2>/dev/null", cli(), model, data);
    CHECK_MSG(test_run_cmd(cmd, out, sizeof out) == 0, "%s", out);
    CHECK(strstr(out, "| all | 2 |") && strstr(out, "ground-truth box"));
    char path[1024];
    snprintf(path, sizeof path, "%s/eval-test/eval.json", model);
    void *js = NULL;
    size_t n = 0;
    CHECK_OK(uakd_read_file(path, 1 << 20, &js, &n));
    cJSON *j = js ? cJSON_ParseWithLength(js, n) : NULL;
    const cJSON *all = cJSON_GetObjectItemCaseSensitive(j, "all");
    CHECK(cJSON_GetObjectItemCaseSensitive(all, "targets") && cJSON_GetObjectItemCaseSensitive(all, "targets")->valueint == 2);
    CHECK(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(j, "instances")) == 2);
    cJSON_Delete(j);
    free(js);
    snprintf(path, sizeof path, "%s/eval-test/examples.png", model);
    CHECK(access(path, R_OK) == 0);
    /* predict on the first held-out image: its box from scene_gt_info, the camera from camera.json */
    snprintf(path, sizeof path, "%s/test/000000/scene_gt_info.json", data);
    CHECK_OK(uakd_read_file(path, 1 << 20, &js, &n));
    j = js ? cJSON_ParseWithLength(js, n) : NULL;
    const cJSON *first = j ? j->child : NULL, *bb = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(first, 0), "bbox_obj");
    CHECK(cJSON_GetArraySize(bb) == 4);
    if (cJSON_GetArraySize(bb) == 4) {
        snprintf(cmd, sizeof cmd,
                 "%s predict --model %s --image %s/test/000000/rgb/%06d.jpg --camera %s/camera.json --box %d,%d,%d,%d "
                 "--threads 1 --out %s 2>/dev/null",
                 cli(), model, data, atoi(first->string), data, cJSON_GetArrayItem(bb, 0)->valueint,
                 cJSON_GetArrayItem(bb, 1)->valueint, cJSON_GetArrayItem(bb, 2)->valueint,
                 cJSON_GetArrayItem(bb, 3)->valueint, test_tmp("overlay.png"));
        const int rc = test_run_cmd(cmd, out, sizeof out);
        cJSON *p = cJSON_Parse(out);
        CHECK_MSG(p && (rc == 0 || rc == 1), "rc %d: %s", rc, out);
        const cJSON *found = cJSON_GetObjectItemCaseSensitive(p, "found");
        CHECK(cJSON_IsBool(found) && cJSON_IsTrue(found) == (rc == 0));
        if (cJSON_IsTrue(found)) CHECK(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(p, "corners")) == 8);
        CHECK(access(test_tmp("overlay.png"), R_OK) == 0);
        cJSON_Delete(p);
    }
    /* detector boxes: the first held-out image gets one, the second none (a missing prediction) */
    if (cJSON_GetArraySize(bb) == 4) {
        char det[512];
        snprintf(det, sizeof det, "[{\"scene_id\": 0, \"image_id\": %d, \"category_id\": 1, \"score\": 0.9, \"bbox\": [%d, %d, %d, %d]}]",
                 atoi(first->string), cJSON_GetArrayItem(bb, 0)->valueint, cJSON_GetArrayItem(bb, 1)->valueint,
                 cJSON_GetArrayItem(bb, 2)->valueint, cJSON_GetArrayItem(bb, 3)->valueint);
        CHECK_OK(uakd_write_file_atomic(test_tmp("det.json"), det, strlen(det)));
        snprintf(cmd, sizeof cmd, "%s eval --model %s --data %s --threads 1 --examples 0 --box %s --out %s 2>/dev/null", cli(),
                 model, data, test_tmp("det.json"), test_tmp("cli_eval_box"));
        CHECK_MSG(test_run_cmd(cmd, out, sizeof out) == 0, "%s", out);
        CHECK(strstr(out, "detector boxes") && strstr(out, "| all | 2 |"));
        const char *miss = strstr(out, "| all | 2 | ");
        CHECK(miss && atoi(miss + strlen("| all | 2 | ")) >= 1);
    }
    cJSON_Delete(j);
    free(js);
    /* Ctrl-C: a checkpoint, exit status 130, and --resume finishes the run */
    snprintf(cmd, sizeof cmd,
             "%s train --data %s --obj 1 --width 16 --tower 1 --input 64 --batch 2 --steps 100000 --threads 1 "
             "--val-split none --out %s >/dev/null 2>&1 & p=$!; sleep 1.5; kill -INT $p; wait $p; echo rc=$?",
             cli(), data, test_tmp("cli_sigint"));
    CHECK(test_run_cmd(cmd, out, sizeof out) == 0);
    CHECK_MSG(strstr(out, "rc=130") != NULL, "%s", out);
    snprintf(path, sizeof path, "%s/checkpoint.safetensors", test_tmp("cli_sigint"));
    CHECK(access(path, R_OK) == 0);
}

int main(void) {
    if (!cli() || !*cli()) {
        SKIP(test_help_and_usage_errors, "UAKD_CLI not set (run through make test)");
        SKIP(test_train_eval_predict, "UAKD_CLI not set (run through make test)");
        return TEST_END();
    }
    RUN(test_help_and_usage_errors);
    RUN(test_train_eval_predict);
    return TEST_END();
}
