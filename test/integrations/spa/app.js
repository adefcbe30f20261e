// The single-page app of docs/integrate.md ("Single-page app: oidc-client-ts"), served by
// test/integrations/oidc-client-ts.test.ts from a loopback origin of its own and run in Chromium.
import { UserManager } from 'oidc-client-ts';

// The test's settings, which its page sets before this module runs.
const ISSUER = window.settings.issuer;
const CLIENT_ID = window.settings.clientId;
const API = window.settings.api;
const API_URL = window.settings.apiUrl;

const userManager = new UserManager({
  authority: ISSUER,
  client_id: CLIENT_ID,
  redirect_uri: `${location.origin}/callback`,
  response_type: 'code',
  scope: 'openid profile email offline_access read',
  prompt: 'consent',
  resource: API,
});

/** What the page shows the test, in #out. */
function report(what) {
  document.querySelector('#out').textContent = JSON.stringify(what);
}

document.querySelector('#sign-in').addEventListener('click', async () => {
  await userManager.signinRedirect();
});

document.querySelector('#renew').addEventListener('click', async () => {
  try {
    const renewed = await userManager.signinSilent();
    const orders = await fetch(`${API_URL}/orders`, { headers: { authorization: `Bearer ${renewed.access_token}` } });
    report({ renewed: true, accessToken: renewed.access_token, orders: await orders.json() });
  } catch (err) {
    report({ error: String(err) });
  }
});

if (location.pathname === '/callback') {
  try {
    const user = await userManager.signinRedirectCallback();
    const orders = await fetch(`${API_URL}/orders`, { headers: { authorization: `Bearer ${user.access_token}` } });
    report({ profile: user.profile, accessToken: user.access_token, hasRefreshToken: Boolean(user.refresh_token), orders: await orders.json() });
  } catch (err) {
    report({ error: String(err) });
  }
}
