/*
 * graph.h - the autograd tape and the per-step arena.
 *
 * A graph is the context every op takes. Forward code creates activations in
 * the graph's arena and, when a gradient must flow, records a tape entry: a
 * backward function and a context (both in the arena). graph_backward seeds
 * the loss gradient and replays the tape in reverse. graph_reset forgets the
 * step: after the first step, a training loop built on it does no malloc.
 *
 *   graph *g = graph_create(64 << 20);
 *   for (step...) {
 *       graph_reset(g);
 *       params_zero_grad(&ps);
 *       tensor *loss = model_forward(g, ...);
 *       graph_backward(g, loss, 1.0f);
 *       adam_step(...);
 *   }
 *   graph_free(g);
 *
 * Randomness (dropout, masking) is keyed by (seed, step, op number, sample
 * id): graph_begin_step sets the first three and the global ids of the
 * batch's samples, so a sample's dropout mask is the same whichever rank or
 * micro-batch it lands in.
 */
#ifndef HEED_CORE_GRAPH_H
#define HEED_CORE_GRAPH_H

#include "core/arena.h"
#include "core/tensor.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct graph graph;

/* Replays one op backwards; ctx is what graph_record returned. */
typedef void (*graph_backward_fn)(void *ctx);
/* Called by graph_backward after each tape entry; `entry` counts down. */
typedef void (*graph_backward_hook)(void *hook_ctx, int entry);

/* Creates a graph whose arena starts with `arena_bytes` (it grows in the
 * first steps as needed). `n_params` sizes the first-use table (0 if no
 * parameters are tracked). Free with graph_free. */
graph *graph_create(size_t arena_bytes, int n_params);
void graph_free(graph *g);

/* Forgets all activations and the tape. */
void graph_reset(graph *g);

/* Training mode turns dropout on; default off. Grad mode records the tape;
 * default on. */
void graph_set_training(graph *g, bool training);
bool graph_training(const graph *g);
void graph_set_grad(graph *g, bool enabled);
bool graph_grad_enabled(const graph *g);

/* Sets the randomness of the coming forward pass: `sample_ids[b]` is the
 * global index of row b of the batch (n entries, copied). Resets the op
 * counter. */
void graph_begin_step(graph *g, uint64_t seed, uint64_t step, const int64_t *sample_ids, int n);
/* A fresh stream key for the next random op, and the sample id of row b. */
uint64_t graph_rng_stream(graph *g);
int64_t graph_sample_id(const graph *g, int b);

arena *graph_arena(graph *g);

/* A new activation of the given shape in the arena. Data is uninitialised;
 * grad is allocated and zeroed when `with_grad`. */
tensor *graph_new(graph *g, dtype dt, int ndim, const int *shape, bool with_grad);
/* Same, with the shape of `like`. */
tensor *graph_new_like(graph *g, const tensor *like, bool with_grad);
/* A view of t with another shape of the same numel (shares data and grad). */
tensor *graph_reshape(graph *g, const tensor *t, int ndim, const int *shape);

/* True when grad mode is on and any of the n inputs has a gradient. */
bool graph_wants_grad(const graph *g, int n, tensor *const *inputs);

/* Appends a tape entry and returns `ctx_bytes` of (uninitialised) arena
 * memory for the backward context. `inputs` are the op's inputs: their
 * parameters' first use is noted for gradient bucketing. */
void *graph_record(graph *g, graph_backward_fn fn, size_t ctx_bytes, int n_inputs,
                   tensor *const *inputs);

/* Adds `seed` to d(loss) (a scalar) and replays the tape in reverse. The
 * seed scales the whole backward pass: 1/micro-batches for accumulation. */
void graph_backward(graph *g, tensor *loss, float seed);
/* Replays the tape in reverse from whatever output grads were set by hand
 * (tests seed a non-scalar output with random weights). Eager mode only. */
void graph_backward_tape(graph *g);

