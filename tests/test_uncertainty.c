/* Tests of the ensemble statistics against hand-computed values. */
#include "test.h"
#include "uakd/status.h"
#include "uakd/uncertainty.h"

/* E = 3, P = 2, K = 1. Prediction 0: x = 1, 2, 3 (mean 2, var 1), y = 0, 0, 3 (mean 1, var 3),
 * s2 = 4. Prediction 1: all members at (5, 7): s2 = 0. */
static void test_mean_variance_u(void) {
    const float pred[3 * 2 * 2] = {1, 0, 5, 7, 2, 0, 5, 7, 3, 3, 5, 7};
    float mean[4], s2[2], u[2];
    CHECK_OK(uakd_unc_ensemble(3, 2, 1, pred, mean, s2));
    CHECK_NEAR(mean[0], 2, 1e-7);
    CHECK_NEAR(mean[1], 1, 1e-7);
    CHECK_NEAR(mean[2], 5, 1e-7);
    CHECK_NEAR(mean[3], 7, 1e-7);
    CHECK_NEAR(s2[0], 4, 1e-6);
    CHECK(s2[1] == 0);
    CHECK_OK(uakd_unc_from_variance(2, s2, 1.0, u));
    CHECK_NEAR(u[0], tanh(4.0), 1e-7);
    CHECK(u[1] == 0);
    CHECK_OK(uakd_unc_from_variance(2, s2, 4.0, u)); /* tau = 2 px */
    CHECK_NEAR(u[0], tanh(1.0), 1e-7);
    CHECK_FAILS(uakd_unc_ensemble(1, 2, 1, pred, mean, s2), UAKD_EINVAL);
    CHECK_FAILS(uakd_unc_from_variance(2, s2, 0.0, u), UAKD_EINVAL);
}

/* Two keypoints per prediction, E = 2: s2 = ((a-b)^2/2) per axis summed. */
static void test_keypoint_layout(void) {
    /* member 0: kp0 (0,0) kp1 (10,10); member 1: kp0 (2,0) kp1 (10,14) */
    const float pred[2 * 1 * 2 * 2] = {0, 0, 10, 10, 2, 0, 10, 14};
    float mean[4], s2[2];
    CHECK_OK(uakd_unc_ensemble(2, 1, 2, pred, mean, s2));
    CHECK_NEAR(mean[0], 1, 1e-7);
    CHECK_NEAR(mean[3], 12, 1e-7);
    CHECK_NEAR(s2[0], 2, 1e-6);
    CHECK_NEAR(s2[1], 8, 1e-6);
}

static void test_auto_tau_median(void) {
    float odd[5] = {5, 1, 3, 9, 2}, even[4] = {4, 1, 3, 2}, zeros[3] = {0, 0, 1};
    float many[101];
    for (int i = 0; i < 101; i++) many[i] = (float)((i * 37) % 101);
    double t;
    CHECK_OK(uakd_unc_auto_tau2(5, odd, &t));
    CHECK_NEAR(t, 3, 0);
    CHECK_OK(uakd_unc_auto_tau2(4, even, &t));
    CHECK_NEAR(t, 2.5, 0);
    CHECK_OK(uakd_unc_auto_tau2(101, many, &t));
    CHECK_NEAR(t, 50, 0);
    /* random even and odd counts with ties against a sorted copy */
    for (int n = 1; n <= 40; n++) {
        float v[40], sorted[40];
        for (int i = 0; i < n; i++) v[i] = sorted[i] = (float)((i * 7919 + n * 13) % 17);
        for (int i = 1; i < n; i++)
            for (int j = i; j > 0 && sorted[j - 1] > sorted[j]; j--) {
                float tmp = sorted[j];
                sorted[j] = sorted[j - 1];
                sorted[j - 1] = tmp;
            }
        double want = n % 2 ? sorted[n / 2] : 0.5 * (sorted[n / 2 - 1] + sorted[n / 2]);
        if (want > 0) {
            CHECK_OK(uakd_unc_auto_tau2(n, v, &t));
            CHECK_NEAR(t, want, 0);
        }
    }
    CHECK_FAILS(uakd_unc_auto_tau2(3, zeros, &t), UAKD_EDEGENERATE);
    CHECK_FAILS(uakd_unc_auto_tau2(0, zeros, &t), UAKD_EINVAL);
}

static void test_confidence_and_histogram(void) {
    /* E = 2, P = 2: sigmoid(0) = 0.5, sigmoid(ln 3) = 0.75; sigmoid(-ln 3) = 0.25, sigmoid(0) */
    const float logits[4] = {0.0f, (float)-log(3.0), (float)log(3.0), 0.0f};
    float c[2];
    CHECK_OK(uakd_unc_confidence(2, 2, logits, c));
    CHECK_NEAR(c[0], 0.625, 1e-7);
    CHECK_NEAR(c[1], 0.375, 1e-7);
    const float u[6] = {0, 0.24f, 0.25f, 0.99f, 1.0f, 0.5f};
    long counts[4] = {0, 0, 0, 0};
    uakd_unc_histogram(6, u, 4, counts);
    CHECK(counts[0] == 2 && counts[1] == 1 && counts[2] == 1 && counts[3] == 2);
}

int main(void) {
    RUN(test_mean_variance_u);
    RUN(test_keypoint_layout);
    RUN(test_auto_tau_median);
    RUN(test_confidence_and_histogram);
    return TEST_END();
}
