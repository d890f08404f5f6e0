//! Bearer tokens from a JSON file (`--auth-tokens`), each granting rights on queue patterns.
//!
//! ```json
//! {"tokens": [
//!   {"name": "ingest", "token": "…", "queues": ["jobs.*"], "rights": ["produce"]},
//!   {"name": "ops", "token": "…", "queues": ["*"], "rights": ["produce", "consume", "admin"]}
//! ]}
//! ```
//! A token listed in several entries has every entry's grants.

use std::path::Path;

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

/// The loaded tokens.
#[derive(Debug, Clone)]
pub struct Tokens {
    entries: Vec<TokenEntry>,
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
        for (i, entry) in file.tokens.iter().enumerate() {
            if entry.token.trim().is_empty() {
                return Err(format!("entry {i} has an empty token"));
            }
            if entry.queues.is_empty() || entry.rights.is_empty() {
                return Err(format!(
                    "entry {i} ({}) needs at least one queue pattern and one right",
                    entry.name
                ));
            }
        }
        Ok(Self { entries: file.tokens })
    }

    /// Checks that `token` grants `right` on `scope`; answers the token's name.
    pub fn authorize(&self, token: &str, right: Option<Right>, scope: &Scope) -> Result<String, TokenError> {
        // Every entry is compared, so the time taken does not tell which one matched.
        let matching: Vec<&TokenEntry> =
            self.entries.iter().filter(|e| ct_eq(e.token.as_bytes(), token.as_bytes())).collect();
        let first = matching.first().ok_or(TokenError::Unknown)?;
        let name = if first.name.is_empty() { "unnamed".to_owned() } else { first.name.clone() };
        let Some(right) = right else { return Ok(name) };
        let granted = matching.iter().any(|e| {
            e.rights.iter().any(|r| r.grants(right))
                && e.queues.iter().any(|p| match scope {
                    Scope::Queue(queue) => glob_match(p, queue),
                    Scope::All => p == "*",
                })
        });
        if granted {
            Ok(name)
        } else {
            Err(TokenError::NotGranted { name })
        }
    }
}

/// Whether `name` matches `pattern`, where `*` is any run of characters (dots included) and
/// `?` exactly one.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    let (mut pi, mut ni) = (0, 0);
    let mut backtrack: Option<(usize, usize)> = None;
    while ni < n.len() {
        match p.get(pi) {
            Some('*') => {
                backtrack = Some((pi, ni));
                pi += 1;
            }
            Some(&c) if c == '?' || c == n[ni] => {
                pi += 1;
                ni += 1;
            }
            _ => match backtrack {
                Some((star, matched)) => {
                    pi = star + 1;
                    ni = matched + 1;
                    backtrack = Some((star, matched + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

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
    }
}
