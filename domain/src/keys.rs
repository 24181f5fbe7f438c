//! Redis keys of the saga's derived state (DESIGN §5), shared by the api (reads, rebuilds on a
//! miss) and the participants (refresh after a commit). Pure string building, no I/O.

use uuid::Uuid;

/// `{ns}:balance:{account}` → `"{balance}:{ledger version}"`.
pub fn balance(ns: &str, account: Uuid) -> String {
    format!("{ns}:balance:{account}")
}

/// `{ns}:notif:unread:{account}` → the count of unread notifications.
pub fn unread(ns: &str, account: Uuid) -> String {
    format!("{ns}:notif:unread:{account}")
}

/// `{ns}:idem:{account}:{key}` → the first answer to a request with this idempotency key.
pub fn idempotency(ns: &str, account: Uuid, key: &str) -> String {
    format!("{ns}:idem:{account}:{key}")
}

/// Seconds a cached balance lives (bounds the staleness left by a crash between a commit and
/// the cache refresh).
pub const BALANCE_TTL_SECS: i64 = 300;

/// Lua: `SET KEYS[1] "ARGV[1]:ARGV[2]" EX ARGV[3]` unless the stored version is already
/// ≥ `ARGV[2]`. Writers racing with older values (a reader rebuilding from a snapshot taken
/// before a commit) can then never overwrite a newer balance.
pub const SET_BALANCE_LUA: &str = r"
local cur = redis.call('GET', KEYS[1])
if cur then
  local v = tonumber(string.match(cur, ':(%-?%d+)$'))
  if v and v >= tonumber(ARGV[2]) then return 0 end
end
redis.call('SET', KEYS[1], ARGV[1] .. ':' .. ARGV[2], 'EX', ARGV[3])
return 1
";

/// Parses a cached balance `"{balance}:{version}"`.
pub fn parse_balance(value: &str) -> Option<(i64, i64)> {
    let (b, v) = value.split_once(':')?;
    Some((b.parse().ok()?, v.parse().ok()?))
}

/// A deterministic id for something created idempotently from (account, key): a replay of
/// the same request names the same thing, even after Redis lost the idempotency record.
/// (Not a UUIDv7: time-ordering is given up for determinism.)
pub fn derived_id(kind: &str, account: Uuid, key: &str, hash: impl Fn(&[u8]) -> [u8; 32]) -> Uuid {
    let digest = hash(format!("{kind}\n{account}\n{key}").as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_random_bytes(bytes).into_uuid()
}
