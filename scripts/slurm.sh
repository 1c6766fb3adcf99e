#!/usr/bin/env bash
# Submits a spec as a SLURM job array of shards plus a merge job that runs
# only if every array task succeeds (afterok). Called by `make slurm` and
# `make slurm-resume`; see `make help` and README "Running on a cluster".
#
#   scripts/slurm.sh submit|resume
# Environment: SPEC OUT SHARDS [MAX_ARRAY PARTITION TIME MEM CPUS SBATCH_ARGS WAIT BIN]
set -euo pipefail
mode=${1:?usage: slurm.sh submit|resume}
: "${SPEC:?SPEC=path/to/spec.toml}" "${OUT:?OUT=output directory}" "${SHARDS:?SHARDS=number of shards}"
MAX_ARRAY=${MAX_ARRAY:-1000}
CPUS=${CPUS:-1}
BIN=$(realpath "${BIN:-target/release/spikesweep}")
here=$(cd "$(dirname "$0")" && pwd)
command -v sbatch >/dev/null || { echo "error: sbatch not found: run this on a SLURM login node" >&2; exit 2; }
[ "$SHARDS" -ge 1 ] 2>/dev/null || { echo "error: SHARDS=$SHARDS must be a whole number >= 1" >&2; exit 2; }
[ "$MAX_ARRAY" -ge 1 ] 2>/dev/null || { echo "error: MAX_ARRAY=$MAX_ARRAY must be a whole number >= 1" >&2; exit 2; }

# Validate before submitting anything: a bad spec must not become 1000 failed tasks.
"$BIN" plan "$SPEC" >/dev/null

# Every task reads one frozen copy of the spec, never the file the user may
# edit while jobs wait in the queue.
jobdir=$OUT/.slurm
mkdir -p "$jobdir"
frozen=$jobdir/spec.toml
if [ "$mode" = submit ]; then
    if [ -f "$frozen" ] && ! cmp -s "$SPEC" "$frozen"; then
        echo "error: $OUT was submitted with a different spec ($frozen); use another OUT or remove it" >&2; exit 2
    fi
    cp "$SPEC" "$frozen"
    todo=$(seq 0 $((SHARDS - 1)))
else
    [ -f "$frozen" ] || { echo "error: $frozen missing: nothing was submitted to $OUT" >&2; exit 2; }
    todo=""
    for k in $(seq 0 $((SHARDS - 1))); do
        [ -f "$OUT/shards/$k-of-$SHARDS/manifest.toml" ] || todo="$todo $k"
    done
    if [ -z "$todo" ]; then
        echo "all $SHARDS shards are complete; merging"
        exec "$BIN" merge "$OUT"
    fi
fi

# Pack shards into at most MAX_ARRAY tasks (the cluster's MaxArraySize).
set -- $todo
count=$#
per_task=$(( (count + MAX_ARRAY - 1) / MAX_ARRAY ))
taskfile=$jobdir/tasks-$(date +%Y%m%d-%H%M%S)-$$.txt
: > "$taskfile"
while [ $# -gt 0 ]; do
    line=""
    for _ in $(seq 1 "$per_task"); do
        [ $# -gt 0 ] || break
        line="$line $1"; shift
    done
    echo "${line# }" >> "$taskfile"
done
tasks=$(wc -l < "$taskfile")

opts=(--job-name="spikesweep-$(basename "$OUT")" --cpus-per-task="$CPUS")
[ -n "${PARTITION:-}" ] && opts+=(--partition="$PARTITION")
[ -n "${TIME:-}" ] && opts+=(--time="$TIME")
[ -n "${MEM:-}" ] && opts+=(--mem="$MEM")
# shellcheck disable=SC2206
extra=(${SBATCH_ARGS:-})

array_cmd=(sbatch --parsable "${opts[@]}" "${extra[@]}" --array="0-$((tasks - 1))" --output="$jobdir/%A_%a.log")
task=("$here/slurm_task.sh" "$BIN" "$frozen" "$OUT" "$SHARDS" "$taskfile")
merge_opts=(--parsable --job-name="spikesweep-merge-$(basename "$OUT")" --kill-on-invalid-dep=yes
    --output="$jobdir/merge-%j.log")
[ -n "${PARTITION:-}" ] && merge_opts+=(--partition="$PARTITION")
[ -n "${TIME:-}" ] && merge_opts+=(--time="$TIME")
# A manifest in OUT is what the merge writes last: a stale one must not
# pass for this submission's result.
rm -f "$OUT/manifest.toml"

if [ -z "${WAIT:-}" ]; then
    array=$("${array_cmd[@]}" "${task[@]}")
    array=${array%%;*}
    echo "submitted array job $array: $count shards in $tasks tasks ($per_task per task), logs in $jobdir/"
    merge=$(sbatch "${merge_opts[@]}" --dependency="afterok:$array" "${extra[@]}" --wrap "\"$BIN\" merge \"$OUT\"")
    echo "submitted merge job ${merge%%;*} (runs after every task of $array succeeds); watch with: squeue -u \$USER"
    exit 0
fi

# WAIT=1: block until the array and the merge are done. `sbatch --wait`
# exits non-zero when any array task fails; it prints the job id first, so
# it runs in the background while the merge job is chained to that id.
idfile=$jobdir/array-$$.id
"${array_cmd[@]}" --wait "${task[@]}" > "$idfile" &
waiter=$!
for _ in $(seq 1 300); do [ -s "$idfile" ] && break; sleep 0.1; done
array=$(cut -d';' -f1 < "$idfile")
[ -n "$array" ] || { echo "error: sbatch did not return a job id" >&2; exit 1; }
echo "submitted array job $array: $count shards in $tasks tasks ($per_task per task), logs in $jobdir/"
merge=$(sbatch "${merge_opts[@]}" --dependency="afterok:$array" "${extra[@]}" --wrap "\"$BIN\" merge \"$OUT\"")
merge=${merge%%;*}
echo "waiting for array job $array, then merge job $merge..."
if ! wait "$waiter"; then
    echo "error: array job $array had failed tasks (logs: $jobdir/${array}_*.log); the merge was cancelled." >&2
    echo "Rerun only the unfinished shards with: make slurm-resume SPEC=$SPEC OUT=$OUT SHARDS=$SHARDS" >&2
    exit 1
fi
while squeue -h -j "$merge" 2>/dev/null | grep -q .; do sleep 1; done
if [ ! -f "$OUT/manifest.toml" ]; then
    echo "error: merge job $merge failed: see $jobdir/merge-$merge.log" >&2
    exit 1
fi
echo "merged into $OUT/"
