-- Sends a different request every time, for scenarios whose requests succeed
-- only once (a nonce, one active run per connection).
--   wrk ... -s bench/wrk-requests.lua URL -- FILE THREADS
-- FILE holds one METHOD<TAB>PATH<TAB>BODY line per request; thread k of THREADS
-- takes lines k, k+THREADS, ... so no two threads send the same one. A thread
-- that runs out starts its lines again (the repeats then fail and show as non2xx).
local counter = 0
function setup(thread)
  counter = counter + 1
  thread:set("tid", counter)
end

local requests, idx = {}, 0
function init(args)
  local file, nthreads = args[1], tonumber(args[2])
  -- wrk.format replaces wrk.headers (the -H ones) when given headers: copy them.
  local headers = { ["Content-Type"] = "application/json" }
  for k, v in pairs(wrk.headers) do headers[k] = v end
  local i = 0
  for line in io.lines(file) do
    if i % nthreads == tid - 1 then
      local method, path, body = line:match("^(%S+)\t(%S+)\t(.*)$")
      requests[#requests + 1] = wrk.format(method, path, headers, body)
    end
    i = i + 1
  end
end

function request()
  idx = idx % #requests + 1
  return requests[idx]
end

dofile("bench/wrk-report.lua")
