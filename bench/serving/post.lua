-- wrk -s post.lua: POST the body in $BODY_FILE (one request body, JSON) to the URL.
local f = assert(io.open(os.getenv("BODY_FILE"), "r"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"

-- Count non-2xx answers so that a fast stream of errors cannot pass as throughput.
done = function(summary, latency, requests)
  io.stderr:write(string.format("non2xx=%d\n", summary.errors.status))
end
