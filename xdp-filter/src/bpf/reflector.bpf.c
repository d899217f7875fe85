// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * The reflector's XDP filter: the kernel-side copy of `dataplane::classify`.
 *
 * Every frame is judged by the same checks, in the same order, with the same first-failure
 * reason as the Rust classifier, so the per-reason counters here and in user space mean the
 * same thing: MACs, VLAN tags, the IPv4 or IPv6 header (lengths, no bytes past the datagram
 * beyond the minimum-frame padding, fragments, the IP endpoints), the UDP length; then a frame to the
 * STAMP port is a STAMP test packet (refused if it also comes from the STAMP port, as
 * another reflector's answer does; else accepted if its payload holds one), and any other
 * frame must pass the ITO port, the source OUI and the signature table, in that order.
 * Test frames go to the AF_XDP socket bound to the receiving queue; everything else, and
 * test frames arriving on a queue without a socket, continue to the kernel stack
 * (XDP_PASS) so the host keeps its ARP, SSH and routing.
 *
 * With `in_kernel` set (`--backend xdp-tx`) the program is the reflector itself: a test
 * frame other than STAMP has its addresses swapped in place exactly as
 * `dataplane::reflect` does and goes back out with XDP_TX. STAMP packets, whose answers
 * need timestamps and rewritten payloads, still go to the AF_XDP socket. The worker's
 * policy (`dataplane::safety`: loop timeout, source allow-list, per-source rate limit)
 * then runs here too, after classification and before any test frame, STAMP included,
 * is reflected or redirected; a frame it refuses is dropped (as the worker drops it) and
 * counted under the worker's reason. It costs nothing when it is off: with no part of
 * it on, the loader loads `xdp_reflector`, which has no policy code at all; with some,
 * `xdp_reflector_policed`, where the parts that are off are constants the verifier
 * removes. The policy and its maps are in policy.h.
 *
 * Nothing is decided here that Rust does not configure: header offsets, protocol numbers,
 * limits, reject indices and the signature table come from the generated `dataplane.h`,
 * and the filter settings (which signatures are on among them) are read-only data
 * written by `config.rs` before loading.
 * The one exception is learned, not configured: the interface's directed-broadcast addresses,
 * in the `broadcasts` map that user space rewrites when they change.
 * Because `cfg` is frozen read-only data, the verifier sees its values as constants and
 * prunes the branches a configuration never takes.
 *
 * Packet accesses: the verifier wants a pointer comparison with data_end before each read.
 * Where the classifier's own length checks already prove the bytes exist, such a
 * comparison can never fail (unless a multi-buffer frame's linear part ended inside the
 * headers, which drivers avoid); it is marked "verifier guard" and returns Truncated so
 * that, were it ever reachable, the frame would still be refused.
 *
 * Jumbo frames: the program is multi-buffer aware (`xdp.frags`), which is what lets it
 * attach in native mode at an MTU above about 3.5 KB. A long frame then arrives as a
 * linear part (data..data_end, where drivers put at least the first 1.5 KB, so every
 * header this program reads) plus fragments; the length checks compare the IP and UDP
 * lengths with the whole frame's length (`struct frame`'s `len`), the header reads stay
 * in the linear part. A test frame longer than the AF_XDP socket can take
 * (`cfg.max_frame_len`) is counted as TooLarge and passed, never dropped silently.
 */
#include <linux/bpf.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "dataplane.h"
#include "swap.h"

/*
 * Verdict counter slots: one per `Reject` (same index), then the two outcomes of a
 * redirect, the bytes returned with XDP_TX, and the frames returned with XDP_TX per
 * signature (by `Signature::index`). The worker's policy reasons (source allow-list,
 * rate limit, loop timeout) have slots too, so indices match `Reject::index`; this
 * program counts in them when it runs the policy itself (in_kernel). filter.rs mirrors
 * this layout.
 */
#define VERDICT_REDIRECTED REJECT_COUNT
#define VERDICT_NO_SOCKET (REJECT_COUNT + 1)
#define VERDICT_TX_BYTES (REJECT_COUNT + 2)
#define VERDICT_TX (REJECT_COUNT + 3)
/* Room for every signature index: the table's rows and STAMP. */
#define SIGNATURE_SLOTS (MAX_SIGNATURES + 1)
#define VERDICT_SLOTS (VERDICT_TX + SIGNATURE_SLOTS)

/* What the check functions return when the frame passed them (not a counter slot). */
#define PASSED 0xff

