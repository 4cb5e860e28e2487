// The workbench page: static HTML and CSS, no external resources (works offline). The server sends
// it at /; its script (/app.js) is the esbuild bundle of main.ts, which fills the views in.
import { esc } from "../plot/svg.js";

const CSS = `
:root{--fg:#1d1d1f;--muted:#5a5a60;--line:#d0d0d6;--bg:#fafafa;--accent:#1f5fbf}
*{box-sizing:border-box}
body{font-family:system-ui,Helvetica,Arial,sans-serif;color:var(--fg);background:var(--bg);margin:0;padding:16px 24px 48px;max-width:1200px}
h1{font-size:20px;margin:0 0 4px}
h2{font-size:16px;margin:0 0 8px}
header p{margin:0;color:var(--muted);font-size:13px}
section{background:#fff;border:1px solid var(--line);border-radius:8px;padding:14px 16px;margin-top:14px}
label{font-size:13px;color:var(--muted);margin-right:6px}
textarea,input,select,button{font:inherit;font-size:14px}
textarea{width:100%;min-height:54px;padding:6px 8px;border:1px solid var(--line);border-radius:6px;font-family:ui-monospace,Menlo,monospace}
input[type=text]{padding:4px 6px;border:1px solid var(--line);border-radius:5px}
input[type=number]{width:80px;padding:4px 6px;border:1px solid var(--line);border-radius:5px}
button{padding:5px 14px;border:1px solid var(--accent);background:var(--accent);color:#fff;border-radius:5px;cursor:pointer}
button.secondary{background:#fff;color:var(--accent)}
button[aria-pressed=true]{outline:3px solid #f0a500}
.row{display:flex;gap:10px;align-items:center;flex-wrap:wrap;margin:6px 0}
.error{color:#a4000f;font-size:14px;white-space:pre-wrap;margin:6px 0}
.error:empty{display:none}
.warning{color:#6b4700;background:#fff4d6;border:1px solid #f0c050;border-radius:5px;font-size:14px;padding:5px 8px;margin:6px 0}
.warning:empty{display:none}
.hint{color:var(--muted);font-size:12px}
.tokens{font-family:ui-monospace,Menlo,monospace;font-size:14px;line-height:2.1}
.tok{display:inline-block;padding:0 3px;margin:1px;border-radius:3px;border:1px solid #ccc;cursor:default;white-space:pre}
.tok.selected{outline:2px solid var(--fg)}
.tok:focus-visible{outline:3px solid #f0a500}
.heads{display:flex;gap:6px;flex-wrap:wrap}
.heads button{background:#fff;color:var(--fg);border:1px solid var(--line);padding:3px;display:flex;flex-direction:column;align-items:center;font-size:12px}
.heatmap text{font-size:11px;fill:var(--fg)}
.heatmap .cell:hover{stroke:#000;stroke-width:1.5}
table.lens{border-collapse:collapse;font-family:ui-monospace,Menlo,monospace;font-size:12px}
table.lens th{font-weight:normal;color:var(--muted);padding:2px 6px;white-space:pre}
table.lens td{padding:3px 6px;text-align:center;border:1px solid #fff;white-space:pre;min-width:48px}
table.preds{border-collapse:collapse;font-size:13px}
table.preds td{padding:2px 10px;border-bottom:1px solid #eee;font-family:ui-monospace,Menlo,monospace;white-space:pre}
#tooltip{position:fixed;pointer-events:none;background:#222;color:#fff;font-size:12px;padding:4px 7px;border-radius:4px;white-space:pre;z-index:10;display:none;font-family:ui-monospace,Menlo,monospace}
.scroll{overflow-x:auto}
.legend{font-size:11px;color:var(--muted)}
#act-top button{padding:1px 8px;font-size:12px}
`;

