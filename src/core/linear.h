/*
 * linear.h - the forward of a linear layer on plain arrays, for ops that
 * project more than one tensor in one product (op_self_attention).
 */
#ifndef HEED_CORE_LINEAR_H
#define HEED_CORE_LINEAR_H

/* out (N, OC) = inp (N, C) @ w^T (C, OC) + b (OC); b may be NULL. */
void linear_forward(float *out, const float *inp, const float *w, const float *b, int N, int C,
                    int OC);

#endif
