// State diagrams: the server draws a definition as Mermaid text; the vendored Mermaid
// bundle (loaded on first use, 3.5 MB) renders it to SVG in the browser.

import {api, q} from './api.js';
import {h, replace, showModal} from './dom.js';

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

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

// highlight marks state current, and the states an instance passed through (visited),
// in Mermaid text. The server's diagram is the plain definition; the console adds the
// classDef lines, so one diagram request serves every instance of a version.
export function highlight(text, current, visited = []) {
  const past = [...new Set(visited)].filter((s) => s !== current && NAME.test(s));
  const lines = [];
  if (past.length) {
    lines.push('    classDef visited fill:#dbeafe,stroke:#1e40af,stroke-width:2px');
    for (const st of past) lines.push(`    class ${st} visited`);
  }
  if (current && NAME.test(current)) {
    lines.push('    classDef current fill:#ffd54f,stroke:#f57f17,stroke-width:3px,font-weight:bold');
    lines.push(`    class ${current} current`);
  }
  return lines.length ? text.replace(/\s*$/, '\n') + lines.join('\n') + '\n' : text;
}

// diagram returns an element that fills in with the rendered diagram of a type's
// version (the latest when version is empty), with state current and the visited
// states highlighted. A "Full screen" button shows it at its natural size with zoom
// and drag-to-pan, for definitions too big to read in the card. The Mermaid source
// stays available under the picture; when rendering fails it is shown instead.
export function diagram(type, {version, current, visited} = {}) {
  const box = h('div', {class: 'diagram', 'data-testid': 'diagram'}, h('p', {class: 'muted'}, 'Drawing the diagram…'));
  (async () => {
    let text;
    try {
      text = await api(`/v1/workflow-types/${encodeURIComponent(type)}/diagram${q({version})}`, {text: true});
    } catch (err) {
      replace(box, h('p', {class: 'error'}, `Diagram unavailable: ${err.message}`));
      return;
    }
    const source = highlight(text, current, visited);
    const src = h('details', {class: 'source'}, h('summary', {}, 'Mermaid source'), h('pre', {}, source));
    try {
      const m = await loadMermaid();
      const {svg} = await m.render(`ifdiagram${++counter}`, source);
      // The SVG comes from Mermaid with securityLevel 'strict', which sanitises every
      // label; the text it was drawn from is our own server's.
      const pic = h('div', {class: 'svg'});
      pic.innerHTML = svg;
      const legend = h('p', {class: 'legend'},
        current ? [h('span', {class: 'swatch'}), ` current state: ${current} `] : null,
        visited?.length ? [h('span', {class: 'swatch visited'}), ' visited '] : null,
        h('button', {type: 'button', 'data-testid': 'diagram-full', onclick: (e) => fullScreen(e.currentTarget, pic, type)}, 'Full screen'));
      replace(box, pic, legend, src);
      requestAnimationFrame(() => {
        fit(pic.querySelector('svg'));
        box.dataset.rendered = 'true';
      });
    } catch (err) {
      replace(box, h('p', {class: 'error'}, `Cannot render the diagram (${err.message}); its source:`), h('pre', {}, source));
    }
  })();
  return box;
}

// fit widens an SVG's viewBox to everything drawn in it: Mermaid sizes the picture
// by its nodes, and the label of a self-loop can stick out beyond them and be cut.
function fit(svg) {
  if (!svg || !svg.isConnected) return;
  let box;
  try {
    box = svg.getBBox();
  } catch {
    return;
  }
  if (!box.width || !box.height) return;
  const vb = svg.viewBox.baseVal;
  const pad = 8;
  const x = Math.min(vb.x, box.x - pad);
  const y = Math.min(vb.y, box.y - pad);
  const w = Math.max(vb.x + vb.width, box.x + box.width + pad) - x;
  const h = Math.max(vb.y + vb.height, box.y + box.height + pad) - y;
  svg.setAttribute('viewBox', `${x} ${y} ${w} ${h}`);
  if (svg.style.maxWidth) svg.style.maxWidth = `${w}px`;
}

const ZOOMS = [0.5, 0.75, 1, 1.25, 1.5, 2, 3];

// fullScreen shows the diagram in pic at its natural size in a dialog that fills the
// window: zoom buttons (and +/-), scrolling or dragging to pan, Escape to close.
function fullScreen(opener, pic, type) {
  const svg = pic.querySelector('svg')?.cloneNode(true);
  if (!svg) return;
  const vb = svg.viewBox?.baseVal;
  const natural = {w: vb?.width || 800, h: vb?.height || 600};
  svg.removeAttribute('style');
  let zi = ZOOMS.indexOf(1);
  const level = h('span', {class: 'muted', 'data-testid': 'diagram-zoom'});
  const apply = () => {
    svg.setAttribute('width', String(Math.round(natural.w * ZOOMS[zi])));
    svg.setAttribute('height', String(Math.round(natural.h * ZOOMS[zi])));
    level.textContent = `${Math.round(ZOOMS[zi] * 100)}%`;
  };
  const zoom = (d) => {
    zi = Math.max(0, Math.min(ZOOMS.length - 1, zi + d));
    apply();
  };
  const stage = h('div', {class: 'stage', tabindex: '0', 'aria-label': 'diagram, scroll or drag to pan'}, svg);
  let drag = null;
  stage.addEventListener('pointerdown', (e) => {
    drag = {x: e.clientX, y: e.clientY, left: stage.scrollLeft, top: stage.scrollTop};
    stage.setPointerCapture(e.pointerId);
  });
  stage.addEventListener('pointermove', (e) => {
    if (!drag) return;
    stage.scrollLeft = drag.left - (e.clientX - drag.x);
    stage.scrollTop = drag.top - (e.clientY - drag.y);
  });
  stage.addEventListener('pointerup', () => (drag = null));
  const dialog = h('dialog', {class: 'fullscreen', 'aria-label': `diagram of ${type}`, 'data-testid': 'diagram-dialog'},
    h('div', {class: 'toolbar'},
      h('strong', {}, type),
      h('button', {type: 'button', 'aria-label': 'zoom out', onclick: () => zoom(-1)}, '−'),
      level,
      h('button', {type: 'button', 'aria-label': 'zoom in', 'data-testid': 'zoom-in', onclick: () => zoom(1)}, '+'),
      h('button', {type: 'button', onclick: () => dialog.close(), 'data-testid': 'diagram-close'}, 'Close')),
    stage);
  dialog.addEventListener('keydown', (e) => {
    if (e.key === '+' || e.key === '=') zoom(1);
    else if (e.key === '-') zoom(-1);
  });
  apply();
  showModal(dialog, opener);
  stage.focus();
  // Start where the instance is (else at the initial state's corner of the picture).
  (svg.querySelector('g.current') || svg.querySelector('g.node'))?.scrollIntoView({block: 'center', inline: 'center'});
}
