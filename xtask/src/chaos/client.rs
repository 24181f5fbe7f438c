//! The harness's clients, std only: GraphQL over plain HTTP/1.1 to the api replicas, a few
//! Redis commands (RESP), and read-only SQL through `psql`.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::sleep;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use serde_json::{Value, json};

use crate::cmd::Cmd;

/// How long one HTTP exchange may take.
const HTTP_TIMEOUT: Duration = Duration::from_secs(20);

/// One HTTP exchange (`Connection: close`): the status and the body.
pub fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<(u16, Vec<u8>)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(HTTP_TIMEOUT))?;
    stream.set_write_timeout(Some(HTTP_TIMEOUT))?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    parse_response(&response)
        .ok_or_else(|| std::io::Error::other("malformed or truncated HTTP response"))
}

/// Status and body of a whole HTTP/1.1 response (a `Content-Length` or a chunked body).
fn parse_response(response: &[u8]) -> Option<(u16, Vec<u8>)> {
    let end = response.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&response[..end]).ok()?;
    let body = &response[end + 4..];
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
    let mut chunked = false;
    let mut length = None;
    for line in lines {
        let (name, value) = line.split_once(':')?;
        let value = value.trim();
        if name.eq_ignore_ascii_case("transfer-encoding") && value.contains("chunked") {
            chunked = true;
        } else if name.eq_ignore_ascii_case("content-length") {
            length = value.parse::<usize>().ok();
        }
    }
    if chunked {
        let mut out = Vec::new();
        let mut rest = body;
        loop {
            let line_end = rest.windows(2).position(|w| w == b"\r\n")?;
            let size_text = std::str::from_utf8(&rest[..line_end]).ok()?;
            let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
            rest = &rest[line_end + 2..];
            if size == 0 {
                return Some((status, out));
            }
            out.extend_from_slice(rest.get(..size)?);
            rest = rest.get(size + 2..)?;
        }
    }
    match length {
        Some(length) => Some((status, body.get(..length)?.to_vec())),
        None => Some((status, body.to_vec())),
    }
}

/// What one GraphQL request came to.
#[derive(Clone, Debug)]
pub enum Answer {
    /// `data`, without errors.
    Data(Value),
    /// A definitive refusal: the error's `extensions.code` and message.
    Refused { code: String, message: String },
    /// No definitive answer: nothing answered, the connection broke, or an internal error.
    /// The request may or may not have taken effect.
    Unknown(String),
}

impl Answer {
    pub fn code(&self) -> Option<&str> {
        match self {
            Answer::Refused { code, .. } => Some(code),
            _ => None,
        }
    }
}

/// The api replicas, reached directly (no gateway), requests spread round-robin.
pub struct Api {
    addrs: Vec<SocketAddr>,
    next: AtomicUsize,
}

impl Api {
    pub fn new(addrs: Vec<SocketAddr>) -> Self {
        Self {
            addrs,
            next: AtomicUsize::new(0),
        }
    }

    fn pick(&self) -> SocketAddr {
        let at = self.next.fetch_add(1, Ordering::Relaxed);
        self.addrs[at % self.addrs.len()]
    }

    /// One GraphQL request to one replica.
    pub fn once(&self, token: Option<&str>, query: &str, variables: Value) -> Answer {
        let body = json!({ "query": query, "variables": variables }).to_string();
        let bearer = token.map(|t| format!("Bearer {t}"));
        let mut headers = vec![("Content-Type", "application/json")];
        if let Some(bearer) = &bearer {
            headers.push(("Authorization", bearer));
        }
        let (status, bytes) = match http(self.pick(), "POST", "/graphql", &headers, body.as_bytes())
        {
            Ok(answer) => answer,
            Err(error) => return Answer::Unknown(error.to_string()),
        };
        let Ok(value) = serde_json::from_slice::<Value>(&bytes) else {
            return Answer::Unknown(format!(
                "HTTP {status}: {}",
                String::from_utf8_lossy(&bytes)
                    .chars()
                    .take(200)
                    .collect::<String>()
            ));
        };
        match value
            .get("errors")
            .and_then(Value::as_array)
            .and_then(|e| e.first())
        {
            None if status == 200 => {
                Answer::Data(value.get("data").cloned().unwrap_or(Value::Null))
            }
            None => Answer::Unknown(format!("HTTP {status} without errors")),
            Some(error) => {
                let code = error
                    .pointer("/extensions/code")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned();
                let message = error
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned();
                if code == "INTERNAL_SERVER_ERROR" || code.is_empty() || status >= 500 {
                    Answer::Unknown(format!("{code}: {message}"))
                } else {
                    Answer::Refused { code, message }
                }
            }
        }
    }

    /// Sends the request again (to any replica) until it gets a definitive answer or
    /// `patience` runs out; a request that is safe to repeat (idempotent) only. Also says
    /// whether an earlier attempt went unanswered.
    pub fn retry(
        &self,
        token: Option<&str>,
        query: &str,
        variables: &Value,
        patience: Duration,
    ) -> (Answer, bool) {
        let deadline = Instant::now() + patience;
        let mut unanswered = false;
        loop {
            let answer = self.once(token, query, variables.clone());
            match answer {
                Answer::Unknown(_) if Instant::now() < deadline => {
                    unanswered = true;
                    sleep(Duration::from_millis(250));
                }
                // Rate limits are not expected (they are raised), but wait them out.
                Answer::Refused { ref code, .. }
                    if code == "RATE_LIMITED" && Instant::now() < deadline =>
                {
                    sleep(Duration::from_millis(500));
                }
                answer => return (answer, unanswered),
            }
        }
    }

