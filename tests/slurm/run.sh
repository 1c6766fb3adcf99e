#!/usr/bin/env bash
# End-to-end test of the cluster path on a one-node SLURM cluster on
# localhost: installs Debian's slurm-wlm and munge if needed (root), starts
# munged, slurmctld and slurmd, then
#   1. `make slurm ... WAIT=1` with 5 shards packed into 2 array tasks
#      (MAX_ARRAY=2); the merged tables must equal a local run's;
#   2. a run where one shard cannot start: `make slurm` must fail visibly,
#      and `make slurm-resume` must resubmit only that shard and merge.
# Stops the daemons by their PIDs at the end. Called by `make test-slurm`.
set -euo pipefail
cd "$(dirname "$0")/../.."
start=$(date +%s)
[ "$(id -u)" = 0 ] || { echo "tests/slurm/run.sh needs root: it installs and starts SLURM" >&2; exit 1; }
if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null
fi
py=.venv/bin/python
# The binary `make test` has built already (make test-slurm passes BIN): CI
# builds one profile.
bin=${BIN:-target/release/spikesweep}
work=$(mktemp -d /tmp/spikesweep-slurm.XXXXXX)
spec=tests/slurm/spec.toml

stop_daemons() {
    for f in "$work/slurmd.pid" "$work/slurmctld.pid" /run/munge/munged.pid; do
        [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null || true
    done
}
trap stop_daemons EXIT

echo "== munge"
mkdir -p /etc/munge /var/log/munge /run/munge /var/lib/munge
[ -s /etc/munge/munge.key ] || dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key status=none
chown -R munge:munge /etc/munge /var/log/munge /run/munge /var/lib/munge
chmod 700 /etc/munge && chmod 400 /etc/munge/munge.key
[ -f /run/munge/munged.pid ] && kill "$(cat /run/munge/munged.pid)" 2>/dev/null && sleep 1 || true
runuser -u munge -- munged --force

echo "== slurm"
mem_mb=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 1024 ))
mkdir -p /etc/slurm "$work/state" "$work/spool"
cat > /etc/slurm/slurm.conf <<CONF
ClusterName=spikesweep-ci
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=512
MinJobAge=4
ReturnToService=2
SchedulerType=sched/backfill
MpiDefault=none
StateSaveLocation=$work/state
SlurmdSpoolDir=$work/spool
SlurmctldPidFile=$work/slurmctld.pid
SlurmdPidFile=$work/slurmd.pid
SlurmctldLogFile=$work/slurmctld.log
SlurmdLogFile=$work/slurmd.log
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$(nproc) RealMemory=$mem_mb State=UNKNOWN
PartitionName=ci Nodes=localhost Default=YES MaxTime=INFINITE State=UP
CONF
slurmctld -i
slurmd -N localhost
for _ in $(seq 1 60); do
    sinfo -h -o %t 2>/dev/null | grep -q idle && break
    sleep 1
done
sinfo -h -o %t | grep -q idle || { echo "SLURM node did not come up"; cat "$work"/slurm*.log; exit 1; }
sinfo

echo "== 1. make slurm: 5 shards packed into 2 array tasks (MAX_ARRAY=2), merged; equal to a local run"
"$bin" run "$spec" --out "$work/local" --quiet > /dev/null
out1=$work/slurm1
make --no-print-directory slurm SPEC="$spec" OUT="$out1" SHARDS=5 MAX_ARRAY=2 WAIT=1 | tee "$work/submit1.txt"
grep -q "5 shards in 2 tasks (3 per task)" "$work/submit1.txt"
$py tests/slurm/compare.py "$work/local" "$out1"

echo "== 2. a failing shard is visible; slurm-resume reruns only it"
out2=$work/slurm2
mkdir -p "$out2/shards"
touch "$out2/shards/2-of-3"   # a file where shard 2's directory must go: that task fails
if make --no-print-directory slurm SPEC="$spec" OUT="$out2" SHARDS=3 WAIT=1; then
    echo "make slurm succeeded although shard 2 could not run" >&2; exit 1
fi
[ ! -f "$out2/trials.parquet" ] || { echo "merged despite a failed task" >&2; exit 1; }
grep -l "shards/2-of-3" "$out2"/.slurm/*.log > /dev/null
rm "$out2/shards/2-of-3"
make --no-print-directory slurm-resume SPEC="$spec" OUT="$out2" SHARDS=3 WAIT=1 | tee "$work/resume2.txt"
grep -q "1 shards in 1 tasks" "$work/resume2.txt"
$py tests/slurm/compare.py "$work/local" "$out2"

echo "SLURM end-to-end test passed in $(( $(date +%s) - start )) s"
