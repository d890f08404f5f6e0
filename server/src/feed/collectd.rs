//! collectd bodies as messages, for `POST /collectd/data` and `/collectd/event`: collectd's
//! plain text protocol (`PUTVAL`, `PUTNOTIF`), its notification text (`Severity: …` headers,
//! a blank line, the message), or the JSON of its `write_http` plugin. One message per value
//! list or notification.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Map, Number, Value};

/// `/collectd/data`: one message per value list.
pub fn data_messages(body: &str) -> Result<Vec<Value>, String> {
    if let Some(json) = json_messages(body)? {
        return Ok(json);
    }
    lines(body)
        .map(|line| match tokens(line)?.as_slice() {
            [cmd, id, rest @ ..] if cmd.eq_ignore_ascii_case("PUTVAL") => putval(id, rest),
            _ => Err(format!("expected PUTVAL, got {line:?}")),
        })
        .collect::<Result<Vec<Vec<Value>>, String>>()
        .map(|lists| lists.into_iter().flatten().collect())
}

/// `/collectd/event`: one message per notification.
pub fn event_messages(body: &str) -> Result<Vec<Value>, String> {
    if let Some(json) = json_messages(body)? {
        return Ok(json);
    }
    if lines(body).next().is_some_and(|l| l.trim_start().to_ascii_uppercase().starts_with("PUTNOTIF")) {
        return lines(body).map(putnotif).collect();
    }
    let mut event = Map::new();
    let mut text = body.trim_start_matches(['\r', '\n']).lines();
    for line in text.by_ref() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            break;
        }
        let (key, value) =
            line.split_once(':').ok_or_else(|| format!("expected a `Key: value` header, got {line:?}"))?;
        event.insert(key.trim().to_ascii_lowercase(), Value::String(value.trim().to_owned()));
    }
    if event.is_empty() {
        return Err("empty notification".to_owned());
    }
    let message: Vec<&str> = text.collect();
    event.insert("message".to_owned(), Value::String(message.join("\n").trim().to_owned()));
    Ok(vec![with_event_text(event)])
}

/// Adds RestMQ's name for a notification's text, `event_text`, beside `message`.
fn with_event_text(mut event: Map<String, Value>) -> Value {
    if let Some(text) = event.get("message").cloned() {
        event.entry("event_text").or_insert(text);
    }
    Value::Object(event)
}

/// A JSON body (`write_http` sends an array): its elements, or `None` for a text body.
fn json_messages(body: &str) -> Result<Option<Vec<Value>>, String> {
    let trimmed = body.trim_start();
    if !trimmed.starts_with(['[', '{']) {
        return Ok(None);
    }
    match serde_json::from_str(trimmed).map_err(|e| format!("malformed JSON: {e}"))? {
        Value::Array(items) => Ok(Some(items)),
        other => Ok(Some(vec![other])),
    }
}

fn lines(body: &str) -> impl Iterator<Item = &str> {
    body.lines().map(str::trim).filter(|l| !l.is_empty())
}

/// `PUTVAL host/plugin[-inst]/type[-inst] [interval=10] time:v1[:v2…] …`
fn putval(id: &str, rest: &[String]) -> Result<Vec<Value>, String> {
    let [host, plugin, kind] = id.splitn(3, '/').collect::<Vec<_>>()[..] else {
        return Err(format!("identifier {id:?} is not host/plugin/type"));
    };
    let (plugin, plugin_instance) = plugin.split_once('-').unwrap_or((plugin, ""));
    let (kind, type_instance) = kind.split_once('-').unwrap_or((kind, ""));
    let mut interval = Value::Null;
    let mut out = Vec::new();
    for token in rest {
        if let Some(value) = token.strip_prefix("interval=") {
            interval = number(value).ok_or_else(|| format!("bad interval {value:?}"))?;
            continue;
        }
        let mut parts = token.split(':');
        let time = match parts.next() {
            Some("N") => json!(now()),
            Some(t) => number(t).ok_or_else(|| format!("bad time in {token:?}"))?,
            None => unreachable!("split yields at least one part"),
        };
        let values = parts
            .map(|v| if v == "U" { Some(Value::Null) } else { number(v) })
            .collect::<Option<Vec<_>>>()
            .filter(|v| !v.is_empty())
            .ok_or_else(|| format!("bad value list {token:?}"))?;
        out.push(json!({
            "host": host, "plugin": plugin, "plugin_instance": plugin_instance,
            "type": kind, "type_instance": type_instance,
            "interval": interval, "time": time, "values": values,
        }));
    }
    if out.is_empty() {
        return Err(format!("PUTVAL {id} has no values"));
    }
    Ok(out)
}

