#!/usr/bin/env bash
# Rig benchmark: four reflectors on one two-namespace veth rig, interleaved round by
# round so the machine's noise hits all of them alike (even rounds run them in reverse
# order, so none always goes first):
#   baseline   xdp-filter's xdp_tx_baseline: swap and XDP_TX, no classification
#   xdp_tx     this reflector, --backend xdp-tx --max-streams 0 (in-kernel back end)
#   af_xdp     this reflector, --backend xdp (AF_XDP behind the XDP filter, defaults)
#   af_packet  this reflector, --backend af-packet
# The head is `reflector probe --engine fast` (live-frames BPF_PROG_RUN; its own XDP
# program on head0 counts the returns, so nothing else may be attached there), with one
# generator per CPU at full rate and above 1 Mpps; the veth gets one queue per CPU
# (QUEUES, default nproc), as veth delivers to the peer queue of the sending CPU, so each
# generator's CPU carries its own frames both ways. For each
# round, size and reflector it runs a max-rate trial (with the CPU each side used) and a
# trial at each fixed rate; then one RFC 2544 zero-loss search per reflector for all
# sizes. Every trial prints a line; the end is a Markdown summary of medians with ratios
# against the baseline of the same run, and every kernel drop that was counted.
#   sudo scripts/bench-rig.sh     # ROUNDS=3 SECS=2 SIZES="64 1500" RATES="0.5 1 2 4" (Mpps)
#   SEARCH_SECS=1 (seconds per search trial; SEARCH=0 skips the search), WAIT=0.3,
#   QUEUES=$(nproc) (RX/TX queues on each veth end; the AF_XDP reflector serves them all)
#   KINDS="baseline af_xdp" runs a subset (af_xdp_socket: AF_XDP with --xdp-send off,
#   every frame through the socket's copy-mode transmit); BEFORE=path/to/an/older/reflector adds
#   xdp_tx_before and af_xdp_before (that build's in-kernel and AF_XDP paths), to measure
#   a change before/after in one run.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS="${ROUNDS:-3}" SECS="${SECS:-2}" WAIT="${WAIT:-0.3}"
SEARCH="${SEARCH:-1}" SEARCH_SECS="${SEARCH_SECS:-1}" QUEUES="${QUEUES:-$(nproc)}"
read -r -a SIZES <<<"${SIZES:-64 1500}"
read -r -a RATES <<<"${RATES:-0.5 1 2 4}"
read -r -a KINDS <<<"${KINDS:-baseline xdp_tx af_xdp af_packet}"
BEFORE="${BEFORE:-}"
if [ -n "$BEFORE" ]; then
  [ -x "$BEFORE" ] || { echo "bench-rig: BEFORE=$BEFORE is not an executable reflector" >&2; exit 1; }
  KINDS+=(xdp_tx_before af_xdp_before)
fi
H=rfl-bench-head R=rfl-bench-refl HMAC=00:c0:17:be:00:01 RMAC=02:52:45:46:4c:02

