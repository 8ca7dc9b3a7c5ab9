#!/usr/bin/env node
// Scores a file of JSON lines with oddity's WebAssembly component in Node.js (transpiled to
// JavaScript by jco), and writes the annotated lines to standard output: byte for byte what the
// native filter `oddity` writes for the same file with its default settings (built-in profile
// `cloudtrail`, key `novelty`, batches of 256 events).
//
//   node score.mjs [--transpiled DIR] oddity.wasm events.jsonl > scored.jsonl
//
// The component comes from `oddity plugin export -o oddity.wasm`. It is transpiled into DIR
// (default `transpiled/` beside this script) on first use, and again when the component changes.
// See README.md beside this file.

import { createHash } from "node:crypto";
import { createReadStream, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseArgs } from "node:util";

import * as cli from "@bytecodealliance/preview2-shim/cli";
import * as io from "@bytecodealliance/preview2-shim/io";

// What the native filter passes by default: the configuration (the built-in CloudTrail
// profile), the output key (as a JSON string) and events per call.
const CONFIG = 'profile = "cloudtrail"\n';
const KEY = Buffer.from(JSON.stringify("novelty"));
const BATCH = 256;
const NEWLINE = 0x0a;
const CR = 0x0d;
const OPEN = 0x7b; // {
const CLOSE = 0x7d; // }
const BOM = Buffer.from([0xef, 0xbb, 0xbf]);
// Rust's `u8::is_ascii_whitespace`: space, tab, line feed, form feed, carriage return.
const WHITESPACE = new Set([0x20, 0x09, 0x0a, 0x0c, 0x0d]);

/** The transpiled component's module, transpiling `wasmPath` into `dir` when it changed. */
async function transpiled(wasmPath, dir) {
  const wasm = readFileSync(wasmPath);
  const digest = createHash("sha256").update(wasm).digest("hex");
  const stamp = join(dir, "component.sha256");
  if (!existsSync(stamp) || readFileSync(stamp, "utf8") !== digest) {
    const { transpile } = await import("@bytecodealliance/jco");
    const { files } = await transpile(wasm, {
      name: "oddity",
      instantiation: "sync",
      noTypescript: true,
      quiet: true,
    });
    for (const [name, bytes] of Object.entries(files)) {
      mkdirSync(dirname(join(dir, name)), { recursive: true });
      writeFileSync(join(dir, name), bytes);
    }
    writeFileSync(stamp, digest);
  }
  return import(pathToFileURL(join(dir, "oddity.js")).href);
}

/**
 * What the component imports, as the native host provides it: no environment variables,
 * standard streams (Rust's standard library links them; the engine writes nothing), and a
 * fixed insecure seed (it must return two u64 values, or `create` traps).
 */
function hostImports() {
  return {
    "wasi:cli/environment": { getEnvironment: () => [] },
    "wasi:cli/exit": cli.exit,
    "wasi:cli/stdin": cli.stdin,
    "wasi:cli/stdout": cli.stdout,
    "wasi:cli/stderr": cli.stderr,
    "wasi:cli/terminal-input": cli.terminalInput,
    "wasi:cli/terminal-output": cli.terminalOutput,
    "wasi:cli/terminal-stdin": cli.terminalStdin,
    "wasi:cli/terminal-stdout": cli.terminalStdout,
    "wasi:cli/terminal-stderr": cli.terminalStderr,
    "wasi:io/error": io.error,
    "wasi:io/poll": io.poll,
    "wasi:io/streams": io.streams,
    "wasi:random/insecure-seed": { insecureSeed: () => [0n, 0n] },
  };
}

/** A fresh engine of the component at `wasmPath`, transpiled into `dir`. */
async function loadEngine(wasmPath, dir) {
  const { instantiate } = await transpiled(wasmPath, dir);
  const root = instantiate(
    (path) => new WebAssembly.Module(readFileSync(join(dir, path))),
    hostImports(),
  );
  try {
    return root.detector.Engine.create(CONFIG);
  } catch (e) {
    throw new Error(`the component refused the configuration: ${JSON.stringify(e.payload ?? e.message)}`);
  }
}

const isBlank = (line) => line.every((b) => WHITESPACE.has(b));

/**
 * `line` with `note` as its top-level object's last member `novelty`, or `line` as it is when
 * the note is empty or the line is not an object that ends in `}` (as the native host).
 */
