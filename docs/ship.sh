#!/usr/bin/env bash
# Shipping a step of the training campaign (issue 12, item 5), in two halves:
#
#   bash docs/ship.sh measure RUN WORK   # RUN: a training directory (runs/iamondb,
#                                        # or the committed checkpoints/iamondb)
#   # read WORK/*.log; ship only a step that reads better than the shipped one
#   bash docs/ship.sh install WORK       # WORK/export becomes saved_models/iamondb-synthesis
#
# `measure` copies RUN to WORK/run (RUN is not touched: a run training there
# goes on), trains it one step further in float32 and exports that step to
# WORK/export, as every ship has been exported (its styles are recorded by
# the export). Then it scores the export and, in the same sitting, the
# shipped model: the NLL on all of testset_v (the issue's must-show),
# legibility (`hwtf.evaluate --legibility`, 64 lines, seeds 0 and 1, one
# candidate and the CLI's four) and capitals (`docs/capitals_legibility.py`,
# bias 0.75, seeds 0 and 1). Each figure goes to its own log in WORK;
# SHIPPED=0 measures the export alone, SEEDS=0 at seed 0 alone. Nothing
# here is committed: WORK's logs print counts and rates only, and WORK/run
# holds the checkpoint's copy.
#
# `install` moves the export into saved_models/iamondb-synthesis, keeping its
# model card (README.md, to be updated by hand with the step, hours and NLL),
# and redraws what the README shows of the shipped model: the pages, the
# first command's seeds, primed best-of-N with its styles and with people's
# hands (logs in WORK), and the serving page's screenshots where Chromium is
# installed. It leaves the commit to you.
set -euo pipefail
for arg in "${@:2}"; do  # RUN and WORK as given, from where the command was run
  args+=("$(realpath -m "$arg")")
done
set -- "${1:-}" "${args[@]}"
cd "$(dirname "$0")/.."
# Refusals exit 2 with their reason; any other failure is a step's, whose
# messages went to WORK's logs.
trap 'rc=$?; [ $rc -eq 0 ] || [ $rc -eq 2 ] ||
  echo "docs/ship.sh: a step failed (exit $rc); see WORK/stderr.log and WORK/export.log" >&2' EXIT
DATA=${DATA:-../shared/data/iamondb.tar.xz}
PY=${PYTHON:-python}
SHIPPED_MODEL=saved_models/iamondb-synthesis

usage() {
  echo "usage: bash docs/ship.sh measure RUN WORK | install WORK" >&2
  exit 2
}

last_step() {  # the step a run in directory $1 resumes from (unpacking a packed checkpoint there)
  "$PY" -c 'import sys; from hwtf.train import run_checkpoints; p = run_checkpoints(sys.argv[1]); print(p[-1].rsplit("-", 1)[1] if p else "")' "$1" 2>/dev/null
}

measure_model() {  # MODEL NAME: legibility and capitals at seeds 0 and 1 into WORK/NAME_*.log
  local seed
  for seed in ${SEEDS:-0 1}; do
    "$PY" -m hwtf.evaluate --legibility --model="$1" --dataset=iamondb --data_dir="$DATA" \
      --legibility_lines=64 --biases=0,0.5,0.75,1 --candidates=1,4 --seed="$seed" 2>>"$WORK/stderr.log" \
      | tee "$WORK/$2_legibility_seed$seed.log"
    "$PY" docs/capitals_legibility.py --models="$1" --data_dir="$DATA" --bias=0.75 --candidates=1,4 \
      --seed="$seed" 2>>"$WORK/stderr.log" | tee "$WORK/$2_capitals_seed$seed.log"
  done
}

case "${1:-}" in
measure)
  [ $# -eq 3 ] || usage
  RUN=$2 WORK=$3
  mkdir -p "$WORK"
  [ ! -e "$WORK/export" ] || { echo "$WORK/export exists: measure into a new WORK" >&2; exit 2; }
  rm -rf "$WORK/run"
  cp -r "$RUN" "$WORK/run"
  step=$(last_step "$WORK/run")
  [ -n "$step" ] || { echo "$RUN: no checkpoint (ckpt-N or ckpt-N.packed.npz), not a training directory" >&2; exit 2; }
  echo "exporting step $((step + 1)) (one float32 step from $RUN's step $step) to $WORK/export"
  "$PY" -m hwtf.train --flagfile=flags/iamondb.cfg --precision=float32 --steps=$((step + 1)) \
    --eval_every=100000 --image_every=0 --data_dir="$DATA" --train_dir="$WORK/run" \
    --export_dir="$WORK/export" >"$WORK/export.log" 2>&1
  grep -E "resumed from|valid NLL|exported|style" "$WORK/export.log" || true
  models=("$WORK/export" new)
  [ "${SHIPPED:-1}" = 0 ] || models+=("$SHIPPED_MODEL" shipped)
  for ((i = 0; i < ${#models[@]}; i += 2)); do
    "$PY" -m hwtf.evaluate --model="${models[i]}" --dataset=iamondb --data_dir="$DATA" --split=testset_v \
      --json 2>>"$WORK/stderr.log" | tee "$WORK/${models[i + 1]}_nll.json"
  done
  for ((i = 0; i < ${#models[@]}; i += 2)); do
    measure_model "${models[i]}" "${models[i + 1]}"
  done
  echo "measured: $WORK/*.log and *_nll.json"
  ;;
install)
  [ $# -eq 2 ] || usage
  WORK=$2
  [ -f "$WORK/export/saved_model.pb" ] || { echo "$WORK/export: no saved_model.pb; run measure first" >&2; exit 2; }
  find "$SHIPPED_MODEL" -mindepth 1 -maxdepth 1 ! -name README.md -exec rm -rf {} +
  cp -r "$WORK/export/." "$SHIPPED_MODEL/"
  bash docs/make_iamondb_pages.sh
  "$PY" docs/make_hello_seeds.py
  "$PY" docs/primed_best_of_n.py 2>>"$WORK/stderr.log" | tee "$WORK/primed_styles.log"
  "$PY" docs/primed_best_of_n.py --hands=12 2>>"$WORK/stderr.log" | tee "$WORK/primed_hands.log"
  HWTF_SCREENSHOTS=docs HWTF_SERVE_MODEL="$SHIPPED_MODEL" "$PY" -m pytest -q -rs tests/test_serve_browser.py
  echo "installed: update $SHIPPED_MODEL/README.md and the README's shipped-model figures, then commit"
  ;;
*)
  usage
  ;;
esac
