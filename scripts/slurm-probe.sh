#!/usr/bin/env bash
# Probe every node of a Slurm allocation with canirun: one hardware report per node,
# then plan models across them. Zero dependencies beyond Slurm and canirun itself.
#
#   salloc -N 4 --gres=gpu:8 scripts/slurm-probe.sh reports/     # or inside sbatch
#   canirun check "llama 3.1 405b" --cluster reports/
#
# Ask for the GPUs (--gres) in the allocation: with ConstrainDevices=yes a job step that
# holds no GRES cannot see them. srun's %N is the node's name; canirun writes nothing
# itself here, srun keeps each node's stdout in its own file.
set -euo pipefail
out="${1:-reports}"
mkdir -p "$out"
srun --ntasks-per-node=1 --output="$out/%N.json" canirun hardware --json
echo "one report per node in $out/; next: canirun check MODEL --cluster $out/" >&2
