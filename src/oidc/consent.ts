import type Provider from 'oidc-provider';

type PendingInteraction = Awaited<ReturnType<Provider['interactionDetails']>>;

/**
 * The consent a person gives on the consent page: the scopes, claims and API scopes the
 * provider found missing, added to the grant this client already holds for them (or a new
 * one), saved. Returns the grant's id. (bench/ceiling.ts builds its grants alike on purpose
 * without importing this: the ceiling must measure oidc-provider alone.)
 */
export async function grantConsent(provider: Provider, interaction: PendingInteraction): Promise<string> {
  const { prompt, params, session, grantId } = interaction;
  const missing = prompt.details as { missingOIDCScope?: string[]; missingOIDCClaims?: string[]; missingResourceScopes?: Record<string, string[]> };
  const grant = (grantId ? await provider.Grant.find(grantId) : undefined) ?? new provider.Grant({ accountId: session!.accountId, clientId: String(params.client_id) });
  if (missing.missingOIDCScope?.length) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
  if (missing.missingOIDCClaims?.length) grant.addOIDCClaims(missing.missingOIDCClaims);
  for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes ?? {})) grant.addResourceScope(indicator, scopes.join(' '));
  return grant.save();
}
