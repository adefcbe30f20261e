import { createServer, type Server } from 'node:http';
import { exportJWK, generateKeyPair, SignJWT, UnsecuredJWT, type JWK } from 'jose';
import Provider from 'oidc-provider';

/** The claims a Google account has in its ID token. */
export interface GoogleAccount {
  sub: string;
  email?: string;
  email_verified?: boolean;
  hd?: string;
  name?: string;
  picture?: string;
}

export interface Upstream {
  /** On `localhost`, so that its cookies never mix with ours (on 127.0.0.1) in a browser. */
  issuer: string;
  clientId: string;
  clientSecret: string;
  /** The account the next sign-in at the upstream picks (the person typing at Google). */
  signInAs(account: GoogleAccount): void;
  /** The next sign-in is cancelled at the upstream (the person presses "Cancel"). */
  cancelNext(): void;
  close(): Promise<void>;
}

async function listen(server: Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as { port: number }).port;
}

/**
 * A real OpenID provider (oidc-provider) with Google's claim shape, standing in for Google on
 * loopback. Its login and consent steps are decided by the test instead of a person.
 */
export async function startGoogleStandIn(redirectUris: string[]): Promise<Upstream> {
  const server = createServer();
  const port = await listen(server);
  const issuer = `http://localhost:${port}`;
  const accounts = new Map<string, GoogleAccount>();
  let next: GoogleAccount | undefined;
  let cancel = false;

  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  const provider = new Provider(issuer, {
    clients: [{ client_id: 'our-idp', client_secret: 'upstream-secret', redirect_uris: redirectUris, token_endpoint_auth_method: 'client_secret_post' }],
    jwks: { keys: [{ ...(await exportJWK(privateKey)), kid: 'upstream-key', alg: 'RS256', use: 'sig' } as never] },
    // Google puts the profile and email claims in the ID token.
    conformIdTokenClaims: false,
    claims: { openid: ['sub', 'hd'], email: ['email', 'email_verified'], profile: ['name', 'picture'] },
    features: { devInteractions: { enabled: false } },
    interactions: { url: (_ctx, interaction) => `/login/${interaction.uid}` },
    async findAccount(_ctx, sub) {
      const account = accounts.get(sub);
      return account && { accountId: sub, claims: async () => ({ ...account }) };
    },
    cookies: { keys: ['upstream-cookie-key-upstream-cookie-key'] },
  });
  const callback = provider.callback();

  server.on('request', (req, res) => {
    if (!req.url?.startsWith('/login/')) return callback(req, res);
    void (async () => {
      const details = await provider.interactionDetails(req, res);
      if (cancel) {
        cancel = false;
        return provider.interactionFinished(req, res, { error: 'access_denied', error_description: 'The user cancelled' });
      }
      if (details.prompt.name === 'login') {
        const account = next!;
        accounts.set(account.sub, account);
        return provider.interactionFinished(req, res, { login: { accountId: account.sub } });
      }
      const grant = new provider.Grant({ accountId: details.session!.accountId, clientId: String(details.params.client_id) });
      grant.addOIDCScope(String(details.params.scope));
      return provider.interactionFinished(req, res, { consent: { grantId: await grant.save() } }, { mergeWithLastSubmission: true });
    })().catch((err: unknown) => {
      res.statusCode = 500;
      res.end(String(err));
    });
  });

  return {
    issuer,
    clientId: 'our-idp',
    clientSecret: 'upstream-secret',
    signInAs: (account) => {
      next = account;
    },
    cancelNext: () => {
      cancel = true;
    },
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/**
 * An upstream that misbehaves on purpose, in one way: its ID tokens are signed with a key it
 * does not publish, meant for another audience, from another issuer, carry another nonce, are
 * expired, or are not signed at all. Everything else is by the book.
 */
export type Forgery = 'bad-signature' | 'wrong-audience' | 'wrong-issuer' | 'wrong-nonce' | 'expired' | 'alg-none';

export async function startForgingUpstream(mode: Forgery): Promise<Upstream> {
  const server = createServer();
  const port = await listen(server);
  const issuer = `http://localhost:${port}`;
  const published = await generateKeyPair('RS256', { extractable: true });
  const signing = mode === 'bad-signature' ? await generateKeyPair('RS256', { extractable: true }) : published;
  const jwk: JWK = { ...(await exportJWK(published.publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
  const codes = new Map<string, { nonce: string }>();
  let next: GoogleAccount = { sub: 'forged', email: 'forged@example.com', email_verified: true };

  server.on('request', (req, res) => {
    const url = new URL(req.url!, issuer);
    const json = (body: unknown) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    if (url.pathname === '/.well-known/openid-configuration') {
      return json({
        issuer,
        authorization_endpoint: `${issuer}/auth`,
        token_endpoint: `${issuer}/token`,
        jwks_uri: `${issuer}/jwks`,
        response_types_supported: ['code'],
        subject_types_supported: ['public'],
        id_token_signing_alg_values_supported: ['RS256'],
        code_challenge_methods_supported: ['S256'],
      });
    }
    if (url.pathname === '/jwks') return json({ keys: [jwk] });
    if (url.pathname === '/auth') {
      const code = `code-${Math.random().toString(36).slice(2)}`;
      codes.set(code, { nonce: url.searchParams.get('nonce')! });
      const back = new URL(url.searchParams.get('redirect_uri')!);
      back.searchParams.set('code', code);
      back.searchParams.set('state', url.searchParams.get('state')!);
      return res.writeHead(303, { location: back.href }).end();
    }
    if (url.pathname === '/token') {
      let body = '';
      req.on('data', (d) => (body += d));
      req.on('end', () => {
        const code = new URLSearchParams(body).get('code')!;
        const { nonce } = codes.get(code) ?? { nonce: '' };
        const now = Math.floor(Date.now() / 1000);
        const claims = {
          ...next,
          nonce: mode === 'wrong-nonce' ? 'not-the-nonce' : nonce,
          iss: mode === 'wrong-issuer' ? 'https://impostor.example' : issuer,
          aud: mode === 'wrong-audience' ? 'someone-else' : 'our-idp',
          iat: mode === 'expired' ? now - 3600 : now,
          exp: mode === 'expired' ? now - 1800 : now + 300,
        };
        const idToken = mode === 'alg-none' ? Promise.resolve(new UnsecuredJWT(claims).encode()) : new SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid: 'k1' }).sign(signing.privateKey);
        void idToken.then((id_token) => json({ access_token: 'at', token_type: 'Bearer', expires_in: 300, id_token }));
      });
      return;
    }
    res.writeHead(404).end();
  });

  return {
    issuer,
    clientId: 'our-idp',
    clientSecret: 'upstream-secret',
    signInAs: (account) => {
      next = account;
    },
    cancelNext: () => {},
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