/* ---- lazily zeroed activation gradients ---------------------------------
 *
 * In eager mode (the default) graph_new zero-fills every activation
 * gradient at birth. In lazy mode a gradient is born unwritten, and the
 * zero-fill (a full pass over memory per activation) is skipped wherever the
 * first backward to write the gradient overwrites it instead:
 *
 *  - Before an op's backward runs, the tape zero-fills the op's inputs whose
 *    gradient is still unwritten, except those the op claimed: every op
 *    works unchanged in lazy mode, and opting in is per op and per input.
 *  - An op recorded with graph_record_claims calls graph_grad_claim(x) right
 *    before writing x->grad for each input x in `claims` (bit i: inputs[i]):
 *    true means "unwritten: overwrite (=) every element", false "accumulate
 *    (+=)". That write must be complete before the op claims another input,
 *    since two inputs can share one buffer (op_add(x, x), views). A claimed
 *    input left unwritten is zero-filled after the op (a safety net).
 *  - graph_backward zero-fills the gradients no op consumed (the loss,
 *    unused outputs) before it replays the tape.
 *  - Activation gradients share one pool (grad_pool.h): graph_backward
 *    gives each the memory of gradients whose part of the replay is over, so
 *    the backward writes into buffers that are still in cache. Until then
 *    a lazy gradient points at one shared 16-float dummy (so that "a
 *    gradient flows" reads as before) that nothing may write, and
 *    after graph_backward returns only the gradients of parameters and of
 *    tensors made outside the graph are still valid (what training reads).
 *    In lazy mode graph_backward runs once per graph_reset.
 *  - graph_backward_tape, whose caller seeds outputs by hand, needs eager
 *    mode: it cannot tell a seeded gradient from an unwritten one.
 *
 * Parameter gradients always accumulate (their gstate is NULL), as do the
 * gradients of tensors made outside a graph and of graphs in eager mode:
 * graph_grad_claim returns false for them. Takes effect from the next
 * graph_new; switch only between steps (after graph_reset). */
void graph_set_lazy_grads(graph *g, bool lazy);
bool graph_lazy_grads(const graph *g);

/* graph_record, and the inputs whose bit is set in `claims` are left to the
 * op (see above); bits past the 32nd input are ignored (never claimed). */
void *graph_record_claims(graph *g, graph_backward_fn fn, size_t ctx_bytes, int n_inputs,
                          tensor *const *inputs, uint32_t claims);

/* In a backward, right before writing t->grad: true when the gradient is
 * still unwritten (then it counts as written from now on) and the op must
 * overwrite every element; false when it must accumulate. */
bool graph_grad_claim(tensor *t);
/* Zero-fills t->grad if it is still unwritten: for an op that claimed t but
 * cannot overwrite it this time (say, its inputs share a buffer). */
void graph_grad_settle(tensor *t);

/* For tests: with `on`, graph_backward fills the gradient pool with NaN
 * before the replay, so that a gradient read before anything wrote it shows
 * up (otherwise the pool holds whatever the last step left there). */
void graph_set_grad_poison(graph *g, bool on);

/* ---- sums over the replicas of a data-parallel run ---------------------
 *
 * For ops whose training forward (or backward) needs statistics of the
 * global batch rather than of the rank's own part: synchronised batch norm.
 * fn(ctx, v, n) replaces v (n) by its sum over all ranks, with the same bits
 * on every rank; every rank must reach the same calls in the same order.
 * Core does not call MPI: the trainer installs fn (dist/batch_sum.h). */
typedef void (*graph_sum_fn)(void *ctx, double *v, int n);
void graph_set_batch_sum(graph *g, graph_sum_fn fn, void *ctx);
/* Whether a batch sum is installed (ops then use global statistics). */
bool graph_has_batch_sum(const graph *g);
/* Sums v (n) over the ranks through the installed fn; a no-op without. */
void graph_batch_sum(graph *g, double *v, int n);

/* hook(hook_ctx, i) runs after tape entry i finished its backward. */
void graph_set_backward_hook(graph *g, graph_backward_hook hook, void *hook_ctx);

/* Tape index of the first entry that used parameter `param` this step, or
 * INT32_MAX when unused: its gradient is final once backward passed it. */
int graph_param_first_use(const graph *g, int param);
int graph_tape_length(const graph *g);

#endif
