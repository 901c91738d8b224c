# Counts on the host what the guest's logforward delivered: every numbered
# line, from the right app and host.
set -eu
R=$VMTEST_WORK/received.log
[ -f "$R" ] || { echo "nothing received"; exit 1; }
python3 - "$R" <<'PY'
import sys
seen, dups, bad = set(), 0, 0
done = False
for line in open(sys.argv[1], errors="replace"):
    parts = line.rstrip("\n").split(" ")
    if parts[:2] != ["numbers.out", "vmtest"]:
        bad += 1
        continue
    if parts[2:] == ["done", "5000"]:
        done = True
        continue
    n = int(parts[3])
    if n in seen:
        dups += 1
    seen.add(n)
missing = [n for n in range(1, 5001) if n not in seen]
print(f"host check: {len(seen)} distinct numbered lines, {dups} repeated (resent windows), {bad} other lines, done line {'seen' if done else 'missing'}")
if missing or not done or bad:
    sys.exit(f"missing {len(missing)} lines, first {missing[:5]}")
PY
