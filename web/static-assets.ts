import { createHash } from 'node:crypto';
import { Hono } from 'hono';
import { ADMIN_SCRIPT } from './assets/admin-script';
import { FORM_SCRIPT } from './assets/form-script';
import { LINE_SCRIPT } from './assets/line-script';
import { STYLE_CSS } from './assets/style';
import { VM_SCRIPT } from './assets/vm-script';

const SOURCES = {
  'style.css': STYLE_CSS,
  'form.js': FORM_SCRIPT,
  'vm.js': VM_SCRIPT,
  'admin.js': ADMIN_SCRIPT,
  'line.js': LINE_SCRIPT,
} as const;

export type AssetName = keyof typeof SOURCES;
export type ScriptName = Extract<AssetName, `${string}.js`>;

const CONTENT_TYPES: Record<string, string> = { css: 'text/css; charset=utf-8', js: 'text/javascript; charset=utf-8' };
// The name carries the content's hash, so a changed file gets a new URL and browsers may keep each one for good.
const IMMUTABLE = 'public, max-age=31536000, immutable';

interface Asset {
  url: string;
  body: string;
  contentType: string;
}

const ASSETS = new Map<AssetName, Asset>(
  Object.entries(SOURCES).map(([name, body]) => {
    const [base, extension] = name.split('.');
    const hash = createHash('sha256').update(body).digest('hex').slice(0, 12);
    return [name as AssetName, { url: `/assets/${base}-${hash}.${extension}`, body, contentType: CONTENT_TYPES[extension] }];
  }),
);
const BY_URL = new Map([...ASSETS.values()].map((asset) => [asset.url, asset]));

/** The URL a page links to for one of its static files. */
export function assetUrl(name: AssetName): string {
  return (ASSETS.get(name) as Asset).url;
}

/** Serves the pages' scripts and stylesheet, so no page needs an inline one (the CSP allows none). */
export function createAssetApp(): Hono {
  const app = new Hono();
  // Browsers ask for it on every site: "no icon" without a 404 in every console and log.
  app.get('/favicon.ico', (c) => c.body(null, 204));
  app.get('/assets/:file', (c) => {
    const asset = BY_URL.get(c.req.path);
    if (!asset) return c.text('There is no such file.', 404);
    return c.body(asset.body, 200, { 'content-type': asset.contentType, 'cache-control': IMMUTABLE });
  });
  return app;
}
