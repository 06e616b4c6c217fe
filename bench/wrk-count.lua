-- wrk script for bench/memory.sh: the event of wrk-ce.lua (POST of a
-- 500-byte binary-mode CloudEvent) and a summary line at the end. The
-- run is stopped from outside (SIGINT) once the wanted count is stored.
local body = string.rep("x", 500)
wrk.method = "POST"
wrk.body = body
wrk.headers["ce-specversion"] = "1.0"
wrk.headers["ce-id"] = "bench-0001"
wrk.headers["ce-source"] = "/bench/wrk"
wrk.headers["ce-type"] = "dev.knit.bench"
wrk.headers["Content-Type"] = "text/plain"

function done(summary, latency, requests)
  io.write(string.format(
    "RESULT requests=%d non2xx=%d sockerr=%d seconds=%.1f\n",
    summary.requests, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write +
    summary.errors.timeout, summary.duration / 1e6))
end
