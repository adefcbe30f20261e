import type { ProviderPages } from '../oidc/provider.ts';
import { pageFor } from './errors.ts';
import type { Views } from './views.ts';

/** The pages the embedded provider shows, rendered with ours (same templates, headers and wording). */
export function providerPages(views: Views): ProviderPages {
  const html = (status: number, template: string, data: Record<string, unknown>, headers: Record<string, string> = {}) => ({
    status,
    headers: { ...views.headers, ...headers },
    html: views.render(template, data),
  });
  return {
    logout: (form, clientName) => html(200, 'logout', { form, clientName }),
    loggedOut: (clientName) => html(200, 'logged-out', { clientName }),
    tooManySignIns: (retryAfterSeconds) =>
      html(429, 'error', { title: 'Too many sign-ins', message: 'Too many sign-ins were started from your network in the last minute. Wait a minute, then try again.' }, { 'retry-after': String(retryAfterSeconds) }),
    error(err, oauth) {
      const page = pageFor(err);
      // Our failures (the database out of reach, a bug) read like our pages; the provider's own
      // refusals (invalid client, redirect URI…) say what was wrong.
      if (page.internal || page.status === 503) return { ...html(page.status, 'error', { title: page.title, message: page.message }, page.headers), internal: page.internal };
      return { ...html(page.status, 'error', { title: 'This request cannot be completed', message: oauth.error_description ?? 'The request was invalid.', code: oauth.error }), internal: false };
    },
  };
}
