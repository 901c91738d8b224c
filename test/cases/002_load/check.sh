. /test/lib/common.sh
set -e

SECONDS_OF_LOAD=4
# memlogd's default ring is 6 MiB of entries; its Go heap, the ring and
# buffers must stay well under this (KiB).
RSS_LIMIT_KB=32768

logread -F >/tmp/follow 2>/tmp/follow.err &
follower=$!
# The follower is connected once it has printed the ring's first entry.
wait_until 60 test -s /tmp/follow || fail "follower printed nothing"
rss_before=$(memlogd_rss_kb)

touch /run/go
max_rss=0
i=0
while [ $i -lt $((SECONDS_OF_LOAD * 4)) ]; do
	sleep 0.25
	r=$(memlogd_rss_kb)
	[ "$r" -gt "$max_rss" ] && max_rss=$r
	i=$((i + 1))
done
touch /run/stop

all_done() { [ "$(grep -c ';load[1-4].out;done ' /tmp/follow)" = 4 ]; }
wait_until 60 all_done || { tail -5 /tmp/follow; cat /tmp/follow.err; fail "the follower did not see the four 'done' lines"; }
kill $follower
r=$(memlogd_rss_kb)
[ "$r" -gt "$max_rss" ] && max_rss=$r

echo "memlogd VmRSS: ${rss_before} KiB before, ${max_rss} KiB at most under load (limit ${RSS_LIMIT_KB})"
markers=$(grep -c ';memlogd;memlogd: [0-9]* entries lost' /tmp/follow || true)
echo "gap markers in the follower's output: $markers"
grep ';memlogd;memlogd: [0-9]* entries lost' /tmp/follow | head -3
[ -s /tmp/follow.err ] && head -5 /tmp/follow.err

awk '
	{
		i = index($0, ";"); rest = substr($0, i + 1); j = index(rest, ";")
		src = substr(rest, 1, j - 1); msg = substr(rest, j + 1)
		if (src !~ /^load[1-4]\.out$/) next
		split(msg, f, " ")
		if (f[1] == "done") { total[src] = f[2]; next }
		if (f[2] != last[src] + 1) { printf "gap in %s: after %d came %s\n", src, last[src], f[2]; bad = 1 }
		last[src] = f[2]; count[src]++
	}
	END {
		for (k = 1; k <= 4; k++) {
			s = "load" k ".out"
			printf "%s: %d lines, last %d, writer wrote %d\n", s, count[s], last[s], total[s]
			if (total[s] == "" || count[s] != total[s] || last[s] != total[s] || total[s] < 100) bad = 1
			sum += count[s]
		}
		printf "total %d lines in '"$SECONDS_OF_LOAD"' s\n", sum
		exit bad
	}' /tmp/follow || fail "the follower lost lines"
[ "$markers" = 0 ] || fail "memlogd reported lost entries to the follower"
[ "$max_rss" -gt 0 ] || fail "could not read memlogd's VmRSS"
[ "$max_rss" -le "$RSS_LIMIT_KB" ] || fail "memlogd used ${max_rss} KiB"

echo suite PASSED