/* One row of `SIGNATURES` (dataplane.h's SIGNATURE_TABLE). */
struct signature {
	__u32 index; /* Signature::index, its XDP_TX counter */
	__u32 offset; /* in the UDP payload */
	__u32 len;
	__u8 bytes[SIGNATURE_MAX_LEN];
};

/*
 * Compile-time constants: with the match loop unrolled, every field read below folds
 * into an immediate, so a frame's payload is compared with the signature's bytes in
 * the instructions themselves (no per-frame loads of a table from `cfg`).
 */
static const struct signature signatures[SIGNATURE_ROWS] = SIGNATURE_TABLE;

/* `dataplane::Filter`: its settings, and which of the signature table's rows are on. */
struct config {
	__u8 dst_mac[6];
	__u8 dst_mac_exact; /* 1: dst must equal dst_mac; 0: any unicast dst */
	__u8 src_oui_enabled;
	__u8 src_oui[3];
	__u8 ipv6;
	__u8 vlan;
	__u8 stamp_enabled; /* `Signature::Stamp` is in the filter's set */
	__u8 stamp_index; /* Signature::Stamp.index() */
	__u16 udp_port; /* host byte order; 0 accepts any port */
	__u16 stamp_port; /* host byte order; only read when stamp_enabled */
	/* In-kernel reflection (`Reflection::InKernel`) and what its `Mode` swaps past the
	 * MACs; all 0 when test frames go to the AF_XDP sockets. */
	__u8 in_kernel;
	__u8 swap_ip;
	__u8 swap_ports;
	/* The longest frame the AF_XDP sockets take (multi-buffer or not); frames reflected
	 * with XDP_TX have no such limit. */
	__u32 max_frame_len;
	__u32 signature_rows; /* bit r: signatures[r] is in the filter's set (STAMP has no row) */
	/* The policy (`dataplane::safety`), with in_kernel only; see check_policy and
	 * xdp_reflector_policed. Last, so the fields above keep their offsets. */
	__u8 allow; /* only sources in allow_v4 / allow_v6 are answered */
	__u8 rate_limit; /* GCRA per source and RX queue, as safety::RateLimiter */
	__u8 loop_timeout; /* the loop timer stops reflection at loop_deadline_ns */
	__u64 loop_deadline_ns; /* bpf_ktime_get_ns() (CLOCK_MONOTONIC) when reflection stops */
	__u64 rate_interval_ns; /* credit one frame costs */
	__u64 rate_tolerance_ns; /* how far ahead of now a source may run: the burst */
	/* Random, chosen at load: marks a run of the program by its own worker (see
	 * send_for_worker), which no frame from the wire can carry. */
	__u64 send_secret;
};

const volatile struct config cfg = {};

/* AF_XDP sockets by RX queue index, filled by `XdpFilter::register_socket`. */
struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, MAX_QUEUES);
	__type(key, __u32);
	__type(value, __u32);
} xsks_map SEC(".maps");

/* Frames per verdict, per CPU (no atomics on the fast path); user space sums the CPUs. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, VERDICT_SLOTS);
	__type(key, __u32);
	__type(value, __u64);
} verdicts SEC(".maps");

/*
 * The directed-broadcast addresses of the interface's IPv4 prefixes
 * (dataplane::filter::Broadcasts, as u32::from(Ipv4Addr)). Not in `cfg`: user space
 * rewrites it whenever the interface's addresses change (`XdpFilter::set_broadcasts`).
 */
struct broadcasts {
	__u32 len;
	__u32 addrs[MAX_BROADCASTS];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct broadcasts);
} broadcasts SEC(".maps");

struct frame {
	__u8 *data;
	__u8 *end; /* of the linear part, which holds the headers */
	__u32 len; /* of the whole frame, fragments included */
};

/*
 * The kernel's own view of the frame (include/net/xdp.h), of which only the flags are
 * read; CO-RE finds the field in the running kernel's BTF. bpf_cast_to_kern_ctx is a
 * kfunc the verifier replaces with nothing (the context already is this struct).
 */
struct xdp_buff {
	__u32 flags;
} __attribute__((preserve_access_index));

enum xdp_buff_flags {
	XDP_FLAGS_HAS_FRAGS = 1,
};

/* Weak: a kernel before 6.2 does not have it, and libbpf then loads the program with
 * bpf_ksym_exists() false. */
extern void *bpf_cast_to_kern_ctx(void *obj) __ksym __weak;

/*
 * The whole frame's length. bpf_xdp_get_buff_len() adds the fragments' length to the
 * linear part's, but a helper call cost each frame ~15 ns on the rig's CPUs (its return
 * goes through the kernel's return thunk, the SRSO mitigation; benches/program_cost.rs),
 * as much as a third of what the program then cost more than the XDP_TX baseline: ask
 * it only for a frame that has fragments, which the kernel's flags tell. Without
 * fragments the length is the linear part's.
 */
