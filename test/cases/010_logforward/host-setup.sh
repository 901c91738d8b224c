# Starts an rsyslog with a RELP input on the host for the guest's
# logforward; writes its port to guest.env.
set -eu
command -v rsyslogd >/dev/null || { echo "rsyslogd is not installed: run scripts/deps.sh"; exit 1; }
W=$VMTEST_WORK
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$W/rsyslog.conf" <<CONF
global(workDirectory="$W")
module(load="imrelp")
template(name="t" type="string" string="%app-name% %hostname% %msg%\n")
ruleset(name="r") { action(type="omfile" file="$W/received.log" template="t") }
input(type="imrelp" address="127.0.0.1" port="$PORT" ruleset="r")
CONF
rsyslogd -N1 -f "$W/rsyslog.conf" >"$W/rsyslog.check" 2>&1 || { cat "$W/rsyslog.check"; exit 1; }
rsyslogd -n -f "$W/rsyslog.conf" -i "$W/rsyslog.pid" >"$W/rsyslog.out" 2>&1 &
python3 - "$PORT" <<'PY'
import socket, sys, time
deadline = time.time() + 30
while True:
    try:
        socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1).close()
        break
    except OSError:
        if time.time() > deadline:
            sys.exit("rsyslog did not listen within 30 s")
        time.sleep(0.05)
PY
echo "PORT=$PORT" >"$W/guest.env"
