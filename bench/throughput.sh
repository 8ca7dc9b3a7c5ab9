#!/usr/bin/env bash
# End-to-end throughput of oddity against the parse-only reference, measured in the same run.
#
#   bench/throughput.sh [EVENTS ...]        default: 1000000 10000000
#
# For each size it generates a CloudTrail stream with the repository's generator (seed 7, cached
# under target/bench/), and a trimmed copy of ~1.3 KB per event (responseElements and other
# blocks oddity does not read removed), then runs on each:
#   - parse-reference: serde_json::Value per line, the same fields, a constant annotation;
#   - oddity: the real binary and embedded plugin, default settings, output to /dev/null
#     (on two cores or more it stages: a second plugin instance reads the observations);
#   - parse-reference-1-core and oddity-1-core: the same pinned to one core with taskset
#     (oddity then runs one plugin instance).
# Each is run ROUNDS times (default 3), alternating, and the median round is printed: events/s,
# MB/s, peak RSS, and oddity's ratio to the reference (oddity-1-core's to the pinned reference);
# then the state file's size and save/restore time of a model at its node cap. Numbers, not a
# pass/fail test.
set -euo pipefail
cd "$(dirname "$0")/.."

sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(1000000 10000000)

cargo build --release -q -p oddity -p oddity-bench -p oddity-cloudtrail-gen
bin=target/release
dir=target/bench
mkdir -p "$dir"

# Compile the plugin into the cache once: a fresh build's first run compiles it (about a second,
# and Cranelift's memory), which is start-up, measured below, not throughput.
echo '{"eventName":"warm-up"}' | $bin/oddity -q > /dev/null 2>&1 || true
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(free -g | awk '/Mem:/ {print $2}') GiB"
echo "oddity $($bin/oddity --version | cut -d' ' -f2), $(rustc --version)"
printf '%-10s %-8s %-24s %10s %9s %9s %8s\n' events bytes/ev program events/s MB/s peakRSS ratio

run() { # label file command...
    local file=$1; shift
    local t0 t1
    t0=$(date +%s.%N)
    /usr/bin/time -f '%M' -o "$dir/rss" "$@" < "$file" > /dev/null 2>/dev/null
    t1=$(date +%s.%N)
    echo "$(echo "$t1 - $t0" | bc -l) $(tail -1 "$dir/rss")"
}

for n in "${sizes[@]}"; do
    full=$dir/events-$n.jsonl
    trim=$dir/events-$n-trim.jsonl
    [ -s "$full" ] || $bin/cloudtrail-gen --seed 7 --events "$n" --out "$full" 2>/dev/null
    [ -s "$trim" ] || $bin/trim-events < "$full" > "$trim"
    # Streams above 2M events are tens of GB: measured, then deleted (KEEP=1 keeps them).
    big=$(( n > 2000000 ))
    for file in "$trim" "$full"; do
        bytes=$(stat -c %s "$file")
        per=$((bytes / n))
        # ROUNDS rounds, the programs alternating within each, so that a change in this shared
        # machine's speed during the run touches all of them alike; each row is the median
        # round's elapsed time (and that round's peak RSS).
        declare -A times=()
        for _ in $(seq "${ROUNDS:-3}"); do
            times[parse-reference]+="$(run "$file" $bin/parse-reference)"$'\n'
            times[oddity]+="$(run "$file" $bin/oddity -q)"$'\n'
            # Pinned to one core: oddity sees one CPU and does not stage (one plugin instance);
            # its ratio is to the reference pinned to the same core.
            if command -v taskset > /dev/null; then
                times[parse-reference-1-core]+="$(run "$file" taskset -c 0 $bin/parse-reference)"$'\n'
                times[oddity-1-core]+="$(run "$file" taskset -c 0 $bin/oddity -q)"$'\n'
            fi
        done
        declare -A med=()
        for p in parse-reference parse-reference-1-core oddity oddity-1-core; do
            [ -n "${times[$p]:-}" ] || continue
            med[$p]=$(printf '%s' "${times[$p]}" | sort -g | awk '{a[NR] = $0} END {print a[int((NR + 1) / 2)]}')
            set -- ${med[$p]}
            case $p in
                oddity) ratio=$(printf '%.2f' "$(echo "${med[parse-reference]%% *} / $1" | bc -l)") ;;
                oddity-1-core) ratio=$(printf '%.2f' "$(echo "${med[parse-reference-1-core]%% *} / $1" | bc -l)") ;;
                *) ratio=- ;;
            esac
            printf '%-10s %-8s %-24s %10.0f %9.1f %7.0fMB %8s\n' "$n" "$per" "$p" "$(echo "$n / $1" | bc -l)" \
                "$(echo "$bytes / $1 / 1000000" | bc -l)" "$(echo "$2 / 1024" | bc -l)" "$ratio"
        done
        unset times med
    done
    # A model at the node cap: every event with its own user agent (a million distinct agents),
    # then the snapshot's size and the time to restore and save it.
    uniq=$dir/events-$n-unique.jsonl
    if [ "$big" = 1 ] && [ -z "${KEEP:-}" ]; then rm -f "$full"; fi
    [ -s "$uniq" ] || $bin/trim-events --unique-agents < "$trim" > "$uniq"
    if [ "$big" = 1 ] && [ -z "${KEEP:-}" ]; then rm -f "$trim"; fi
    state=$dir/state-$n.snap
    rm -f "$state"
    read -r u_s u_rss <<< "$(run "$uniq" $bin/oddity -q --state "$state")"
    printf '%-10s %-8s %-24s %10.0f %9s %7.0fMB %8s   (a distinct user agent per event; node cap reached)\n' "$n" "$(( $(stat -c %s "$uniq") / n ))" oddity "$(echo "$n / $u_s" | bc -l)" - "$(echo "$u_rss / 1024" | bc -l)" -
    t0=$(date +%s.%N)
    $bin/oddity -q --state "$state" < /dev/null > /dev/null   # restore, then save at the end
    t1=$(date +%s.%N)
    echo "  model at the cap: snapshot $(( $(stat -c %s "$state") / 1000000 )) MB; start-up + restore + save: $(printf '%.3f' "$(echo "$t1 - $t0" | bc -l)") s"
    if [ "$big" = 1 ] && [ -z "${KEEP:-}" ]; then rm -f "$uniq"; fi
done
echo "start-up to the first scored event (warm cache):"
line='{"eventTime":"2024-03-04T09:15:02Z","userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::1:user/a"},"eventSource":"s3.amazonaws.com","eventName":"ListBuckets"}'
for i in 1 2 3; do
    t0=$(date +%s.%N); echo "$line" | $bin/oddity -q > /dev/null; t1=$(date +%s.%N)
    printf '  %.1f ms\n' "$(echo "($t1 - $t0) * 1000" | bc -l)"
done
