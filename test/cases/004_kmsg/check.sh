. /test/lib/common.sh
set -e

# json_num / json_str LINE KEY: the value of a number or string KEY in one
# JSON line.
json_num() { echo "$1" | sed -n "s/.*\"$2\":\([0-9]*\).*/\1/p"; }
json_str() { echo "$1" | sed -n "s/.*\"$2\":\"\([^\"]*\)\".*/\1/p"; }

# 1. The kernel banner, replayed from the kernel's ring on this fresh boot.
has_banner() { logread -json -source kmsg | grep -q '"msg":"Linux version '; }
wait_until 30 has_banner || { logread -json | tail -20; fail "the 'Linux version' line did not reach memlogd from kmsg"; }
line=$(logread -json -source kmsg | grep '"msg":"Linux version ' | head -1)
echo "banner: $line" | cut -c1-200
# pr_notice: facility kern (0), severity notice (5).
[ "$(json_num "$line" facility)" = 0 ] || fail "banner facility is not 0 (kern): $line"
[ "$(json_num "$line" severity)" = 5 ] || fail "banner severity is not 5 (notice): $line"
echo "$line" | grep -q '"sd":"\[kmsg@32473 seq=\\"[0-9]*\\"' || fail "banner has no kernel seq in sd: $line"
# Its own timestamp: during boot, so before memlogd received it.
ts=$(json_str "$line" ts)
[ -n "$ts" ] || fail "banner has no ts: $line"
recv=$(json_str "$line" time)
ts_s=$(echo "$ts" | cut -c1-19)
recv_s=$(echo "$recv" | cut -c1-19)
[ "$ts" != "$recv" ] && { [ "$ts_s" \< "$recv_s" ] || [ "$ts_s" = "$recv_s" ]; } || fail "banner ts $ts is not before its receive time $recv"

has_file() { grep -q ' kmsg Linux version ' /var/log/kmsg.log; }
wait_until 30 has_file || { ls -l /var/log; head -5 /var/log/kmsg.log; fail "/var/log/kmsg.log lacks the 'Linux version' line"; }
echo "kmsg.log: $(grep -c . /var/log/kmsg.log) lines"

# 2. A record written to /dev/kmsg now, with priority 3 (err; facility user).
marker="vmtest-kmsg-$$-$(date +%s)"
echo "<3>$marker one" >/dev/kmsg
has_marker() { logread -json -source kmsg | grep -q "\"msg\":\"$marker one\""; }
wait_until 60 has_marker || fail "the record written to /dev/kmsg did not arrive"
line=$(logread -json -source kmsg | grep "\"msg\":\"$marker one\"")
[ "$(json_num "$line" severity)" = 3 ] || fail "marker severity is not 3: $line"
[ "$(json_num "$line" facility)" = 1 ] || fail "marker facility is not 1: $line"
wait_until 60 grep -q " kmsg $marker one\$" /var/log/kmsg.log || fail "/var/log/kmsg.log lacks the marker"

# 3. Restart kmsg in the same boot: it continues after its state.
[ -s /run/kmsg/state ] || fail "no state in /run/kmsg/state"
echo "state: $(cat /run/kmsg/state)"
kill $(pidof kmsg)
wait_until 60 sh -c '! pidof kmsg' || fail "kmsg did not stop on SIGTERM"
echo "<4>$marker two" >/dev/kmsg
# Its own output must not hold this script's stdout open.
/usr/bin/kmsg -socket-query /run/memlogdq.sock </dev/null >/dev/null 2>/tmp/kmsg2.err &
kmsg2=$!
has_two() { logread -json -source kmsg | grep -q "\"msg\":\"$marker two\""; }
wait_until 60 has_two || { cat /tmp/kmsg2.err; fail "a record written while kmsg was down did not arrive after its restart"; }
echo "<6>$marker three" >/dev/kmsg
has_three() { logread -json -source kmsg | grep -q "\"msg\":\"$marker three\""; }
wait_until 60 has_three || fail "a record written after the restart did not arrive"
grep -q 'continuing after kernel record' /tmp/kmsg2.err || { cat /tmp/kmsg2.err; fail "the restarted kmsg did not continue after its state"; }

# Every kernel sequence number arrived once, with no hole.
logread -json -source kmsg | sed -n 's/.*"sd":"\[kmsg@32473 seq=\\"\([0-9]*\)\\".*/\1/p' >/tmp/seqs
n=$(wc -l </tmp/seqs)
dups=$(sort -n /tmp/seqs | uniq -d | head -5)
[ -z "$dups" ] || fail "kernel records delivered twice: $dups"
holes=$(sort -n /tmp/seqs | awk 'NR > 1 && $1 != prev + 1 { print prev "->" $1 } { prev = $1 }' | head -5)
[ -z "$holes" ] || fail "holes in the kernel sequence: $holes"
[ "$(logread -json -source kmsg | grep -c '"msg":"Linux version ')" = 1 ] || fail "the banner was delivered more than once"
kill $kmsg2
echo "kmsg: $n kernel records, each once, from seq $(sort -n /tmp/seqs | head -1) to $(sort -n /tmp/seqs | tail -1)"

echo suite PASSED