function spliced(line, note) {
  let first = 0;
  let last = line.length - 1;
  while (first <= last && WHITESPACE.has(line[first])) first++;
  while (last >= first && WHITESPACE.has(line[last])) last--;
  if (note.length === 0 || first >= last || line[first] !== OPEN || line[last] !== CLOSE) {
    return line;
  }
  const empty = isBlank(line.subarray(first + 1, last));
  return Buffer.concat([
    line.subarray(0, last),
    empty ? Buffer.alloc(0) : Buffer.from(","),
    KEY,
    Buffer.from(":"),
    note,
    line.subarray(last),
  ]);
}

/** Scores, then learns, a batch of `count` `\n`-terminated lines: one note per line. */
function judge(engine, lines, count) {
  let judged;
  try {
    judged = engine.judge({ tag: "lines", val: lines });
  } catch (e) {
    // jco returns a `result`'s `ok` value and throws its `err` value as `e.payload`.
    throw new Error(`the component refused a batch: ${JSON.stringify(e.payload ?? e.message)}`);
  }
  const notes = Buffer.from(judged.notes, "utf8");
  const out = [];
  let start = 0;
  for (let end = notes.indexOf(NEWLINE); end !== -1; end = notes.indexOf(NEWLINE, start)) {
    out.push(notes.subarray(start, end));
    start = end + 1;
  }
  if (out.length !== count || start !== notes.length) {
    throw new Error(`${out.length} notes for a batch of ${count} lines`);
  }
  return out;
}

/**
 * The output of a batch of input lines (each without its `\n`): one `\n`-terminated line per
 * line, in order. Like the native filter, a byte-order mark that begins a line is dropped, a
 * blank line is not sent, and a line is written without the `\r` of a `\r\n` ending (the
 * component ignores that `\r` too).
 */
function scoreBatch(engine, batch) {
  const lines = batch.map((l) =>
    l.subarray(0, BOM.length).equals(BOM) ? l.subarray(BOM.length) : l,
  );
  const sent = lines.filter((l) => !isBlank(l));
  const input = Buffer.concat(sent.flatMap((l) => [l, Buffer.of(NEWLINE)]));
  const notes = sent.length > 0 ? judge(engine, input, sent.length) : [];
  let next = 0;
  return Buffer.concat(
    lines.flatMap((l) => {
      const bare = l.at(-1) === CR ? l.subarray(0, -1) : l;
      return [isBlank(l) ? bare : spliced(bare, notes[next++]), Buffer.of(NEWLINE)];
    }),
  );
}

/** The lines of a byte stream, without their `\n`; a last line without one counts. */
async function* linesOf(stream) {
  let rest = Buffer.alloc(0);
  for await (const chunk of stream) {
    const data = rest.length > 0 ? Buffer.concat([rest, chunk]) : chunk;
    let start = 0;
    for (let end = data.indexOf(NEWLINE); end !== -1; end = data.indexOf(NEWLINE, start)) {
      yield data.subarray(start, end);
      start = end + 1;
    }
    rest = data.subarray(start);
  }
  if (rest.length > 0) {
    yield rest;
  }
}

/** Writes `bytes` to standard output, waiting when the pipe is full. */
async function write(bytes) {
  if (!process.stdout.write(bytes)) {
    await new Promise((done) => process.stdout.once("drain", done));
  }
}

async function main() {
  const here = dirname(fileURLToPath(import.meta.url));
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { transpiled: { type: "string", default: join(here, "transpiled") } },
  });
  if (positionals.length !== 2) {
    console.error("usage: node score.mjs [--transpiled DIR] oddity.wasm events.jsonl");
    process.exit(1);
  }
  const [wasm, input] = positionals;
  const started = performance.now();
  const engine = await loadEngine(wasm, resolve(values.transpiled));
  const loaded = performance.now();
  const source = input === "-" ? process.stdin : createReadStream(input);
  let events = 0;
  let batch = [];
  for await (const line of linesOf(source)) {
    batch.push(line);
    if (batch.length === BATCH) {
      await write(scoreBatch(engine, batch));
      events += batch.length;
      batch = [];
    }
  }
  if (batch.length > 0) {
    await write(scoreBatch(engine, batch));
    events += batch.length;
  }
  const seconds = (performance.now() - loaded) / 1000;
  console.error(
    `score.mjs: ${events} events in ${seconds.toFixed(2)} s, ${Math.round(events / Math.max(seconds, 1e-9))} events/s ` +
      `(loading the component: ${((loaded - started) / 1000).toFixed(2)} s)`,
  );
}

main().catch((e) => {
  console.error(`score.mjs: ${e.message}`);
  process.exit(1);
});
