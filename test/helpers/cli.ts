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

/** Runs `idp` and returns what it printed; a failure throws, with what it said. */
export async function idpOk(args: string[], env: Record<string, string>, stdin?: string): Promise<string> {
  const res = await idp(args, env, stdin);
  if (res.code !== 0) throw new Error(`idp ${args.join(' ')}: ${res.stderr}`);
  return res.stdout;
}

/** A person created as an operator would (`idp users create`), with these roles and `password`. */
export async function createPerson(env: Record<string, string>, password: string, roles: string[] = []): Promise<{ id: string; email: string }> {
  const email = `person-${Math.random().toString(36).slice(2)}@example.com`;
  const out = await idpOk(['users', 'create', '--email', email, '--password-stdin', '--json', ...roles.flatMap((r) => ['--role', r])], env, `${password}\n`);
  return { id: (JSON.parse(out) as { id: string }).id, email };
}
