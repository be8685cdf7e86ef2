"""The page's CSS: cards, chips, highlights and the articles table, in colours that follow the theme."""

from __future__ import annotations

# Colours follow the theme (Streamlit's light or dark, or the system's): text inherits the page's
# colour, backgrounds are translucent tints over the page's own, so nothing assumes a white page.
# Highlights are the exception: a marker yellow with its own dark text, readable on either.
PAGE_CSS = """
<style>
.answer { line-height:1.65; }
.cite-chip { display:inline-block; min-width:1.3em; padding:0 .35em; margin:0 .12em; border-radius:.7em;
  background:rgba(66,118,240,.2); color:inherit !important; font-size:.78em; font-weight:700;
  text-align:center; text-decoration:none !important; vertical-align:.15em; line-height:1.5;
  border:1px solid rgba(66,118,240,.55); }
.cite-chip:hover, .cite-chip:focus { background:#1a4fd6; color:#fff !important; }
.card-n { display:inline-block; min-width:1.3em; padding:0 .35em; margin-right:.15em; border-radius:.7em;
  background:rgba(66,118,240,.2); color:inherit; font-size:.78em; font-weight:700; text-align:center; }
.source-card, .hit-card { border:1px solid rgba(128,128,128,.35); border-radius:.5em;
  padding:.45em .8em; margin:.35em 0; background:rgba(128,128,128,.05); color:inherit; }
.source-card > summary { cursor:pointer; }
.source-card .title, .hit-card .title { font-weight:600; }
.source-card .date, .source-card .score, .source-card .src, .source-card .page,
.hit-card .date, .hit-card .score, .hit-card .src, .hit-card .page { opacity:.8; font-size:.9em; }
.card-quote { opacity:.85; font-style:italic; font-size:.9em; margin:.15em 0 0 1.1em; }
.source-card[open] .card-quote { display:none; }
.passage { margin:.45em 0; line-height:1.55; }
mark { background:#fff1a8; color:#1b1b1f; padding:0 .1em; border-radius:.15em; }
mark.quote { background:#ffe066; }
mark .short { background:#ffc933; font-weight:600; }
.short-answer { font-size:1.1em; margin-bottom:.25em; }
.confidence { font-size:.78em; padding:0 .4em; border-radius:.6em; white-space:nowrap; }
.conf-high { background:rgba(30,160,70,.2); }
.conf-medium { background:rgba(240,170,0,.25); }
.conf-low { background:rgba(220,50,40,.2); }
mark:target { outline:2px solid #f08c00; background:#ffd43b; scroll-margin-top:6em; }
.details-target { scroll-margin-top:6em; }
details.whole { margin-top:.3em; }
details.whole > summary { font-size:.9em; }
.whole-link { text-decoration:none; }
.article-text { max-height:22em; overflow:auto; border-left:3px solid rgba(128,128,128,.3);
  padding:.2em .7em; margin-top:.3em; line-height:1.55; font-size:.95em; }
.also-in { opacity:.85; font-size:.85em; }
.also-in .src { opacity:1; }
.also-in .differs { color:#e8590c; }
.conflict { background:rgba(240,140,0,.14); border-left:4px solid #f08c00; padding:.35em .7em;
  margin:.3em 0 .5em; border-radius:.3em; }
.unsupported { text-decoration: underline wavy #e03131; text-underline-offset:3px; }
.unsupported-flag { color:#e03131; font-size:.8em; white-space:nowrap; }
.articles { max-height:28em; overflow:auto; border:1px solid rgba(128,128,128,.35);
  border-radius:.5em; }
.articles table { width:100%; border-collapse:collapse; font-size:.92em; margin:0; }
.articles th { position:sticky; top:0; text-align:left; background:rgba(128,128,128,.15);
  backdrop-filter:blur(6px); }
.articles th, .articles td { padding:.3em .6em; border:none;
  border-bottom:1px solid rgba(128,128,128,.2); vertical-align:top; }
.articles .nowrap { white-space:nowrap; }
[data-testid="stAppDeployButton"] { display:none !important; }
/* The modes in the page itself, for a phone, where the sidebar starts folded away. */
.st-key-phone-modes { display:none; }
@media (max-width: 640px) { .st-key-phone-modes { display:block; } }
</style>
"""
