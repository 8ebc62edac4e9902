-- Prints one JSON line with throughput and latency percentiles (ms) after a wrk run.
-- With WRK_QUANTILES set to a file name, also writes the run's quantile function there,
-- one "percent microseconds" line per point of a grid (fine near the tail), so that
-- bench/merge.py can take percentiles over several runs (wrk's Lua API gives no
-- histogram, only percentiles).
local function grid()
  local ps = {}
  for i = 1, 194 do ps[#ps + 1] = i / 2 end              -- 0.5 .. 97
  for i = 9701, 9980 do ps[#ps + 1] = i / 100 end        -- 97.01 .. 99.8
  for i = 99801, 99999 do ps[#ps + 1] = i / 1000 end     -- 99.801 .. 99.999
  return ps
end

done = function(summary, latency, requests)
  local secs = summary.duration / 1e6
  local rps = 0
  if secs > 0 then rps = summary.requests / secs end
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout
  io.write(string.format(
    '{"rps":%.1f,"secs":%.3f,"p50":%.3f,"p99":%.3f,"p999":%.3f,"requests":%d,"non2xx":%d,"errors":%d}\n',
    rps, secs, latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    latency:percentile(99.9) / 1000, summary.requests, summary.errors.status, errors))
  local path = os.getenv("WRK_QUANTILES")
  if path and path ~= "" then
    local f = assert(io.open(path, "w"))
    for _, p in ipairs(grid()) do
      f:write(string.format("%.3f %d\n", p, latency:percentile(p)))
    end
    f:close()
  end
end
