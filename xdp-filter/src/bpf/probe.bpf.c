// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * The fast test head (`reflector probe --engine fast`), two programs sharing maps:
 *
 * - probe_send runs under BPF_PROG_RUN with BPF_F_TEST_XDP_LIVE_FRAMES (the mechanism of
 *   xdp-tools' xdp-trafficgen): the kernel runs it once per frame over a template built
 *   once in user space. It writes the next sequence number into the stamp, patches the
 *   UDP checksum, notes bpf_ktime_get_ns() in a send-time table indexed by the sequence
 *   number (a 64-byte frame has no room for a timestamp after the signature), and
 *   redirects the frame out of the head's interface.
 * - probe_count is attached to the head's interface. It recognises returned frames (our
 *   length and stamp marker), checks their headers against the expected reflection,
 *   counts them per CPU, finds duplicates in a bitmap of every sequence number of the
 *   run and reordering against the highest number seen on that CPU, samples RTT = now -
 *   send time into a per-CPU histogram bucketed like dataplane::histogram, and drops
 *   them so the stack never sees the flood. Everything else passes.
 *
 * One generator thread runs probe_send at a time, so its state needs no atomics. The bitmap is shared by all CPUs and updated without atomics: a duplicate
 * handled by another CPU in the same instant as its original can go unnoticed.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "dataplane.h"

#define STAMP_LEN 6

/* Where the head sends from (set by the loader before loading). */
const volatile __u32 ifindex_out = 0;
/* Offset of the 6-byte stamp: 2 marker bytes, then the sequence number (big-endian). */
const volatile __u32 stamp_at = 0;
const volatile __u8 marker[2] = {0, 0};
/* Offset of the UDP checksum, and its value in the template (sequence number 0);
 * a zero checksum (IPv4 without one) stays zero. */
const volatile __u32 checksum_at = 0;
const volatile __u16 template_checksum = 0;
/* Length of a returned frame. */
const volatile __u32 frame_len = 0;
/* The frame to send up to the end of its stamp, as native-order words (rewritten into
 * every frame: a page the kernel recycles still holds whatever the path made of it,
 * e.g. a reflection an XDP_TX reflector swapped in place), and how many words that is. */
const volatile __u64 send_header[PROBE_HEADER_WORDS] = {};
const volatile __u32 send_header_words = 0;
/* The expected reflection's first PROBE_HEADER_WORDS words (native order) and which of
 * their bits to compare (not the stamp, the UDP checksum or bytes past the frame). */
const volatile __u64 header[PROBE_HEADER_WORDS] = {};
const volatile __u64 header_mask[PROBE_HEADER_WORDS] = {};

/* Frames to send in all; later runs of the generator send nothing. */
const volatile __u32 frame_limit = 0;
/* Nanoseconds between frames (0: as fast as the kernel takes them). */
const volatile __u64 gap_ns = 0;
/* Pacing is done here, not in user space: each BPF_PROG_RUN call costs tens of
 * milliseconds of setup and teardown, so user space makes few long calls and the
 * generator declines (XDP_DROP, a page recycled) until the next frame is due. Between
 * calls it does not run; afterwards it catches up by at most MAX_BURST frames and
 * forgets the rest of the debt: a longer burst would overflow the reflector's rings
 * and make a loss the path would not have at an even rate, so the rate achieved can
 * fall short of the one asked for (reported as what was offered). */
#define MAX_BURST 64

/* The generator's state. Keep in step with `GENERATOR_FIELDS` in probe_head.rs. */
struct generator {
	/* The next sequence number: frames offered so far. */
	__u64 next_seq;
	/* When the next frame is due (bpf_ktime_get_ns; 0: at once). */
	__u64 next_due;
	/* When the first and the latest frame were sent. */
	__u64 first_ns;
	__u64 last_ns;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct generator);
} generator SEC(".maps");

/* Send time (bpf_ktime_get_ns) of sequence number n, at n % PROBE_SEND_SLOTS. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, PROBE_SEND_SLOTS);
	__type(key, __u32);
	__type(value, __u64);
} send_ns SEC(".maps");

/* One bit per sequence number of the run. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, PROBE_MAX_FRAMES / 64);
	__type(key, __u32);
	__type(value, __u64);
} seen SEC(".maps");

/* Keep in step with `ProbeCounts` in probe_head.rs. */
struct counts {
	__u64 received;
	__u64 duplicated;
	__u64 reordered;
	__u64 malformed;
	/* Highest sequence number seen on this CPU, plus one (0: none yet). */
	__u64 high;
	__u64 rtt_max;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct counts);
} counts SEC(".maps");

