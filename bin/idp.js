#!/usr/bin/env node
// The `idp` command. The sources are TypeScript that Node runs directly (type stripping),
// so npm scripts and npx run this on the Node version pinned in package.json.
import '../src/cli/main.ts';
