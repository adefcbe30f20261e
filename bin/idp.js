#!/usr/bin/env node
// The `idp` command. The sources are TypeScript that Node runs directly (type stripping), so
// this needs the Node version pinned in package.json: npm scripts and npx put it first on PATH.
const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 22 || (major === 22 && minor < 18)) {
  console.error(`idp: Node ${process.versions.node} is too old; run it as "npx idp" (or through npm scripts) to use the Node version the project pins.`);
  process.exit(1);
}
await import('../src/cli/main.ts');