    /// [`Api::retry`] that wants data.
    pub fn data(
        &self,
        token: Option<&str>,
        query: &str,
        variables: Value,
        patience: Duration,
    ) -> Result<Value> {
        match self.retry(token, query, &variables, patience).0 {
            Answer::Data(data) => Ok(data),
            Answer::Refused { code, message } => bail!("{code}: {message} (for {query})"),
            Answer::Unknown(why) => bail!("no answer ({why}) for {query}"),
        }
    }

    /// `PUT path` with a body to any replica, until a 2xx answer.
    pub fn put(&self, token: &str, path: &str, body: &[u8], patience: Duration) -> Result<()> {
        let deadline = Instant::now() + patience;
        let bearer = format!("Bearer {token}");
        loop {
            match http(
                self.pick(),
                "PUT",
                path,
                &[
                    ("Authorization", &bearer),
                    ("Content-Type", "application/octet-stream"),
                ],
                body,
            ) {
                Ok((status, _)) if (200..300).contains(&status) => return Ok(()),
                Ok((status, answer)) if status < 500 => bail!(
                    "PUT {path}: HTTP {status}: {}",
                    String::from_utf8_lossy(&answer)
                ),
                other if Instant::now() >= deadline => bail!("PUT {path}: {other:?}"),
                _ => sleep(Duration::from_millis(250)),
            }
        }
    }
}

/// A string field of a JSON value, by a JSON pointer.
pub fn text(value: &Value, pointer: &str) -> Result<String> {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .with_context(|| format!("no {pointer} in {value}"))
}

// ---------------------------------------------------------------------------------------------
// Redis

/// Runs one Redis command (RESP) and returns its answer: a bulk or simple string, an integer
/// as text, `None` for a nil; arrays are not needed here.
pub fn redis(addr: SocketAddr, args: &[&str]) -> Result<Option<String>> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))
        .with_context(|| format!("cannot reach Redis at {addr}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut request = format!("*{}\r\n", args.len());
    for arg in args {
        request.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
    }
    stream.write_all(request.as_bytes())?;
    let mut reader = std::io::BufReader::new(stream);
    let mut line = String::new();
    std::io::BufRead::read_line(&mut reader, &mut line)?;
    let line = line.trim_end();
    let (kind, rest) = line.split_at(1.min(line.len()));
    match kind {
        "+" | ":" => Ok(Some(rest.to_owned())),
        "-" => bail!("Redis: {rest}"),
        "$" => {
            let length: i64 = rest.parse().context("bad RESP length")?;
            if length < 0 {
                return Ok(None);
            }
            let mut data = vec![0_u8; usize::try_from(length)? + 2];
            reader.read_exact(&mut data)?;
            data.truncate(data.len() - 2);
            Ok(Some(String::from_utf8(data)?))
        }
        other => bail!("unexpected RESP answer `{other}{rest}`"),
    }
}

// ---------------------------------------------------------------------------------------------
// SQL

/// Read-only SQL through `psql` (unaligned, tab-separated, no headers).
pub struct Sql {
    pub psql: PathBuf,
    pub url: String,
}

impl Sql {
    /// The rows of a query, each a list of its columns as text (`NULL` is empty).
    pub fn rows(&self, query: &str) -> Result<Vec<Vec<String>>> {
        let out = Cmd::new(&self.psql)
            .args(["-X", "-q", "-A", "-t", "-F", "\t", "-v", "ON_ERROR_STOP=1"])
            .arg("-d")
            .arg(&self.url)
            .arg("-c")
            .arg(query)
            .read()
            .with_context(|| format!("query failed: {query}"))?;
        Ok(out
            .lines()
            .filter(|line| !line.is_empty())
            .map(|line| line.split('\t').map(str::to_owned).collect())
            .collect())
    }

    /// The first column of the first row, as a number.
    pub fn number(&self, query: &str) -> Result<i64> {
        let rows = self.rows(query)?;
        let cell = rows
            .first()
            .and_then(|row| row.first())
            .with_context(|| format!("no row from {query}"))?;
        cell.parse()
            .with_context(|| format!("`{cell}` is not a number (from {query})"))
    }
}

#[cfg(test)]
mod tests {
    use super::parse_response;

    #[test]
    fn responses_with_length_or_chunks() {
        let plain = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello";
        assert_eq!(parse_response(plain), Some((200, b"hello".to_vec())));
        let chunked =
            b"HTTP/1.1 409 Conflict\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
        assert_eq!(parse_response(chunked), Some((409, b"abcde".to_vec())));
        assert_eq!(
            parse_response(b"HTTP/1.1 200 OK\r\ncontent-length: 9\r\n\r\nshort"),
            None
        );
    }
}
