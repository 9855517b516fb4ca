-- ComputePool: Healthy at its desired size; a failing provider, pods that fit no node of
-- the pool, or a pool at maxNodes with pods waiting are Degraded; scaling is Progressing.
local function health()
  local h = pending() or stalled()
  if h ~= nil then
    return h
  end
  for _, type_ in ipairs({"ProviderReady", "PodsFit", "CapacityAvailable"}) do
    local c = condition(type_)
    if c ~= nil and c.status == "False" then
      return {status = "Degraded", message = said(c, c.reason)}
    end
  end
  h = ready()
  if h ~= nil then
    return h
  end
  return {status = "Progressing", message = said(condition("Ready"), "Waiting for the operator")}
end

return health()
