import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const BIN = fileURLToPath(new URL('../../bin/idp.js', import.meta.url));

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
  json<T = Record<string, unknown>>(): T;
}

/** Runs the real `idp` command in a child process, on the Node that runs the tests. */
export function idp(args: string[], env: Record<string, string>, stdin?: string): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) =>
      resolve({ code: code ?? -1, stdout, stderr, json: <T>() => JSON.parse(stdout) as T }),
    );
    child.stdin.end(stdin ?? '');
  });
}

/** The credentials `idp clients create --json` printed (`{"client": {…}, "clientSecret"}`). */
export function createdClient(res: CliResult): { clientId: string; clientSecret: string } {
  if (res.code !== 0) throw new Error(`clients create failed: ${res.stderr}`);
  const { client, clientSecret } = res.json<{ client: { clientId: string }; clientSecret?: string }>();
  return { clientId: client.clientId, clientSecret: clientSecret ?? '' };
}

/** Creates a user, an API and a client through the CLI, as the README walkthrough does. */
export async function seed(env: Record<string, string>, opts: { redirectUri: string; public?: boolean; extraClientArgs?: string[] }) {
  const email = `user-${Math.random().toString(36).slice(2)}@example.com`;
  const password = 'a long enough password';
  const user = await idp(['users', 'create', '--email', email, '--password-stdin', '--name', 'Test User', '--json'], env, `${password}\n`);
  if (user.code !== 0) throw new Error(`users create failed: ${user.stderr}`);
  const api = await idp(['resources', 'create', '--identifier', 'https://api.example.com', '--scope', 'read write', '--json'], env);
  if (api.code !== 0 && !api.stderr.includes('already exists')) throw new Error(`resources create failed: ${api.stderr}`);
  const client = await idp(
    [
      'clients', 'create', '--name', 'Test App', '--redirect-uri', opts.redirectUri,
      '--post-logout-redirect-uri', `${new URL(opts.redirectUri).origin}/logged-out`,
      '--grant-type', 'authorization_code', '--grant-type', 'refresh_token',
      '--scope', 'openid profile email offline_access', '--api', 'https://api.example.com read write',
      ...(opts.public ? ['--public'] : []), ...(opts.extraClientArgs ?? []), '--json',
    ],
    env,
  );
  const { clientId, clientSecret } = createdClient(client);
  return { email, password, userId: user.json<{ id: string }>().id, clientId, clientSecret: opts.public ? undefined : clientSecret };
}