static __always_inline __u32 frame_len(struct xdp_md *ctx)
{
	if (!bpf_ksym_exists(bpf_cast_to_kern_ctx))
		return bpf_xdp_get_buff_len(ctx);
	const struct xdp_buff *xdp = bpf_cast_to_kern_ctx(ctx);

	if (xdp->flags & bpf_core_enum_value(enum xdp_buff_flags, XDP_FLAGS_HAS_FRAGS))
		return bpf_xdp_get_buff_len(ctx);
	return ctx->data_end - ctx->data;
}

/* What `reflect` needs of an accepted frame: dataplane::parse::Layout and the signature. */
struct layout {
	__u32 l3;
	__u32 l4;
	__u8 ipv6;
	__u8 signature; /* Signature::index */
};

/*
 * Multi-byte fields are read with one load each, not byte by byte: the accepted path runs
 * on every reflected frame, and on veth on the sender's CPU. Header fields are often not
 * aligned (the IPv4 addresses sit at 26 and 30); the verifier allows unaligned packet and
 * map reads where the CPU does them efficiently (x86-64, arm64), the architectures that
 * run this program.
 */
static __always_inline __u16 be16_at(const __u8 *p)
{
	return bpf_ntohs(*(const __u16 *)p);
}

static __always_inline int is_group_mac(const __u8 *mac)
{
	return mac[0] & 0x01;
}

/* Two MAC addresses are equal: their first four bytes, then their last two. */
static __always_inline int mac_eq(const __u8 *a, const volatile __u8 *b)
{
	return *(const __u32 *)a == *(const volatile __u32 *)b &&
	       *(const __u16 *)(a + 4) == *(const volatile __u16 *)(b + 4);
}

static __always_inline __u32 be32_at(const __u8 *p)
{
	return bpf_ntohl(*(const __u32 *)p);
}

/* classify::Endpoint: what an IP address is, as far as answering from or to it goes. */
enum endpoint {
	ENDPOINT_HOST,
	ENDPOINT_INVALID, /* unspecified, limited broadcast, multicast */
	ENDPOINT_LOOPBACK,
	ENDPOINT_BROADCAST, /* a directed broadcast of the interface's prefixes */
};

/* Broadcasts::contains for either address, on the list user space keeps in the
 * `broadcasts` map: one lookup and one pass over the list for both. */
static __always_inline int either_directed_broadcast(__u32 a, __u32 b)
{
	__u32 key = 0;
	const struct broadcasts *list = bpf_map_lookup_elem(&broadcasts, &key);

	if (!list)
		return 0;
	for (__u32 i = 0; i < MAX_BROADCASTS; i++) {
		if (i >= list->len)
			break;
		if (list->addrs[i] == a || list->addrs[i] == b)
			return 1;
	}
	return 0;
}

/* classify::ipv4_endpoint, for an address in host order (u32::from(Ipv4Addr)). */
static __always_inline enum endpoint ipv4_endpoint(__u32 a)
{
	if (a == 0 || a == 0xffffffff || (a >> 28) == 0xe)
		return ENDPOINT_INVALID;
	if ((a >> 24) == 127)
		return ENDPOINT_LOOPBACK;
	if (either_directed_broadcast(a, a))
		return ENDPOINT_BROADCAST;
	return ENDPOINT_HOST;
}

/* classify::ipv6_endpoint, for an address as four host-order words: an IPv4-mapped
 * address (::ffff:0:0/96) is its IPv4 part. */
static __always_inline enum endpoint ipv6_endpoint(const __u32 *a)
{
	if (a[0] == 0 && a[1] == 0 && a[2] == 0xffff)
		return ipv4_endpoint(a[3]);
	if ((a[0] >> 24) == 0xff || (a[0] | a[1] | a[2] | a[3]) == 0)
		return ENDPOINT_INVALID;
	if ((a[0] | a[1] | a[2]) == 0 && a[3] == 1)
		return ENDPOINT_LOOPBACK;
	return ENDPOINT_HOST;
}

/* The two addresses of an IPv6 frame for `check_endpoints`, in host-order words. */
struct endpoints {
	__u32 src[4];
	__u32 dst[4];
};

/* Fill `e` from the addresses at `src` and `dst`. */
static __always_inline void read_endpoints(struct endpoints *e, const __u8 *src, const __u8 *dst)
{
#pragma unroll
	for (int i = 0; i < 4; i++) {
		e->src[i] = be32_at(src + 4 * i);
		e->dst[i] = be32_at(dst + 4 * i);
	}
}

