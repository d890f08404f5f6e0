//! RestMQ's `acl.conf` (`--acl`): INI sections `rest:producer`, `rest:consumer`,
//! `comet:consumer` and `websocket:consumer`, each with `hosts_allow`, `hosts_deny`,
//! `username` and `password`; reloaded when the file changes.
//! The INI syntax is read by `rust-ini`; the thin layer over it keeps what Python's
//! `ConfigParser` did with RestMQ's file (case-insensitive keys, last value wins, `key: value`).

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use axum::http::header::{COOKIE, UPGRADE};
use axum::http::HeaderMap;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::ip::IpNet;
use super::secret::{basic_credentials, ct_eq};
use super::AuthConfigError;

/// The realm of RestMQ's Basic challenge.
pub const REALM: &str = "RestMQ Restricted Access";

/// The kinds of access `acl.conf` knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    RestProducer,
    RestConsumer,
    CometConsumer,
    WebsocketConsumer,
}

impl Section {
    const ALL: [Section; 4] =
        [Self::RestProducer, Self::RestConsumer, Self::CometConsumer, Self::WebsocketConsumer];

    pub fn name(self) -> &'static str {
        match self {
            Self::RestProducer => "rest:producer",
            Self::RestConsumer => "rest:consumer",
            Self::CometConsumer => "comet:consumer",
            Self::WebsocketConsumer => "websocket:consumer",
        }
    }
}

/// An entry of `hosts_allow`/`hosts_deny`: an address or CIDR block, or, as RestMQ
/// compared them, a textual prefix such as `192.168.0.`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    Net(IpNet),
    Prefix(String),
}

impl HostPattern {
    fn matches(&self, ip: IpAddr) -> bool {
        match self {
            Self::Net(net) => net.contains(ip),
            Self::Prefix(prefix) => ip.to_string().starts_with(prefix.as_str()),
        }
    }
}

/// A host list: unset (or empty), `all`, or patterns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
enum Hosts {
    #[default]
    Unset,
    All,
    Some(Vec<HostPattern>),
}

impl Hosts {
    fn parse(value: &str) -> Self {
        let items: Vec<&str> = value.split([',', ' ', '\t', '\n']).filter(|s| !s.is_empty()).collect();
        if items.is_empty() {
            return Self::Unset;
        }
        if items.iter().any(|i| i.eq_ignore_ascii_case("all")) {
            return Self::All;
        }
        Self::Some(
            items
                .into_iter()
                .map(|i| i.parse().map_or_else(|_| HostPattern::Prefix(i.to_owned()), HostPattern::Net))
                .collect(),
        )
    }

    fn matches(&self, ip: Option<IpAddr>) -> bool {
        match (self, ip) {
            (Self::All, _) => true,
            (Self::Some(list), Some(ip)) => list.iter().any(|p| p.matches(ip)),
            _ => false,
        }
    }
}

/// One section's rules.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Rules {
    allow: Hosts,
    deny: Hosts,
    username: Option<String>,
    password: Option<String>,
}

/// Why an `acl.conf` section refused a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AclDenial {
    /// The client's address is not allowed: 403.
    Address,
    /// Basic credentials are needed and were missing or wrong: 401 with the challenge.
    Password,
}

/// A parsed `acl.conf`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Acl {
    sections: [Rules; 4],
}

