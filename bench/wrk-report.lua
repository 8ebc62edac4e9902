-- Prints one JSON line with throughput and latency percentiles (ms) after a wrk run.
done = function(summary, latency, requests)
  local secs = summary.duration / 1e6
  local rps = 0
  if secs > 0 then rps = summary.requests / secs end
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout
  io.write(string.format(
    '{"rps":%.1f,"secs":%.3f,"p50":%.3f,"p99":%.3f,"p999":%.3f,"requests":%d,"non2xx":%d,"errors":%d}\n',
    rps, secs, latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    latency:percentile(99.9) / 1000, summary.requests, summary.errors.status, errors))
end