/* classify::check_endpoints' order: the source's kind, the destination's, a broadcast on
 * either side, then source == destination. */
static __always_inline __u32 judge_endpoints(enum endpoint src, enum endpoint dst, int same)
{
	if (src == ENDPOINT_INVALID)
		return REJECT_SRC_IP_INVALID;
	if (src == ENDPOINT_LOOPBACK)
		return REJECT_SRC_IP_LOOPBACK;
	if (dst == ENDPOINT_INVALID)
		return REJECT_DST_IP_INVALID;
	if (dst == ENDPOINT_LOOPBACK)
		return REJECT_DST_IP_LOOPBACK;
	if (src == ENDPOINT_BROADCAST || dst == ENDPOINT_BROADCAST)
		return REJECT_DIRECTED_BROADCAST;
	if (same)
		return REJECT_SRC_IP_IS_DST;
	return PASSED;
}

/*
 * classify::check_endpoints for an IPv6 frame.
 *
 * A global function (not static, never inlined): the verifier checks it once, on its own,
 * and the caller goes on along one path (an unknown verdict) rather than one per outcome
 * and per broadcast compared, which multiplied by the paths through the rest of the
 * program makes loading the program slow. The IPv4 checks below are inlined instead:
 * they are the common case, and a call costs every frame ~10-15 ns on this rig's CPUs,
 * where each return goes through the kernel's return thunk (the SRSO mitigation), more
 * than the check itself (benches/program_cost.rs).
 */
__noinline __u32 check_endpoints(const struct endpoints *e)
{
	if (!e)
		return REJECT_TRUNCATED;
	int same = e->src[0] == e->dst[0] && e->src[1] == e->dst[1] && e->src[2] == e->dst[2] &&
		   e->src[3] == e->dst[3];

	return judge_endpoints(ipv6_endpoint(e->src), ipv6_endpoint(e->dst), same);
}

/* classify's quick IPv4 test: a first octet of 1-126 or 128-223 is an ordinary unicast
 * address, neither unspecified, loopback, multicast nor the limited broadcast. */
static __always_inline int is_plain_unicast(__u32 a)
{
	__u32 first = a >> 24;

	return first - 1 < 126 || first - 128 < 96;
}

/* classify::check_endpoints for an IPv4 frame, on host-order addresses: passed as two
 * scalars, so the frame's commonest case builds no IPv6 view of them on the stack. Two
 * different plain unicast addresses, neither a directed broadcast, pass at once; only
 * the rest go through the ordered checks that name the reason (as classify does). */
static __always_inline __u32 check_endpoints_v4(__u32 src, __u32 dst)
{
	if (is_plain_unicast(src) && is_plain_unicast(dst) && src != dst &&
	    !either_directed_broadcast(src, dst))
		return PASSED;
	return judge_endpoints(ipv4_endpoint(src), ipv4_endpoint(dst), src == dst);
}

/* classify::check_trailer: the frame (`from_l3` bytes from the IP header on) ends with
 * the datagram or with the padding up to Ethernet's minimum payload. */
static __always_inline __u32 check_trailer(__u32 from_l3, __u32 datagram_len)
{
	__u32 allowed = datagram_len > ETH_MIN_PAYLOAD ? datagram_len : ETH_MIN_PAYLOAD;

	return from_l3 > allowed ? REJECT_LENGTH_MISMATCH : PASSED;
}

/* classify::check_macs (the source OUI is checked later). The caller has checked the
 * Ethernet header is there. */
static __always_inline __u32 check_macs(const __u8 *data)
{
	const __u8 *dst = data + ETH_DST;
	const __u8 *src = data + ETH_SRC;

	if (is_group_mac(src))
		return REJECT_SRC_MAC_GROUP;
	if (mac_eq(src, dst))
		return REJECT_SRC_MAC_IS_DST;
	if (cfg.dst_mac_exact ? !mac_eq(dst, cfg.dst_mac) : is_group_mac(dst))
		return REJECT_DST_MAC_MISMATCH;
	return PASSED;
}

/*
 * classify::check_src_oui. Runs after the port checks, so STAMP senders (ordinary hosts)
 * need no particular OUI. The caller has checked the Ethernet header is there.
 */
static __always_inline __u32 check_src_oui(const __u8 *data)
{
	const __u8 *src = data + ETH_SRC;

	if (cfg.src_oui_enabled &&
	    (src[0] != cfg.src_oui[0] || src[1] != cfg.src_oui[1] || src[2] != cfg.src_oui[2]))
		return REJECT_SRC_OUI_MISMATCH;
	return PASSED;
}

