// The server's entry point. It checks the runtime before anything is loaded (a native module
// built for another Node would crash the process without a word), then starts the server.
const [major = 0, minor = 0] = process.versions.node.split('.').map(Number);
if (major < 22 || (major === 22 && minor < 12)) {
  console.error(`idp: Node ${process.versions.node} is too old: the server needs Node 22.12 or newer (start it with "npm start", which runs the Node version the project pins)`);
  process.exit(1);
}
await import('./server.ts');
