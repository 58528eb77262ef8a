#!/usr/bin/env bash
# A stint of the training campaign on a lent GPU machine, which has JAX but
# no TensorFlow (README, "Training on a lent GPU"):
#
#   bash docs/gpu_stint.sh prepare        # here: the run's state and data to .gpu/
#   # the device tool's run, carry [".gpu"]:
#   #   PYTHONUNBUFFERED=1 python3 -m hwtf.jax_stint --state=.gpu --out=$OUT --minutes=8.4   (timeout_s 600)
#   bash docs/gpu_stint.sh next DIR       # here, while the machine is warm: DIR's state into .gpu/,
#                                         # for another call that trains on from it
#   bash docs/gpu_stint.sh finish DIR     # here: DIR (the call's files) becomes the run's next checkpoint
#   bash docs/gpu_stint.sh restore        # or, if the call failed: only put the index back
#
# A call carries at most 64 MiB of the working tree, and the committed
# checkpoint (55 MB) with the export (25 MB) already pass it, while .gpu/
# holds the weights again (34 MB for the 3x640 run, compressed), Adam's
# second moments as log8 codes (7.7 MB) and the training lines (14 MB):
# 56 MB, 59 with the rest of the tree, of the 67 MB (64 MiB). So `prepare` takes
# checkpoints/ and saved_models/ out of git's index (the files stay where
# they are) and `finish` puts them back: commit nothing in between. .gpu/
# holds IAM-OnDB's lines, which its licence forbids passing on; .gitignore
# keeps it out of git.
set -euo pipefail
cd "$(dirname "$0")/.."
RUN=${RUN:-runs/iamondb}
DATA=${DATA:-../shared/data/iamondb.tar.xz}
PY=${PYTHON:-python}
exclude=.git/info/exclude

carried() {  # what a call will carry: git's files (untracked ones too) and .gpu/
  local bytes
  bytes=$( (git ls-files -z --cached --others --exclude-standard; find .gpu -type f -print0) |
            du -cb --files0-from=- 2>/dev/null | tail -1 | cut -f1 || true)
  echo "the call carries $((bytes / 1048576)) MiB of its 64"
  [ "$bytes" -le $((64 * 1048576)) ] || echo "warning: over the 64 MiB a call carries; take more out of git's index" >&2
}

case "${1:-}" in
prepare)
  if [ ! -d "$RUN" ]; then  # the campaign's committed checkpoint, as a stint on this machine starts
    mkdir -p "$(dirname "$RUN")" && cp -r checkpoints/iamondb "$RUN"
  fi
  rm -rf .gpu
  "$PY" -m hwtf.stint_state export --flagfile=flags/iamondb.cfg --data_dir="$DATA" --train_dir="$RUN" --state=.gpu
  git rm -r -q --cached checkpoints saved_models
  printf '/checkpoints/\n/saved_models/\n' >>"$exclude"
  carried
  echo "ready: run 'PYTHONUNBUFFERED=1 python3 -m hwtf.jax_stint --state=.gpu --out=\$OUT --minutes=8.4' with carry [\".gpu\"];" \
       "then bash docs/gpu_stint.sh finish DIR"
  ;;
next)  # a warm machine's next call trains on from DIR, the last call's files
  [ -n "${2:-}" ] || { echo "usage: bash docs/gpu_stint.sh next DIR (the folder of the call's files)" >&2; exit 2; }
  [ -f "$2/meta.json" ] || { echo "$2: no meta.json, not a call's state" >&2; exit 2; }
  rm -f .gpu/*.npz .gpu/meta.json
  cp "$2"/*.npz "$2"/meta.json .gpu/
  # The call's saves are uncompressed (46 MB for 3x640, 3 more than prepare's),
  # and its moving average (9 MB more) would take what .gpu/ carries past 64
  # MiB: it stays behind, and the next call starts its own at the weights
  # (after its 2,000 or more updates at --ema_decay=0.998 this one would
  # weigh under 2% in it).
  rm -f .gpu/average*.npz
  step=$("$PY" -c 'import json, sys
meta = json.load(open(sys.argv[1]))
meta.pop("average_updates", None)
json.dump(meta, open(sys.argv[1], "w"), indent=1)
print(meta["step"])' .gpu/meta.json)
  carried
  echo "ready: the same call again trains on from step $step;" \
       "then bash docs/gpu_stint.sh finish with the last call's folder"
  ;;
restore)  # the index as it was, without importing (a call that failed)
  git reset -q -- checkpoints saved_models
  sed -i '\#^/checkpoints/$#d; \#^/saved_models/$#d' "$exclude"
  ;;
finish)
  [ -n "${2:-}" ] || { echo "usage: bash docs/gpu_stint.sh finish DIR (the folder of the call's files)" >&2; exit 2; }
  bash "$0" restore
  "$PY" -m hwtf.stint_state import --flagfile=flags/iamondb.cfg --data_dir="$DATA" --train_dir="$RUN" \
      --state="$2" --validate
  ;;
*)
  echo "usage: bash docs/gpu_stint.sh prepare | next DIR | finish DIR | restore" >&2
  exit 2
  ;;
esac
