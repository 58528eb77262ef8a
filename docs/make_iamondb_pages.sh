#!/usr/bin/env bash
# The README's pages of the shipped IAM-OnDB model: one paragraph at two
# biases in three of its built-in styles, made with hwtf's own command.
#     bash docs/make_iamondb_pages.sh
set -euo pipefail
cd "$(dirname "$0")/.."
text="Handwriting synthesis after Alex Graves: a recurrent network reads the text through a soft window and writes it one pen movement at a time, in a hand it learned from people writing on a whiteboard."
for style in 0 1 2; do
  for bias in 0.5 1; do
    python -m hwtf.sample --model=saved_models/iamondb-synthesis --text="$text" --width=60 \
      --style="$style" --bias="$bias" --seed=1 --out="docs/iamondb_style${style}_bias${bias}.png"
  done
done
