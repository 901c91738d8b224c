# Runs on the host after the VM powered off; VMTEST_DISK is the disk image.
set -eu
[ -n "$VMTEST_DISK" ] || { echo "no disk image"; exit 1; }
got=$(debugfs -R 'cat /numbers.txt' "$VMTEST_DISK" 2>/dev/null)
want=$(seq 1 500 | sed 's/^/line /')
[ "$got" = "$want" ] || { echo "numbers.txt on the disk differs"; exit 1; }
debugfs -R 'cat /logread.txt' "$VMTEST_DISK" 2>/dev/null | grep -q ';memlogd;memlogd started' || { echo "logread.txt lacks memlogd's start line"; exit 1; }
echo "host check: disk contents as written"
