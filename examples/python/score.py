#!/usr/bin/env python3
"""Scores a file of JSON lines with oddity's WebAssembly component in wasmtime-py, and writes
the annotated lines to standard output: byte for byte what the native filter `oddity` writes
for the same file with its default settings (built-in profile `cloudtrail`, key `novelty`).

    python score.py oddity.wasm events.jsonl > scored.jsonl

The component comes from `oddity plugin export -o oddity.wasm`. See README.md beside this file.

The lines cross into the component through `score` (`list<string>`), not through the filter
fast path `annotate-batch` (`list<u8>`): wasmtime-py 51 lowers a `list<u8>` one element at a
time, in Python, in both directions, which makes `annotate-batch` many times slower. The score
record each line gets back is written into the line here, exactly as the component's own
fast path writes it (`plugin/src/render.rs`).
"""

import argparse
import decimal
import json
import math
import sys
import time

from wasmtime import Engine, Store, WasiConfig
from wasmtime.component import Component, Linker, Variant

INTERFACE = "oddity:detector/detector@0.3.0"
# The configuration the native filter passes by default: the built-in CloudTrail profile.
CONFIG = 'profile = "cloudtrail"\n'
# The native filter's defaults: events per call, longest line scored, the output key.
BATCH = 256
MAX_LINE = 1 << 20
KEY = "novelty"
BOM = b"\xef\xbb\xbf"
# What Rust's `u8::is_ascii_whitespace` accepts (not vertical tab, unlike Python's `isspace`).
WHITESPACE = b" \t\n\x0c\r"


class Detector:
    """One `engine` resource of the component, in a store with an empty WASI context."""

    def __init__(self, wasm_path, config):
        engine = Engine()
        self.store = Store(engine)
        # No preopened directories, environment, arguments or inherited stdio.
        self.store.set_wasi(WasiConfig())
        linker = Linker(engine)
        linker.add_wasip2()
        component = Component.from_file(engine, wasm_path)
        instance = linker.instantiate(self.store, component)
        interface = instance.get_export_index(self.store, INTERFACE)
        if interface is None:
            sys.exit(f"score.py: {wasm_path} does not export {INTERFACE}")

        def func(name):
            index = instance.get_export_index(self.store, name, interface)
            return instance.get_func(self.store, index)

        created = func("[static]engine.create")(self.store, config)
        if isinstance(created, Variant):
            sys.exit(f"score.py: the component refused the configuration: {created.payload}")
        self.engine = created
        self.score_func = func("[method]engine.score")

    def score(self, lines):
        """Scores, then learns, each line (a str) in order: one result per line."""
        return self.score_func(self.store, self.engine, lines)


def fixed(x, decimals):
    """`x` rounded to `decimals` decimals (ties to even), without trailing zeros."""
    scaled = x * 10**decimals
    if not math.isfinite(scaled) or abs(round(scaled)) >= 9.0e15:
        return shortest(x)
    n = round(scaled)
    digits = f"{abs(n) // 10**decimals}."
    frac = abs(n) % 10**decimals
    digits += f"{frac:0{decimals}d}".rstrip("0") if frac else "0"
    return ("-" if n < 0 else "") + digits


def shortest(x):
    """`x` as serde_json writes an f64: the shortest text that reads back as `x`, in plain
    notation for decimal exponents -5 to 15, otherwise as `1.5e-7`, `1e+16`."""
    if not math.isfinite(x):
        return "null"
    sign, digits, exponent = decimal.Decimal(repr(x)).as_tuple()
    text = "".join(map(str, digits)).rstrip("0") or "0"
    e = exponent + len(digits) - 1
    if -5 <= e <= 15:
        if len(text) - 1 <= e:
            body = text + "0" * (e + 1 - len(text)) + ".0"
        elif e >= 0:
            body = text[: e + 1] + "." + text[e + 1 :]
        else:
            body = "0." + "0" * (-e - 1) + text
    else:
        body = text[0] + ("." + text[1:] if len(text) > 1 else "")
        body += f"e{'+' if e >= 0 else '-'}{abs(e)}"
    return ("-" if sign else "") + body


def string(s):
    """A JSON string, escaped as serde_json escapes it (non-ASCII kept as it is)."""
    return json.dumps(s, ensure_ascii=False)


def enum_name(value):
    """A WIT enum case's name, as the component writes it ("medium")."""
    return value if isinstance(value, str) else getattr(value, "name", str(value)).lower()


