/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * The worker's safety policy (dataplane::safety, Pipeline::check_policy) for in-kernel
 * reflection: the allow-list, the per-source rate limit and the loop timeout, with their
 * maps. Included by reflector.bpf.c after `classify` and `reflect`, whose types and
 * helpers it uses; only xdp_reflector_policed calls into it (via check_policy).
 */
/*
 * The allow-list (safety::AllowList), one trie per family. A source is looked up as
 * user space does: an IPv4 source, or an IPv6 one in ::ffff:0:0/96 (IPv4-mapped), by its
 * IPv4 address in `allow_v4`; any other IPv6 source in `allow_v6`. Written once by
 * `XdpFilter::load`; empty unless cfg.allow.
 */
struct allow_v4_key {
	__u32 prefixlen;
	__u8 addr[4];
};

struct allow_v6_key {
	__u32 prefixlen;
	__u8 addr[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, MAX_ALLOW_PREFIXES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct allow_v4_key);
	__type(value, __u8);
} allow_v4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, MAX_ALLOW_PREFIXES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct allow_v6_key);
	__type(value, __u8);
} allow_v6 SEC(".maps");

/*
 * The rate limiter (safety::RateLimiter): one GCRA arrival time per source and RX queue,
 * as each worker keeps its own per queue. A queue is served by one CPU at a time (its
 * NAPI poll), so its entries are read and written without atomics (in generic mode two
 * CPUs may share a queue; a race then lets a frame more through now and then).
 * `XdpFilter::load` sizes the map for RATE_LIMIT_SOURCES per CPU when the limit is on;
 * a queue whose new source finds the map full uses its overflow bucket.
 */
struct source_key {
	__u32 queue;
	__u8 addr[16]; /* streams::source_ip: IPv4 as IPv4-mapped IPv6 */
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct source_key);
	__type(value, __u64);
} rate_sources SEC(".maps");

/* A queue's share of the limiter: the bucket sources beyond RATE_LIMIT_SOURCES share,
 * how many it tracks, and when it next forgets the idle ones. */
struct rate_queue {
	__u64 overflow;
	__u64 next_expiry_ns;
	__u32 sources;
	__u32 reserved;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_QUEUES);
	__type(key, __u32);
	__type(value, struct rate_queue);
} rate_queues SEC(".maps");

/*
 * The loop timeout: rather than read the clock for every frame, the first test frame
 * arms a timer for the deadline, and the timer raises `loop_timed_out`; a frame then
 * costs two loads. Both flags are plain globals (.bss): a frame on another CPU sees the
 * flag a moment later at worst, as a worker sees the deadline at its next batch.
 */
__u8 loop_timer_armed = 0;
__u8 loop_timed_out = 0;

struct loop_timer {
	struct bpf_timer timer;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct loop_timer);
} loop_timers SEC(".maps");

#define CLOCK_MONOTONIC 1

static int on_loop_deadline(void *map, __u32 *key, struct loop_timer *t)
{
	loop_timed_out = 1;
	return 0;
}

/* Arm the loop timer, or stop at once if the deadline is already past (a restarted
 * worker's timeout can be). Two CPUs may race here; the second init fails harmlessly
 * and both start the same timer. */
__noinline int arm_loop_timer(void)
{
	__u32 key = 0;
	struct loop_timer *t = bpf_map_lookup_elem(&loop_timers, &key);
	__u64 now = bpf_ktime_get_ns();

	loop_timer_armed = 1;
	if (now >= cfg.loop_deadline_ns) {
		loop_timed_out = 1;
		return 0;
	}
	if (!t)
		return 0; /* verifier guard: the array has its one entry */
	bpf_timer_init(&t->timer, &loop_timers, CLOCK_MONOTONIC);
	bpf_timer_set_callback(&t->timer, on_loop_deadline);
	bpf_timer_start(&t->timer, cfg.loop_deadline_ns - now, 0);
	return 0;
}

/* Pipeline::check_policy's first step: has reflection stopped? */
static __always_inline int loop_timeout_over(void)
{
	if (loop_timed_out)
		return 1;
	if (!loop_timer_armed)
		arm_loop_timer();
	return loop_timed_out;
}

/* What the allow-list and the rate limit need of a frame: its source, as
 * streams::source_ip gives it, and the queue it came in on. */
struct source {
	__u32 queue;
	__u8 addr[16];
};

/* RateLimiter::expire's retain, for one queue: forget sources whose bucket is full again. */
struct expiry {
	__u64 now;
	__u32 queue;
	__u32 forgotten;
};

static long expire_source(void *map, const struct source_key *key, __u64 *arrival,
			  struct expiry *e)
{
	if (key->queue == e->queue && *arrival <= e->now && !bpf_map_delete_elem(map, key))
		e->forgotten++;
	return 0;
}

/* safety::conform: GCRA, conforming if the theoretical arrival time is at most the
 * tolerance ahead of now. */
