. /test/lib/common.sh
set -e

[ -S /dev/log ] || fail "/dev/log is not a socket"

logger -t lktest -p user.err "an error happened"
logger -t lktest -p user.warning "a warning"
logger -t lktest -p local3.info "some info"
logger -t lktest -p user.debug "debug detail; with a semicolon"
logger -t other -p auth.crit "critical from another tag"

have_all() { [ "$(logread -json | grep -c '"source":"lktest"')" -ge 4 ] && logread -json | grep -q '"source":"other"'; }
wait_until 60 have_all || { logread -json | tail -20; fail "syslog entries did not arrive"; }
logread -json >/tmp/json
logread >/tmp/text

# expect SOURCE MSG FACILITY SEVERITY
expect() {
	line=$(grep "\"source\":\"$1\"" /tmp/json | grep "\"msg\":\"$2\"" | head -1)
	[ -n "$line" ] || { grep "\"source\":\"$1\"" /tmp/json; fail "no entry from $1 with msg '$2'"; }
	echo "$line" | grep -q "\"severity\":$4[,}]" || fail "severity of '$2' is not $4: $line"
	echo "$line" | grep -q "\"facility\":$3[,}]" || fail "facility of '$2' is not $3: $line"
	echo "$line" | grep -q '"seq":[0-9]' || fail "no seq in $line"
	echo "ok: $1 $3.$4 $2"
}
expect lktest "an error happened" 1 3
expect lktest "a warning" 1 4
expect lktest "some info" 19 6
expect lktest "debug detail; with a semicolon" 1 7
expect other "critical from another tag" 4 2
expect early "logged from onboot" 3 5

# The text form carries the tag as source too.
grep -q ';lktest;an error happened$' /tmp/text || { grep lktest /tmp/text; fail "text form lacks ;lktest;an error happened"; }

echo suite PASSED
