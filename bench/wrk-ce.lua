-- wrk script: POST a 500-byte binary-mode CloudEvent to the target URL and
-- print a machine-readable summary line at the end.
local body = string.rep("x", 500)
wrk.method = "POST"
wrk.body = body
wrk.headers["ce-specversion"] = "1.0"
wrk.headers["ce-id"] = "bench-0001"
wrk.headers["ce-source"] = "/bench/wrk"
wrk.headers["ce-type"] = "dev.knit.bench"
wrk.headers["Content-Type"] = "text/plain"

function done(summary, latency, requests)
  local non2xx = summary.errors.status
  local errs = summary.errors.connect + summary.errors.read +
               summary.errors.write + summary.errors.timeout
  io.write(string.format(
    "RESULT rps=%.1f p50_us=%d p99_us=%d p999_us=%d requests=%d non2xx=%d sockerr=%d\n",
    summary.requests / (summary.duration / 1e6),
    latency:percentile(50), latency:percentile(99), latency:percentile(99.9),
    summary.requests, non2xx, errs))
end