/*
 * classify::walk_vlan_tags: sets the inner EtherType and the layer-3 offset. Rust loops
 * while the EtherType is a TPID; one more iteration than MAX_VLAN_TAGS reaches the same
 * TooManyVlanTags decision with a bounded loop.
 */
static __always_inline __u32 walk_vlan_tags(const struct frame *f, __u16 *ethertype, __u32 *l3)
{
	__u16 type = be16_at(f->data + ETH_TYPE);
	__u32 off = ETH_HEADER_LEN;

#pragma unroll
	for (int tags = 0; tags <= MAX_VLAN_TAGS; tags++) {
		if (type != TPID_8021Q && type != TPID_8021AD)
			break;
		if (!cfg.vlan)
			return REJECT_VLAN_DISABLED;
		if (tags == MAX_VLAN_TAGS)
			return REJECT_TOO_MANY_VLAN_TAGS;
		const __u8 *tag = f->data + off;
		if (tag + VLAN_TAG_LEN > f->end)
			return REJECT_TRUNCATED;
		/* The tag occupies the old EtherType slot; the next EtherType follows the TCI. */
		type = be16_at(tag + 2);
		off += VLAN_TAG_LEN;
	}
	*ethertype = type;
	*l3 = off;
	return PASSED;
}

/* classify::walk_ipv4: sets the UDP header offset and the UDP length the IP header implies. */
static __always_inline __u32 walk_ipv4(const struct frame *f, __u32 l3, __u32 *l4, __u32 *udp_len)
{
	const __u8 *ip = f->data + l3;

	if (ip + IPV4_MIN_HEADER_LEN > f->end)
		return REJECT_TRUNCATED;
	__u32 version = ip[0] >> 4;
	__u32 header_len = (ip[0] & 0x0f) * 4;
	if (version != 4 || header_len < IPV4_MIN_HEADER_LEN)
		return REJECT_BAD_IP_HEADER;
	if (ip + header_len > f->end)
		return REJECT_TRUNCATED;
	__u32 total_len = be16_at(ip + IPV4_TOTAL_LEN);
	if (total_len < header_len || l3 + total_len > f->len)
		return REJECT_LENGTH_MISMATCH;
	__u32 verdict = check_trailer(f->len - l3, total_len);
	if (verdict != PASSED)
		return verdict;
	if (be16_at(ip + IPV4_FRAG) & IPV4_MF_AND_OFFSET)
		return REJECT_FRAGMENT;
	if (ip[IPV4_PROTOCOL] != IP_PROTO_UDP)
		return REJECT_NOT_UDP;
	verdict = check_endpoints_v4(be32_at(ip + IPV4_SRC), be32_at(ip + IPV4_DST));
	if (verdict != PASSED)
		return verdict;
	*l4 = l3 + header_len;
	*udp_len = total_len - header_len;
	return PASSED;
}

/* classify::walk_ipv6: sets the UDP header offset and the UDP length the header chain implies. */
static __always_inline __u32 walk_ipv6(const struct frame *f, __u32 l3, __u32 *l4, __u32 *udp_len)
{
	const __u8 *ip = f->data + l3;

	if (ip + IPV6_HEADER_LEN > f->end)
		return REJECT_TRUNCATED;
	if (ip[0] >> 4 != 6)
		return REJECT_BAD_IP_HEADER;
	__u32 payload_len = be16_at(ip + IPV6_PAYLOAD_LEN);
	__u32 end = l3 + IPV6_HEADER_LEN + payload_len;
	/* A zero payload length announces a jumbogram, which never fits an Ethernet frame. */
	if (payload_len == 0 || end > f->len)
		return REJECT_LENGTH_MISMATCH;
	__u32 verdict = check_trailer(f->len - l3, IPV6_HEADER_LEN + payload_len);
	if (verdict != PASSED)
		return verdict;
	struct endpoints endpoints;
	read_endpoints(&endpoints, ip + IPV6_SRC, ip + IPV6_DST);
	verdict = check_endpoints(&endpoints);
	if (verdict != PASSED)
		return verdict;

	__u8 next = ip[IPV6_NEXT_HEADER];
	__u32 at = l3 + IPV6_HEADER_LEN;
	for (int i = 0; i <= MAX_IPV6_EXT_HEADERS; i++) {
		if (next == IP_PROTO_UDP) {
			*l4 = at;
			*udp_len = end - at;
			return PASSED;
		}
		if (next == IPV6_EXT_FRAGMENT)
			return REJECT_FRAGMENT;
		if (next != IPV6_EXT_HOP_BY_HOP && next != IPV6_EXT_ROUTING &&
		    next != IPV6_EXT_DEST_OPTIONS)
			return REJECT_NOT_UDP;
		/* Next header and length (in 8-octet units past the first 8) lead every
		 * skippable extension header. */
		if (at + 8 > end)
			return REJECT_LENGTH_MISMATCH;
		const __u8 *ext = f->data + at;
		if (ext + 2 > f->end) /* verifier guard: at + 8 <= end <= len */
			return REJECT_TRUNCATED;
		next = ext[0];
		at += ((__u32)ext[1] + 1) * 8;
		if (at > end)
			return REJECT_LENGTH_MISMATCH;
	}
	return REJECT_NOT_UDP;
}