/// `PUTNOTIF severity=warning time=… host=… message="…"`
fn putnotif(line: &str) -> Result<Value, String> {
    let mut event = Map::new();
    for token in tokens(line)?.iter().skip(1) {
        let (key, value) =
            token.split_once('=').ok_or_else(|| format!("expected key=value, got {token:?}"))?;
        event.insert(key.to_ascii_lowercase(), Value::String(value.to_owned()));
    }
    if !event.contains_key("message") {
        return Err("PUTNOTIF needs message=".to_owned());
    }
    Ok(with_event_text(event))
}

/// Splits on spaces; `"…"` quotes (with `\` escapes) may appear anywhere in a token.
fn tokens(line: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut current: Option<String> = None;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' => out.extend(current.take()),
            '"' => {
                let token = current.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => token.extend(chars.next()),
                        Some(c) => token.push(c),
                        None => return Err(format!("unclosed quote in {line:?}")),
                    }
                }
            }
            c => current.get_or_insert_with(String::new).push(c),
        }
    }
    out.extend(current);
    Ok(out)
}

/// An integer stays an integer; anything else numeric becomes a float.
fn number(text: &str) -> Option<Value> {
    if let Ok(n) = text.parse::<i64>() {
        return Some(Value::Number(n.into()));
    }
    text.parse::<f64>().ok().and_then(Number::from_f64).map(Value::Number)
}

fn now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// PUTVAL lines split the identifier, keep the interval and turn `U` into null.
    #[test]
    fn putval_lines() {
        let body = "PUTVAL \"web-1/cpu-0/cpu-idle\" interval=10 1288548767:98.5\n\
                    PUTVAL web-1/df/df-boot 1288548767:116497408:U\n";
        let got = data_messages(body).unwrap();
        assert_eq!(
            got[0],
            json!({
                "host": "web-1", "plugin": "cpu", "plugin_instance": "0", "type": "cpu",
                "type_instance": "idle", "interval": 10, "time": 1288548767, "values": [98.5],
            })
        );
        assert_eq!(got[1]["values"], json!([116497408, null]));
        assert_eq!(got[1]["plugin_instance"], "");
    }

    /// `N` as the time means now; a broken line is an error that names it.
    #[test]
    fn putval_now_and_errors() {
        let got = data_messages("PUTVAL h/load/load N:0.1:0.2:0.3").unwrap();
        assert!(got[0]["time"].as_f64().unwrap() > 1.6e9);
        assert!(data_messages("PUTVAL h/load 1:2").unwrap_err().contains("host/plugin/type"));
        assert!(data_messages("GETVAL h/a/b").unwrap_err().contains("PUTVAL"));
        assert!(data_messages("PUTVAL h/a/b 1:x").unwrap_err().contains("bad value list"));
    }

    /// write_http's JSON: each element of the array is one message, unchanged.
    #[test]
    fn json_bodies() {
        let body = r#"[{"values":[1],"host":"a"},{"values":[2],"host":"b"}]"#;
        let got = data_messages(body).unwrap();
        assert_eq!(got, vec![json!({"values":[1],"host":"a"}), json!({"values":[2],"host":"b"})]);
        assert!(data_messages("[1,").unwrap_err().contains("malformed JSON"));
    }

    /// A notification in collectd's exec text: lowercased headers plus the message, also as
    /// RestMQ's `event_text`.
    #[test]
    fn notification_text() {
        let body = "Severity: FAILURE\nTime: 1200928930.515\nHost: myhost.mydomain.org\n\n\
                    This is a test notification\nwith two lines\n";
        let got = event_messages(body).unwrap();
        assert_eq!(
            got,
            vec![json!({
                "severity": "FAILURE", "time": "1200928930.515", "host": "myhost.mydomain.org",
                "message": "This is a test notification\nwith two lines",
                "event_text": "This is a test notification\nwith two lines",
            })]
        );
    }

    /// PUTNOTIF with quoted values.
    #[test]
    fn putnotif_line() {
        let got = event_messages(r#"PUTNOTIF severity=warning time=1 host=h message="disk \"boot\" full""#);
        assert_eq!(
            got.unwrap(),
            vec![json!({
                "severity": "warning", "time": "1", "host": "h", "message": "disk \"boot\" full",
                "event_text": "disk \"boot\" full",
            })]
        );
        assert!(event_messages("").is_err());
    }
}
