/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/* Swapping header fields in place, shared by the reflector and the XDP_TX baseline. */
#ifndef REFLECTOR_SWAP_H
#define REFLECTOR_SWAP_H

#include <linux/types.h>

/*
 * Exchange `n` bytes at `a` and `b` (n a constant, so the loops unroll): four bytes at a
 * time, then two, then one, rather than byte by byte (a MAC pair takes four loads and
 * four stores instead of twelve each). Header fields need not be aligned; the verifier
 * allows unaligned packet access where the CPU does it efficiently (x86-64, arm64).
 */
static __always_inline void swap_bytes(__u8 *a, __u8 *b, const __u32 n)
{
	__u32 i = 0;

#pragma unroll
	for (; i + 4 <= n; i += 4) {
		__u32 t = *(__u32 *)(a + i);
		*(__u32 *)(a + i) = *(__u32 *)(b + i);
		*(__u32 *)(b + i) = t;
	}
	if (i + 2 <= n) {
		__u16 t = *(__u16 *)(a + i);
		*(__u16 *)(a + i) = *(__u16 *)(b + i);
		*(__u16 *)(b + i) = t;
		i += 2;
	}
	if (i < n) {
		__u8 t = a[i];
		a[i] = b[i];
		b[i] = t;
	}
}

#endif
