#!/usr/bin/env python3
"""Soak of `oddity --follow`: appends generated CloudTrail events to a followed file at a steady
rate for a long time, renaming the file away every few minutes (a rotation), with the state
saved every minute. Every sample it prints oddity's resident memory, the lines in and out, and
the latency of the last event appended (appended → its scored line in the output file).

    python3 bench/soak_follow.py EVENTS_FILE [MINUTES] [EVENTS_PER_S] [ROTATE_MINUTES]
        default: 60 minutes, 200 events/s, a rotation every 10 minutes

EVENTS_FILE: JSON lines (for example `cloudtrail-gen --seed 7 --events 1000000 --out F`).
Uses target/release/oddity, or $ODDITY. Numbers, not a pass/fail test.
"""
import os, subprocess, sys, tempfile, time

class Lines:
    """The lines of a growing file, counted from where the last count stopped."""

    def __init__(self, path):
        self.path, self.offset, self.count = path, 0, 0

    def __call__(self):
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    self.count += chunk.count(b"\n")
                    self.offset += len(chunk)
        except FileNotFoundError:
            pass
        return self.count

def rss_kib(pid):
    with open("/proc/%d/status" % pid) as status:
        return int(next(l.split()[1] for l in status if l.startswith("VmRSS:")))

def main():
    source = sys.argv[1]
    minutes = float(sys.argv[2]) if len(sys.argv) > 2 else 60
    rate = int(sys.argv[3]) if len(sys.argv) > 3 else 200
    rotate = float(sys.argv[4]) if len(sys.argv) > 4 else 10
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    binary = os.environ.get("ODDITY", os.path.join(root, "target", "release", "oddity"))
    events = open(source, "rb")
    with tempfile.TemporaryDirectory() as d:
        log, out, state = (os.path.join(d, n) for n in ("events.jsonl", "scored.jsonl", "m.snap"))
        open(log, "w").close()
        count_lines = Lines(out)
        proc = subprocess.Popen([binary, "-q", "--follow", "--state", state, "--save-every", "60s",
                                 "-o", out, log])
        time.sleep(1.0)
        start = last_rotation = time.monotonic()
        written = rotations = 0
        print("minute  events_in  events_out  rss_MiB  latency_ms", flush=True)
        next_sample = start
        f = open(log, "ab")
        peak = 0
        while time.monotonic() - start < minutes * 60:
            tick = time.monotonic()
            for _ in range(rate // 10):
                line = events.readline()
                if not line:
                    events.seek(0)
                    line = events.readline()
                f.write(line)
                written += 1
            f.flush()
            if time.monotonic() - last_rotation > rotate * 60:
                f.close()
                os.rename(log, log + ".%d" % rotations)
                rotations += 1
                f = open(log, "ab")
                last_rotation = time.monotonic()
            if time.monotonic() >= next_sample:
                t0 = time.monotonic()
                while count_lines() < written and time.monotonic() - t0 < 10:
                    time.sleep(0.002)
                latency = (time.monotonic() - t0) * 1000
                rss = rss_kib(proc.pid)
                peak = max(peak, rss)
                print("%6.1f  %9d  %10d  %7.1f  %10.1f" % ((time.monotonic() - start) / 60, written,
                      count_lines(), rss / 1024, latency), flush=True)
                next_sample += 60
            time.sleep(max(0.0, 0.1 - (time.monotonic() - tick)))
        f.close()
        time.sleep(2)
        out_lines = count_lines()
        proc.terminate()
        proc.wait(timeout=60)
        print("soak: %.0f min, %d events in, %d out, %d rotations, peak RSS %.1f MiB"
              % (minutes, written, out_lines, rotations, peak / 1024), flush=True)

main()
