import { html, raw } from 'hono/html';
import { ScriptName, assetUrl } from './static-assets';

/** A whole page: its script, if any, is a static file that reads what it needs from the page's data- attributes. */
export function layout(title: string, body: unknown, options: { wide?: boolean; script?: ScriptName; refreshSeconds?: number } = {}) {
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title} · LabLink</title>
<link rel="stylesheet" href="${assetUrl('style.css')}">
${options.refreshSeconds ? html`<noscript><meta http-equiv="refresh" content="${options.refreshSeconds}"></noscript>` : ''}
</head>
<body><main${options.wide ? raw(' class="wide"') : ''}>${body}</main>${options.script ? html`<script src="${assetUrl(options.script)}"></script>` : ''}</body>
</html>`;
}
