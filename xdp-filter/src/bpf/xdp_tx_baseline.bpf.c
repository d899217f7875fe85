// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * Benchmark baseline: bounce UDP frames to one port straight back out of the receiving
 * interface with XDP_TX. Parses Ethernet (+ up to MAX_VLAN_TAGS tags), IPv4 or IPv6 (no
 * extension headers) and UDP, swaps MACs, IP addresses and ports in place and transmits.
 * No signature, MAC-filter or length-consistency checks: this is the fastest a reflector
 * on this rig could possibly be, the upper bound the AF_XDP reflector is measured against.
 * Swapping fields leaves every checksum valid (one's-complement sums are order-independent).
 * Multi-buffer aware (`xdp.frags`), so it attaches in native mode at jumbo MTUs too: it
 * reads only the headers, which are in the linear part.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "dataplane.h"
#include "swap.h"

/* UDP destination port to bounce, host byte order; 0 bounces every UDP frame. */
const volatile __u16 udp_port = 0;

/* Frames bounced, per CPU. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} bounced SEC(".maps");

static __always_inline __u16 be16_at(const __u8 *p)
{
	return ((__u16)p[0] << 8) | p[1];
}

/* Is the whole UDP header there, and is it for the configured port? */
static __always_inline int port_matches(const __u8 *udp, const __u8 *end)
{
	if (udp + UDP_HEADER_LEN > end)
		return 0;
	return udp_port == 0 || be16_at(udp + UDP_DST_PORT) == udp_port;
}

SEC("xdp.frags")
int xdp_tx_baseline(struct xdp_md *ctx)
{
	__u8 *data = (__u8 *)(long)ctx->data;
	__u8 *end = (__u8 *)(long)ctx->data_end;

	if (data + ETH_HEADER_LEN > end)
		return XDP_PASS;
	/* A group source MAC would become a group destination: never bounce it. */
	if (data[ETH_SRC] & 0x01)
		return XDP_PASS;

	__u16 type = be16_at(data + ETH_TYPE);
	__u8 *l3 = data + ETH_HEADER_LEN;
#pragma unroll
	for (int tags = 0; tags < MAX_VLAN_TAGS; tags++) {
		if (type != TPID_8021Q && type != TPID_8021AD)
			break;
		if (l3 + VLAN_TAG_LEN > end)
			return XDP_PASS;
		type = be16_at(l3 + 2);
		l3 += VLAN_TAG_LEN;
	}

	__u8 *udp;
	if (type == ETHERTYPE_IPV4) {
		if (l3 + IPV4_MIN_HEADER_LEN > end || l3[0] >> 4 != 4)
			return XDP_PASS;
		__u32 header_len = (l3[0] & 0x0f) * 4;
		if (header_len < IPV4_MIN_HEADER_LEN || l3[IPV4_PROTOCOL] != IP_PROTO_UDP ||
		    (be16_at(l3 + IPV4_FRAG) & IPV4_MF_AND_OFFSET))
			return XDP_PASS;
		udp = l3 + header_len;
		if (!port_matches(udp, end))
			return XDP_PASS;
		swap_bytes(l3 + IPV4_SRC, l3 + IPV4_DST, 4);
	} else if (type == ETHERTYPE_IPV6) {
		if (l3 + IPV6_HEADER_LEN > end || l3[IPV6_NEXT_HEADER] != IP_PROTO_UDP)
			return XDP_PASS;
		udp = l3 + IPV6_HEADER_LEN;
		if (!port_matches(udp, end))
			return XDP_PASS;
		swap_bytes(l3 + IPV6_SRC, l3 + IPV6_DST, 16);
	} else {
		return XDP_PASS;
	}
	swap_bytes(data + ETH_DST, data + ETH_SRC, 6);
	swap_bytes(udp + UDP_SRC_PORT, udp + UDP_DST_PORT, 2);

	__u32 key = 0;
	__u64 *n = bpf_map_lookup_elem(&bounced, &key);
	if (n)
		*n += 1;
	return XDP_TX;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
