// Attention pieces that sit between the projections: rotary embeddings and causal attention
// of query rows over one sequence's cached keys and values.
#ifndef SHOAL_CK_ATTENTION_H
#define SHOAL_CK_ATTENTION_H

#ifdef __cplusplus
extern "C" {
#endif

/// Rotates `heads` heads of width `head_dim` stored back to back in x, in transformers'
/// rotate_half convention (element i pairs with i + head_dim/2):
///   x[i]      = x[i] * cos[i] - x[i + h] * sin[i]
///   x[i + h]  = x[i + h] * cos[i] + x[i] * sin[i]        (h = head_dim / 2, cos/sin [h])
void ck_rope(float *x, int heads, int head_dim, const float *cos, const float *sin);

/// Causal attention of n query rows of one head over one sequence's cache:
///   row i sits at position start_pos + i and attends to keys 0 ..= start_pos + i
///   (only the last `window` of them when window > 0),
///   out_i = softmax(scale * q_i . K^T) V
/// q: [n, ldq] (this head's columns at the pointer), k/v: [len, head_dim] contiguous,
/// out: [n, ldo], scores: scratch of start_pos + n floats.
void ck_attend(const float *q, int ldq, const float *k, const float *v, int head_dim, int n, int start_pos,
               int window, float scale, float *out, int ldo, float *scores);

#ifdef __cplusplus
}
#endif

#endif
