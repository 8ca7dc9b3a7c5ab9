#!/usr/bin/env bash
# Soak: millions of generated CloudTrail events through the release binary with frequent
# saves, in bounded memory. Prints events in and out (they must be equal), events/s, resident
# memory over the run, the model's size and pruning, and the snapshot's size. A benchmark that
# prints numbers, not a test: it takes minutes and several GB of temporary disk is NOT needed
# (everything streams through pipes).
#
#   bench/soak.sh [EVENTS]                # default 3,000,000; both variants
#   SOAK_VARIANTS=unique-agents bench/soak.sh 1000000
#
# Variants:
#   plain          the generator's stream, default engine settings (max-nodes 1,000,000)
#   unique-agents  every userAgent rewritten to a distinct product name (one new agent per
#                  event: millions of distinct user agents), with engine.max-nodes = 200,000,
#                  so that pruning runs all the time
set -euo pipefail
cd "$(dirname "$0")/.."

EVENTS=${1:-3000000}
VARIANTS=${SOAK_VARIANTS:-"plain unique-agents"}
SAVE_EVERY=${SOAK_SAVE_EVERY:-100000}

cargo build --release -q -p oddity -p oddity-cloudtrail-gen
ODDITY=$PWD/target/release/oddity
GEN=$PWD/target/release/cloudtrail-gen

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

# A distinct user agent for every event: the line number in letters as the product name
# (digits would be masked by the `ua-family` normalisation and fold into one family).
unique_agents() {
    # Perl's string increment counts a, b, ..., z, aa, ab...: cheap, and letters only.
    perl -pe 'BEGIN { $n = "a" } s/"userAgent":"/"userAgent":"soak$n\/1.0 /; $n++'
}

rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null || true; }

soak() {
    local variant=$1 dir="$WORK/$1"
    mkdir -p "$dir"
    local config="$dir/oddity.toml"
    : > "$config"
    if [ "$variant" = unique-agents ]; then
        printf '[engine]\nmax-nodes = 200000\n' > "$config"
    fi
    mkfifo "$dir/in" "$dir/out"
    wc -l < "$dir/out" > "$dir/out.count" &
    local counter=$!
    if [ "$variant" = unique-agents ]; then
        "$GEN" --events "$EVENTS" --out - | unique_agents | tee >(wc -l > "$dir/in.count") > "$dir/in" &
    else
        "$GEN" --events "$EVENTS" --out - | tee >(wc -l > "$dir/in.count") > "$dir/in" &
    fi
    local start
    start=$(date +%s.%N)
    "$ODDITY" -v -c "$config" --state "$dir/model.snap" --save-every-events "$SAVE_EVERY" \
        --save-every 0 -o "$dir/out" "$dir/in" 2> "$dir/stderr" &
    local pid=$!
    : > "$dir/rss"
    while kill -0 "$pid" 2>/dev/null; do
        rss=$(rss_kib "$pid")
        [ -n "$rss" ] && echo "$rss" >> "$dir/rss"
        sleep 1
    done
    wait "$pid" || { echo "oddity failed:"; cat "$dir/stderr"; return 1; }
    local end
    end=$(date +%s.%N)
    wait "$counter"
    sleep 1 # the input counter's process substitution
    local in out
    in=$(cat "$dir/in.count")
    out=$(cat "$dir/out.count")
    echo "== $variant: $EVENTS events, save every $SAVE_EVERY events"
    echo "events in: $in, out: $out $([ "$in" = "$out" ] && echo '(equal)' || echo '(DIFFERENT)')"
    awk -v n="$in" -v s="$start" -v e="$end" 'BEGIN { printf "elapsed: %.1f s, %.0f events/s\n", e - s, n / (e - s) }'
    awk '{ v[NR] = $1; if ($1 > max) max = $1 }
        function at(q,   i) { i = int(NR * q); if (i < 1) i = 1; return v[i] / 1024 }
        END {
            if (NR == 0) { print "no RSS samples"; exit }
            printf "RSS (MiB) at 25/50/75/100 %% of the run: %.0f / %.0f / %.0f / %.0f (max %.0f, %d samples)\n",
                at(0.25), at(0.5), at(0.75), at(1), max / 1024, NR
        }' "$dir/rss"
    echo "snapshot: $(stat -c %s "$dir/model.snap") bytes"
    # With -v the run logs the model's size at its end.
    grep -E 'the model at the end' "$dir/stderr" | sed 's/^ *INFO */model: /' || true
    grep -vE ' INFO ' "$dir/stderr" | tail -n 3
}

for v in $VARIANTS; do
    soak "$v"
done
