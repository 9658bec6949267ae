-- Resend requests for the benchmark (scripts/bench.py): each request resends a random invitation
-- of the targets file named by BENCH_TARGETS, one "PATH TOKEN" line per invitation, with its
-- business Owner's bearer token.
local targets = {}

function init(args)
  for line in io.lines(os.getenv("BENCH_TARGETS")) do
    local path, token = line:match("^(%S+) (%S+)$")
    if path then
      targets[#targets + 1] = { path, "Bearer " .. token }
    end
  end
  -- Each thread its own sequence.
  math.randomseed(os.time() + tonumber(tostring(targets):match("0x(%x+)") or "0", 16) % 100000)
end

function request()
  local t = targets[math.random(#targets)]
  return wrk.format("POST", t[1], { ["Authorization"] = t[2] })
end
