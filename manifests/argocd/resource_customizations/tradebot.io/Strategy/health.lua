-- Argo CD health of a tradebot.io Strategy: condition Valid (the operator validates the
-- parameters against the strategy type's model; the message names the exact bad field).
--   Valid True -> Healthy; Valid False -> Degraded; otherwise, or when the status is older
--   than the spec (observedGeneration < generation) -> Progressing.
local hs = {}

local function condition(ctype)
  if obj.status == nil or obj.status.conditions == nil then
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
  local text = c.reason or ""
  if c.message ~= nil and c.message ~= "" then
    if text ~= "" then
      text = text .. ": "
    end
    text = text .. c.message
  end
  return text
end

local valid = condition("Valid")
if valid == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the tradebot operator to validate the parameters"
  return hs
end

local generation = obj.metadata.generation
local observed = obj.status.observedGeneration
if generation ~= nil and (observed == nil or observed < generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. string.format("%d", generation)
  return hs
end

if valid.status == "True" then
  hs.status = "Healthy"
  hs.message = detail(valid)
elseif valid.status == "False" then
  hs.status = "Degraded"
  hs.message = detail(valid)
else
  hs.status = "Progressing"
  hs.message = detail(valid)
end
return hs
