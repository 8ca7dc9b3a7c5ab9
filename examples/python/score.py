#!/usr/bin/env python3
"""Scores a file of JSON lines with oddity's WebAssembly component in wasmtime-py, and writes
the annotated lines to standard output: byte for byte what the native filter `oddity` writes
for the same file with its default settings (built-in profile `cloudtrail`, key `novelty`).

    python score.py oddity.wasm events.jsonl > scored.jsonl

The component comes from `oddity plugin export -o oddity.wasm`. See README.md beside this file.

Each batch goes to the engine's `judge` as `batch.text` (one string) rather than `batch.lines`
(`list<u8>`): wasmtime-py 51 copies a string at once but a `list<u8>` one byte at a time, in
Python. The component gives back one note per line (`judged.notes`, also one string), which
this script adds to its line as the native filter does.
"""

import argparse
import json
import sys
import time

from wasmtime import Engine, Store, WasiConfig
from wasmtime.component import Component, Linker, Variant

INTERFACE = "oddity:detector/detector@0.6.1"
# The configuration the native filter passes by default: the built-in CloudTrail profile.
CONFIG = 'profile = "cloudtrail"\n'
# The native filter's defaults: events per call and the output key (as a JSON string).
BATCH = 256
KEY = json.dumps("novelty").encode()
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

        # A `result` comes back as its `ok` value, or as its `err` value: a `Variant`.
        created = func("[static]engine.create")(self.store, config)
        if isinstance(created, Variant):
            sys.exit(f"score.py: the component refused the configuration: {created.payload}")
        self.engine = created
        self.judge_func = func("[method]engine.judge")

    def notes(self, texts):
        """Scores, then learns, each line (a str) in order: one note (bytes) per line."""
        judged = self.judge_func(self.store, self.engine, Variant("text", "\n".join(texts) + "\n"))
        if isinstance(judged, Variant):
            sys.exit(f"score.py: the component refused a batch: {judged.tag}: {judged.payload}")
        notes = judged.notes.encode().split(b"\n")
        if len(notes) != len(texts) + 1 or notes.pop() != b"":
            sys.exit(f"score.py: {len(notes)} notes for {len(texts)} lines")
        return notes


def spliced(line, note):
    """`line` with `note` as its top-level object's last member `novelty`, or `line` as it is
    when the note is empty or the line is not an object that ends in `}` (as the native host)."""
    body = line.strip(WHITESPACE)
    if not note or body[:1] != b"{" or body[-1:] != b"}":
        return line
    end = len(line.rstrip(WHITESPACE)) - 1
    comma = b"," if body[1:-1].strip(WHITESPACE) else b""
    return line[:end] + comma + KEY + b":" + note + line[end:]


def text_of(line):
    """The line for the component, as a str, or None when the script answers it itself: a
    blank line, or one that is not UTF-8 (the component would give it an empty note)."""
    if not line.strip(WHITESPACE):
        return None
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError:
        return None


def score_batch(detector, lines):
    """The output of a batch of input lines (each without its `\\n`): one line per line."""
    # Like the native filter: a byte-order mark that begins a line is dropped, and a line is
    # written without the `\r` of a `\r\n` ending (the component ignores that `\r` too).
    lines = [line[len(BOM) :] if line.startswith(BOM) else line for line in lines]
    texts = [text_of(line) for line in lines]
    sent = [text for text in texts if text is not None]
    notes = iter(detector.notes(sent) if sent else [])
    out = bytearray()
    for line, text in zip(lines, texts):
        line = line[:-1] if line.endswith(b"\r") else line
        out += line if text is None else spliced(line, next(notes))
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
