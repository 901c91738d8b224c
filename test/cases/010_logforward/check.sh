. /test/lib/common.sh
. /test/host.env
set -e

lf() {
	/usr/bin/logforward -state-dir /var/log/logforward -control /run/lf.sock -hostname vmtest \
		-max-backoff 1s -drain "relp://10.0.2.2:$PORT?sources=numbers.out&window=128" 2>>/tmp/lf.err &
}
lf
touch /run/go
# Kill it each time it has delivered some lines since its start.
acked_n() { /usr/bin/logforward -control /run/lf.sock status 2>/dev/null | sed -n 's/.*, acknowledged \([0-9]*\) .*/\1/p'; }
delivering() { n=$(acked_n); [ -n "$n" ] && [ "$n" -ge 300 ]; }
for k in 1 2 3; do
	wait_until 60 delivering || { cat /tmp/lf.err; fail "logforward delivered nothing"; }
	kill -9 $!
	wait $! 2>/dev/null || true
	rm -f /run/lf.sock
	echo "killed logforward (kill $k) after it acknowledged $n lines"
	lf
done
has_done() { logread -json | grep -q '"source":"numbers.out","msg":"done 5000"'; }
wait_until 120 has_done || fail "the numbers service did not finish"
seq=$(logread -json | grep '"msg":"done 5000"' | sed 's/^{"seq":\([0-9]*\),.*/\1/')
acked() { /usr/bin/logforward -control /run/lf.sock status 2>/dev/null | grep -q "up to seq $seq)"; }
wait_until 120 acked || { /usr/bin/logforward -control /run/lf.sock status; cat /tmp/lf.err; fail "the last line (seq $seq) was not acknowledged"; }
/usr/bin/logforward -control /run/lf.sock status
kill -TERM $!
wait $! || true
cat /tmp/lf.err
echo suite PASSED
