import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync, existsSync } from 'node:fs';
import path from 'node:path';
import { Browser } from 'playwright-core';
import { launchChromium } from '../../local/chromium';
import { readConfig } from '../../lib/lablink-config';

const ROOT = path.join(__dirname, '..', '..');
const DOCS = [
  'README.md',
  ...readdirSync(path.join(ROOT, 'docs'))
    .filter((name) => name.endsWith('.md'))
    .map((name) => `docs/${name}`),
];
const read = (file: string) => readFileSync(path.join(ROOT, file), 'utf8');

function codeBlocks(markdown: string, language: string): string[] {
  return [...markdown.matchAll(new RegExp('```' + language + '\\n([\\s\\S]*?)```', 'g'))].map((match) => match[1]);
}

describe('the docs', () => {
  it('give the quick start as exactly the two command lines', () => {
    const readme = read('README.md');
    const quickStart = readme.slice(readme.indexOf('## Quick start'), readme.indexOf('## Local mode'));
    expect(codeBlocks(quickStart, 'sh').map((block) => block.trim())).toEqual(['npm ci && npm start', 'npm test']);
  });

  it.each(DOCS)('%s links only to files that exist', (file) => {
    const links = [...read(file).matchAll(/\]\((?!https?:|#|mailto:)([^)#\s]+)/g)].map((match) => match[1]);
    for (const link of links) expect([link, existsSync(path.join(ROOT, path.dirname(file), link))]).toEqual([link, true]);
  });

  it.each(readdirSync(path.join(ROOT, 'docs', 'examples')).filter((name) => name.endsWith('.sh')))(
    'docs/examples/%s is valid bash that stops at the first error',
    (name) => {
      const file = path.join(ROOT, 'docs', 'examples', name);
      expect(() => execFileSync('bash', ['-n', file])).not.toThrow();
      expect(readFileSync(file, 'utf8')).toMatch(/^set -euo pipefail$/m);
    },
  );

  it.each(DOCS)('%s names only npm scripts that exist', (file) => {
    const scripts = Object.keys((JSON.parse(read('package.json')) as { scripts: Record<string, string> }).scripts);
    for (const [, script] of read(file).matchAll(/npm run ([\w:-]+)/g)) expect(scripts).toContain(script);
  });

  it.each(DOCS)('%s uses only CDK context keys that the stack accepts, with valid values', (file) => {
    for (const block of codeBlocks(read(file), 'sh')) {
      // The teardown and the check take the deploy's flags (the teardown synthesizes the app with them for cdk destroy).
      for (const line of block
        .split('\n')
        .filter((candidate) => ['cdk deploy', 'npm run teardown', 'npm run check'].some((command) => candidate.includes(command)))) {
        const context = Object.fromEntries(
          [...line.matchAll(/-c (\w+)=(\S+)/g)].map(([, key, value]) => [key, value.includes('<') ? undefined : value]),
        );
        expect(() => readConfig((key) => context[key])).not.toThrow();
        const known = Object.keys(readConfig(() => undefined));
        for (const key of Object.keys(context)) expect(known).toContain(key);
      }
    }
  });
});

describe('the Mermaid diagrams, parsed by Mermaid in a real Chromium', () => {
  let browser: Browser;
  beforeAll(async () => {
    browser = await launchChromium();
  });
  afterAll(async () => browser?.close());

  const diagrams = DOCS.flatMap((file) => codeBlocks(read(file), 'mermaid').map((code, index) => [`${file} #${index + 1}`, code] as const));

  it('the README has the component and the sequence diagram', () => {
    expect(diagrams.filter(([name]) => name.startsWith('README')).map(([, code]) => code.split('\n')[0])).toEqual([
      'flowchart LR',
      'sequenceDiagram',
    ]);
  });

  it.each(diagrams)('%s is well formed', async (_name, code) => {
    const page = await browser.newPage();
    try {
      await page.addScriptTag({ path: require.resolve('mermaid/dist/mermaid.min.js') });
      const result = await page.evaluate(async (text) => {
        const mermaid = (window as unknown as { mermaid: { initialize(config: object): void; parse(text: string): Promise<unknown> } })
          .mermaid;
        mermaid.initialize({ startOnLoad: false });
        try {
          await mermaid.parse(text);
          return 'ok';
        } catch (error) {
          return String(error);
        }
      }, code);
      expect(result).toBe('ok');
    } finally {
      await page.close();
    }
  });
});