/*
 * classify::check_udp_length, then sets the UDP source and destination ports. `ip_udp_len`
 * is the UDP length the IP layer implies.
 */
static __always_inline __u32 check_udp_length(const struct frame *f, __u32 l4, __u32 ip_udp_len,
					      __u16 *src_port, __u16 *dst_port)
{
	if (ip_udp_len < UDP_HEADER_LEN)
		return REJECT_LENGTH_MISMATCH;
	const __u8 *udp = f->data + l4;
	if (udp + UDP_HEADER_LEN > f->end) /* verifier guard: l4 + ip_udp_len <= len */
		return REJECT_TRUNCATED;
	if (be16_at(udp + UDP_LENGTH) != ip_udp_len)
		return REJECT_LENGTH_MISMATCH;
	*src_port = be16_at(udp + UDP_SRC_PORT);
	*dst_port = be16_at(udp + UDP_DST_PORT);
	return PASSED;
}

/* SignatureSpec::matches, once the caller has checked the signature fits in the payload:
 * four bytes at a time, then the bytes after the last whole word. */
static __always_inline int bytes_match(const struct frame *f, const __u8 *at, const struct signature *sig)
{
	if (at + sig->len > f->end) /* verifier guard: offset + len <= payload length */
		return 0;
#pragma unroll
	for (__u32 word = 0; word < sig->len / 4; word++)
		if (*(const __u32 *)(at + 4 * word) != *(const __u32 *)(sig->bytes + 4 * word))
			return 0;
#pragma unroll
	for (__u32 i = sig->len & ~3u; i < sig->len; i++)
		if (at[i] != sig->bytes[i])
			return 0;
	return 1;
}

/* classify::match_signature: the first enabled row of the table, in table order. A row
 * the filter leaves out is a constant-false branch the verifier removes. */
static __always_inline __u32 match_signature(const struct frame *f, __u32 payload, __u32 payload_len,
					     __u8 *signature)
{
#pragma unroll
	for (__u32 r = 0; r < SIGNATURE_ROWS; r++) {
		const struct signature *sig = &signatures[r];

		if (!(cfg.signature_rows & (1u << r)))
			continue;
		if (sig->offset + sig->len > payload_len)
			continue;
		if (bytes_match(f, f->data + payload + sig->offset, sig)) {
			*signature = sig->index;
			return PASSED;
		}
	}
	return REJECT_NO_SIGNATURE;
}

/* dataplane::classify: a reject index, or PASSED for a test frame, described by `lay`. */
static __always_inline __u32 classify(const struct frame *f, struct layout *lay)
{
	__u32 verdict;
	__u16 ethertype, src_port, port;
	__u32 l3, l4, udp_len;

	if (f->data + ETH_HEADER_LEN > f->end)
		return REJECT_TRUNCATED;
	verdict = check_macs(f->data);
	if (verdict != PASSED)
		return verdict;
	verdict = walk_vlan_tags(f, &ethertype, &l3);
	if (verdict != PASSED)
		return verdict;
	if (ethertype == ETHERTYPE_IPV4)
		verdict = walk_ipv4(f, l3, &l4, &udp_len);
	else if (ethertype == ETHERTYPE_IPV6 && cfg.ipv6)
		verdict = walk_ipv6(f, l3, &l4, &udp_len);
	else if (ethertype == ETHERTYPE_IPV6)
		return REJECT_IPV6_DISABLED;
	else
		return REJECT_NOT_IP;
	if (verdict != PASSED)
		return verdict;
	lay->l3 = l3;
	lay->l4 = l4;
	lay->ipv6 = ethertype == ETHERTYPE_IPV6;
	verdict = check_udp_length(f, l4, udp_len, &src_port, &port);
	if (verdict != PASSED)
		return verdict;
	/*
	 * STAMP packets carry no marker: the ports and the length are the whole test. One
	 * *from* the STAMP port is another reflector's answer; answering it could loop.
	 */
	if (cfg.stamp_enabled && port == cfg.stamp_port) {
		if (src_port == cfg.stamp_port)
			return REJECT_STAMP_FROM_REFLECTOR;
		lay->signature = cfg.stamp_index;
		return udp_len - UDP_HEADER_LEN < STAMP_MIN_PAYLOAD ? REJECT_STAMP_TOO_SHORT : PASSED;
	}
	if (cfg.udp_port != 0 && port != cfg.udp_port)
		return REJECT_PORT_MISMATCH;
	verdict = check_src_oui(f->data);
	if (verdict != PASSED)
		return verdict;
	return match_signature(f, l4 + UDP_HEADER_LEN, udp_len - UDP_HEADER_LEN, &lay->signature);
}

