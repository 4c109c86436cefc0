-- A long-running Lua interpreter for the real-world suite (lua.sh).
--   lua server.lua DIR
-- Works all the time (string concatenation and caught runtime errors: the
-- code paths of the CVE-2022-33099 fix, luaV_concat and luaG_runerror), and
-- between rounds executes DIR/cmd.N (N = 1, 2, ...), answering in DIR/out.N:
--   probe   stack slots left by a runtime error in the erroring frame
--   stats   work done so far and a checksum of the state built at start
--   quit    exit
local dir = assert(arg[1], "usage: lua server.lua DIR")

-- State built once; "stats" shows it is still intact after the patch.
local state = {}
for i = 1, 100000 do state[i] = i * 3 end
local iter, caught = 0, 0

local function work()
  for _ = 1, 2000 do
    iter = iter + 1
    local s = "k" .. iter .. ":" .. (iter % 7)  -- luaV_concat
    if #s < 4 then error("concatenation went wrong") end
    local ok, msg = pcall(function() local a; return a + iter end)  -- luaG_runerror
    if ok or not string.find(msg, "arithmetic on a nil value", 1, true) then
      error("runtime error not raised: " .. tostring(msg))
    end
    caught = caught + 1
  end
end

-- The fix makes luaG_runerror pop the message it formatted before raising
-- the error, so the frame of the function that failed holds one stack slot
-- ("(temporary)" for debug.getlocal) fewer when the message handler runs.
local function temporaries(level)
  local n = 0
  for i = 1, 250 do
    local name = debug.getlocal(level, i)
    if not name then break end
    if name == "(temporary)" then n = n + 1 end
  end
  return n
end

local function probe()
  local seen
  local function handler(m) seen = temporaries(3); return m end
  xpcall(function() local a; return a + 1 end, handler)      -- arithmetic error
  local arith = seen
  xpcall(function() local t = {}; return "x" .. t end, handler) -- concatenation error
  return string.format("arith=%d concat=%d", arith, seen)
end

local function stats()
  local sum = 0
  for i = 1, #state do sum = sum + state[i] end
  return string.format("iter=%d caught=%d state=%d sum=%d", iter, caught, #state, sum)
end

local seq = 1
while true do
  work()
  local f = io.open(dir .. "/cmd." .. seq, "r")
  if f then
    local cmd = f:read("l") or ""
    f:close()
    local out
    if cmd == "probe" then out = probe()
    elseif cmd == "stats" then out = stats()
    elseif cmd == "quit" then os.exit(0)
    else out = "unknown command '" .. cmd .. "'" end
    local tmp = dir .. "/out." .. seq .. ".tmp"
    local o = assert(io.open(tmp, "w"))
    o:write(out, "\n")
    o:close()
    assert(os.rename(tmp, dir .. "/out." .. seq))
    seq = seq + 1
  end
end