def note(r):
    """The score record as the component's fast path writes it (README, "The score record")."""
    principal = string(r.principal)
    top = getattr(r, "most-novel")
    out = [
        '{"score":', fixed(r.score, 6),
        ',"infoContent":', fixed(getattr(r, "info-content"), 3),
        ',"novelty":', fixed(r.novelty, 3),
        ',"risk":', fixed(r.risk, 3),
        ',"severity":', string(enum_name(r.severity)),
        ',"tactics":[', ",".join(map(string, r.tactics)), "]",
        ',"techniques":[', ",".join(map(string, r.techniques)), "]",
        ',"probability":', shortest(r.probability),
        ',"uniqueness":', fixed(r.uniqueness, 6),
        ',"sequence":', str(r.sequence),
        ',"cold":', "true" if r.cold else "false",
        ',"principal":', principal,
        ',"observation":{',
        ",".join(f"{string(f)}:{string(v)}" for f, v in zip(r.fields, r.observation)),
        '},"mostNovelComponent":{"index":', str(top.index),
        ',"view":', string(top.view),
        ',"field":', string(top.field),
        ',"value":', string(top.value),
        ',"novelty":', fixed(top.novelty, 6),
        ',"bits":', fixed(top.bits, 3),
        '},"views":{',
        ",".join(
            f'{string(v.name)}:{{"infoContent":{fixed(getattr(v, "info-content"), 3)},'
            f'"excess":{fixed(v.excess, 3)}}}'
            for v in r.views
        ),
        "}",
    ]
    for key, name in (("id", "event-id"), ("time", "event-time")):
        value = getattr(r, name)
        if value is not None:
            out += [f',"{key}":', string(value)]
    if r.campaign is not None:
        c = r.campaign
        out += [
            ',"campaign":{"id":', string(c.id),
            ',"principal":', principal,
            ',"events":', str(c.events),
            ',"first":', string(c.first),
            ',"last":', string(c.last),
            ',"score":', fixed(c.score, 3),
            ',"risk":', fixed(c.risk, 3),
            ',"tactics":[', ",".join(map(string, c.tactics)), "]",
            ',"actions":[', ",".join(map(string, c.actions)), "]}",
        ]
    out.append("}")
    return "".join(out).encode()


def splice(line, value):
    """`line` with `"novelty": value` as its top-level object's last member, or None when the
    line is not an object ending in `}`."""
    body = line.strip(WHITESPACE)
    if not body.startswith(b"{") or not body.endswith(b"}"):
        return None
    end = len(line.rstrip(WHITESPACE)) - 1
    comma = b"," if body[1:-1].strip(WHITESPACE) else b""
    return line[:end] + comma + string(KEY).encode() + b":" + value + line[end:]


def annotated(line, result):
    """The output line of a line the component judged."""
    if not isinstance(result, Variant):
        value = note(result)
    elif result.tag == "field-missing":
        reason = "field missing: " + result.payload
        value = ('{"error":"field-missing","reason":' + string(reason) + "}").encode()
    else:
        return line
    return splice(line, value) or line


def prepared(raw):
    """An input line (without its `\\n`) as the native filter hands it on: (the line without a
    leading byte-order mark and a trailing `\\r`, its text for the component), or (the output
    line, None) when the component is not asked (over the longest line, blank, not UTF-8: the
    component gives such a line back unchanged and learns nothing from it)."""
    if len(raw) > MAX_LINE:
        return raw, None
    line = raw[len(BOM) :] if raw.startswith(BOM) else raw
    line = line[:-1] if line.endswith(b"\r") else line
    if not line.strip(WHITESPACE):
        return line, None
    try:
        return line, line.decode("utf-8")
    except UnicodeDecodeError:
        return line, None


def score_batch(detector, lines):
    """The output of a batch of input lines (each without its `\\n`): one line per line."""
    batch = [prepared(raw) for raw in lines]
    texts = [text for _, text in batch if text is not None]
    results = detector.score(texts) if texts else []
    if len(results) != len(texts):
        sys.exit(f"score.py: {len(results)} results for {len(texts)} lines")
    results = iter(results)
    out = bytearray()
    for line, text in batch:
        out += line if text is None else annotated(line, next(results))
        out += b"\n"
    return bytes(out)


def lines_of(stream):
    """The lines of a binary stream, without their `\\n`; a last line without one counts."""
    for line in stream:
        yield line[:-1] if line.endswith(b"\n") else line


def run(detector, source, sink):
    events = 0
    batch = []
    for line in lines_of(source):
        batch.append(line)
        if len(batch) == BATCH:
            sink.write(score_batch(detector, batch))
            events += len(batch)
            batch = []
    if batch:
        sink.write(score_batch(detector, batch))
        events += len(batch)
    return events


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("wasm", help="the component (oddity plugin export -o oddity.wasm)")
    parser.add_argument("input", help="a file of JSON lines ('-' for standard input)")
    args = parser.parse_args()
    start = time.perf_counter()
    detector = Detector(args.wasm, CONFIG)
    loaded = time.perf_counter()
    source = sys.stdin.buffer if args.input == "-" else open(args.input, "rb")
    with source:
        events = run(detector, source, sys.stdout.buffer)
    sys.stdout.buffer.flush()
    done = time.perf_counter()
    print(
        f"score.py: {events} events in {done - loaded:.2f} s, "
        f"{events / max(done - loaded, 1e-9):.0f} events/s "
        f"(loading the component: {loaded - start:.2f} s)",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
