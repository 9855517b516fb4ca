-- ModelVersion: Healthy once its artifact is recorded; Failed (a reference the operator
-- cannot use) is Degraded until the manifest changes.
local function health()
  local h = pending() or stalled()
  if h ~= nil then
    return h
  end
  local status = obj.status or {}
  if status.phase == "Failed" then
    return {status = "Degraded", message = said(condition("Ready"), "Failed")}
  end
  h = ready()
  if h ~= nil then
    return h
  end
  if status.phase == "Ready" then
    return {status = "Healthy", message = "Ready"}
  end
  return {status = "Progressing", message = said(condition("Ready"), "Waiting for the operator to check the artifact")}
end

return health()
