-- Argo CD health of a tradebot.io ExchangeAccount: conditions Ready and CredentialsReady.
--   Ready False or CredentialsReady False -> Degraded; Ready True -> Healthy (the message
--   carries a credentials warning such as SecretRefDevelopmentOnly); no Ready yet, or a
--   status older than the spec (observedGeneration < generation) -> Progressing.
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

local ready = condition("Ready")
if ready == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the tradebot operator to check the account"
  return hs
end

local generation = obj.metadata.generation
local observed = obj.status.observedGeneration
if generation ~= nil and (observed == nil or observed < generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. string.format("%d", generation)
  return hs
end

local credentials = condition("CredentialsReady")
if ready.status == "False" then
  hs.status = "Degraded"
  hs.message = detail(ready)
elseif credentials ~= nil and credentials.status == "False" then
  hs.status = "Degraded"
  hs.message = "credentials: " .. detail(credentials)
elseif ready.status == "True" then
  hs.status = "Healthy"
  hs.message = detail(ready)
  if credentials ~= nil and credentials.reason ~= "NotRequired" and (credentials.status ~= "True" or credentials.reason == "SecretRefDevelopmentOnly") then
    hs.message = hs.message .. "; credentials: " .. detail(credentials)
  end
else
  hs.status = "Progressing"
  hs.message = detail(ready)
end
return hs