static __always_inline int conform(__u64 *arrival, __u64 now)
{
	__u64 tat = *arrival > now ? *arrival : now;

	if (tat - now > cfg.rate_tolerance_ns)
		return 0;
	*arrival = tat + cfg.rate_interval_ns;
	return 1;
}

/* RateLimiter::admits (and, once per RATE_EXPIRY_NS, its expire) on the source's queue. */
static __always_inline int rate_admits(const struct source *src, __u64 now)
{
	/* Queues past MAX_QUEUES share a slot; they may then race on it, letting a frame
	 * more through now and then. No driver this runs on has that many. */
	__u32 queue = src->queue & (MAX_QUEUES - 1);
	struct rate_queue *q = bpf_map_lookup_elem(&rate_queues, &queue);

	if (!q)
		return 1; /* verifier guard: the array has every index */
	if (now >= q->next_expiry_ns) {
		struct expiry e = { .now = now, .queue = queue };

		bpf_for_each_map_elem(&rate_sources, expire_source, &e, 0);
		q->sources = q->sources > e.forgotten ? q->sources - e.forgotten : 0;
		q->next_expiry_ns = now + RATE_EXPIRY_NS;
	}
	struct source_key key = { .queue = queue };

	__builtin_memcpy(key.addr, src->addr, sizeof(key.addr));
	__u64 *arrival = bpf_map_lookup_elem(&rate_sources, &key);
	if (!arrival && q->sources < RATE_LIMIT_SOURCES) {
		__u64 fresh = 0;

		if (!bpf_map_update_elem(&rate_sources, &key, &fresh, BPF_NOEXIST)) {
			q->sources++;
			arrival = bpf_map_lookup_elem(&rate_sources, &key);
		}
	}
	/* Sources beyond the table share one bucket, so a flood from many addresses is
	 * still limited as a whole. */
	return conform(arrival ? arrival : &q->overflow, now);
}

/* AllowList::contains: an IPv4-mapped source is its IPv4 address. */
static __always_inline int allow_admits(const struct source *src)
{
	const __u8 *a = src->addr;
	int mapped = (a[0] | a[1] | a[2] | a[3] | a[4] | a[5] | a[6] | a[7] | a[8] | a[9]) == 0 &&
		     a[10] == 0xff && a[11] == 0xff;

	if (mapped) {
		struct allow_v4_key key = { .prefixlen = 32 };

		__builtin_memcpy(key.addr, a + 12, 4);
		return bpf_map_lookup_elem(&allow_v4, &key) != 0;
	}
	struct allow_v6_key key = { .prefixlen = 128 };

	__builtin_memcpy(key.addr, a, 16);
	return bpf_map_lookup_elem(&allow_v6, &key) != 0;
}

/* streams::source_ip of a classified frame whose IP header is `l3` bytes in. */
static __always_inline __u32 read_source(struct xdp_md *ctx, __u32 l3, __u32 ipv6,
					 struct source *src)
{
	const __u8 *data = (__u8 *)(long)ctx->data;
	const __u8 *end = (__u8 *)(long)ctx->data_end;

	/* verifier guards: classify found the header there, after at most MAX_VLAN_TAGS */
	if (l3 > ETH_HEADER_LEN + MAX_VLAN_TAGS * VLAN_TAG_LEN)
		return REJECT_TRUNCATED;
	const __u8 *ip = data + l3;

	src->queue = ctx->rx_queue_index;
	if (ipv6) {
		if (ip + IPV6_HEADER_LEN > end)
			return REJECT_TRUNCATED;
		__builtin_memcpy(src->addr, ip + IPV6_SRC, 16);
		return PASSED;
	}
	if (ip + IPV4_MIN_HEADER_LEN > end)
		return REJECT_TRUNCATED;
	__builtin_memset(src->addr, 0, 10);
	src->addr[10] = 0xff;
	src->addr[11] = 0xff;
	__builtin_memcpy(src->addr + 12, ip + IPV4_SRC, 4);
	return PASSED;
}

/*
 * Pipeline::check_policy, in its order: the loop timeout, the allow-list, the rate
 * limit, for a classified frame (`l3` and `ipv6` from its layout). A global function:
 * verified once, on its own, and the main path keeps the shape it has without a policy
 * (the call costs the policed program ~10 ns a frame). Only xdp_reflector_policed calls it.
 */
__noinline __u32 check_policy(struct xdp_md *ctx, __u32 l3, __u32 ipv6)
{
	struct source src;

	if (cfg.loop_timeout && loop_timeout_over())
		return REJECT_LOOP_TIMEOUT;
	if (!cfg.allow && !cfg.rate_limit)
		return PASSED;
	__u32 verdict = read_source(ctx, l3, ipv6, &src);

	if (verdict != PASSED)
		return verdict;
	if (cfg.allow && !allow_admits(&src))
		return REJECT_SOURCE_NOT_ALLOWED;
	if (cfg.rate_limit && !rate_admits(&src, bpf_ktime_get_ns()))
		return REJECT_RATE_LIMITED;
	return PASSED;
}