impl Acl {
    /// Parses the INI text the way Python's `ConfigParser` reads RestMQ's file: `[section]`
    /// headers, `key = value` or `key: value`, `#`/`;` comment lines, indented continuation
    /// lines; keys are case-insensitive; a key or section given twice keeps its last value;
    /// other sections and keys are ignored.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut acl = Acl::default();
        let mut values: [[String; 4]; 4] = Default::default();
        const KEYS: [&str; 4] = ["hosts_allow", "hosts_deny", "username", "password"];
        for (name, props) in read_ini(text)?.iter() {
            let Some(s) = Section::ALL.iter().position(|s| Some(s.name()) == name.map(str::trim)) else {
                continue;
            };
            for (key, value) in props.iter() {
                if let Some(k) = KEYS.iter().position(|k| k.eq_ignore_ascii_case(key)) {
                    values[s][k] = value.split('\n').map(str::trim).collect::<Vec<_>>().join(" ");
                }
            }
        }
        for (rules, [allow, deny, username, password]) in acl.sections.iter_mut().zip(values) {
            let some = |v: String| Some(v).filter(|v| !v.is_empty());
            // RestMQ read `hosts_allow = all` as no allow list, so `hosts_deny` still applies.
            let allow = match Hosts::parse(&allow) {
                Hosts::All => Hosts::Unset,
                hosts => hosts,
            };
            *rules = Rules {
                allow,
                deny: Hosts::parse(&deny),
                username: some(username),
                password: some(password),
            };
        }
        Ok(acl)
    }

    /// Applies `section` as RestMQ did: a client matching `hosts_allow` only has to pass the
    /// password (if one is set); one that does not is refused when `hosts_deny` is unset, else
    /// refused when it matches `hosts_deny`; then the password applies. `all` in `hosts_deny`
    /// refuses everyone not allowed. WebSocket clients (any section checked on an upgrade
    /// request) may send the credentials as RestMQ's `auth=user:password` cookie instead of
    /// Basic auth.
    pub fn check(
        &self,
        section: Section,
        client: Option<IpAddr>,
        headers: &HeaderMap,
    ) -> Result<(), AclDenial> {
        let rules = &self.sections[section as usize];
        let password_ok = || match (&rules.username, &rules.password) {
            (Some(user), Some(password)) => credentials_match(section, headers, user, password),
            _ => true,
        };
        let pass = |ok: bool| if ok { Ok(()) } else { Err(AclDenial::Password) };
        if rules.allow != Hosts::Unset {
            if rules.allow.matches(client) {
                return pass(password_ok());
            }
            if rules.deny == Hosts::Unset {
                return Err(AclDenial::Address);
            }
        }
        if rules.deny.matches(client) {
            return Err(AclDenial::Address);
        }
        pass(password_ok())
    }
}

/// The INI reading itself (`rust-ini`), set up as `ConfigParser` reads: quotes and
/// backslashes are part of values, no inline comments, indented lines continue the value above.
/// Two lines are prepared first: a comment line is blank even when indented (`rust-ini` would
/// continue a value with it), and a header line ends at its `]`, as `ConfigParser` reads it.
fn read_ini(text: &str) -> Result<ini::Ini, String> {
    let text: String = text
        .lines()
        .map(|line| {
            let trimmed = line.trim_start();
            if trimmed.starts_with(['#', ';']) {
                ""
            } else if let (true, Some(end)) = (line.starts_with('['), line.find(']')) {
                &line[..=end]
            } else {
                line
            }
        })
        .flat_map(|line| [line, "\n"])
        .collect();
    let options = ini::ParseOption {
        enabled_quote: false,
        enabled_escape: false,
        enabled_indented_mutiline_value: true,
        enabled_preserve_key_leading_whitespace: false,
    };
    ini::Ini::load_from_str_opt(&text, options).map_err(|e| e.to_string())
}

fn credentials_match(section: Section, headers: &HeaderMap, user: &str, password: &str) -> bool {
    let both = |(u, p): (String, String)| {
        ct_eq(u.as_bytes(), user.as_bytes()) & ct_eq(p.as_bytes(), password.as_bytes())
    };
    if basic_credentials(headers).is_some_and(both) {
        return true;
    }
    (section == Section::WebsocketConsumer || is_websocket_upgrade(headers))
        && headers
            .get_all(COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|c| c.trim().strip_prefix("auth="))
            .filter_map(|c| c.split_once(':'))
            .any(|(u, p)| both((u.to_owned(), p.to_owned())))
}

