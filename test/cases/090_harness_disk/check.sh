. /test/lib/common.sh
set -e

grep -q ' /var/log ext4 ' /proc/mounts || { cat /proc/mounts; fail "/var/log is not the ext4 disk"; }
[ "$(cat /var/log/seed.txt)" = "seeded on the host" ] || fail "seed file missing"
[ "$(cat /var/log/onboot-stamp)" = "written by onboot" ] || fail "onboot could not write /var/log"
i=1
while [ $i -le 500 ]; do echo "line $i"; i=$((i + 1)); done >/var/log/numbers.txt
logread >/var/log/logread.txt
echo suite PASSED