/*
 * dataplane::reflect for the configured mode, in place. Swapping two equal-sized
 * fields leaves every one's-complement sum over them unchanged, so the IPv4 header and
 * UDP checksums (whose pseudo-header covers both addresses) stay valid as they are.
 * Returns PASSED, or Truncated from a verifier guard (classify proved the headers are
 * there) before anything is written.
 */
static __always_inline __u32 reflect(const struct frame *f, const struct layout *lay)
{
	__u8 *ip = f->data + lay->l3;
	__u8 *udp = f->data + lay->l4;

	if (f->data + ETH_HEADER_LEN > f->end) /* verifier guard */
		return REJECT_TRUNCATED;
	if (ip + (lay->ipv6 ? IPV6_HEADER_LEN : IPV4_MIN_HEADER_LEN) > f->end) /* verifier guard */
		return REJECT_TRUNCATED;
	if (udp + UDP_HEADER_LEN > f->end) /* verifier guard */
		return REJECT_TRUNCATED;
	swap_bytes(f->data + ETH_DST, f->data + ETH_SRC, 6);
	if (!cfg.swap_ip)
		return PASSED;
	if (lay->ipv6) {
		if (ip + IPV6_HEADER_LEN > f->end) /* verifier guard, as above */
			return REJECT_TRUNCATED;
		swap_bytes(ip + IPV6_SRC, ip + IPV6_DST, 16);
	} else {
		if (ip + IPV4_MIN_HEADER_LEN > f->end) /* verifier guard, as above */
			return REJECT_TRUNCATED;
		swap_bytes(ip + IPV4_SRC, ip + IPV4_DST, 4);
	}
	if (cfg.swap_ports)
		swap_bytes(udp + UDP_SRC_PORT, udp + UDP_DST_PORT, 2);
	return PASSED;
}

#include "policy.h"

static __always_inline void count_n(__u32 slot, __u64 n)
{
	__u64 *total = bpf_map_lookup_elem(&verdicts, &slot);

	if (total)
		*total += n;
}

static __always_inline void count(__u32 slot)
{
	count_n(slot, 1);
}

/* The arrival stamp in front of a redirected frame: the earliest receive time user
 * space can get (STAMP's T2, the start of the dwell time). Read by
 * platform-linux/src/rx_stamp.rs; the magic, length and offsets come from build.rs. */
struct rx_meta {
	__u64 received_ns; /* bpf_ktime_get_ns(): CLOCK_MONOTONIC */
	__u32 reserved;
	__u32 magic;
};

_Static_assert(sizeof(struct rx_meta) == RX_META_LEN, "rx_meta must match RX_META_LEN");
_Static_assert(__builtin_offsetof(struct rx_meta, received_ns) == RX_META_STAMP_AT,
	       "rx_meta must match RX_META_STAMP_AT");
_Static_assert(__builtin_offsetof(struct rx_meta, magic) == RX_META_MAGIC_AT,
	       "rx_meta must match RX_META_MAGIC_AT");

/* Drivers without XDP metadata support refuse the room; user space then falls back to
 * its own clock, so a failure here is not an error. */
static __always_inline void stamp_arrival(struct xdp_md *ctx, __u64 received_ns)
{
	if (bpf_xdp_adjust_meta(ctx, -(int)sizeof(struct rx_meta)))
		return;
	struct rx_meta *meta = (void *)(long)ctx->data_meta;

	if ((void *)(meta + 1) > (void *)(long)ctx->data)
		return;
	meta->received_ns = received_ns;
	meta->reserved = 0;
	meta->magic = RX_META_MAGIC;
}

