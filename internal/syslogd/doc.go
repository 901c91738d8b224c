// Package syslogd is memlogd's /dev/log receiver: an AF_UNIX SOCK_DGRAM
// socket for syslog(3) clients (glibc, musl, busybox logger, util-linux
// logger, Go's log/syslog, programs that speak RFC 5424), each datagram of
// which becomes exactly one ring entry.
//
// # Formats
//
// A datagram is first stripped of trailing '\n', '\r' and NUL bytes (musl
// appends a newline, stream clients a NUL). Then:
//
//   - "<PRI>1 ..." is RFC 5424, parsed with go-syslog's format.RFC5424
//     (gopkg.in/mcuadros/go-syslog.v2). Source is APP-NAME, PID is a
//     numeric PROCID, SD is the structured data as sent (nil for "-"; SD
//     longer than ring.MaxSDLen, which the ring would drop, is kept at the
//     head of the message instead), OrigTime the timestamp, a leading
//     UTF-8 BOM is removed from the message. HOSTNAME and MSGID are not
//     kept. If go-syslog rejects the header (it then zeroes every field),
//     the datagram is kept raw.
//   - Any other "<PRI>..." is RFC 3164 / BSD, as glibc, musl and busybox
//     send it: "<PRI>Mmm dd hh:mm:ss TAG[PID]: msg", where the timestamp,
//     the [PID] and the whole TAG are optional, an RFC 3339 timestamp is
//     accepted too, and a hostname between timestamp and TAG is skipped.
//     It is parsed here rather than by go-syslog's RFC 3164 parser, which
//     panics on "<13>", reads the hostname file for every message without
//     one, ignores PIDs, trims the message, loses the first word of a
//     message without a tag and always assumes the current year; a test
//     checks both agree where go-syslog is right. A TAG is recognised only
//     when ':' ends it (after an optional [PID]) before any space, so a
//     message without one is kept whole. The timestamp, which has no year
//     and no zone, is taken in Config.Location and given the year that
//     puts it nearest to the time of receipt.
//   - Anything else (no PRI, PRI over 191, binary) is kept raw: the entry's
//     message is the whole datagram, flagged ring.FlagRaw, source "syslog",
//     user.notice.
//
// An empty datagram (or one with only newlines and NULs) is kept too, as a
// raw entry with an empty message, and counted in Stats.Empty: a program
// that logs an empty line sees it in the log, and nothing arrives at the
// socket without leaving a trace.
//
// Without a PRI the facility and severity are user.notice (1/5), as
// syslogd's. Without a TAG (or with an empty one) the source is "syslog".
// A message that names no PID gets the sender's real pid from
// SCM_CREDENTIALS (the socket has SO_PASSCRED). Invalid UTF-8 is kept as
// sent. A datagram longer than MaxDatagram is cut by the kernel, one whose
// message exceeds Config.MaxMsgLen is cut here; both are flagged
// ring.FlagTruncated. File descriptors sent to the socket are closed.
// The sources "kmsg" and "memlogd" (Reserved) are taken only from a
// sender whose SCM_CREDENTIALS say uid 0; anyone else's datagram naming
// them is kept whole as a raw entry (Unclaimed).
//
// # Reading
//
// Serve reads with its own loop on the raw socket: recvmsg(2) with a
// reused header and buffer, every pending datagram at each wake-up (up to
// 256, or 512 KiB) handed to the sink in one Append, with no allocation per
// datagram for RFC 3164 and raw messages.
package syslogd
