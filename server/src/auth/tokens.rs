//! Bearer tokens from a JSON file (`--auth-tokens`), each granting rights on queue patterns.
//!
//! ```json
//! {"tokens": [
//!   {"name": "ingest", "token": "…", "queues": ["jobs.*"], "rights": ["produce"]},
//!   {"name": "ops", "token": "…", "queues": ["*"], "rights": ["produce", "consume", "admin"]}
//! ]}
//! ```
//! A token listed in several entries has every entry's grants.
//! Queue patterns are `globset` globs under a thin layer that keeps RestMQ's two wildcards
//! only: `*` (any run, `**` the same) and `?`; `[`, `{` and `\` stay literal characters.

use std::path::Path;

use globset::{GlobBuilder, GlobMatcher};
use serde::Deserialize;

use super::secret::ct_eq;
use super::AuthConfigError;

/// What a grant lets a token do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Right {
    /// Add messages.
    Produce,
    /// Read and remove messages, streaming or not.
    Consume,
    /// Purge, policy, pause, figures, listings.
    Admin,
    /// Look without taking: observe streams, browse, soft gets, history, the consumers
    /// list. Implied by `consume` and by `admin`.
    Observe,
}

impl Right {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Produce => "produce",
            Self::Consume => "consume",
            Self::Admin => "admin",
            Self::Observe => "observe",
        }
    }

    /// Whether holding this right grants `wanted`.
    pub fn grants(self, wanted: Right) -> bool {
        self == wanted || (wanted == Self::Observe && matches!(self, Self::Consume | Self::Admin))
    }
}

/// Which queues a check is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// One queue, by name.
    Queue(String),
    /// Every queue (listings and server-wide figures): needs a grant on the pattern `*`.
    All,
}

/// One entry of the file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenEntry {
    /// A label for logs; never the secret.
    #[serde(default)]
    pub name: String,
    pub token: String,
    /// Queue-name globs: `*` matches any run of characters, `?` one character.
    pub queues: Vec<String>,
    pub rights: Vec<Right>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenFile {
    tokens: Vec<TokenEntry>,
}

/// Why a token check failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenError {
    /// No such token: 401.
    Unknown,
    /// The token exists but lacks the right on that scope: 403.
    NotGranted { name: String },
}

/// An entry with its queue patterns compiled.
#[derive(Debug, Clone)]
struct Grant {
    entry: TokenEntry,
    queues: Vec<QueuePattern>,
}

/// The loaded tokens.
#[derive(Debug, Clone)]
pub struct Tokens {
    grants: Vec<Grant>,
}

impl Tokens {
    /// Reads and checks the token file.
    pub fn load(path: &Path) -> Result<Self, AuthConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| AuthConfigError::Read { path: path.to_owned(), error: e.to_string() })?;
        Self::parse(&text).map_err(|error| AuthConfigError::Tokens { path: path.to_owned(), error })
    }

    /// Parses the JSON text of a token file.
    pub fn parse(text: &str) -> Result<Self, String> {
        let file: TokenFile = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let mut grants = Vec::with_capacity(file.tokens.len());
        for (i, entry) in file.tokens.into_iter().enumerate() {
            if entry.token.trim().is_empty() {
                return Err(format!("entry {i} has an empty token"));
            }
            if entry.queues.is_empty() || entry.rights.is_empty() {
                return Err(format!(
                    "entry {i} ({}) needs at least one queue pattern and one right",
                    entry.name
                ));
            }
            let queues = entry.queues.iter().map(|p| QueuePattern::new(p)).collect::<Result<_, _>>();
            let queues = queues.map_err(|e| format!("entry {i} ({}): {e}", entry.name))?;
            grants.push(Grant { entry, queues });
        }
        Ok(Self { grants })
    }

    /// Checks that `token` grants `right` on `scope`; answers the token's name.
    pub fn authorize(&self, token: &str, right: Option<Right>, scope: &Scope) -> Result<String, TokenError> {
        // Every entry is compared, so the time taken does not tell which one matched.
        let matching: Vec<&Grant> =
            self.grants.iter().filter(|g| ct_eq(g.entry.token.as_bytes(), token.as_bytes())).collect();
        let first = &matching.first().ok_or(TokenError::Unknown)?.entry;
        let name = if first.name.is_empty() { "unnamed".to_owned() } else { first.name.clone() };
        let Some(right) = right else { return Ok(name) };
        let granted = matching.iter().any(|g| {
            g.entry.rights.iter().any(|r| r.grants(right))
                && g.queues.iter().any(|p| match scope {
                    Scope::Queue(queue) => p.matches(queue),
                    Scope::All => p.is_everything(),
                })
        });
        if granted {
            Ok(name)
        } else {
            Err(TokenError::NotGranted { name })
        }
    }
}

/// A queue-name glob: `*` is any run of characters (dots included), `?` exactly one, and
/// every other character stands for itself. `globset` matches bytes, so `?` is one byte: the
/// same as one character for every valid (ASCII) queue name.
#[derive(Debug, Clone)]
pub struct QueuePattern {
    text: String,
    matcher: GlobMatcher,
}

impl QueuePattern {
    /// Compiles `pattern`; runs of `*` are one `*` (queue names have no `/` for `**` to cross).
    pub fn new(pattern: &str) -> Result<Self, String> {
        let mut glob = String::with_capacity(pattern.len() + 8);
        for c in pattern.chars() {
            match c {
                '*' if glob.ends_with('*') => {}
                '*' | '?' => glob.push(c),
                c => glob.push_str(&globset::escape(c.encode_utf8(&mut [0; 4]))),
            }
        }
        let matcher = GlobBuilder::new(&glob)
            .literal_separator(false)
            .backslash_escape(false)
            .build()
            .map_err(|e| format!("queue pattern {pattern:?}: {e}"))?
            .compile_matcher();
        Ok(Self { text: pattern.to_owned(), matcher })
    }

