#!/usr/bin/env python3
"""Latency of `oddity --follow` on a quiet stream: appends one event at a time to a followed
file and times until its scored line is in the output file; prints the median, p95 and worst
latency and oddity's peak RSS.

    python3 bench/follow.py [EVENTS] [GAP_SECONDS]      default: 200 events, 0.2 s apart

Uses target/release/oddity (cargo build --release first). Numbers, not a pass/fail test.
"""
import json, os, subprocess, sys, tempfile, time

def event(n):
    return json.dumps({
        "eventVersion": "1.08",
        "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::111122223333:user/raul"},
        "eventTime": "2024-03-04T09:%02d:%02dZ" % (n // 60 % 60, n % 60),
        "eventSource": "ec2.amazonaws.com", "eventName": "Describe%d" % (n % 5),
        "sourceIPAddress": "198.51.100.7", "userAgent": "aws-cli/2.15.1", "eventID": "e%d" % n,
    }, separators=(",", ":")) + "\n"

def lines(path):
    try:
        with open(path, "rb") as f:
            return f.read().count(b"\n")
    except FileNotFoundError:
        return 0

def main():
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    gap = float(sys.argv[2]) if len(sys.argv) > 2 else 0.2
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    binary = os.path.join(root, "target", "release", "oddity")
    with tempfile.TemporaryDirectory() as d:
        log, out = os.path.join(d, "events.jsonl"), os.path.join(d, "scored.jsonl")
        open(log, "w").close()
        proc = subprocess.Popen([binary, "-q", "--follow", "-o", out, log])
        time.sleep(1.0)  # start-up, not measured
        waits = []
        with open(log, "a") as f:
            for n in range(count):
                f.write(event(n)); f.flush()
                t0 = time.monotonic()
                while lines(out) <= n:
                    time.sleep(0.0005)
                    if time.monotonic() - t0 > 5:
                        sys.exit("no output within 5 s")
                waits.append((time.monotonic() - t0) * 1000)
                time.sleep(gap)
        with open("/proc/%d/status" % proc.pid) as status:
            rss = next(l.split()[1] for l in status if l.startswith("VmHWM:"))
        proc.terminate()
        proc.wait(timeout=30)
    waits.sort()
    p = lambda q: waits[min(len(waits) - 1, int(q * len(waits)))]
    print("oddity --follow, %d events %.2f s apart: latency median %.1f ms, p95 %.1f ms, worst %.1f ms; peak RSS %s KB"
          % (count, gap, p(0.5), p(0.95), waits[-1], rss))

main()