export function pageHtml(model: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>circuitscope — ${esc(model)}</title><style>${CSS}</style></head>
<body>
<header><h1>circuitscope workbench</h1><p id="model-info">model ${esc(model)}</p></header>

<section aria-labelledby="h-prompt"><h2 id="h-prompt">Prompt</h2>
<textarea id="prompt" aria-label="prompt" spellcheck="false"></textarea>
<div class="row"><button id="run">Run</button><span class="hint">Ctrl+Enter runs. Tokens are shown with spaces as · and newlines as ↵.</span></div>
<div id="error" class="error" role="alert"></div>
</section>

<section aria-labelledby="h-preds"><h2 id="h-preds">Next-token predictions</h2>
<div class="hint">Click a token to see the model's top predictions after it.</div>
<div id="pred-tokens" class="tokens"></div>
<div id="predictions"></div>
</section>

<section aria-labelledby="h-act"><h2 id="h-act">Activations</h2>
<div class="row">
<label for="hook">hook</label><input type="text" id="hook" list="hook-names" size="34" spellcheck="false">
<datalist id="hook-names"></datalist>
<label for="act-mode">colour by</label><select id="act-mode"><option value="dim">one dimension</option><option value="norm">L2 norm</option></select>
<label for="dim">dimension</label><input type="number" id="dim" min="0" value="0">
<button id="act-run" class="secondary">Show</button>
</div>
<div id="act-error" class="error" role="alert"></div>
<div id="act-info" class="hint"></div>
<div id="act-top" class="row" aria-label="dimensions with the largest activations"></div>
<div id="act-tokens" class="tokens"></div>
<div id="act-legend" class="legend"></div>
</section>

<section aria-labelledby="h-attn"><h2 id="h-attn">Attention patterns</h2>
<div class="row"><label for="layer">layer</label><select id="layer"></select><span class="hint">Pick a head; hover a cell or a token.</span></div>
<div id="attn-error" class="error" role="alert"></div>
<div id="heads" class="heads" role="group" aria-label="heads"></div>
<div class="row" style="align-items:flex-start;gap:24px">
<div id="attn-heatmap" class="scroll"></div>
<div style="max-width:420px"><div class="hint">Hover a token (click to lock): the others are shaded by how much it attends to them.</div><div id="attn-tokens" class="tokens"></div></div>
</div>
</section>

<section aria-labelledby="h-lens"><h2 id="h-lens">Logit lens</h2>
<div class="hint">Each layer's residual stream through the final norm and unembedding: the top token and its probability (hover for the top 3).</div>
<div class="row"><label for="lens-target">track token</label><input type="text" id="lens-target" size="10" spellcheck="false" placeholder="e.g.  Paris">
<button id="lens-run" class="secondary">Show</button><span class="hint">With a token, cells are coloured by its probability and show its rank.</span></div>
<div id="lens-error" class="error" role="alert"></div>
<div id="lens" class="scroll"></div>
</section>

<section aria-labelledby="h-patch"><h2 id="h-patch">Activation patching</h2>
<div class="hint">Patch the clean run's activation at one layer and position (or one head, at every position) into the corrupted run (denoising; noising the other way round); the metric is the logit difference answer − wrong at the last position, normalised so 0 = corrupted and 1 = clean (when clean and corrupted are nearly equal, the raw logit difference, with a warning).</div>
<div class="row"><label for="clean">clean</label><input type="text" id="clean" size="60" spellcheck="false"></div>
<div class="row"><label for="corrupted">corrupted</label><input type="text" id="corrupted" size="60" spellcheck="false"></div>
<div class="row"><label for="answer">answer</label><input type="text" id="answer" size="10" spellcheck="false">
<label for="wrong">wrong</label><input type="text" id="wrong" size="10" spellcheck="false">
<label for="site">site</label><select id="site"><optgroup label="layer × position"><option>resid_pre</option><option>resid_mid</option><option>resid_post</option><option>attn_out</option><option>mlp_out</option></optgroup>
<optgroup label="layer × head (every position)"><option>z</option><option>q</option><option>k</option><option>v</option><option>pattern</option></optgroup></select>
<label for="direction">direction</label><select id="direction"><option>denoising</option><option>noising</option></select>
<button id="patch-run" class="secondary">Patch</button></div>
<div id="patch-error" class="error" role="alert"></div>
<div id="patch-warning" class="warning" role="status"></div>
<div id="patch-info" class="hint"></div>
<div id="patch" class="scroll"></div>
</section>

<section aria-labelledby="h-tech"><h2 id="h-tech">Techniques</h2>
<p class="hint">Every technique of the CLI and the API, with a form from its input schema; results are its pictures and text.</p>
<div id="techniques"></div>
</section>
<div id="tooltip" role="tooltip"></div>
<script type="module" src="/app.js"></script>
</body></html>
`;
}
