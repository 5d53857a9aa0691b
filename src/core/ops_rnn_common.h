/*
 * ops_rnn_common.h - what the LSTM and GRU kernels share (private to
 * ops_lstm.c, ops_gru.c and ops_rnn_common.c): gate nonlinearities, the
 * shape check, the input projection of all steps and the weight gradients
 * of all steps.
 */
#ifndef HEED_CORE_OPS_RNN_COMMON_H
#define HEED_CORE_OPS_RNN_COMMON_H

#include "core/fastmath.h"
#include "core/graph.h"
#include "core/tensor.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

static inline float rnn_sigmoid(float x) {
    return 1.0f / (1.0f + fast_expf(-x));
}

/* tanh through e^(-2|x|), which keeps full relative precision near 0 (the
 * 2 sigmoid(2x) - 1 form would not). */
static inline float rnn_tanh(float x) {
    float e = fast_expf(-2.0f * (x < 0 ? -x : x));
    float t = (1.0f - e) / (1.0f + e);
    return x < 0 ? -t : t;
}

/* Sizes of one recurrent op after its inputs were checked. */
typedef struct rnn_dims {
    int B, T, C, H, G; /* G gates: 4 (LSTM), 3 (GRU) */
} rnn_dims;

/* Asserts the shapes in ops_rnn.h's contract for G gates; returns them. */
rnn_dims rnn_check_dims(const tensor *x, const tensor *valid, const tensor *w_ih,
                        const tensor *w_hh, const tensor *b_ih, const tensor *b_hh, int G);

/* What a recurrent op keeps of its call, the first member of its backward
 * context: inputs, output, direction and sizes. */
typedef struct rnn_io {
    tensor *out, *x, *w_ih, *w_hh, *b_ih, *b_hh;
    const int32_t *valid;
    bool reverse;
    rnn_dims d;
} rnn_io;

/* The start every recurrent op shares: checks the shapes for G gates,
 * creates the (B, T, H) output on g and says in *grad whether the op must
 * record itself for backward. */
rnn_io rnn_io_begin(graph *g, tensor *x, const tensor *valid, tensor *w_ih, tensor *w_hh,
                    tensor *b_ih, tensor *b_hh, bool reverse, int G, bool *grad);

/* xp (B*T, G*H) = x (B*T, C) @ w_ih^T + b1 (+ b2 where b2 is not NULL). */
void rnn_input_projection(float *xp, const float *x, const float *w_ih, const float *b1,
                          const float *b2, const rnn_dims *d);

/* The gradients every recurrent op ends with, from the per-step gradients of
 * the input projection dgi (B*T, G*H) and of the recurrent projection
 * dgh (B*T, G*H) (the same buffer for the LSTM), and the previous states
 * hprev (B*T, H) each step read:
 *   dx += dgi @ w_ih,  dw_ih += dgi^T x,  db_ih += sum dgi,
 *   dw_hh += dgh^T hprev,  db_hh += sum dgh.
 * Any gradient pointer may be NULL (no gradient flows there). */
void rnn_weight_grads(float *dx, float *dw_ih, float *db_ih, float *dw_hh, float *db_hh,
                      const float *dgi, const float *dgh, const float *x, const float *hprev,
                      const float *w_ih, const rnn_dims *d);

/* The recurrent step products, h (B, H) @ w_hh^T and dgates (B, G*H) @
 * w_hh, run through small_gemm (two to three times OpenBLAS's rate on these
 * shapes: OpenBLAS packs the same w_hh again at every step). The forward
 * reads w_hh^T (H, G*H), transposed once per sequence into the arena. */
float *rnn_w_hh_transposed(graph *g, const tensor *w_hh, const rnn_dims *d);

/* True when row b is a real token at t (valid NULL: always). */
static inline bool rnn_valid(const int32_t *valid, int T, int b, int t) {
    return !valid || valid[(int64_t)b * T + t] != 0;
}

/* Where row b's state after step s goes: straight into the (B, T, H) array
 * of states each step reads, at the next step's slot, so no step copies its
 * state in; after the last step, into last (B, H). */
static inline float *rnn_next_state(float *prev, float *last, int T, int H, bool reverse, int s,
                                    int b) {
    if (s == T - 1)
        return last + (size_t)b * H;
    int tn = reverse ? T - 2 - s : s + 1;
    return prev + ((size_t)b * T + tn) * H;
}

/* Row b's state before the first step: zeros in its slot of prev. */
static inline void rnn_zero_first_state(float *prev, int T, int H, bool reverse, int b) {
    if (T == 0)
        return;
    int t0 = reverse ? T - 1 : 0;
    memset(prev + ((size_t)b * T + t0) * H, 0, sizeof(float) * H);
}

#endif
