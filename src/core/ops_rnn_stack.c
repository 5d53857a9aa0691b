/*
 * ops_rnn_stack.c - stacked, optionally bidirectional LSTM/GRU layers with
 * PyTorch's parameter names and dropout between layers.
 */
#include "core/ops.h"
#include "core/ops_rnn.h"

#include "core/check.h"

#include <math.h>
#include <stdio.h>

void rnn_stack_init(rnn_stack *s, params *ps, const char *name, rnn_cell cell, int C, int H,
                    int layers, bool bidirectional, float dropout) {
    HEED_ASSERT(layers >= 1 && layers <= RNN_MAX_LAYERS && C > 0 && H > 0);
    *s = (rnn_stack){.cell = cell,
                     .C = C,
                     .H = H,
                     .layers = layers,
                     .bidirectional = bidirectional,
                     .dropout = dropout};
    int G = cell == RNN_CELL_LSTM ? 4 : 3;
    int D = bidirectional ? 2 : 1;
    /* PyTorch draws every weight and bias of nn.LSTM/nn.GRU from this */
    param_init init = PARAM_INIT(INIT_UNIFORM, 1.0f / sqrtf((float)H));
    params_push_scope(ps, "%s", name);
    for (int l = 0; l < layers; l++) {
        int in = l == 0 ? C : D * H;
        for (int dir = 0; dir < D; dir++) {
            const char *sfx = dir ? "_reverse" : "";
            char n[64];
            rnn_weights *w = &s->w[l][dir];
            snprintf(n, sizeof n, "weight_ih_l%d%s", l, sfx);
            w->w_ih = params_add(ps, n, init, 2, (int[]){G * H, in});
            snprintf(n, sizeof n, "weight_hh_l%d%s", l, sfx);
            w->w_hh = params_add(ps, n, init, 2, (int[]){G * H, H});
            snprintf(n, sizeof n, "bias_ih_l%d%s", l, sfx);
            w->b_ih = params_add(ps, n, init, 1, (int[]){G * H});
            snprintf(n, sizeof n, "bias_hh_l%d%s", l, sfx);
            w->b_hh = params_add(ps, n, init, 1, (int[]){G * H});
        }
    }
    params_pop_scope(ps);
}

static tensor *rnn_direction_forward(graph *g, rnn_cell cell, const rnn_weights *w, tensor *x,
                                     const tensor *valid, bool reverse) {
    return cell == RNN_CELL_LSTM ? op_lstm(g, x, valid, w->w_ih, w->w_hh, w->b_ih, w->b_hh, reverse)
                                 : op_gru(g, x, valid, w->w_ih, w->w_hh, w->b_ih, w->b_hh, reverse);
}

tensor *rnn_stack_forward(graph *g, const rnn_stack *s, tensor *x, const tensor *valid) {
    HEED_ASSERT(x->ndim == 3 && x->shape[2] == s->C);
    for (int l = 0; l < s->layers; l++) {
        if (l > 0)
            x = op_dropout(g, x, s->dropout);
        tensor *fwd = rnn_direction_forward(g, s->cell, &s->w[l][0], x, valid, false);
        if (s->bidirectional) {
            tensor *bwd = rnn_direction_forward(g, s->cell, &s->w[l][1], x, valid, true);
            x = op_concat(g, 2, (tensor *[]){fwd, bwd}, -1);
        } else {
            x = fwd;
        }
    }
    return x;
}
