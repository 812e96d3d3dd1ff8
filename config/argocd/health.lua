-- Argo CD health check for Partner and DistributorContract
-- (entitlements.partnerops.io): the same script for both kinds. It reads
-- the conditions as kstatus does: Stalled=True is Degraded (a problem only
-- a user can fix); Ready=True for the current generation is Healthy;
-- anything else (no status yet, an older generation, Reconciling, an apply
-- error being retried) is Progressing. The business state (a partner
-- correctly revoked, a contract expired) is healthy: it is what was asked.
-- Install: config/argocd/argocd-cm-patch.yaml (generated from this file).
local hs = {status = "Progressing", message = "Waiting for the operator"}
if obj.status == nil or obj.status.conditions == nil then
  return hs
end
if obj.status.observedGeneration ~= nil and obj.metadata.generation ~= nil
   and obj.status.observedGeneration < obj.metadata.generation then
  hs.message = "The operator has not seen the latest spec yet"
  return hs
end
for _, c in ipairs(obj.status.conditions) do
  if c.type == "Stalled" and c.status == "True" then
    return {status = "Degraded", message = c.reason .. ": " .. (c.message or "")}
  end
end
for _, c in ipairs(obj.status.conditions) do
  if c.type == "Ready" then
    if c.status == "True" then
      return {status = "Healthy", message = "phase " .. (obj.status.phase or "")}
    end
    hs.message = c.reason .. ": " .. (c.message or "")
  end
end
return hs
