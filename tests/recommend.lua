-- wrk script: GET /recommend for members drawn from a file (one id a line).
--   MEMBERS=ids.txt wrk -t1 -c32 -d10s --latency -s tests/recommend.lua http://127.0.0.1:8080
-- A file of uniform ids gives a uniform load; a file of edge endpoints gives a
-- degree-weighted one (bench_server.c writes both). Each request is formatted
-- once, at start: wrk shares the machine's cores with the server.
local reqs = {}
for l in io.lines(os.getenv("MEMBERS") or "members.txt") do
  reqs[#reqs + 1] = wrk.format("GET", "/recommend?member=" .. l .. "&k=10")
end
math.randomseed(os.time() + math.floor(os.clock() * 1e6))
request = function()
  return reqs[math.random(#reqs)]
end
