-- InferenceService: Healthy when it serves what it should with every replica ready.
-- RolledBack (the canary breached its limits; the stable version serves) and Degraded
-- (replicas failing after a rollout) need a person, even while Ready is True.
local function health()
  local h = pending() or stalled()
  if h ~= nil then
    return h
  end
  local status = obj.status or {}
  if status.phase == "RolledBack" then
    local rollback = status.lastRollback or {}
    return {status = "Degraded",
            message = "Rolled back version " .. tostring(rollback.version) .. ": " .. tostring(rollback.reason)}
  end
  if status.phase == "Degraded" then
    return {status = "Degraded", message = said(condition("Ready"), "Degraded")}
  end
  -- A canary step or a new Deployment: replicas may all be ready, the rollout is not done.
  if status.phase ~= "Progressing" and status.phase ~= "Pending" then
    h = ready()
    if h ~= nil then
      return h
    end
  end
  return {status = "Progressing",
          message = said(condition("Progressing"), said(condition("Ready"), status.phase or "Pending"))}
end

return health()
