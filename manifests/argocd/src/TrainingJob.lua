-- TrainingJob: Succeeded is Healthy; Failed is Degraded (a job is never retried by editing
-- it: its spec is immutable); anything else is on its way.
local function health()
  local h = pending() or stalled()
  if h ~= nil then
    return h
  end
  local status = obj.status or {}
  local failed = condition("Failed")
  if status.phase == "Failed" or (failed ~= nil and failed.status == "True") then
    return {status = "Degraded", message = said(failed, status.message or "Failed")}
  end
  h = ready()
  if h ~= nil then
    return h
  end
  if status.phase == "Succeeded" then
    return {status = "Healthy", message = status.message or "Succeeded"}
  end
  return {status = "Progressing",
          message = (status.phase or "Pending") .. ": " .. (status.message or "waiting for the operator")}
end

return health()