    /// Whether `queue` matches.
    pub fn matches(&self, queue: &str) -> bool {
        self.matcher.is_match(queue)
    }

    /// Whether the pattern is exactly `*`, the one that grants rights on every queue at once.
    pub fn is_everything(&self) -> bool {
        self.text == "*"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn glob_match(pattern: &str, name: &str) -> bool {
        QueuePattern::new(pattern).unwrap().matches(name)
    }

    /// `*` crosses dots, `?` is one character, the rest is literal.
    #[test]
    fn globs_match_queue_names() {
        assert!(glob_match("*", "anything.at:all"));
        assert!(glob_match("jobs.*", "jobs.email"));
        assert!(glob_match("jobs.*", "jobs.a.b"));
        assert!(!glob_match("jobs.*", "jobs"));
        assert!(!glob_match("jobs.*", "myjobs.x"));
        assert!(glob_match("*.dead", "jobs.dead"));
        assert!(glob_match("q?", "q1"));
        assert!(!glob_match("q?", "q12"));
        assert!(glob_match("a*b*c", "a-x-b-y-c"));
        assert!(!glob_match("a*b*c", "a-x-c-y-b"));
        assert!(glob_match("exact", "exact"));
        assert!(!glob_match("exact", "exactly"));
    }

    /// `**` is `*`; glob syntax beyond `*` and `?` (classes, alternations, escapes) is literal,
    /// so no pattern grants more than it did; non-ASCII and empty patterns behave.
    #[test]
    fn globs_keep_restmq_wildcards_only() {
        assert!(glob_match("**", "a.b:c"));
        assert!(glob_match("jobs.**", "jobs.a.b"));
        assert!(glob_match("a**b", "a-x-b"));
        assert!(!glob_match("jobs.**", "jobs"));
        assert!(glob_match("***.dead", "x.dead"));
        assert!(!glob_match("jobs.[ab]", "jobs.a"));
        assert!(glob_match("jobs.[ab]", "jobs.[ab]"));
        assert!(!glob_match("{a,b}", "a"));
        assert!(glob_match("{a,b}", "{a,b}"));
        assert!(!glob_match("a\\*", "a*"));
        assert!(glob_match("a\\*", "a\\xyz"));
        assert!(!glob_match("q?", "qé"), "`?` is one byte; queue names are ASCII");
        assert!(glob_match("q??", "qé"));
        assert!(glob_match("é*", "été"));
        assert!(glob_match("", ""));
        assert!(!glob_match("", "a"));
        assert!(glob_match("a/b", "a/b") && glob_match("*", "a/b"), "`/` is an ordinary character");
    }

    const FILE: &str = r#"{"tokens": [
        {"name": "ingest", "token": "tp", "queues": ["jobs.*"], "rights": ["produce"]},
        {"name": "ingest", "token": "tp", "queues": ["logs"], "rights": ["consume"]},
        {"name": "ops", "token": "ta", "queues": ["*"], "rights": ["admin"]}
    ]}"#;

    #[test]
    fn tokens_grant_rights_on_patterns() {
        let tokens = Tokens::parse(FILE).unwrap();
        let q = |s: &str| Scope::Queue(s.to_owned());
        assert_eq!(tokens.authorize("tp", Some(Right::Produce), &q("jobs.a")), Ok("ingest".to_owned()));
        assert_eq!(tokens.authorize("tp", Some(Right::Consume), &q("logs")), Ok("ingest".to_owned()));
        assert!(matches!(
            tokens.authorize("tp", Some(Right::Consume), &q("jobs.a")),
            Err(TokenError::NotGranted { .. })
        ));
        assert!(matches!(
            tokens.authorize("tp", Some(Right::Produce), &Scope::All),
            Err(TokenError::NotGranted { .. })
        ));
        assert_eq!(tokens.authorize("ta", Some(Right::Admin), &Scope::All), Ok("ops".to_owned()));
        assert_eq!(tokens.authorize("nope", None, &Scope::All), Err(TokenError::Unknown));
        assert_eq!(tokens.authorize("t", None, &Scope::All), Err(TokenError::Unknown));
    }

    #[test]
    fn bad_files_are_refused() {
        assert!(Tokens::parse("{}").is_err());
        assert!(Tokens::parse(r#"{"tokens":[{"token":"","queues":["*"],"rights":["admin"]}]}"#).is_err());
        assert!(Tokens::parse(r#"{"tokens":[{"token":"t","queues":[],"rights":["admin"]}]}"#).is_err());
        assert!(Tokens::parse(r#"{"tokens":[{"token":"t","queues":["*"],"rights":["root"]}]}"#).is_err());
        assert!(Tokens::parse(r#"{"tokens":[{"token":"t","queue":["*"],"rights":["admin"]}]}"#).is_err());
        let odd = r#"{"tokens":[{"token":"t","queues":["[","{","\\","**"],"rights":["admin"]}]}"#;
        let tokens = Tokens::parse(odd).unwrap();
        assert!(tokens.authorize("t", Some(Right::Admin), &Scope::Queue("q".to_owned())).is_ok(), "`**`");
        assert!(tokens.authorize("t", Some(Right::Admin), &Scope::All).is_err(), "only `*` is every queue");
    }
}