/*
 * Sending for a worker. A worker whose socket copies (copy-mode AF_XDP) can send its
 * reflected frames as XDP frames instead of through the socket, which builds an skb per
 * frame: it copies a batch into its block of `send_batches` and runs this program on it
 * with the kernel's live-frames BPF_PROG_RUN (xdp-filter/src/send.rs). Each
 * run takes the block's next frame, writes it over the page the kernel handed it, and
 * returns XDP_TX, so the frame leaves like one reflected in the kernel. A run of this
 * program that is already attached costs little; a program attached nowhere would make
 * every BPF_PROG_RUN rebuild the kernel's XDP dispatcher (about 25 ms).
 *
 * The runs are told from received frames by XDP metadata in front of the frame, which
 * only BPF_PROG_RUN gives a frame here, holding a secret chosen at load.
 */
struct send_meta {
	__u64 secret;
	__u32 queue;
	__u32 reserved;
};

_Static_assert(sizeof(struct send_meta) == SEND_META_LEN, "send_meta must match SEND_META_LEN");

struct send_frame {
	__u32 len;
	__u8 data[SEND_FRAME_MAX];
};

/* One per queue; `next` is written only here, by runs on the worker's own CPU. */
struct send_batch {
	__u32 count;
	__u32 next;
	struct send_frame frames[SEND_BATCH];
};

_Static_assert(sizeof(struct send_batch) == SEND_BATCH_SIZE,
	       "send_batch must match SEND_BATCH_SIZE");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 1); /* one per queue, set at load */
	__type(key, __u32);
	__type(value, struct send_batch);
} send_batches SEC(".maps");

/* The worker's run, if this is one: its metadata, else NULL. */
static __always_inline const struct send_meta *worker_send(struct xdp_md *ctx)
{
	const struct send_meta *meta = (void *)(long)ctx->data_meta;

	if ((void *)(meta + 1) > (void *)(long)ctx->data || meta->secret != cfg.send_secret)
		return NULL;
	return meta;
}

static __noinline int send_for_worker(struct xdp_md *ctx, __u32 queue)
{
	struct send_batch *batch = bpf_map_lookup_elem(&send_batches, &queue);

	if (!batch)
		return XDP_DROP;
	__u32 i = batch->next;

	if (i >= batch->count || i >= SEND_BATCH)
		return XDP_DROP;
	batch->next = i + 1;
	struct send_frame *frame = &batch->frames[i];
	__u32 len = frame->len;

	if (len < ETH_HEADER_LEN || len > SEND_FRAME_MAX)
		return XDP_DROP;
	/* The metadata has done its work; the frame leaves without it. */
	if (bpf_xdp_adjust_meta(ctx, SEND_META_LEN))
		return XDP_DROP;
	int delta = (int)len - (int)(ctx->data_end - ctx->data);

	if (delta && bpf_xdp_adjust_tail(ctx, delta))
		return XDP_DROP;
	if (bpf_xdp_store_bytes(ctx, 0, frame->data, len))
		return XDP_DROP;
	return XDP_TX;
}

/* In-kernel reflection's policy: whether it refuses the frame, counted under the
 * worker's reason (the worker drops such a frame; so does its kernel twin). */
static __always_inline int refused_by_policy(struct xdp_md *ctx, const struct layout *lay)
{
	__u32 verdict = check_policy(ctx, lay->l3, lay->ipv6);

	if (verdict == PASSED)
		return 0;
	count(verdict);
	return 1;
}

/* In-kernel reflection: swap and send the frame back out of the interface it came in. */
static __always_inline int transmit(const struct frame *f, const struct layout *lay)
{
	__u32 verdict = reflect(f, lay);

	if (verdict != PASSED) {
		count(verdict);
		return XDP_PASS;
	}
	/* Counted before the driver sends it: a failed XDP_TX shows as xdp_exception. */
	count(VERDICT_TX + lay->signature);
	count_n(VERDICT_TX_BYTES, f->len);
	return XDP_TX;
}

SEC("xdp.frags")
int xdp_reflector(struct xdp_md *ctx)
{
	const int policed = 0;
#include "reflector_main.h"
}

/*
 * The same with the policy, loaded instead of xdp_reflector when `cfg` turns any part
 * of it on. Its own entry point rather than a branch on `cfg`: the verifier would prune
 * the branch, but the call in it would still shape the compiler's register use on the
 * whole path, so a reflector without a policy would pay for it.
 */
SEC("xdp.frags")
int xdp_reflector_policed(struct xdp_md *ctx)
{
	const int policed = 1;
#include "reflector_main.h"
}

/* GPL-compatible so that any helper may be used; the code is MIT OR Apache-2.0. */
char LICENSE[] SEC("license") = "Dual MIT/GPL";
