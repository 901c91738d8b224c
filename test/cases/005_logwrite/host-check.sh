# After power-off: read the disk with debugfs and check that every numbered
# line is in /exact/numbers.out.log* exactly once, in order, and that
# LinuxKit's rotation expectation holds on the disk.
set -e
: "${VMTEST_DISK:?}"
command -v debugfs >/dev/null || { echo "debugfs (e2fsprogs) missing"; exit 1; }
debugfs -R 'stat /fill-the-logs.out.log.0' "$VMTEST_DISK" 2>/dev/null | grep -q '^Inode:' || { echo "fill-the-logs.out.log.0 not on the disk"; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# ls -p prints /inode/mode/uid/gid/name/size/ per entry.
debugfs -R 'ls -p /exact' "$VMTEST_DISK" 2>/dev/null | awk -F/ '$6 ~ /^numbers\.out\.log(\.[0-9]+)?$/ { print $6 }' >"$tmp/names"
[ -s "$tmp/names" ] || { echo "no numbers.out.log files in /exact"; exit 1; }
grep -v '^numbers\.out\.log$' "$tmp/names" | sort -t. -k4,4nr >"$tmp/order" || true
echo numbers.out.log >>"$tmp/order"
: >"$tmp/all"
while read -r f; do
	debugfs -R "cat /exact/$f" "$VMTEST_DISK" 2>/dev/null >>"$tmp/all"
done <"$tmp/order"
echo "host: $(wc -l <"$tmp/order") files, $(wc -l <"$tmp/all") lines"
awk '
	$3 == "logwrite:" { print "gap line: " $0; bad = 1; next }
	$3 == "done" { done = 1; next }
	{ n++; if ($4 != n) { printf "line %d: want n %d, got %s\n", NR, n, $0; bad = 1; exit } }
	END { printf "host: %d numbered lines, done line %s\n", n, done ? "present" : "missing"; if (n != 6000 || !done) bad = 1; exit bad }' "$tmp/all"
