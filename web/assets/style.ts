// The one stylesheet of every page. Colours meet WCAG AA contrast on their backgrounds; focus is always visible.
export const STYLE_CSS = `/* Without JavaScript some controls stay hidden: [hidden] must win over any display rule. */
[hidden] { display: none !important; }
:root { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; color: #1b1f24; }
body { margin: 0; background: #f4f6f8; line-height: 1.5; }
main { max-width: 44rem; margin: 0 auto; padding: 1.25rem 1rem 3rem; }
main.wide { max-width: 84rem; }
h1 { font-size: 1.6rem; margin: .25rem 0; }
h2 { font-size: 1.15rem; margin: 0 0 .5rem; }
section.card { background: #fff; border-radius: .5rem; padding: 1rem 1.25rem; margin: 1rem 0; box-shadow: 0 1px 3px #0002; }
ol.steps { padding-left: 1.25rem; margin: .25rem 0; }
ol.steps li { margin: .35rem 0; }
label { display: block; font-weight: 600; margin-top: 1rem; }
.hint { color: #4b5563; font-size: .92rem; margin: .15rem 0 .35rem; }
input, textarea, select { width: 100%; box-sizing: border-box; font: inherit; padding: .55rem; border: 1px solid #6b7280; border-radius: .375rem; background: #fff; }
textarea { min-height: 6.5rem; font-family: ui-monospace, Menlo, monospace; font-size: .9rem; }
[aria-invalid="true"] { border: 2px solid #b42318; }
button, .button { display: inline-block; margin-top: 1rem; font: inherit; font-weight: 600; padding: .6rem 1.3rem; border: 0; border-radius: .375rem; background: #0b57d0; color: #fff; cursor: pointer; text-decoration: none; }
button.secondary, .button.secondary { background: #e5e7eb; color: #1b1f24; margin-top: 0; padding: .3rem .8rem; }
button.danger { background: #b42318; margin-top: 0; padding: .3rem .8rem; }
:focus-visible { outline: 3px solid #b45309; outline-offset: 2px; }
.error { color: #b42318; font-weight: 600; margin: .3rem 0 0; }
.error-summary { border: 3px solid #b42318; background: #fff; border-radius: .5rem; padding: .75rem 1.25rem; margin: 1rem 0; }
.error-summary h2 { color: #b42318; }
.error-summary ul { margin: .25rem 0; padding-left: 1.25rem; }
.error-summary a { color: #b42318; font-weight: 600; }
.check { display: flex; gap: .5rem; align-items: flex-start; margin-top: .5rem; }
.check input { width: auto; margin: .3rem 0 0; }
.check label { margin: 0; font-weight: 400; }
.notice { background: #fff4e5; border-left: 4px solid #b54708; padding: .75rem 1rem; margin: 1rem 0; }
.ok { background: #ecfdf3; border-left: 4px solid #027a48; padding: .75rem 1rem; margin: 1rem 0; }
.big { font-size: 2.1rem; font-weight: 700; font-family: ui-monospace, Menlo, monospace; letter-spacing: .08em; margin: 0; word-break: break-all; }
.pair { display: flex; flex-wrap: wrap; gap: .5rem 1rem; align-items: center; }
.muted { color: #4b5563; }
a { color: #0b57d0; }
table { width: 100%; border-collapse: collapse; background: #fff; font-size: .92rem; }
th, td { text-align: left; padding: .45rem .5rem; border-bottom: 1px solid #e5e7eb; vertical-align: top; }
td:first-child, th[scope=row], td.when, td a { white-space: nowrap; }
td.actions a { display: inline-block; margin: 0 .6rem .2rem 0; }
th a.sort { color: inherit; font-weight: 700; }
/* On a narrow screen the VM table keeps readable columns and scrolls in its box, the VM's name staying in view. */
table.vms { min-width: 62rem; }
/* A long reason wraps inside its cell (and folds away), so Actions stay on a 1366-wide screen. */
td.problem-text { min-width: 11rem; max-width: 20rem; overflow-wrap: anywhere; }
td.problem-text summary { cursor: pointer; }
td small { white-space: nowrap; }
table.vms th:first-child { position: sticky; left: 0; background: #fff; z-index: 1; }
tr.problem, tr.problem th:first-child { background: #fef3f2; }
tr.problem th:first-child { box-shadow: inset 4px 0 #b42318; }
.tiles { list-style: none; display: flex; flex-wrap: wrap; gap: .5rem; padding: 0; margin: 1rem 0; }
.tile { background: #fff; border-radius: .5rem; padding: .5rem .9rem; box-shadow: 0 1px 3px #0002; min-width: 5.5rem; }
.tile-count { display: block; font-size: 1.6rem; font-weight: 700; line-height: 1.2; }
.tile-problem { background: #fef3f2; color: #b42318; border: 2px solid #b42318; }
.state { font-weight: 700; }
.state-error, .state-stale { color: #b42318; }
.state-configured { color: #027a48; }
.table-wrap { overflow-x: auto; max-width: 100%; }
.log-text { white-space: pre-wrap; overflow-wrap: anywhere; font-family: ui-monospace, Menlo, monospace; font-size: .85rem; }
.level-error .level { color: #b42318; font-weight: 700; }
.level-warn .level { color: #b54708; font-weight: 700; }
/* On a phone each log line is a block: time, level and source above, the text across the whole width. */
@media (max-width: 40rem) {
  table.log thead { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); }
  table.log tr { display: block; border-bottom: 1px solid #e5e7eb; padding: .3rem 0; }
  table.log td { display: inline-block; border: 0; padding: .1rem .4rem .1rem 0; }
  table.log td.log-text { display: block; }
}
@media (max-width: 30rem) { .big { font-size: 1.7rem; } main { padding: 1rem .75rem 2rem; } }
`;
