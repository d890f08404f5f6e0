//! Filters and maps applied to a feed's messages before they are published.
//!
//! A message is a JSON value: a document, or a string for a plain text line. A field path is
//! dotted (`cpu.total`, `top.0.name`); `.` is the whole message. `path=value` keeps messages
//! whose field equals `value`, `path~regex` those whose field matches; `!=` and `!~` negate.
//! Numbers and booleans compare by their JSON text (`n=2`, `ok=true`). `map=a,b.c` keeps only
//! the listed fields of a JSON object (nested as they were); other messages pass unchanged.

use regex::Regex;
use serde_json::{Map, Value};

/// What a feed does to each message: every filter must hold, then the map applies.
#[derive(Debug, Clone, Default)]
pub struct Pipeline {
    pub filters: Vec<Filter>,
    pub map: Option<Vec<FieldPath>>,
}

impl Pipeline {
    /// The message to publish, or `None` when a filter drops it.
    pub fn apply(&self, message: Value) -> Option<Value> {
        if !self.filters.iter().all(|f| f.keeps(&message)) {
            return None;
        }
        Some(match (&self.map, message) {
            (Some(fields), Value::Object(object)) => pick(fields, &Value::Object(object)),
            (_, message) => message,
        })
    }
}

/// A dotted path into a JSON value; empty for the whole value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldPath(Vec<String>);

impl FieldPath {
    pub fn parse(text: &str) -> Self {
        Self(text.split('.').filter(|s| !s.is_empty()).map(str::to_owned).collect())
    }

    /// The value at this path, if there is one.
    pub fn lookup<'v>(&self, mut value: &'v Value) -> Option<&'v Value> {
        for segment in &self.0 {
            value = match value {
                Value::Object(object) => object.get(segment)?,
                Value::Array(items) => items.get(segment.parse::<usize>().ok()?)?,
                _ => return None,
            };
        }
        Some(value)
    }
}

/// One `filter=` condition.
#[derive(Debug, Clone)]
pub struct Filter {
    path: FieldPath,
    test: Test,
    negate: bool,
}

#[derive(Debug, Clone)]
enum Test {
    Equals(String),
    Matches(Regex),
}

impl Filter {
    /// Parses `path=value`, `path!=value`, `path~regex` or `path!~regex`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let at = text
            .find(['=', '~'])
            .ok_or_else(|| format!("filter {text:?} needs field=value or field~regex"))?;
        let (mut field, op, rhs) = (&text[..at], &text[at..at + 1], &text[at + 1..]);
        let negate = field.ends_with('!');
        if negate {
            field = &field[..field.len() - 1];
        }
        let test = if op == "~" {
            Test::Matches(Regex::new(rhs).map_err(|e| format!("filter {text:?}: bad regex: {e}"))?)
        } else {
            Test::Equals(rhs.to_owned())
        };
        Ok(Self { path: FieldPath::parse(field), test, negate })
    }

    /// Whether the message passes. A missing field never equals nor matches.
    pub fn keeps(&self, message: &Value) -> bool {
        let found = self.path.lookup(message).is_some_and(|value| {
            let text = as_text(value);
            match &self.test {
                Test::Equals(expected) => text == *expected,
                Test::Matches(regex) => regex.is_match(&text),
            }
        });
        found != self.negate
    }
}

/// A value as text for comparing: strings as they are, anything else as compact JSON.
fn as_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The listed fields of `message`, nested as in the original; missing ones are left out.
fn pick(fields: &[FieldPath], message: &Value) -> Value {
    let mut out = Value::Object(Map::new());
    for field in fields {
        let Some(found) = field.lookup(message) else { continue };
        if field.0.is_empty() {
            return message.clone();
        }
        let mut slot = &mut out;
        for segment in &field.0 {
            let Value::Object(object) = slot else { break };
            slot = object.entry(segment.clone()).or_insert_with(|| Value::Object(Map::new()));
        }
        *slot = found.clone();
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn pipeline(filters: &[&str], map: Option<&[&str]>) -> Pipeline {
        Pipeline {
            filters: filters.iter().map(|f| Filter::parse(f).unwrap()).collect(),
            map: map.map(|m| m.iter().map(|f| FieldPath::parse(f)).collect()),
        }
    }

    /// Equality, regex, negation, nested paths, array indexes and numbers all decide as documented.
    #[test]
    fn filters_keep_and_drop() {
        let m = json!({"host": "web-1", "n": 2, "cpu": {"cores": [10.5, 90]}, "ok": true});
        let keeps = |f: &str| Filter::parse(f).unwrap().keeps(&m);
        assert!(keeps("host=web-1"));
        assert!(!keeps("host=web"));
        assert!(keeps("host~^web-\\d$"));
        assert!(!keeps("host!~^web"));
        assert!(keeps("host!=db-1"));
        assert!(keeps("n=2"));
        assert!(keeps("ok=true"));
        assert!(keeps("cpu.cores.1=90"));
        assert!(keeps("cpu.cores.0~^10\\."));
        assert!(!keeps("missing=x"));
        assert!(keeps("missing!=x"));
    }

    /// `.` is the whole message, so plain text lines can be filtered too.
    #[test]
    fn whole_message() {
        let line = Value::String("The queue is long".into());
        assert!(Filter::parse(".~queue").unwrap().keeps(&line));
        assert!(!Filter::parse(".~^queue").unwrap().keeps(&line));
    }

    /// A map keeps only listed fields, nested as they were, and leaves text lines alone.
    #[test]
    fn map_picks_fields() {
        let p = pipeline(&[], Some(&["host", "cpu.total", "nothing"]));
        let m = json!({"host": "h", "cpu": {"total": 5, "cores": [1]}, "extra": 1});
        assert_eq!(p.apply(m), Some(json!({"host": "h", "cpu": {"total": 5}})));
        assert_eq!(p.apply(json!("line")), Some(json!("line")));
    }

    /// Filters see the message before the map, and all of them must hold.
    #[test]
    fn filters_then_map() {
        let p = pipeline(&["level=error", "app~^api"], Some(&["msg"]));
        let m = json!({"level": "error", "app": "api-2", "msg": "boom"});
        assert_eq!(p.apply(m), Some(json!({"msg": "boom"})));
        assert_eq!(p.apply(json!({"level": "info", "app": "api", "msg": "ok"})), None);
    }

    /// A filter without an operator or with a bad regex is refused.
    #[test]
    fn bad_filters() {
        assert!(Filter::parse("host").is_err());
        assert!(Filter::parse("host~[").unwrap_err().contains("bad regex"));
    }
}
