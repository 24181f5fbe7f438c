//! Just enough of PostgreSQL (through `psql`), Redis (RESP) and NATS (its text protocol, for
//! JetStream's API) to remove what an isolated run made: a database, the keys of a Redis
//! namespace, the streams of a NATS subject prefix; and to check that they are gone.
//!
//! xtask depends on `anyhow` only, so these are small hand-written clients over `TcpStream`.
//! None speaks TLS (`rediss://`, a NATS server requiring TLS): they are for the loopback
//! services of a development machine or a CI box.

use std::io::{BufRead, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, Result, bail, ensure};

use crate::cmd::Cmd;
use crate::services::{connect, host_port, redact};

const IO_TIMEOUT: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------------------------
// URLs

/// `scheme://authority` and what follows it (`/path?query#fragment`).
fn split_url(url: &str) -> Result<(&str, &str)> {
    let (_, rest) = url
        .split_once("://")
        .with_context(|| format!("{} is not a URL", redact(url)))?;
    let authority_end = url.len() - rest.len() + rest.find(['/', '?', '#']).unwrap_or(rest.len());
    Ok(url.split_at(authority_end))
}

/// The user and password of a URL (`scheme://user:password@host…`), percent-decoded.
fn credentials(url: &str) -> Result<(Option<String>, Option<String>)> {
    let (head, _) = split_url(url)?;
    let authority = head.split_once("://").map_or(head, |(_, rest)| rest);
    let Some((userinfo, _)) = authority.rsplit_once('@') else {
        return Ok((None, None));
    };
    let (user, password) = match userinfo.split_once(':') {
        Some((user, password)) => (user, Some(password)),
        None => (userinfo, None),
    };
    let user = (!user.is_empty()).then(|| percent_decode(user));
    Ok((user, password.map(percent_decode)))
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The database a PostgreSQL URL names.
pub fn database_name(url: &str) -> Result<String> {
    let (_, tail) = split_url(url)?;
    let path = tail.split(['?', '#']).next().unwrap_or_default();
    let name = path.trim_start_matches('/');
    ensure!(!name.is_empty(), "{} names no database", redact(url));
    Ok(percent_decode(name))
}

/// The PostgreSQL URL with its database replaced by `name` (the query, if any, kept).
pub fn with_database(url: &str, name: &str) -> Result<String> {
    let (head, tail) = split_url(url)?;
    let query = tail.find(['?', '#']).map_or("", |at| &tail[at..]);
    Ok(format!("{head}/{name}{query}"))
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL, through psql

fn psql() -> Result<PathBuf> {
    crate::services::find_program("psql")
        .or_else(|| crate::services::pg_bin_dir().map(|dir| dir.join("psql")))
        .filter(|path| path.is_file())
        .context(
            "psql is needed to drop the test database: install the Debian package \
             postgresql-client",
        )
}

/// Runs one SQL statement on the `postgres` database of the server of `url`; returns psql's
/// unaligned, tuples-only output.
fn sql(url: &str, statement: &str) -> Result<String> {
    Cmd::new(psql()?)
        .args(["-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", "-d"])
        .arg(with_database(url, "postgres")?)
        .args(["-c", statement])
        .env("PGOPTIONS", "-c client_min_messages=warning")
        .current_dir("/")
        .read()
}

/// A database name xtask is willing to put into SQL (it makes its names itself).
fn plain_name(name: &str) -> Result<&str> {
    ensure!(
        !name.is_empty()
            && name
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || byte == b'_'),
        "refusing the database name {name:?}: only letters, digits and _"
    );
    Ok(name)
}

/// Drops the database `url` names, closing its connections (`WITH (FORCE)`, PostgreSQL 13+).
pub fn drop_database(url: &str) -> Result<()> {
    let name = database_name(url)?;
    let name = plain_name(&name)?;
    sql(
        url,
        &format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"),
    )
    .with_context(|| format!("cannot drop the database {name}"))?;
    Ok(())
}

/// Whether the database `url` names exists.
pub fn database_exists(url: &str) -> Result<bool> {
    let name = database_name(url)?;
    let name = plain_name(&name)?;
    let found = sql(
        url,
        &format!("SELECT 1 FROM pg_database WHERE datname = '{name}'"),
    )?;
    Ok(found.trim() == "1")
}

// ---------------------------------------------------------------------------------------------
// Redis (RESP2)

#[derive(Debug, PartialEq, Eq)]
enum Reply {
    Status(String),
    Int(i64),
    Bulk(Option<Vec<u8>>),
    Array(Option<Vec<Reply>>),
}

struct Redis {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Redis {
    fn connect(url: &str) -> Result<Self> {
        ensure!(
            !url.starts_with("rediss:"),
            "{}: TLS is not supported here",
            redact(url)
        );
        let (host, port) = host_port(url, 6379)?;
        let stream = connect(&host, port)?;
        stream.set_read_timeout(Some(IO_TIMEOUT))?;
        stream.set_write_timeout(Some(IO_TIMEOUT))?;
        let mut redis = Self {
            reader: BufReader::new(stream.try_clone()?),
            writer: stream,
        };
        match credentials(url)? {
            (Some(user), Some(password)) => {
                redis.command(&["AUTH", &user, &password])?;
            }
            (None, Some(password)) => {
                redis.command(&["AUTH", &password])?;
            }
            _ => {}
        }
        let (_, tail) = split_url(url)?;
        let db = tail.split(['?', '#']).next().unwrap_or_default();
        let db = db.trim_start_matches('/');
        if !db.is_empty() {
            redis.command(&["SELECT", db])?;
        }
        Ok(redis)
    }

    fn command(&mut self, args: &[&str]) -> Result<Reply> {
        let mut request = format!("*{}\r\n", args.len()).into_bytes();
        for arg in args {
            request.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
            request.extend_from_slice(arg.as_bytes());
            request.extend_from_slice(b"\r\n");
        }
        self.writer.write_all(&request)?;
        read_reply(&mut self.reader).with_context(|| format!("Redis {}", args[0]))
    }

    /// Every key matching `pattern`, one SCAN page at a time, passed to `each`.
    fn scan(
        &mut self,
        pattern: &str,
        mut each: impl FnMut(&mut Self, Vec<String>) -> Result<()>,
    ) -> Result<()> {
        let mut cursor = "0".to_owned();
        loop {
            let reply = self.command(&["SCAN", &cursor, "MATCH", pattern, "COUNT", "1000"])?;
            let Reply::Array(Some(mut parts)) = reply else {
                bail!("unexpected SCAN reply {reply:?}");
            };
            let (Some(Reply::Array(Some(keys))), Some(Reply::Bulk(Some(next)))) =
                (parts.pop(), parts.pop())
            else {
                bail!("unexpected SCAN reply");
            };
            let keys = keys
                .into_iter()
                .filter_map(|key| match key {
                    Reply::Bulk(Some(key)) => String::from_utf8(key).ok(),
                    _ => None,
                })
                .collect::<Vec<_>>();
            if !keys.is_empty() {
                each(self, keys)?;
            }
            cursor = String::from_utf8(next)?;
            if cursor == "0" {
                return Ok(());
            }
        }
    }
}

fn read_line(reader: &mut impl BufRead) -> Result<String> {
    let mut line = String::new();
    let read = reader.read_line(&mut line)?;
    ensure!(read > 0, "the connection was closed");
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

fn read_reply(reader: &mut impl BufRead) -> Result<Reply> {
    let line = read_line(reader)?;
    let (kind, rest) = line.split_at(line.len().min(1));
    Ok(match kind {
        "+" => Reply::Status(rest.to_owned()),
        "-" => bail!("{rest}"),
        ":" => Reply::Int(rest.parse()?),
        "$" => match rest.parse::<i64>()? {
            -1 => Reply::Bulk(None),
            len => {
                let mut data = vec![0; usize::try_from(len)? + 2];
                reader.read_exact(&mut data)?;
                data.truncate(data.len() - 2);
                Reply::Bulk(Some(data))
            }
        },
        "*" => match rest.parse::<i64>()? {
            -1 => Reply::Array(None),
            len => Reply::Array(Some(
                (0..len)
                    .map(|_| read_reply(reader))
                    .collect::<Result<_>>()?,
            )),
        },
        _ => bail!("not a Redis reply: {line:?}"),
    })
}

/// `namespace:*`, with the namespace's glob characters escaped.
fn namespace_pattern(namespace: &str) -> Result<String> {
    ensure!(!namespace.is_empty(), "refusing an empty Redis namespace");
    let mut pattern = String::new();
    for c in namespace.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push_str(":*");
    Ok(pattern)
}

/// Deletes every key of `namespace` (`namespace:*`); returns how many.
pub fn redis_delete_namespace(url: &str, namespace: &str) -> Result<u64> {
    let pattern = namespace_pattern(namespace)?;
    let mut redis = Redis::connect(url)?;
    let mut deleted = 0;
    redis.scan(&pattern, |redis, keys| {
        let mut args = vec!["DEL"];
        args.extend(keys.iter().map(String::as_str));
        if let Reply::Int(n) = redis.command(&args)? {
            deleted += u64::try_from(n).unwrap_or(0);
        }
        Ok(())
    })?;
    Ok(deleted)
}

/// How many keys `namespace` has.
pub fn redis_count_namespace(url: &str, namespace: &str) -> Result<usize> {
    let pattern = namespace_pattern(namespace)?;
    let mut redis = Redis::connect(url)?;
    let mut count = 0;
    redis.scan(&pattern, |_, keys| {
        count += keys.len();
        Ok(())
    })?;
    Ok(count)
}

// ---------------------------------------------------------------------------------------------
// NATS and JetStream's API

struct Nats {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    inbox: String,
}

/// `text` as a JSON string.
fn json_string(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

impl Nats {
    fn connect(url: &str) -> Result<Self> {
        let first = url.split(',').next().unwrap_or(url).trim();
        let (host, port) = host_port(first, 4222)?;
        let stream = connect(&host, port)?;
        stream.set_read_timeout(Some(IO_TIMEOUT))?;
        stream.set_write_timeout(Some(IO_TIMEOUT))?;
        let mut reader = BufReader::new(stream.try_clone()?);
        let info = read_line(&mut reader).context("no INFO from the NATS server")?;
        ensure!(info.starts_with("INFO "), "not a NATS server: {info:?}");
        ensure!(
            !info.contains("\"tls_required\":true"),
            "the NATS server at {host}:{port} requires TLS, which is not supported here"
        );
        let mut options = vec![
            "\"verbose\":false".to_owned(),
            "\"pedantic\":false".to_owned(),
            "\"name\":\"xtask\"".to_owned(),
            "\"lang\":\"rust\"".to_owned(),
            "\"version\":\"0\"".to_owned(),
            "\"protocol\":1".to_owned(),
        ];
        match credentials(first)? {
            (Some(user), Some(password)) => {
                options.push(format!("\"user\":{}", json_string(&user)));
                options.push(format!("\"pass\":{}", json_string(&password)));
            }
            (Some(token), None) => options.push(format!("\"auth_token\":{}", json_string(&token))),
            _ => {}
        }
        let inbox = format!("_INBOX.xtask.{}", std::process::id());
        let mut nats = Self {
            reader,
            writer: stream,
            inbox,
        };
        let hello = format!(
            "CONNECT {{{}}}\r\nSUB {} 1\r\nPING\r\n",
            options.join(","),
            nats.inbox
        );
        nats.writer.write_all(hello.as_bytes())?;
        loop {
            let line = read_line(&mut nats.reader)?;
            match line.as_str() {
                "PONG" => return Ok(nats),
                "PING" => nats.writer.write_all(b"PONG\r\n")?,
                line if line.starts_with("-ERR") => bail!("NATS: {line}"),
                _ => {}
            }
        }
    }

    /// Publishes `payload` to `subject` and returns the first answer.
    fn request(&mut self, subject: &str, payload: &str) -> Result<String> {
        let message = format!(
            "PUB {subject} {} {}\r\n{payload}\r\n",
            self.inbox,
            payload.len()
        );
        self.writer.write_all(message.as_bytes())?;
        loop {
            let line = read_line(&mut self.reader)
                .with_context(|| format!("no answer to {subject} (is JetStream enabled?)"))?;
            if line == "PING" {
                self.writer.write_all(b"PONG\r\n")?;
            } else if line.starts_with("-ERR") {
                bail!("NATS: {line}");
            } else if let Some(rest) = line.strip_prefix("MSG ") {
                let len: usize = rest
                    .split_whitespace()
                    .last()
                    .and_then(|len| len.parse().ok())
                    .with_context(|| format!("bad NATS message line {line:?}"))?;
                let mut data = vec![0; len + 2];
                self.reader.read_exact(&mut data)?;
                data.truncate(len);
                return Ok(String::from_utf8_lossy(&data).into_owned());
            }
        }
    }
}

/// The number after `"key":` in a JSON text.
fn json_number(json: &str, key: &str) -> Option<u64> {
    let at = json.find(&format!("\"{key}\":"))? + key.len() + 3;
    let digits: String = json[at..]
        .trim_start()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// The JetStream API's error in an answer, if any.
fn api_error(json: &str) -> Option<(u64, String)> {
    let at = json.find("\"error\":")?;
    let error = &json[at..];
    let code = json_number(error, "err_code").unwrap_or(0);
    Some((code, error.to_owned()))
}

/// A subject prefix xtask is willing to clean up after: one non-empty token.
fn prefix_token(prefix: &str) -> Result<&str> {
    ensure!(
        !prefix.is_empty()
            && prefix
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-'),
        "refusing the NATS prefix {prefix:?}: one token of letters, digits, _ and -"
    );
    Ok(prefix)
}

fn stream_names(nats: &mut Nats, prefix: &str) -> Result<Vec<String>> {
    let prefix = prefix_token(prefix)?;
    let mut names = Vec::new();
    loop {
        let request = format!("{{\"offset\":{},\"subject\":\"{prefix}.>\"}}", names.len());
        let answer = nats.request("$JS.API.STREAM.NAMES", &request)?;
        if let Some((_, error)) = api_error(&answer) {
            bail!("listing the JetStream streams: {error}");
        }
        let page: Vec<String> = answer
            .split_once("\"streams\":[")
            .and_then(|(_, rest)| rest.split_once(']'))
            .map(|(list, _)| {
                list.split(',')
                    .map(|name| name.trim().trim_matches('"').to_owned())
                    .filter(|name| !name.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        let total = json_number(&answer, "total").unwrap_or(0);
        let empty = page.is_empty();
        names.extend(page);
        if empty || names.len() as u64 >= total {
            break;
        }
    }
    // Only this prefix's own names (`{prefix}_CMD`), besides its subjects.
    names.retain(|name| name.starts_with(&format!("{prefix}_")));
    Ok(names)
}

/// The JetStream streams of `prefix`: named `{prefix}_…` with subjects under `{prefix}.`.
pub fn nats_stream_names(url: &str, prefix: &str) -> Result<Vec<String>> {
    stream_names(&mut Nats::connect(url)?, prefix)
}

/// Deletes the JetStream streams of `prefix` (with their consumers); returns their names.
pub fn nats_delete_streams(url: &str, prefix: &str) -> Result<Vec<String>> {
    let mut nats = Nats::connect(url)?;
    let names = stream_names(&mut nats, prefix)?;
    for name in &names {
        let answer = nats.request(&format!("$JS.API.STREAM.DELETE.{name}"), "")?;
        match api_error(&answer) {
            // 10059: stream not found (gone meanwhile).
            Some((10059, _)) | None => {}
            Some((_, error)) => bail!("deleting the stream {name}: {error}"),
        }
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_urls() -> Result<()> {
        let url = "postgres://postgres@127.0.0.1:5432/store?sslmode=disable";
        assert_eq!(database_name(url)?, "store");
        assert_eq!(
            with_database(url, "store_e2e_1")?,
            "postgres://postgres@127.0.0.1:5432/store_e2e_1?sslmode=disable"
        );
        assert_eq!(
            with_database("postgres://u:p%40ss@db/x", "postgres")?,
            "postgres://u:p%40ss@db/postgres"
        );
        assert_eq!(
            with_database("postgres://db:5432", "y")?,
            "postgres://db:5432/y"
        );
        assert!(database_name("postgres://db:5432").is_err());
        assert_eq!(
            credentials("redis://:p%40ss@h:1/2")?,
            (None, Some("p@ss".into()))
        );
        assert_eq!(
            credentials("nats://tok@h:4222")?,
            (Some("tok".into()), None)
        );
        assert_eq!(credentials("nats://h:4222")?, (None, None));
        assert!(plain_name("x; DROP").is_err());
        Ok(())
    }

    #[test]
    fn resp_replies() -> Result<()> {
        let mut input: &[u8] = b"*2\r\n$1\r\n0\r\n*2\r\n$3\r\na:b\r\n$-1\r\n:7\r\n+OK\r\n";
        assert_eq!(
            read_reply(&mut input)?,
            Reply::Array(Some(vec![
                Reply::Bulk(Some(b"0".to_vec())),
                Reply::Array(Some(vec![
                    Reply::Bulk(Some(b"a:b".to_vec())),
                    Reply::Bulk(None)
                ])),
            ]))
        );
        assert_eq!(read_reply(&mut input)?, Reply::Int(7));
        assert_eq!(read_reply(&mut input)?, Reply::Status("OK".into()));
        let mut error: &[u8] = b"-ERR no\r\n";
        assert!(read_reply(&mut error).is_err());
        assert_eq!(namespace_pattern("e2e:1")?, "e2e:1:*");
        assert_eq!(namespace_pattern("a*[")?, "a\\*\\[:*");
        assert!(namespace_pattern("").is_err());
        Ok(())
    }

    /// Against the services of `cargo xtask test` (or the default URLs): what is made is removed,
    /// and nothing outside the namespace or prefix is touched.
    #[test]
    fn removes_only_what_it_names() -> Result<()> {
        let var =
            |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.into());
        let id = format!("xtask_wire_{}", std::process::id());
        let other = format!("{id}x");

        let redis_url = var("REDIS_URL", "redis://127.0.0.1:6379");
        let mut redis = Redis::connect(&redis_url)?;
        for key in [format!("{id}:a"), format!("{id}:b:c"), format!("{other}:a")] {
            redis.command(&["SET", &key, "1", "EX", "60"])?;
        }
        assert_eq!(redis_count_namespace(&redis_url, &id)?, 2);
        assert_eq!(redis_delete_namespace(&redis_url, &id)?, 2);
        assert_eq!(redis_count_namespace(&redis_url, &id)?, 0);
        assert_eq!(redis_delete_namespace(&redis_url, &other)?, 1);

        let nats_url = var("NATS_URL", "nats://127.0.0.1:4222");
        let mut nats = Nats::connect(&nats_url)?;
        for prefix in [&id, &other] {
            let config = format!(
                r#"{{"name":"{prefix}_CMD","subjects":["{prefix}.cmd.>"],"storage":"memory"}}"#
            );
            let answer = nats.request(&format!("$JS.API.STREAM.CREATE.{prefix}_CMD"), &config)?;
            assert_eq!(api_error(&answer), None, "{answer}");
        }
        assert_eq!(nats_stream_names(&nats_url, &id)?, [format!("{id}_CMD")]);
        assert_eq!(nats_delete_streams(&nats_url, &id)?, [format!("{id}_CMD")]);
        assert!(nats_stream_names(&nats_url, &id)?.is_empty());
        assert_eq!(
            nats_delete_streams(&nats_url, &other)?,
            [format!("{other}_CMD")]
        );

        let database_url = with_database(
            &var("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/store"),
            &id,
        )?;
        sql(&database_url, &format!("CREATE DATABASE \"{id}\""))?;
        assert!(database_exists(&database_url)?);
        drop_database(&database_url)?;
        assert!(!database_exists(&database_url)?);
        Ok(())
    }

    #[test]
    fn jetstream_answers() {
        let names = r#"{"type":"io.nats.jetstream.api.v1.stream_names_response","total":2,"offset":0,"limit":1024,"streams":["a_CMD","a_EVT"]}"#;
        assert_eq!(json_number(names, "total"), Some(2));
        assert_eq!(api_error(names), None);
        let error = r#"{"type":"x","error":{"code":404,"err_code":10059,"description":"stream not found"}}"#;
        assert_eq!(api_error(error).map(|(code, _)| code), Some(10059));
        assert!(prefix_token("").is_err());
        assert!(prefix_token("a.b").is_err());
        assert_eq!(json_string("a\"b\\"), r#""a\"b\\""#);
    }
}
