/**
 * The page's only style sheet, inlined in its `<style>` element. The Content-Security-
 * Policy allows exactly this text (by its SHA-256), so nothing here may depend on the
 * data: the same characters on every page.
 */
export const STYLES = `
:root { color-scheme: light; --ink: #1f2328; --muted: #59636e; --line: #d1d9e0; --panel: #f6f8fa; --warn-bg: #fff8e6; --warn-line: #d4a72c; --failed: #c9302c; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; color: var(--ink); background: #ffffff; }
header, main, footer { max-width: 1100px; margin: 0 auto; padding: 0 24px; }
header { padding-top: 24px; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 20px; margin: 40px 0 8px; padding-bottom: 4px; border-bottom: 1px solid var(--line); }
h3 { font-size: 16px; margin: 24px 0 8px; }
p { margin: 8px 0; }
.subtitle { color: var(--muted); margin: 0; overflow-wrap: anywhere; }
nav { margin: 16px 0 0; display: flex; flex-wrap: wrap; gap: 4px 16px; }
nav a { color: #0969da; text-decoration: none; }
nav a:hover { text-decoration: underline; }
.totals { display: grid; grid-template-columns: repeat(auto-fill, minmax(160px, 1fr)); gap: 12px; margin: 16px 0; padding: 0; list-style: none; }
.totals li { background: var(--panel); border: 1px solid var(--line); border-radius: 6px; padding: 10px 12px; }
.totals .label { display: block; color: var(--muted); font-size: 13px; }
.totals .value { display: block; font-size: 20px; font-weight: 600; overflow-wrap: anywhere; }
.totals .time .value { font-size: 16px; }
.totals .note { display: block; color: var(--muted); font-size: 13px; }
.totals .failed .value { color: var(--failed); }
.warning { background: var(--warn-bg); border: 1px solid var(--warn-line); border-left-width: 4px; border-radius: 6px; padding: 10px 14px; margin: 16px 0; }
.warning strong { display: block; margin-bottom: 4px; }
.warning ul { margin: 4px 0; padding-left: 20px; }
.empty { color: var(--muted); font-style: italic; }
.chart { margin: 12px 0 20px; overflow-x: auto; }
.chart figcaption { color: var(--muted); font-size: 13px; margin-bottom: 4px; }
.chart svg { display: block; max-width: 100%; height: auto; }
.chart svg text { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
table { border-collapse: collapse; width: 100%; margin: 8px 0 16px; font-size: 14px; }
th, td { text-align: left; vertical-align: top; padding: 6px 8px; border-bottom: 1px solid var(--line); }
th { background: var(--panel); font-weight: 600; }
td.number, th.number { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td code, li code { font-size: 13px; overflow-wrap: anywhere; }
.meaning { color: var(--muted); font-size: 13px; display: block; }
.examples { margin: 0; padding-left: 18px; }
.examples li { overflow-wrap: anywhere; }
.contact-sheet { display: grid; grid-template-columns: repeat(auto-fill, minmax(170px, 1fr)); gap: 12px; margin: 16px 0; padding: 0; list-style: none; }
.contact-sheet li { margin: 0; border: 1px solid var(--line); border-radius: 6px; padding: 6px; background: var(--panel); }
.contact-sheet .frame { display: flex; align-items: center; justify-content: center; height: 160px; }
.contact-sheet img { display: block; max-width: 100%; max-height: 160px; width: auto; height: auto; }
.contact-sheet .id { display: block; font-size: 12px; color: var(--muted); margin-top: 4px; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
footer { color: var(--muted); font-size: 13px; margin-top: 48px; padding-bottom: 32px; }
`;
