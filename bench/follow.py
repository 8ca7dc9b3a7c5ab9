#!/usr/bin/env python3
"""Latency of `oddity --follow` on a quiet stream, and on a directory receiving delivery files.

    python3 bench/follow.py [EVENTS] [GAP_SECONDS]          default: 200 events, 0.2 s apart
    python3 bench/follow.py dir [FILES] [GAP_SECONDS]       default: 20 files, 1 s apart

The first appends one event at a time to a followed file and times until its scored line is in
the output file. The second (`dir`) drops one gzipped CloudTrail delivery file of 10 records at
a time into a followed directory, as a syncer does (written under a temporary name, then
renamed) at a random moment of oddity's 250 ms walks (GAP plus up to 0.25 s apart), and times
from the rename until its 10 lines are in the output file. Each prints the
median, p95 and worst latency and oddity's peak RSS.

Uses target/release/oddity (cargo build --release first). Numbers, not a pass/fail test.
"""
import gzip, json, os, random, subprocess, sys, tempfile, time

RECORDS = 10  # per delivery file

def record(n):
    return {
        "eventVersion": "1.08",
        "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::111122223333:user/raul"},
        "eventTime": "2024-03-04T%02d:%02d:%02dZ" % (n // 3600 % 24, n // 60 % 60, n % 60),
        "eventSource": "ec2.amazonaws.com", "eventName": "Describe%d" % (n % 5),
        "sourceIPAddress": "198.51.100.7", "userAgent": "aws-cli/2.15.1", "eventID": "e%d" % n,
    }

def event(n):
    return json.dumps(record(n), separators=(",", ":")) + "\n"

def lines(path):
    try:
        with open(path, "rb") as f:
            return f.read().count(b"\n")
    except FileNotFoundError:
        return 0

def wait_for(out, n, t0):
    """Waits until `out` holds `n` lines; the milliseconds since `t0`."""
    while lines(out) < n:
        time.sleep(0.0005)
        if time.monotonic() - t0 > 10:
            sys.exit("no output within 10 s")
    return (time.monotonic() - t0) * 1000

def deliver(logs, k):
    """Writes delivery file `k` as a syncer does: a temporary name, then a rename."""
    name = "111122223333_CloudTrail_us-east-1_20240304T%04dZ_%06d.json.gz" % (k, k)
    body = json.dumps({"Records": [record(k * RECORDS + i) for i in range(RECORDS)]})
    part = os.path.join(logs, name + ".a1B2c3D4")
    with gzip.open(part, "wt") as f:
        f.write(body)
    os.rename(part, os.path.join(logs, name))

def follow_file(binary, d, count, gap):
    log, out = os.path.join(d, "events.jsonl"), os.path.join(d, "scored.jsonl")
    open(log, "w").close()
    proc = subprocess.Popen([binary, "-q", "--follow", "-o", out, log])
    time.sleep(1.0)  # start-up, not measured
    waits = []
    with open(log, "a") as f:
        for n in range(count):
            f.write(event(n)); f.flush()
            waits.append(wait_for(out, n + 1, time.monotonic()))
            time.sleep(gap)
    return proc, waits, "%d events" % count

def follow_dir(binary, d, count, gap):
    logs, out = os.path.join(d, "logs"), os.path.join(d, "scored.jsonl")
    os.mkdir(logs)
    proc = subprocess.Popen([binary, "-q", "--follow", "-o", out, logs])
    time.sleep(1.0)  # start-up, not measured
    waits = []
    for k in range(count):
        deliver(logs, k)
        waits.append(wait_for(out, (k + 1) * RECORDS, time.monotonic()))
        time.sleep(gap + random.random() * 0.25)  # files come at any moment of oddity's walks
    return proc, waits, "%d delivery files of %d records" % (count, RECORDS)

def main():
    args = sys.argv[1:]
    directory = bool(args) and args[0] == "dir"
    if directory:
        args = args[1:]
    count = int(args[0]) if args else (20 if directory else 200)
    gap = float(args[1]) if len(args) > 1 else (1.0 if directory else 0.2)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    binary = os.path.join(root, "target", "release", "oddity")
    with tempfile.TemporaryDirectory() as d:
        proc, waits, what = (follow_dir if directory else follow_file)(binary, d, count, gap)
        with open("/proc/%d/status" % proc.pid) as status:
            rss = next(l.split()[1] for l in status if l.startswith("VmHWM:"))
        proc.terminate()
        proc.wait(timeout=30)
    waits.sort()
    p = lambda q: waits[min(len(waits) - 1, int(q * len(waits)))]
    print("oddity --follow, %s %.2f s apart: latency median %.1f ms, p95 %.1f ms, worst %.1f ms; peak RSS %s KB"
          % (what, gap, p(0.5), p(0.95), waits[-1], rss))

main()
