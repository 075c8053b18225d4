-- wrk script: POST /edges with 10 random add events per request.
--   wrk -t1 -c8 -d5s --latency -s tests/post_edges.lua http://127.0.0.1:8080
request = function()
  local body = {}
  for i = 1, 10 do
    body[i] = string.format('{"src":%d,"dst":%d,"ts":1700000000}',
                            math.random(1000000), math.random(1000000))
  end
  return wrk.format("POST", "/edges", nil, table.concat(body, "\n") .. "\n")
end
