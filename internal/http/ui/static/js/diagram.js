// State diagrams: the server draws a definition as Mermaid text; the vendored Mermaid
// bundle (loaded on first use, 3.5 MB) renders it to SVG in the browser.

import {api, q} from './api.js';
import {h, replace} from './dom.js';

let loading;
let counter = 0;

function loadMermaid() {
  if (!loading) {
    loading = new Promise((resolve, reject) => {
      const s = document.createElement('script');
      s.src = new URL('../vendor/mermaid.min.js', import.meta.url).href;
      s.onload = () => {
        const m = globalThis.mermaid;
        if (!m) return reject(new Error('mermaid did not load'));
        m.initialize({startOnLoad: false, securityLevel: 'strict', theme: 'neutral', state: {useMaxWidth: true}});
        resolve(m);
      };
      s.onerror = () => {
        loading = undefined;
        reject(new Error('cannot load the diagram renderer'));
      };
      document.head.appendChild(s);
    });
  }
  return loading;
}

// highlight marks state current in Mermaid text. The server's diagram is the plain
// definition; the console adds the two classDef lines the server's own highlighted
// form (workflow.MermaidHighlight) would add, so one diagram request serves every
// instance of a version.
export function highlight(text, current) {
  if (!current || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(current)) return text;
  return text.replace(/\s*$/, '\n') +
    '    classDef current fill:#ffd54f,stroke:#f57f17,stroke-width:3px,font-weight:bold\n' +
    `    class ${current} current\n`;
}

// diagram returns an element that fills in with the rendered diagram of a type's
// version (the latest when version is empty), with state current highlighted. The
// Mermaid source stays available under the picture; when rendering fails it is shown
// instead.
export function diagram(type, {version, current} = {}) {
  const box = h('div', {class: 'diagram', 'data-testid': 'diagram'}, h('p', {class: 'muted'}, 'Drawing the diagram…'));
  (async () => {
    let text;
    try {
      text = await api(`/v1/workflow-types/${encodeURIComponent(type)}/diagram${q({version})}`, {text: true});
    } catch (err) {
      replace(box, h('p', {class: 'error'}, `Diagram unavailable: ${err.message}`));
      return;
    }
    const source = highlight(text, current);
    const src = h('details', {class: 'source'}, h('summary', {}, 'Mermaid source'), h('pre', {}, source));
    try {
      const m = await loadMermaid();
      const {svg} = await m.render(`ifdiagram${++counter}`, source);
      // The SVG comes from Mermaid with securityLevel 'strict', which sanitises every
      // label; the text it was drawn from is our own server's.
      const pic = h('div', {class: 'svg'});
      pic.innerHTML = svg;
      const legend = current ? h('p', {class: 'legend'}, h('span', {class: 'swatch'}), ` current state: ${current}`) : null;
      replace(box, pic, legend, src);
      box.dataset.rendered = 'true';
    } catch (err) {
      replace(box, h('p', {class: 'error'}, `Cannot render the diagram (${err.message}); its source:`), h('pre', {}, source));
    }
  })();
  return box;
}