/* RTT samples per dataplane::histogram bucket. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, HISTOGRAM_BUCKETS);
	__type(key, __u32);
	__type(value, __u64);
} rtt SEC(".maps");

SEC("xdp")
int probe_send(struct xdp_md *ctx)
{
	__u8 *data = (__u8 *)(long)ctx->data;
	__u8 *end = (__u8 *)(long)ctx->data_end;
	__u8 *stamp = data + (stamp_at & 0xfff);
	__u32 zero = 0;
	struct generator *g = bpf_map_lookup_elem(&generator, &zero);

	if (!g || g->next_seq >= frame_limit)
		return XDP_DROP;
	__u64 now = bpf_ktime_get_ns();
	if (gap_ns) {
		if (now < g->next_due)
			return XDP_DROP;
		g->next_due = now - g->next_due > MAX_BURST * gap_ns ? now + gap_ns : g->next_due + gap_ns;
	}
	if (stamp + STAMP_LEN > end)
		return XDP_ABORTED;
	__u32 seq = g->next_seq++;
	if (seq == 0)
		g->first_ns = now;
	g->last_ns = now;
	for (int i = 0; i < PROBE_HEADER_WORDS; i++) {
		__u64 *word = (__u64 *)(data + i * 8);
		if (i >= send_header_words || (__u8 *)(word + 1) > end)
			break;
		*word = send_header[i];
	}
	stamp[0] = marker[0];
	stamp[1] = marker[1];
	stamp[2] = seq >> 24;
	stamp[3] = seq >> 16;
	stamp[4] = seq >> 8;
	stamp[5] = seq;
	if (template_checksum) {
		__u8 *sum = data + (checksum_at & 0xfff);
		if (sum + 2 > end)
			return XDP_ABORTED;
		/* RFC 1624 with the template's words 0: HC' = ~(~HC + m'). */
		__u32 s = (__u16)~template_checksum;
		s += seq >> 16;
		s += seq & 0xffff;
		s = (s & 0xffff) + (s >> 16);
		s = (s & 0xffff) + (s >> 16);
		__u16 c = ~s;
		if (c == 0)
			c = 0xffff;
		sum[0] = c >> 8;
		sum[1] = c;
	}
	__u32 slot = seq & (PROBE_SEND_SLOTS - 1);
	__u64 *sent = bpf_map_lookup_elem(&send_ns, &slot);
	if (sent)
		*sent = now;
	return bpf_redirect(ifindex_out, 0);
}

/* dataplane::histogram's bucket_of. */
static __always_inline __u32 bucket_of(__u64 v)
{
	if (v < (1 << HISTOGRAM_SUB_BITS))
		return v;
	__u32 log2 = 0;
	__u64 x = v;
	if (x >> 32) { x >>= 32; log2 += 32; }
	if (x >> 16) { x >>= 16; log2 += 16; }
	if (x >> 8) { x >>= 8; log2 += 8; }
	if (x >> 4) { x >>= 4; log2 += 4; }
	if (x >> 2) { x >>= 2; log2 += 2; }
	if (x >> 1) { log2 += 1; }
	__u32 exponent = log2 - HISTOGRAM_SUB_BITS;
	__u32 mantissa = (v >> exponent) & ((1 << HISTOGRAM_SUB_BITS) - 1);
	return ((exponent + 1) << HISTOGRAM_SUB_BITS) + mantissa;
}

SEC("xdp")
int probe_count(struct xdp_md *ctx)
{
	__u8 *data = (__u8 *)(long)ctx->data;
	__u8 *end = (__u8 *)(long)ctx->data_end;
	__u8 *stamp = data + (stamp_at & 0xfff);

	if (end - data != frame_len || stamp + STAMP_LEN > end)
		return XDP_PASS;
	if (stamp[0] != marker[0] || stamp[1] != marker[1])
		return XDP_PASS;
	__u64 now = bpf_ktime_get_ns();
	__u32 zero = 0;
	struct counts *c = bpf_map_lookup_elem(&counts, &zero);
	if (!c)
		return XDP_PASS;

	for (int i = 0; i < PROBE_HEADER_WORDS; i++) {
		__u64 *word = (__u64 *)(data + i * 8);
		if ((__u8 *)(word + 1) > end)
			break;
		if ((*word ^ header[i]) & header_mask[i]) {
			c->malformed++;
			return XDP_DROP;
		}
	}

	__u32 seq = ((__u32)stamp[2] << 24) | ((__u32)stamp[3] << 16) |
		    ((__u32)stamp[4] << 8) | stamp[5];
	__u32 index = seq / 64;
	__u64 bit = 1ULL << (seq % 64);
	__u64 *bits = bpf_map_lookup_elem(&seen, &index);
	if (!bits) {
		/* Beyond any run: not a number we sent. */
		c->malformed++;
		return XDP_DROP;
	}
	if (*bits & bit) {
		c->duplicated++;
		return XDP_DROP;
	}
	*bits |= bit;
	c->received++;
	if ((__u64)seq + 1 < c->high)
		c->reordered++;
	else
		c->high = (__u64)seq + 1;

	__u32 slot = seq & (PROBE_SEND_SLOTS - 1);
	__u64 *sent = bpf_map_lookup_elem(&send_ns, &slot);
	if (sent && *sent && now > *sent) {
		__u64 sample = now - *sent;
		__u32 bucket = bucket_of(sample);
		__u64 *n = bpf_map_lookup_elem(&rtt, &bucket);
		if (n)
			*n += 1;
		if (sample > c->rtt_max)
			c->rtt_max = sample;
	}
	return XDP_DROP;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
