#!/usr/bin/env bash
# Regenerates tests/fixtures/download/: small MATH-style tar archives (the layout of the original
# MATH.tar: MATH/<split>/<subject>/<n>.json with problem, level, type, solution) in ustar and pax
# formats, used by tests/test_download_convert.c. Needs GNU tar.
set -euo pipefail
cd "$(dirname "$0")/.."
out=tests/fixtures/download
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mk() { mkdir -p "$(dirname "$tmp/$1")"; printf '%s' "$2" > "$tmp/$1"; }
mk MATH/train/algebra/1.json '{"problem": "What is $1+1$?", "level": "Level 1", "type": "Algebra", "solution": "We add: $1+1=\\boxed{2}$."}'
mk MATH/train/algebra/10.json '{"problem": "Solve $x^2=4$, $x>0$.", "level": "Level 2", "type": "Algebra", "solution": "So $x = \\boxed{2}$, not $\\boxed{-2}$... final: $\\boxed{\\frac{4}{2}}$"}'
mk MATH/train/algebra/2.json '{"problem": "Find the set.", "level": "Level 3", "type": "Algebra", "solution": "It is $\\boxed{\\{1,2\\}}$."}'
mk MATH/train/geometry/5.json '{"problem": "Area of a unit square?", "level": "Level 1", "type": "Geometry", "solution": "The area is $\\fbox{1}$."}'
mk MATH/train/prealgebra/3.json '{"problem": "No boxed answer here.", "level": "Level 1", "type": "Prealgebra", "solution": "The answer is 7."}'
mk MATH/test/algebra/7.json '{"problem": "Compute $2\\cdot 3$.", "level": "Level 1", "type": "Algebra", "solution": "$2\\cdot 3 = \\boxed 6$."}'
mk MATH/README.txt 'not a problem'
long=MATH/train/counting_and_probability/a_very_long_directory_name_that_pushes_the_member_path_past_one_hundred_bytes
mk "$long/4.json" '{"problem": "How many ways?", "level": "Level 4", "type": "Counting & Probability", "solution": "There are $\\boxed{24}$ ways."}'
(cd "$tmp" && tar --format=ustar --sort=name --owner=0 --group=0 --mtime=@0 -cf math_ustar.tar MATH/train/algebra MATH/train/geometry MATH/train/prealgebra MATH/test MATH/README.txt)
(cd "$tmp" && tar --format=pax --sort=name --owner=0 --group=0 --mtime=@0 --pax-option=delete=atime,delete=ctime -cf math_pax.tar MATH)
(cd "$tmp" && tar --format=gnu --sort=name --owner=0 --group=0 --mtime=@0 -cf math_gnu.tar MATH)
mkdir -p "$out"
cp "$tmp"/math_ustar.tar "$tmp"/math_pax.tar "$tmp"/math_gnu.tar "$out"/
echo "wrote $out/math_{ustar,pax,gnu}.tar"
