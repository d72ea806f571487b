/// The one stylesheet of the portal and the dashboard, served by Tollgate itself
/// (`/_portal/assets/app.css`, `/dashboard/assets/app.css`). Pages carry no inline style:
/// their Content-Security-Policy allows only this file.
enum Stylesheet {
    static let css = #"""
:root {
  --ink: #1d2433; --muted: #5b6478; --line: #dde1ea; --paper: #ffffff; --wash: #f4f6fa;
  --accent: #2f5bea; --accent-ink: #ffffff; --good: #1f8a4c; --warn: #b76e00; --bad: #c0392b;
  --s0: #2f5bea; --s1: #16a394; --s2: #e8913a; --s3: #9b51e0; --s4: #d64570; --s5: #6b7a99;
  font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
  color: var(--ink); background: var(--wash); line-height: 1.5;
}
* { box-sizing: border-box; }
body { margin: 0; }
a { color: var(--accent); }
a:focus, button:focus, input:focus, select:focus, textarea:focus { outline: 3px solid #9db4ff; outline-offset: 2px; }
.skip { position: absolute; left: -999px; top: 0; background: var(--paper); padding: .5rem 1rem; }
.skip:focus { left: 1rem; }
.wrap { max-width: 1080px; margin: 0 auto; padding: 0 1.25rem; }
header.top { background: #141b2d; color: #fff; }
header.top .wrap { display: flex; align-items: center; gap: 1.5rem; min-height: 56px; flex-wrap: wrap; }
.brand { font-weight: 700; letter-spacing: .02em; font-size: 1.05rem; }
.brand small { font-weight: 400; color: #aab4cc; margin-left: .4rem; }
nav.main ul { list-style: none; display: flex; gap: .25rem; margin: 0; padding: 0; flex-wrap: wrap; }
nav.main a { color: #d7ddeb; text-decoration: none; padding: .4rem .7rem; border-radius: 6px; display: inline-block; }
nav.main a[aria-current="page"], nav.main a:hover { background: #27324d; color: #fff; }
.signout { margin-left: auto; }
.signout button { background: none; border: 1px solid #3b4766; color: #d7ddeb; padding: .3rem .8rem; border-radius: 6px; cursor: pointer; }
main { padding: 1.5rem 1.25rem 3rem; }
h1 { font-size: 1.6rem; margin: .5rem 0 1rem; }
h2 { font-size: 1.15rem; margin: 0 0 .75rem; }
h3 { font-size: 1rem; margin: 1rem 0 .5rem; }
.lead { color: var(--muted); margin-top: -.5rem; }
.card { background: var(--paper); border: 1px solid var(--line); border-radius: 10px; padding: 1.1rem 1.25rem; margin: 0 0 1.25rem; }
.grid { display: grid; gap: 1.25rem; grid-template-columns: repeat(auto-fit, minmax(220px, 1fr)); }
.stat { font-size: 1.9rem; font-weight: 700; margin: .25rem 0 0; }
.stat-label { color: var(--muted); font-size: .9rem; margin: 0; }
table { width: 100%; border-collapse: collapse; font-size: .95rem; }
th, td { text-align: left; padding: .5rem .6rem; border-bottom: 1px solid var(--line); vertical-align: top; }
th { color: var(--muted); font-weight: 600; font-size: .85rem; text-transform: uppercase; letter-spacing: .03em; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
tfoot td { font-weight: 700; border-bottom: none; }
.status { display: inline-block; padding: .05rem .55rem; border-radius: 999px; font-size: .8rem; font-weight: 600; background: #e7ebf3; color: var(--muted); }
.status.active, .status.paid, .status.delivered { background: #def3e6; color: var(--good); }
.status.finalized, .status.pending, .status.draft { background: #fff1d9; color: var(--warn); }
.status.terminated, .status.void, .status.failed { background: #fbe3e0; color: var(--bad); }
form.inline { display: inline; }
.actions { display: flex; gap: .75rem; flex-wrap: wrap; align-items: flex-end; }
.actions form { display: flex; gap: .5rem; flex-wrap: wrap; align-items: flex-end; }
.actions label { width: 100%; margin: 0; }
.actions select { width: auto; max-width: 360px; }
label { display: block; font-weight: 600; font-size: .9rem; margin: .5rem 0 .25rem; }
input[type=text], input[type=email], input[type=password], select, textarea {
  width: 100%; max-width: 420px; padding: .5rem .6rem; border: 1px solid #b9c0cf; border-radius: 6px; font: inherit; background: #fff; }
textarea { max-width: none; font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: .85rem; }
button, .button { background: var(--accent); color: var(--accent-ink); border: none; border-radius: 6px; padding: .5rem 1rem;
  font: inherit; font-weight: 600; cursor: pointer; text-decoration: none; display: inline-block; }
button.secondary { background: #e7ebf3; color: var(--ink); }
button.danger { background: var(--bad); }
fieldset { border: 1px solid var(--line); border-radius: 8px; padding: .75rem 1rem; margin: .75rem 0; }
legend { font-weight: 600; padding: 0 .3rem; }
.plan-choice { display: flex; gap: .6rem; align-items: flex-start; padding: .6rem 0; border-bottom: 1px solid var(--line); }
.plan-choice:last-child { border-bottom: none; }
.plan-choice label { margin: 0; }
.plan-choice ul { margin: .2rem 0 0; padding-left: 1.1rem; color: var(--muted); font-weight: 400; font-size: .9rem; }
.notice { background: #e6f0ff; border: 1px solid #b7ccff; padding: .6rem .9rem; border-radius: 8px; }
.error { background: #fdecea; border: 1px solid #f3b8b0; color: #7b1d12; padding: .6rem .9rem; border-radius: 8px; }
.secret { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; background: #141b2d; color: #e8edf8;
  padding: .8rem 1rem; border-radius: 8px; overflow-x: auto; white-space: pre-wrap; word-break: break-all; user-select: all; }
.muted { color: var(--muted); }
meter { width: 160px; height: 12px; vertical-align: middle; }
.chart { width: 100%; height: auto; max-width: 720px; display: block; }
.chart .grid { stroke: #e3e7ef; stroke-width: 1; }
.chart .baseline { stroke: #8a93a8; stroke-width: 1; }
.chart .axis, .chart .legend { fill: #5b6478; font-size: 11px; font-family: system-ui, sans-serif; }
.chart .s0 { fill: var(--s0); } .chart .s1 { fill: var(--s1); } .chart .s2 { fill: var(--s2); }
.chart .s3 { fill: var(--s3); } .chart .s4 { fill: var(--s4); } .chart .s5 { fill: var(--s5); }
.yaml { width: 100%; border-collapse: collapse; font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: .82rem; }
.yaml td { border: none; padding: 0 .5rem; white-space: pre; }
.yaml td.line { color: #8a93a8; text-align: right; user-select: none; width: 3rem; }
.yaml tr.problem td { background: #fdecea; }
.yaml td.message { color: #7b1d12; font-family: system-ui, sans-serif; white-space: normal; }
.filters a { margin-right: .6rem; }
.filters a[aria-current="page"] { font-weight: 700; color: var(--ink); text-decoration: none; }
footer { color: var(--muted); font-size: .85rem; text-align: center; padding: 1rem; }
"""#
}
