-- The kstatus contract every Perennial kind follows: being deleted, or the latest spec not
-- observed yet -> Progressing; Stalled=True -> Degraded; Ready=True -> Healthy; Ready=False
-- -> Progressing. Each kind's section adds what kstatus cannot say (a suspended policy, a
-- rolled-back canary) and reads the phase of objects written before Ready/Stalled existed.
local function condition(type_)
  if obj.status == nil or obj.status.conditions == nil then
    return nil
  end
  for _, c in ipairs(obj.status.conditions) do
    if c.type == type_ then
      return c
    end
  end
  return nil
end

local function said(c, fallback)
  if c ~= nil and c.message ~= nil and c.message ~= "" then
    return c.message
  end
  if c ~= nil and c.reason ~= nil then
    return c.reason
  end
  return fallback
end

-- Deleted, or the latest spec not observed yet: Progressing, whatever the status says.
local function pending()
  if obj.metadata.deletionTimestamp ~= nil then
    return {status = "Progressing", message = "Pending deletion"}
  end
  local generation = obj.metadata.generation
  local observed = obj.status ~= nil and obj.status.observedGeneration or nil
  if generation ~= nil and (observed == nil or observed < generation) then
    return {status = "Progressing",
            message = "Waiting for the operator to observe generation " .. generation}
  end
  return nil
end

-- Stalled=True (cannot progress without a change): Degraded.
local function stalled()
  local c = condition("Stalled")
  if c ~= nil and c.status == "True" then
    return {status = "Degraded", message = said(c, "Stalled")}
  end
  return nil
end

-- Ready about the current generation: True is Healthy, False or Unknown is Progressing
-- (its reason says on what). nil when there is no such Ready: an object written before the
-- operator set one, which each kind judges by its phase.
local function ready()
  local c = condition("Ready")
  local generation = obj.metadata.generation
  if c == nil then
    return nil
  end
  if c.observedGeneration ~= nil and generation ~= nil and c.observedGeneration < generation then
    return nil
  end
  if c.status == "True" then
    return {status = "Healthy", message = said(c, "Ready")}
  end
  return {status = "Progressing", message = said(c, "Not ready")}
end
