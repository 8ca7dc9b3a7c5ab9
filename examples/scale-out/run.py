#!/usr/bin/env python3
"""oddity on NATS JetStream, end to end on one machine.

    python3 examples/scale-out/run.py EVENTS [--workers 2] [--partitions 4] [--share-every 1000]
                                             [--kill]

Starts nats-server (JetStream, on 127.0.0.1, a free port, its store in a temporary
directory), and runs the same deployment twice on it: once uninterrupted (the reference), once
measured, with `--kill` killing the first worker with SIGKILL once 40 % of the events are
scored and starting it again. Each run: `oddity nats setup` (the partitions sharing population
knowledge every --share-every raw messages; 0: not at all), `publish` EVENTS (JSON lines,
plain or .gz; not timed), then the route stage and the workers; timed until every event is
scored. Prints one JSON line:

    {"in":…, "out":…, "duplicates":…, "lost":…, "events_per_s":…, "score_mismatches":…, …}

out: scored messages; duplicates: inputs scored more than once; lost: inputs not scored;
score_mismatches: inputs whose scored line differs from the reference run's; shares: shares of
population knowledge the workers published (one per partition and marker). Uses
target/release/oddity, or $ODDITY; nats-server from PATH (Debian: apt-get install nats-server).
"""
import argparse, json, os, shutil, signal, socket, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ODDITY = os.environ.get("ODDITY", os.path.join(ROOT, "target", "release", "oddity"))
WAIT_S = 300


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_nats(store):
    server = shutil.which("nats-server") or "/usr/sbin/nats-server"
    port = free_port()
    log = open(os.path.join(store, "nats.log"), "w")
    proc = subprocess.Popen([server, "-js", "-a", "127.0.0.1", "-p", str(port), "-sd", store],
                            stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, "nats://127.0.0.1:%d" % port
        except OSError:
            time.sleep(0.05)
    proc.kill()
    sys.exit("nats-server did not start; see %s/nats.log" % store)


def oddity(*args, **kw):
    return subprocess.run([ODDITY, "nats", *args], check=True, **kw)


def status(url, prefix):
    out = oddity("status", "--url", url, "--prefix", prefix, capture_output=True, text=True)
    return json.loads(out.stdout)


def spawn(url, prefix, *args, log):
    return subprocess.Popen([ODDITY, "nats", *args, "--url", url, "--prefix", prefix],
                            stdout=subprocess.DEVNULL, stderr=log)


def deploy(url, prefix, events, workers, partitions, share_every, kill, logs):
    """One run; returns its scored lines by input id and its seconds."""
    oddity("setup", "--url", url, "--prefix", prefix, "--partitions", str(partitions),
           "--share-every", str(share_every))
    oddity("publish", "--url", url, "--prefix", prefix, events, stderr=logs)
    total = status(url, prefix)["raw"]
    owned = [[p for p in range(partitions) if p % workers == w] for w in range(workers)]
    work_args = [["work", "--partitions", ",".join(map(str, ps))] for ps in owned]
    start = time.monotonic()
    route = spawn(url, prefix, "route", log=logs)
    procs = [spawn(url, prefix, *a, log=logs) for a in work_args]
    killed = False
    while True:
        scored = status(url, prefix)["scored"]
        if scored >= total:
            break
        if time.monotonic() - start > WAIT_S:
            break
        dead = [p for p in [route, *procs] if p.poll() is not None]
        if dead:
            sys.exit("an oddity stage ended (exit %s); see the log (--log FILE)" % dead[0].returncode)
        if kill and not killed and scored >= 0.4 * total:
            procs[0].send_signal(signal.SIGKILL)
            procs[0].wait()
            procs[0] = spawn(url, prefix, *work_args[0], log=logs)
            killed = True
        time.sleep(0.05)
    seconds = time.monotonic() - start
    # Anything published late (a replay) is in by now, or dropped as a duplicate.
    time.sleep(1.0)
    for p in [route, *procs]:
        p.send_signal(signal.SIGTERM)
    for p in [route, *procs]:
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()
    out = os.path.join(os.path.dirname(logs.name), prefix + ".scored.jsonl")
    oddity("collect", "--url", url, "--prefix", prefix, "--out", out, stderr=logs)
    scored = {}
    duplicates = 0
    with open(out) as f:
        for row in map(json.loads, f):
            if row["id"] in scored:
                duplicates += 1
            scored[row["id"]] = row["line"]
    shares = status(url, prefix)["share"]
    return total, scored, duplicates, seconds, killed, shares


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("events")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--partitions", type=int, default=4)
    ap.add_argument("--share-every", type=int, default=1000)
    ap.add_argument("--kill", action="store_true")
    ap.add_argument("--log", help="keep the stages' log in this file")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as store:
        server, url = start_nats(store)
        logs = open(os.path.join(store, "oddity.log"), "w")
        try:
            how = (args.workers, args.partitions, args.share_every)
            _, reference, _, ref_s, _, _ = deploy(url, "reference", args.events, *how, False,
                                                  logs)
            total, scored, duplicates, seconds, killed, shares = deploy(
                url, "measured", args.events, *how, args.kill, logs)
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)
            logs.close()
            if args.log:
                shutil.copy(os.path.join(store, "oddity.log"), args.log)
        expected = ["r%d-0" % i for i in range(1, total + 1)]
        lost = sum(1 for i in expected if i not in scored)
        mismatches = sum(1 for i in expected if i in scored and scored[i] != reference.get(i))
        print(json.dumps({
            "in": total, "out": len(scored) + duplicates, "duplicates": duplicates, "lost": lost,
            "events_per_s": round(total / seconds), "score_mismatches": mismatches,
            "workers": args.workers, "partitions": args.partitions,
            "share_every": args.share_every, "shares": shares, "killed": killed,
            "reference_events_per_s": round(total / ref_s),
        }))


if __name__ == "__main__":
    main()
