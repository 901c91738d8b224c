. /test/lib/common.sh
set -e

# LinuxKit's expectation, from the service started by init.
wait_until 60 test -e /var/log/fill-the-logs.out.log.0 || { ls -l /var/log; fail "/var/log/fill-the-logs.out.log.0 missing"; }
# A rotation in progress (x.log.0 -> x.log.1, then x.log -> x.log.0) may
# leave no x.log.0 for a moment: look again rather than fail on that.
wait_until 60 grep -q '^[0-9T:-]*Z fill-the-logs.out fill-the-logs line ' /var/log/fill-the-logs.out.log.0 || { head -3 /var/log/fill-the-logs.out.log.0; fail "line format"; }
echo "rotation: $(ls /var/log/fill-the-logs.out.log* | wc -l) files of fill-the-logs.out"

# Exactly once across kill -9: a second logwrite into its own directory.
lw() { /usr/bin/logwrite -log-dir /var/log/exact -max-log-size 16384 -max-log-files 1000 -exclude 'fill-the-logs*' 2>>/tmp/lw.err & }
lw
touch /run/go
for pause in 0.4 0.7 0.3 0.9 0.5; do
	sleep $pause
	kill -9 $!
	wait $! 2>/dev/null || true
	echo "killed logwrite after ${pause}s: $(cat /var/log/exact/numbers.out.log* 2>/dev/null | wc -l) lines so far"
	lw
done
has_done() { grep -q ' numbers.out done 6000$' /var/log/exact/numbers.out.log; }
wait_until 90 has_done || { cat /tmp/lw.err; fail "the last line never reached the file"; }
sleep 1
kill -TERM $!
wait $! || true

# Oldest file first: numbers.out.log.<highest> ... .log.0, then .log.
files=$(ls /var/log/exact | grep '^numbers\.out\.log\.[0-9]*$' | sort -t. -k4,4nr | sed 's|^|/var/log/exact/|')
cat $files /var/log/exact/numbers.out.log >/tmp/numbers
awk '
	$3 == "logwrite:" { print "gap line: " $0; bad = 1; next }
	$3 == "done" { next }
	{ n++; if ($4 != n) { printf "line %d: want n %d, got %s\n", NR, n, $0; bad = 1; exit } }
	END { printf "%d numbered lines\n", n; if (n != 6000) bad = 1; exit bad }' /tmp/numbers || { cat /tmp/lw.err; fail "numbered lines not exactly once"; }
cat /tmp/lw.err
sync
echo suite PASSED
