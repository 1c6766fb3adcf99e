#!/usr/bin/env bash
# One SLURM array task: runs the shards listed on line SLURM_ARRAY_TASK_ID+1
# of TASKFILE, one after the other. Exits non-zero as soon as one fails, so
# SLURM marks the task FAILED and the merge job (afterok) does not run.
#
# usage (by scripts/slurm.sh, not by hand):
#   sbatch --array=0-(T-1) slurm_task.sh BIN SPEC OUT SHARDS TASKFILE
set -euo pipefail
bin=$1 spec=$2 out=$3 shards=$4 taskfile=$5
line=$(sed -n "$((SLURM_ARRAY_TASK_ID + 1))p" "$taskfile")
[ -n "$line" ] || { echo "no shards for task $SLURM_ARRAY_TASK_ID in $taskfile" >&2; exit 1; }
for k in $line; do
    echo "task $SLURM_ARRAY_TASK_ID: shard $k/$shards on $(hostname)"
    # --resume: a shard that was already finished is a no-op, a killed one continues.
    "$bin" run "$spec" --out "$out" --shard "$k/$shards" --resume --quiet --threads "${SLURM_CPUS_PER_TASK:-1}"
done
