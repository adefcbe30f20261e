import type { ProviderPages } from '../oidc/provider.ts';
import { pageFor, providerErrorPage } from './errors.ts';
import type { PageRequest, Views } from './views.ts';

/** The pages the embedded provider shows, rendered with ours (same templates, headers and words). */
export function providerPages(views: Views): ProviderPages {
  const html = (req: PageRequest, status: number, template: string, data: Record<string, unknown>, headers: Record<string, string> = {}) => ({
    status,
    headers: { ...views.headers, ...headers },
    html: views.render(template, data, req),
  });
  return {
    locales: views.catalogue.locales,
    logout: (req, form, clientName) => html(req, 200, 'logout', { form, clientName }),
    loggedOut: (req, clientName) => html(req, 200, 'logged-out', { clientName }),
    tooManySignIns: (req, retryAfterSeconds) => html(req, 429, 'error', { page: 'too_many_sign_ins' }, { 'retry-after': String(retryAfterSeconds) }),
    deviceCode: (req, form) => html(req, 200, 'device', { ...form, problem: form.problem ? { key: `device.problem.${form.problem}` } : undefined }),
    deviceConfirm: (req, form, clientName, userCode) => html(req, 200, 'device-confirm', { form, clientName, userCode }),
    deviceDone: (req, clientName, aborted) => html(req, 200, 'device-done', { clientName, aborted }),
    deviceThrottled: (req, retryAfterSeconds) => html(req, 429, 'device', { throttled: true, action: req.here }, { 'retry-after': String(retryAfterSeconds) }),
    error(req, err, oauth) {
      const page = pageFor(err);
      // Our failures (the database out of reach, a bug) read like our pages; the provider's own
      // refusals (unknown client, unregistered redirect URI…) say in words what was wrong, with
      // the code for support and the provider's description for the app's developer.
      if (page.internal || page.status === 503) return { ...html(req, page.status, 'error', { page: page.page }, page.headers), internal: page.internal };
      return { ...html(req, page.status, 'error', { page: providerErrorPage(oauth.error), code: oauth.error, details: oauth.error_description }), internal: false };
    },
  };
}
