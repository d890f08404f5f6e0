//! Batch bodies for `POST /q/<queue>`: NDJSON (`application/x-ndjson`, one message per
//! line) or a JSON array with `?batch=1`. Each item is a message value: JSON strings are
//! taken as they are, anything else as its compact JSON text.

use restmq_shared::protocol::value_to_text;
use serde_json::Value;

use crate::error::ApiError;
use crate::extract::Args;

/// The most messages in one batch.
pub const MAX_BATCH: usize = 10_000;

/// The batch carried by this request, if it is one. Any bad item refuses the whole batch.
pub fn batch_values(args: &Args) -> Result<Option<Vec<String>>, ApiError> {
    let Some(raw) = &args.raw else {
        return if args.flag("batch") { Err(ApiError::MissingArgument("body")) } else { Ok(None) };
    };
    let essence = raw.content_type.as_ref().map(|m| m.essence_str().to_owned());
    let ndjson = matches!(
        essence.as_deref(),
        Some("application/x-ndjson" | "application/jsonl" | "application/json-seq")
    );
    if !ndjson && !args.flag("batch") {
        return Ok(None);
    }
    let text = std::str::from_utf8(&raw.bytes)
        .map_err(|_| ApiError::MalformedJson("body is not UTF-8".to_owned()))?;
    let values = match essence.as_deref() {
        _ if ndjson => text
            .lines()
            .enumerate()
            .filter(|(_, line)| !line.trim().is_empty())
            .map(|(i, line)| {
                serde_json::from_str::<Value>(line)
                    .map(value_to_text)
                    .map_err(|e| ApiError::MalformedJson(format!("line {}: {e}", i + 1)))
            })
            .collect::<Result<Vec<_>, _>>()?,
        _ if args.flag("batch") => match serde_json::from_str::<Value>(text) {
            Ok(Value::Array(items)) => items.into_iter().map(value_to_text).collect(),
            Ok(_) => return Err(ApiError::InvalidArgument("batch=1 needs a JSON array body".to_owned())),
            Err(e) => return Err(ApiError::MalformedJson(e.to_string())),
        },
        _ => return Ok(None),
    };
    if values.is_empty() {
        return Err(ApiError::MissingArgument("value"));
    }
    if values.len() > MAX_BATCH {
        return Err(ApiError::TooLarge(format!("a batch holds at most {MAX_BATCH} messages")));
    }
    Ok(Some(values))
}
