/*
 * bert.h - BERT (Devlin et al., 2019): what tests and tools need beyond the
 * model_kind interface (the hidden states of every layer, the pooled output,
 * the MLM masking rule).
 *
 * Parameter names (heed <- Hugging Face, "bert." prefix optional; the full
 * rename table is in scripts/convert_hf_bert.py):
 *   tok_emb.weight   (V, C)    embeddings.word_embeddings.weight
 *   pos_emb.weight   (L, C)    embeddings.position_embeddings.weight
 *   seg_emb.weight   (2, C)    embeddings.token_type_embeddings.weight
 *   emb_ln.*         (C)       embeddings.LayerNorm.*
 *   blocks.<i>.attn.q/k/v.*    encoder.layer.<i>.attention.self.query/key/value.*
 *   blocks.<i>.attn.o.*        encoder.layer.<i>.attention.output.dense.*
 *   blocks.<i>.ln1.*           encoder.layer.<i>.attention.output.LayerNorm.*
 *   blocks.<i>.fc1.*           encoder.layer.<i>.intermediate.dense.*
 *   blocks.<i>.fc2.*           encoder.layer.<i>.output.dense.*
 *   blocks.<i>.ln2.*           encoder.layer.<i>.output.LayerNorm.*
 *   pooler.*                   pooler.dense.*
 *   head.*           (K, C)    classifier.*                    (model "bert")
 *   mlm.dense.*, mlm.ln.*      cls.predictions.transform.dense/LayerNorm.* (model "bert_mlm")
 *   mlm.bias         (V)       cls.predictions.bias; the decoder weight is tok_emb (tied)
 */
#ifndef HEED_MODELS_BERT_H
#define HEED_MODELS_BERT_H

#include "models/model.h"

enum { BERT_TYPE_VOCAB = 2 }; /* segment (token type) ids 0 and 1, as every released BERT */

/* Runs the embeddings and the encoder of a "bert" or "bert_mlm" model on
 * batch (tokens (B, T), segments (B, T) or NULL for all zeros). hidden, if
 * not NULL, has room for depth + 1 pointers and receives the embedding
 * output and each block's output, (B, T, C) each (HF's hidden_states).
 * pooled, if not NULL, receives tanh(pooler(h[CLS])) (B, C). Returns the
 * last hidden state (B, T, C). */
tensor *bert_encode(const model *m, graph *g, const model_batch *batch, tensor **hidden,
                    tensor **pooled);

/* The MLM corruption of one sequence, a pure function of (key, sample id):
 * each position whose id is not pad, cls or sep is chosen with probability
 * 0.15 (at least one is chosen when any is eligible); a chosen position
 * becomes mask_id (80%), a random id in [0, V) other than pad_id (10%) or
 * stays (10%). Writes the corrupted ids to out[T] and, in target[T], the
 * original id where chosen and -1 elsewhere. Returns the number chosen. */
int bert_mlm_corrupt(uint64_t key, int64_t sample_id, const int32_t *ids, int T, int V, int pad_id,
                     int cls_id, int sep_id, int mask_id, int32_t *out, int32_t *target);

#endif
