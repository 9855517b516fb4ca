-- RetrainPolicy: suspended is Suspended; a policy waiting for or running a retraining is
-- doing its job (Healthy); one that cannot work without a change is Degraded.
local cannot_work = {InvalidSchedule = true, InvalidSpec = true, DatasetUnavailable = true,
                     ProbeFailed = true}

local function health()
  if obj.spec ~= nil and obj.spec.suspend == true and obj.metadata.deletionTimestamp == nil then
    return {status = "Suspended", message = "RetrainPolicy is suspended"}
  end
  local h = pending() or stalled()
  if h ~= nil then
    return h
  end
  for _, type_ in ipairs({"Triggered", "DatasetChecked"}) do
    local c = condition(type_)
    if c ~= nil and c.status == "False" and cannot_work[c.reason] then
      return {status = "Degraded", message = said(c, c.reason)}
    end
  end
  h = ready()
  if h ~= nil then
    return h
  end
  local status = obj.status or {}
  if status.phase == nil then
    return {status = "Progressing", message = "Waiting for the operator"}
  end
  return {status = "Healthy", message = status.phase .. ": " .. said(condition("Triggered"), "waiting for a trigger")}
end

return health()
