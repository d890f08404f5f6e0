//! Reading one syslog line, RFC 5424 (`<PRI>1 TIMESTAMP HOST APP PROCID MSGID SD MSG`) or
//! RFC 3164 (`<PRI>Mmm dd hh:mm:ss HOST TAG[PID]: MSG`), into RestMQ's message fields.

use serde_json::{json, Value};

/// RestMQ's severity names, by number.
const SEVERITIES: [&str; 8] = ["emerg", "alert", "crit", "err", "warn", "notice", "info", "debug"];
/// RestMQ's facility names, by number.
const FACILITIES: [&str; 24] = [
    "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "authpriv", "ftp",
    "ntp", "audit", "alert", "at", "local0", "local1", "local2", "local3", "local4", "local5", "local6",
    "local7",
];

/// The parts of a syslog line; `None` where the line does not say.
#[derive(Debug, Default, PartialEq)]
pub struct SyslogLine {
    pub facility: Option<&'static str>,
    pub severity: Option<&'static str>,
    /// The sender's timestamp as written.
    pub timestamp: Option<String>,
    /// The sender's host name as written.
    pub host: Option<String>,
    pub app: Option<String>,
    pub pid: Option<String>,
    pub msg: String,
}

impl SyslogLine {
    /// RestMQ's message (`line`, `host`, `tstamp`, `facility`, `severity`) and the parsed
    /// parts; `host` falls back to the sender's address, `tstamp` is the receipt time.
    pub fn to_message(&self, line: &str, host: &str, tstamp: f64) -> Value {
        json!({
            "line": line, "host": host, "tstamp": tstamp,
            "facility": self.facility, "severity": self.severity,
            "timestamp": self.timestamp, "app": self.app, "pid": self.pid, "msg": self.msg,
        })
    }
}

/// Parses a line (without its line ending); anything unrecognised ends up in `msg`.
pub fn parse(line: &str) -> SyslogLine {
    let mut out = SyslogLine::default();
    let rest = match priority(line) {
        Some((pri, rest)) => {
            out.facility = FACILITIES.get(usize::from(pri / 8)).copied();
            out.severity = Some(SEVERITIES[usize::from(pri % 8)]);
            rest
        }
        None => line,
    };
    match rest.strip_prefix("1 ") {
        Some(rest) => rfc5424(rest, &mut out),
        None => rfc3164(rest, &mut out),
    }
    out
}

/// `<PRI>` at the start, PRI ≤ 191.
fn priority(line: &str) -> Option<(u8, &str)> {
    let rest = line.strip_prefix('<')?;
    let end = rest.find('>')?;
    let digits = &rest[..end];
    if digits.is_empty() || digits.len() > 3 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let pri: u8 = digits.parse().ok().filter(|p| *p <= 191)?;
    Some((pri, &rest[end + 1..]))
}

fn rfc5424(rest: &str, out: &mut SyslogLine) {
    let mut fields = rest.splitn(6, ' ');
    let mut field = || fields.next().filter(|f| *f != "-" && !f.is_empty()).map(str::to_owned);
    out.timestamp = field();
    out.host = field();
    out.app = field();
    out.pid = field();
    let _msgid = field();
    let tail = fields.next().unwrap_or("");
    let msg = skip_structured_data(tail);
    let msg = msg.strip_prefix(' ').unwrap_or(msg);
    out.msg = msg.strip_prefix('\u{feff}').unwrap_or(msg).to_owned();
}

/// What follows STRUCTURED-DATA: `-`, or `[id k="v" …]` elements whose quoted values may
/// hold `\"` and `]`.
fn skip_structured_data(text: &str) -> &str {
    if let Some(rest) = text.strip_prefix('-') {
        return rest;
    }
    let bytes = text.as_bytes();
    let mut i = 0;
    while bytes.get(i) == Some(&b'[') {
        let mut quoted = false;
        i += 1;
        while i < bytes.len() {
            match bytes[i] {
                b'\\' if quoted => i += 1,
                b'"' => quoted = !quoted,
                b']' if !quoted => break,
                _ => {}
            }
            i += 1;
        }
        i += 1;
    }
    text.get(i.min(text.len())..).unwrap_or("")
}

fn rfc3164(rest: &str, out: &mut SyslogLine) {
    let mut rest = rest;
    if let Some(stamp) = rest.get(..15).filter(|s| is_bsd_timestamp(s)) {
        out.timestamp = Some(stamp.to_owned());
        rest = rest[15..].trim_start_matches(' ');
        // HOSTNAME, unless what follows the timestamp is already the tag.
        if let Some((word, after)) = rest.split_once(' ') {
            if !word.is_empty() && !word.ends_with(':') && !word.contains('[') {
                out.host = Some(word.to_owned());
                rest = after;
            }
        }
    }
    // TAG[PID]: MSG
    let tag_end = rest.find([':', '[', ' ']).unwrap_or(0);
    let tag = &rest[..tag_end];
    let after_tag = &rest[tag_end..];
    let (pid, after) = match after_tag.strip_prefix('[').and_then(|r| r.split_once(']')) {
        Some((pid, after)) => (Some(pid.to_owned()), after),
        None => (None, after_tag),
    };
    match after.strip_prefix(':') {
        Some(msg) if !tag.is_empty() => {
            out.app = Some(tag.to_owned());
            out.pid = pid;
            out.msg = msg.strip_prefix(' ').unwrap_or(msg).to_owned();
        }
        _ => out.msg = rest.to_owned(),
    }
}

