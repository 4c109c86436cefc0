-- Probe for the CVE-2024-46981 fix (redis.sh), run with EVAL ... 0 TAG and
-- followed by SCRIPT FLUSH, which closes the Lua interpreter
-- (scriptingRelease).  Two userdata with __gc finalizers that log a line:
-- one is garbage when the script returns, the other stays reachable from
-- the KEYS table until the interpreter is closed.
-- Without the fix lua_close() finalizes every userdata, newest first: the
-- reachable one logs first.  The fix runs a full collection before
-- lua_close(), which finalizes the garbage first.
-- newproxy needs lua-enable-deprecated-api yes.
local tag = ARGV[1]
local garbage = newproxy(true)
getmetatable(garbage).__gc = function()
  redis.log(redis.LOG_WARNING, 'qpatch-probe ' .. tag .. ' unreachable')
end
local kept = newproxy(true)
getmetatable(kept).__gc = function()
  redis.log(redis.LOG_WARNING, 'qpatch-probe ' .. tag .. ' reachable')
end
KEYS.kept = kept
return tag