/// Whether `headers` are those of a WebSocket upgrade (whose `add` frames are checked against
/// `[rest:producer]` with the upgrade's credentials).
fn is_websocket_upgrade(headers: &HeaderMap) -> bool {
    headers.get(UPGRADE).and_then(|v| v.to_str().ok()).is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

/// The file and its current rules; [`spawn_reload`] keeps them in step.
#[derive(Debug)]
pub struct AclFile {
    path: PathBuf,
    current: RwLock<Arc<Acl>>,
    stamp: Mutex<Option<(SystemTime, u64)>>,
}

impl AclFile {
    /// Reads the file; a missing or malformed file is an error at startup.
    pub fn load(path: &Path) -> Result<Self, AuthConfigError> {
        let stamp = stamp_of(path);
        let text = std::fs::read_to_string(path)
            .map_err(|e| AuthConfigError::Read { path: path.to_owned(), error: e.to_string() })?;
        let acl = Acl::parse(&text).map_err(|error| AuthConfigError::Acl { path: path.to_owned(), error })?;
        Ok(Self { path: path.to_owned(), current: RwLock::new(Arc::new(acl)), stamp: Mutex::new(stamp) })
    }

    /// The rules in force.
    pub fn current(&self) -> Arc<Acl> {
        self.current.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Re-reads the file if its modification time or size changed; a file that no longer
    /// reads or parses leaves the rules as they were.
    pub async fn reload_if_changed(&self) {
        let path = self.path.clone();
        let stamp = tokio::task::spawn_blocking(move || stamp_of(&path)).await.ok().flatten();
        if stamp.is_none() || *self.stamp.lock().unwrap_or_else(|p| p.into_inner()) == stamp {
            return;
        }
        *self.stamp.lock().unwrap_or_else(|p| p.into_inner()) = stamp;
        let parsed = match tokio::fs::read_to_string(&self.path).await {
            Ok(text) => Acl::parse(&text),
            Err(e) => Err(e.to_string()),
        };
        match parsed {
            Ok(acl) => {
                *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(acl);
                tracing::info!(path = %self.path.display(), "reloaded acl.conf");
            }
            Err(error) => tracing::warn!(path = %self.path.display(), %error, "acl.conf not reloaded"),
        }
    }
}

fn stamp_of(path: &Path) -> Option<(SystemTime, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

/// Polls the file once a second until `shutdown`.
pub fn spawn_reload(file: Arc<AclFile>, shutdown: CancellationToken, tracker: &TaskTracker) {
    tracker.spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = tick.tick() => file.reload_if_changed().await,
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::header::AUTHORIZATION;

    const RESTMQ_SAMPLE: &str = "# RestMQ ACL\n\n[rest:producer]\nhosts_allow = 127.0.0.1 192.168.0.7\n\
        hosts_deny = all\nusername = lero\npassword = lero\n\n[rest:consumer]\n#hosts_allow = 127.0.0.1\n\
        hosts_deny = 192.168.0.\n\n[comet:consumer]\nhosts_allow: 10.0.0.0/8,\n  127.0.0.1\n\n\
        [websocket:consumer]\nhosts_allow = all\nhosts_deny = 192.168.0.\nUsername = ws\npassword = pw\n";

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    fn basic(user_pass_b64: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(AUTHORIZATION, format!("Basic {user_pass_b64}").parse().unwrap());
        h
    }

    #[test]
    fn restmq_sections_restrict_their_access() {
        let acl = Acl::parse(RESTMQ_SAMPLE).unwrap();
        let none = HeaderMap::new();
        let lero = basic("bGVybzpsZXJv"); // lero:lero
        assert_eq!(acl.check(Section::RestProducer, ip("127.0.0.1"), &lero), Ok(()));
        assert_eq!(acl.check(Section::RestProducer, ip("127.0.0.1"), &none), Err(AclDenial::Password));
        assert_eq!(acl.check(Section::RestProducer, ip("10.1.1.1"), &lero), Err(AclDenial::Address));
        assert_eq!(acl.check(Section::RestConsumer, ip("192.168.0.9"), &none), Err(AclDenial::Address));
        assert_eq!(acl.check(Section::RestConsumer, ip("192.168.1.9"), &none), Ok(()));
        assert_eq!(acl.check(Section::CometConsumer, ip("10.9.9.9"), &none), Ok(()));
        assert_eq!(acl.check(Section::CometConsumer, ip("127.0.0.1"), &none), Ok(()));
        assert_eq!(acl.check(Section::CometConsumer, ip("11.0.0.1"), &none), Err(AclDenial::Address));
        assert_eq!(acl.check(Section::WebsocketConsumer, ip("1.1.1.1"), &none), Err(AclDenial::Password));
        let mut cookie = HeaderMap::new();
        cookie.insert(COOKIE, "theme=dark; auth=ws:pw".parse().unwrap());
        assert_eq!(acl.check(Section::WebsocketConsumer, ip("1.1.1.1"), &cookie), Ok(()));
        assert_eq!(
            acl.check(Section::WebsocketConsumer, ip("192.168.0.3"), &cookie),
            Err(AclDenial::Address)
        );
        assert_eq!(acl.check(Section::RestProducer, ip("127.0.0.1"), &cookie), Err(AclDenial::Password));
    }

    #[test]
    fn the_shipped_file_with_everything_commented_allows_all() {
        let acl = Acl::parse("[rest:producer]\n#hosts_allow = 127.0.0.1\n#username = lero\n").unwrap();
        assert_eq!(acl, Acl::default());
        assert_eq!(acl.check(Section::RestProducer, None, &HeaderMap::new()), Ok(()));
        assert!(Acl::parse("[rest:producer]\nnonsense line\n").is_err());
    }

    fn producer(text: &str) -> Rules {
        Acl::parse(text).unwrap().sections[Section::RestProducer as usize].clone()
    }

    /// ConfigParser's reading over the INI crate: `:` or `=`, keys in any case, the last value
    /// of a key wins and a repeated section adds to the first; quotes, backslashes, `;` and `#`
    /// inside a value are part of it; an indented comment does not continue a value; section
    /// names keep their case and a header ends at its `]`.
    #[test]
    fn configparser_quirks_over_the_ini_crate() {
        let both = |user: &str, password: &str| (Some(user.to_owned()), Some(password.to_owned()));
        let creds = |r: Rules| (r.username, r.password);
        assert_eq!(creds(producer("[rest:producer]\nUserName: u\nPASSWORD = p\n")), both("u", "p"));
        assert_eq!(creds(producer("[rest:producer]\nusername=u\nusername=v\npassword=p\n")), both("v", "p"));
        let split = "[rest:producer]\nusername=u\n[rest:consumer]\nusername=c\n[rest:producer]\npassword=p\n";
        assert_eq!(creds(producer(split)), both("u", "p"));
        let literal = "[rest:producer]\nusername = \"u v\"\npassword = a\\b ;c #d\n";
        assert_eq!(creds(producer(literal)), both("\"u v\"", "a\\b ;c #d"));
        assert_eq!(creds(producer("[rest:producer]\nusername=a=b\npassword=c:d\n")), both("a=b", "c:d"));
        let hosts =
            producer("[rest:producer]\nhosts_allow = 1.2.3.4\n   # 9.9.9.9\n\t; 8.8.8.8\n  5.6.7.8\n");
        let net = |s: &str| HostPattern::Net(s.parse().unwrap());
        assert_eq!(hosts.allow, Hosts::Some(vec![net("1.2.3.4"), net("5.6.7.8")]));
        assert_eq!(creds(producer("[REST:PRODUCER]\nusername=u\npassword=p\n")), (None, None));
        assert_eq!(creds(producer("username=u\n[rest:producer]\n")), (None, None), "no section yet");
        assert_eq!(creds(producer("[rest:producer] x\nusername=u\npassword=p\n")), both("u", "p"));
        assert_eq!(creds(producer("[rest:producer]\r\nusername=u\r\npassword=p\r\n")), both("u", "p"));
        for bad in ["[rest:producer\nusername=u\n", "[rest:producer]\n=x\n", "[rest:producer]\nkey\n"] {
            assert!(Acl::parse(bad).is_err(), "{bad:?}");
        }
    }
}