die() { echo "bench-rig: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || die "run as root (sudo): the rig needs network namespaces and XDP"
for tool in ip ethtool python3 cargo; do
  command -v "$tool" >/dev/null || die "$tool not found: run scripts/setup.sh (as root) first"
done

# Both targets by name: with --example alone cargo would build only the example.
cargo build --release --quiet -p reflector --bin reflector -p xdp-filter --example xdp_tx_baseline
BIN="$PWD/target/release/reflector" BASELINE="$PWD/target/release/examples/xdp_tx_baseline"
TMP=$(mktemp -d) REC="$TMP/records.jsonl" PY="$TMP/bench.py"

PID="" PROBE=""
stop() { # stop a process we started (SIGINT: the reflector then prints its totals)
  [ -n "$1" ] || return 0
  local i
  kill -INT "$1" 2>/dev/null || true
  for i in $(seq 50); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
  [ "$i" -lt 50 ] || { echo "bench-rig: process $1 ignored SIGINT; terminating it" >&2; kill -TERM "$1" 2>/dev/null || true; }
  wait "$1" 2>/dev/null || true
}
cleanup() {
  stop "$PROBE"; stop "$PID"; PROBE="" PID=""
  ip netns del "$H" 2>/dev/null || true
  ip netns del "$R" 2>/dev/null || true
}
trap 'cleanup; rm -rf "$TMP"' EXIT
trap 'exit 130' INT TERM
cleanup

if ! { ip netns add "$H" && ip netns add "$R" \
  && ip link add head0 netns "$H" address "$HMAC" numtxqueues "$QUEUES" numrxqueues "$QUEUES" \
     type veth peer name refl0 netns "$R" address "$RMAC" numtxqueues "$QUEUES" numrxqueues "$QUEUES" \
  && ip -n "$H" link set head0 up && ip -n "$R" link set refl0 up \
  && ip netns exec "$H" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 \
  && ip netns exec "$R" sysctl -qw net.ipv6.conf.all.disable_ipv6=1; }; then
  die "could not build the veth rig ($H/head0 <-> $R/refl0): see the ip error above"
fi

cat >"$PY" <<'PYTHON'
import json, os, statistics, sys
from collections import defaultdict

CLK = os.sysconf("SC_CLK_TCK")
KERNEL = ("kernel_rx_dropped", "kernel_rx_ring_full", "kernel_unserved_queue",
          "kernel_fill_ring_empty", "kernel_tx_invalid", "tx_errors")

def snapshot(path):
    """/proc/stat cpu lines, the two processes' utime+stime, and the time."""
    cpus, procs, t = {}, {}, 0.0
    for line in open(path):
        f = line.split()
        if f[0].startswith("cpu"):
            v = list(map(int, f[1:9]))  # user nice system idle iowait irq softirq steal
            cpus[f[0]] = (sum(v), v[3] + v[4], v[6])
        elif f[0] == "t":
            t = float(f[1])
        else:
            procs[f[0]] = int(f[1]) + int(f[2])
    return cpus, procs, t

def counters(path):
    out = {}
    for line in open(path):
        name, value = line.split()
        out[name] = int(value)
    return out

def append(rec, record):
    with open(rec, "a") as f:
        f.write(json.dumps(record) + "\n")

def trial(rec, rnd, size, kind, rate, probe, snap0, snap1):
    try:
        r = json.load(open(probe))
    except ValueError:
        print(f"round {rnd} size {size} {kind} rate {rate}: the probe printed no report")
        return
    returned = r["received"] / r["send_seconds"] if r["send_seconds"] > 0 else 0.0
    lost = 100.0 * r["lost"] / r["sent"] if r["sent"] else 100.0
    record = dict(type="trial", round=int(rnd), size=int(size), kind=kind, rate=rate,
                  offered=r["tx_pps"] / 1e6, returned=returned / 1e6, lost_pct=lost,
                  sent=r["sent"], received=r["received"], lost=r["lost"])
    line = (f"round {rnd} size {size} {kind} rate {rate}: offered {record['offered']:.3f} "
            f"Mpps returned {record['returned']:.3f} Mpps lost {lost:.2f}% "
            f"(sent {r['sent']} received {r['received']})")
    q = r.get("rtt_ns") or {}
    if q.get("count"):
        record["rtt_us"] = {k: q[k] / 1e3 for k in ("p50", "p99", "p999", "max")}
        line += " rtt us " + " ".join(f"{k} {v:.0f}" for k, v in record["rtt_us"].items())
    if snap0:
        (c0, p0, t0), (c1, p1, t1) = snapshot(snap0), snapshot(snap1)
        busy = []
        for cpu in sorted(c for c in c0 if c != "cpu"):
            total = c1[cpu][0] - c0[cpu][0] or 1
            idle = c1[cpu][1] - c0[cpu][1]
            si = c1[cpu][2] - c0[cpu][2]
            busy.append((100.0 * (total - idle) / total, 100.0 * si / total, cpu))
        wall = max(t1 - t0, 1e-9)
        proc = {k: 100.0 * (p1.get(k, 0) - p0.get(k, 0)) / CLK / wall for k in p0}
        record["cpu"] = dict(busy=[b for b, _, _ in busy], softirq=[s for _, s, _ in busy],
                             head=proc.get("head", 0.0), reflector=proc.get("reflector", 0.0))
        line += " | " + " ".join(f"{c} {b:.0f}% (softirq {s:.0f}%)" for b, s, c in busy)
        line += f" | head process {record['cpu']['head']:.0f}%"
        line += f" reflector process {record['cpu']['reflector']:.0f}%"
    append(rec, record)
    print(line)

def instance(rec, rnd, size, kind, out, veth0, veth1):
    """The reflector's own totals over this instance's trials, and the veth's drops."""
    sent = received = 0
    for line in open(rec):
        t = json.loads(line)
        if t["type"] == "trial" and (t["round"], t["size"], t["kind"]) == (int(rnd), int(size), kind):
            sent += t["sent"]
            received += t["received"]
    record = dict(type="instance", round=int(rnd), size=int(size), kind=kind,
                  head_sent=sent, head_received=received)
    text = open(out).read().split("\n")
    lines = [l for l in text if l.strip()]
    if kind == "baseline":
        bounced = [l for l in lines if l.startswith("bounced ")]
        record["reflected"] = int(bounced[-1].split()[1]) if bounced else None
        own = f"bounced {record['reflected']}"
    else:
        final = [json.loads(l) for l in lines if l.startswith("{")]
        final = [e for e in final if e.get("event") == "final"]
        if final:
            c = final[-1]["counters"]
            record.update(received=c["received"], reflected=c["reflected"],
                          rejected=c["rejected"], **{k: c.get(k, 0) for k in KERNEL})
            lost = sum(c.get(k, 0) for k in
                       ("kernel_rx_dropped", "kernel_rx_ring_full", "kernel_unserved_queue"))
            own = (f"received {c['received']} reflected {c['reflected']} rejected "
                   f"{c['rejected']} " + " ".join(f"{k} {c.get(k, 0)}" for k in KERNEL)
                   + f"; head sent - (received + kernel lost) = {sent - c['received'] - lost}")
        else:
            own = "no final JSON event (it did not stop cleanly)"
    a, b = counters(veth0), counters(veth1)
    drops = {k: b[k] - a.get(k, 0) for k in b if b[k] - a.get(k, 0)}
    record["veth"] = drops
    append(rec, record)
    print(f"round {rnd} size {size} {kind} totals: head sent {sent} received {received} | "
          f"reflector: {own} | veth drops/errors: "
          + (" ".join(f"{k} {v}" for k, v in sorted(drops.items())) or "none"))

def search(rec, kind, path, seconds):
    try:
        table = json.load(open(path))["search"]
    except (ValueError, KeyError):
        print(f"search {kind}: the probe printed no table")
        return
    for s in table:
        append(rec, dict(type="search", kind=kind, size=s["size"], zero_loss=s["zero_loss_pps"] / 1e6,
                         max_offered=s["max_offered_pps"] / 1e6, head_limited=s["head_limited"],
                         trials=len(s["trials"]), seconds=float(seconds)))
        print(f"search {kind} size {s['size']}: zero-loss {s['zero_loss_pps'] / 1e6:.3f} Mpps"
              f"{' (head-limited)' if s['head_limited'] else ''}, max offered "
              f"{s['max_offered_pps'] / 1e6:.3f} Mpps, {len(s['trials'])} trials")
    print(f"search {kind}: {float(seconds):.0f} s for all sizes")

def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else float("nan")

def summary(rec, kinds, rounds):
    kinds = kinds.split()
    records = [json.loads(l) for l in open(rec)]
    trials = defaultdict(list)
    for t in (r for r in records if r["type"] == "trial"):
        trials[(t["size"], t["kind"], t["rate"])].append(t)
    sizes = sorted({s for s, _, _ in trials})
    rates = sorted({r for _, _, r in trials if r != "max"}, key=float)
    pct = lambda x, y: f"{100 * x / y:.0f}%" if y else "-"

    print(f"\n### Max rate (medians of {rounds} rounds; ratios against the baseline's median)\n")
    print("| size | reflector | offered Mpps | returned Mpps | returned / baseline | lost |")
    print("|---:|---|---:|---:|---:|---:|")
    notes = []
    for size in sizes:
        base = med(t["returned"] for t in trials[(size, "baseline", "max")])
        for kind in kinds:
            ts = trials[(size, kind, "max")]
            ret = med(t["returned"] for t in ts)
            print(f"| {size} | {kind} | {med(t['offered'] for t in ts):.3f} | {ret:.3f} | "
                  f"{pct(ret, base)} | {med(t['lost_pct'] for t in ts):.1f}% |")
        if all(t["lost"] == 0 for t in trials[(size, "baseline", "max")]):
            notes.append(f"At {size} B the baseline lost nothing at max rate in any round: it is "
                         "not saturated, the head is the limit, and ratios against it are ratios "
                         "against the head.")
    for note in notes:
        print("\n" + note)

    print("\n### Fixed rates (medians: offered / returned Mpps, lost)\n")
    print("| size | reflector | " + " | ".join(f"{r} Mpps asked" for r in rates) + " |")
    print("|---:|---|" + "---:|" * len(rates))
    for size in sizes:
        for kind in kinds:
            cells = []
            for r in rates:
                ts = trials[(size, kind, r)]
                cells.append(f"{med(t['offered'] for t in ts):.2f} / {med(t['returned'] for t in ts):.2f}, "
                             f"{med(t['lost_pct'] for t in ts):.1f}%")
            print(f"| {size} | {kind} | " + " | ".join(cells) + " |")

    if rates:
        low = rates[0]
        print(f"\n### RTT at the lowest fixed rate, {low} Mpps (medians of the rounds' percentiles, µs;"
              " added = minus the baseline's)\n")
        print("| size | reflector | p50 | p99 | p99.9 | max | added p50 / p99 / p99.9 / max |")
        print("|---:|---|---:|---:|---:|---:|---|")
        keys = ("p50", "p99", "p999", "max")
        for size in sizes:
            rtt = {k: [t["rtt_us"] for t in trials[(size, k, low)] if "rtt_us" in t] for k in kinds}
            base = {q: med(r[q] for r in rtt.get("baseline", [])) for q in keys}
            for kind in kinds:
                if not rtt[kind]:
                    continue
                m = {q: med(r[q] for r in rtt[kind]) for q in keys}
                added = " / ".join(f"{m[q] - base[q]:.0f}" for q in keys)
                print(f"| {size} | {kind} | " + " | ".join(f"{m[q]:.0f}" for q in keys) + f" | {added} |")

    found = [r for r in records if r["type"] == "search"]
    if found:
        print("\n### Zero-loss throughput (RFC 2544 search, one per reflector)\n")
        print("| size | reflector | zero-loss Mpps | / baseline | max offered Mpps | trials |")
        print("|---:|---|---:|---:|---:|---:|")
        for size in sizes:
            base = [s["zero_loss"] for s in found if (s["size"], s["kind"]) == (size, "baseline")]
            for s in (s for k in kinds for s in found if (s["size"], s["kind"]) == (size, k)):
                print(f"| {size} | {s['kind']} | {s['zero_loss']:.3f}"
                      f"{' (head-limited)' if s['head_limited'] else ''} | "
                      f"{pct(s['zero_loss'], base[0] if base else 0)} | {s['max_offered']:.3f} | {s['trials']} |")
        took = {}
        for s in found:
            took.setdefault(s["kind"], s["seconds"])
        print("\nSearch time for all sizes: " + ", ".join(f"{k} {v:.0f} s" for k, v in took.items()))

    print("\n### CPU during the max-rate trial (medians; CPUs ordered busiest first)\n")
    print("| size | reflector | busiest CPU (softirq) | other CPU (softirq) | head process | reflector process |")
    print("|---:|---|---:|---:|---:|---:|")
    for size in sizes:
        for kind in kinds:
            cs = [t["cpu"] for t in trials[(size, kind, "max")] if "cpu" in t]
            if not cs:
                continue
            n = len(cs[0]["busy"])
            order = [sorted(range(n), key=lambda i: -c["busy"][i]) for c in cs]
            cols = [f"{med(c['busy'][o[i]] for c, o in zip(cs, order)):.0f}% "
                    f"({med(c['softirq'][o[i]] for c, o in zip(cs, order)):.0f}%)" for i in range(min(n, 2))]
            print(f"| {size} | {kind} | " + " | ".join(cols) + f" | {med(c['head'] for c in cs):.0f}% | "
                  f"{med(c['reflector'] for c in cs):.0f}% |")

    print("\n### Kernel drops (summed over all rounds and trials)\n")
    print("| size | reflector | head sent (all trials) | reflector received | reflected | kernel drops (reflector's counters) | veth drops/errors |")
    print("|---:|---|---:|---:|---:|---|---|")
    for size in sizes:
        for kind in kinds:
            inst = [r for r in records if r["type"] == "instance" and (r["size"], r["kind"]) == (size, kind)]
            total = lambda k: sum(r.get(k) or 0 for r in inst)
            veth = defaultdict(int)
            for r in inst:
                for k, v in r["veth"].items():
                    veth[k] += v
            kern = "-" if kind == "baseline" else ", ".join(f"{k} {total(k)}" for k in KERNEL if total(k)) or "none"
            rcv = "-" if kind == "baseline" else total("received")
            print(f"| {size} | {kind} | {total('head_sent')} | {rcv} | {total('reflected')} | {kern} | "
                  + (", ".join(f"{k} {v}" for k, v in sorted(veth.items())) or "none") + " |")

globals()[sys.argv[1]](*sys.argv[2:])
PYTHON

start_reflector() { # kind out-file
  # A veth accepts redirected frames (the head's) only with NAPI on: an XDP program turns
  # it on, and for AF_PACKET, which attaches none, GRO does (as a NIC always has NAPI).
  ip netns exec "$R" ethtool -K refl0 gro "$([ "$1" = af_packet ] && echo on || echo off)" \
    || die "could not switch GRO on refl0 (the AF_PACKET run needs veth NAPI)"
  case $1 in
    baseline) ip netns exec "$R" "$BASELINE" refl0 >"$2" 2>"$2.err" & ;;
    xdp_tx) ip netns exec "$R" "$BIN" refl0 --backend xdp-tx --max-streams 0 --stats-interval 0 --json >"$2" 2>"$2.err" & ;;
    af_xdp) ip netns exec "$R" "$BIN" refl0 --backend xdp --stats-interval 0 --json >"$2" 2>"$2.err" & ;;
    af_xdp_socket) ip netns exec "$R" "$BIN" refl0 --backend xdp --xdp-send off --stats-interval 0 --json >"$2" 2>"$2.err" & ;;
    xdp_tx_before) ip netns exec "$R" "$BEFORE" refl0 --backend xdp-tx --max-streams 0 --stats-interval 0 --json >"$2" 2>"$2.err" & ;;
    af_xdp_before) ip netns exec "$R" "$BEFORE" refl0 --backend xdp --stats-interval 0 --json >"$2" 2>"$2.err" & ;;
    af_packet) ip netns exec "$R" "$BIN" refl0 --backend af-packet --stats-interval 0 --json >"$2" 2>"$2.err" & ;;
  esac
  PID=$!
  sleep 1
  kill -0 "$PID" 2>/dev/null || die "the $1 reflector exited at start: $(cat "$2.err")"
}

