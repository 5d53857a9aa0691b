/*
 * ops_rnn.h - recurrent layers: LSTM and GRU over whole sequences, and the
 * bidirectional, stacked block built on them.
 *
 * One op runs one direction of one layer over all T steps, so the tape holds
 * one entry per layer and direction instead of T small ones. Weights are laid
 * out like PyTorch's nn.LSTM / nn.GRU (gate rows i, f, g, o for the LSTM and
 * r, z, n for the GRU), so a state_dict loads unchanged:
 *
 *   w_ih (G*H, C), w_hh (G*H, H), b_ih (G*H), b_hh (G*H),  G = 4 (LSTM), 3 (GRU)
 *
 * Padding follows packed sequences (torch.nn.utils.rnn.pack_padded_sequence):
 * at a position where valid[b, t] == 0 the state of row b does not change and
 * the output is 0. Run reversed, a right-padded row therefore starts from a
 * zero state at its last real token, exactly as the reverse half of a packed
 * bidirectional nn.LSTM does. The initial state is zero.
 *
 * GEMM-shaped work goes through cblas_sgemm: the input projection of all T
 * steps at once, then one (B, H) x (H, G*H) product per step; backward does
 * one product per step for the recurrent gradient and the weight gradients of
 * all steps in single products at the end. Everything saved for backward
 * lives in the graph arena; parameter gradients accumulate (+=).
 */
#ifndef HEED_CORE_OPS_RNN_H
#define HEED_CORE_OPS_RNN_H

#include "core/graph.h"
#include "core/params.h"

#include <stdbool.h>

/* x (B, T, C); valid (B, T) int32 (non-zero: a real token) or NULL for all
 * real. Returns all hidden states h (B, T, H), zeros where not valid. When
 * `reverse`, steps run from t = T-1 down to 0. */
tensor *op_lstm(graph *g, tensor *x, const tensor *valid, tensor *w_ih, tensor *w_hh, tensor *b_ih,
                tensor *b_hh, bool reverse);
/* Same contract; PyTorch's GRU: n = tanh(W_in x + b_in + r * (W_hn h + b_hn)),
 * h' = (1 - z) * n + z * h. */
tensor *op_gru(graph *g, tensor *x, const tensor *valid, tensor *w_ih, tensor *w_hh, tensor *b_ih,
               tensor *b_hh, bool reverse);

/* ---- stacked, bidirectional block (ops_rnn_stack.c) ------------------- */

typedef enum rnn_cell { RNN_CELL_LSTM, RNN_CELL_GRU } rnn_cell;

enum { RNN_MAX_LAYERS = 8 };

typedef struct rnn_weights {
    tensor *w_ih, *w_hh, *b_ih, *b_hh;
} rnn_weights;

/* nn.LSTM / nn.GRU(C, H, num_layers, batch_first=True, bidirectional,
 * dropout): layer l > 0 reads the concatenation of both directions of layer
 * l - 1; dropout p applies to every layer's output but the last (training
 * mode only). Names as in PyTorch's state_dict: "<name>.weight_ih_l0",
 * ".weight_hh_l0", ".bias_ih_l0", ".bias_hh_l0", and "..._reverse" for the
 * backward direction. Initial values U(-1/sqrt(H), 1/sqrt(H)) like PyTorch. */
typedef struct rnn_stack {
    rnn_cell cell;
    int C, H, layers;
    bool bidirectional;
    float dropout;
    rnn_weights w[RNN_MAX_LAYERS][2];
} rnn_stack;

void rnn_stack_init(rnn_stack *s, params *ps, const char *name, rnn_cell cell, int C, int H,
                    int layers, bool bidirectional, float dropout);
/* x (B, T, C), valid (B, T) or NULL. Returns (B, T, D * H), D = 2 when
 * bidirectional (forward direction first), zeros where not valid. */
tensor *rnn_stack_forward(graph *g, const rnn_stack *s, tensor *x, const tensor *valid);

#endif
