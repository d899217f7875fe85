// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * The fast test head (`reflector probe --engine fast`): one program, probe_head, attached
 * to the head's interface, with two roles.
 *
 * - The generator: runs under BPF_PROG_RUN with BPF_F_TEST_XDP_LIVE_FRAMES (the mechanism of
 *   xdp-tools' xdp-trafficgen): the kernel runs it once per frame over a template built
 *   once in user space. It writes the next sequence number into the stamp, patches the
 *   UDP checksum, notes bpf_ktime_get_ns() in a send-time table indexed by the sequence
 *   number (a 64-byte frame has no room for a timestamp after the signature) for the
 *   frames whose RTT is sampled, and redirects the frame out of the head's interface.
 *   Several generators run at once, one per CPU (a user-space thread pinned there calls
 *   BPF_PROG_RUN), each with its own per-CPU state: generator k of N numbers its frames
 *   in whole blocks of PROBE_BLOCK (block b of generator k holds PROBE_BLOCK * (b * N +
 *   k) onwards), so no two generators share a send-time slot or a word of the `seen`
 *   bitmap (nor, mostly, a cache line: the receive side writes the bitmap per frame),
 *   and none of them needs an atomic.
 *   Those runs are told from received frames by their input: the template frame
 *   followed by generator_secret, 8 bytes the generator trims off before sending. Not
 *   metadata: the kernel reuses a page within a call without copying the template in
 *   again, and a reflector's XDP program on the other end of a veth writes its own
 *   metadata into the page's headroom (ours writes its arrival stamp there); the bytes
 *   past the frame it was sent are the one part of the page no path writes.
 *   The generator is a role of the attached program, not a program of its own,
 *   because BPF_PROG_RUN of a program attached nowhere rebuilds the kernel's XDP
 *   dispatcher at the start and end of every call, and a rebuild waits for an RCU grace
 *   period (10-35 ms here) while holding the dispatcher's lock: every XDP program run
 *   with BPF_PROG_RUN on the machine meanwhile, a reflector sending through its own
 *   program included (xdp-filter/src/send.rs), waits too.
 * - The counter, for every other frame. It recognises returned frames (our
 *   length and stamp marker), checks their headers against the expected reflection,
 *   counts them per CPU, finds duplicates in a bitmap of every sequence number of the
 *   run and reordering against the highest number of the same generator seen on that
 *   CPU (two generators' streams interleave without being out of order), samples RTT =
 *   now - send time into a per-CPU histogram bucketed like dataplane::histogram, and
 *   drops them so the stack never sees the flood. Everything else passes.
 *
 * The bitmap is shared by all CPUs and updated without atomics: a duplicate handled by
 * another CPU in the same instant as its original can go unnoticed. (A veth with one
 * queue per CPU returns a generator's frames on its own CPU.)
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "dataplane.h"

#define STAMP_LEN 6

/* Marks the generator's runs (see above): random, chosen by the loader. */
const volatile __u64 generator_secret = 0;
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

#define BLOCK_SHIFT (__builtin_ctz(PROBE_BLOCK))
/* How many generators number the frames (block interleaving, see above). */
const volatile __u32 generators = 1;
/* Nanoseconds between one generator's frames (0: as fast as the kernel takes them). */
const volatile __u64 gap_ns = 0;
/* Frames whose sequence number has none of these bits set are timed (send time and
 * RTT); the others skip both clock reads. 0 times every frame. Below PROBE_BLOCK, so
 * local and global numbers agree on it. */
const volatile __u32 stamp_mask = 0;
/* Pacing is done here, not in user space: each BPF_PROG_RUN call costs a page pool's
 * setup and teardown and a gap in the stream, so user space makes few long calls and the
 * generator declines (XDP_DROP, a page recycled) until the next frame is due. Between
 * calls it does not run; afterwards it catches up by at most catch_up_ns worth of
 * frames (set by the loader: 64 frames, and no more than 64 us of them at low rates)
 * and forgets the rest of the debt. A longer burst would overflow the reflector's
 * rings and make a loss the path would not have at an even rate, and at low rates it
 * would queue frames behind each other and show as latency the path does not add, so
 * the rate achieved can fall short of the one asked for (reported as what was
 * offered). */
const volatile __u64 catch_up_ns = 0;

/* One CPU's generator, set up by user space before the first run. Keep in step with
 * `Generator` in probe_head.rs. */
struct generator {
	/* Frames this generator has sent. */
	__u64 sent;
	/* Frames it may send (0: no generator on this CPU). */
	__u64 limit;
	/* Which generator it is, 0 .. generators - 1. */
	__u64 index;
	/* When the next frame is due (bpf_ktime_get_ns; 0: at once). */
	__u64 next_due;
	/* When its first frame, and the latest timed one, were sent, and how many frames it
	 * had sent then (that one included): the offered rate's span and frames. */
	__u64 first_ns;
	__u64 last_ns;
	__u64 sent_at_last;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
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
	__u64 rtt_max;
	/* Highest sequence number of each generator seen on this CPU, plus one (0: none). */
	__u64 high[PROBE_MAX_GENERATORS];
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

static __always_inline int generate(struct xdp_md *ctx)
{
	__u8 *data = (__u8 *)(long)ctx->data;
	__u8 *end = (__u8 *)(long)ctx->data_end;
	__u8 *stamp = data + (stamp_at & 0xfff);
	__u32 zero = 0;
	struct generator *g = bpf_map_lookup_elem(&generator, &zero);

	if (!g || g->sent >= g->limit)
		return XDP_DROP;
	__u64 local = g->sent;
	/* The clock is slow to read (a tenth of the generator's core at full rate): only
	 * pacing and timed frames read it. */
	int timed = (local & stamp_mask) == 0;
	__u64 now = gap_ns || timed ? bpf_ktime_get_ns() : 0;
	if (gap_ns) {
		if (now < g->next_due)
			return XDP_DROP;
		g->next_due = now - g->next_due > catch_up_ns ? now + gap_ns : g->next_due + gap_ns;
	}
	if (stamp + STAMP_LEN > end)
		return XDP_ABORTED;
	__u32 seq = (((local >> BLOCK_SHIFT) * generators + g->index) << BLOCK_SHIFT) |
		    (local & (PROBE_BLOCK - 1));
	g->sent = local + 1;
	if (local == 0)
		g->first_ns = now;
	if (timed) {
		g->last_ns = now;
		g->sent_at_last = local + 1;
	}
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
	if (timed) {
		__u32 slot = seq & (PROBE_SEND_SLOTS - 1);
		__u64 *sent = bpf_map_lookup_elem(&send_ns, &slot);
		if (sent)
			*sent = now;
	}
	/* The frame leaves without the secret. (The kernel restores the length for the
	 * page's next run, and the bytes stay as they are.) */
	if (bpf_xdp_adjust_tail(ctx, -PROBE_GENERATOR_TAIL_LEN))
		return XDP_ABORTED;
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

static __always_inline int count(struct xdp_md *ctx)
{
	__u8 *data = (__u8 *)(long)ctx->data;
	__u8 *end = (__u8 *)(long)ctx->data_end;
	__u8 *stamp = data + (stamp_at & 0xfff);

	if (end - data != frame_len || stamp + STAMP_LEN > end)
		return XDP_PASS;
	if (stamp[0] != marker[0] || stamp[1] != marker[1])
		return XDP_PASS;
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
	__u32 generator = (seq >> BLOCK_SHIFT) % generators;
	if (generator >= PROBE_MAX_GENERATORS) {
		c->malformed++;
		return XDP_DROP;
	}
	*bits |= bit;
	c->received++;
	if ((__u64)seq + 1 < c->high[generator])
		c->reordered++;
	else
		c->high[generator] = (__u64)seq + 1;

	if (seq & stamp_mask)
		return XDP_DROP;
	__u64 now = bpf_ktime_get_ns();
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

SEC("xdp")
int probe_head(struct xdp_md *ctx)
{
	__u8 *data = (__u8 *)(long)ctx->data;
	__u8 *end = (__u8 *)(long)ctx->data_end;
	const __u64 *tail = (const void *)(data + (frame_len & 0xfff));

	_Static_assert(sizeof(*tail) == PROBE_GENERATOR_TAIL_LEN, "the secret is the tail");
	if (end - data == frame_len + PROBE_GENERATOR_TAIL_LEN && (void *)(tail + 1) <= (void *)end &&
	    *tail == generator_secret)
		return generate(ctx);
	return count(ctx);
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
