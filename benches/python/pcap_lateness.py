#!/usr/bin/env python3
"""The server's own lateness, from a packet capture of its streams on loopback.

    tcpdump -i lo -s 0 -w cap.pcap 'tcp src port 18731'   # while a paced run goes on
    python3 benches/python/pcap_lateness.py cap.pcap --port 18731 --itl-ms 20

On loopback a segment is stamped when the server's write hands it to the kernel, before any
client reads it, so the stamps show when the server sent each chunk, whatever the client does.
Every stream (a response starts with a segment beginning `HTTP/1.1`) is a chat stream: SSE
events `data: ` in order, the role chunk, one per token, the usage chunk, `[DONE]`; a segment
may carry several, and each event takes its segment's stamp. Token k's lateness is its stamp
less its due time t1 + (k-1)·ITL, less the smallest such difference in the stream: the same
`late` figure capacity_report.py takes from the clients' timings (which leave out the first
token's gap: so does this). Prints p50 / p99 / p99.9 / max in ms.
"""

import argparse
import struct
import sys


def packets(path):
    with open(path, "rb") as f:
        head = f.read(24)
        magic = struct.unpack("<I", head[:4])[0]
        if magic == 0xA1B2C3D4:
            endian, scale = "<", 1e-6
        elif magic == 0xA1B23C4D:
            endian, scale = "<", 1e-9
        else:
            sys.exit("not a little-endian pcap file")
        linktype = struct.unpack(endian + "I", head[20:24])[0]
        link_len = {1: 14, 113: 16, 276: 20}.get(linktype)
        if link_len is None:
            sys.exit(f"link type {linktype} not handled")
        while True:
            rec = f.read(16)
            if len(rec) < 16:
                return
            sec, frac, incl, orig = struct.unpack(endian + "IIII", rec)
            data = f.read(incl)
            ip = data[link_len:]
            if not ip or ip[0] >> 4 != 4:
                continue
            ihl = (ip[0] & 0xF) * 4
            total = struct.unpack("!H", ip[2:4])[0]
            tcp = ip[ihl:]
            sport, dport = struct.unpack("!HH", tcp[:4])
            doff = (tcp[12] >> 4) * 4
            payload_len = total - ihl - doff
            if payload_len <= 0:
                continue
            yield sec + frac * scale, sport, dport, tcp[doff : doff + payload_len]


def pct(xs, p):
    k = (len(xs) - 1) * p / 100
    lo = int(k)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("pcap")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--itl-ms", type=float, required=True)
    a = ap.parse_args()
    itl = a.itl_ms / 1e3
    flows = {}  # client port -> list of streams, each a list of token stamps
    for t, sport, dport, start in packets(a.pcap):  # start: the payload
        if sport != a.port:
            continue
        streams = flows.setdefault(dport, [])
        if start.startswith(b"HTTP/1."):
            streams.append([])
        if not streams:
            continue
        # One stamp per SSE event in the segment ([DONE] included; dropped below).
        n = start.count(b'data: {"') + start.count(b"data: [DONE]")
        streams[-1].extend([t] * n)
    late = []
    tokens = []
    for streams in flows.values():
        for s in streams:
            # Events: role, tokens..., usage, [DONE]; the clients' `late` starts at the
            # second token (their first gap, role to first token, is left out).
            toks = s[1:-2]
            if len(toks) < 3:
                continue
            tokens.append(len(toks))
            body = toks[1:]
            offs = [tk - body[0] - k * itl for k, tk in enumerate(body)]
            m = min(offs)
            late.extend(o - m for o in offs)
    if not late:
        sys.exit("no stream found")
    late.sort()
    ms = 1e3
    print(
        f"streams {len(tokens)}, stamps per stream {min(tokens)}-{max(tokens)}; server lateness "
        f"p50 {pct(late, 50) * ms:.3f} / p99 {pct(late, 99) * ms:.3f} / "
        f"p99.9 {pct(late, 99.9) * ms:.3f} / max {late[-1] * ms:.3f} ms "
        f"(mean {sum(late) / len(late) * ms:.3f})"
    )


if __name__ == "__main__":
    main()
