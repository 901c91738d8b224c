# Helpers for check.sh scripts; they run in the VM under busybox sh.
# A case sources this file as ". /test/lib/common.sh".

# Debian's static busybox runs its own applet for a name like "logread"
# whatever PATH says: this defines functions that call /usr/bin/NAME for
# each of lklog's binaries that has a busybox namesake.
. /etc/lklog-prefer.sh

fail() {
	echo "FAIL: $*"
	exit 1
}

# wait_until SECONDS COMMAND [ARGS...]: run COMMAND every 0.1 s until it
# succeeds; return 1 if it has not within SECONDS.
wait_until() {
	_limit=$(($1 * 10))
	shift
	_i=0
	until "$@" >/dev/null 2>&1; do
		_i=$((_i + 1))
		[ "$_i" -ge "$_limit" ] && return 1
		sleep 0.1
	done
	return 0
}

# msgs FILE SOURCE: the messages of SOURCE in FILE (logread's
# "<time>;<source>;<msg>" lines), in order.
msgs() {
	awk -v src="$2" '{
		i = index($0, ";"); rest = substr($0, i + 1)
		j = index(rest, ";")
		if (substr(rest, 1, j - 1) == src) print substr(rest, j + 1)
	}' "$1"
}

# expect_msgs FILE SOURCE EXPECTED: SOURCE's messages in FILE are exactly
# the lines of the file EXPECTED, in that order.
expect_msgs() {
	msgs "$1" "$2" >/tmp/got.$$
	if ! cmp -s /tmp/got.$$ "$3"; then
		echo "source $2: expected:"
		cat "$3"
		echo "source $2: got:"
		cat /tmp/got.$$
		fail "messages of $2 differ"
	fi
	rm -f /tmp/got.$$
}

# memlogd_rss_kb: resident memory of memlogd in KiB (largest process).
memlogd_rss_kb() {
	_max=0
	for _p in $(pidof memlogd); do
		_r=$(awk '/^VmRSS:/ { print $2 }' "/proc/$_p/status" 2>/dev/null)
		[ -n "$_r" ] && [ "$_r" -gt "$_max" ] && _max=$_r
	done
	echo "$_max"
}
