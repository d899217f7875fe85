// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * Counts the XDP frames a device refused to send, for the workers that send through the
 * reflector program (reflector.bpf.c, `send_for_worker`; xdp-filter/src/send.rs).
 *
 * A frame a program returns with XDP_TX from the kernel's live-frames BPF_PROG_RUN is
 * queued for the device's ndo_xdp_xmit and sent in bulks. What the device refuses (all
 * of it when it cannot send XDP frames, as veth whose peer has neither an XDP program
 * nor GRO; or what its full ring cannot take) is freed without a counter the worker
 * could read, and reported only to two tracepoints, which these programs count.
 * A worker reads the total through a memory map before and after each batch, so no
 * refused frame goes uncounted, and a device that refuses them all is used no more.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

/* Only the field read here; CO-RE finds it in the running kernel's BTF. */
struct net_device {
	int ifindex;
} __attribute__((preserve_access_index));

/* The device to watch, written before attaching, and what it refused. */
struct send_drops {
	__u32 ifindex;
	__u32 reserved;
	__u64 refused;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct send_drops);
} send_drops SEC(".maps");

static __always_inline void count_refused(const struct net_device *dev, int frames)
{
	__u32 key = 0;
	struct send_drops *watched = bpf_map_lookup_elem(&send_drops, &key);

	if (watched && dev->ifindex == (int)watched->ifindex)
		/* Any CPU may send to the device: the one shared total needs an atomic add,
		 * taken only when frames were refused. */
		__sync_fetch_and_add(&watched->refused, frames);
}

/* The device took a bulk of XDP frames, or not all of them (its ring was full).
 * TP_PROTO(const struct net_device *from_dev, const struct net_device *to_dev, int sent,
 *          int drops, int err) */
SEC("tp_btf/xdp_devmap_xmit")
int count_xmit_drops(__u64 *ctx)
{
	int drops = (int)ctx[3];

	if (drops > 0)
		count_refused((const void *)ctx[1], drops);
	return 0;
}

/* A frame could not be queued for the device at all: it cannot send XDP frames
 * (NETDEV_XDP_ACT_NDO_XMIT is off; on veth, while the peer has no XDP program and GRO
 * off). An XDP_TX of a live-frames run is a redirect to the receiving device, without
 * a map; redirects into AF_XDP sockets, whose failures the sockets count, have one.
 * TP_PROTO(const struct net_device *dev, const struct bpf_prog *xdp, const void *tgt,
 *          int err, enum bpf_map_type map_type, u32 map_id, u32 index) */
SEC("tp_btf/xdp_redirect_err")
int count_redirect_errors(__u64 *ctx)
{
	if ((int)ctx[4] == BPF_MAP_TYPE_UNSPEC)
		count_refused((const void *)ctx[0], 1);
	return 0;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
