//! `restmq serve --config restmq.toml`: a TOML file of `serve` flags, by their long names
//! (`listen = "0.0.0.0:8888"`, `redis-url = "…"` or `redis_url`, `feed = ["system", …]`,
//! `redis-cluster = true`). A flag given on the command line or in the environment wins over
//! the file; a key that names no flag is an error that names it.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::parser::ValueSource;
use clap::{ArgAction, CommandFactory};

use crate::config::Cli;

/// The command line with the config file's settings put in for every flag that neither the
/// command line nor the environment sets. Anything but `serve --config FILE` is returned as is.
pub fn with_config_file(args: Vec<OsString>) -> Result<Vec<OsString>, String> {
    let Ok(matches) = Cli::command().try_get_matches_from(&args) else { return Ok(args) };
    let Some(serve) = matches.subcommand_matches("serve") else { return Ok(args) };
    let Some(path) = serve.get_one::<PathBuf>("config") else { return Ok(args) };
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let table: toml::Table = text.parse().map_err(|e| format!("{}: {e}", path.display()))?;
    let command = Cli::command();
    let serve_command = command.find_subcommand("serve").ok_or("no serve command")?;
    let mut unknown = Vec::new();
    let mut added = Vec::new();
    for (key, value) in &table {
        let long = key.replace('_', "-");
        let Some(arg) = serve_command.get_arguments().find(|a| a.get_long() == Some(long.as_str())) else {
            unknown.push(key.clone());
            continue;
        };
        if long == "config" {
            return Err(format!("{}: `config` cannot name another file", path.display()));
        }
        let id = arg.get_id().as_str();
        if !matches!(serve.value_source(id), None | Some(ValueSource::DefaultValue)) {
            continue; // the command line or the environment sets it
        }
        let takes_value = !matches!(arg.get_action(), ArgAction::SetTrue | ArgAction::SetFalse);
        for item in values(value).map_err(|e| format!("{}: `{key}`: {e}", path.display()))? {
            match (takes_value, item.as_str()) {
                (true, _) => added.extend([OsString::from(format!("--{long}")), OsString::from(item)]),
                (false, "true") => added.push(OsString::from(format!("--{long}"))),
                (false, "false") => {}
                (false, other) => {
                    return Err(format!("{}: `{key}` is true or false, not {other}", path.display()))
                }
            }
        }
    }
    if !unknown.is_empty() {
        return Err(format!("{}: unknown settings: {}", path.display(), unknown.join(", ")));
    }
    let at = args.iter().position(|a| a == "serve").map_or(args.len(), |i| i + 1);
    let mut merged = args;
    merged.splice(at..at, added);
    Ok(merged)
}

/// A TOML value as flag values: a string, number or boolean as itself, an array as each item.
fn values(value: &toml::Value) -> Result<Vec<String>, String> {
    match value {
        toml::Value::String(s) => Ok(vec![s.clone()]),
        toml::Value::Integer(n) => Ok(vec![n.to_string()]),
        toml::Value::Float(f) => Ok(vec![f.to_string()]),
        toml::Value::Boolean(b) => Ok(vec![b.to_string()]),
        toml::Value::Array(items) => {
            items.iter().map(values).collect::<Result<Vec<_>, _>>().map(|v| v.concat())
        }
        _ => Err("expected a string, number, boolean or a list of them".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::config::{Command, StoreKind};

    fn parse(file: &str, extra: &[&str]) -> Result<crate::config::ServeConfig, String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("restmq.toml");
        std::fs::write(&path, file).unwrap();
        let mut args: Vec<OsString> = ["restmq", "serve", "--config"].iter().map(OsString::from).collect();
        args.push(path.into_os_string());
        args.extend(extra.iter().map(OsString::from));
        let merged = with_config_file(args)?;
        match Cli::try_parse_from(merged).map_err(|e| e.to_string())?.command {
            Command::Serve(config) => Ok(config),
            _ => unreachable!("serve"),
        }
    }

    /// File settings apply, by either spelling; the command line wins over the file.
    #[test]
    fn file_then_command_line() {
        let file = "listen = \"127.0.0.1:9999\"\nstore = \"memory\"\nmax_message_bytes = 2048\n\
                    redis-cluster = true\nfeed = [\"system\", \"system:queue=cpu\"]\n";
        let config = parse(file, &["--max-message-bytes", "4096"]).unwrap();
        assert_eq!(config.listen.to_string(), "127.0.0.1:9999");
        assert_eq!(config.store, StoreKind::Memory);
        assert_eq!(config.max_message_bytes, 4096, "the flag wins");
        assert!(config.redis_cluster);
        assert_eq!(config.feeds.len(), 2);
    }

    /// The example shipped in `contrib/` is a valid file.
    #[test]
    fn shipped_example_parses() {
        let example =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../contrib/restmq.toml")).unwrap();
        let config = parse(&example, &[]).unwrap();
        assert_eq!(config.heartbeat_secs, 20);
        assert_eq!(config.data_dir, std::path::Path::new("/var/lib/restmq"));
    }

    /// Keys that name no flag are an error that names every one of them; so are bad types.
    #[test]
    fn unknown_keys_and_bad_values_are_named() {
        let err = parse("listen = \"127.0.0.1:1\"\nlisten_port = 1\nfrobnicate = true\n", &[]).unwrap_err();
        assert!(err.contains("unknown settings: frobnicate, listen_port"), "{err}");
        let err = parse("redis-cluster = \"yes\"\n", &[]).unwrap_err();
        assert!(err.contains("true or false"), "{err}");
        let err = parse("listen = { a = 1 }\n", &[]).unwrap_err();
        assert!(err.contains("`listen`"), "{err}");
        assert!(parse("store = \"nonsense\"\n", &[]).is_err(), "values are checked as flags are");
    }
}
