#!/bin/sh
# Extract the photographs among Enlightenment's desktop backgrounds (Debian: enlightenment-data,
# BSD-2-clause) as PNG files that `framescore data` can read: OUT/<name>.png, 720 pixels high.
# The backgrounds are Edje files; edje_decc (Debian: libedje-bin) unpacks them.
# Usage: sh models/cards/enlightenment-photos.sh OUT    (about 8 minutes: every size is unpacked)
set -eu
out=${1:?usage: enlightenment-photos.sh OUT}
src=/usr/share/enlightenment/data/backgrounds
command -v edje_decc >/dev/null || { echo "edje_decc not found (apt-get install libedje-bin)" >&2; exit 2; }
[ -d "$src" ] || { echo "$src not found (apt-get install enlightenment-data)" >&2; exit 2; }
mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# photographs only: Dunes, Flat-Fan, Sunset-Hills and the patterns are illustrations
for name in Bamboo Foggy-Trees God-Rays Green-Maple Lichen-Branches Mountain Peaks Red-Maple \
            Sea-of-Lanterns Snow-Trees Spruce-Needles Sunset-Clouds White-Flower Yellow-Flower; do
    edje_decc "$src/$name.edj" -output "$tmp/$name" >/dev/null 2>&1 \
        || { echo "$name: edje_decc failed" >&2; exit 2; }
    set -- "$tmp/$name"/img-*x720.png
    [ -f "$1" ] || { echo "$name: no 720-pixel image inside" >&2; exit 2; }
    cp "$1" "$out/$name.png"
done
echo "$(ls "$out" | wc -l) photographs in $out"