veth_counters() { # every drop/error counter of both veth ends, "dev.name value"
  # (not head0's xdp_drops: that is the head's counter consuming the returns)
  local ns_dev ns dev f
  for ns_dev in "$H:head0" "$R:refl0"; do
    ns=${ns_dev%%:*} dev=${ns_dev#*:}
    ip netns exec "$ns" ethtool -S "$dev" \
      | awk -v d="$dev" 'NR > 1 && $1 ~ /drop|err|full/ && !(d == "head0" && $1 ~ /xdp_drops/) {
          sub(":", "", $1); print d "." $1, $2 }'
    for f in rx_dropped tx_dropped rx_errors tx_errors; do
      echo "$dev.$f $(ip netns exec "$ns" cat "/sys/class/net/$dev/statistics/$f")"
    done
  done
}

proc_jiffies() { # utime stime of a process, 0 0 once it is gone
  local stat fields
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || { echo "0 0"; return; }
  read -r -a fields <<<"${stat##*) }"
  echo "${fields[11]} ${fields[12]}"
}

snap() { # per-CPU jiffies, both processes' CPU time and the time, for the python side
  { grep '^cpu' /proc/stat; echo "head $(proc_jiffies "$PROBE")"
    echo "reflector $(proc_jiffies "$PID")"; echo "t $(date +%s.%N)"; } >"$1"
}