/// `Mmm dd hh:mm:ss` with the day padded by a space: `Nov  1 00:12:04`.
fn is_bsd_timestamp(s: &str) -> bool {
    const MONTHS: [&str; 12] =
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let b = s.as_bytes();
    let digit = |i: usize| b[i].is_ascii_digit();
    b.len() == 15
        && MONTHS.contains(&&s[..3])
        && b[3] == b' '
        && (b[4] == b' ' || digit(4))
        && digit(5)
        && b[6] == b' '
        && digit(7)
        && digit(8)
        && b[9] == b':'
        && digit(10)
        && digit(11)
        && b[12] == b':'
        && digit(13)
        && digit(14)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RestMQ's own example line: facility mail (2), severity info (6), host, tag and pid.
    #[test]
    fn rfc3164_line() {
        let p =
            parse("<22>Nov  1 00:12:04 gleicon-vm1 postfix/smtpd[4880]: connect from localhost[127.0.0.1]");
        assert_eq!(p.facility, Some("mail"));
        assert_eq!(p.severity, Some("info"));
        assert_eq!(p.timestamp.as_deref(), Some("Nov  1 00:12:04"));
        assert_eq!(p.host.as_deref(), Some("gleicon-vm1"));
        assert_eq!(p.app.as_deref(), Some("postfix/smtpd"));
        assert_eq!(p.pid.as_deref(), Some("4880"));
        assert_eq!(p.msg, "connect from localhost[127.0.0.1]");
    }

    /// A BSD line without a host name (as local loggers send) keeps the tag as the app.
    #[test]
    fn rfc3164_without_host() {
        let p = parse("<13>Feb  5 17:32:18 myapp: hello world");
        assert_eq!((p.host, p.app.as_deref(), p.msg.as_str()), (None, Some("myapp"), "hello world"));
    }

    /// RFC 5424 with structured data holding `]` and `\"` in a value, and a BOM before MSG.
    #[test]
    fn rfc5424_line() {
        let p = parse(
            "<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog 99 ID47 \
             [exampleSDID@32473 iut=\"3\" eventSource=\"App]li\\\"cation\"][x@1 a=\"b\"] \u{feff}An application event",
        );
        assert_eq!((p.facility, p.severity), (Some("local4"), Some("notice")));
        assert_eq!(p.timestamp.as_deref(), Some("2003-10-11T22:14:15.003Z"));
        assert_eq!(p.host.as_deref(), Some("mymachine.example.com"));
        assert_eq!((p.app.as_deref(), p.pid.as_deref()), (Some("evntslog"), Some("99")));
        assert_eq!(p.msg, "An application event");
    }

    /// RFC 5424 with nil fields and no structured data.
    #[test]
    fn rfc5424_nil_fields() {
        let p = parse("<13>1 - - - - - - hello");
        assert_eq!((p.host, p.app, p.msg.as_str()), (None, None, "hello"));
        assert_eq!((p.facility, p.severity), (Some("user"), Some("notice")));
    }

    /// No or bad priority: no facility or severity, the whole line is the message.
    #[test]
    fn no_priority() {
        for line in ["just text", "<999>x", "<>x", "<1a>x"] {
            let p = parse(line);
            assert_eq!((p.facility, p.severity), (None, None), "{line}");
        }
        assert_eq!(parse("just text").msg, "just text");
    }

    /// Odd lines keep what can be read: a priority before free text, a date that does not
    /// exist, timestamps exactly as the sender wrote them, a tag without a message.
    #[test]
    fn odd_lines() {
        let p = parse("<13>hello there");
        assert_eq!((p.facility, p.severity, p.msg.as_str()), (Some("user"), Some("notice"), "hello there"));
        let p = parse("<191>Feb 30 17:32:18 host x: y");
        assert_eq!((p.facility, p.timestamp.as_deref()), (Some("local7"), Some("Feb 30 17:32:18")));
        assert_eq!((p.host.as_deref(), p.app.as_deref(), p.msg.as_str()), (Some("host"), Some("x"), "y"));
        for stamp in ["2024-05-01T10:00:00+00:00", "2024-05-01T10:00:00.120Z", "2024-05-01T10:00:00-03:30"] {
            assert_eq!(parse(&format!("<13>1 {stamp} h a - - - x")).timestamp.as_deref(), Some(stamp));
        }
        let p = parse("<13>Feb  5 17:32:18 host tag:");
        assert_eq!((p.app.as_deref(), p.msg.as_str()), (Some("tag"), ""));
        let p = parse("<13>1 2024-05-01T10:00:00Z h a - - [unterminated");
        assert_eq!((p.host.as_deref(), p.msg.as_str()), (Some("h"), ""), "no panic past the end");
        assert_eq!(parse("<0>").facility, Some("kern"));
        assert_eq!(parse("<13>é").msg, "é");
    }
}
