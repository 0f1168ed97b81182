// Shared by the browser tests: the glimpse binary, a tiny static server on localhost
// and headless Chromium with WebGPU (SwiftShader on a machine without a GPU).

import { spawnSync } from 'node:child_process';
import { createReadStream, mkdtempSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { extname, join, normalize, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const REPO = resolve(fileURLToPath(import.meta.url), '../../..');
export const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';

/** The glimpse binary: $GLIMPSE_BIN, else target/debug/glimpse built now (a no-op when up to date). */
export function glimpseBinary() {
  if (process.env.GLIMPSE_BIN) return process.env.GLIMPSE_BIN;
  const build = spawnSync('cargo', ['build', '--quiet', '--bin', 'glimpse'], { cwd: REPO, stdio: 'inherit' });
  if (build.status !== 0) throw new Error('cargo build failed');
  return join(REPO, 'target', 'debug', 'glimpse');
}

/** Runs glimpse with `args`; returns stdout, throws with stderr on failure. */
export function glimpse(args, options = {}) {
  const r = spawnSync(glimpseBinary(), args, { cwd: REPO, encoding: 'utf8', maxBuffer: 1 << 28, ...options });
  if (r.status !== 0) throw new Error(`glimpse ${args.join(' ')} failed (${r.status}):\n${r.stderr}`);
  return r.stdout;
}

export function tempDir(prefix) {
  return mkdtempSync(join(tmpdir(), prefix));
}

const TYPES = { '.html': 'text/html', '.js': 'text/javascript', '.mjs': 'text/javascript', '.json': 'application/json',
  '.wgsl': 'text/plain', '.bin': 'application/octet-stream', '.png': 'image/png', '.svg': 'image/svg+xml' };

/** Serves `mounts` ({'/web/': dir, ...}) on 127.0.0.1 at a free port; resolves to {url, close}. */
export function serve(mounts) {
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    const prefix = Object.keys(mounts).find((p) => path.startsWith(p));
    const root = prefix && resolve(mounts[prefix]);
    const file = root && normalize(join(root, path.slice(prefix.length)));
    if (!file || !(file === root || file.startsWith(root + sep))) return res.writeHead(404).end();
    let size;
    try { size = statSync(file).isFile() ? statSync(file).size : null; } catch { size = null; }
    if (size === null) return res.writeHead(404).end();
    res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream', 'content-length': size });
    createReadStream(file).pipe(res);
  });
  return new Promise((ok) => server.listen(0, '127.0.0.1', () => ok({
    url: `http://127.0.0.1:${server.address().port}`,
    close: () => new Promise((done) => server.close(done)),
  })));
}

/** Headless Chromium with WebGPU on (Vulkan; SwiftShader where there is no GPU), fresh profile. */
export async function launchChromium({ webgpu = true } = {}) {
  const profile = tempDir('glimpse-chromium-');
  const args = ['--no-sandbox', '--disable-gpu-sandbox', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'];
  if (webgpu) args.push('--enable-unsafe-webgpu', '--enable-features=Vulkan', '--use-vulkan=native');
  else args.push('--disable-webgpu', '--disable-features=WebGPU,Vulkan');
  const context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args });
  const close = async () => { await context.close(); rmSync(profile, { recursive: true, force: true }); };
  return { context, close };
}

/** Rejects after `ms` with `what` named, so a hung GPU call fails the test instead of stalling it. */
export function within(ms, what, promise) {
  let timer;
  const timeout = new Promise((_, fail) => { timer = setTimeout(() => fail(new Error(`${what}: no answer in ${ms / 1000} s`)), ms); });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
