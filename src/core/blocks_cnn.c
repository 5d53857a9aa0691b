/*
 * blocks_cnn.c - conv, batch-norm, CBAM and residual blocks (blocks_cnn.h).
 */
#include "core/blocks_cnn.h"

#include "core/check.h"

#include <math.h>

void conv_layer_init(conv_layer *l, params *ps, const char *name, int C, int OC, int K,
                     conv2d_geom geom, bool bias) {
    HEED_ASSERT(C % geom.groups == 0 && OC % geom.groups == 0);
    params_push_scope(ps, "%s", name);
    l->weight = params_add(ps, "weight", PARAM_INIT(INIT_KAIMING_NORMAL, 0), 4,
                           (int[]){OC, C / geom.groups, K, K});
    l->bias = bias ? params_add(ps, "bias", PARAM_INIT(INIT_ZEROS, 0), 1, (int[]){OC}) : NULL;
    params_pop_scope(ps);
    l->geom = geom;
}

tensor *conv_layer_forward(graph *g, const conv_layer *l, tensor *x) {
    return op_conv2d(g, x, l->weight, l->bias, l->geom);
}

void bn_layer_init(bn_layer *l, params *ps, const char *name, int C, float momentum) {
    params_push_scope(ps, "%s", name);
    l->weight = params_add(ps, "weight", PARAM_INIT(INIT_ONES, 0), 1, (int[]){C});
    l->bias = params_add(ps, "bias", PARAM_INIT(INIT_ZEROS, 0), 1, (int[]){C});
    l->running_mean =
        params_add_buffer(ps, "running_mean", PARAM_INIT(INIT_ZEROS, 0), 1, (int[]){C});
    l->running_var = params_add_buffer(ps, "running_var", PARAM_INIT(INIT_ONES, 0), 1, (int[]){C});
    params_pop_scope(ps);
    l->momentum = momentum;
    l->eps = 1e-5f;
}

tensor *bn_layer_forward(graph *g, const bn_layer *l, tensor *x) {
    return op_batch_norm(g, x, l->weight, l->bias, l->running_mean, l->running_var, l->momentum,
                         l->eps);
}

/* ---- CBAM -------------------------------------------------------------- */

void cbam_init(cbam *m, params *ps, const char *name, int C, int reduction) {
    int hidden = C / reduction > 0 ? C / reduction : 1;
    params_push_scope(ps, "%s", name);
    linear_layer_init(&m->fc1, ps, "mlp.fc1", C, hidden, true);
    linear_layer_init(&m->fc2, ps, "mlp.fc2", hidden, C, true);
    conv_layer_init(&m->spatial, ps, "spatial", 2, 1, 7,
                    (conv2d_geom){.stride = 1, .pad = 3, .dilation = 1, .groups = 1}, true);
    params_pop_scope(ps);
}

tensor *cbam_forward(graph *g, const cbam *m, tensor *x) {
    return cbam_forward_gates(g, m, x, NULL);
}

tensor *cbam_forward_gates(graph *g, const cbam *m, tensor *x, cbam_gates *gates) {
    int B = x->shape[0];
    /* channel attention: both descriptors through the one MLP as 2B rows */
    tensor *desc[2] = {op_global_avg_pool(g, x), op_global_max_pool(g, x)};
    tensor *h = op_concat(g, 2, desc, 0);
    h = linear_layer_forward(g, &m->fc2, op_relu(g, linear_layer_forward(g, &m->fc1, h)));
    tensor *parts[2];
    op_split(g, h, 0, 2, (int[]){B, B}, parts);
    tensor *s = op_sigmoid(g, op_add(g, parts[0], parts[1]));
    x = op_scale_channels(g, x, s);
    /* spatial attention over the channel-pooled (max, mean) map */
    tensor *a = op_sigmoid(g, conv_layer_forward(g, &m->spatial, op_channel_pool(g, x)));
    if (gates) {
        gates->channel = s;
        gates->spatial = graph_reshape(g, a, 3, (int[]){B, a->shape[2], a->shape[3]});
    }
    return op_scale_spatial(g, x, a);
}

/* ---- residual blocks ---------------------------------------------------- */

static conv2d_geom geom_of(int stride, int pad) {
    return (conv2d_geom){.stride = stride, .pad = pad, .dilation = 1, .groups = 1};
}

void residual_block_init(residual_block *r, params *ps, const char *name, int C, int planes,
                         int stride, bool bottleneck, bool with_cbam, float bn_momentum) {
    r->bottleneck = bottleneck;
    r->has_cbam = with_cbam;
    int OC = bottleneck ? planes * RESNET_BOTTLENECK_EXPANSION : planes;
    params_push_scope(ps, "%s", name);
    if (bottleneck) {
        conv_layer_init(&r->conv1, ps, "conv1", C, planes, 1, geom_of(1, 0), false);
        bn_layer_init(&r->bn1, ps, "bn1", planes, bn_momentum);
        conv_layer_init(&r->conv2, ps, "conv2", planes, planes, 3, geom_of(stride, 1), false);
        bn_layer_init(&r->bn2, ps, "bn2", planes, bn_momentum);
        conv_layer_init(&r->conv3, ps, "conv3", planes, OC, 1, geom_of(1, 0), false);
        bn_layer_init(&r->bn3, ps, "bn3", OC, bn_momentum);
    } else {
        conv_layer_init(&r->conv1, ps, "conv1", C, planes, 3, geom_of(stride, 1), false);
        bn_layer_init(&r->bn1, ps, "bn1", planes, bn_momentum);
        conv_layer_init(&r->conv2, ps, "conv2", planes, planes, 3, geom_of(1, 1), false);
        bn_layer_init(&r->bn2, ps, "bn2", planes, bn_momentum);
    }
    if (with_cbam)
        cbam_init(&r->att, ps, "cbam", OC, 8);
    r->has_down = stride != 1 || C != OC;
    if (r->has_down) {
        conv_layer_init(&r->down, ps, "downsample.0", C, OC, 1, geom_of(stride, 0), false);
        bn_layer_init(&r->down_bn, ps, "downsample.1", OC, bn_momentum);
    }
    params_pop_scope(ps);
}

int residual_block_out(const residual_block *r) {
    const conv_layer *last = r->bottleneck ? &r->conv3 : &r->conv2;
    return last->weight->shape[0];
}

tensor *residual_block_forward(graph *g, const residual_block *r, tensor *x) {
    return residual_block_forward_gates(g, r, x, NULL);
}

tensor *residual_block_forward_gates(graph *g, const residual_block *r, tensor *x,
                                     cbam_gates *gates) {
    if (gates)
        *gates = (cbam_gates){0};
    tensor *h = op_relu(g, bn_layer_forward(g, &r->bn1, conv_layer_forward(g, &r->conv1, x)));
    h = bn_layer_forward(g, &r->bn2, conv_layer_forward(g, &r->conv2, h));
    if (r->bottleneck)
        h = bn_layer_forward(g, &r->bn3, conv_layer_forward(g, &r->conv3, op_relu(g, h)));
    if (r->has_cbam)
        h = cbam_forward_gates(g, &r->att, h, gates);
    tensor *sc =
        r->has_down ? bn_layer_forward(g, &r->down_bn, conv_layer_forward(g, &r->down, x)) : x;
    return op_relu(g, op_add(g, h, sc));
}
