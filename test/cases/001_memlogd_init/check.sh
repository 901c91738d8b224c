. /test/lib/common.sh
set -e

[ -S /var/run/linuxkit-external-logging.sock ] || fail "no log socket"
[ -S /var/run/memlogdq.sock ] || fail "no query socket"
[ -p /var/run/chatty1.log ] && [ -p /var/run/chatty1.out.log ] || fail "service FIFOs missing"

has_last() { logread | grep -q ";chatty1.out;c1-out 300$" && logread | grep -q ";chatty2.out;c2-out 300$"; }
wait_until 30 has_last || fail "services' last lines did not arrive"
sleep 0.5
logread >/tmp/all
echo "logread: $(wc -l </tmp/all) lines"

bad=$(grep -cvE '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+(Z|[+-][0-9:]+);[^;]+;' /tmp/all || true)
[ "$bad" = 0 ] || { grep -vE '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+(Z|[+-][0-9:]+);[^;]+;' /tmp/all | head; fail "$bad lines not in <RFC3339Nano>;<source>;<msg> form"; }

seq 1 3 | sed 's/^/greet-out /' >/tmp/want; expect_msgs /tmp/all onboot.000-greet.out /tmp/want
seq 1 3 | sed 's/^/greet-err /' >/tmp/want; expect_msgs /tmp/all onboot.000-greet /tmp/want
seq 1 300 | sed 's/^/c1-out /' >/tmp/want; expect_msgs /tmp/all chatty1.out /tmp/want
seq 1 300 | sed 's/^/c1-err /' >/tmp/want; expect_msgs /tmp/all chatty1 /tmp/want
seq 1 300 | sed 's/^/c2-out /' >/tmp/want; expect_msgs /tmp/all chatty2.out /tmp/want
seq 10 10 300 | sed 's/^/c2-err /' >/tmp/want; expect_msgs /tmp/all chatty2 /tmp/want

echo suite PASSED
