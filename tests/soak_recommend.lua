-- wrk script of `make soak`: tests/recommend.lua (GET /recommend for members
-- drawn from $MEMBERS), each connection pausing $SOAK_DELAY_MS ms after an
-- answer, so the query load is a steady rate (at most conns * 1000 / delay
-- per second) instead of saturating the server. tests/soak.c sets RECOMMEND_LUA
-- to the path of tests/recommend.lua.
dofile(os.getenv("RECOMMEND_LUA"))
local pause = tonumber(os.getenv("SOAK_DELAY_MS") or "0")
if pause > 0 then
  delay = function()
    return pause
  end
end
