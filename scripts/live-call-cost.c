/*
 * What one live-frames BPF_PROG_RUN of an XDP program costs, with the program attached
 * to an interface and without (docs/PERFORMANCE.md, "Sending through XDP in copy mode").
 *
 *   cc -O2 -o /tmp/live-call-cost scripts/live-call-cost.c
 *   ip link add lcA type veth peer name lcB; ip link add lcC type veth peer name lcD
 *   for i in lcA lcB lcC lcD; do ip link set $i up; done
 *   /tmp/live-call-cost lcA 64          # the program attached nowhere
 *   /tmp/live-call-cost lcA 64 lcC      # the same program also attached to lcC
 *   ip link del lcA; ip link del lcC
 *
 * The program is `return XDP_TX`; each call runs it `repeat` times (one frame each) on
 * a 64-byte frame arriving at the first interface, for 2 seconds of calls.
 */
#include <linux/bpf.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static long bpf(int cmd, union bpf_attr *attr)
{
	return syscall(__NR_bpf, cmd, attr, sizeof(*attr));
}

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: %s IFACE REPEAT [ATTACH_TO]\n", argv[0]);
		return 2;
	}
	struct bpf_insn prog[] = {
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = 0, .imm = XDP_TX },
		{ .code = BPF_JMP | BPF_EXIT },
	};
	union bpf_attr attr;

	memset(&attr, 0, sizeof(attr));
	attr.prog_type = BPF_PROG_TYPE_XDP;
	attr.insn_cnt = 2;
	attr.insns = (unsigned long)prog;
	attr.license = (unsigned long)"GPL";
	int fd = bpf(BPF_PROG_LOAD, &attr);
	if (fd < 0) {
		perror("BPF_PROG_LOAD");
		return 1;
	}
	if (argc > 3) {
		memset(&attr, 0, sizeof(attr));
		attr.link_create.prog_fd = fd;
		attr.link_create.target_ifindex = if_nametoindex(argv[3]);
		attr.link_create.attach_type = BPF_XDP;
		attr.link_create.flags = XDP_FLAGS_DRV_MODE;
		if (bpf(BPF_LINK_CREATE, &attr) < 0) {
			perror("BPF_LINK_CREATE");
			return 1;
		}
	}
	unsigned char frame[64] = { [12] = 0x08 };
	struct xdp_md ctx = { .data_end = sizeof(frame), .ingress_ifindex = if_nametoindex(argv[1]) };
	int repeat = atoi(argv[2]), calls = 0;
	double start = now(), took;

	do {
		memset(&attr, 0, sizeof(attr));
		attr.test.prog_fd = fd;
		attr.test.data_in = (unsigned long)frame;
		attr.test.data_size_in = sizeof(frame);
		attr.test.ctx_in = (unsigned long)&ctx;
		attr.test.ctx_size_in = sizeof(ctx);
		attr.test.repeat = repeat;
		attr.test.flags = BPF_F_TEST_XDP_LIVE_FRAMES;
		if (bpf(BPF_PROG_TEST_RUN, &attr)) {
			perror("BPF_PROG_TEST_RUN");
			return 1;
		}
		calls++;
		took = now() - start;
	} while (took < 2);
	printf("repeat %d, %s: %d calls in %.2f s, %.1f us per call\n", repeat,
	       argc > 3 ? "attached" : "not attached", calls, took, took / calls * 1e6);
	return 0;
}
