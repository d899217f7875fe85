/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/* Swapping header fields in place, shared by the reflector and the XDP_TX baseline. */
#ifndef REFLECTOR_SWAP_H
#define REFLECTOR_SWAP_H

#include <linux/types.h>

/* Exchange `n` bytes at `a` and `b` (n a constant, so the loop unrolls). */
static __always_inline void swap_bytes(__u8 *a, __u8 *b, const __u32 n)
{
#pragma unroll
	for (__u32 i = 0; i < n; i++) {
		__u8 t = a[i];
		a[i] = b[i];
		b[i] = t;
	}
}

#endif
