/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * The body of the reflector's XDP entry points (reflector.bpf.c), included once in each
 * with `policed` a constant: 0 in xdp_reflector, 1 in xdp_reflector_policed, which also
 * applies the worker's policy. Two textual copies rather than one always-inline function
 * called twice: the compiler then optimises each as the only function it is, and the
 * policy-free program comes out instruction for instruction as it was before the policy
 * existed (a shared function cost it about 20 instructions of register spills around
 * the policy call that only the other entry point makes).
 */

	const struct send_meta *send = worker_send(ctx);

	if (send)
		return send_for_worker(ctx, send->queue);
	/* First, so the stamp does not include our own parsing. Reflecting in the kernel,
	 * only STAMP packets need it: read the clock for them alone, later. */
	__u64 received_ns = cfg.in_kernel ? 0 : bpf_ktime_get_ns();
	struct frame f = {
		.data = (__u8 *)(long)ctx->data,
		.end = (__u8 *)(long)ctx->data_end,
		.len = frame_len(ctx),
	};
	struct layout lay = {};
	__u32 verdict = classify(&f, &lay);

	if (verdict != PASSED) {
		count(verdict);
		return XDP_PASS;
	}
	/* The policy applies where the worker applies it: after classification, and for a
	 * frame bound for a socket after the socket's length limit. */
	if (cfg.in_kernel && lay.signature != cfg.stamp_index) {
		if (policed && refused_by_policy(ctx, &lay))
			return XDP_DROP;
		return transmit(&f, &lay);
	}
	if (f.len > cfg.max_frame_len) {
		count(REJECT_TOO_LARGE);
		return XDP_PASS;
	}
	if (policed && cfg.in_kernel && refused_by_policy(ctx, &lay))
		return XDP_DROP;
	stamp_arrival(ctx, cfg.in_kernel ? bpf_ktime_get_ns() : received_ns);
	/* With no socket on this queue the lookup fails and the frame goes to the stack. */
	long action = bpf_redirect_map(&xsks_map, ctx->rx_queue_index, XDP_PASS);
	count(action == XDP_REDIRECT ? VERDICT_REDIRECTED : VERDICT_NO_SOCKET);
	return action;
