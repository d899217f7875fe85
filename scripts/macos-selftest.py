#!/usr/bin/env python3
"""Send test frames to a reflector on the other end of a link and check every answer.

The sender of scripts/macos-selftest.sh: `reflector probe` runs on Linux only, so on a
Mac this sends raw frames through /dev/bpf (standard library only). On Linux it uses an
AF_PACKET socket instead, which is how the script itself is checked against the Linux
reflector on a veth pair.

    macos-selftest.py IFACE REFLECTOR_MAC [--count N]

Sends N frames of each kind (ITO PROBEOT from a NetAlly source MAC, RFC 2544, a STAMP
test packet), numbered, and expects each back exactly once, addresses and ports
swapped (--mode all, the default), the ITO and RFC 2544 payloads untouched and the STAMP
answer carrying the sender's sequence number. Exit status 0 only if all came back.
"""

import argparse
import fcntl
import os
import select
import socket
import struct
import sys
import time

HEAD_MAC = bytes.fromhex("00c017540501")  # inside NetAlly's OUI, as a LinkRunner's
HEAD_IP, REFLECTOR_IP = bytes([192, 0, 2, 1]), bytes([192, 0, 2, 2])
HEAD_PORT, ITO_PORT, STAMP_PORT = 49152, 3842, 862


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def frame(dst_mac, dst_port, payload):
    """Ethernet + IPv4 + UDP (checksum 0: allowed in IPv4) around `payload`."""
    udp = struct.pack("!HHHH", HEAD_PORT, dst_port, 8 + len(payload), 0) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0x1C46, 0x4000, 64, 17, 0,
                     HEAD_IP, REFLECTOR_IP)
    ip = ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:]
    data = dst_mac + HEAD_MAC + b"\x08\x00" + ip + udp
    return data + b"\0" * max(0, 60 - len(data))


def test_frames(dst_mac, count):
    """(kind, sequence, frame) for every frame to send."""
    frames = []
    for seq in range(count):
        stamp = struct.pack("!I", seq)
        frames.append(("PROBEOT", seq, frame(dst_mac, ITO_PORT, b"\x01" + stamp + b"PROBEOT")))
        frames.append(("RFC2544", seq, frame(dst_mac, ITO_PORT, b"RFC2544" + stamp)))
        # RFC 8762 unauthenticated session-sender packet: sequence, timestamp, error
        # estimate (S=0, multiplier 1), zeros up to 44 bytes.
        stamp_packet = stamp + b"\0" * 8 + b"\x00\x01" + b"\0" * 30
        frames.append(("STAMP", seq, frame(dst_mac, STAMP_PORT, stamp_packet)))
    return frames


def judge(sent, answer):
    """The (kind, seq) `answer` is the correct reflection of, or None."""
    kind, seq, data = sent
    if len(answer) < 42 or answer[12:14] != b"\x08\x00":
        return None
    swapped = (answer[0:6] == data[6:12] and answer[6:12] == data[0:6]
               and answer[26:30] == data[30:34] and answer[30:34] == data[26:30]
               and answer[34:36] == data[36:38] and answer[36:38] == data[34:36])
    if not swapped:
        return None
    if kind == "STAMP":
        # RFC 8762 4.3: the reflector's sequence (stateless: the sender's) at 0, the
        # Session-Sender Sequence Number at 24, the sender's TTL (64) at 40.
        payload = answer[42:]
        ok = (payload[0:4] == data[42:46] and payload[24:28] == data[42:46]
              and payload[40] == 64 and len(payload) == 44)
    else:
        ok = answer[42:] == data[42:]
    return (kind, seq) if ok else None


class PacketLink:
    """Linux: an AF_PACKET socket bound to the interface (to check this script)."""

    def __init__(self, iface):
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
        self.sock.bind((iface, 0))
        self.sock.setblocking(False)

    def send(self, data):
        self.sock.send(data)

    def receive(self, timeout):
        if not select.select([self.sock], [], [], timeout)[0]:
            return []
        frames = []
        while True:
            try:
                data, address = self.sock.recvfrom(65535)
            except BlockingIOError:
                return frames
            if address[2] != socket.PACKET_OUTGOING:
                frames.append(data)


class BpfLink:
    """macOS: /dev/bpf bound to the interface, immediate mode, our own frames not seen."""

    BIOCGBLEN, BIOCSETIF, BIOCIMMEDIATE = 0x40044266, 0x8020426C, 0x80044270
    BIOCSHDRCMPLT, BIOCSSEESENT = 0x80044275, 0x80044277

    def __init__(self, iface):
        for n in range(256):
            try:
                self.fd = os.open(f"/dev/bpf{n}", os.O_RDWR)
                break
            except OSError:
                continue
        else:
            sys.exit("selftest: no free /dev/bpf device (run with sudo; close captures)")
        one = struct.pack("I", 1)
        fcntl.ioctl(self.fd, self.BIOCSETIF, struct.pack("16s16x", iface.encode()))
        fcntl.ioctl(self.fd, self.BIOCIMMEDIATE, one)
        fcntl.ioctl(self.fd, self.BIOCSHDRCMPLT, one)
        fcntl.ioctl(self.fd, self.BIOCSSEESENT, struct.pack("I", 0))
        self.buffer_len = struct.unpack("I", fcntl.ioctl(self.fd, self.BIOCGBLEN, b"\0" * 4))[0]

    def send(self, data):
        os.write(self.fd, data)

    def receive(self, timeout):
        if not select.select([self.fd], [], [], timeout)[0]:
            return []
        buf, frames, at = os.read(self.fd, self.buffer_len), [], 0
        # struct bpf_hdr: timeval32 (8), caplen (4), datalen (4), hdrlen (2); records
        # padded to 4 bytes (BPF_WORDALIGN).
        while at + 18 <= len(buf):
            caplen, _, hdrlen = struct.unpack_from("IIH", buf, at + 8)
            frames.append(buf[at + hdrlen:at + hdrlen + caplen])
            at += (hdrlen + caplen + 3) & ~3
        return frames


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("iface")
    parser.add_argument("reflector_mac")
    parser.add_argument("--count", type=int, default=100)
    args = parser.parse_args()
    link = BpfLink(args.iface) if sys.platform == "darwin" else PacketLink(args.iface)
    sent = test_frames(bytes.fromhex(args.reflector_mac.replace(":", "")), args.count)
    expected = {(kind, seq): (kind, seq, data) for kind, seq, data in sent}
    seen, wrong = {}, 0
    for _, _, data in sent:
        link.send(data)
        time.sleep(0.001)  # a gentle rate: this checks correctness, not speed
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline and len(seen) < len(expected):
        for answer in link.receive(0.2):
            if answer[0:6] != HEAD_MAC:
                continue  # not for us (the host's own traffic)
            key = next((k for k, s in expected.items() if judge(s, answer)), None)
            if key is None:
                wrong += 1
            else:
                seen[key] = seen.get(key, 0) + 1
    report = {}
    for kind in ("PROBEOT", "RFC2544", "STAMP"):
        got = sum(1 for k in seen if k[0] == kind)
        report[kind] = f"{got}/{args.count}"
    duplicates = sum(n - 1 for n in seen.values())
    print(f"selftest: answers {report}, duplicates {duplicates}, malformed {wrong}")
    ok = len(seen) == len(expected) and duplicates == 0 and wrong == 0
    print("selftest: PASS" if ok else "selftest: FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
