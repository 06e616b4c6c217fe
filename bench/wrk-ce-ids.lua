-- wrk script: the event of wrk-ce.lua (a 500-byte binary-mode CloudEvent,
-- same headers) with a unique ce-id per request, so backends that
-- de-duplicate by id (NATS JetStream's Nats-Msg-Id window) store every
-- request. Prints the same RESULT summary line as wrk-ce.lua.
local body = string.rep("x", 500)
wrk.method = "POST"
wrk.body = body
wrk.headers["ce-specversion"] = "1.0"
wrk.headers["ce-source"] = "/bench/wrk"
wrk.headers["ce-type"] = "dev.knit.bench"
wrk.headers["Content-Type"] = "text/plain"

local nthreads = 0
function setup(thread)
  nthreads = nthreads + 1
  thread:set("tid", nthreads)
end

local prefix, n = "", 0
function init(args)
  prefix = string.format("bench-%d-%d-", os.time(), tid or 0)
end

function request()
  n = n + 1
  wrk.headers["ce-id"] = prefix .. n
  return wrk.format()
end

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