run_probe() { # rate-in-pps size, then extra probe flags; the report goes to $TMP/probe
  local pps=$1 size=$2
  shift 2
  ip netns exec "$H" "$BIN" probe head0 --to "$RMAC" --engine fast --rate "$pps" \
    --duration "$SECS" --size "$size" --wait "$WAIT" --json "$@" >"$TMP/probe" 2>"$TMP/probe.err" &
  PROBE=$!
}

finish_probe() { # wait for the probe, at most $1 seconds
  local i
  for i in $(seq "$(($1 * 10))"); do kill -0 "$PROBE" 2>/dev/null || break; sleep 0.1; done
  [ "$i" -lt "$(($1 * 10))" ] || echo "the probe did not finish in $1 s; stopping it" >&2
  stop "$PROBE"; PROBE=""
  [ -s "$TMP/probe" ] || sed 's/^/  probe: /' "$TMP/probe.err" >&2
}

bench_start=$(date +%s)
for round in $(seq "$ROUNDS"); do
  order=("${KINDS[@]}")
  if [ $((round % 2)) -eq 0 ]; then
    order=()
    for ((i = ${#KINDS[@]} - 1; i >= 0; i--)); do order+=("${KINDS[i]}"); done
  fi
  for size in "${SIZES[@]}"; do
    for kind in "${order[@]}"; do
      veth_counters >"$TMP/veth0"
      start_reflector "$kind" "$TMP/out"
      # Max rate; the CPU is sampled while it sends (after the program's setup).
      run_probe 0 "$size"
      sleep 0.5; snap "$TMP/snap0"; sleep "$(python3 -c "print(max($SECS - 1, 0.2))")"; snap "$TMP/snap1"
      finish_probe 60
      python3 "$PY" trial "$REC" "$round" "$size" "$kind" max "$TMP/probe" "$TMP/snap0" "$TMP/snap1"
      for rate in "${RATES[@]}"; do
        run_probe "$(python3 -c "print(round($rate * 1e6))")" "$size"
        finish_probe 60
        python3 "$PY" trial "$REC" "$round" "$size" "$kind" "$rate" "$TMP/probe" "" ""
      done
      stop "$PID"; PID=""
      veth_counters >"$TMP/veth1"
      python3 "$PY" instance "$REC" "$round" "$size" "$kind" "$TMP/out" "$TMP/veth0" "$TMP/veth1"
    done
  done
done

if [ "$SEARCH" != 0 ]; then
  sizes=$(IFS=,; echo "${SIZES[*]}")
  for kind in "${KINDS[@]}"; do
    start_reflector "$kind" "$TMP/out"
    t0=$(date +%s.%N)
    ip netns exec "$H" "$BIN" probe head0 --to "$RMAC" --engine fast --search --sizes "$sizes" \
      --duration "$SEARCH_SECS" --wait "$WAIT" --json >"$TMP/probe" 2>"$TMP/probe.err" &
    PROBE=$!
    finish_probe 300
    t1=$(date +%s.%N)
    stop "$PID"; PID=""
    python3 "$PY" search "$REC" "$kind" "$TMP/probe" "$(python3 -c "print($t1 - $t0)")"
  done
fi

python3 "$PY" summary "$REC" "${KINDS[*]}" "$ROUNDS"
echo
echo "Whole run: $(($(date +%s) - bench_start)) s. On veth a receiver's XDP program runs in the"
echo "sender's softirq, on the sender's CPU: the baseline's and xdp_tx's work is counted on the"
echo "head's CPU (and in the head process's system time), not in the reflector process."
