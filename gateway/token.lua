-- Who is calling, for /graphql, /graphql/upload and /uploads/builds/ (see "Token cache" in
-- nginx.conf): the access phase of those locations runs `require("token").caller()`.
--
-- No Authorization header (or an empty one): anonymous, nothing to do. Otherwise the verified
-- caller is looked up in the shared dictionary `tokens` (one for all workers), keyed by the
-- header; on a miss, the verifier (`auth.verifier` in auth.js, on the unix socket that
-- nginx.conf names in `init_by_lua`) checks the token and its answer is kept until the token
-- expires (X-Auth-Ttl). A refusal is never kept: 401 from the verifier is 401 here, anything
-- else (or no answer) 500.
--
-- The verifier is asked over a cosocket in plain HTTP/1.1, not with a subrequest: this nginx's
-- Lua module cannot issue subrequests from an HTTP/2 request, and every browser speaks HTTP/2.
-- Connections are kept in a small per-worker pool.
--
-- Every claim but `exp` is fixed for a token and `nbf` is never later than `exp`, so a kept
-- answer is the one the verifier would give again. A dictionary that is full drops its least
-- recently used entries: those tokens are verified again, nothing else changes.

local tokens = ngx.shared.tokens
local exit = ngx.exit
local var = ngx.var
local log = ngx.log
local ERR = ngx.ERR

local M = {
    -- "unix:/path/verify.sock", set once by nginx.conf's init_by_lua_block.
    verifier = nil,
}

-- The caller kept as one value: id, role, name, iat, client and scope (the last two empty for a
-- person's token), each ending in a newline (the verifier refuses control characters in a name).
local FIELDS = "^([^\n]*)\n([^\n]*)\n([^\n]*)\n([^\n]*)\n([^\n]*)\n([^\n]*)\n$"
-- Milliseconds to connect, send and read one answer; the verifier answers in about one.
local TIMEOUT_MS = 5000
-- Idle connections kept per worker, and for how long (ms): under the verifier's keepalive.
local POOL_SIZE = 32
local POOL_IDLE_MS = 30000

-- One verification: the status and the headers (lower-case names), or nil and an error. `fresh`
-- is false when the connection came from the pool (the verifier may have closed it meanwhile).
local function ask(header)
    local sock = ngx.socket.tcp()
    sock:settimeout(TIMEOUT_MS)
    local ok, err = sock:connect(M.verifier)
    if not ok then
        return nil, "connect: " .. err, true
    end
    local fresh = sock:getreusedtimes() == 0
    ok, err = sock:send({
        "GET /verify HTTP/1.1\r\nHost: verifier\r\nAuthorization: ", header, "\r\n\r\n",
    })
    if not ok then
        sock:close()
        return nil, "send: " .. err, fresh
    end
    local line
    line, err = sock:receive("*l")
    if not line then
        sock:close()
        return nil, "status: " .. err, fresh
    end
    local status = tonumber(line:match("^HTTP/1%.[01] (%d%d%d)"))
    if not status then
        sock:close()
        return nil, "bad status line", true
    end
    local headers = {}
    while true do
        line, err = sock:receive("*l")
        if not line then
            sock:close()
            return nil, "headers: " .. err, true
        end
        if line == "" then
            break
        end
        local name, value = line:match("^([^:]+):%s*(.-)%s*$")
        if name then
            headers[name:lower()] = value
        end
    end
    local length = tonumber(headers["content-length"] or "0")
    if not length or headers["transfer-encoding"] then
        sock:close()
        return nil, "unexpected body framing", true
    end
    if length > 0 then
        local _, body_err = sock:receive(length)
        if body_err then
            sock:close()
            return nil, "body: " .. body_err, true
        end
    end
    if (headers["connection"] or ""):lower() == "close" then
        sock:close()
    else
        sock:setkeepalive(POOL_IDLE_MS, POOL_SIZE)
    end
    return status, headers
end

local function verified(header)
    local status, headers, fresh = ask(header)
    if not status and not fresh then
        -- A pooled connection the verifier had closed: once more on a new one.
        status, headers = ask(header)
    end
    if not status then
        log(ERR, "token verifier failed: ", headers)
        return exit(ngx.HTTP_INTERNAL_SERVER_ERROR)
    end
    if status == ngx.HTTP_UNAUTHORIZED then
        return exit(ngx.HTTP_UNAUTHORIZED)
    end
    if status ~= ngx.HTTP_OK then
        log(ERR, "token verifier answered ", status)
        return exit(ngx.HTTP_INTERNAL_SERVER_ERROR)
    end
    local ttl = tonumber(headers["x-auth-ttl"])
    local id, role = headers["x-auth-id"], headers["x-auth-role"]
    local name, iat = headers["x-auth-name"], headers["x-auth-iat"]
    local client, scope = headers["x-auth-client"] or "", headers["x-auth-scope"] or ""
    if not ttl or not id or not role or not name or not iat then
        log(ERR, "token verifier answered without the caller")
        return exit(ngx.HTTP_INTERNAL_SERVER_ERROR)
    end
    local kept = id .. "\n" .. role .. "\n" .. name .. "\n" .. iat .. "\n" .. client .. "\n"
        .. scope .. "\n"
    local ok, err = tokens:set(header, kept, ttl)
    if not ok then
        log(ngx.WARN, "token not kept: ", err)
    end
    return kept
end

function M.caller()
    local header = var.http_authorization
    if header == nil or header == "" then
        return
    end
    local kept = tokens:get(header) or verified(header)
    local id, role, name, iat, client, scope = kept:match(FIELDS)
    if not id then
        -- An entry of another shape (kept by an older gateway across a reload): verify again.
        kept = verified(header)
        id, role, name, iat, client, scope = kept:match(FIELDS)
    end
    var.jwt_user_id = id
    var.jwt_user_role = role
    var.jwt_user_name = name
    var.jwt_user_iat = iat
    var.jwt_user_client = client
    var.jwt_user_scope = scope
end

return M
