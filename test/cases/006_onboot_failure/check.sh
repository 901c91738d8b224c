. /test/lib/common.sh
set -e

svc_up() { logread | grep -q ';svc.out;service up$'; }
wait_until 60 svc_up || true
logread >/tmp/all
grep -q ';svc.out;service up$' /tmp/all || { cat /tmp/all; fail "service output missing"; }

printf 'fatal: /dev/sdz: no such device\nlast words without newline\n' >/tmp/want
expect_msgs /tmp/all onboot.000-broken /tmp/want
echo 'checking the disk' >/tmp/want
expect_msgs /tmp/all onboot.000-broken.out /tmp/want
echo 'still booting' >/tmp/want
expect_msgs /tmp/all onboot.001-after.out /tmp/want

echo suite PASSED
