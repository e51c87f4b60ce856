-- Argo CD health of a tradebot.io TradingBot, from the status the operator writes:
--   Running -> Healthy; Pending -> Progressing; Degraded, Failed -> Degraded;
--   Suspended (spec.suspend) and Halted (tradingState kill switch) -> Suspended;
--   no status yet, or status older than the spec (observedGeneration < generation) -> Progressing.
local hs = {}

local function condition(ctype)
  if obj.status.conditions == nil then
    return nil
  end
  for _, c in ipairs(obj.status.conditions) do
    if c.type == ctype then
      return c
    end
  end
  return nil
end

local function detail(c)
  if c == nil then
    return ""
  end
  local text = ""
  if c.reason ~= nil and c.reason ~= "" then
    text = c.reason
  end
  if c.message ~= nil and c.message ~= "" then
    if text ~= "" then
      text = text .. ": "
    end
    text = text .. c.message
  end
  return text
end

local function with_detail(prefix, c)
  local text = detail(c)
  if c ~= nil and c.reason == prefix and c.message ~= nil and c.message ~= "" then
    text = c.message
  end
  if text == "" then
    return prefix
  end
  return prefix .. ": " .. text
end

if obj.status == nil or obj.status.phase == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the tradebot operator to report status"
  return hs
end

local generation = obj.metadata.generation
local observed = obj.status.observedGeneration
if generation ~= nil and (observed == nil or observed < generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. string.format("%d", generation)
  return hs
end

local phase = obj.status.phase
local ready = condition("Ready")
if phase == "Running" then
  hs.status = "Healthy"
  hs.message = with_detail("Running", ready)
elseif phase == "Pending" then
  hs.status = "Progressing"
  hs.message = with_detail("Pending", ready)
elseif phase == "Degraded" or phase == "Failed" then
  hs.status = "Degraded"
  hs.message = with_detail(phase, condition("Degraded") or ready)
elseif phase == "Suspended" then
  hs.status = "Suspended"
  hs.message = with_detail("Suspended", ready)
elseif phase == "Halted" then
  -- A deliberate kill switch: pods are up and Ready, but no new orders are placed.
  hs.status = "Suspended"
  hs.message = with_detail("Halted", ready)
else
  hs.status = "Unknown"
  hs.message = "Unknown phase " .. tostring(phase)
end
return hs
